"""OIDCClaimsDirectory against auth_state dicts shaped like GenericOAuthenticator's.

The end-to-end path (a real provider, GenericOAuthenticator's real token exchange) is in
tests/integration/test_directory_oidc.py.
"""

import pytest

from nbspawner.directory.oidc import OIDCClaimsDirectory
from nbspawner.errors import DirectoryError, InvalidRecord, UserNotFound
from nbspawner.record import UserRecord

GIDS = {"hpc": 2000, "physics": 3001, "gpu-users": 3002}


def auth_state(**claims):
    """What oauthenticator 17 stores: tokens, scope, token_response and the userinfo claims."""
    return {
        "access_token": "at-123",
        "refresh_token": "rt-456",
        "id_token": "eyJ...",
        "scope": ["openid", "profile"],
        "token_response": {"access_token": "at-123", "token_type": "Bearer", "expires_in": 300},
        "oauth_user": {"sub": "f3b1c2", "preferred_username": "alice", **claims},
    }


KEYCLOAK_ALICE = auth_state(
    name="Alice Liddell",
    email="alice@example.org",
    # Keycloak's "User Attribute" mappers send strings unless the claim type is set to int
    uidNumber="2001",
    gidNumber="2000",
    homeDirectory="/home/alice",
    groups=["/physics", "/gpu-users"],
)


async def test_keycloak_shaped_claims():
    directory = OIDCClaimsDirectory(group_gids=GIDS, strip_group_path=True)
    record = await directory.lookup("alice", KEYCLOAK_ALICE)
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
    assert record.source == "oidc"


async def test_group_paths_kept_unless_stripped():
    record = await OIDCClaimsDirectory().lookup("alice", KEYCLOAK_ALICE)
    assert record.groups == ("/gpu-users", "/physics")
    assert record.posix_groups == ()


async def test_dotted_paths_and_callables():
    state = auth_state(
        posix={"uid": 2001, "gid": 2000, "home": "/home/alice", "gids": [3001]},
        given_name="Alice",
        family_name="Liddell",
    )
    directory = OIDCClaimsDirectory(
        uid_claim="posix.uid",
        gid_claim="posix.gid",
        home_claim="posix.home",
        supplemental_gids_claim="posix.gids",
        gecos_claim=lambda c: f"{c['given_name']} {c['family_name']}",
    )
    record = await directory.lookup("alice", state)
    assert (record.uid, record.gid, record.home) == (2001, 2000, "/home/alice")
    assert record.supplemental_gids == (3001,)
    assert record.gecos == "Alice Liddell"


@pytest.mark.parametrize(
    ("claims", "field", "kind"),
    [
        ({"uidNumber": "abc"}, "uid", "not an integer"),
        ({"uidNumber": 2.5}, "uid", "a float, not an integer"),
        ({"uidNumber": True}, "uid", "boolean"),
        ({"uidNumber": {"x": 1}}, "uid", "a dict, not an integer"),
        ({"uidNumber": [2001, 2002]}, "uid", "multi-valued"),
        ({"gidNumber": "2000x"}, "gid", "not an integer"),
        ({"gidNumber": None}, "gid", "missing"),
        ({"homeDirectory": 42}, "home", "a int"),
        ({"homeDirectory": None}, "home", "missing"),
        ({"groups": {"physics": 1}}, "groups", "not a list"),
        ({"groups": [["a", "b"]]}, "groups", "multi-valued"),
        ({"groups": [1]}, "groups", "a int"),
        ({"name": ["A", "B"]}, "gecos", "multi-valued"),
    ],
)
async def test_malformed_claims_are_refusals_not_crashes(claims, field, kind):
    base = {"uidNumber": 2001, "gidNumber": 2000, "homeDirectory": "/home/alice"}
    state = auth_state(**{**base, **claims})
    with pytest.raises(InvalidRecord) as info:
        await OIDCClaimsDirectory().lookup("alice", state)
    assert (info.value.field, info.value.kind, info.value.source) == (field, kind, "oidc")
    # the offending value is quoted (repr), so the message stays on one line
    if claims.get("uidNumber") == "abc":
        assert "uid: 'abc' is not a plain decimal integer" in info.value.log_message
    assert "\n" not in info.value.log_message


async def test_no_uid_claim_means_no_posix_identity():
    with pytest.raises(UserNotFound) as info:
        await OIDCClaimsDirectory().lookup("alice", auth_state(name="Alice"))
    assert "OIDCClaimsDirectory.uid_claim" in info.value.log_message


async def test_missing_auth_state_says_enable_auth_state():
    with pytest.raises(DirectoryError) as info:
        await OIDCClaimsDirectory().lookup("alice", None)
    assert not isinstance(info.value, UserNotFound)
    assert "enable_auth_state" in info.value.log_message
    assert "log in again" in info.value.user_message
    assert info.value.reason == "no_auth_state"


async def test_wrong_auth_state_key():
    with pytest.raises(DirectoryError, match="auth_state_key"):
        await OIDCClaimsDirectory(auth_state_key="userinfo").lookup("alice", KEYCLOAK_ALICE)


async def test_failing_callable_is_a_config_error():
    directory = OIDCClaimsDirectory(uid_claim=lambda claims: claims["nope"])
    with pytest.raises(DirectoryError) as info:
        await directory.lookup("alice", KEYCLOAK_ALICE)
    assert info.value.reason == "config" and "KeyError" in info.value.log_message


async def test_tokens_never_appear_in_errors():
    with pytest.raises(InvalidRecord) as info:
        await OIDCClaimsDirectory().lookup("alice", auth_state(uidNumber="x", gidNumber=1))
    assert "at-123" not in str(info.value) and "rt-456" not in str(info.value)


def test_config_from_yaml_style_config():
    from traitlets.config import Config

    c = Config()
    c.OIDCClaimsDirectory.uid_claim = "attributes.uidNumber"
    c.OIDCClaimsDirectory.group_gids = {"physics": 3001}
    directory = OIDCClaimsDirectory(config=c)
    assert directory.uid_claim == "attributes.uidNumber"
    assert directory.group_gids == {"physics": 3001}
