"""The directory contract: one record type and one async method.

A backend subclasses :class:`Directory` and implements :meth:`Directory.lookup`.
It returns a :class:`UserRecord` with *typed* values (ints are ints) or raises

- :class:`~nbspawner.errors.UserNotFound` when the directory does not know the user,
- :class:`~nbspawner.errors.InvalidRecord` when an attribute is missing or malformed
  (``"abc"`` for a uidNumber is a refusal, not a crash),
- :class:`~nbspawner.errors.DirectoryError` when the directory cannot be asked
  (down, timeout, TLS failure).

Backends never decide policy (minimum uid, allowed home roots): that is
:func:`nbspawner.policy.validate_record`'s job, applied to every record from every backend.
Blocking client libraries (ldap3) must run off the event loop.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from traitlets.config import LoggingConfigurable

from ..errors import InvalidRecord
from ..ids import id_problem
from ..yamlload import SpelledInt


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


class Directory(LoggingConfigurable):
    """Base class of directory backends.

    Subclasses set :attr:`name` and implement :meth:`lookup`. Configuration is traitlets
    (``c.LDAPDirectory.server_urls = [...]``), so everything is reachable from z2jh's
    ``hub.config``. One instance is shared by all spawners of a hub (it may hold a
    connection pool), so ``lookup`` must be safe to call concurrently.
    """

    #: short name used in logs, metrics and ``UserRecord.source``
    name = "directory"

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        """Return the record for ``username``.

        ``auth_state`` is the authenticator's auth_state for this user (``None`` when auth state
        is disabled or the user has none); claim-based backends read it, others ignore it.
        """
        raise NotImplementedError

    async def check(self) -> str:
        """Check connectivity for ``nbspawner check``; return a one-line description.

        Raise :class:`~nbspawner.errors.DirectoryError` with an actionable message on failure.
        """
        return f"{self.name}: nothing to check"

    async def close(self) -> None:
        """Release connections. Called when the hub shuts down and in tests."""

    def configured_group_gids(self) -> dict[str, int]:
        """The backend's ``group_gids`` setting (group name -> gid for directories that name
        groups without numbers), each gid checked like a directory value."""
        setting = f"{type(self).__name__}.group_gids"
        return {
            str(k): parse_int(v, setting, self.name)
            for k, v in getattr(self, "group_gids", {}).items()
        }


# ---------------------------------------------------------------------------
# Helpers every backend uses to turn raw attribute values into typed fields.
# They raise InvalidRecord naming the field and the *kind* of problem, never the value.
# ---------------------------------------------------------------------------


def _single(value: Any, field_name: str, source: str) -> Any:
    """Unwrap single-element lists (LDAP and ldapauthenticator return lists)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} has {len(value)} values, expected exactly 1",
                field=field_name,
                kind="multi-valued" if value else "missing",
                source=source,
            )
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} is not valid UTF-8",
                field=field_name,
                kind="not utf-8",
                source=source,
            ) from None
    return value


def parse_int(value: Any, field_name: str, source: str) -> int:
    """``"1234"``, ``1234``, ``["1234"]`` -> 1234; anything else is an InvalidRecord.

    An id is taken exactly as written (:func:`nbspawner.ids.id_problem`): leading zeros, YAML's
    octal/base-60 spellings, signs, underscores, floats, booleans and non-ASCII digits are
    refused, never reinterpreted.
    """
    if value is None:
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is missing",
            field=field_name,
            kind="missing",
            source=source,
        )
    value = _single(value, field_name, source)
    problem = id_problem(value)
    if problem is None:
        return int(value)
    raise InvalidRecord(
        f"{source}: {field_name}: {problem}",
        field=field_name,
        kind=_id_kind(value),
        source=source,
    )


def _id_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, SpelledInt):
        return "not plain decimal"
    if isinstance(value, (str, int)):
        return "not an integer"
    return f"a {type(value).__name__}, not an integer"


def parse_str(value: Any, field_name: str, source: str, *, required: bool = True) -> str:
    if value is None or value == [] or value == "":
        if required:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} is missing",
                field=field_name,
                kind="missing",
                source=source,
            )
        return ""
    value = _single(value, field_name, source)
    if not isinstance(value, str):
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is a {type(value).__name__}, not a string",
            field=field_name,
            kind=f"a {type(value).__name__}",
            source=source,
        )
    return value


def parse_str_list(value: Any, field_name: str, source: str) -> tuple[str, ...]:
    """A list of strings (or one string, or nothing) -> tuple of strings."""
    if value is None:
        return ()
    if isinstance(value, (str, bytes)):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is not a list",
            field=field_name,
            kind="not a list",
            source=source,
        )
    return tuple(parse_str(v, field_name, source) for v in value)


