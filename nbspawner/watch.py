"""One hot-reloaded file: re-read when it changes, the last good version kept.

:meth:`WatchedFile.get` stats the file (at most every ``check_interval`` seconds; 0 stats on
every call, which costs a few microseconds) and re-parses it when its mtime, size, inode or
device changed. Kubernetes updates a mounted ConfigMap/Secret by swapping a symlink, which
changes the inode, so in-place edits and volume updates are both seen. (A file mounted with
``subPath``, as z2jh's ``hub.extraFiles`` does, is never updated by Kubernetes: mount the
ConfigMap or Secret as a directory to get hot reload.)

An edit that does not parse keeps the last good version and is reported once (the same bad
file is not reported again); a file that disappears keeps it too. If the *first* load fails,
:meth:`get` raises: the caller must refuse rather than run on nothing. :meth:`aget` parses a
changed file in a worker thread, so no request waits on a large file.

Subclasses say what the file is: :meth:`parse` (raising :attr:`invalid_error` for a bad file)
and the messages (:meth:`installed`, :meth:`rejected`, :meth:`vanished`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")
_NOTHING = object()


class WatchedFile(Generic[T]):
    #: the exception :meth:`parse` raises for a file that is there but invalid
    invalid_error: type[Exception] = ValueError

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        check_interval: float = 0.0,
        logger: logging.Logger | logging.LoggerAdapter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.check_interval = check_interval
        self.log = logger or logging.getLogger(type(self).__module__)
        self._clock = clock
        self._value: T | None = None
        self._signature: tuple[int, ...] | None = None
        #: the signature of the last rejected file (so one bad edit is reported once)
        self._bad_signature: object = _NOTHING
        self._next_check = float("-inf")
        self._lock = threading.Lock()
        self._reload_task: asyncio.Future[None] | None = None
        #: the error of the last rejected edit (None once a good file is loaded)
        self.last_error: Exception | None = None

    # ---- what a subclass defines
    def parse(self, path: Path) -> T:
        raise NotImplementedError

    def installed(self, value: T, first: bool) -> None:
        """Called when a version is taken into use (``first``: the initial load)."""

    def rejected(self, error: Exception) -> None:
        """Called once per bad edit (the previous version stays in use)."""

    def vanished(self) -> None:
        """Called once when the file disappears (the previous version stays in use)."""

    # ---- the mechanism
    def _stat(self) -> tuple[int, ...] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_dev)

    def _due(self) -> bool:
        now = self._clock()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval
        return True

    def get(self) -> T:
        """The current version (re-read first if the file changed)."""
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._first_load()
            assert self._value is not None
            return self._value
        if self._due():
            signature = self._stat()
            if self._changed(signature):
                with self._lock:
                    self._reload(signature)
        return self._value

    async def aget(self) -> T:
        """Like :meth:`get`, but parses a changed file in a worker thread."""
        if self._value is None:
            await asyncio.to_thread(self.get)
            assert self._value is not None
            return self._value
        if self._due():
            signature = self._stat()
            if self._changed(signature):
                if self._reload_task is None or self._reload_task.done():
                    self._reload_task = asyncio.ensure_future(
                        asyncio.to_thread(self._locked_reload, signature)
                    )
                await asyncio.shield(self._reload_task)
        return self._value

    def _changed(self, signature: tuple[int, ...] | None) -> bool:
        return signature != self._signature and signature != self._bad_signature

    def _locked_reload(self, signature: tuple[int, ...] | None) -> None:
        with self._lock:
            self._reload(signature)

    def _first_load(self) -> None:
        self._next_check = self._clock() + self.check_interval
        signature = self._stat()
        try:
            value = self.parse(self.path)
        except self.invalid_error as e:
            self.last_error = e
            self.counted("invalid")
            raise
        self.counted("ok")
        self._install(value, signature, first=True)

    def counted(self, outcome: str) -> None:
        """A load's outcome (``ok`` or ``invalid``), for a metric."""

    def _install(self, value: T, signature: tuple[int, ...] | None, *, first: bool) -> None:
        self._value = value
        self._signature = signature
        self._bad_signature = _NOTHING
        self.last_error = None
        self.installed(value, first)

    def _reload(self, signature: tuple[int, ...] | None) -> None:
        if not self._changed(signature):
            return  # another caller reloaded it meanwhile
        if signature is None:
            self._bad_signature = None
            self.counted("invalid")
            self.vanished()
            return
        try:
            value = self.parse(self.path)
        except self.invalid_error as e:
            self._bad_signature = signature
            self.last_error = e
            self.counted("invalid")
            self.rejected(e)
            return
        self.counted("ok")
        self._install(value, signature, first=False)


__all__ = ["WatchedFile"]
