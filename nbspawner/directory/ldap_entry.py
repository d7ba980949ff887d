"""What an LDAP entry says about a user: the attribute names and the DN rules.

Shared by the two backends that read LDAP attributes: :class:`~nbspawner.directory.ldap.
LDAPDirectory` (which searches for them) and :class:`~nbspawner.directory.ldapauth.
LDAPAuthStateDirectory` (which reads what ldapauthenticator kept from its own search). The
attribute settings are declared once here; each backend re-defaults only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets import Unicode
from traitlets.config import LoggingConfigurable

from .values import parse_str_list

try:
    from ldap3.utils.dn import parse_dn
except ImportError as _e:  # pragma: no cover - ldap3 ships with the z2jh hub image
    raise ImportError("the LDAP backends need ldap3: pip install ldap3") from _e


def _unescape_dn_value(value: str) -> str:
    r"""``Foo\, Bar`` -> ``Foo, Bar`` and ``\4A`` -> ``J`` (RFC 4514 escapes)."""
    if "\\" not in value:
        return value
    out = bytearray()
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            pair = value[i + 1 : i + 3]
            if len(pair) == 2 and all(ch in "0123456789abcdefABCDEF" for ch in pair):
                out.append(int(pair, 16))
                i += 3
                continue
            out.extend(value[i + 1].encode("utf-8"))
            i += 2
            continue
        out.extend(c.encode("utf-8"))
        i += 1
    return out.decode("utf-8", errors="replace")


def group_name_from_dn(dn: str, name_attribute: str = "cn", base: str = "") -> str | None:
    """``cn=physics,ou=groups,dc=example,dc=org`` -> ``physics``.

    ``None`` when the DN cannot be parsed, its first RDN is not ``name_attribute``, or (when
    ``base`` is given) it does not lie under ``base``. Comparisons ignore case, as LDAP does.
    """
    try:
        parts = parse_dn(dn)
    except Exception:  # ldap3 raises LDAPInvalidDnError and sometimes plain errors
        return None
    if not parts or parts[0][0].lower() != name_attribute.lower():
        return None
    if base:
        try:
            base_parts = parse_dn(base)
        except Exception:
            return None
        if len(base_parts) >= len(parts):
            return None
        tail = parts[len(parts) - len(base_parts) :]
        for (a1, v1, _), (a2, v2, _) in zip(tail, base_parts, strict=True):
            if (
                a1.lower() != a2.lower()
                or _unescape_dn_value(v1).lower() != _unescape_dn_value(v2).lower()
            ):
                return None
    return _unescape_dn_value(parts[0][1]) or None


class LDAPAttributes(LoggingConfigurable):
    """The attributes of a posixAccount entry that make a user's record."""

    uid_attribute = Unicode("uidNumber", config=True, help="Attribute holding the numeric uid.")
    gid_attribute = Unicode("gidNumber", config=True, help="Attribute holding the primary gid.")
    home_attribute = Unicode("homeDirectory", config=True, help="Attribute holding the home.")
    gecos_attribute = Unicode("gecos", config=True, help="Attribute holding the full name.")
    gecos_fallback_attribute = Unicode(
        "cn",
        config=True,
        help="Attribute used for the full name when gecos_attribute is absent. Empty: none.",
    )
    shell_attribute = Unicode(
        "loginShell", config=True, help="Attribute holding the login shell (default /bin/bash)."
    )
    group_membership_attribute = Unicode(
        "",
        config=True,
        help="""User attribute listing group DNs (``memberOf``). The group name is the DN's
        first RDN (group_name_attribute); only DNs under the group base count. Empty: not
        used.""",
    )
    group_name_attribute = Unicode("cn", config=True, help="Attribute holding a group's name.")

    def entry_attributes(self) -> list[str]:
        """The attributes to ask the server for."""
        names = [
            self.uid_attribute,
            self.gid_attribute,
            self.home_attribute,
            self.gecos_attribute,
            self.gecos_fallback_attribute,
            self.shell_attribute,
            self.group_membership_attribute,
        ]
        return sorted({a for a in names if a})

    def entry_values(self, attrs: Mapping[str, Any], group_base: str) -> dict[str, Any]:
        """The raw record values of an entry whose attribute names are lower-cased.

        Several ``cn`` values are common: the first is the name. Membership DNs outside
        ``group_base`` (when set) or not named by ``group_name_attribute`` are ignored.
        """

        def get(attribute: str) -> Any:
            return attrs.get(attribute.lower()) if attribute else None

        gecos = get(self.gecos_attribute) or get(self.gecos_fallback_attribute)
        if isinstance(gecos, list) and len(gecos) > 1:
            gecos = gecos[:1]
        groups = []
        dns = get(self.group_membership_attribute)
        for dn in parse_str_list(dns, "groups", getattr(self, "name", "ldap")) if dns else ():
            group = group_name_from_dn(dn, self.group_name_attribute, group_base)
            if group:
                groups.append(group)
        return {
            "uid": get(self.uid_attribute),
            "gid": get(self.gid_attribute),
            "home": get(self.home_attribute),
            "gecos": gecos,
            "shell": get(self.shell_attribute),
            "groups": groups,
        }
