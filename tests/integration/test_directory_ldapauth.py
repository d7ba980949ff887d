"""LDAPAuthStateDirectory fed by the real LDAPAuthenticator (ldapauthenticator 2.0) against slapd.

The user logs in with their own LDAP password; ldapauthenticator reads the attributes listed in
``auth_state_attributes`` into auth_state; the record built from it must equal the one
LDAPDirectory reads with its service account.
"""

import pytest

from nbspawner.directory.ldapauth import LDAPAuthStateDirectory
from nbspawner.errors import InvalidRecord
from tests.fixtures.slapd import GROUPS_DN, PEOPLE_DN, load_directory_data, user_password

pytestmark = pytest.mark.integration

GROUP_GIDS = {name: spec["gid"] for name, spec in load_directory_data()["groups"].items()}
ATTRIBUTES = [
    "uid",
    "uidNumber",
    "gidNumber",
    "homeDirectory",
    "gecos",
    "cn",
    "loginShell",
    "memberOf",
]


def authenticator(slapd, **traits):
    from ldapauthenticator import LDAPAuthenticator

    config = {
        "server_address": "127.0.0.1",
        "server_port": slapd.port,
        "tls_strategy": "before_bind",
        "tls_kwargs": {"ca_certs_file": slapd.ca_file},
        "bind_dn_template": [f"uid={{username}},{PEOPLE_DN}"],
        "auth_state_attributes": ATTRIBUTES,
        "allow_all": True,
        "enable_auth_state": True,
    }
    config.update(traits)
    return LDAPAuthenticator(**config)


async def login(slapd, username):
    model = await authenticator(slapd).get_authenticated_user(
        None, {"username": username, "password": user_password(username)}
    )
    assert model is not None, f"{username} could not log in"
    return model


@pytest.mark.parametrize("username", ["alice", "bob", "carol"])
async def test_same_record_as_the_ldap_backend(ldap_server, make_ldap_directory, username):
    model = await login(ldap_server, username)
    assert isinstance(model["auth_state"]["user_attributes"]["uidNumber"], list)
    from_auth_state = await LDAPAuthStateDirectory(
        group_gids=GROUP_GIDS, group_base=GROUPS_DN
    ).lookup(username, model["auth_state"])
    from_ldap = await make_ldap_directory("starttls").lookup(username)
    assert from_auth_state == from_ldap
    assert (from_auth_state.source, from_ldap.source) == ("ldapauth", "ldap")


async def test_malformed_entry_is_refused(ldap_server):
    model = await login(ldap_server, "mallory")
    with pytest.raises(InvalidRecord) as info:
        await LDAPAuthStateDirectory().lookup("mallory", model["auth_state"])
    assert info.value.field == "uid"
