"""Hostile text never reaches a log line or a message of nbspawner.directory raw (issue 15, class 6).

A hub username or a directory value with a newline, a carriage return, an escape sequence or a
Unicode line separator must not be able to forge an admin's log line. Every backend that can run
without a server is driven here with such values (a YAML file, inline config, auth_state dicts,
fake backends behind the chain and the cache); HTTPDirectory and LDAPDirectory get the same
treatment against real servers in tests/integration/test_directory_contract.py. For each case:

- every captured log record's message, and every exception's message, is one printable line
  (no ``\\n``, ``\\r``, ``\\x1b``, ``\\x85``, ``\\u2028``, ``\\u2029``);
- it shows the hostile value quoted, as ``repr`` (``nbspawner.ids.shown``) writes it;
- the raw value appears nowhere in the captured log output, tracebacks included.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from nbspawner.directory.base import Directory
from nbspawner.directory.cache import CachedDirectory
from nbspawner.directory.chain import ChainDirectory
from nbspawner.directory.ldap import LDAPDirectory
from nbspawner.directory.ldapauth import LDAPAuthStateDirectory
from nbspawner.directory.oidc import OIDCClaimsDirectory
from nbspawner.directory.static import StaticDirectory
from nbspawner.directory.values import username_problem
from nbspawner.errors import (
    ConfigError,
    DirectoryError,
    InvalidRecord,
    NBSpawnerError,
    UserNotFound,
)
from nbspawner.ids import shown
from nbspawner.record import UserRecord

#: values that would forge or garble a log line if written raw
HOSTILE = [
    "alice\nWARNING forged",
    "\x1b[31m",
    "\r",
    "\u2028",
    "bob\r\n[E 2026-01-01 00:00:00 JupyterHub app] forged",
    "carol\u2029x",
    "dave\x85x",
    "eve\x1b]0;title\x07",
]
#: what no message may contain
LINE_BREAKERS = ("\n", "\r", "\x1b", "\x85", "\u2028", "\u2029")

TOKEN = "tok-NEVER-LOG-ME"


def assert_one_line(text: str) -> None:
    for char in LINE_BREAKERS:
        assert char not in text, f"{char!r} in {text!r}"
    assert text.isprintable(), repr(text)


def assert_quoted(error: BaseException, *values: Any) -> None:
    """The exception's messages are one line each and show every value quoted."""
    assert isinstance(error, NBSpawnerError)
    for text in (error.log_message, str(error), error.user_message):
        assert_one_line(text)
    for value in values:
        # in full (``repr``), or cut after 40 characters (``shown``) where it may be huge
        quoted = repr(value) if repr(value) in error.log_message else shown(value)
        assert quoted.removesuffix("...") in error.log_message, (value, error.log_message)


def assert_logs_clean(caplog: pytest.LogCaptureFixture, *values: str) -> None:
    """Every record's message is one line; no raw value in the whole output (tracebacks too)."""
    for record in caplog.records:
        assert_one_line(record.getMessage())
    for value in values:
        assert value not in caplog.text
    assert TOKEN not in caplog.text


@pytest.fixture(autouse=True)
def _capture_everything(caplog):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="traitlets")


