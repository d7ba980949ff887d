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
def restricted_container_security_context(uid: int, gid: int, *, read_only_root: bool) -> dict[str, Any]:
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
