"""LDAPAuthStateDirectory: identity from ldapauthenticator's auth_state, no second LDAP bind.

ldapauthenticator (2.x) puts the attributes listed in ``LDAPAuthenticator.auth_state_attributes``
into ``auth_state["user_attributes"]``, every value a list (``{"uidNumber": [2001], ...}``), and
the DNs of matched ``allowed_groups`` into ``auth_state["ldap_groups"]``. Configure the
authenticator with at least::

    c.Authenticator.enable_auth_state = True
    c.LDAPAuthenticator.auth_state_attributes = [
        "uid", "uidNumber", "gidNumber", "homeDirectory", "gecos", "cn", "loginShell", "memberOf",
    ]

The values are refreshed only when the user logs in. Group gids are not part of the user's
entry: list the ones the pod needs in ``LDAPAuthStateDirectory.group_gids``. The attribute
settings are :class:`~nbspawner.directory.ldap_entry.LDAPAttributes`', as for LDAPDirectory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Unicode, default

from ..errors import UserNotFound
from .ldap_entry import LDAPAttributes, group_name_from_dn
from .mapped import MappedDirectory, claims_from
from .values import parse_str_list


class LDAPAuthStateDirectory(LDAPAttributes, MappedDirectory):
    """Read uid/gid/home/groups from ldapauthenticator's ``auth_state["user_attributes"]``."""

    name = "ldapauth"

    group_base = Unicode(
        "",
        config=True,
        help="Only group DNs under this DN count (e.g. ``ou=groups,dc=example,dc=org``).",
    )
    use_ldap_groups = Bool(
        True,
        config=True,
        help="""Also count the groups in ``auth_state["ldap_groups"]`` (the
        LDAPAuthenticator.allowed_groups the user matched).""",
    )
    group_gids = Dict(
        config=True,
        help="""Group name -> gid, for groups whose gid the pod needs (supplementalGroups,
        /etc/group). The primary group's name is found here by its gid.""",
    )

    @default("group_membership_attribute")
    def _default_membership(self) -> str:
        return "memberOf"

    async def fetch(self, username: str, auth_state: Mapping[str, Any] | None) -> dict[str, Any]:
        raw = claims_from(auth_state, "user_attributes", username, self.name)
        attrs = {str(k).lower(): v for k, v in raw.items()} if isinstance(raw, Mapping) else {}
        found = self.entry_values(attrs, self.group_base)
        if found["uid"] is None or found["uid"] == []:
            raise UserNotFound(
                f"ldapauth: auth_state['user_attributes'] of {username!r} has no "
                f"{self.uid_attribute}. Does LDAPAuthenticator.auth_state_attributes list it, "
                "and does the user's entry have one?"
            )
        if self.use_ldap_groups:  # auth_state is not None: claims_from checked it
            for dn in parse_str_list(auth_state.get("ldap_groups"), "groups", self.name):
                group = group_name_from_dn(dn, self.group_name_attribute, self.group_base)
                if group:
                    found["groups"].append(group)
        return {**found, "where": "auth_state['user_attributes']"}

    async def check(self) -> str:
        return "ldapauth: reads auth_state['user_attributes'] at spawn time; nothing to connect to"
