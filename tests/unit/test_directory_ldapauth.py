"""LDAPAuthStateDirectory against auth_state dicts shaped like ldapauthenticator 2.0's.

tests/integration/test_directory_ldapauth.py produces the auth_state with the real
LDAPAuthenticator against slapd.
"""

import pytest

from nbspawner.directory.ldapauth import LDAPAuthStateDirectory
from nbspawner.errors import DirectoryError, InvalidRecord, UserNotFound
from nbspawner.record import UserRecord

GIDS = {"hpc": 2000, "physics": 3001, "gpu-users": 3002}
GROUPS = "ou=groups,dc=example,dc=org"


def auth_state(**attributes):
    # ldapauthenticator: entry_attributes_as_dict, every value a list; with the schema loaded,
    # INTEGER attributes come back as ints
    return {"ldap_groups": [], "user_attributes": {"uid": ["alice"], **attributes}}


ALICE = auth_state(
    uidNumber=[2001],
    gidNumber=[2000],
    homeDirectory=["/home/alice"],
    cn=["Alice Liddell"],
    loginShell=["/bin/bash"],
    memberOf=[f"cn=physics,{GROUPS}", "CN=gpu-users,OU=Groups,DC=example,DC=org"],
)


async def test_record_from_user_attributes():
    record = await LDAPAuthStateDirectory(group_gids=GIDS).lookup("alice", ALICE)
    assert record == UserRecord(
        username="alice",
        uid=2001,
        gid=2000,
        home="/home/alice",
        groups=("gpu-users", "hpc", "physics"),
        supplemental_gids=(3001, 3002),
        posix_groups=(("gpu-users", 3002), ("hpc", 2000), ("physics", 3001)),
        gecos="Alice Liddell",
        shell="/bin/bash",
    )
    assert record.source == "ldapauth"


async def test_string_values_and_attribute_name_case():
    state = {
        "user_attributes": {
            "UIDNUMBER": ["2001"],
            "gidnumber": ["2000"],
            "homedirectory": ["/home/alice"],
            "gecos": ["A L"],
        }
    }
    record = await LDAPAuthStateDirectory().lookup("alice", state)
    assert (record.uid, record.gid, record.gecos, record.shell) == (2001, 2000, "A L", "/bin/bash")


async def test_ldap_groups_and_group_base():
    state = auth_state(
        uidNumber=[2001],
        gidNumber=[2000],
        homeDirectory=["/home/alice"],
        memberOf=[f"cn=physics,{GROUPS}", "cn=intruders,ou=elsewhere,dc=example,dc=org"],
    )
    state["ldap_groups"] = [f"cn=jupyter-users,{GROUPS}"]
    record = await LDAPAuthStateDirectory(group_base=GROUPS).lookup("alice", state)
    assert record.groups == ("jupyter-users", "physics")
    record = await LDAPAuthStateDirectory(group_base=GROUPS, use_ldap_groups=False).lookup(
        "alice", state
    )
    assert record.groups == ("physics",)


@pytest.mark.parametrize(
    ("attributes", "field", "kind"),
    [
        ({"uidNumber": ["abc"]}, "uid", "not an integer"),
        ({"uidNumber": [2101, 2102]}, "uid", "multi-valued"),
        ({"gidNumber": []}, "gid", "missing"),
        ({"homeDirectory": ["/a", "/b"]}, "home", "multi-valued"),
    ],
)
async def test_malformed_attributes(attributes, field, kind):
    base = {"uidNumber": [2001], "gidNumber": [2000], "homeDirectory": ["/home/alice"]}
    with pytest.raises(InvalidRecord) as info:
        await LDAPAuthStateDirectory().lookup("alice", auth_state(**{**base, **attributes}))
    assert (info.value.field, info.value.kind) == (field, kind)


@pytest.mark.parametrize("state", [{"user_attributes": {}}, {}, {"user_attributes": None}])
async def test_no_uid_attribute_is_not_found(state):
    with pytest.raises(UserNotFound) as info:
        await LDAPAuthStateDirectory().lookup("alice", state)
    assert "auth_state_attributes" in info.value.log_message


async def test_no_auth_state():
    with pytest.raises(DirectoryError) as info:
        await LDAPAuthStateDirectory().lookup("alice", None)
    assert "enable_auth_state" in info.value.log_message
    assert info.value.reason == "no_auth_state"
