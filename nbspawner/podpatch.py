"""nbspawner's additions to the notebook pod, and how they are applied to kubespawner's V1Pod.

The pure builders (``storage.py``, ``passwd.py``) return a :class:`PodPatch` of Kubernetes API
dicts in camelCase, exactly as they appear in a manifest: easy to test and to print. The
spawner appends them to the ``V1Pod`` kubespawner built, each turned into a model with
kubespawner's own :func:`kubespawner.utils.get_k8s_model`, the way kubespawner turns its own
``volumes``, ``init_containers`` and ``extra_containers`` settings into models. Nothing
kubespawner wrote is converted or rebuilt; the identity itself reaches the pod through
kubespawner's traits (``uid``, ``gid``, ``supplemental_gids``) before the pod is built.

:func:`harden_pod` fills in what "restricted" requires and the user's identity:

* pod level: ``runAsNonRoot: true``, ``runAsUser``/``runAsGroup`` = the directory uid/gid,
  ``supplementalGroups`` = exactly the given list, ``fsGroup`` if given, seccomp
  ``RuntimeDefault``;
* every container, init container and ephemeral container: ``allowPrivilegeEscalation:
  false``, ``capabilities.drop`` containing ``ALL``, ``runAsNonRoot: true``, seccomp
  ``RuntimeDefault``, and ``runAsUser``/``runAsGroup`` = the directory uid/gid (every
  container of a user's pod is the user, whoever added it).

It only *adds* safety to fields that are unset. A field that explicitly asks for more
(``privileged: true``, ``allowPrivilegeEscalation: true``, ``runAsUser: 0``, a capability, a
hostPath volume, seccomp ``Unconfined``...) is left as it is, so that :func:`check_restricted`
refuses the pod with a message naming it instead of silently "fixing" what a profile or an
override asked for. An identity that contradicts the directory (a pod-level or container
``runAsUser``/``runAsGroup`` other than the user's, or an ``fsGroup`` that is not the one
``keep_fs_gid`` keeps) is refused at once.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client import V1Container, V1EnvVar, V1Volume, V1VolumeMount
from kubernetes_asyncio.client.api_client import ApiClient
from kubespawner.utils import get_k8s_model

from .errors import UnsafePod
from .security import CONTAINER_KINDS, NOTEBOOK_CONTAINER, _containers, _label

# ApiClient() opens an HTTP session; its serializer needs none of the client's state
_API_CLIENT = ApiClient.__new__(ApiClient)


def manifest(model: Any) -> Any:
    """A kubernetes_asyncio model (or a dict holding models) as the API server's camelCase JSON."""
    return _API_CLIENT.sanitize_for_serialization(model)


def mounts_view(pod: Any) -> dict[str, Any]:
    """The part of a V1Pod the mount rules read (volumes, each container's name and mounts) as
    a manifest: what kubespawner built is checked before nbspawner adds anything."""
    spec = pod.spec
    view: dict[str, Any] = {"volumes": manifest(spec.volumes or [])}
    for kind in CONTAINER_KINDS:
        attr = _snake(kind)
        view[kind] = [
            {"name": _get(c, "name"), "volumeMounts": manifest(_get(c, "volumeMounts") or [])}
            for c in getattr(spec, attr) or []
        ]
    return {"spec": view}


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


def _get(obj: Any, key: str) -> Any:
    """A field of a model or of a camelCase dict (kubespawner's lists may hold either)."""
    if isinstance(obj, dict):
        return obj.get(key)
    return getattr(obj, _snake(key), None)


@functools.cache
def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def notebook_container(pod: Any) -> Any:
    """The notebook container of a V1Pod or a pod manifest (named ``notebook``, else the first)."""
    spec = pod["spec"] if isinstance(pod, dict) else pod.spec
    containers = _get(spec, "containers")
    for c in containers:
        if _get(c, "name") == NOTEBOOK_CONTAINER:
            return c
    return containers[0]


