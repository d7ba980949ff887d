"""ChainDirectory: several backends, tried in order or combined field by field.

``mode = "first"``: ask the backends in order; the first that knows the user answers. A backend
that does not know the user (:class:`~nbspawner.errors.UserNotFound`) passes to the next one.
A backend that is *down* (:class:`~nbspawner.errors.DirectoryError`) stops the chain: a
lower-priority source might know the same name with a different uid, and a pod with someone
else's uid on a shared NFS export reads their files. ``fall_through_on_error = True`` changes
that for sites whose sources cannot disagree. A malformed record
(:class:`~nbspawner.errors.InvalidRecord`) always stops the chain.

``mode = "merge"``: the first backend gives the record, and ``fields`` takes some fields from
other backends, e.g. uid/gid/groups from LDAP and the home from a REST API::

    c.ChainDirectory.directories = ["ldap", "http"]
    c.ChainDirectory.mode = "merge"
    c.ChainDirectory.fields = {"home": 1}

Every backend involved must answer; any error refuses the lookup.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping
from typing import Any

from traitlets import Bool, Dict, Enum, List, Type, Unicode, Union, default

from ..errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from ..record import UserRecord
from . import directory_entry_points
from .base import Directory

#: record fields a merge may take from another backend, and the fields that travel with them
_MERGE_FIELDS = {
    "uid": ("uid",),
    "gid": ("gid",),
    "home": ("home",),
    "gecos": ("gecos",),
    "shell": ("shell",),
    # group names, numeric gids and (name, gid) pairs must come from one place to stay consistent
    "groups": ("groups", "supplemental_gids", "posix_groups"),
}


def load_directory_class(spec: str | type[Directory]) -> type[Directory]:
    """An installed backend by entry-point name (``"ldap"``) or ``"module:Class"``, or a class."""
    if isinstance(spec, type):
        if not issubclass(spec, Directory):
            raise ConfigError(f"chain: {spec.__name__} is not a nbspawner Directory")
        return spec
    registry = directory_entry_points()
    if spec.lower() in registry:
        return load_directory_class(registry[spec.lower()].load())
    if ":" in spec:
        import importlib

        module, _, attr = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError):
            raise ConfigError(
                f"chain: cannot import {spec!r} (ChainDirectory.directories)"
            ) from None
        return load_directory_class(cls)
    installed = sorted(registry)
    raise ConfigError(
        f"chain: unknown directory {spec!r} in ChainDirectory.directories; installed: {installed}"
    )


class ChainDirectory(Directory):
    """Combine backends: first that knows the user, or fields from several."""

    name = "chain"

    directories = List(
        Union([Unicode(), Type(klass=Directory)]),
        config=True,
        help="""Backends by entry-point name (``static``, ``ldap``, ``oidc``, ``ldapauth``,
        ``http``), ``"module:Class"``, or class. Each is configured through its own section
        (``c.LDAPDirectory...``).""",
    )
    mode = Enum(
        ["first", "merge"],
        "first",
        config=True,
        help="""``first``: the first backend that knows the user; ``merge``: see
        ChainDirectory.fields.""",
    )
    fall_through_on_error = Bool(
        False,
        config=True,
        help="""In ``first`` mode, move on to the next backend when one is unreachable. Off by
        default: a backend that is down could be the one with the right uid.""",
    )
    fields = Dict(
        config=True,
        help="""In ``merge`` mode: record field -> index of the backend in
        ChainDirectory.directories to take it from (fields: uid, gid, home, gecos, shell,
        groups). Fields not listed come from the first backend.""",
    )

    #: backend instances (built from ``directories`` unless given)
    backends = List()

    @default("backends")
    def _default_backends(self) -> list[Directory]:
        if not self.directories:
            raise ConfigError("chain: ChainDirectory.directories is empty")
        return [load_directory_class(spec)(parent=self) for spec in self.directories]

    def _merge_plan(self) -> dict[int, tuple[str, ...]]:
        plan: dict[int, list[str]] = {}
        for field_name, index in self.fields.items():
            if field_name not in _MERGE_FIELDS:
                raise ConfigError(
                    f"chain: ChainDirectory.fields has unknown field {field_name!r}; "
                    f"use {sorted(_MERGE_FIELDS)}"
                )
            if not isinstance(index, int) or not 0 <= index < len(self.backends):
                raise ConfigError(
                    f"chain: ChainDirectory.fields[{field_name!r}] must be an index into "
                    f"ChainDirectory.directories (0..{len(self.backends) - 1})"
                )
            if index:
                plan.setdefault(index, []).extend(_MERGE_FIELDS[field_name])
        return {i: tuple(f) for i, f in plan.items()}

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        if self.mode == "merge":
            return await self._merge(username, auth_state)
        missing = []
        for backend in self.backends:
            try:
                return await backend.lookup(username, auth_state)
            except UserNotFound:
                missing.append(backend.name)
            except InvalidRecord:
                raise
            except DirectoryError as e:
                if not self.fall_through_on_error:
                    raise
                # quoted: a backend's message (a third-party one's too) stays one line
                self.log.warning(
                    "chain: %s failed for %r (%r); trying the next backend because "
                    "ChainDirectory.fall_through_on_error is set",
                    backend.name,
                    username,
                    e.log_message,
                )
                missing.append(f"{backend.name} (unreachable)")
        raise UserNotFound(f"chain: {username!r} not found in {', '.join(missing)}")

    async def _merge(self, username: str, auth_state: Mapping[str, Any] | None) -> UserRecord:
        plan = self._merge_plan()
        indexes = [0, *sorted(plan)]
        # ask all involved backends at once; the first error (in backend order) wins
        results = await asyncio.gather(
            *(self.backends[i].lookup(username, auth_state) for i in indexes),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        base: UserRecord = results[0]
        changes: dict[str, Any] = {}
        for i, record in zip(indexes[1:], results[1:], strict=True):
            for field_name in plan[i]:
                changes[field_name] = getattr(record, field_name)
        sources = "+".join(dict.fromkeys(r.source or "?" for r in results))
        return dataclasses.replace(base, source=sources, **changes)

    async def check(self) -> str:
        lines = [await backend.check() for backend in self.backends]
        return f"chain ({self.mode}): " + "; ".join(lines)

    async def close(self) -> None:
        for backend in self.backends:
            await backend.close()
