"""OIDCClaimsDirectory: identity from the claims oauthenticator keeps in auth_state.

GenericOAuthenticator (oauthenticator 17) stores the userinfo response in
``auth_state["oauth_user"]``; Keycloak puts custom user attributes there through protocol mappers
(e.g. a "User Attribute" mapper for ``uidNumber``, a "Group Membership" mapper for ``groups``).
Configure the authenticator with::

    c.Authenticator.enable_auth_state = True

Claims are named by key or dotted path (``attributes.uidNumber``) or computed by a callable
``f(claims) -> value``. Values are type-checked: a ``uidNumber`` of ``"abc"`` is a refusal
(:class:`~nbspawner.errors.InvalidRecord`), not a crash. The claims are refreshed when the user
logs in (or when oauthenticator refreshes the token), not at every spawn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from traitlets import Bool, Dict, Unicode, Union
from traitlets import Callable as CallableTrait

from ..errors import DirectoryError, NBSpawnerError, UserNotFound
from .mapped import MappedDirectory, claims_from
from .values import get_path


def _claim_trait(default: str, help_text: str) -> Any:
    return Union(
        [Unicode(), CallableTrait()],
        default_value=default,
        config=True,
        help=help_text + " A claim name, a dotted path, or a callable taking the claims dict.",
    )


def read_claim(claims: Mapping[str, Any], spec: str | Callable[[Mapping[str, Any]], Any]) -> Any:
    """The value named by ``spec`` (key, dotted path or callable); ``None`` when absent."""
    if callable(spec):
        try:
            return spec(claims)
        except NBSpawnerError:
            raise
        except Exception as e:
            raise DirectoryError(
                f"oidc: a callable OIDCClaimsDirectory claim setting failed ({type(e).__name__})",
                reason="config",
            ) from None
    if not spec:
        return None
    return get_path(claims, spec)


def _last_path_parts(groups: Any) -> Any:
    """Keycloak's full group paths (``/org/physics``) -> their last parts (``physics``); values
    that are not names are passed on unchanged, to be refused as such."""
    if isinstance(groups, str):
        groups = [groups]
    if not isinstance(groups, list):
        return groups
    return [g.rstrip("/").rsplit("/", 1)[-1] if isinstance(g, str) else g for g in groups]


class OIDCClaimsDirectory(MappedDirectory):
    """Read uid/gid/home/groups from OIDC claims in oauthenticator's auth_state."""

    name = "oidc"

    auth_state_key = Unicode(
        "oauth_user",
        config=True,
        help="""Key of the claims dict in auth_state: ``oauth_user`` for GenericOAuthenticator
        (and most oauthenticator subclasses).""",
    )
    uid_claim = _claim_trait("uidNumber", "Claim holding the numeric uid.")
    gid_claim = _claim_trait("gidNumber", "Claim holding the primary gid.")
    home_claim = _claim_trait("homeDirectory", "Claim holding the home directory.")
    groups_claim = _claim_trait("groups", "Claim listing the user's group names (may be empty).")
    supplemental_gids_claim = _claim_trait(
        "",
        "Claim listing numeric supplementary gids. Empty: the gids of the user's groups known "
        "from OIDCClaimsDirectory.group_gids.",
    )
    gecos_claim = _claim_trait("name", "Claim holding the full name (optional).")
    shell_claim = _claim_trait("loginShell", "Claim holding the login shell (default /bin/bash).")
    strip_group_path = Bool(
        False,
        config=True,
        help="""Keep only the last part of path-like group names (Keycloak's "Full group path"
        turns ``/org/physics`` into ``physics``).""",
    )
    group_gids = Dict(
        config=True,
        help="""Group name -> gid, for groups whose gid the pod needs (supplementalGroups,
        /etc/group). The primary group's name is found here by its gid.""",
    )

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> dict[str, Any]:
        claims = claims_from(auth_state, self.auth_state_key, username, self.name)
        if not isinstance(claims, Mapping):
            raise DirectoryError(
                f"oidc: auth_state of {username!r} has no {self.auth_state_key!r} dict. Is "
                "OIDCClaimsDirectory.auth_state_key right for this authenticator?",
                "Please log out and log in again so your account details can be read.",
                reason="no_auth_state",
            )
        uid = read_claim(claims, self.uid_claim)
        if uid is None:
            raise UserNotFound(
                f"oidc: the claims of {username!r} have no uid claim "
                f"(OIDCClaimsDirectory.uid_claim). Does the identity provider send it in the "
                "userinfo response (a protocol mapper for the client), and has the user got one?"
            )
        groups = read_claim(claims, self.groups_claim)
        if self.strip_group_path:
            groups = _last_path_parts(groups)
        return {
            "uid": uid,
            "gid": read_claim(claims, self.gid_claim),
            "home": read_claim(claims, self.home_claim),
            "gecos": read_claim(claims, self.gecos_claim),
            "shell": read_claim(claims, self.shell_claim),
            "groups": groups,
            "supplemental_gids": read_claim(claims, self.supplemental_gids_claim),
            "where": f"the claims in auth_state[{self.auth_state_key!r}]",
        }

    async def check(self) -> str:
        return (
            f"oidc: reads auth_state[{self.auth_state_key!r}] at spawn time; nothing to connect to"
        )
