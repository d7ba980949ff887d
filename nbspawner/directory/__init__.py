"""Directory backends: who a user is (uid, gid, groups, home)."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from .base import Directory, UserRecord

#: where third-party backends register (``[project.entry-points."nbspawner.directories"]``)
ENTRY_POINT_GROUP = "nbspawner.directories"

#: the backends nbspawner ships, by their short names. They work even where the package's
#: entry points are not registered (nbspawner copied into the hub with ``hub.extraFiles`` or a
#: ConfigMap rather than pip-installed).
BUILTIN_DIRECTORIES = {
    "static": "nbspawner.directory.static:StaticDirectory",
    "ldap": "nbspawner.directory.ldap:LDAPDirectory",
    "oidc": "nbspawner.directory.oidc:OIDCClaimsDirectory",
    "ldapauth": "nbspawner.directory.ldapauth:LDAPAuthStateDirectory",
    "http": "nbspawner.directory.http:HTTPDirectory",
    "chain": "nbspawner.directory.chain:ChainDirectory",
}


def directory_entry_points() -> dict[str, EntryPoint]:
    """Every backend by lower-case short name: the built-in ones, then installed entry points
    (which may add names, or replace a built-in one on purpose)."""
    found = {
        name: EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)
        for name, value in BUILTIN_DIRECTORIES.items()
    }
    found.update({ep.name.lower(): ep for ep in entry_points(group=ENTRY_POINT_GROUP)})
    return found


__all__ = [
    "BUILTIN_DIRECTORIES",
    "ENTRY_POINT_GROUP",
    "Directory",
    "UserRecord",
    "directory_entry_points",
]
