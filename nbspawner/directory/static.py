"""StaticDirectory: users from a YAML file (and/or inline config), for small sites and tests.

File format (the same keys work inline in ``StaticDirectory.users`` / ``StaticDirectory.groups``)::

    users:
      alice:
        uid: 2001
        gid: 2000
        home: /home/alice
        groups: [physics]          # optional, more names come from groups.*.members
        supplemental_gids: [3001]  # optional, default: the gids of the user's known groups
        gecos: Alice Liddell       # optional
        shell: /bin/bash           # optional
    groups:
      hpc: {gid: 2000}             # alice's primary group: its name is added to her groups
      physics: {gid: 3001, members: [alice]}
      gpu-users: 3002              # short form

The file is re-read when its modification time, size or inode changes (one ``stat`` per
lookup). A bad edit (YAML syntax, wrong structure, a non-integer group gid) keeps the last good
data and logs why, so a typo does not lock everybody out. A problem in one user's entry
(``uid: abc``) refuses only that user, as an :class:`~nbspawner.errors.InvalidRecord`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traitlets import Dict, Unicode, observe

from ..errors import DirectoryError, InvalidRecord, UserNotFound
from ..yamlload import YAMLFileError, read_yaml_file
from .mapped import MappedDirectory
from .values import one_line, parse_int


class StaticFileError(Exception):
    """The static file cannot be used; the message says where and why (never the values)."""


@dataclass(frozen=True)
class _Snapshot:
    users: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    group_gids: Mapping[str, int] = field(default_factory=dict)
    #: username -> names of groups listing the user in ``members``
    memberships: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def _parse_tables(
    users: Any, groups: Any, where: str
) -> tuple[dict[str, Mapping[str, Any]], dict[str, int], dict[str, list[str]]]:
    """Validate the structure (not the per-user values) of a users/groups pair."""
    if users is None:
        users = {}
    if groups is None:
        groups = {}
    if not isinstance(users, Mapping):
        raise StaticFileError(f"{where}: 'users' must be a mapping of username to attributes")
    if not isinstance(groups, Mapping):
        raise StaticFileError(f"{where}: 'groups' must be a mapping of group name to gid")
    user_table: dict[str, Mapping[str, Any]] = {}
    for name, attrs in users.items():
        if not isinstance(name, str):
            raise StaticFileError(f"{where}: a username key is not a string (quote it)")
        if not isinstance(attrs, Mapping):
            raise StaticFileError(f"{where}: users.{name!r} must be a mapping of attributes")
        user_table[name] = attrs
    group_gids: dict[str, int] = {}
    members: dict[str, list[str]] = {}
    for name, spec in groups.items():
        if not isinstance(name, str):
            raise StaticFileError(f"{where}: a group name key is not a string (quote it)")
        gid_value = spec.get("gid") if isinstance(spec, Mapping) else spec
        try:
            group_gids[name] = parse_int(gid_value, f"groups.{name!r}.gid", "static")
        except Exception as e:  # InvalidRecord: say which group, keep the value out
            raise StaticFileError(
                f"{where}: groups.{name!r}.gid: {getattr(e, 'kind', type(e).__name__)}"
            ) from None
        listed = spec.get("members", []) if isinstance(spec, Mapping) else []
        if not isinstance(listed, list) or not all(isinstance(m, str) for m in listed):
            raise StaticFileError(f"{where}: groups.{name!r}.members must be a list of usernames")
        for member in listed:
            members.setdefault(member, []).append(name)
    return user_table, group_gids, members


def _with_members(listed: Any, members_of: tuple[str, ...]) -> Any:
    """The entry's own ``groups`` (as written) plus the groups listing the user as a member;
    a value that is not a list or a name is passed on as it is, to be refused as such."""
    if listed is None:
        return list(members_of)
    if isinstance(listed, str):
        return [listed, *members_of]
    if isinstance(listed, list):
        return [*listed, *members_of]
    return listed


class StaticDirectory(MappedDirectory):
    """Users from a YAML file (``StaticDirectory.path``) and/or inline config."""

    name = "static"

    path = Unicode(
        "",
        config=True,
        help="""YAML file with ``users:`` (and optional ``groups:``), e.g. mounted with
        z2jh ``hub.extraFiles``. Re-read when it changes; a bad edit keeps the last good data.""",
    )
    users = Dict(
        config=True,
        help="""Inline users, same shape as the file's ``users:`` mapping. Entries in
        ``StaticDirectory.path`` override inline entries of the same name.""",
    )
    groups = Dict(
        config=True,
        help="""Inline groups, same shape as the file's ``groups:`` mapping
        (``{name: {gid: N, members: [...]}}`` or ``{name: N}``).""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._inline: _Snapshot | None = None
        self._file: _Snapshot | None = None
        self._file_signature: tuple[int, int, int] | None = None
        self._file_problem = ""
        self._combined = _Snapshot()
        self._combined_from: tuple[_Snapshot, _Snapshot] | None = None

    @observe("users", "groups")
    def _inline_changed(self, change: Any) -> None:
        self._inline = None

    # -- loading -----------------------------------------------------------------------------

    def _inline_snapshot(self) -> _Snapshot:
        if self._inline is None:
            try:
                users, gids, members = _parse_tables(
                    self.users, self.groups, "StaticDirectory.users/groups"
                )
            except StaticFileError as e:
                from ..errors import ConfigError

                raise ConfigError(str(e)) from None
            self._inline = _Snapshot(users, gids, {u: tuple(g) for u, g in members.items()})
        return self._inline

    def _read_file(self) -> _Snapshot:
        where = f"StaticDirectory.path ({self.path})"
        try:
            data = read_yaml_file(self.path, source=where)
        except OSError as e:
            raise StaticFileError(f"{where} cannot be read: {e.strerror}") from None
        except UnicodeDecodeError:
            raise StaticFileError(f"{where} is not UTF-8 text") from None
        except YAMLFileError as e:
            # the problem names a line and a key (duplicate users, quoted), never a value; some
            # parser messages span lines (an unacceptable character): kept to one
            raise StaticFileError(one_line(str(e))) from None
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise StaticFileError(f"{where} must contain a mapping with 'users:' and 'groups:'")
        unknown = set(data) - {"users", "groups"}
        if unknown:
            raise StaticFileError(
                f"{where} has unknown top-level keys {sorted(map(str, unknown))}; "
                "expected 'users' and 'groups'"
            )
        users, gids, members = _parse_tables(data.get("users"), data.get("groups"), where)
        return _Snapshot(users, gids, {u: tuple(g) for u, g in members.items()})

    def _signature(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    async def _file_snapshot(self) -> _Snapshot | None:
        if not self.path:
            return None
        signature = self._signature()
        if signature is None:
            problem = f"StaticDirectory.path ({self.path}) does not exist or cannot be read"
        elif signature == self._file_signature:
            problem = self._file_problem
        else:
            try:
                # parsing a large file must not stall the hub's event loop
                snapshot = await asyncio.to_thread(self._read_file)
            except StaticFileError as e:
                problem = str(e)
            else:
                if self._file is not None:
                    self.log.info("static: reloaded %s (%d users)", self.path, len(snapshot.users))
                self._file = snapshot
                problem = ""
            self._file_signature = signature
        if problem and problem != self._file_problem:
            if self._file is not None:
                self.log.warning("static: %s; keeping the last good data", problem)
            else:
                self.log.error("static: %s", problem)
        self._file_problem = problem
        if self._file is None:
            raise DirectoryError(
                f"static: {problem or 'no data loaded'}. Is StaticDirectory.path correct?",
                reason="config",
            )
        return self._file

    # -- the contract -------------------------------------------------------------------------

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> dict[str, Any]:
        snapshot = self._combine(self._inline_snapshot(), await self._file_snapshot())
        attrs = snapshot.users.get(username)
        if attrs is None:
            raise UserNotFound(
                f"static: user {username!r} is not in StaticDirectory.users or .path"
            )
        # the file (or inline setting) and the entry, as the admin will look for them
        in_file = self._file is not None and username in self._file.users
        where = f"StaticDirectory.path ({self.path})" if in_file else "StaticDirectory.users"
        return {
            **{key: attrs.get(key) for key in ("uid", "gid", "home", "gecos", "shell")},
            "groups": _with_members(attrs.get("groups"), snapshot.memberships.get(username, ())),
            "group_gids": snapshot.group_gids,
            "supplemental_gids": attrs.get("supplemental_gids"),
            "where": f"{where}, users.{username!r}",
        }

    def _combine(self, inline: _Snapshot, from_file: _Snapshot | None) -> _Snapshot:
        """Inline data overridden by the file's (users and groups by name), memoised."""
        if from_file is None:
            return inline
        inputs = self._combined_from
        if inputs is None or inputs[0] is not inline or inputs[1] is not from_file:
            memberships = {u: list(g) for u, g in inline.memberships.items()}
            for user, names in from_file.memberships.items():
                memberships.setdefault(user, []).extend(names)
            self._combined = _Snapshot(
                {**inline.users, **from_file.users},
                {**inline.group_gids, **from_file.group_gids},
                {u: tuple(g) for u, g in memberships.items()},
            )
            self._combined_from = (inline, from_file)
        return self._combined

    async def check(self) -> str:
        inline = self._inline_snapshot()
        from_file = await self._file_snapshot()
        # every entry, as a spawn would read it: `nbspawner check` finds a broken one before
        # its user does (messages name the file or setting and the entry)
        snapshot = self._combine(inline, from_file)
        broken = []
        for username in snapshot.users:
            try:
                await self.lookup(username)
            except InvalidRecord as e:
                broken.append(e.log_message)
        if broken:
            shown = "; ".join(broken[:3]) + (
                f"; and {len(broken) - 3} more" if len(broken) > 3 else ""
            )
            raise DirectoryError(
                f"static: {len(broken)} of {len(snapshot.users)} users cannot be used: {shown}",
                reason="config",
            )
        if from_file is None:
            return f"static: {len(inline.users)} inline users"
        return f"static: {len(from_file.users)} users in {self.path}, {len(inline.users)} inline"
