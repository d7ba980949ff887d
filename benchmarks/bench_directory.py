"""Directory lookups: nbspawner (CachedDirectory over LDAPDirectory) vs. a naive lookup.

The naive lookup is what hand-written ``hub.extraConfig`` code does inside ``start()``: open an
ldap3 connection (StartTLS with ``--tls starttls``), bind, search the user and their groups,
unbind, all inside the coroutine, on the hub's event loop, for every spawn.

Run from the repository root (needs Debian ``slapd`` and ``ldap-utils``)::

    python -m benchmarks.bench_directory [--json results.json] [--users 10000] [--tls none]

It starts its own slapd (the test fixture's :class:`tests.fixtures.slapd.SlapdServer`) loaded
with ``--users`` generated users, and TCP proxies in child processes
(:class:`tests.fixtures.tcpproxy.ProxyProcess`: one counts connections at the wire, one delays
every answer). The default plain-LDAP transport is the naive code's best case: with
``--tls starttls`` each naive lookup also pays a TLS handshake and ~40 ms of Nagle/delayed-ACK
wait (nbspawner sets TCP_NODELAY and pays the handshake once per pooled connection); use
smaller ``--storm``/``--naive-scale-max`` then. Runtime with the defaults: about two minutes on
two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import ssl
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import ldap3
from ldap3.utils.conv import escape_filter_chars

from nbspawner.directory.base import Directory
from nbspawner.directory.cache import CachedDirectory
from nbspawner.directory.ldap import LDAPDirectory
from nbspawner.record import UserRecord
from tests.fixtures.slapd import SlapdServer
from tests.fixtures.tcpproxy import ProxyProcess

# -- the naive way ----------------------------------------------------------------------------


class NaiveLookup:
    """ldap3 called directly in the coroutine: a new connection per lookup, on the event loop."""

    name = "naive"

    def __init__(self, slapd: SlapdServer, tls_mode: str, port: int | None = None) -> None:
        self.slapd = slapd
        self.tls_mode = tls_mode
        self.port = port
        self.connections_opened = 0

    async def lookup(self, username: str, auth_state: Any = None) -> dict[str, Any]:
        # deliberately blocking: this is what runs on the hub's event loop in extraConfig code
        use_ssl = self.tls_mode == "ldaps"
        port = self.port or (self.slapd.ldaps_port if use_ssl else self.slapd.port)
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=self.slapd.ca_file)
        server = ldap3.Server("127.0.0.1", port=port, use_ssl=use_ssl, tls=tls, get_info=ldap3.NONE)
        conn = ldap3.Connection(
            server, user=self.slapd.bind_dn, password=self.slapd.bind_password, read_only=True
        )
        conn.open()
        self.connections_opened += 1
        if self.tls_mode == "starttls":
            conn.start_tls()
        conn.bind()
        escaped = escape_filter_chars(username)
        conn.search(
            self.slapd.people_dn,
            f"(&(objectClass=posixAccount)(uid={escaped}))",
            attributes=["uid", "uidNumber", "gidNumber", "homeDirectory", "cn", "loginShell"],
        )
        if len(conn.entries) != 1:
            conn.unbind()
            raise LookupError(username)
        entry = conn.entries[0]
        conn.search(
            self.slapd.groups_dn,
            f"(&(objectClass=posixGroup)(memberUid={escaped}))",
            attributes=["cn", "gidNumber"],
        )
        groups = [(str(g.cn), int(str(g.gidNumber))) for g in conn.entries]
        conn.unbind()
        return {
            "uid": int(str(entry.uidNumber)),
            "gid": int(str(entry.gidNumber)),
            "home": str(entry.homeDirectory),
            "groups": groups,
        }


# -- measuring ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class LoopTicker:
    """A 1 ms ticker: how late the event loop wakes it up is how long the loop was stalled."""

    def __init__(self, tick: float = 0.001) -> None:
        self.tick = tick
        self.lateness: list[float] = []
        self._running = False
        self._task: asyncio.Future[None] | None = None

    async def _run(self) -> None:
        while self._running:
            start = time.perf_counter()
            await asyncio.sleep(self.tick)
            self.lateness.append(time.perf_counter() - start - self.tick)

    async def __aenter__(self) -> LoopTicker:
        self._running = True
        self._task = asyncio.ensure_future(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self._running = False
        assert self._task is not None
        await self._task

    def summary(self) -> dict[str, float]:
        return {
            "p99_ms": pct(self.lateness, 99) * 1000,
            "max_ms": max(self.lateness, default=0.0) * 1000,
            "samples": len(self.lateness),
        }


async def sequential(lookup: Callable[[str], Awaitable[Any]], names: list[str]) -> dict[str, Any]:
    latencies = []
    start = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        await lookup(name)
        latencies.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    return {
        "n": len(names),
        "per_second": len(names) / total,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
    }


async def storm(
    lookup: Callable[[str], Awaitable[Any]], names: list[str], concurrency: int = 0
) -> dict[str, Any]:
    """All lookups at once (``concurrency=0``: every user spawns at the same moment), or through
    ``concurrency`` workers (a busy hub with that many spawns in progress)."""
    errors = 0

    async def worker(queue: list[str]) -> None:
        nonlocal errors
        while queue:
            try:
                await lookup(queue.pop())
            except Exception:
                errors += 1

    gc.collect()  # garbage from earlier phases must not be collected inside this measurement
    async with LoopTicker() as ticker:
        start = time.perf_counter()
        if concurrency:
            queue = list(reversed(names))
            await asyncio.gather(*(worker(queue) for _ in range(concurrency)))
        else:
            results = await asyncio.gather(*(lookup(n) for n in names), return_exceptions=True)
            errors = sum(isinstance(r, BaseException) for r in results)
        wall = time.perf_counter() - start
    return {
        "n": len(names),
        "concurrency": concurrency or len(names),
        "wall_s": wall,
        "per_second": len(names) / wall,
        "errors": errors,
        "loop_stall": ticker.summary(),
    }


async def hit_cost(cache: CachedDirectory, names: list[str], rounds: int) -> dict[str, Any]:
    """Per-hit cost: a timed loop over cached users (and p50/p99 of single timed hits)."""
    lookup = cache.lookup
    calls_before = cache.backend_calls
    count = 0
    start = time.perf_counter()
    for _ in range(rounds):
        for name in names:
            await lookup(name)
            count += 1
    per_hit = (time.perf_counter() - start) / count
    singles = []
    for name in names[:5000]:
        t0 = time.perf_counter_ns()
        await lookup(name)
        singles.append((time.perf_counter_ns() - t0) / 1000)
    return {
        "n": count,
        "backend_calls": cache.backend_calls - calls_before,  # 0: every lookup was a hit
        "per_second": 1 / per_hit,
        "mean_us": per_hit * 1e6,
        "p50_us": pct(singles, 50),
        "p99_us": pct(singles, 99),
    }


class ReplayDirectory(Directory):
    """Answers with fresh copies of records LDAPDirectory returned earlier.

    Filling a cache from slapd under tracemalloc takes minutes (tracing every allocation of
    ldap3 and pyasn1); rebuilding each record the way LDAPDirectory builds it (strings decoded
    anew, new tuples, parsed ints) allocates the same objects in milliseconds.
    """

    name = "ldap"

    def __init__(self, records: dict[str, UserRecord], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.records = records
        # strings that one object serves for many records (the default shell) stay shared
        owners: dict[int, set[str]] = {}
        for name, r in records.items():
            for text in (r.home, r.gecos, r.shell, *r.groups, *(n for n, _ in r.posix_groups)):
                owners.setdefault(id(text), set()).add(name)
        self.shared = {key for key, names in owners.items() if len(names) > 1}

    async def lookup(self, username: str, auth_state: Any = None) -> UserRecord:
        r = self.records[username]
        copies: dict[int, str] = {}  # within a record, one object may appear twice

        def fresh(text: str) -> str:
            if id(text) in self.shared:
                return text
            return copies.setdefault(id(text), text.encode().decode())

        return UserRecord(
            username=username,
            uid=int(str(r.uid)),
            gid=int(str(r.gid)),
            home=fresh(r.home),
            groups=tuple(fresh(g) for g in r.groups),
            supplemental_gids=tuple(int(str(g)) for g in r.supplemental_gids),
            posix_groups=tuple((fresh(n), int(str(g))) for n, g in r.posix_groups),
            gecos=fresh(r.gecos),
            shell=fresh(r.shell),
            source=r.source,
        )


async def cache_memory(records: dict[str, UserRecord], n: int) -> dict[str, Any]:
    """Bytes kept per cached user (record + cache entry), measured with tracemalloc."""
    names = list(records)[:n]
    cache = CachedDirectory(ReplayDirectory(records), max_size=n + 1)
    await cache.lookup(names[0])  # warm-up: metric children, code paths
    cache.invalidate()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for name in names:
        await cache.lookup(name)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(cache) == n
    return {"users": n, "bytes_per_user": (after - before) / n}


def nbspawner_directory(slapd: SlapdServer, tls: str, **overrides: Any) -> LDAPDirectory:
    # a generous lookup_timeout: the benchmark measures waiting, it must not cut it short
    return LDAPDirectory(**slapd.ldap_config(tls, **{"lookup_timeout": 600.0, **overrides}))


# -- the run -------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, slapd: SlapdServer) -> dict[str, Any]:
    tls = args.tls
    scheme = "ldaps" if tls == "ldaps" else "ldap"
    target_port = slapd.ldaps_port if tls == "ldaps" else slapd.port
    users = [f"bench{i:05d}" for i in range(args.users)]
    results: dict[str, Any] = {"config": {k: v for k, v in vars(args).items() if k != "json"}}
    phases: dict[str, float] = {}
    last = [time.perf_counter(), ""]

    def say(message: str) -> None:
        # also times each phase (reported in the JSON as phase_seconds)
        now = time.perf_counter()
        if last[1]:
            phases[str(last[1])] = round(now - float(last[0]), 1)
        last[:] = [now, message.rstrip(" .")]
        if not args.quiet:
            print(message, flush=True)

    ldap = nbspawner_directory(slapd, tls)
    naive = NaiveLookup(slapd, tls)

    # 1. cold lookups, one at a time: the latency of one spawn's lookup on an idle hub
    say("cold sequential lookups ...")
    cold_names = users[: args.sequential]
    cache = CachedDirectory(ldap, max_size=args.users + 10)
    await cache.lookup(users[-1])  # the first pooled connection is opened outside the timing
    results["cold"] = {
        "nbspawner": await sequential(cache.lookup, cold_names),
        "naive": await sequential(naive.lookup, cold_names),
    }

    # 2. cached lookups: the same users again (the naive code has no cache: same as cold)
    say("cached lookups ...")
    results["cached"] = {
        "nbspawner": await hit_cost(cache, cold_names, rounds=max(1, 100_000 // len(cold_names))),
        "naive": results["cold"]["naive"],
    }

    # 3. a storm: N users spawn at the same moment; connections counted at the wire by a proxy
    say(f"storm of {args.storm} users ...")
    storm_names = users[args.sequential : args.sequential + args.storm]
    proxy = ProxyProcess("127.0.0.1", target_port)
    try:
        storm_ldap = nbspawner_directory(
            slapd, tls, server_urls=[f"{scheme}://127.0.0.1:{proxy.port}"]
        )
        nb = await storm(CachedDirectory(storm_ldap).lookup, storm_names)
        nb["connections_opened"] = proxy.connections_accepted
        nb["pool_size"] = storm_ldap.pool_size
        await storm_ldap.close()
        before = proxy.connections_accepted
        nv = await storm(NaiveLookup(slapd, tls, port=proxy.port).lookup, storm_names)
        nv["connections_opened"] = proxy.connections_accepted - before
    finally:
        proxy.close()
    results["storm"] = {"nbspawner": nb, "naive": nv}

    # 4. a slow directory: every answer arrives late; how long is the event loop stalled?
    say(f"slow directory (+{args.delay_ms} ms): {args.slow} nbspawner lookups ...")
    proxy = ProxyProcess("127.0.0.1", target_port, delay=args.delay_ms / 1000)
    try:
        slow_ldap = nbspawner_directory(
            slapd, tls, server_urls=[f"{scheme}://127.0.0.1:{proxy.port}"], search_timeout=60.0
        )
        slow_names = users[-args.slow :]
        nb = await storm(CachedDirectory(slow_ldap).lookup, slow_names)
        await slow_ldap.close()
        say(f"slow directory: {args.slow_naive} naive lookups ...")
        nv = await storm(
            NaiveLookup(slapd, tls, port=proxy.port).lookup, slow_names[: args.slow_naive]
        )
    finally:
        proxy.close()
    results["slow"] = {"delay_ms": args.delay_ms, "nbspawner": nb, "naive": nv}

    # 5. scale points: cold lookups through a busy hub's worth of concurrent spawns, then hits
    say("scale points ...")
    results["scale"] = {}
    records: dict[str, UserRecord] = {}
    for n in args.scale_points:
        if n > len(users):
            continue
        names = users[:n]
        scale_cache = CachedDirectory(ldap, max_size=n + 10)
        point: dict[str, Any] = {
            "nbspawner_cold": await storm(scale_cache.lookup, names, args.concurrency),
            "nbspawner_cached": await hit_cost(scale_cache, names, rounds=max(1, 20_000 // n)),
        }
        if n <= args.naive_scale_max:
            point["naive_cold"] = await storm(naive.lookup, names, args.concurrency)
        results["scale"][str(n)] = point
        if n > len(records):
            records = {name: await scale_cache.lookup(name) for name in names}

    # 6. memory per cached user: records as LDAPDirectory returned them in the scale runs
    say("memory per cached user ...")
    results["memory"] = {
        str(n): await cache_memory(records, n) for n in args.memory_points if n <= len(records)
    }
    results["connections_opened_total"] = {
        "nbspawner": ldap.connections_opened,
        "naive": naive.connections_opened,
    }
    await ldap.close()
    say("done")
    results["phase_seconds"] = phases
    return results


# -- reporting -----------------------------------------------------------------------------------


def fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def _stall(m: dict[str, Any], precise: bool) -> str:
    s = m["loop_stall"]
    if precise:
        return f"{s['p99_ms']:.1f} / {s['max_ms']:.1f} ms"
    return f"{s['p99_ms']:,.0f} / {s['max_ms']:,.0f} ms"


def report(r: dict[str, Any]) -> str:
    cold, cached, st, slow = r["cold"], r["cached"], r["storm"], r["slow"]
    nb_c, nv_c = cold["nbspawner"], cold["naive"]
    rows: list[tuple[str, str, str]] = [
        (
            f"cold lookup p50 / p99 (one at a time, {nb_c['n']} users)",
            f"{nb_c['p50_ms']:.2f} / {nb_c['p99_ms']:.2f} ms",
            f"{nv_c['p50_ms']:.2f} / {nv_c['p99_ms']:.2f} ms",
        ),
        (
            "cold lookups/s (one at a time)",
            fmt_int(nb_c["per_second"]),
            fmt_int(nv_c["per_second"]),
        ),
        (
            "cached lookup p50 / p99",
            f"{cached['nbspawner']['p50_us']:.1f} / {cached['nbspawner']['p99_us']:.1f} µs",
            "no cache: as cold",
        ),
        (
            "cached lookups/s",
            fmt_int(cached["nbspawner"]["per_second"]),
            fmt_int(cached["naive"]["per_second"]),
        ),
        ("cached lookup cost (mean)", f"{cached['nbspawner']['mean_us']:.1f} µs", "-"),
        (
            f"storm, {st['nbspawner']['n']:,} users at once: wall time",
            f"{st['nbspawner']['wall_s']:.2f} s",
            f"{st['naive']['wall_s']:.2f} s",
        ),
        (
            "storm: lookups/s",
            fmt_int(st["nbspawner"]["per_second"]),
            fmt_int(st["naive"]["per_second"]),
        ),
        (
            "storm: LDAP connections opened",
            f"{st['nbspawner']['connections_opened']} (pool_size {st['nbspawner']['pool_size']})",
            f"{st['naive']['connections_opened']:,}",
        ),
        (
            "storm: event-loop stall p99 / max",
            _stall(st["nbspawner"], True),
            _stall(st["naive"], False),
        ),
        (
            f"slow slapd (+{slow['delay_ms']} ms): lookups waiting",
            f"{slow['nbspawner']['n']}",
            f"{slow['naive']['n']}",
        ),
        (
            "slow slapd: event-loop stall p99 / max",
            _stall(slow["nbspawner"], True),
            _stall(slow["naive"], False),
        ),
        (
            "slow slapd: wall time (errors)",
            f"{slow['nbspawner']['wall_s']:.1f} s ({slow['nbspawner']['errors']})",
            f"{slow['naive']['wall_s']:.1f} s ({slow['naive']['errors']})",
        ),
    ]
    for n, m in r["memory"].items():
        rows.append(
            (f"memory per cached user ({int(n):,} users)", f"{fmt_int(m['bytes_per_user'])} B", "-")
        )
    for n, p in r["scale"].items():
        naive = p.get("naive_cold")
        conc = p["nbspawner_cold"]["concurrency"]
        rows.append(
            (
                f"{int(n):,} users, {conc} concurrent: cold lookups/s",
                fmt_int(p["nbspawner_cold"]["per_second"]),
                fmt_int(naive["per_second"]) if naive else "(not run)",
            )
        )
        rows.append(
            (
                f"{int(n):,} users: event-loop stall p99 / max",
                _stall(p["nbspawner_cold"], True),
                _stall(naive, False) if naive else "-",
            )
        )
        rows.append(
            (
                f"{int(n):,} users: cached lookup mean",
                f"{p['nbspawner_cached']['mean_us']:.1f} µs",
                "-",
            )
        )
    w0 = max(len(a) for a, _, _ in rows)
    w1 = max(len(b) for _, b, _ in rows)
    header = f"{'':{w0}}  {'nbspawner':>{w1}}  naive (ldap3 in start())"
    lines = [header, "-" * len(header)]
    lines += [f"{a:{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def environment() -> dict[str, Any]:
    try:
        slapd_version = subprocess.run(
            ["/usr/sbin/slapd", "-VV"], capture_output=True, text=True, check=False
        ).stderr.splitlines()[0]
    except (OSError, IndexError):
        slapd_version = "?"
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "ldap3": ldap3.__version__,
        "slapd": slapd_version.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    parser.add_argument("--users", type=int, default=10_000, help="users loaded into slapd")
    parser.add_argument(
        "--tls",
        choices=["none", "starttls", "ldaps"],
        default="none",
        help="transport for both sides (default: plain LDAP, the naive code's best case)",
    )
    parser.add_argument("--sequential", type=int, default=300, help="users in the cold runs")
    parser.add_argument("--storm", type=int, default=1000, help="users spawning at once")
    parser.add_argument("--delay-ms", type=int, default=200, help="slapd delay for the slow runs")
    parser.add_argument("--slow", type=int, default=200, help="lookups waiting on the slow slapd")
    parser.add_argument(
        "--slow-naive",
        type=int,
        default=10,
        help="naive lookups on the slow slapd (each blocks the loop for 3 round trips)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=100, help="spawns in progress at the scale points"
    )
    parser.add_argument("--memory-points", type=int, nargs="*", default=[1000, 10_000])
    parser.add_argument("--scale-points", type=int, nargs="*", default=[100, 1000, 10_000])
    parser.add_argument(
        "--naive-scale-max", type=int, default=10_000, help="largest scale point run the naive way"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="nbspawner-bench-") as tmp:
        slapd = SlapdServer(Path(tmp), extra_users=args.users).setup()
        slapd.start()
        try:
            results = asyncio.run(run(args, slapd))
        finally:
            slapd.close()
    results["environment"] = environment()
    results["runtime_s"] = time.perf_counter() - started
    print()
    print(report(results))
    print(
        f"\n(total runtime {results['runtime_s']:.0f} s; {results['environment']['cpus']} CPUs, "
        f"Python {results['environment']['python']}, TLS: {args.tls})"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
