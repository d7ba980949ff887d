"""LDAPDirectory: posixAccount/posixGroup lookups with ldap3, off the event loop.

ldap3 is synchronous, so every ldap3 call runs in a dedicated thread pool of ``pool_size``
workers. A lookup borrows an idle bound connection (or opens one when none is idle) and returns
it afterwards; a connection is used by one thread at a time and dropped after a failure. As at
most ``pool_size`` lookups run at once, there are never more than ``pool_size`` LDAP
connections, however many users spawn at once. ``connections_opened`` counts the connections
opened so far.

Failover is done here rather than with ldap3's ``ServerPool``: the pool's availability check
opens an extra socket per connection and, once every server has failed, sleeps
``POOLING_LOOP_TIMEOUT`` (10 s) inside the worker before giving up. Here a server that fails is
skipped for ``server_retry_seconds`` (unless every server has failed) and errors come back at
once.

Search filters are built from a template with the username escaped by
``ldap3.utils.conv.escape_filter_chars``; the entry found must carry the username in its
``username_attribute`` exactly, and exactly one entry must match (defence in depth against
filter injection and case-folding surprises).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import math
import os
import socket
import ssl
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from traitlets import Enum, Float, Int, List, Unicode, validate

from ..errors import ConfigError, DirectoryError, InvalidRecord, NBSpawnerError, UserNotFound
from ..ids import shown
from .base import (
    Directory,
    UserRecord,
    _single,
    group_fields,
    parse_int,
    parse_str,
    quoted_exc_info,
    read_secret,
    refuse_impossible_username,
)

try:
    import ldap3
    from ldap3.core import exceptions as ldap_exc
    from ldap3.utils.conv import escape_filter_chars
    from ldap3.utils.dn import parse_dn
except ImportError as _e:  # pragma: no cover - ldap3 ships with the z2jh hub image
    raise ImportError("LDAPDirectory needs ldap3: pip install ldap3") from _e

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


def _unescape_dn_value(value: str) -> str:
    r"""``Foo\, Bar`` -> ``Foo, Bar`` and ``\4A`` -> ``J`` (RFC 4514 escapes)."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        out.extend(c.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def group_name_from_dn(dn: str, name_attribute: str = "cn", base: str = "") -> str | None:
    """``cn=physics,ou=groups,dc=example,dc=org`` -> ``physics``.

    ``None`` when the DN cannot be parsed, its first RDN is not ``name_attribute``, or (when
    ``base`` is given) it does not lie under ``base``. Comparisons ignore case, as LDAP does.
    """
    try:
        parts = parse_dn(dn)
    except Exception:  # ldap3 raises LDAPInvalidDnError and sometimes plain errors
        return None
    if not parts or parts[0][0].lower() != name_attribute.lower():
        return None
    if base:
        try:
            base_parts = parse_dn(base)
        except Exception:
            return None
        if len(base_parts) >= len(parts):
            return None
        tail = parts[len(parts) - len(base_parts) :]
        for (a1, v1, _), (a2, v2, _) in zip(tail, base_parts, strict=True):
            if (
                a1.lower() != a2.lower()
                or _unescape_dn_value(v1).lower() != _unescape_dn_value(v2).lower()
            ):
                return None
    return _unescape_dn_value(parts[0][1]) or None


def build_filter(template: str, **values: str) -> str:
    """Fill an LDAP filter template; every value is escaped (RFC 4515)."""
    return template.format(**{k: escape_filter_chars(v) for k, v in values.items()})


