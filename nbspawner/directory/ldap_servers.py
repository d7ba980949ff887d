"""How nbspawner reaches an LDAP server: the server list, TLS, the bind, failover.

Failover is done here rather than with ldap3's ``ServerPool``: the pool's availability check
opens an extra socket per connection and, once every server has failed, sleeps
``POOLING_LOOP_TIMEOUT`` (10 s) inside the worker before giving up. Here a server that fails is
skipped for ``server_retry_seconds`` (unless every server has failed) and errors come back at
once. Certificates are always verified; the bind password is read when a connection is opened
and never kept or logged.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import math
import os
import socket
import ssl
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from traitlets import Enum, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import ConfigError, DirectoryError
from .values import read_secret

try:
    import ldap3
    from ldap3.core import exceptions as ldap_exc
except ImportError as _e:  # pragma: no cover - ldap3 ships with the z2jh hub image
    raise ImportError("LDAPDirectory needs ldap3: pip install ldap3") from _e


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


def _tls_reason(e: Exception) -> str:
    lowered = str(e).lower()
    if "certificate verify failed" in lowered or "unable to get local issuer" in lowered:
        return "certificate not trusted"
    if "doesn't match" in lowered or "hostname" in lowered:
        return "certificate does not name this host"
    if "wrong version" in lowered or "unknown protocol" in lowered:
        return "server does not speak TLS here"
    return type(e).__name__


def _looks_like_tls(text: str) -> bool:
    lowered = text.lower()
    return any(k in lowered for k in ("ssl", "tls", "certificate", "handshake"))


def unbind_quietly(conn: Any) -> None:
    try:
        conn.unbind()
    except Exception:  # noqa: S110 - the connection is broken or closing already
        pass


def describe(server: Any) -> str:
    return f"{'ldaps' if server.ssl else 'ldap'}://{server.host}:{server.port}"


class LDAPServers(LoggingConfigurable):
    """The servers of an LDAP directory and how a connection to one of them is opened."""

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
    connect_timeout = Float(
        5.0, config=True, help="Seconds to wait for a TCP connection to one LDAP server."
    )
    search_timeout = Float(
        10.0,
        config=True,
        help="""Seconds to wait for any one answer from the server (bind, StartTLS, search);
        also sent to the server as the search time limit. Rounded up to whole seconds.""",
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: LDAP connections opened since start (for metrics, tests and the benchmark)
        self.connections_opened = 0
        self._opened_lock = threading.Lock()
        self._servers: list[dict[str, Any]] | None = None
        self._server_down_until: dict[int, float] = {}
        self._round_robin = itertools.count()

    def servers(self) -> list[dict[str, Any]]:
        """Keyword arguments of ``ldap3.Server`` for each URL, checked once.

        A new Server object is made for every connection, because ldap3 remembers a failed
        address for several seconds and would refuse to retry a server that has just come back.
        """
        if self._servers is None:
            self._servers = [self._server(url) for url in self._checked_urls()]
            if self.tls_mode == "none" and self.bind_dn:
                self.log.warning(
                    "ldap: LDAPDirectory.tls_mode is 'none': the service account's password is "
                    "sent unencrypted. Use 'ldaps' or 'starttls' outside of tests."
                )
        return self._servers

    def _checked_urls(self) -> list[Any]:
        if not self.server_urls:
            raise ConfigError("ldap: LDAPDirectory.server_urls is empty; set at least one URL")
        if self.tls_mode != "none" and self.ca_file and not os.path.isfile(self.ca_file):
            raise ConfigError(f"ldap: LDAPDirectory.ca_file ({self.ca_file}) does not exist")
        urls = []
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
            urls.append(parts)
        return urls

    def _server(self, parts: Any) -> dict[str, Any]:
        use_ssl = self.tls_mode == "ldaps"
        tls = None
        if self.tls_mode != "none":
            ca = self.ca_file or None
            try:
                ip = ipaddress.ip_address(parts.hostname)
            except ValueError:
                tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=ca, sni=parts.hostname)
            else:
                tls = _IPAddressTls(ip, validate=ssl.CERT_REQUIRED, ca_certs_file=ca)
        return {
            "host": parts.hostname,
            "port": parts.port or (636 if use_ssl else 389),
            "use_ssl": use_ssl,
            "tls": tls,
            "get_info": ldap3.NONE,
            "connect_timeout": self.connect_timeout,
        }

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

    def _server_order(self, count: int) -> list[int]:
        start = next(self._round_robin) % count if self.failover == "round_robin" else 0
        order = [(start + i) % count for i in range(count)]
        now = time.monotonic()
        alive = [i for i in order if self._server_down_until.get(i, 0.0) <= now]
        # when every server is marked down, try them all again rather than fail at once
        return alive or order

    def open_connection(self) -> Any:
        """Open, secure and bind a new connection, failing over between servers (blocking)."""
        servers = self.servers()
        problems: list[str] = []
        for index in self._server_order(len(servers)):
            server = ldap3.Server(**servers[index])
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
            problem = self._bind(conn)
            if problem is None:
                self._server_down_until.pop(index, None)
                return conn
            problems.append(f"{describe(server)}: {problem}")
            self._server_down_until[index] = time.monotonic() + self.server_retry_seconds
            unbind_quietly(conn)
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

    def _bind(self, conn: Any) -> str | None:
        """Connect, secure and bind ``conn``; ``None``, or why this server cannot be used.

        A bind the server refuses is a configuration problem (trying another server won't
        help), raised at once.
        """
        try:
            conn.open()
            with self._opened_lock:
                self.connections_opened += 1
            # LDAP is request/response: without TCP_NODELAY the first request after a TLS
            # handshake waits ~40 ms for Nagle + delayed ACK (measured against slapd)
            with contextlib.suppress(OSError, AttributeError):
                conn.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls_mode == "starttls":
                conn.start_tls()
            bound = conn.bind()
        except (ldap_exc.LDAPStartTLSError, ldap_exc.LDAPCertificateError) as e:
            return f"TLS failed ({_tls_reason(e)})"
        except Exception as e:  # ldap3 lets some socket/struct errors through unwrapped
            text = str(e)
            if _looks_like_tls(text):
                return f"TLS failed ({_tls_reason(e)})"
            if "timed out" in text:
                return "timed out"
            return f"cannot connect ({type(e).__name__})"
        if bound:
            return None
        result = conn.result or {}
        unbind_quietly(conn)
        desc = result.get("description", "bind failed")
        if result.get("result") == 49:
            hint = (
                "Are LDAPDirectory.bind_dn and the password in "
                "LDAPDirectory.bind_password_file/bind_password_env correct?"
            )
        else:
            hint = "Is LDAPDirectory.bind_dn correct?"
        raise DirectoryError(
            f"ldap: bind to {describe(conn.server)} as {self.bind_dn or 'anonymous'} "
            f"failed ({desc}). {hint}"
        )
