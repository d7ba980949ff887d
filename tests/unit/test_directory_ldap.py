"""LDAPDirectory without a server: filter escaping, DN parsing, configuration errors.

Everything that needs slapd is in tests/integration/test_directory_ldap.py.
"""

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from traitlets.config import Config

from nbspawner.directory.ldap import LDAPDirectory, build_filter, group_name_from_dn
from nbspawner.errors import ConfigError, UserNotFound

TEMPLATE = "(&(objectClass=posixAccount)(uid={username}))"


@pytest.mark.parametrize(
    ("username", "expected"),
    [
        ("alice", "(&(objectClass=posixAccount)(uid=alice))"),
        ("*", "(&(objectClass=posixAccount)(uid=\\2a))"),
        ("a*)(uid=*", "(&(objectClass=posixAccount)(uid=a\\2a\\29\\28uid=\\2a))"),
        ("admin)(|(uid=*", "(&(objectClass=posixAccount)(uid=admin\\29\\28|\\28uid=\\2a))"),
        ("back\\slash", "(&(objectClass=posixAccount)(uid=back\\5cslash))"),
        ("nul\x00", "(&(objectClass=posixAccount)(uid=nul\\00))"),
        ("(", "(&(objectClass=posixAccount)(uid=\\28))"),
        (")", "(&(objectClass=posixAccount)(uid=\\29))"),
    ],
)
def test_build_filter_escapes(username, expected):
    assert build_filter(TEMPLATE, username=username) == expected


def _unescape(value: str) -> str:
    return re.sub(
        rb"\\([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]), value.encode()
    ).decode()


@given(st.text(min_size=1, max_size=40))
def test_escaped_value_can_only_be_read_back_as_itself(username):
    value = build_filter("{username}", username=username)
    # no character that could end the assertion value or start a new filter component
    assert not set(value) & set("()*\x00")
    # every backslash starts a two-digit hex escape
    assert re.fullmatch(r"(?:[^\\]|\\[0-9a-fA-F]{2})*", value)
    assert _unescape(value) == username


@pytest.mark.parametrize(
    ("dn", "base", "expected"),
    [
        ("cn=physics,ou=groups,dc=example,dc=org", "", "physics"),
        ("CN=GPU Users,OU=Groups,DC=example,DC=org", "ou=groups,dc=example,dc=org", "GPU Users"),
        ("cn=Smith\\, John,ou=groups,dc=example,dc=org", "", "Smith, John"),
        ("cn=caf\\C3\\A9,ou=groups,dc=example,dc=org", "", "café"),
        ("cn=physics,ou=elsewhere,dc=example,dc=org", "ou=groups,dc=example,dc=org", None),
        ("ou=groups,dc=example,dc=org", "ou=groups,dc=example,dc=org", None),
        ("uid=alice,ou=people,dc=example,dc=org", "", None),
        ("not a dn", "", None),
        ("", "", None),
    ],
)
def test_group_name_from_dn(dn, base, expected):
    assert group_name_from_dn(dn, "cn", base) == expected


def directory(**traits):
    config = {
        "server_urls": ["ldap://127.0.0.1:9"],
        "tls_mode": "none",
        "search_base": "ou=people,dc=example,dc=org",
    }
    config.update(traits)
    return LDAPDirectory(**config)


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        ({"server_urls": []}, "server_urls is empty"),
        ({"search_base": ""}, "search_base is empty"),
        ({"server_urls": ["http://ldap.example.org"]}, "not an ldap:// or ldaps:// URL"),
        ({"server_urls": ["ldaps://ldap.example.org"], "tls_mode": "starttls"}, "set tls_mode"),
        ({"search_filter": "(uid={user})"}, "search_filter is not a valid template"),
        ({"search_filter": "(uid=alice)"}, "must contain {username}"),
        ({"group_filter": "(memberUid={uid})"}, "group_filter is not a valid template"),
        ({"tls_mode": "ldaps", "ca_file": "/nonexistent/ca.pem"}, "ca_file"),
    ],
)
async def test_configuration_errors_name_the_setting(traits, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        await directory(**traits).lookup("alice")


@pytest.mark.parametrize("username", ["", "alice\x00", "alice\nuid=bob", "x" * 300])
async def test_impossible_usernames_never_reach_the_server(username):
    ldap = directory()
    with pytest.raises(UserNotFound):
        await ldap.lookup(username)
    assert ldap.connections_opened == 0


async def test_password_sources(tmp_path, monkeypatch):
    ldap = directory(bind_dn="cn=reader,dc=example,dc=org")
    with pytest.raises(ConfigError, match="neither"):
        ldap._password()
    ldap.bind_password_file = str(tmp_path / "missing")
    with pytest.raises(ConfigError, match="bind_password_file .* cannot be read"):
        ldap._password()
    (tmp_path / "pw").write_text("s3cret\n")
    ldap.bind_password_file = str(tmp_path / "pw")
    assert ldap._password() == "s3cret"
    ldap.bind_password_file = ""
    ldap.bind_password_env = "NBSPAWNER_TEST_LDAP_PW"
    monkeypatch.delenv("NBSPAWNER_TEST_LDAP_PW", raising=False)
    with pytest.raises(ConfigError, match="NBSPAWNER_TEST_LDAP_PW .* is not set"):
        ldap._password()
    monkeypatch.setenv("NBSPAWNER_TEST_LDAP_PW", "from-env")
    assert ldap._password() == "from-env"


def test_pool_size_is_bounded():
    with pytest.raises(ConfigError):
        directory(pool_size=0)
    with pytest.raises(ConfigError):
        directory(pool_size=1000)


def test_every_setting_is_reachable_from_config():
    c = Config()
    c.LDAPDirectory.server_urls = ["ldaps://ldap1.example.org", "ldaps://ldap2.example.org"]
    c.LDAPDirectory.tls_mode = "ldaps"
    c.LDAPDirectory.failover = "round_robin"
    c.LDAPDirectory.bind_password_file = "/etc/nbspawner/ldap-password"
    c.LDAPDirectory.group_membership_attribute = "memberOf"
    c.LDAPDirectory.pool_size = 8
    ldap = LDAPDirectory(config=c)
    assert ldap.server_urls[1] == "ldaps://ldap2.example.org"
    assert (ldap.tls_mode, ldap.failover, ldap.pool_size) == ("ldaps", "round_robin", 8)
    configurable = {name for name in ldap.trait_names(config=True)}
    assert {"bind_password_file", "bind_password_env", "search_filter", "lookup_timeout"} <= (
        configurable
    )
    # there is no trait that would hold the password itself (it would end up in config dumps)
    assert not {n for n in configurable if "password" in n} - {
        "bind_password_file",
        "bind_password_env",
    }