def apply_to_pod(pod: Any, patch: PodPatch) -> list[str]:
    """Append ``patch`` to kubespawner's ``V1Pod`` in place.

    Returns human-readable notes about what the patch replaced (for the admin log), e.g. a
    z2jh home mount at the same mountPath. Our mounts win over others at the same path (two
    mounts at one path are an API error, and ours carry the user's identity).
    """
    notes: list[str] = []
    spec = pod.spec
    volumes = list(spec.volumes or [])
    for v in patch.volumes:
        if any(_get(x, "name") == v["name"] for x in volumes):
            volumes = [x for x in volumes if _get(x, "name") != v["name"]]
            notes.append(f"replaced volume {v['name']!r}")
        volumes.append(get_k8s_model(V1Volume, v))
    spec.volumes = volumes
    if patch.init_containers:
        spec.init_containers = list(spec.init_containers or []) + [
            get_k8s_model(V1Container, c) for c in patch.init_containers
        ]

    nb = notebook_container(pod)
    mounts = list(nb.volume_mounts or [])
    replaced_volumes: set[str] = set()
    for m in patch.volume_mounts:
        clash = [x for x in mounts if _get(x, "mountPath") == m["mountPath"]]
        if clash:
            mounts = [x for x in mounts if _get(x, "mountPath") != m["mountPath"]]
            replaced_volumes.update(_get(x, "name") for x in clash)
            notes.append(
                f"replaced the mount at {m['mountPath']} (volume {_get(clash[0], 'name')!r})"
            )
        mounts.append(get_k8s_model(V1VolumeMount, m))
    nb.volume_mounts = mounts
    if patch.env:
        env = [e for e in nb.env or [] if _get(e, "name") not in patch.env]
        env.extend(V1EnvVar(name=k, value=v) for k, v in patch.env.items())
        nb.env = env
    if patch.working_dir is not None and not nb.working_dir:
        # KubeSpawner.working_dir, extra_container_config or a profile's override win
        nb.working_dir = patch.working_dir

    # drop only the volumes whose one mount ours replaced (e.g. a z2jh home at the same path);
    # a volume nothing mounts may be meant for modify_pod_hook, volumeDevices or a sidecar
    # a webhook injects, and is left alone
    used = {
        _get(m, "name")
        for c in _all_containers(spec)
        for key in ("volumeMounts", "volumeDevices")
        for m in _get(c, key) or []
    }
    orphaned = replaced_volumes - used
    if orphaned:
        spec.volumes = [v for v in spec.volumes if _get(v, "name") not in orphaned]
        notes.append(f"removed volume(s) {sorted(orphaned)} that only the replaced mount used")
    return notes


def _all_containers(spec: Any) -> list[Any]:
    return [
        *(spec.init_containers or []),
        *(spec.containers or []),
        *(spec.ephemeral_containers or []),
    ]


def pin_identity(pod: Any, **identity: Any) -> None:
    """Fill the security contexts kubespawner left unset with the user's identity and what
    Pod Security "restricted" requires (see :func:`harden_pod`, which
    refuses a context that contradicts the identity). Pod level and every container: the
    notebook, nbspawner's init containers and those nbspawner did not write."""
    spec = pod.spec
    view: dict[str, Any] = {"securityContext": _plain(spec.security_context)}
    owners: list[tuple[Any, dict[str, Any]]] = []
    for kind, attr in zip(
        CONTAINER_KINDS, ("init_containers", "containers", "ephemeral_containers"), strict=True
    ):
        for c in getattr(spec, attr) or []:
            entry = {"name": c.name, "securityContext": _plain(c.security_context)}
            view.setdefault(kind, []).append(entry)
            owners.append((c, entry))
    harden_pod({"spec": view}, in_place=True, **identity)
    spec.security_context = view["securityContext"]
    for container, entry in owners:
        container.security_context = entry["securityContext"]


def _plain(context: Any) -> dict[str, Any]:
    """A security context as a camelCase dict (kubespawner writes dicts; a model is converted)."""
    if context is None:
        return {}
    return context if isinstance(context, dict) else manifest(context)


# ---------------------------------------------------------------------------
# Hardening (on the manifest dicts of the security contexts)
# ---------------------------------------------------------------------------