def write_yaml(path: Path, data: Any) -> Path:
    # JSON is YAML: the hostile characters travel as escapes and come back as themselves
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# -- static ------------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_static_unknown_user(tmp_path, caplog, hostile):
    path = write_yaml(tmp_path / "users.yaml", {"users": {"alice": {"uid": 2001, "gid": 2000}}})
    with pytest.raises(UserNotFound) as info:
        await StaticDirectory(path=str(path)).lookup(hostile)
    assert_quoted(info.value, hostile)
    # refused by the rule every backend shares, before the file is read
    assert info.value.log_message == (
        f"static: username {shown(hostile)} {username_problem(hostile)}; it was not looked up"
    )
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_static_hostile_uid(tmp_path, caplog, hostile):
    uid = f"2001{hostile}"
    path = write_yaml(
        tmp_path / "users.yaml",
        {"users": {"alice": {"uid": uid, "gid": 2000, "home": "/home/x"}}},
    )
    with pytest.raises(InvalidRecord) as info:
        await StaticDirectory(path=str(path)).lookup("alice")
    assert_quoted(info.value, uid)
    assert info.value.log_message == (
        f"static: uid: {shown(uid)} is not a plain decimal integer "
        f"(in StaticDirectory.path ({path}), users.'alice')"
    )
    assert_logs_clean(caplog, uid)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"users": {"{h}": 3}}, "users.{r} must be a mapping of attributes"),
        ({"groups": {"{h}": {"gid": "{h}"}}}, "groups.{r}.gid: not an integer"),
        ({"groups": {"{h}": {"gid": 1, "members": "alice"}}}, "groups.{r}.members must be a list"),
    ],
    ids=["user-not-a-mapping", "group-gid", "group-members"],
)
async def test_static_file_problems_name_the_entry_quoted(tmp_path, caplog, hostile, data, problem):
    text = json.dumps(data).replace("{h}", json.dumps(hostile)[1:-1])
    path = tmp_path / "users.yaml"
    path.write_text(text, encoding="utf-8")
    expected = problem.format(r=repr(hostile))
    with pytest.raises(DirectoryError) as info:
        await StaticDirectory(path=str(path)).lookup("alice")
    assert_quoted(info.value, hostile)
    assert expected in info.value.log_message
    # the admin log says the same, on one line
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and expected in errors[0]
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_static_bad_edit_warning_is_one_line(tmp_path, caplog, hostile):
    import os

    path = write_yaml(tmp_path / "users.yaml", {"users": {"alice": {"uid": 2001}}})
    directory = StaticDirectory(path=str(path))
    with pytest.raises(InvalidRecord):
        await directory.lookup("alice")  # loaded (the entry lacks a gid)
    write_yaml(path, {"users": {hostile: "not a mapping"}})
    os.utime(path, ns=(1, 1))
    with pytest.raises(InvalidRecord):
        await directory.lookup("alice")  # the last good data is kept
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"users.{hostile!r} must be a mapping" in warnings[0]
    assert warnings[0].endswith("; keeping the last good data")
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_static_duplicate_hostile_key(tmp_path, caplog, hostile):
    key = json.dumps(hostile)
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  {key}: {{uid: 1}}\n  {key}: {{uid: 2}}\n", encoding="utf-8")
    with pytest.raises(DirectoryError) as info:
        await StaticDirectory(path=str(path)).lookup("alice")
    assert_quoted(info.value, hostile)
    assert f"duplicate key {hostile!r} (first at line 2)" in info.value.log_message
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("char", ["\x1b", "\x9b", "\x7f", "\x07", "\x00", "\ufffe"], ids=repr)
async def test_static_raw_control_character_in_the_file(tmp_path, caplog, char):
    """YAML refuses such a character in the stream; its parser's message spans two lines."""
    path = tmp_path / "users.yaml"
    path.write_text(f"users:\n  alice: {{uid: 2001, gecos: 'x{char}WARNING forged'}}\n")
    with pytest.raises(DirectoryError) as info:
        await StaticDirectory(path=str(path)).lookup("alice")
    assert_quoted(info.value)
    message = info.value.log_message
    assert f"StaticDirectory.path ({path}) is not valid YAML" in message
    assert f"#x{ord(char):04x}" in message  # the character is named, as a code
    assert_logs_clean(caplog, char + "WARNING")


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_static_inline_users(caplog, hostile):
    with pytest.raises(ConfigError) as info:
        await StaticDirectory(users={hostile: "x"}).lookup("alice")
    assert_quoted(info.value, hostile)
    assert info.value.log_message == (
        f"StaticDirectory.users/groups: users.{hostile!r} must be a mapping of attributes"
    )
    assert_logs_clean(caplog, hostile)


# -- auth_state backends -----------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
@pytest.mark.parametrize("backend", [OIDCClaimsDirectory, LDAPAuthStateDirectory])
async def test_auth_state_backends_quote_the_username(caplog, hostile, backend):
    directory = backend()
    with pytest.raises(DirectoryError) as info:
        await directory.lookup(hostile, None)
    assert_quoted(info.value, hostile)
    with pytest.raises(DirectoryError) as info:
        await directory.lookup(hostile, {"access_token": TOKEN})  # no claims / attributes
    assert_quoted(info.value, hostile)
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_oidc_hostile_claim_values(caplog, hostile):
    uid = f"2001{hostile}"
    state = {"oauth_user": {"uidNumber": uid, "gidNumber": 2000, "homeDirectory": "/home/x"}}
    with pytest.raises(InvalidRecord) as info:
        await OIDCClaimsDirectory().lookup("alice", state)
    assert_quoted(info.value, uid)
    assert info.value.log_message == (
        f"oidc: uid: {shown(uid)} is not a plain decimal integer "
        "(in the claims in auth_state['oauth_user'])"
    )
    assert_logs_clean(caplog, uid)


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_ldapauth_hostile_attribute_values(caplog, hostile):
    gid = f"{hostile}2000"
    state = {"user_attributes": {"uidNumber": [2001], "gidNumber": [gid], "homeDirectory": ["/"]}}
    with pytest.raises(InvalidRecord) as info:
        await LDAPAuthStateDirectory().lookup("alice", state)
    assert_quoted(info.value, gid)
    assert info.value.log_message == (
        f"ldapauth: gid: {shown(gid)} is not a plain decimal integer "
        "(in auth_state['user_attributes'])"
    )
    assert_logs_clean(caplog, gid)


