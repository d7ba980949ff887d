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
entry: list the ones the pod needs in ``LDAPAuthStateDirectory.group_gids``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Unicode

from ..errors import DirectoryError, UserNotFound
from .base import Directory, UserRecord, group_fields, parse_int, parse_str, parse_str_list
from .ldap import group_name_from_dn


class LDAPAuthStateDirectory(Directory):
    """Read uid/gid/home/groups from ldapauthenticator's ``auth_state["user_attributes"]``."""

    name = "ldapauth"

    uid_attribute = Unicode("uidNumber", config=True, help="Attribute holding the numeric uid.")
    gid_attribute = Unicode("gidNumber", config=True, help="Attribute holding the primary gid.")
    home_attribute = Unicode("homeDirectory", config=True, help="Attribute holding the home.")
    gecos_attribute = Unicode("gecos", config=True, help="Attribute holding the full name.")
    gecos_fallback_attribute = Unicode(
        "cn", config=True, help="Used for the full name when gecos_attribute is absent."
    )
    shell_attribute = Unicode(
        "loginShell", config=True, help="Attribute holding the login shell (default /bin/bash)."
    )
    group_membership_attribute = Unicode(
        "memberOf",
        config=True,
        help="""Attribute listing the user's group DNs; the group name is the DN's first RDN
        (group_name_attribute). Empty: not used.""",
    )
    group_name_attribute = Unicode("cn", config=True, help="RDN attribute naming a group.")
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

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        src = self.name
        if auth_state is None:
            raise DirectoryError(
                f"ldapauth: no auth_state for {username!r}. Set Authenticator.enable_auth_state = "
                "True (and JUPYTERHUB_CRYPT_KEY); users must log in again afterwards",
                "Please log out and log in again so your account details can be read.",
                reason="no_auth_state",
            )
        raw = auth_state.get("user_attributes")
        if not isinstance(raw, Mapping):
            raw = {}
        attrs = {str(k).lower(): v for k, v in raw.items()}

        def get(name: str) -> Any:
            return attrs.get(name.lower()) if name else None

        uid_value = get(self.uid_attribute)
        if uid_value is None or uid_value == []:
            raise UserNotFound(
                f"ldapauth: auth_state['user_attributes'] of {username!r} has no "
                f"{self.uid_attribute}. Does LDAPAuthenticator.auth_state_attributes list it, "
                "and does the user's entry have one?"
            )
        uid = parse_int(uid_value, "uid", src)
        gid = parse_int(get(self.gid_attribute), "gid", src)
        home = parse_str(get(self.home_attribute), "home", src)
        gecos_raw = get(self.gecos_attribute) or get(self.gecos_fallback_attribute)
        if isinstance(gecos_raw, list) and len(gecos_raw) > 1:
            gecos_raw = gecos_raw[:1]
        gecos = parse_str(gecos_raw, "gecos", src, required=False)
        shell = parse_str(get(self.shell_attribute), "shell", src, required=False) or "/bin/bash"

        dns: list[str] = []
        if self.group_membership_attribute:
            dns.extend(parse_str_list(get(self.group_membership_attribute), "groups", src))
        if self.use_ldap_groups:
            dns.extend(parse_str_list(auth_state.get("ldap_groups"), "groups", src))
        names = []
        for dn in dns:
            name = group_name_from_dn(dn, self.group_name_attribute, self.group_base)
            if name:
                names.append(name)
        gids = self.configured_group_gids()
        return UserRecord(
            username=username,
            uid=uid,
            gid=gid,
            home=home,
            gecos=gecos,
            shell=shell,
            source=src,
            **group_fields(gid, names, gids),
        )

    async def check(self) -> str:
        return "ldapauth: reads auth_state['user_attributes'] at spawn time; nothing to connect to"
