"""LDAPDirectory against a real slapd: TLS modes, failover, faults, injection, secrets, pool."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any

import pytest

from nbspawner.directory.cache import CachedDirectory
from nbspawner.errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from tests.fixtures.slapd import BASE_DN, READER_PASSWORD, find_free_port

pytestmark = pytest.mark.integration


async def measure_loop_stall(awaitable: Any, tick: float = 0.005) -> tuple[Any, float]:
    """Await ``awaitable`` while a ticker measures how late the event loop wakes it (max).

    The garbage collector is paused while measuring: late in a full run the test process holds
    a large heap, and one full collection (about 0.2 s, seen in CI) is the test process's pause,
    not the directory's. What is measured is whether the lookups block the loop.
    """
    lateness: list[float] = []
    running = True
    gc.collect()
    gc.disable()

    async def ticker() -> None:
        while running:
            start = time.perf_counter()
            await asyncio.sleep(tick)
            lateness.append(time.perf_counter() - start - tick)

    task = asyncio.ensure_future(ticker())
    await asyncio.sleep(0)
    try:
        result = await awaitable
    finally:
        running = False
        await task
        gc.enable()
    return result, max(lateness, default=0.0)


@pytest.mark.parametrize("tls_mode", ["none", "starttls", "ldaps"])
async def test_tls_modes(make_ldap_directory, tls_mode):
    ldap = make_ldap_directory(tls_mode)
    alice = await ldap.lookup("alice")
    assert (alice.uid, alice.source) == (2001, "ldap")
    assert (await ldap.lookup("bob")).uid == 2002
    assert ldap.connections_opened == 1  # one connection, reused
    assert tls_mode in await ldap.check()


@pytest.mark.parametrize("tls_mode", ["starttls", "ldaps"])
async def test_wrong_ca_is_refused(make_ldap_directory, ldap_server, tls_mode):
    ldap = make_ldap_directory(tls_mode, ca_file=ldap_server.wrong_ca_file)
    with pytest.raises(DirectoryError) as info:
        await ldap.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert "TLS failed (certificate not trusted)" in info.value.log_message
    assert "LDAPDirectory.ca_file" in info.value.log_message
    assert info.value.reason == "directory_tls"


@pytest.mark.parametrize("tls_mode", ["starttls", "ldaps"])
async def test_certificate_for_another_name_is_refused(
    make_ldap_directory, ldap_server, tcp_proxy, tls_mode
):
    # the right CA, the right server, but reached as 127.0.0.2: the certificate names only
    # localhost and 127.0.0.1, so a man in the middle with any valid certificate is refused
    port = ldap_server.ldaps_port if tls_mode == "ldaps" else ldap_server.port
    proxy = tcp_proxy("127.0.0.1", port, listen_host="127.0.0.2")
    scheme = "ldaps" if tls_mode == "ldaps" else "ldap"
    ldap = make_ldap_directory(tls_mode, server_urls=[f"{scheme}://127.0.0.2:{proxy.port}"])
    with pytest.raises(DirectoryError) as info:
        await ldap.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert info.value.reason == "directory_tls", info.value.log_message
    assert "certificate does not name this host" in info.value.log_message
    assert proxy.connections_accepted >= 1  # it did reach the server: TLS refused the name


async def test_ldaps_by_host_name(make_ldap_directory, ldap_server):
    ldap = make_ldap_directory("ldaps", server_urls=[f"ldaps://localhost:{ldap_server.ldaps_port}"])
    assert (await ldap.lookup("alice")).uid == 2001


async def test_starttls_against_the_ldaps_port_fails_clearly(make_ldap_directory, ldap_server):
    ldap = make_ldap_directory(
        "starttls", server_urls=[f"ldap://127.0.0.1:{ldap_server.ldaps_port}"]
    )
    with pytest.raises(DirectoryError, match="no LDAP server could be used"):
        await ldap.lookup("alice")


@pytest.mark.parametrize("failover", ["first", "round_robin"])
async def test_failover_when_the_first_server_is_dead(make_ldap_directory, ldap_server, failover):
    dead = f"ldap://127.0.0.1:{find_free_port()}"
    ldap = make_ldap_directory(server_urls=[dead, ldap_server.url], failover=failover)
    records = await asyncio.gather(*(ldap.lookup(n) for n in ["alice", "bob"] * 10))
    assert {r.uid for r in records} == {2001, 2002}
    assert ldap.connections_opened <= ldap.pool_size


async def test_every_server_dead(make_ldap_directory):
    ports = [find_free_port(), find_free_port()]
    ldap = make_ldap_directory(server_urls=[f"ldap://127.0.0.1:{p}" for p in ports])
    with pytest.raises(DirectoryError) as info:
        await ldap.lookup("alice")
    for port in ports:
        assert f"127.0.0.1:{port}: cannot connect" in info.value.log_message
    assert "Is LDAPDirectory.server_urls correct" in info.value.log_message


async def test_slapd_stopped_mid_run_then_recovery(make_ldap_directory, ldap_server):
    ldap = make_ldap_directory()
    cached = CachedDirectory(ldap)
    assert (await cached.lookup("alice")).uid == 2001
    with ldap_server.stopped():
        # the cached user still spawns; anyone else is refused as "directory down", not "unknown"
        assert (await cached.lookup("alice")).uid == 2001
        with pytest.raises(DirectoryError) as info:
            await cached.lookup("bob")
        assert not isinstance(info.value, UserNotFound)
        assert "LDAPDirectory.server_urls" in info.value.log_message
        with pytest.raises(DirectoryError):
            await ldap.lookup("alice")  # no cache: refused too
    # back: the stale connection is replaced transparently and the error was not cached
    assert (await cached.lookup("bob")).uid == 2002
    assert (await ldap.lookup("carol")).uid == 2003


async def test_slow_server_times_out_while_the_event_loop_stays_responsive(
    make_ldap_directory, ldap_server, tcp_proxy
):
    proxy = tcp_proxy("127.0.0.1", ldap_server.port, delay=5.0)
    ldap = make_ldap_directory(server_urls=[proxy.url], search_timeout=1.0)

    async def one(name: str) -> tuple[BaseException | None, float]:
        start = time.monotonic()
        try:
            await ldap.lookup(name)
        except DirectoryError as e:
            return e, time.monotonic() - start
        return None, time.monotonic() - start

    results, stall = await measure_loop_stall(
        asyncio.gather(*(one(f"user{i}") for i in range(ldap.pool_size)))
    )
    for error, elapsed in results:
        assert isinstance(error, DirectoryError) and not isinstance(error, UserNotFound)
        assert "timed out" in error.log_message
        assert 0.9 < elapsed < 2.5  # about search_timeout, not the proxy's 5 s
    assert stall < 0.1, f"event loop stalled {stall * 1000:.0f} ms"


async def test_lookup_timeout_bounds_queued_lookups(make_ldap_directory, ldap_server, tcp_proxy):
    proxy = tcp_proxy("127.0.0.1", ldap_server.port, delay=5.0)
    ldap = make_ldap_directory(server_urls=[proxy.url], search_timeout=3.0, lookup_timeout=1.0)
    start = time.monotonic()
    results, stall = await measure_loop_stall(
        asyncio.gather(*(ldap.lookup(f"user{i}") for i in range(40)), return_exceptions=True)
    )
    assert time.monotonic() - start < 2.0
    assert all(isinstance(r, DirectoryError) for r in results)
    assert any("lookup_timeout" in r.log_message for r in results)
    assert stall < 0.1


async def test_blackholed_server(make_ldap_directory, tcp_proxy):
    proxy = tcp_proxy("127.0.0.1", 9, blackhole=True)
    ldap = make_ldap_directory(server_urls=[proxy.url], search_timeout=1.0)
    start = time.monotonic()
    with pytest.raises(DirectoryError, match="timed out"):
        await ldap.lookup("alice")
    assert time.monotonic() - start < 2.5


async def test_delayed_server_still_answers(make_ldap_directory, ldap_server, tcp_proxy):
    proxy = tcp_proxy("127.0.0.1", ldap_server.port, delay=0.2)
    ldap = make_ldap_directory(server_urls=[proxy.url], search_timeout=2.0)
    records, stall = await measure_loop_stall(
        asyncio.gather(*(ldap.lookup(n) for n in ["alice", "bob", "carol"] * 4))
    )
    assert [r.uid for r in records] == [2001, 2002, 2003] * 4
    assert stall < 0.1


@pytest.mark.parametrize(
    "username",
    [
        "*",
        "a*)(uid=*",
        "admin)(|(uid=*",
        "*)(objectClass=*",
        "alice)(uid=bob",
        "al*",
        "\\2a",
        "alice\\",
        "(",
        ")",
        "*)",
        "a\\*",
    ],
)
async def test_filter_injection_finds_nothing(make_ldap_directory, username):
    ldap = make_ldap_directory()
    # escaped properly, these are literal names nobody has: "not found", not "ambiguous"
    with pytest.raises(UserNotFound):
        await ldap.lookup(username)


@pytest.mark.parametrize("username", ["alice\x00", "\x00", "alice\n(uid=bob)", "alice\r"])
async def test_control_characters_are_refused_before_any_query(make_ldap_directory, username):
    ldap = make_ldap_directory()
    with pytest.raises(UserNotFound):
        await ldap.lookup(username)
    assert ldap.connections_opened == 0


async def test_wildcard_looking_name_matches_only_itself(make_ldap_directory):
    record = await make_ldap_directory().lookup("a*")
    assert (record.username, record.uid) == ("a*", 2106)


async def test_entry_must_carry_the_exact_username(make_ldap_directory):
    ldap = make_ldap_directory()
    with pytest.raises(InvalidRecord) as info:
        await ldap.lookup("ALICE")  # LDAP matches uid case-insensitively
    assert (info.value.field, info.value.kind) == ("username", "does not match the hub username")
    # a filter that also matches on cn would hand out alice's uid for "Alice Liddell"
    loose = make_ldap_directory(
        search_filter="(&(objectClass=posixAccount)(|(uid={username})(cn={username})))"
    )
    with pytest.raises(InvalidRecord):
        await loose.lookup("Alice Liddell")


async def test_ambiguous_entries_are_refused(make_ldap_directory):
    ldap = make_ldap_directory(search_base=BASE_DN)
    with pytest.raises(InvalidRecord) as info:
        await ldap.lookup("twin")
    assert info.value.kind == "ambiguous"


async def test_groups_from_member_of(make_ldap_directory, ldap_server):
    only_member_of = make_ldap_directory(
        group_membership_attribute="memberOf", group_search_base=""
    )
    alice = await only_member_of.lookup("alice")
    assert alice.groups == ("gpu-users", "physics")
    assert alice.posix_groups == ()  # names only: memberOf carries no gids
    both = make_ldap_directory(group_membership_attribute="memberOf")
    alice = await both.lookup("alice")
    assert alice.posix_groups == (("gpu-users", 3002), ("hpc", 2000), ("physics", 3001))


async def test_group_search_without_primary_group(make_ldap_directory):
    alice = await make_ldap_directory(primary_group_filter="").lookup("alice")
    assert alice.groups == ("gpu-users", "physics")
    assert alice.supplemental_gids == (3001, 3002)


async def test_wrong_bind_password(make_ldap_directory, tmp_path, caplog):
    wrong = tmp_path / "pw"
    wrong.write_text("Wr0ng-pa55-NEVER-LOG-ME")
    ldap = make_ldap_directory(bind_password_file=str(wrong))
    with caplog.at_level(logging.DEBUG), pytest.raises(DirectoryError) as info:
        await ldap.lookup("alice")
    assert "invalidCredentials" in info.value.log_message
    assert "LDAPDirectory.bind_password_file" in info.value.log_message
    assert "Wr0ng-pa55" not in caplog.text + str(info.value)


async def test_password_from_environment(make_ldap_directory, monkeypatch):
    monkeypatch.setenv("NBSPAWNER_TEST_LDAP_PASSWORD", READER_PASSWORD)
    ldap = make_ldap_directory(
        bind_password_file="", bind_password_env="NBSPAWNER_TEST_LDAP_PASSWORD"
    )
    assert (await ldap.lookup("alice")).uid == 2001


async def test_password_never_appears_in_logs(make_ldap_directory, ldap_server, caplog, tcp_proxy):
    caplog.set_level(logging.DEBUG)  # every logger, ldap3's included
    texts = []
    for tls_mode in ("none", "starttls", "ldaps"):
        ldap = make_ldap_directory(tls_mode)
        ldap.log.setLevel(logging.DEBUG)
        await ldap.lookup("alice")
        await ldap.check()
        for name in ("nobody", "mallory", "a*)(uid=*"):
            with pytest.raises((UserNotFound, InvalidRecord)) as info:
                await ldap.lookup(name)
            texts.append(str(info.value))
    slow = make_ldap_directory(
        server_urls=[tcp_proxy("127.0.0.1", ldap_server.port, delay=3).url], search_timeout=1
    )
    with pytest.raises(DirectoryError) as info:
        await slow.lookup("alice")
    texts.append(str(info.value))
    texts.append(repr(ldap))
    texts.append(str(ldap.config))
    texts += [str(getattr(ldap, name)) for name in ldap.trait_names()]
    logged = [r.getMessage() + str(r.args) + str(r.exc_text) for r in caplog.records]
    assert READER_PASSWORD not in "\n".join(texts + logged)


async def test_connection_pool_is_bounded_under_a_storm(make_ldap_directory):
    ldap = make_ldap_directory(pool_size=3)
    names = ["alice", "bob", "carol", "nobody"] * 50
    results = await asyncio.gather(*(ldap.lookup(n) for n in names), return_exceptions=True)
    for name, result in zip(names, results, strict=True):
        if name == "nobody":
            assert isinstance(result, UserNotFound)
        else:
            assert result.username == name
    assert 1 <= ldap.connections_opened <= 3


async def test_missing_search_base(make_ldap_directory):
    ldap = make_ldap_directory(search_base="ou=nowhere,dc=example,dc=org")
    with pytest.raises(DirectoryError) as info:
        await ldap.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert "noSuchObject" in info.value.log_message
    with pytest.raises(DirectoryError, match="cannot be read"):
        await ldap.check()


async def test_close_then_reuse(make_ldap_directory):
    ldap = make_ldap_directory()
    await ldap.lookup("alice")
    await ldap.close()
    assert (await ldap.lookup("bob")).uid == 2002
    assert ldap.connections_opened == 2


async def test_invalid_filter_syntax_is_a_config_error(make_ldap_directory):
    # balanced braces for str.format, unbalanced parentheses for LDAP
    ldap = make_ldap_directory(search_filter="(&(objectClass=posixAccount)(uid={username})")
    with pytest.raises(ConfigError, match="search_filter"):
        await ldap.lookup("alice")
    # the connection survives a refused filter
    good = make_ldap_directory()
    assert (await good.lookup("alice")).uid == 2001
