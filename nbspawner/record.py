"""The user record: who a user is, as far as the pod is concerned.

Every layer shares this one type: directory backends return it, the policy validates it, the
builders (storage, passwd, pod security) take a validated one. It lives outside the
``directory`` plug-in package so the pure builders need not import the backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class UserRecord:
    """Who a user is, as far as the pod is concerned."""

    username: str
    uid: int
    gid: int
    home: str
    #: group names, used for access decisions (profiles, data shares) and /etc/group
    groups: tuple[str, ...] = ()
    #: numeric supplementary groups for the pod's ``supplementalGroups``
    supplemental_gids: tuple[int, ...] = ()
    #: (name, gid) of the posix groups whose names are known, primary group included if known;
    #: written to the pod's /etc/group
    posix_groups: tuple[tuple[str, int], ...] = ()
    gecos: str = ""
    shell: str = "/bin/bash"
    #: which backend answered (e.g. ``"ldap"``), for logs and ``nbspawner lookup``
    source: str = field(default="", compare=False)

    def with_source(self, source: str) -> UserRecord:
        return replace(self, source=source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "uid": self.uid,
            "gid": self.gid,
            "home": self.home,
            "groups": list(self.groups),
            "supplemental_gids": list(self.supplemental_gids),
            "posix_groups": [[n, g] for n, g in self.posix_groups],
            "gecos": self.gecos,
            "shell": self.shell,
            "source": self.source,
        }
