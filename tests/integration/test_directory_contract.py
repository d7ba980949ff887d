"""The directory contract, run against every backend configured with the same users.

The users are tests/fixtures/ldap_data/directory.yaml: the static backend reads the file, slapd
is loaded from it, the HTTP test API serves it, and the auth_state backends get auth_state dicts
shaped exactly like the authenticators' (ldapauthenticator's ``user_attributes``,
GenericOAuthenticator's ``oauth_user``). Every test below runs against each backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from nbspawner.directory.base import Directory
from nbspawner.directory.cache import CachedDirectory
from nbspawner.directory.chain import ChainDirectory
from nbspawner.directory.http import HTTPDirectory
from nbspawner.directory.ldapauth import LDAPAuthStateDirectory
from nbspawner.directory.oidc import OIDCClaimsDirectory
from nbspawner.directory.static import StaticDirectory
from nbspawner.errors import DirectoryError, InvalidRecord, UserNotFound
from nbspawner.ids import shown
from nbspawner.policy import IdentityPolicy, validate_record
from nbspawner.record import UserRecord
from tests.fixtures.json_users import HTTP_FIELDS, TOKEN, JSONUserServer
from tests.fixtures.slapd import DIRECTORY_YAML, GROUPS_DN, load_directory_data

pytestmark = pytest.mark.integration

DATA = load_directory_data()
GROUP_GIDS = {name: spec["gid"] for name, spec in DATA["groups"].items()}

EXPECTED = {
    "alice": UserRecord(
        username="alice",
        uid=2001,
        gid=2000,
        home="/home/alice",
        groups=("gpu-users", "hpc", "physics"),
        supplemental_gids=(3001, 3002),
        posix_groups=(("gpu-users", 3002), ("hpc", 2000), ("physics", 3001)),
        gecos="Alice Liddell",
        shell="/bin/bash",
    ),
    "bob": UserRecord(
        username="bob",
        uid=2002,
        gid=2000,
        home="/home/bob",
        groups=("chemistry", "hpc"),
        supplemental_gids=(3003,),
        posix_groups=(("chemistry", 3003), ("hpc", 2000)),
        gecos="Bob Builder",
        shell="/bin/zsh",
    ),
    "carol": UserRecord(
        username="carol",
        uid=2003,
        gid=2000,
        home="/home/carol",
        groups=("hpc",),
        supplemental_gids=(),
        posix_groups=(("hpc", 2000),),
        gecos="Carol Ann O'Neil",
        shell="/bin/bash",
    ),
}

HOSTILE_USERNAMES = [
    "*",
    "a*",
    "a*)(uid=*",
    "admin)(|(uid=*",
    "*)(objectClass=*",
    "alice)(uid=bob",
    "al*",
    "\\2a",
    "alice\\",
    "(",
    ")",
    "alice\x00",
    "alice\n",
    " alice",
    "ALICE",
]


def member_groups(name: str) -> list[str]:
    return [g for g, spec in DATA["groups"].items() if name in spec.get("members", [])]


def ldapauth_state(name: str) -> dict[str, Any]:
    """What ldapauthenticator 2.0 stores after ``name`` logs in (every value a list)."""
    spec = DATA["users"].get(name)
    if spec is None:  # a directory user without posixAccount attributes
        return {"ldap_groups": [], "user_attributes": {"uid": [name], "cn": [name]}}
    uids = spec["uid"] if isinstance(spec["uid"], list) else [spec["uid"]]
    attrs: dict[str, list[Any]] = {
        "uid": [name],
        "uidNumber": uids,
        "homeDirectory": [spec["home"]],
        "cn": [spec.get("gecos") or name],
        "memberOf": [f"cn={g},{GROUPS_DN}" for g in member_groups(name)],
    }
    if "gid" in spec:
        attrs["gidNumber"] = [spec["gid"]]
    if spec.get("shell"):
        attrs["loginShell"] = [spec["shell"]]
    return {"ldap_groups": [], "user_attributes": attrs}


def oidc_state(name: str) -> dict[str, Any]:
    """What GenericOAuthenticator stores: tokens plus the userinfo claims in ``oauth_user``."""
    claims: dict[str, Any] = {"sub": str(uuid.uuid5(uuid.NAMESPACE_DNS, name))}
    claims["preferred_username"] = name
    spec = DATA["users"].get(name)
    if spec is not None:
        # Keycloak user-attribute mappers send strings by default; some sites map to int
        claims["uidNumber"] = str(spec["uid"]) if name == "alice" else spec["uid"]
        if "gid" in spec:
            claims["gidNumber"] = spec["gid"]
        claims["homeDirectory"] = spec["home"]
        claims["name"] = spec.get("gecos") or name
        if spec.get("shell"):
            claims["loginShell"] = spec["shell"]
        claims["groups"] = member_groups(name)
    return {
        "access_token": "at-" + name,
        "refresh_token": "rt-" + name,
        "id_token": "eyJhbGciOiJSUzI1NiJ9.e30.sig",
        "scope": ["openid", "profile"],
        "token_response": {"token_type": "Bearer", "expires_in": 300},
        "oauth_user": claims,
    }


@dataclass
class Case:
    name: str
    directory: Directory | CachedDirectory
    auth_state: Callable[[str], dict[str, Any] | None]
    #: expected UserRecord.source per user (default: the backend's name)
    sources: dict[str, str]

    def source(self, username: str) -> str:
        return self.sources.get(username, self.sources["*"])

    async def lookup(self, username: str) -> UserRecord:
        return await self.directory.lookup(username, self.auth_state(username))


NAME_BACKENDS = ["static", "ldap", "ldap-cached", "http", "chain"]
AUTH_STATE_BACKENDS = ["ldapauth", "oidc"]


@pytest.fixture(scope="module")
def contract_http_server() -> Iterator[JSONUserServer]:
    server = JSONUserServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def contract_token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("contract-token") / "token"
    path.write_text(TOKEN)
    return path


def _http(server: JSONUserServer, token_file) -> HTTPDirectory:
    return HTTPDirectory(
        url_template=f"{server.base_url}/api/users/{{username}}",
        token_file=str(token_file),
        **HTTP_FIELDS,
    )


async def _build(request, backend: str) -> Case:
    no_state: Callable[[str], None] = lambda name: None  # noqa: E731
    if backend == "static":
        return Case(backend, StaticDirectory(path=str(DIRECTORY_YAML)), no_state, {"*": "static"})
    if backend in ("ldap", "ldap-cached"):
        slapd = request.getfixturevalue("ldap_server")
        from nbspawner.directory.ldap import LDAPDirectory

        ldap = LDAPDirectory(**slapd.ldap_config("starttls"))
        directory = CachedDirectory(ldap) if backend == "ldap-cached" else ldap
        return Case(backend, directory, no_state, {"*": "ldap"})
    if backend == "http":
        server = request.getfixturevalue("contract_http_server")
        token = request.getfixturevalue("contract_token_file")
        return Case(backend, _http(server, token), no_state, {"*": "http"})
    if backend == "chain":
        server = request.getfixturevalue("contract_http_server")
        token = request.getfixturevalue("contract_token_file")
        # alice from a small static source first, everybody else from the HTTP API
        first = StaticDirectory(
            users={"alice": DATA["users"]["alice"]},
            groups=DATA["groups"],
        )
        chain = ChainDirectory(backends=[first, _http(server, token)])
        return Case(backend, chain, no_state, {"*": "http", "alice": "static"})
    if backend == "ldapauth":
        directory = LDAPAuthStateDirectory(group_gids=GROUP_GIDS, group_base=GROUPS_DN)
        return Case(backend, directory, ldapauth_state, {"*": "ldapauth"})
    if backend == "oidc":
        return Case(backend, OIDCClaimsDirectory(group_gids=GROUP_GIDS), oidc_state, {"*": "oidc"})
    raise AssertionError(backend)


@pytest.fixture(params=NAME_BACKENDS + AUTH_STATE_BACKENDS)
async def case(request):
    built = await _build(request, request.param)
    yield built
    await built.directory.close()


@pytest.fixture(params=NAME_BACKENDS)
async def name_case(request):
    built = await _build(request, request.param)
    yield built
    await built.directory.close()


@pytest.mark.parametrize("username", sorted(EXPECTED))
async def test_known_user_exact_record(case, username):
    record = await case.lookup(username)
    assert record == EXPECTED[username]
    assert record.source == case.source(username)
    # what the record looks like is also what the spawner will accept
    validate_record(record, IdentityPolicy(home_roots=("/home",)), username)


async def test_unknown_user(case):
    with pytest.raises(UserNotFound) as info:
        await case.lookup("nobody")
    assert info.value.status == 403


async def test_non_numeric_uid(case):
    with pytest.raises(InvalidRecord) as info:
        await case.lookup("mallory")
    assert (info.value.field, info.value.kind) == ("uid", "not an integer")
    # the value is shown quoted (repr), so hostile text stays one line and reads as data
    assert "uid: 'abc' is not a plain decimal integer" in info.value.log_message


async def test_multi_valued_uid(case):
    with pytest.raises(InvalidRecord) as info:
        await case.lookup("multi")
    assert (info.value.field, info.value.kind) == ("uid", "multi-valued")


async def test_missing_gid(case):
    with pytest.raises(InvalidRecord) as info:
        await case.lookup("nogid")
    assert (info.value.field, info.value.kind) == ("gid", "missing")


async def test_uid_zero_comes_back_typed_and_policy_refuses_it(case):
    record = await case.lookup("toor")
    assert (record.uid, record.gid) == (0, 0)
    with pytest.raises(InvalidRecord) as info:
        validate_record(record, IdentityPolicy(), "toor")
    assert info.value.reason == "root_id"


async def test_home_outside_allowed_roots_is_refused_by_policy(case):
    record = await case.lookup("evil")
    assert record.home == "/etc/evil"
    with pytest.raises(InvalidRecord) as info:
        validate_record(record, IdentityPolicy(home_roots=("/home",)), "evil")
    assert (info.value.field, info.value.reason) == ("home", "home_outside_roots")


async def test_unicode_name_is_returned_intact(case):
    record = await case.lookup("jose")
    assert record.gecos == "José Müller"
    # cosmetic: the policy accepts it (nbspawner.passwd leaves it out of the passwd line)
    assert validate_record(record, IdentityPolicy(), "jose") is record


async def test_concurrent_lookups_get_their_own_records(case):
    names = ["alice", "bob", "carol"] * 20
    records = await asyncio.gather(*(case.lookup(n) for n in names))
    assert [r.username for r in records] == names
    assert all(r == EXPECTED[r.username] for r in records)


async def test_check_describes_the_backend(case):
    if isinstance(case.directory, StaticDirectory):
        # the static backend's check reads every entry; the fixture's broken ones are named
        with pytest.raises(DirectoryError) as info:
            await case.directory.check()
        message = info.value.log_message
        assert message.startswith("static: ") and "users cannot be used: " in message
        assert "users.'mallory'" in message and "is not a plain decimal integer" in message
        return
    text = await case.directory.check()
    assert isinstance(text, str) and text.split(":")[0].split(" ")[0] in (
        "static",
        "ldap",
        "http",
        "chain",
        "ldapauth",
        "oidc",
    )


@pytest.mark.parametrize("username", HOSTILE_USERNAMES)
async def test_hostile_usernames_never_get_another_users_record(name_case, username):
    try:
        record = await name_case.lookup(username)
    except (UserNotFound, InvalidRecord):
        return
    # the only hostile name that exists is the literal entry "a*"
    assert (username, record.username, record.uid) == ("a*", "a*", 2106)


#: hub usernames that would forge or garble an admin's log line if written raw (issue 15, class 6)
LOG_FORGERIES = [
    "alice\nWARNING forged",
    "\x1b[31m",
    "\r",
    "\u2028",
    "alice\u2029",
    "alice\x85",
    "bob\r\n[W 2026-01-01 00:00:00.000 JupyterHub app:1] forged",
]
LINE_BREAKERS = ("\n", "\r", "\x1b", "\x85", "\u2028", "\u2029")


@pytest.mark.parametrize("username", LOG_FORGERIES, ids=repr)
async def test_forged_log_lines_stay_one_quoted_line(request, case, caplog, username):
    """Every backend, the real LDAP server and HTTP API included: the refusal shows the name
    quoted, every log record is one line, and LDAP and HTTP send nothing for such a name."""
    import logging

    caplog.set_level(logging.DEBUG)
    http = request.getfixturevalue("contract_http_server")
    received = len(http.received)
    with pytest.raises(UserNotFound) as info:
        await case.lookup(username)
    message = info.value.log_message
    for text in [message, str(info.value), info.value.user_message] + [
        r.getMessage() for r in caplog.records
    ]:
        assert not any(c in text for c in LINE_BREAKERS), repr(text)
        assert text.isprintable(), repr(text)
    # quoted in full, or cut after 40 characters where the refusal uses nbspawner.ids.shown
    assert shown(username).removesuffix("...") in message
    assert username not in caplog.text
    if case.name in ("ldap", "ldap-cached", "http"):
        first_bad = next(c for c in username if not c.isprintable())
        assert message.startswith(f"{case.source(username)}: username {shown(username)} contains ")
        assert message.endswith(f" (U+{ord(first_bad):04X}); it was not looked up")
    # nothing was sent for it: no HTTP request, no LDAP connection
    assert len(http.received) == received
    ldap = getattr(case.directory, "backend", case.directory)
    assert getattr(ldap, "connections_opened", 0) == 0
