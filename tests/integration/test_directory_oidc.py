"""OIDCClaimsDirectory fed by GenericOAuthenticator's real auth_state from a real OIDC provider.

The provider (oidc-provider-mock, a separate process) holds the users and their custom claims;
GenericOAuthenticator (oauthenticator 17) runs its real code: token exchange, userinfo request,
auth_state. Only the hub's callback request handler is a stand-in (see tests/fixtures/oidc_provider.py).
"""

import pytest

from nbspawner.directory.cache import CachedDirectory
from nbspawner.directory.oidc import OIDCClaimsDirectory
from nbspawner.errors import InvalidRecord, UserNotFound
from nbspawner.record import UserRecord

pytestmark = pytest.mark.integration

GROUP_GIDS = {"hpc": 2000, "physics": 3001, "gpu-users": 3002, "chemistry": 3003}

ALICE = UserRecord(
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


@pytest.fixture(scope="module")
def provider_users(oidc_provider):
    oidc_provider.set_user(
        "alice",
        {
            "preferred_username": "alice",
            "name": "Alice Liddell",
            "email": "alice@example.org",
            # as Keycloak sends user attributes by default: strings
            "uidNumber": "2001",
            "gidNumber": "2000",
            "homeDirectory": "/home/alice",
            "groups": ["physics", "gpu-users"],
        },
    )
    oidc_provider.set_user(
        "mallory",
        {
            "preferred_username": "mallory",
            "uidNumber": "abc",
            "gidNumber": 2000,
            "homeDirectory": "/home/mallory",
        },
    )
    oidc_provider.set_user(
        "guest", {"preferred_username": "guest", "name": "A Guest", "groups": ["visitors"]}
    )
    oidc_provider.set_user(
        "kc-nested",
        {
            "preferred_username": "kc-nested",
            "posix": {"uid": 2050, "gid": 2000, "home": "/home/kc-nested", "shell": "/bin/zsh"},
            "groups": ["/org/physics"],
        },
    )
    return oidc_provider


async def login(provider, sub, **traits):
    authenticator = provider.make_authenticator(**traits)
    model = await provider.login(authenticator, sub)
    assert model["name"] == sub
    return model


async def test_claims_through_generic_oauthenticator(provider_users):
    model = await login(provider_users, "alice")
    auth_state = model["auth_state"]
    assert auth_state["oauth_user"]["uidNumber"] == "2001"  # really came from userinfo
    assert auth_state["access_token"]
    record = await OIDCClaimsDirectory(group_gids=GROUP_GIDS).lookup("alice", auth_state)
    assert record == ALICE
    assert record.source == "oidc"


async def test_managed_groups_and_claims_agree(provider_users):
    model = await login(
        provider_users, "alice", manage_groups=True, auth_state_groups_key="oauth_user.groups"
    )
    record = await OIDCClaimsDirectory(group_gids=GROUP_GIDS).lookup("alice", model["auth_state"])
    assert set(model["groups"]) <= set(record.groups)


async def test_non_numeric_uid_claim_is_a_refusal(provider_users):
    model = await login(provider_users, "mallory")
    with pytest.raises(InvalidRecord) as info:
        await OIDCClaimsDirectory().lookup("mallory", model["auth_state"])
    assert (info.value.field, info.value.kind, info.value.source) == (
        "uid",
        "not an integer",
        "oidc",
    )
    assert info.value.log_message == (
        "oidc: uid: 'abc' is not a plain decimal integer (in the claims in auth_state['oauth_user'])"
    )


async def test_user_without_posix_claims_is_not_found(provider_users):
    model = await login(provider_users, "guest")
    cached = CachedDirectory(OIDCClaimsDirectory())
    with pytest.raises(UserNotFound):
        await cached.lookup("guest", model["auth_state"])


async def test_nested_claims_and_group_paths(provider_users):
    model = await login(provider_users, "kc-nested")
    directory = OIDCClaimsDirectory(
        uid_claim="posix.uid",
        gid_claim="posix.gid",
        home_claim="posix.home",
        shell_claim="posix.shell",
        strip_group_path=True,
        group_gids=GROUP_GIDS,
    )
    record = await directory.lookup("kc-nested", model["auth_state"])
    assert (record.uid, record.home, record.shell) == (2050, "/home/kc-nested", "/bin/zsh")
    assert record.posix_groups == (("hpc", 2000), ("physics", 3001))


async def test_tokens_never_in_errors(provider_users):
    model = await login(provider_users, "mallory")
    state = model["auth_state"]
    with pytest.raises(InvalidRecord) as info:
        await OIDCClaimsDirectory().lookup("mallory", state)
    for secret in (
        state["access_token"],
        state["id_token"],
        state.get("refresh_token") or "x" * 40,
    ):
        assert secret not in str(info.value)
