"""The directory contract: one record type and one async method.

A backend subclasses :class:`Directory`. The only method it must define is
:meth:`Directory.lookup`; :meth:`~Directory.check` and :meth:`~Directory.close` are optional.
``lookup`` returns a :class:`~nbspawner.record.UserRecord` with *typed* values (ints are ints)
or raises

- :class:`~nbspawner.errors.UserNotFound` when the directory does not know the user,
- :class:`~nbspawner.errors.InvalidRecord` when an attribute is missing or malformed
  (``"abc"`` for a uidNumber is a refusal, not a crash),
- :class:`~nbspawner.errors.DirectoryError` when the directory cannot be asked
  (down, timeout, TLS failure).

A backend that finds a user's attributes as one mapping (every built-in one but the chain)
subclasses :class:`~nbspawner.directory.mapped.MappedDirectory` instead and defines only how it
fetches that mapping. Backends never decide policy (minimum uid, allowed home roots): that is
:func:`nbspawner.policy.validate_record`'s job, applied to every record from every backend.
Blocking client libraries (ldap3) must run off the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from traitlets.config import LoggingConfigurable

from ..record import UserRecord
from .values import parse_int


class Directory(LoggingConfigurable):
    """Base class of directory backends.

    Subclasses set :attr:`name` and implement :meth:`lookup`. Configuration is traitlets
    (``c.LDAPDirectory.server_urls = [...]``), so everything is reachable from z2jh's
    ``hub.config``. One instance is shared by all spawners of a hub (it may hold a
    connection pool), so ``lookup`` must be safe to call concurrently.
    """

    #: short name used in logs, metrics and ``UserRecord.source``
    name = "directory"

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        """Return the record for ``username``.

        ``auth_state`` is the authenticator's auth_state for this user (``None`` when auth state
        is disabled or the user has none); claim-based backends read it, others ignore it.
        """
        raise NotImplementedError

    async def check(self) -> str:
        """Check connectivity for ``nbspawner check``; return a one-line description.

        Raise :class:`~nbspawner.errors.DirectoryError` with an actionable message on failure.
        """
        return f"{self.name}: nothing to check"

    async def close(self) -> None:
        """Release connections. Called when the hub shuts down and in tests."""

    def configured_group_gids(self) -> dict[str, int]:
        """The backend's ``group_gids`` setting (group name -> gid for directories that name
        groups without numbers), each gid checked like a directory value."""
        setting = f"{type(self).__name__}.group_gids"
        return {
            str(k): parse_int(v, setting, self.name)
            for k, v in getattr(self, "group_gids", {}).items()
        }


__all__ = ["Directory", "UserRecord"]