class _Retryable(Exception):
    """A connection-level failure (the connection is unusable afterwards)."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class _IPAddressTls(ldap3.Tls):
    """ldap3's TLS for a server given by IP address (``ldaps://10.0.0.5``).

    ldap3 checks the certificate's names itself, with ``ssl.match_hostname`` where Python has
    it and else (Python 3.12+, e.g. z2jh 4.4.0's hub image) with its own backport, which
    accepts no IP address at all: every IP-addressed server would be refused there. For an IP
    address this class checks the certificate's IP subjectAltNames (RFC 6125: an IP address
    matches only an IP entry, never a DNS name or the common name) right after the handshake,
    before anything (a bind password) is sent, and tells ldap3 not to repeat the check.
    """

    def __init__(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address, **kwargs: Any) -> None:
        # "*" makes ldap3's own name check pass; ours below replaces it
        super().__init__(valid_names=["*"], **kwargs)
        self.ip = ip

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        super().wrap_socket(connection, do_handshake=do_handshake)
        sock = connection.socket
        if not do_handshake:
            sock.do_handshake()
        cert = sock.getpeercert() or {}
        names = [v for k, v in cert.get("subjectAltName", ()) if k == "IP Address"]
        for name in names:
            with contextlib.suppress(ValueError):
                if ipaddress.ip_address(name.strip()) == self.ip:
                    return
        with contextlib.suppress(OSError):
            sock.close()
        raise ldap_exc.LDAPCertificateError(
            f"certificate doesn't match {self.ip}: not among its IP addresses {names}"
        )


class LDAPDirectory(Directory):
    """Look users up in LDAP (OpenLDAP, 389-ds, FreeIPA, Active Directory with RFC 2307)."""

    name = "ldap"

    server_urls = List(
        Unicode(),
        config=True,
        help="""LDAP servers, tried in order (see LDAPDirectory.failover), e.g.
        ``["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"]``.""",
    )
    failover = Enum(
        ["first", "round_robin"],
        "first",
        config=True,
        help="""Which server a new connection tries first: always the first reachable one
        (``first``) or the next one in turn (``round_robin``).""",
    )
    server_retry_seconds = Float(
        30.0,
        config=True,
        help="""After a server fails, skip it for this many seconds (unless all servers
        failed, then all are tried again).""",
    )
    tls_mode = Enum(
        ["none", "starttls", "ldaps"],
        "starttls",
        config=True,
        help="""``ldaps`` (TLS from the first byte, port 636), ``starttls`` (upgrade a plain
        connection before binding) or ``none`` (plain text: the bind password crosses the
        network readable). Certificates are always verified.""",
    )
    ca_file = Unicode(
        "",
        config=True,
        help="""PEM file of the CA(s) that signed the LDAP servers' certificates. Empty: the
        system's trusted CAs.""",
    )
    bind_dn = Unicode(
        "",
        config=True,
        help="DN of the read-only service account. Empty: anonymous bind.",
    )
    bind_password_file = Unicode(
        "",
        config=True,
        help="""File holding the service account's password (e.g. a mounted Kubernetes
        Secret). Read when a connection is opened, so a rotated password is picked up.""",
    )
    bind_password_env = Unicode(
        "",
        config=True,
        help="""Name of an environment variable holding the service account's password
        (used when bind_password_file is empty).""",
    )
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
    uid_attribute = Unicode("uidNumber", config=True, help="Attribute holding the numeric uid.")
    gid_attribute = Unicode("gidNumber", config=True, help="Attribute holding the primary gid.")
    home_attribute = Unicode("homeDirectory", config=True, help="Attribute holding the home.")
    gecos_attribute = Unicode("gecos", config=True, help="Attribute holding the full name.")
    gecos_fallback_attribute = Unicode(
        "cn",
        config=True,
        help="Attribute used for the full name when gecos_attribute is absent. Empty: none.",
    )
    shell_attribute = Unicode(
        "loginShell", config=True, help="Attribute holding the login shell (default /bin/bash)."
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
    group_name_attribute = Unicode("cn", config=True, help="Attribute holding a group's name.")
    group_gid_attribute = Unicode("gidNumber", config=True, help="Attribute holding a group's gid.")
    group_membership_attribute = Unicode(
        "",
        config=True,
        help="""User attribute listing group DNs (``memberOf``). The group name is the DN's
        first RDN (group_name_attribute); with group_search_base set, only DNs under it count.
        Gids come from the group search, if any. Empty: not used.""",
    )
    pool_size = Int(
        4,
        config=True,
        help="""Number of LDAP connections (and worker threads) shared by all lookups.""",
    )
    connect_timeout = Float(
        5.0, config=True, help="Seconds to wait for a TCP connection to one LDAP server."
    )
    search_timeout = Float(
        10.0,
        config=True,
        help="""Seconds to wait for any one answer from the server (bind, StartTLS, search);
        also sent to the server as the search time limit. Rounded up to whole seconds.""",
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
        #: LDAP connections opened since start (for metrics, tests and the benchmark)
        self.connections_opened = 0
        self._lock = threading.Lock()
        #: every open connection, and the idle ones among them (guarded by _lock)
        self._connections: set[Any] = set()
        self._idle: list[Any] = []
        self._executor: ThreadPoolExecutor | None = None
        self._servers: list[Any] | None = None
        self._server_down_until: dict[int, float] = {}
        self._round_robin = itertools.count()
        self._attributes: list[str] | None = None

    # -- configuration ------------------------------------------------------------------------

    def _build_servers(self) -> list[Any]:
        if not self.server_urls:
            raise ConfigError("ldap: LDAPDirectory.server_urls is empty; set at least one URL")
        if not self.search_base:
            raise ConfigError("ldap: LDAPDirectory.search_base is empty; set where users live")
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
        servers = []
        for url in self.server_urls:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            if scheme not in ("ldap", "ldaps") or not parts.hostname:
                raise ConfigError(
                    f"ldap: {url!r} in LDAPDirectory.server_urls is not an ldap:// or ldaps:// URL"
                )
            if scheme == "ldaps" and self.tls_mode != "ldaps":
                raise ConfigError(
                    f"ldap: LDAPDirectory.server_urls has ldaps:// URLs but LDAPDirectory.tls_mode "
                    f"is {self.tls_mode!r}; set tls_mode to 'ldaps'"
                )
            use_ssl = self.tls_mode == "ldaps"
            tls = None
            if self.tls_mode != "none":
                if self.ca_file and not os.path.isfile(self.ca_file):
                    raise ConfigError(
                        f"ldap: LDAPDirectory.ca_file ({self.ca_file}) does not exist"
                    )
                try:
                    ip = ipaddress.ip_address(parts.hostname)
                    sni = None
                except ValueError:
                    ip = None
                    sni = parts.hostname
                if ip is not None:
                    tls = _IPAddressTls(
                        ip, validate=ssl.CERT_REQUIRED, ca_certs_file=self.ca_file or None
                    )
                else:
                    tls = ldap3.Tls(
                        validate=ssl.CERT_REQUIRED,
                        ca_certs_file=self.ca_file or None,
                        sni=sni,
                    )
            port = parts.port or (636 if use_ssl else 389)
            # keyword arguments for ldap3.Server: a new Server object is made for every
            # connection, because ldap3 remembers a failed address for several seconds and
            # would refuse to retry a server that has just come back
            servers.append(
                {
                    "host": parts.hostname,
                    "port": port,
                    "use_ssl": use_ssl,
                    "tls": tls,
                    "get_info": ldap3.NONE,
                    "connect_timeout": self.connect_timeout,
                }
            )
        if self.tls_mode == "none" and self.bind_dn:
            self.log.warning(
                "ldap: LDAPDirectory.tls_mode is 'none': the service account's password is sent "
                "unencrypted. Use 'ldaps' or 'starttls' outside of tests."
            )
        return servers

    def _get_servers(self) -> list[Any]:
        if self._servers is None:
            servers = self._build_servers()
            attrs = [
                self.username_attribute,
                self.uid_attribute,
                self.gid_attribute,
                self.home_attribute,
                self.gecos_attribute,
                self.gecos_fallback_attribute,
                self.shell_attribute,
                self.group_membership_attribute,
            ]
            self._attributes = sorted({a for a in attrs if a})
            self._servers = servers
        return self._servers

    def _password(self) -> str:
        # never logged, never kept on self: read each time a connection is opened
        password = read_secret(
            self.bind_password_file,
            self.bind_password_env,
            file_setting="LDAPDirectory.bind_password_file",
            env_setting="LDAPDirectory.bind_password_env",
            source="ldap",
        )
        if password is not None:
            return password
        if self.bind_dn:
            raise ConfigError(
                "ldap: LDAPDirectory.bind_dn is set but neither LDAPDirectory.bind_password_file "
                "nor LDAPDirectory.bind_password_env"
            )
        return ""

    # -- connections (worker threads only) -----------------------------------------------------

    @staticmethod
    def _describe(server: Any) -> str:
        return f"{'ldaps' if server.ssl else 'ldap'}://{server.host}:{server.port}"

    def _server_order(self, servers: list[Any]) -> list[int]:
        n = len(servers)
        start = next(self._round_robin) % n if self.failover == "round_robin" else 0
        order = [(start + i) % n for i in range(n)]
        now = time.monotonic()
        alive = [i for i in order if self._server_down_until.get(i, 0.0) <= now]
        # when every server is marked down, try them all again rather than fail at once
        return alive or order

    def _open(self) -> Any:
        """Open, secure and bind a new connection, failing over between servers."""
        servers = self._get_servers()
        problems: list[str] = []
        for index in self._server_order(servers):
            server = ldap3.Server(**servers[index])
            where = self._describe(server)
            conn = ldap3.Connection(
                server,
                user=self.bind_dn or None,
                password=self._password() or None,
                authentication=ldap3.SIMPLE if self.bind_dn else ldap3.ANONYMOUS,
                read_only=True,
                raise_exceptions=False,
                auto_referrals=False,
                # ldap3 packs this into SO_RCVTIMEO as an integer: whole seconds only
                receive_timeout=max(1, math.ceil(self.search_timeout)),
                client_strategy=ldap3.SYNC,
            )
            try:
                conn.open()
                with self._lock:
                    self.connections_opened += 1
                # LDAP is request/response: without TCP_NODELAY the first request after a TLS
                # handshake waits ~40 ms for Nagle + delayed ACK (measured against slapd)
                with contextlib.suppress(OSError, AttributeError):
                    conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.tls_mode == "starttls":
                    conn.start_tls()
                bound = conn.bind()
            except (ldap_exc.LDAPStartTLSError, ldap_exc.LDAPCertificateError) as e:
                problems.append(f"{where}: TLS failed ({self._tls_reason(e)})")
                self._mark_down(index, conn)
                continue
            except Exception as e:  # ldap3 lets some socket/struct errors through unwrapped
                text = str(e)
                if self._looks_like_tls(text):
                    problems.append(f"{where}: TLS failed ({self._tls_reason(e)})")
                elif "timed out" in text:
                    problems.append(f"{where}: timed out")
                else:
                    problems.append(f"{where}: cannot connect ({type(e).__name__})")
                self._mark_down(index, conn)
                continue
            if not bound:
                result = conn.result or {}
                self._safe_unbind(conn)
                code = result.get("result")
                desc = result.get("description", "bind failed")
                if code == 49:
                    hint = (
                        "Are LDAPDirectory.bind_dn and the password in "
                        "LDAPDirectory.bind_password_file/bind_password_env correct?"
                    )
                else:
                    hint = "Is LDAPDirectory.bind_dn correct?"
                # a refused bind is a configuration problem: trying another server won't help
                raise DirectoryError(
                    f"ldap: bind to {where} as {self.bind_dn or 'anonymous'} "
                    f"failed ({desc}). {hint}"
                )
            self._server_down_until.pop(index, None)
            with self._lock:
                self._connections.add(conn)
            return conn
        tls = any("TLS failed" in p for p in problems)
        hint = (
            "Is LDAPDirectory.ca_file the CA that signed the servers' certificates, and does each "
            "certificate name the host used in LDAPDirectory.server_urls?"
            if tls
            else "Is LDAPDirectory.server_urls correct and the server reachable from the hub?"
        )
        raise DirectoryError(
            "ldap: no LDAP server could be used (" + "; ".join(problems) + "). " + hint,
            reason="directory_tls" if tls else None,
        )

    @staticmethod
    def _looks_like_tls(text: str) -> bool:
        lowered = text.lower()
        return any(k in lowered for k in ("ssl", "tls", "certificate", "handshake"))

    @staticmethod
    def _tls_reason(e: Exception) -> str:
        lowered = str(e).lower()
        if "certificate verify failed" in lowered or "unable to get local issuer" in lowered:
            return "certificate not trusted"
        if "doesn't match" in lowered or "hostname" in lowered:
            return "certificate does not name this host"
        if "wrong version" in lowered or "unknown protocol" in lowered:
            return "server does not speak TLS here"
        return type(e).__name__

    def _mark_down(self, index: int, conn: Any) -> None:
        self._server_down_until[index] = time.monotonic() + self.server_retry_seconds
        self._safe_unbind(conn)

    def _safe_unbind(self, conn: Any) -> None:
        with self._lock:
            self._connections.discard(conn)
        try:
            conn.unbind()
        except Exception:  # noqa: S110 - the connection is broken already; nothing to do
            pass

    def _acquire(self) -> tuple[Any, bool]:
        """An idle connection (most recently used first) or a new one; ``(conn, fresh)``.

        At most ``pool_size`` worker threads hold a connection at a time, and a new one is only
        opened when none is idle, so there are never more than ``pool_size`` connections; under
        light load the same one or two are reused.
        """
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, False
                self._connections.discard(conn)
        return self._open(), True

    def _release(self, conn: Any) -> None:
        with self._lock:
            if conn in self._connections:  # not closed by close() meanwhile
                self._idle.append(conn)

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._safe_unbind(conn)

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
            raise _Retryable(type(e).__name__, "timed out" in str(e)) from None
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

    def _lookup_blocking(self, username: str) -> UserRecord:
        conn, fresh = self._acquire()
        try:
            return self._lookup_with(conn, username)
        except _Retryable as e:
            # A reused connection may simply be stale (server restarted, idle timeout): retry
            # once on a new one. Not after a timeout, which would double the wait.
            if fresh or e.timed_out:
                raise self._connection_lost(e) from None
            self._discard_idle()  # they went stale together
        try:
            return self._lookup_with(self._open(), username)
        except _Retryable as e:
            raise self._connection_lost(e) from None

    def _lookup_with(self, conn: Any, username: str) -> UserRecord:
        """Look up on ``conn``, then return it to the pool, or drop it if it may be broken."""
        try:
            record = self._lookup_on(conn, username)
        except NBSpawnerError:
            self._release(conn)  # an answer (not found, malformed...): the connection is fine
            raise
        except BaseException:
            self._safe_unbind(conn)  # _Retryable or anything unexpected: state unknown
            raise
        self._release(conn)
        return record

    def _connection_lost(self, e: _Retryable) -> DirectoryError:
        if e.timed_out:
            return DirectoryError(
                f"ldap: the LDAP server did not answer within LDAPDirectory.search_timeout "
                f"({self.search_timeout:g}s). Is the server overloaded, or the timeout too short?"
            )
        return DirectoryError(
            f"ldap: the connection to the LDAP server failed ({e}). "
            "Is LDAPDirectory.server_urls correct and the server running?"
        )

    def _lookup_on(self, conn: Any, username: str) -> UserRecord:
        src = self.name
        assert self._attributes is not None
        entries = self._search(
            conn,
            self.search_base,
            build_filter(self.search_filter, username=username),
            self._attributes,
            size_limit=2,
        )
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
                source=src,
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
                source=src,
            )

        def get(attr: str) -> list[bytes] | None:
            return attrs.get(attr.lower()) if attr else None

        uid = parse_int(get(self.uid_attribute), "uid", src)
        gid = parse_int(get(self.gid_attribute), "gid", src)
        home = parse_str(get(self.home_attribute), "home", src)
        gecos_raw = get(self.gecos_attribute) or get(self.gecos_fallback_attribute)
        if gecos_raw and len(gecos_raw) > 1:
            gecos_raw = gecos_raw[:1]  # several cn values are common; the first is the name
        gecos = parse_str(gecos_raw, "gecos", src, required=False)
        shell = parse_str(get(self.shell_attribute), "shell", src, required=False) or "/bin/bash"
        names_found, group_gids = self._groups(conn, username, dn, gid, attrs)
        return UserRecord(
            username=username,
            uid=uid,
            gid=gid,
            home=home,
            gecos=gecos,
            shell=shell,
            source=src,
            **group_fields(gid, names_found, group_gids),
        )

    def _groups(
        self, conn: Any, username: str, dn: str, gid: int, attrs: Mapping[str, list[bytes]]
    ) -> tuple[list[str], dict[str, int]]:
        src = self.name
        names: list[str] = []
        gids: dict[str, int] = {}
        if self.group_membership_attribute:
            for raw in attrs.get(self.group_membership_attribute.lower(), []):
                value = _single([raw], "groups", src)
                name = group_name_from_dn(value, self.group_name_attribute, self.group_search_base)
                if name:
                    names.append(name)
        if self.group_search_base:
            parts = []
            if self.group_filter:
                parts.append(build_filter(self.group_filter, username=username, user_dn=dn))
            if self.primary_group_filter:
                parts.append(build_filter(self.primary_group_filter, gid=str(gid)))
            if parts:
                query = parts[0] if len(parts) == 1 else "(|" + "".join(parts) + ")"
                found = self._search(
                    conn,
                    self.group_search_base,
                    query,
                    [self.group_name_attribute, self.group_gid_attribute],
                    size_limit=0,
                )
                for _group_dn, group_attrs in found:
                    name = parse_str(
                        group_attrs.get(self.group_name_attribute.lower()), "groups", src
                    )
                    group_gid = parse_int(
                        group_attrs.get(self.group_gid_attribute.lower()), "posix_groups", src
                    )
                    names.append(name)
                    gids[name] = group_gid
        return names, gids

    # -- the contract -------------------------------------------------------------------------

    def _get_executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._get_servers()  # configuration errors surface on the caller, not in a thread
            self._executor = ThreadPoolExecutor(
                max_workers=self.pool_size, thread_name_prefix="nbspawner-ldap"
            )
        return self._executor

    async def _run(self, func: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._get_executor(), func, *args)
        # a timer instead of asyncio.wait_for, which costs an extra task per lookup: in a spawn
        # storm that is event-loop time every other request of the hub waits for
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            future.cancel()  # a lookup still queued for a connection is dropped

        timer = loop.call_later(self.lookup_timeout, expire)
        try:
            return await future
        except NBSpawnerError:
            raise
        except asyncio.CancelledError:
            if not expired:
                raise
            raise DirectoryError(
                f"ldap: no answer within LDAPDirectory.lookup_timeout ({self.lookup_timeout:g}s); "
                "the LDAP servers are slow or LDAPDirectory.pool_size is too small for the load"
            ) from None
        except Exception as e:
            # fail closed on anything unexpected, with the type for the admin (not the text:
            # ldap3 messages can quote server data)
            self.log.debug("ldap: unexpected error: %s", shown(e, 300), exc_info=quoted_exc_info(e))
            raise DirectoryError(f"ldap: unexpected error ({type(e).__name__})") from None
        finally:
            timer.cancel()

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        refuse_impossible_username(username, self.name)
        return await self._run(self._lookup_blocking, username)

    def _check_blocking(self) -> str:
        conn = self._open()
        try:
            where = self._describe(conn.server)
            conn.search(
                self.search_base, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["1.1"]
            )
            if not conn.response or (conn.result or {}).get("result") != 0:
                raise DirectoryError(
                    f"ldap: {where} answered, but LDAPDirectory.search_base ({self.search_base}) "
                    "cannot be read. Is it correct, and may LDAPDirectory.bind_dn read it?"
                )
        finally:
            self._safe_unbind(conn)
        return (
            f"ldap: {where} ({self.tls_mode}) bound as {self.bind_dn or 'anonymous'}, "
            f"search base {self.search_base} readable"
        )

    async def check(self) -> str:
        return await self._run(self._check_blocking)

    def _close_blocking(self) -> None:
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
            self._idle.clear()
        for conn in connections:
            try:
                conn.unbind()
            except Exception:  # noqa: S110 - best effort at shutdown
                pass

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        # worker threads drop their (now closed) connections and reopen on the next lookup
        await asyncio.to_thread(self._close_blocking)
