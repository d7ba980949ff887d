"""LDAPDirectory: posixAccount/posixGroup lookups with ldap3, off the event loop.

What to ask (this module: search settings, filters, entry -> record values) is kept apart from
how to reach the servers (:mod:`~nbspawner.directory.ldap_servers`: TLS, bind, failover) and
how connections are shared (:mod:`~nbspawner.directory.ldap_pool`: threads, timeouts).

Search filters are built from a template with the username escaped by
``ldap3.utils.conv.escape_filter_chars``; the entry found must carry the username in its
``username_attribute`` exactly, and exactly one entry must match (defence in depth against
filter injection and case-folding surprises).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Float, Int, Unicode, validate

from ..errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from ..ids import shown
from .ldap_entry import LDAPAttributes, group_name_from_dn
from .ldap_pool import ConnectionLost, LDAPPool
from .ldap_servers import LDAPServers, describe, unbind_quietly
from .mapped import MappedDirectory
from .values import parse_int, parse_str

try:
    import ldap3
    from ldap3.core import exceptions as ldap_exc
    from ldap3.utils.conv import escape_filter_chars
except ImportError as _e:  # pragma: no cover - ldap3 ships with the z2jh hub image
    raise ImportError("LDAPDirectory needs ldap3: pip install ldap3") from _e

__all__ = ["LDAPDirectory", "build_filter", "group_name_from_dn"]

#: LDAP result codes worth naming in admin messages
_RESULT_HINTS = {
    32: "LDAPDirectory.search_base does not exist (noSuchObject). Is LDAPDirectory.search_base "
    "correct?",
    50: "the service account may not search there (insufficientAccessRights). Does "
    "LDAPDirectory.bind_dn have read access to LDAPDirectory.search_base?",
    3: "the server's time limit was exceeded. Is LDAPDirectory.search_timeout large enough?",
    51: "the server is busy",
    52: "the server is unavailable",
    53: "the server is unwilling to perform the search",
}


def build_filter(template: str, **values: str) -> str:
    """Fill an LDAP filter template; every value is escaped (RFC 4515)."""
    return template.format(**{k: escape_filter_chars(v) for k, v in values.items()})


class LDAPDirectory(LDAPAttributes, LDAPServers, MappedDirectory):
    """Look users up in LDAP (OpenLDAP, 389-ds, FreeIPA, Active Directory with RFC 2307)."""

    name = "ldap"

    search_base = Unicode(
        "", config=True, help="Where users live, e.g. ``ou=people,dc=example,dc=org``."
    )
    search_filter = Unicode(
        "(&(objectClass=posixAccount)(uid={username}))",
        config=True,
        help="""Filter finding one user; ``{username}`` is replaced by the escaped username.""",
    )
    username_attribute = Unicode(
        "uid",
        config=True,
        help="""Attribute holding the username. The entry found must carry the hub username
        in it exactly (case included).""",
    )
    group_search_base = Unicode(
        "",
        config=True,
        help="""Where groups live, e.g. ``ou=groups,dc=example,dc=org``. Empty: no group
        search (only group_membership_attribute, if set).""",
    )
    group_filter = Unicode(
        "(&(objectClass=posixGroup)(memberUid={username}))",
        config=True,
        help="""Filter finding the user's groups; ``{username}`` and ``{user_dn}`` are replaced
        (escaped). For groupOfNames-style groups: ``(&(objectClass=posixGroup)(member={user_dn}))``.
        Empty: only the primary group is searched.""",
    )
    primary_group_filter = Unicode(
        "(&(objectClass=posixGroup)(gidNumber={gid}))",
        config=True,
        help="""Filter finding the primary group (to learn its name); ``{gid}`` is replaced.
        Searched together with group_filter in one request. Empty: not searched.""",
    )
    group_gid_attribute = Unicode("gidNumber", config=True, help="Attribute holding a group's gid.")
    pool_size = Int(
        4,
        config=True,
        help="""Number of LDAP connections (and worker threads) shared by all lookups.""",
    )
    lookup_timeout = Float(
        30.0,
        config=True,
        help="""Upper bound for one lookup as the spawner sees it, including waiting for a free
        connection when many users spawn at once.""",
    )

    @validate("pool_size")
    def _valid_pool_size(self, proposal: Any) -> int:
        value = proposal["value"]
        if not 1 <= value <= 64:
            raise ConfigError("LDAPDirectory.pool_size must be between 1 and 64")
        return value

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pool: LDAPPool | None = None

    def pool(self) -> LDAPPool:
        """The connection pool, made at first use; configuration errors surface here, on the
        caller, not in a worker thread."""
        if self._pool is None:
            if not self.search_base:
                raise ConfigError("ldap: LDAPDirectory.search_base is empty; set where users live")
            self._check_templates()
            self.servers()
            self._pool = LDAPPool(
                self.open_connection, self.pool_size, self.lookup_timeout, self.log
            )
        return self._pool

    def _check_templates(self) -> None:
        for name, template, keys in (
            ("search_filter", self.search_filter, {"username": "x"}),
            ("group_filter", self.group_filter, {"username": "x", "user_dn": "x"}),
            ("primary_group_filter", self.primary_group_filter, {"gid": "1"}),
        ):
            try:
                template.format(**keys)
            except (KeyError, IndexError, ValueError):
                raise ConfigError(
                    f"ldap: LDAPDirectory.{name} is not a valid template; it may only use "
                    + ", ".join(f"{{{k}}}" for k in keys)
                    + " (double other braces)"
                ) from None
        if "{username}" not in self.search_filter:
            raise ConfigError("ldap: LDAPDirectory.search_filter must contain {username}")

    # -- searching (worker threads only) -------------------------------------------------------

    def _search(
        self, conn: Any, base: str, search_filter: str, attributes: list[str], size_limit: int
    ) -> list[tuple[str, dict[str, list[bytes]]]]:
        """Run one search; return ``[(dn, {lowercased attribute: [raw values]})]``."""
        try:
            conn.search(
                base,
                search_filter,
                search_scope=ldap3.SUBTREE,
                attributes=attributes,
                size_limit=size_limit,
                time_limit=max(1, int(self.search_timeout + 0.999)),
            )
        except ldap_exc.LDAPCommunicationError as e:
            raise ConnectionLost(type(e).__name__, "timed out" in str(e)) from None
        except ldap_exc.LDAPInvalidFilterError:
            raise ConfigError(
                f"ldap: the filter for a search under {base} is not valid LDAP filter syntax. "
                "Check LDAPDirectory.search_filter, group_filter and primary_group_filter"
            ) from None
        except ldap_exc.LDAPException as e:
            raise DirectoryError(f"ldap: search failed ({type(e).__name__})") from None
        result = conn.result or {}
        code = result.get("result", 0)
        if code not in (0, 4):  # 4: sizeLimitExceeded, expected when the filter is ambiguous
            hint = _RESULT_HINTS.get(code, "")
            raise DirectoryError(
                f"ldap: search under {base} failed: {result.get('description', code)}. "
                f"{hint}".strip()
            )
        entries = []
        for item in conn.response or ():
            if item.get("type") != "searchResEntry":
                continue
            raw = item.get("raw_attributes") or {}
            entries.append((item.get("dn", ""), {k.lower(): list(v) for k, v in raw.items()}))
        return entries

    def _fetch_on(self, conn: Any, username: str) -> dict[str, Any]:
        attributes = sorted({*self.entry_attributes(), self.username_attribute})
        query = build_filter(self.search_filter, username=username)
        entries = self._search(conn, self.search_base, query, attributes, size_limit=2)
        if not entries:
            raise UserNotFound(
                f"ldap: no entry matches {username!r} under LDAPDirectory.search_base"
            )
        if len(entries) > 1:
            raise InvalidRecord(
                f"ldap: LDAPDirectory.search_filter is ambiguous for {username!r} "
                "(more than one entry matches); refusing",
                field="username",
                kind="ambiguous",
                source=self.name,
            )
        dn, attrs = entries[0]
        names = [
            v.decode("utf-8", "replace") for v in attrs.get(self.username_attribute.lower(), [])
        ]
        if username not in names:
            raise InvalidRecord(
                f"ldap: the entry found for {username!r} does not carry that exact name in "
                f"{self.username_attribute} (case or spelling differs). "
                "Check LDAPDirectory.search_filter and username_attribute",
                field="username",
                kind="does not match the hub username",
                source=self.name,
            )
        found = self.entry_values(attrs, self.group_search_base)
        found["group_gids"] = {}
        try:
            gid = parse_int(found["gid"], "gid", self.name)
        except InvalidRecord:
            gid = None  # refused by to_record, which names the entry
        if self.group_search_base and gid is not None:
            for name, group_gid in self._groups(conn, username, dn, gid):
                found["groups"].append(name)
                found["group_gids"][name] = group_gid
        return {**found, "where": f"entry {shown(dn, 200)}"}

    def _groups(self, conn: Any, username: str, dn: str, gid: int) -> list[tuple[str, int]]:
        """``(name, gid)`` of the user's groups and primary group, in one search."""
        parts = []
        if self.group_filter:
            parts.append(build_filter(self.group_filter, username=username, user_dn=dn))
        if self.primary_group_filter:
            parts.append(build_filter(self.primary_group_filter, gid=str(gid)))
        if not parts:
            return []
        query = parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"
        attributes = [self.group_name_attribute, self.group_gid_attribute]
        found = self._search(conn, self.group_search_base, query, attributes, size_limit=0)
        return [
            (
                parse_str(attrs.get(self.group_name_attribute.lower()), "groups", self.name),
                parse_int(attrs.get(self.group_gid_attribute.lower()), "posix_groups", self.name),
            )
            for _group_dn, attrs in found
        ]

    def _fetch_blocking(self, username: str) -> dict[str, Any]:
        try:
            return self.pool().with_connection(lambda conn: self._fetch_on(conn, username))
        except ConnectionLost as e:
            if e.timed_out:
                raise DirectoryError(
                    f"ldap: the LDAP server did not answer within LDAPDirectory.search_timeout "
                    f"({self.search_timeout:g}s). Is the server overloaded, or the timeout too "
                    "short?"
                ) from None
            raise DirectoryError(
                f"ldap: the connection to the LDAP server failed ({e}). "
                "Is LDAPDirectory.server_urls correct and the server running?"
            ) from None

    # -- the contract -------------------------------------------------------------------------

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> dict[str, Any]:
        return await self.pool().run(self._fetch_blocking, username)

    def _check_blocking(self) -> str:
        conn = self.open_connection()
        try:
            where = describe(conn.server)
            conn.search(
                self.search_base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"]
            )
            if not conn.response or (conn.result or {}).get("result") != 0:
                raise DirectoryError(
                    f"ldap: {where} answered, but LDAPDirectory.search_base ({self.search_base}) "
                    "cannot be read. Is it correct, and may LDAPDirectory.bind_dn read it?"
                )
        finally:
            unbind_quietly(conn)
        return (
            f"ldap: {where} ({self.tls_mode}) bound as {self.bind_dn or 'anonymous'}, "
            f"search base {self.search_base} readable"
        )

    async def check(self) -> str:
        return await self.pool().run(self._check_blocking)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
