"""HTTPDirectory: identity from a REST/JSON API, with tornado's async client.

For sites whose identity lives behind an API (an IdM, a user portal): ``GET`` of
``url_template`` with the username URL-quoted, an optional bearer token read from a file or an
environment variable, and a mapping from JSON fields (dotted paths) to record fields::

    c.HTTPDirectory.url_template = "https://idm.example.org/api/v1/users/{username}"
    c.HTTPDirectory.token_file = "/etc/nbspawner/idm-token"
    c.HTTPDirectory.record_path = "data"          # the user object is under "data"
    c.HTTPDirectory.uid_field = "posix.uid"

``404`` means "no such user" (:class:`~nbspawner.errors.UserNotFound`); any other failure
(connection, TLS, timeout, 5xx, a body that is not JSON) is a
:class:`~nbspawner.errors.DirectoryError`. ``groups_field`` may list names (``["physics"]``) or
objects (``[{"name": "physics", "gid": 3001}]``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import Dict, Float, Int, List, Unicode

from ..errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from .mapped import MappedDirectory
from .values import get_path, parse_str, read_secret, refuse_impossible_username


class _BoundedBody:
    """Collects a response body through tornado's ``streaming_callback``, keeping at most
    ``limit`` bytes. (Raising from the callback would not stop curl_httpclient, which runs it
    as a loop callback, so the excess is dropped and the caller checks ``overflow``.)"""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.overflow = False
        self.chunks: list[bytes] = []

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            self.overflow = True
            self.chunks.clear()
        elif not self.overflow:
            self.chunks.append(chunk)

    def value(self) -> bytes:
        return b"".join(self.chunks)


def _where(url: str) -> str:
    """The host (and port) of ``url`` for messages: never the path or query (they may carry
    names or keys), nor the ``user:password@`` part a URL template may hold."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port is not None else host


