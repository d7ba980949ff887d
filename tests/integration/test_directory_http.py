"""HTTPDirectory against a real tornado JSON API on loopback (plain and HTTPS)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from nbspawner.directory.http import HTTPDirectory
from nbspawner.errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from nbspawner.ids import shown
from tests.fixtures.json_users import HTTP_FIELDS, TOKEN, JSONUserServer
from tests.fixtures.slapd import make_test_pki

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def json_users() -> Iterator[JSONUserServer]:
    server = JSONUserServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("http-token") / "token"
    path.write_text(TOKEN + "\n")
    return path


def make_http_directory(server: JSONUserServer, token_file: Path, mode: str = "api", **traits):
    config = {
        "url_template": f"{server.base_url}/{mode}/users/{{username}}",
        "token_file": str(token_file),
        **HTTP_FIELDS,
    }
    config.update(traits)
    return HTTPDirectory(**config)


async def test_known_user(json_users, token_file):
    record = await make_http_directory(json_users, token_file).lookup("alice")
    assert (record.uid, record.gid, record.home, record.gecos) == (
        2001,
        2000,
        "/home/alice",
        "Alice Liddell",
    )
    assert record.posix_groups == (("gpu-users", 3002), ("hpc", 2000), ("physics", 3001))
    assert record.source == "http"
    assert json_users.requests[-1] == ("alice", f"Bearer {TOKEN}")


async def test_token_from_environment(json_users, monkeypatch):
    monkeypatch.setenv("NBSPAWNER_TEST_HTTP_TOKEN", TOKEN)
    directory = make_http_directory(json_users, Path("/unused"))
    directory.token_file = ""
    directory.token_env = "NBSPAWNER_TEST_HTTP_TOKEN"
    assert (await directory.lookup("bob")).uid == 2002


async def test_not_found(json_users, token_file):
    with pytest.raises(UserNotFound):
        await make_http_directory(json_users, token_file).lookup("nobody")


@pytest.mark.parametrize(
    "username", ["../users/alice", "alice/../bob", "a?b=c", "a#b", "a b", "%2e%2e", "José"]
)
async def test_usernames_are_url_quoted(json_users, token_file, username):
    with pytest.raises(UserNotFound):
        await make_http_directory(json_users, token_file).lookup(username)
    assert json_users.requests[-1][0] == username  # the server saw exactly the name, one segment


DOT_SEGMENT = "is a path segment ('.' or '..') that a web server would resolve to another path"

#: (name, why no user can have it): every one is refused before a URL is built
IMPOSSIBLE_NAMES = [
    ("", "is empty"),
    (".", DOT_SEGMENT),
    ("..", DOT_SEGMENT),
    ("\uff0e\uff0e", DOT_SEGMENT),  # fullwidth full stops: ".." to a server normalising NFKC
    ("\u2025", DOT_SEGMENT),  # two-dot leader, the same
    ("a" * 257, "is longer than 256 characters (257)"),
    ("\u00e9" * 257, "is longer than 256 characters (257)"),
    ("alice\n", "contains a control character (U+000A)"),
    ("\nalice", "contains a control character (U+000A)"),
    ("al\x00ice", "contains a control character (U+0000)"),
    ("al\rice", "contains a control character (U+000D)"),
    ("al\tice", "contains a control character (U+0009)"),
    ("alice\r\nX-Injected: 1", "contains a control character (U+000D)"),
    ("\x1b[31malice", "contains a control character (U+001B)"),
    ("alice\x7f", "contains a control character (U+007F)"),
    ("alice\x85", "contains a control character (U+0085)"),
    ("alice\u2028bob", "contains a line separator (U+2028)"),
    ("alice\ud800", "contains an unpaired surrogate (U+D800)"),  # not even encodable as UTF-8
]


@pytest.mark.parametrize(("username", "problem"), IMPOSSIBLE_NAMES, ids=repr)
async def test_impossible_names_are_refused_before_any_request(
    json_users, token_file, tcp_proxy, caplog, username, problem
):
    """No connection, no request, so no bearer token, leaves the hub for a name no user can have."""
    proxy = tcp_proxy("127.0.0.1", json_users.port)
    directory = HTTPDirectory(
        url_template=f"http://127.0.0.1:{proxy.port}/api/users/{{username}}",
        token_file=str(token_file),
        **HTTP_FIELDS,
    )
    before = len(json_users.received)
    with pytest.raises(UserNotFound) as info:
        await directory.lookup(username)
    assert info.value.log_message == (
        f"http: username {shown(username)} {problem}; it was not looked up"
    )
    assert info.value.log_message.isprintable()  # one line, whatever the name holds
    assert info.value.status == 403
    assert proxy.connections_accepted == 0
    assert len(json_users.received) == before
    # the counting works: a possible name that looks alike is requested, through the same proxy
    with pytest.raises(UserNotFound, match="answered 404 for '...': no such user"):
        await directory.lookup("...")
    assert proxy.connections_accepted == 1
    assert json_users.received[before:] == ["/api/users/..."]
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("username", ["...", ".alice", "a..", "%2e%2e", "%2E.", "..%2f"])
async def test_names_that_only_look_like_dot_segments_are_requested_verbatim(
    json_users, token_file, username
):
    before = len(json_users.received)
    with pytest.raises(UserNotFound):
        await make_http_directory(json_users, token_file).lookup(username)
    # one request, for exactly this name in one path segment ("%" itself quoted)
    assert json_users.requests[-1][0] == username
    assert len(json_users.received) == before + 1


async def test_check_needs_no_impossible_name(json_users, token_file):
    # the made-up user of `nbspawner check` passes the rule: the check still sends its request
    before = len(json_users.received)
    await make_http_directory(json_users, token_file).check()
    assert json_users.received[before:] == ["/api/users/nbspawner-check-user"]


async def test_wrong_token_is_a_directory_error_without_the_token(json_users, tmp_path, caplog):
    bad = tmp_path / "bad-token"
    bad.write_text("wrong-token-value")
    with pytest.raises(DirectoryError) as info:
        await make_http_directory(json_users, bad).lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert "401" in info.value.log_message and "token_file" in info.value.log_message
    assert "wrong-token-value" not in info.value.log_message


@pytest.mark.parametrize(
    ("mode", "message"),
    [("error", "answered 500"), ("html", "not with JSON")],
)
async def test_server_failures(json_users, token_file, mode, message):
    with pytest.raises(DirectoryError, match=message) as info:
        await make_http_directory(json_users, token_file, mode).lookup("alice")
    assert not isinstance(info.value, UserNotFound)


async def test_timeout(json_users, token_file):
    directory = make_http_directory(json_users, token_file, "slow", request_timeout=0.5)
    start = time.monotonic()
    with pytest.raises(DirectoryError, match="request_timeout"):
        await directory.lookup("alice")
    assert time.monotonic() - start < 2


async def test_connection_refused():
    from tests.fixtures.slapd import find_free_port

    directory = HTTPDirectory(url_template=f"http://127.0.0.1:{find_free_port()}/u/{{username}}")
    with pytest.raises(DirectoryError, match="cannot reach .*url_template"):
        await directory.lookup("alice")


async def test_answer_for_another_user_is_refused(json_users, token_file):
    with pytest.raises(InvalidRecord) as info:
        await make_http_directory(json_users, token_file, "other").lookup("alice")
    assert info.value.field == "username"


async def test_config_errors(json_users, token_file):
    with pytest.raises(ConfigError, match="url_template"):
        await HTTPDirectory().lookup("alice")
    with pytest.raises(ConfigError, match="token_file"):
        await make_http_directory(json_users, Path("/nonexistent/token")).lookup("alice")


@pytest.fixture(scope="module")
def https_users(tmp_path_factory) -> Iterator[tuple[JSONUserServer, Any]]:
    pki = make_test_pki(tmp_path_factory.mktemp("https-pki"))
    server = JSONUserServer(tls=pki).start()
    yield server, pki
    server.stop()


async def test_https_with_ca_file(https_users, token_file):
    server, pki = https_users
    directory = make_http_directory(server, token_file, ca_file=str(pki.ca_file))
    assert (await directory.lookup("alice")).uid == 2001


async def test_https_wrong_ca_is_refused(https_users, token_file):
    server, pki = https_users
    directory = make_http_directory(server, token_file, ca_file=str(pki.wrong_ca_file))
    with pytest.raises(DirectoryError, match="TLS .*ca_file"):
        await directory.lookup("alice")


async def test_https_certificate_for_another_name_is_refused(https_users, token_file, tcp_proxy):
    # the right CA, reached as 127.0.0.2: the certificate names only localhost and 127.0.0.1
    server, pki = https_users
    served_before = len(server.requests)
    proxy = tcp_proxy("127.0.0.1", server.port, listen_host="127.0.0.2")
    directory = HTTPDirectory(
        url_template=f"https://127.0.0.2:{proxy.port}/api/users/{{username}}",
        token_file=str(token_file),
        ca_file=str(pki.ca_file),
        **HTTP_FIELDS,
    )
    with pytest.raises(DirectoryError, match="TLS") as info:
        await directory.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert proxy.connections_accepted >= 1
    # no request reached the API (the token never went out): the handshake failed first
    assert len(server.requests) == served_before


async def test_check(json_users, token_file):
    assert await make_http_directory(json_users, token_file).check() == (
        f"http: 127.0.0.1:{json_users.port} answers"
    )


async def test_an_oversized_answer_is_refused_and_not_kept(json_users, token_file, caplog):
    directory = make_http_directory(json_users, token_file, mode="huge")
    with pytest.raises(
        DirectoryError, match=r"more than HTTPDirectory.max_response_bytes \(1048576 bytes\)"
    ):
        await directory.lookup("alice")
    # the same answer is accepted when the limit allows it: the padding was the only problem
    roomy = make_http_directory(json_users, token_file, mode="huge", max_response_bytes=8 << 20)
    record = await roomy.lookup("alice")
    assert record.uid == 2001
    assert TOKEN not in caplog.text


def test_bounded_body_keeps_nothing_past_the_limit():
    from nbspawner.directory.http import _BoundedBody

    body = _BoundedBody(10)
    body.add(b"12345")
    body.add(b"67890")
    assert not body.overflow and body.value() == b"1234567890"
    body.add(b"x")
    assert body.overflow and body.chunks == []
    body.add(b"more")
    assert body.chunks == [] and body.size == 15


#: text that would forge or garble a log line if it were written raw
FORGED = "\nWARNING forged \x1b[31m\r\u2028\u2029\x85"


def canned_record(**posix: Any) -> dict[str, Any]:
    return {
        "data": {
            "username": "alice",
            "posix": {"uidNumber": 2001, "gidNumber": 2000, "homeDirectory": "/home/a", **posix},
            "groups": [],
        }
    }


@pytest.mark.parametrize(
    ("answer", "error", "expected"),
    [
        (
            canned_record(uidNumber=f"2001{FORGED}"),
            InvalidRecord,
            f"http: uid: {shown(f'2001{FORGED}')} is not a plain decimal integer",
        ),
        (
            canned_record(gidNumber=[f"{FORGED}"]),
            InvalidRecord,
            f"http: gid: {shown(FORGED)} is not a plain decimal integer",
        ),
        (
            {"data": {**canned_record()["data"], "groups": [{"name": "g", "gid": FORGED}]}},
            InvalidRecord,
            f"http: posix_groups: {shown(FORGED)} is not a plain decimal integer",
        ),
        (
            {"data": {**canned_record()["data"], "username": f"alice{FORGED}"}},
            InvalidRecord,
            "http: the answer for 'alice' names another user in HTTPDirectory.username_field "
            "(username); refusing",
        ),
        (
            {"data": FORGED},
            DirectoryError,
            "http: the answer for 'alice' is not a JSON object at HTTPDirectory.record_path. "
            "Is record_path correct?",
        ),
    ],
    ids=["uid", "gid", "group-gid", "username", "not-an-object"],
)
async def test_hostile_answers_are_quoted_on_one_line(
    json_users, token_file, caplog, answer, error, expected
):
    json_users.canned = answer
    caplog.set_level(logging.DEBUG)
    with pytest.raises(error) as info:
        await make_http_directory(json_users, token_file, mode="canned").lookup("alice")
    assert info.value.log_message == expected
    assert info.value.log_message.isprintable()
    assert json_users.requests[-1] == ("alice", f"Bearer {TOKEN}")  # it was the server's answer
    for record in caplog.records:
        assert record.getMessage().isprintable()
    assert FORGED not in caplog.text and "\nWARNING forged" not in caplog.text
    assert TOKEN not in caplog.text


@pytest.mark.parametrize("username", ["o'brien", 'say "hi"', "José", "a\u202eb", "<b>x</b>"])
async def test_odd_possible_names_are_quoted_in_messages(json_users, token_file, username):
    with pytest.raises(UserNotFound) as info:
        await make_http_directory(json_users, token_file).lookup(username)
    assert info.value.log_message == (
        f"http: 127.0.0.1:{json_users.port} answered 404 for {username!r}: no such user"
    )
    assert info.value.log_message.isprintable()


@pytest.mark.parametrize("mode", ["error", "api"])
async def test_credentials_in_the_url_template_are_never_shown(json_users, token_file, mode):
    directory = HTTPDirectory(
        url_template=f"http://svc:s3cret-pw@127.0.0.1:{json_users.port}/{mode}/users/{{username}}",
        token_file=str(token_file),
        **HTTP_FIELDS,
    )
    with pytest.raises(DirectoryError) as info:
        await directory.lookup("alice")
    assert f"http: 127.0.0.1:{json_users.port} " in info.value.log_message
    assert "s3cret" not in info.value.log_message and "svc" not in info.value.log_message
    assert json_users.requests[-1][0] == "alice"  # the request was made, with those credentials
