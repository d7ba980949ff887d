"""LDAPPool: a few bound connections shared by every lookup, used off the event loop.

ldap3 is synchronous, so every ldap3 call runs in a dedicated thread pool of ``size`` workers.
A lookup borrows an idle bound connection (or opens one when none is idle) and returns it
afterwards; a connection is used by one thread at a time and dropped after a failure. As at
most ``size`` lookups run at once, there are never more than ``size`` LDAP connections,
however many users spawn at once. Each call is bounded by ``timeout`` seconds as the caller
sees it, waiting for a free connection included.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..errors import DirectoryError, NBSpawnerError
from ..ids import shown
from .ldap_servers import unbind_quietly
from .values import quoted_exc_info

T = TypeVar("T")


class ConnectionLost(Exception):
    """A connection-level failure: the connection is unusable afterwards."""

    def __init__(self, message: str, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class LDAPPool:
    """Connections from ``open_connection`` (a blocking callable), ``size`` at most."""

    def __init__(
        self, open_connection: Callable[[], Any], size: int, timeout: float, log: Any
    ) -> None:
        self.open_connection = open_connection
        self.size = size
        self.timeout = timeout
        self.log = log
        self._lock = threading.Lock()
        #: every open connection, and the idle ones among them (guarded by _lock)
        self._connections: set[Any] = set()
        self._idle: list[Any] = []
        self._executor: ThreadPoolExecutor | None = None

    # -- worker threads only ------------------------------------------------------------------

    def _open(self) -> Any:
        conn = self.open_connection()
        with self._lock:
            self._connections.add(conn)
        return conn

    def _acquire(self) -> tuple[Any, bool]:
        """An idle connection (most recently used first) or a new one; ``(conn, fresh)``.

        Under light load the same one or two connections are reused.
        """
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed:
                    return conn, False
                self._connections.discard(conn)
        return self._open(), True

    def _release(self, conn: Any) -> None:
        with self._lock:
            if conn in self._connections:  # not closed by close() meanwhile
                self._idle.append(conn)

    def _drop(self, conn: Any) -> None:
        with self._lock:
            self._connections.discard(conn)
        unbind_quietly(conn)

    def _discard_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            self._drop(conn)

    def _use(self, conn: Any, func: Callable[[Any], T]) -> T:
        """``func(conn)``, then return ``conn`` to the pool, or drop it if it may be broken."""
        try:
            result = func(conn)
        except NBSpawnerError:
            self._release(conn)  # an answer (not found, malformed...): the connection is fine
            raise
        except BaseException:
            self._drop(conn)  # ConnectionLost or anything unexpected: state unknown
            raise
        self._release(conn)
        return result

    def with_connection(self, func: Callable[[Any], T]) -> T:
        """``func(conn)`` on a pooled connection (blocking; raises ConnectionLost).

        A reused connection may simply be stale (server restarted, idle timeout): it is retried
        once on a new one. Not after a timeout, which would double the wait.
        """
        conn, fresh = self._acquire()
        try:
            return self._use(conn, func)
        except ConnectionLost as e:
            if fresh or e.timed_out:
                raise
            self._discard_idle()  # they went stale together
        return self._use(self._open(), func)

    # -- the event loop's side ----------------------------------------------------------------

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` in a worker thread, within ``timeout``; failures fail closed."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.size, thread_name_prefix="nbspawner-ldap"
            )
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, func, *args)
        # a timer instead of asyncio.wait_for, which costs an extra task per lookup: in a spawn
        # storm that is event-loop time every other request of the hub waits for
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            future.cancel()  # a lookup still queued for a connection is dropped

        timer = loop.call_later(self.timeout, expire)
        try:
            return await future
        except NBSpawnerError:
            raise
        except asyncio.CancelledError:
            if not expired:
                raise
            raise DirectoryError(
                f"ldap: no answer within LDAPDirectory.lookup_timeout ({self.timeout:g}s); "
                "the LDAP servers are slow or LDAPDirectory.pool_size is too small for the load"
            ) from None
        except Exception as e:
            # fail closed on anything unexpected, with the type for the admin (not the text:
            # ldap3 messages can quote server data)
            self.log.debug("ldap: unexpected error: %s", shown(e, 300), exc_info=quoted_exc_info(e))
            raise DirectoryError(f"ldap: unexpected error ({type(e).__name__})") from None
        finally:
            timer.cancel()

    def _close_blocking(self) -> None:
        with self._lock:
            connections = list(self._connections)
            self._connections.clear()
            self._idle.clear()
        for conn in connections:
            unbind_quietly(conn)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        # worker threads drop their (now closed) connections and reopen on the next lookup
        await asyncio.to_thread(self._close_blocking)