# -- chain and cache ---------------------------------------------------------------------------


class HostileBackend(Directory):
    """A (third-party) backend whose errors repeat the username and a server's answer raw."""

    name = "fake"

    def __init__(self, error: type[BaseException] = DirectoryError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.calls: list[str] = []

    async def lookup(self, username, auth_state=None):
        self.calls.append(username)
        raise self.error(f"fake: the server answered {username}\nERROR forged")


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_chain_quotes_the_username_and_backend_messages(caplog, hostile):
    fake = HostileBackend()
    chain = ChainDirectory(
        backends=[fake, StaticDirectory(users={"alice": {}})], fall_through_on_error=True
    )
    with pytest.raises(UserNotFound) as info:
        await chain.lookup(hostile)
    assert fake.calls == [hostile]
    assert_quoted(info.value, hostile)
    assert info.value.log_message == f"chain: {hostile!r} not found in fake (unreachable), static"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith(f"chain: fake failed for {hostile!r} (")
    assert "fall_through_on_error" in warnings[0]
    assert_logs_clean(caplog, hostile, "\nERROR forged")


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
async def test_cache_refuses_impossible_names_before_any_backend(caplog, hostile):
    fake = HostileBackend()
    with pytest.raises(UserNotFound) as info:
        await CachedDirectory(fake).lookup(hostile)
    assert fake.calls == []
    assert_quoted(info.value, hostile)
    assert info.value.log_message.startswith(f"fake: username {shown(hostile)} contains a ")
    assert info.value.log_message.endswith("; it was not looked up")
    assert_logs_clean(caplog, hostile)


@pytest.mark.parametrize("username", ["alice", "o'brien", 'say "hi"', "José", "x" * 200])
async def test_cache_logs_an_unexpected_error_on_one_line(caplog, username):
    """A backend bug: the admin gets the traceback's frames, the exception's text quoted."""
    fake = HostileBackend(error=RuntimeError)
    with pytest.raises(DirectoryError) as info:
        await CachedDirectory(fake).lookup(username)
    assert info.value.log_message == (
        "fake: unexpected error in the directory backend (RuntimeError)"
    )
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    message = record.getMessage()
    assert_one_line(message)
    assert message.startswith(f"fake: unexpected error in lookup for {shown(username)}: ")
    assert message.endswith(
        shown(RuntimeError(f"fake: the server answered {username}\nERROR forged"), 300)
    )
    # the traceback is there, pointing at the failing code, but its last line is quoted too
    assert "Traceback (most recent call last)" in caplog.text
    assert "in lookup\n" in caplog.text and "raise self.error(" in caplog.text
    last = caplog.text.rstrip("\n").splitlines()[-1]
    assert last.startswith("nbspawner.directory.values.UnexpectedError: RuntimeError(")
    assert_logs_clean(caplog, "\nERROR forged")


async def test_ldap_unexpected_errors_are_logged_on_one_line(caplog):
    """ldap3's exception texts can quote server data: debug log quoted, refusal by type only."""
    directory = LDAPDirectory(
        server_urls=["ldap://127.0.0.1:1"], search_base="dc=example,dc=org", tls_mode="none"
    )

    def fails() -> None:
        raise ValueError("server said\nERROR forged")

    try:
        with pytest.raises(DirectoryError) as info:
            await directory.pool().run(fails)
    finally:
        await directory.close()
    assert info.value.log_message == "ldap: unexpected error (ValueError)"
    [record] = [r for r in caplog.records if "unexpected error" in r.getMessage()]
    assert record.getMessage() == "ldap: unexpected error: ValueError('server said\\nERROR forged')"
    assert "raise ValueError(" in caplog.text
    assert_logs_clean(caplog, "\nERROR forged")


class Known(Directory):
    name = "known"

    async def lookup(self, username, auth_state=None):
        return UserRecord(username, 2001, 2000, "/home/x", source="known")


@pytest.mark.parametrize("username", ["...", "a..", "%2e%2e", "../alice", "a\u202eb"], ids=repr)
async def test_the_cache_lets_possible_names_through(username):
    # the refusal is the shared rule (nbspawner.directory.values.username_problem), nothing more
    record = await CachedDirectory(Known()).lookup(username)
    assert record.username == username
