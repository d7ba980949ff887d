"""CachedDirectory: a TTL + LRU cache with single-flight in front of any backend.

- a record is kept for ``ttl`` seconds; "no such user" (:class:`~nbspawner.errors.UserNotFound`)
  and malformed entries (:class:`~nbspawner.errors.InvalidRecord`) for ``negative_ttl``;
- :class:`~nbspawner.errors.DirectoryError` (backend down, timeout, TLS) is never cached, so
  the next spawn asks again;
- at most ``max_size`` users are kept; the least recently used one is evicted first;
- concurrent lookups for the same user share one backend call (single-flight), so a burst of
  spawns for one user (retries, double clicks, a class starting at 9:00) costs one query.

The key is the username only. Backends that read auth_state (``oidc``, ``ldapauth``) are cached
too: their data changes only at login anyway, and the TTL bounds staleness. Call
:meth:`CachedDirectory.invalidate` for a user whose login just refreshed their auth_state, or
to apply a directory change at once.

A cache hit is a dict lookup, a clock read and a counter increment: a few microseconds, well
under the 50 µs target; an entry costs well under 2 KiB (see ``benchmarks/bench_directory.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import DirectoryError, InvalidRecord, NBSpawnerError, UserNotFound
from ..ids import shown
from ..metrics import CACHE_REQUESTS, LOOKUP_SECONDS
from ..record import UserRecord
from .base import Directory
from .values import quoted_exc_info, refuse_impossible_username


def _fresh_copy(error: NBSpawnerError) -> NBSpawnerError:
    """A new exception object with the same messages and fields.

    Raising one stored exception object again and again would grow its traceback on every
    raise and share it between tasks.
    """
    copy = error.__class__.__new__(error.__class__)
    copy.__dict__.update(error.__dict__)
    copy.args = error.args
    return copy


def _retrieve(task: asyncio.Future[Any]) -> None:
    # every waiter may have been cancelled; mark the exception as seen so asyncio doesn't warn
    if not task.cancelled():
        task.exception()


class CachedDirectory:
    """Wrap ``backend`` (a :class:`~nbspawner.directory.base.Directory`) with a cache.

    ``clock`` returns seconds (monotonic); tests pass a fake one instead of sleeping.
    """

    __slots__ = (
        "backend",
        "ttl",
        "negative_ttl",
        "max_size",
        "clock",
        "_entries",
        "_inflight",
        "_hit",
        "_miss",
        "_negative_hit",
        "_shared",
        "backend_calls",
    )

    def __init__(
        self,
        backend: Directory,
        ttl: float = 300.0,
        negative_ttl: float = 30.0,
        max_size: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self.backend = backend
        self.ttl = ttl
        self.negative_ttl = negative_ttl
        self.max_size = max_size
        self.clock = clock
        #: username -> (expires_at, UserRecord or the InvalidRecord/UserNotFound to raise)
        self._entries: OrderedDict[str, tuple[float, UserRecord | NBSpawnerError]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[UserRecord]] = {}
        # resolve the label children once: .labels() costs more than the rest of a hit
        self._hit = CACHE_REQUESTS.labels(result="hit")
        self._miss = CACHE_REQUESTS.labels(result="miss")
        self._negative_hit = CACHE_REQUESTS.labels(result="negative_hit")
        self._shared = CACHE_REQUESTS.labels(result="shared")
        #: number of backend lookups made (cache misses that were not shared)
        self.backend_calls = 0

    @property
    def name(self) -> str:
        return self.backend.name

    def __len__(self) -> int:
        return len(self._entries)

    async def lookup(
        self, username: str, auth_state: Mapping[str, Any] | None = None
    ) -> UserRecord:
        entry = self._entries.get(username)
        if entry is not None:
            expires_at, value = entry
            if expires_at > self.clock():
                self._entries.move_to_end(username)
                if value.__class__ is UserRecord:
                    self._hit.inc()
                    return value  # type: ignore[return-value]
                self._negative_hit.inc()
                raise _fresh_copy(value)  # type: ignore[arg-type]
            del self._entries[username]
        pending = self._inflight.get(username)
        if pending is not None:
            self._shared.inc()
        else:
            # a name nobody can have never reaches a backend (built-in or third-party), so no
            # query or request is sent for it; cheap, and only on a miss
            refuse_impossible_username(username, self.backend.name)
            self._miss.inc()
            self.backend_calls += 1
            # the backend call runs as its own task: a spawn that is cancelled (the user closed
            # the page) must not cancel the lookup other spawns are waiting for
            pending = asyncio.ensure_future(self._fill(username, auth_state))
            pending.add_done_callback(_retrieve)
            self._inflight[username] = pending
        return await asyncio.shield(pending)

    async def _fill(self, username: str, auth_state: Mapping[str, Any] | None) -> UserRecord:
        backend_name = self.backend.name
        start = time.perf_counter()
        outcome = "error"
        try:
            record = await self.backend.lookup(username, auth_state)
            outcome = "ok"
            self._store(username, self.ttl, record)
            return record
        except UserNotFound as e:
            outcome = "not_found"
            self._store(username, self.negative_ttl, e)
            raise
        except InvalidRecord as e:
            outcome = "invalid"
            self._store(username, self.negative_ttl, e)
            raise
        except NBSpawnerError:
            outcome = "error"  # DirectoryError, ConfigError: not cached, the next spawn asks again
            raise
        except Exception as e:
            # a bug in a backend (or a hook it calls) must still fail closed with a readable
            # refusal, not a bare 500; the traceback goes to the admin log
            # the traceback's frames for the admin, the exception's text quoted on one line (it
            # may quote the username or a server's answer)
            self.backend.log.error(
                "%s: unexpected error in lookup for %s: %s",
                backend_name,
                shown(username),
                shown(e, 300),
                exc_info=quoted_exc_info(e),
            )
            raise DirectoryError(
                f"{backend_name}: unexpected error in the directory backend ({type(e).__name__})"
            ) from None
        finally:
            LOOKUP_SECONDS.labels(backend=backend_name, outcome=outcome).observe(
                time.perf_counter() - start
            )
            self._inflight.pop(username, None)

    def _store(self, username: str, ttl: float, value: UserRecord | NBSpawnerError) -> None:
        if ttl <= 0:
            return
        if isinstance(value, BaseException):
            value = _fresh_copy(value)  # without the traceback of this call
        self._entries[username] = (self.clock() + ttl, value)
        self._entries.move_to_end(username)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def invalidate(self, username: str | None = None) -> None:
        """Forget one user (or everyone), e.g. after a login refreshed their auth_state."""
        if username is None:
            self._entries.clear()
        else:
            self._entries.pop(username, None)

    async def check(self) -> str:
        return await self.backend.check()

    async def close(self) -> None:
        await self.backend.close()


# One directory (its cache and connection pool) per hub, shared by every spawner. The key is
# the directory's configuration, so that tests and tools running several configurations in one
# process each get their own.
_SHARED: dict[str, CachedDirectory] = {}


def shared_directory(
    cls: type[Directory], parent: Any, *, ttl: float, negative_ttl: float, max_size: int
) -> CachedDirectory:
    """The one cached ``cls`` for ``parent``'s configuration (created on first use)."""
    names = [k.__name__ for k in cls.mro()]
    section = {name: parent.config[name] for name in names if name in parent.config}
    blob = json.dumps(
        [cls.__module__, cls.__qualname__, section, ttl, negative_ttl, max_size],
        sort_keys=True,
        default=repr,
    )
    key = hashlib.sha256(blob.encode()).hexdigest()
    if key not in _SHARED:
        backend = cls(parent=parent, log=parent.log)
        _SHARED[key] = CachedDirectory(
            backend, ttl=ttl, negative_ttl=negative_ttl, max_size=max_size
        )
    return _SHARED[key]