def _check_identity(uid: int, gid: int, supplemental_gids: Iterable[int], allow_root_group: bool):
    def bad(what: str) -> UnsafePod:
        return UnsafePod(f"harden_pod: {what}", reason="root_mode")

    for name, value in (("uid", uid), ("gid", gid)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise bad(f"{name} must be a non-negative integer")
    if uid == 0:
        raise bad("uid 0 (root) is refused")
    if gid == 0 and not allow_root_group:
        raise bad("gid 0 (root group) is refused")
    for g in supplemental_gids:
        if not isinstance(g, int) or isinstance(g, bool) or g < 0:
            raise bad("supplemental gids must be non-negative integers")
        if g == 0 and not allow_root_group:
            raise bad("supplemental gid 0 (root group) is refused")


def harden_pod(
    pod: dict[str, Any],
    *,
    uid: int,
    gid: int,
    supplemental_gids: Iterable[int] = (),
    fs_group: int | None = None,
    allow_root_group: bool = False,
    strict_supplemental_groups: bool = False,
    in_place: bool = False,
) -> dict[str, Any]:
    """Return a hardened deep copy of ``pod`` (see the module docstring); ``pod`` is unchanged.

    ``in_place=True`` edits and returns ``pod`` itself (the spawner's own throwaway dict:
    the copy costs more than the hardening).

    ``strict_supplemental_groups`` sets ``supplementalGroupsPolicy: Strict`` (Kubernetes 1.31+
    feature gate SupplementalGroupsPolicy): the runtime then does not add the groups the
    *image's* /etc/group gives the uid. Raises UnsafePod for uid 0, gid 0 without
    ``allow_root_group``, or an identity in the pod that contradicts uid/gid.
    """
    supplemental = list(dict.fromkeys(supplemental_gids))
    _check_identity(uid, gid, supplemental, allow_root_group)
    if fs_group is not None:
        _check_identity(uid, fs_group, (), allow_root_group)

    if not in_place:
        pod = copy.deepcopy(pod)
    spec = pod.setdefault("spec", {}) if "spec" in pod or "containers" not in pod else pod
    psc = spec.get("securityContext") or {}
    spec["securityContext"] = psc

    _pin(
        psc,
        uid,
        gid,
        lambda key, current, value: (
            f"harden_pod: the pod's securityContext.{key} is {current}, "
            f"not the user's {value}; a profile or extra_pod_config sets it (remove that setting)"
        ),
    )
    if psc.get("runAsNonRoot") is None:
        psc["runAsNonRoot"] = True
    psc["supplementalGroups"] = supplemental
    current_fs = psc.get("fsGroup")
    if current_fs is not None and current_fs != fs_group:
        where = (
            "fsGroup is set only from KubeSpawner.fs_gid with NBSpawner.keep_fs_gid: true"
            if fs_group is None
            else f"NBSpawner.keep_fs_gid keeps fs_gid {fs_group}"
        )
        raise UnsafePod(
            f"harden_pod: the pod's securityContext.fsGroup is {current_fs!r}; {where} "
            "(remove fsGroup from extra_pod_config or the profile)",
            reason="identity_conflict",
        )
    if fs_group is not None:
        psc["fsGroup"] = fs_group
    if psc.get("seccompProfile") is None:
        psc["seccompProfile"] = {"type": "RuntimeDefault"}
    if strict_supplemental_groups:
        psc["supplementalGroupsPolicy"] = "Strict"

    for kind, container in _containers(spec):
        sc = container.get("securityContext") or {}
        container["securityContext"] = sc
        if sc.get("allowPrivilegeEscalation") is None:
            sc["allowPrivilegeEscalation"] = False
        caps = sc.get("capabilities") or {}
        sc["capabilities"] = caps
        drop = list(caps.get("drop") or [])
        if "ALL" not in drop:
            drop.insert(0, "ALL")
        caps["drop"] = drop
        if sc.get("runAsNonRoot") is None:
            sc["runAsNonRoot"] = True
        if sc.get("seccompProfile") is None:
            sc["seccompProfile"] = {"type": "RuntimeDefault"}
        # every container of the user's pod is the user: the notebook, nbspawner's init
        # containers, and whatever extra_containers / init_containers / a profile adds
        _pin(
            sc,
            uid,
            gid,
            lambda key, current, value, who=_label(kind, container): (
                f"harden_pod: {who} has securityContext.{key} {current!r}, not the user's "
                f"{value}; every container of a user's pod runs as the user (remove that setting "
                "from the profile, extra_containers, init_containers or extra_container_config)"
            ),
        )
    return pod


def _pin(context: dict[str, Any], uid: int, gid: int, conflict: Any) -> None:
    """Set runAsUser/runAsGroup where unset; refuse a context that asks for someone else."""
    for key, value in (("runAsUser", uid), ("runAsGroup", gid)):
        current = context.get(key)
        if current is None:
            context[key] = value
        elif current != value:
            raise UnsafePod(conflict(key, current, value), reason="identity_conflict")
