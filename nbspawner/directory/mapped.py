"""MappedDirectory: the middle layer every attribute-based backend stands on.

A directory that finds a user's attributes as one mapping (an LDAP entry, a claims dict, a
JSON object, a YAML entry) differs from the others only in how it fetches that mapping. The
rest is the same for all of them and lives here, written once: refusing names no directory
can hold before anything is asked, typing each value (an id must be a plain decimal integer,
a home a string, exactly one value where one is expected), assembling the group fields, and
saying where a malformed value came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import DirectoryError, InvalidRecord
from ..record import UserRecord
from .base import Directory
from .values import (
    group_fields,
    parse_int,
    parse_str,
    parse_str_list,
    refuse_impossible_username,
)

#: the keys :meth:`MappedDirectory.fetch` may return, each a raw value as the source holds it
RECORD_KEYS = frozenset(
    {
        "uid",  # the numeric uid (required)
        "gid",  # the primary gid (required)
        "home",  # the home directory (required)
        "gecos",  # the full name (optional)
        "shell",  # the login shell (optional; /bin/bash)
        "groups",  # group names (a list, possibly empty)
        "group_gids",  # name -> gid the source itself gives (merged over the group_gids setting)
        "supplemental_gids",  # an explicit list of numeric gids (None: from the groups' gids)
        "where",  # where the entry is, for messages (a DN, a file and key); never a value
    }
)


class MappedDirectory(Directory):
    """A backend whose users are mappings of attributes.

    The only method a subclass defines is :meth:`fetch`. It returns the raw values under the
    keys of :data:`RECORD_KEYS` (or raises :class:`~nbspawner.errors.UserNotFound` /
    :class:`~nbspawner.errors.DirectoryError`); :meth:`lookup` turns them into a typed
    :class:`~nbspawner.record.UserRecord` the same way for every backend.
    """

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> Mapping[str, Any]:
        """The user's raw attributes, keyed by :data:`RECORD_KEYS`."""
        raise NotImplementedError

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        refuse_impossible_username(username, self.name)
        return self.to_record(username, await self.fetch(username, auth_state))

    def to_record(self, username: str, found: Mapping[str, Any]) -> UserRecord:
        """Type the raw values of ``found``; an InvalidRecord names where the entry is."""
        unknown = set(found) - RECORD_KEYS
        if unknown:  # a backend's bug, not the directory's data
            raise TypeError(f"{type(self).__name__}.fetch returned unknown keys {sorted(unknown)}")
        try:
            return self._typed(username, found)
        except InvalidRecord as e:
            if found.get("where"):
                e.log_message = f"{e.log_message} (in {found['where']})"
                e.args = (e.log_message,)
            raise

    def _typed(self, username: str, found: Mapping[str, Any]) -> UserRecord:
        src = self.name
        uid = parse_int(found.get("uid"), "uid", src)
        gid = parse_int(found.get("gid"), "gid", src)
        record = {
            "uid": uid,
            "gid": gid,
            "home": parse_str(found.get("home"), "home", src),
            "gecos": parse_str(found.get("gecos"), "gecos", src, required=False),
            "shell": parse_str(found.get("shell"), "shell", src, required=False) or "/bin/bash",
        }
        names = [n for n in parse_str_list(found.get("groups"), "groups", src) if n]
        gids = self.configured_group_gids()
        for name, value in (found.get("group_gids") or {}).items():
            gids[name] = parse_int(value, "posix_groups", src)
        groups = group_fields(gid, names, gids, found.get("supplemental_gids"), source=src)
        return UserRecord(username=username, source=src, **record, **groups)


def claims_from(auth_state: Mapping[str, Any] | None, key: str, username: str, source: str) -> Any:
    """``auth_state[key]`` for the backends that read what the authenticator kept; a
    DirectoryError telling the admin what to enable (and the user to log in again) if absent."""
    relogin = "Please log out and log in again so your account details can be read."
    if auth_state is None:
        raise DirectoryError(
            f"{source}: no auth_state for {username!r}. Set Authenticator.enable_auth_state = "
            "True (and JUPYTERHUB_CRYPT_KEY); users must log in again afterwards",
            relogin,
            reason="no_auth_state",
        )
    return auth_state.get(key)
