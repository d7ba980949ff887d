"""CachedDirectory: TTLs on an injected clock, LRU bound, single-flight, what is (not) cached."""

import asyncio

import pytest
from prometheus_client import REGISTRY

from nbspawner.directory.base import Directory
from nbspawner.directory.cache import CachedDirectory
from nbspawner.errors import DirectoryError, InvalidRecord, UserNotFound
from nbspawner.record import UserRecord


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class CountingBackend(Directory):
    """Answers from a dict; counts calls; can be paused to hold lookups in flight."""

    name = "fake"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = []
        self.gate = None
        self.fail = None

    async def lookup(self, username, auth_state=None):
        self.calls.append(username)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        if username.startswith("missing"):
            raise UserNotFound(f"fake: no {username}")
        if username == "broken":
            raise InvalidRecord("fake: uid is not an integer", field="uid", kind="not an integer")
        return UserRecord(username, 2000 + len(username), 2000, f"/home/{username}", source="fake")


def metric(result):
    return (
        REGISTRY.get_sample_value("nbspawner_directory_cache_requests_total", {"result": result})
        or 0
    )


def lookups(backend, outcome):
    return (
        REGISTRY.get_sample_value(
            "nbspawner_directory_lookup_duration_seconds_count",
            {"backend": backend, "outcome": outcome},
        )
        or 0
    )


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def backend():
    return CountingBackend()


async def test_hit_within_ttl_miss_after(backend, clock):
    cache = CachedDirectory(backend, ttl=300, clock=clock)
    hits, misses = metric("hit"), metric("miss")
    first = await cache.lookup("alice")
    clock.now += 299
    assert await cache.lookup("alice") is first
    assert backend.calls == ["alice"]
    clock.now += 2
    assert await cache.lookup("alice") == first
    assert backend.calls == ["alice", "alice"]
    assert (metric("hit") - hits, metric("miss") - misses) == (1, 2)
    assert cache.name == "fake"


async def test_negative_ttl_for_not_found(backend, clock):
    cache = CachedDirectory(backend, ttl=300, negative_ttl=30, clock=clock)
    negative = metric("negative_hit")
    for _ in range(3):
        with pytest.raises(UserNotFound):
            await cache.lookup("missing-1")
    assert backend.calls == ["missing-1"]
    assert metric("negative_hit") - negative == 2
    clock.now += 31
    with pytest.raises(UserNotFound):
        await cache.lookup("missing-1")
    assert backend.calls == ["missing-1", "missing-1"]


async def test_invalid_record_cached_with_negative_ttl(backend, clock):
    cache = CachedDirectory(backend, negative_ttl=30, clock=clock)
    errors = []
    for _ in range(3):
        with pytest.raises(InvalidRecord) as info:
            await cache.lookup("broken")
        errors.append(info.value)
    assert backend.calls == ["broken"]
    # a fresh exception object each time, carrying the same fields and messages
    assert len({id(e) for e in errors}) == 3
    assert {(e.field, e.kind, e.log_message) for e in errors} == {
        ("uid", "not an integer", "fake: uid is not an integer")
    }