def parse_int_list(value: Any, field_name: str, source: str) -> tuple[int, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, bytes, int)):
        value = [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is not a list",
            field=field_name,
            kind="not a list",
            source=source,
        )
    return tuple(parse_int([v], field_name, source) for v in value)


def get_path(data: Mapping[str, Any] | None, path: str) -> Any:
    """Read ``a.b.c`` from nested dicts; ``None`` when any step is missing.

    A key that itself contains dots can be read by giving the exact key (tried first).
    """
    if data is None:
        return None
    if path in data:
        return data[path]
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return None
    return current


def group_fields(
    gid: int,
    groups: Iterable[str],
    group_gids: Mapping[str, int],
    supplemental_gids: Any = None,
    *,
    source: str = "directory",
) -> dict[str, Any]:
    """The group fields of a :class:`UserRecord`, built the same way by every backend.

    - ``groups``: the names given plus the primary group's name when ``group_gids`` knows a
      group with gid ``gid`` (as ``id`` shows it), sorted and de-duplicated;
    - ``posix_groups``: ``(name, gid)`` of those names whose gid is known, sorted by name;
    - ``supplemental_gids``: the explicit list when given (as the backend read it: parsed and
      validated here, errors naming ``source``), otherwise the known gids of the groups other
      than the primary one; sorted and de-duplicated.

    Sorting makes records from different backends (and LDAP's arbitrary result order) compare
    equal, so the cache and the tests see one canonical form.
    """
    names = set(groups)
    names.update(name for name, group_gid in group_gids.items() if group_gid == gid)
    ordered = tuple(sorted(names))
    posix = tuple((name, group_gids[name]) for name in ordered if name in group_gids)
    if supplemental_gids is None:
        supplemental = tuple(sorted({g for _, g in posix if g != gid}))
    else:
        explicit = parse_int_list(supplemental_gids, "supplemental_gids", source)
        supplemental = tuple(sorted(set(explicit)))
    return {"groups": ordered, "supplemental_gids": supplemental, "posix_groups": posix}


#: characters no directory username can contain; refused before any query is sent
#: control characters (C0, DEL, C1) and the Unicode line and paragraph separators
_IMPOSSIBLE_USERNAME_CHARS = frozenset(
    [chr(c) for c in range(0x20)] + [chr(c) for c in range(0x7F, 0xA0)] + ["\u2028", "\u2029"]
)
#: names that are path segments with a meaning of their own: sent in a URL (HTTPDirectory),
#: a server or proxy would normalise them into another path, bearer token included
_IMPOSSIBLE_USERNAMES = frozenset({".", ".."})


def refuse_impossible_username(username: str, source: str, max_length: int = 256) -> None:
    """Raise UserNotFound for names that cannot exist: empty, longer than ``max_length``, with
    a control character or line separator, or the path segments ``.`` and ``..``.

    Backends that send the name somewhere (an LDAP filter, a URL) call this first, so such
    names never reach the directory, and no request (with its credentials) is sent for them.
    The name itself is not logged (it may be hostile).
    """
    from ..errors import UserNotFound

    if (
        not isinstance(username, str)
        or not username
        or len(username) > max_length
        or username in _IMPOSSIBLE_USERNAMES
        or any(c in _IMPOSSIBLE_USERNAME_CHARS for c in username)
    ):
        raise UserNotFound(
            f"{source}: username is empty, too long, '.' or '..', or contains control "
            "characters; it was not looked up",
            reason="not_found",
        )


def read_secret(
    file_path: str,
    env_name: str,
    *,
    file_setting: str,
    env_setting: str,
    source: str,
    strip_all: bool = False,
) -> str | None:
    """A password or token from a file (preferred) or an environment variable.

    Read each time it is needed (a rotated Secret is picked up) and never kept or logged; errors
    name the *setting*, never the value. The trailing newline of a file is dropped (``strip_all``:
    all surrounding whitespace, for tokens). ``None`` when neither setting is set.
    """
    import os

    from ..errors import ConfigError

    if file_path:
        try:
            with open(file_path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(
                f"{source}: {file_setting} ({file_path}) cannot be read: {e.strerror}"
            ) from None
        return text.strip() if strip_all else text.rstrip("\r\n")
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(
                f"{source}: environment variable {env_name} ({env_setting}) is not set"
            )
        return value.strip() if strip_all else value
    return None