class HTTPDirectory(MappedDirectory):
    """Look users up with ``GET url_template`` returning JSON."""

    name = "http"

    url_template = Unicode(
        "",
        config=True,
        help="""URL of a user, ``{username}`` replaced by the URL-quoted username, e.g.
        ``https://idm.example.org/api/users/{username}``.""",
    )
    token_file = Unicode(
        "",
        config=True,
        help="""File holding a bearer token (sent as ``Authorization: Bearer ...``); re-read
        for every request, so a rotated token is picked up.""",
    )
    token_env = Unicode(
        "",
        config=True,
        help="Environment variable holding the bearer token (when token_file is empty).",
    )
    headers = Dict(
        config=True, help="Extra request headers (do not put secrets here: use token_file)."
    )
    ca_file = Unicode(
        "", config=True, help="PEM CA bundle for https URLs. Empty: the system's trusted CAs."
    )
    connect_timeout = Float(5.0, config=True, help="Seconds to wait for the connection.")
    request_timeout = Float(10.0, config=True, help="Seconds to wait for the whole answer.")
    max_response_bytes = Int(
        1 << 20,
        config=True,
        help="""Largest answer accepted, in bytes (default 1 MiB; one user's record is a few
        hundred). Anything beyond is not kept in memory, and the lookup fails: a broken or
        hostile service cannot fill the hub's memory.""",
    )
    not_found_codes = List(
        Int(), [404], config=True, help="HTTP status codes meaning that the user does not exist."
    )
    record_path = Unicode(
        "",
        config=True,
        help="""Dotted path of the user object inside the JSON answer. Empty: the answer itself.
        A ``null`` there means "no such user".""",
    )
    username_field = Unicode(
        "username",
        config=True,
        help="""Field that must equal the requested username exactly. Empty: not checked.""",
    )
    uid_field = Unicode("uid", config=True, help="Dotted path of the numeric uid.")
    gid_field = Unicode("gid", config=True, help="Dotted path of the primary gid.")
    home_field = Unicode("home", config=True, help="Dotted path of the home directory.")
    groups_field = Unicode(
        "groups",
        config=True,
        help="Dotted path of the group list (names, or objects with group_name_key/group_gid_key).",
    )
    group_name_key = Unicode("name", config=True, help="Key of a group object's name.")
    group_gid_key = Unicode("gid", config=True, help="Key of a group object's gid.")
    supplemental_gids_field = Unicode(
        "",
        config=True,
        help="Dotted path of a list of numeric supplementary gids. Empty: from the groups' gids.",
    )
    gecos_field = Unicode("gecos", config=True, help="Dotted path of the full name (optional).")
    shell_field = Unicode("shell", config=True, help="Dotted path of the login shell (optional).")
    group_gids = Dict(
        config=True,
        help="Group name -> gid for groups the answer lists by name only.",
    )

    def _token(self) -> str:
        token = read_secret(
            self.token_file,
            self.token_env,
            file_setting="HTTPDirectory.token_file",
            env_setting="HTTPDirectory.token_env",
            source="http",
            strip_all=True,
        )
        return token or ""

    def _url(self, username: str) -> str:
        # every request is built here: a name no user can have is refused before any URL is,
        # so no request (and no bearer token) leaves the hub for it
        refuse_impossible_username(username, self.name)
        if not self.url_template or "{username}" not in self.url_template:
            raise ConfigError("http: HTTPDirectory.url_template must be set and contain {username}")
        try:
            return self.url_template.format(username=quote(username, safe=""))
        except (KeyError, IndexError, ValueError):
            raise ConfigError(
                "http: HTTPDirectory.url_template may only use {username} (double other braces)"
            ) from None

    async def _fetch(self, username: str) -> Any:
        url = self._url(username)
        where = _where(url)
        headers = {
            "Accept": "application/json",
            **{str(k): str(v) for k, v in self.headers.items()},
        }
        token = self._token()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = _BoundedBody(self.max_response_bytes)
        request = HTTPRequest(
            url,
            method="GET",
            headers=headers,
            connect_timeout=self.connect_timeout,
            request_timeout=self.request_timeout,
            follow_redirects=False,  # a redirect must not carry the token to another host
            validate_cert=True,
            ca_certs=self.ca_file or None,
            streaming_callback=body.add,
        )
        try:
            response = await AsyncHTTPClient().fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as e:
            # DNS failure, refused connection, TLS failure, timeout (tornado's 599 errors are
            # raised even with raise_error=False)
            raise DirectoryError(self._unreachable(where, e)) from None
        code = response.code
        if code in self.not_found_codes:
            raise UserNotFound(f"http: {where} answered {code} for {username!r}: no such user")
        if code == 599:
            raise DirectoryError(self._unreachable(where, response.error))
        if code in (401, 403):
            raise DirectoryError(
                f"http: {where} refused the request ({code}). Is the token in "
                "HTTPDirectory.token_file/token_env valid and allowed to read users?"
            )
        if code != 200:
            raise DirectoryError(
                f"http: {where} answered {code} for {username!r}. Is HTTPDirectory.url_template "
                "correct and the service healthy?"
            )
        if body.overflow:
            raise DirectoryError(
                f"http: {where} sent more than HTTPDirectory.max_response_bytes "
                f"({self.max_response_bytes} bytes) for {username!r}; refusing the answer"
            )
        try:
            return json.loads(body.value())
        except (ValueError, UnicodeDecodeError):
            raise DirectoryError(
                f"http: {where} answered 200 but not with JSON. Is HTTPDirectory.url_template the "
                "API endpoint (not a login page)?"
            ) from None

    def _unreachable(self, where: str, error: BaseException | None) -> str:
        text = str(error or "").lower()
        if "timeout" in text or "timed out" in text:
            return (
                f"http: {where} did not answer within HTTPDirectory.request_timeout "
                f"({self.request_timeout:g}s)"
            )
        if "certificate" in text or "ssl" in text:
            return (
                f"http: TLS with {where} failed ({type(error).__name__}). Is HTTPDirectory.ca_file "
                "the CA that signed the server's certificate?"
            )
        return (
            f"http: cannot reach {where} ({type(error).__name__}). Is HTTPDirectory.url_template "
            "correct and the service running?"
        )

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> dict[str, Any]:
        body = await self._fetch(username)
        data = get_path(body, self.record_path) if self.record_path else body
        if data is None:
            raise UserNotFound(f"http: the answer for {username!r} has no user object")
        if not isinstance(data, Mapping):
            raise DirectoryError(
                f"http: the answer for {username!r} is not a JSON object at "
                "HTTPDirectory.record_path. Is record_path correct?"
            )
        if self.username_field and get_path(data, self.username_field) != username:
            raise InvalidRecord(
                f"http: the answer for {username!r} names another user in "
                f"HTTPDirectory.username_field ({self.username_field}); refusing",
                field="username",
                kind="does not match the hub username",
                source=self.name,
            )
        names, gids = self._groups(get_path(data, self.groups_field) if self.groups_field else None)

        def field(path: str) -> Any:
            return get_path(data, path) if path else None

        return {
            "uid": field(self.uid_field),
            "gid": field(self.gid_field),
            "home": field(self.home_field),
            "gecos": field(self.gecos_field),
            "shell": field(self.shell_field),
            "groups": names,
            "group_gids": gids,
            "supplemental_gids": field(self.supplemental_gids_field),
        }

    def _groups(self, raw: Any) -> tuple[Any, dict[str, Any]]:
        """Group names, and the gids of those given as objects (``{"name": .., "gid": ..}``)."""
        if raw is None:
            return [], {}
        if not isinstance(raw, list):
            raise InvalidRecord(
                f"{self.name}: attribute for groups is not a list",
                field="groups",
                kind="not a list",
                source=self.name,
            )
        names: list[Any] = []
        gids: dict[str, Any] = {}
        for item in raw:
            if isinstance(item, Mapping):
                name = parse_str(item.get(self.group_name_key), "groups", self.name)
                if item.get(self.group_gid_key) is not None:
                    gids[name] = item.get(self.group_gid_key)
                names.append(name)
            else:
                names.append(item)
        return names, gids

    async def check(self) -> str:
        url = self._url("nbspawner-check-user")
        where = _where(url)
        try:
            await self._fetch("nbspawner-check-user")
        except UserNotFound:
            pass  # the service answered; a 404 for a made-up user is the expected answer
        return f"http: {where} answers"