async def test_directory_errors_are_not_cached(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    backend.fail = DirectoryError("fake: down")
    errors_before = lookups("fake", "error")
    for _ in range(3):
        with pytest.raises(DirectoryError):
            await cache.lookup("alice")
    assert backend.calls == ["alice"] * 3
    assert lookups("fake", "error") - errors_before == 3
    backend.fail = None
    assert (await cache.lookup("alice")).uid == 2005  # recovers at once
    assert len(cache) == 1


async def test_size_bound_evicts_least_recently_used(backend, clock):
    cache = CachedDirectory(backend, max_size=3, clock=clock)
    for name in ("a", "b", "c"):
        await cache.lookup(name)
    await cache.lookup("a")  # a is now the most recently used
    await cache.lookup("d")  # evicts b
    assert len(cache) == 3
    backend.calls.clear()
    for name in ("a", "c", "d"):
        await cache.lookup(name)
    assert backend.calls == []
    await cache.lookup("b")
    assert backend.calls == ["b"]


async def test_single_flight_100_concurrent_lookups_one_backend_call(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    backend.gate = asyncio.Event()
    shared = metric("shared")
    tasks = [asyncio.ensure_future(cache.lookup("alice")) for _ in range(100)]
    await asyncio.sleep(0)
    backend.gate.set()
    results = await asyncio.gather(*tasks)
    assert backend.calls == ["alice"]
    assert cache.backend_calls == 1
    assert all(r is results[0] for r in results)
    assert metric("shared") - shared == 99


async def test_single_flight_shares_errors_but_does_not_cache_them(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    backend.gate = asyncio.Event()
    backend.fail = DirectoryError("fake: down")
    tasks = [asyncio.ensure_future(cache.lookup("alice")) for _ in range(10)]
    await asyncio.sleep(0)
    backend.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, DirectoryError) for r in results)
    assert backend.calls == ["alice"]
    backend.fail = None
    backend.gate = None
    assert (await cache.lookup("alice")).username == "alice"
    assert backend.calls == ["alice", "alice"]


async def test_cancelled_caller_does_not_cancel_the_shared_lookup(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    backend.gate = asyncio.Event()
    first = asyncio.ensure_future(cache.lookup("alice"))
    second = asyncio.ensure_future(cache.lookup("alice"))
    await asyncio.sleep(0)
    first.cancel()  # the user who started the lookup closed the page
    await asyncio.sleep(0)
    backend.gate.set()
    assert (await second).username == "alice"
    assert first.cancelled()
    assert backend.calls == ["alice"]
    # and the result was cached for the next spawn
    assert (await cache.lookup("alice")).username == "alice"
    assert backend.calls == ["alice"]


async def test_different_users_are_not_shared(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    await asyncio.gather(*(cache.lookup(f"user{i}") for i in range(20)))
    assert sorted(backend.calls) == sorted(f"user{i}" for i in range(20))


async def test_invalidate(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    await cache.lookup("alice")
    await cache.lookup("bob")
    cache.invalidate("alice")
    await cache.lookup("alice")
    await cache.lookup("bob")
    assert backend.calls == ["alice", "bob", "alice"]
    cache.invalidate()
    assert len(cache) == 0


async def test_lookup_latency_metric_by_outcome(backend, clock):
    cache = CachedDirectory(backend, clock=clock)
    before = {o: lookups("fake", o) for o in ("ok", "not_found", "invalid")}
    await cache.lookup("someone")
    with pytest.raises(UserNotFound):
        await cache.lookup("missing-2")
    with pytest.raises(InvalidRecord):
        await cache.lookup("broken")
    await cache.lookup("someone")  # a hit: not timed
    after = {o: lookups("fake", o) for o in ("ok", "not_found", "invalid")}
    assert {o: after[o] - before[o] for o in after} == {"ok": 1, "not_found": 1, "invalid": 1}


async def test_unexpected_backend_errors_fail_closed_and_are_not_cached(backend, clock, caplog):
    cache = CachedDirectory(backend, clock=clock)
    backend.fail = KeyError("uidNumber")
    with pytest.raises(DirectoryError) as info:
        await cache.lookup("alice")
    assert info.value.log_message == ("fake: unexpected error in the directory backend (KeyError)")
    assert "unexpected error in lookup" in caplog.text
    backend.fail = None
    assert (await cache.lookup("alice")).username == "alice"
    assert backend.calls == ["alice", "alice"]


async def test_zero_ttl_disables_caching(backend, clock):
    cache = CachedDirectory(backend, ttl=0, negative_ttl=0, clock=clock)
    await cache.lookup("alice")
    await cache.lookup("alice")
    assert backend.calls == ["alice", "alice"]


def test_max_size_must_be_positive(backend):
    with pytest.raises(ValueError):
        CachedDirectory(backend, max_size=0)


async def test_check_and_close_delegate(backend):
    cache = CachedDirectory(backend)
    assert await cache.check() == "fake: nothing to check"
    await cache.close()
