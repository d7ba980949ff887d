"""A plain-data description of what a feature adds to the notebook pod.

The pure builders (``storage.py``, ``passwd.py``) return a :class:`PodPatch` made of
Kubernetes API dicts in camelCase, exactly as they appear in a pod manifest. Only
``spawner.py`` turns them into kubernetes_asyncio models and applies them to the V1Pod
that kubespawner built. Keeping them as dicts makes them easy to test and to print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class PodPatch:
    #: init containers, in the order they must run
    init_containers: list[dict[str, Any]] = field(default_factory=list)
    #: pod volumes
    volumes: list[dict[str, Any]] = field(default_factory=list)
    #: volume mounts for the notebook container
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)
    #: environment for the notebook container
    env: dict[str, str] = field(default_factory=dict)
    #: the notebook container's working directory, if the feature decides it
    working_dir: str | None = None
    #: Secrets the hub must create before the pod (and delete when the server stops)
    secrets: list[dict[str, Any]] = field(default_factory=list)

    def extend(self, other: PodPatch) -> PodPatch:
        """Append ``other`` to this patch (later env values win) and return self."""
        self.init_containers.extend(other.init_containers)
        self.volumes.extend(other.volumes)
        self.volume_mounts.extend(other.volume_mounts)
        self.env.update(other.env)
        if other.working_dir is not None:
            self.working_dir = other.working_dir
        self.secrets.extend(other.secrets)
        return self


#: securityContext for every container nbspawner adds or edits: Pod Security "restricted"
def restricted_container_security_context(
    uid: int, gid: int, *, read_only_root: bool
) -> dict[str, Any]:
    return {
        "runAsUser": uid,
        "runAsGroup": gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def notebook_container(pod: dict[str, Any]) -> dict[str, Any]:
    """The notebook container of a kubespawner pod dict (named ``notebook``, else the first)."""
    containers = pod["spec"]["containers"]
    for c in containers:
        if c.get("name") == "notebook":
            return c
    return containers[0]


def apply_to_pod(pod: dict[str, Any], patch: PodPatch) -> list[str]:
    """Apply ``patch`` to a pod manifest dict in place.

    Returns a list of human-readable notes about things the patch replaced (for the admin log),
    e.g. a z2jh home mount at the same mountPath. Our mounts win over existing ones at the same
    path, because two mounts at one path are an API error and ours carry the user's identity.
    """
    notes: list[str] = []
    spec = pod["spec"]
    volumes = spec.setdefault("volumes", [])
    names = {v["name"] for v in volumes}
    for v in patch.volumes:
        if v["name"] in names:
            volumes[:] = [x for x in volumes if x["name"] != v["name"]]
            notes.append(f"replaced volume {v['name']!r}")
        volumes.append(v)
        names.add(v["name"])

    if patch.init_containers:
        spec.setdefault("initContainers", []).extend(patch.init_containers)

    nb = notebook_container(pod)
    mounts = nb.setdefault("volumeMounts", [])
    replaced_volumes: set[str] = set()
    for m in patch.volume_mounts:
        clash = [x for x in mounts if x["mountPath"] == m["mountPath"]]
        if clash:
            mounts[:] = [x for x in mounts if x["mountPath"] != m["mountPath"]]
            replaced_volumes.update(x["name"] for x in clash)
            notes.append(f"replaced the mount at {m['mountPath']} (volume {clash[0]['name']!r})")
        mounts.append(m)

    if patch.env:
        env = [e for e in nb.get("env", []) if e.get("name") not in patch.env]
        env.extend({"name": k, "value": v} for k, v in patch.env.items())
        nb["env"] = env
    if patch.working_dir is not None and not nb.get("workingDir"):
        # KubeSpawner.working_dir, extra_container_config or a profile's override win
        nb["workingDir"] = patch.working_dir

    # drop only the volumes whose one mount ours replaced (e.g. a z2jh home at the same path);
    # a volume nothing mounts may be meant for modify_pod_hook, volumeDevices or a sidecar
    # a webhook injects, and is left alone
    used = {
        m.get("name")
        for kind in ("containers", "initContainers", "ephemeralContainers")
        for c in spec.get(kind) or []
        for m in c.get("volumeMounts") or []
    } | {
        d.get("name")
        for kind in ("containers", "initContainers", "ephemeralContainers")
        for c in spec.get(kind) or []
        for d in c.get("volumeDevices") or []
    }
    orphaned = replaced_volumes - used
    if orphaned:
        volumes[:] = [v for v in volumes if v["name"] not in orphaned]
        notes.append(f"removed volume(s) {sorted(orphaned)} that only the replaced mount used")
    return notes
