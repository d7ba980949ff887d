"""End-to-end spawn latency against a real API server: NBSpawner vs bare KubeSpawner.

    python -m benchmarks.bench_spawn_latency [--json PATH] [--quick] [--concurrency 1 10 100]

Starts its own control plane (etcd + kube-apiserver from tools/build-controlplane.sh, the
same code as the ``controlplane`` test fixture) and the kubelet stand-in (the ``kubelet``
fixture's :class:`~tests.fixtures.kubelet.Kubelet`, in a child process so that its threads do
not compete with the spawners' event loop for the GIL). Needs root, like the k8s tests.

For each concurrency (1, 10, 100 spawns started at the same moment), each variant spawns that
many *distinct users* (the same user names for every variant) into the namespace enforcing Pod
Security "restricted", with the hub's ServiceAccount token, through kubespawner's real
``start()`` (pod POST, reflector, wait for Ready). The latency of one spawn is ``start()``
called -> URL returned. Between rounds every pod is deleted and the kubelet has stopped all
processes; the variants take turns, in a rotating order, so drift hits them alike.

- ``nbspawner``: NBSpawner configured like ``nbspawner/examples/config.yaml`` (static directory
  with the benchmark's users, the example catalog, home and data claims): directory lookup
  (cached after a user's first spawn), catalog profile + choice check, identity, storage, the
  passwd init container and the home seeding init container.
- ``bare``: bare KubeSpawner running **the same pods**: before the rounds, NBSpawner renders
  each user's pod (not timed); the bare spawner builds its own manifest as usual and its
  ``modify_pod_hook`` swaps in that user's rendered pod. The node therefore does identical
  work for both, and the difference is what nbspawner costs the hub (the issue's target:
  p95 within 10% at 100 concurrent spawns).
- ``minimal``: for context, KubeSpawner as z2jh configures it with static home storage (the
  home claim mounted with ``subPath: {username}``), uid 1000, one container and no init
  containers: how much of a spawn the two init containers cost *on this node*.

All run the same image, resources (the catalog's "small" size) and command: a minimal socket
server on ``$(POD_IP):8888`` (``/usr/bin/python3 -S -c``), so the cost of the notebook itself
stays small. On the kubelet stand-in each container start costs a process launch with its own
mount/PID namespaces on the same two CPUs as the hub; kubespawner also polls for readiness with
exponential back-off (0.2 s doubling up to 5 s, with jitter), which rounds latencies up to its
poll times, for every variant.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python benchmarks/bench_spawn_latency.py` works too
    sys.path.insert(0, str(REPO))

NAMESPACE_NOTE = 'namespace enforcing Pod Security "restricted"'
PORT = 8888
#: a minimal HTTP answer on $(POD_IP):8888; no braces (kubespawner formats strings)
SERVER = (
    "import socket, sys\n"
    "s = socket.socket()\n"
    "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind((sys.argv[1], int(sys.argv[2])))\n"
    "s.listen(16)\n"
    "while True:\n"
    "    c, _ = s.accept()\n"
    "    c.recv(4096)\n"
    "    c.sendall(b'HTTP/1.0 200 OK\\r\\nContent-Length: 4\\r\\n\\r\\npong')\n"
    "    c.close()\n"
)
CMD = ["/usr/bin/python3", "-S", "-c", SERVER, "$(POD_IP)", str(PORT)]
POD_IP_ENV = {"POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}}
PROFILE = {"profile": "scipy", "size": "small"}
HOMES_CLAIM, DATA_CLAIM = "institute-homes", "institute-data"
START_TIMEOUT = 600


# --------------------------------------------------------------------------- kubelet child


def _kubelet_main(cp: Any, root: str, conn: Any) -> None:
    """Child process: run the kubelet stand-in; answer "idle" and "stop" on ``conn``."""
    from tests.fixtures.kubelet import Kubelet

    kl = Kubelet(cp, Path(root))
    kl.start()
    conn.send("started")
    try:
        while True:
            cmd = conn.recv()
            if cmd == "idle":
                try:
                    kl.wait_idle(timeout=300)
                    conn.send("ok")
                except Exception as e:  # noqa: BLE001 - reported to the parent
                    conn.send(f"error: {e}")
            elif cmd == "stop":
                break
    except EOFError:
        pass
    finally:
        kl.stop()
        with contextlib.suppress(OSError):
            conn.send("stopped")


class KubeletProcess:
    def __init__(self, cp: Any, root: Path):
        ctx = multiprocessing.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_kubelet_main, args=(cp, str(root), child), daemon=True)
        self.proc.start()
        if not self.conn.poll(60) or self.conn.recv() != "started":
            raise RuntimeError("the kubelet stand-in did not start")

    def wait_idle(self) -> None:
        self.conn.send("idle")
        answer = self.conn.recv()
        if answer != "ok":
            raise RuntimeError(f"kubelet: {answer}")

    def stop(self) -> None:
        if self.proc.is_alive():
            try:
                self.conn.send("stop")
                self.conn.poll(90)
            except (BrokenPipeError, EOFError, OSError):
                pass
            self.proc.join(30)
        if self.proc.is_alive():
            self.proc.kill()


# --------------------------------------------------------------------------- configuration


def write_directory(path: Path, users: int) -> None:
    data = {
        "groups": {"physics": {"gid": 3001}, "bench": {"gid": 10000}},
        "users": {
            f"nb{i:03d}": {
                "uid": 20000 + i,
                "gid": 10000,
                "home": f"/export/home/nb{i:03d}",
                "groups": ["physics"],
                "gecos": f"Bench User {i}",
            }
            for i in range(users)
        },
    }
    path.write_text(yaml.safe_dump(data))


def common_config(cfg: Any, namespace: str) -> None:
    ks = cfg.KubeSpawner
    ks.namespace = namespace
    ks.cmd = list(CMD)
    ks.environment = dict(POD_IP_ENV)
    ks.start_timeout = START_TIMEOUT
    ks.http_timeout = 60
    ks.k8s_api_request_timeout = 60
    ks.k8s_api_request_retry_timeout = 300


def nb_hub(namespace: str, directory: Path):
    from nbspawner.offline import example_config

    hub = example_config()
    common_config(hub.config, namespace)
    hub.config.StaticDirectory.path = str(directory)
    return hub


def bare_hub(namespace: str):
    from traitlets.config import Config

    from nbspawner.catalog import load
    from nbspawner.hubconfig import HubConfig
    from nbspawner.offline import example_file
    from nbspawner.profiles import size_override

    # the same image and resources as the NBSpawner profile (the catalog's own conversion)
    catalog = load(example_file("catalog.yaml"))
    cfg = Config()
    common_config(cfg, namespace)
    ks = cfg.KubeSpawner
    ks.image = catalog.image(PROFILE["profile"]).image
    for key, value in size_override(catalog.size(PROFILE["size"])).items():
        if value is not None:
            ks[key] = value
    ks.uid = 1000
    ks.gid = 100
    ks.container_security_context = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # z2jh singleuser.storage.type static: the home claim, subPath {username}
    ks.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": HOMES_CLAIM}}]
    ks.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan", "subPath": "{username}"}]
    return HubConfig(cfg, "bench-bare")


def same_pods_hub(namespace: str, pods: dict[str, Any]):
    """Bare KubeSpawner whose modify_pod_hook swaps in the pod NBSpawner rendered for the user."""
    hub = bare_hub(namespace)

    def same_pod(spawner: Any, pod: Any) -> Any:
        return copy.deepcopy(pods[spawner.user.name])

    hub.config.KubeSpawner.modify_pod_hook = same_pod
    return hub


async def render_nbspawner_pods(hub: Any, users: list[str]) -> dict[str, Any]:
    """Each user's NBSpawner pod (dry run: nothing is created)."""
    from nbspawner.spawner import NBSpawner

    pods = {}
    for name in users:
        sp = make_spawner(hub, name, NBSpawner, PROFILE)
        await sp.load_user_options()
        pods[name] = await sp.get_pod_manifest()
        if sp.pending_secrets:
            raise RuntimeError("the same-pods baseline needs passwd_hook init-container")
    return pods


def make_spawner(hub: Any, username: str, cls: type, user_options: dict[str, Any]):
    from types import SimpleNamespace

    from nbspawner.offline import CLIUser

    user = CLIUser(name=username, id=1, url=f"/user/{username}/", groups=[], auth_state=None)
    hub_obj = SimpleNamespace(
        public_host="",
        url="http://hub:8081/hub/",
        base_url="/hub/",
        api_url="http://hub:8081/hub/api",
    )
    sp = cls(
        config=hub.config,
        user=user,
        hub=hub_obj,
        api_token="bench-token",
        oauth_client_id=f"jupyterhub-user-{username}",
    )
    sp.user_options = dict(user_options)
    return sp


# --------------------------------------------------------------------------- measuring


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    k = max(1, int(-(-p * len(ordered) // 100)))  # ceil(p/100 * n), at least 1
    return ordered[min(k, len(ordered)) - 1]


VARIANTS = ("bare", "nbspawner", "minimal")
LABELS = {
    "bare": "bare KubeSpawner, same pods",
    "nbspawner": "NBSpawner",
    "minimal": "KubeSpawner, minimal pod",
}


def user_name(i: int) -> str:
    return f"nb{i:03d}"


async def one_round(variant: str, hubs: dict, n: int, round_no: int) -> dict[str, Any]:
    from kubespawner import KubeSpawner

    from nbspawner.spawner import NBSpawner

    cls, options = (NBSpawner, PROFILE) if variant == "nbspawner" else (KubeSpawner, {})
    spawners = [make_spawner(hubs[variant], user_name(i), cls, options) for i in range(n)]

    async def timed(sp) -> tuple[float, float]:
        created: list[float] = []
        create_pod = sp._make_create_pod_request

        async def create_and_note(*args, **kwargs):
            ok = await create_pod(*args, **kwargs)
            if ok:
                created.append(time.perf_counter())
            return ok

        # when the API server answered the pod POST (kubespawner calls it through the instance)
        sp._make_create_pod_request = create_and_note
        t0 = time.perf_counter()
        url = await asyncio.wait_for(sp.start(), START_TIMEOUT + 30)
        took = time.perf_counter() - t0
        if not url.startswith("http://127.") or not url.endswith(f":{PORT}"):
            raise RuntimeError(f"unexpected url {url}")
        return took, created[-1] - t0

    t0 = time.perf_counter()
    results = await asyncio.gather(*(timed(sp) for sp in spawners), return_exceptions=True)
    wall = time.perf_counter() - t0
    ok = [r for r in results if isinstance(r, tuple)]
    latencies = [r[0] for r in ok]
    to_created = [r[1] for r in ok]
    errors = [f"{type(r).__name__}: {str(r)[:200]}" for r in results if not isinstance(r, tuple)]
    # stop every server (grace 0) and wait until the pods are gone
    stops = await asyncio.gather(
        *(asyncio.wait_for(sp.stop(now=True), 300) for sp in spawners), return_exceptions=True
    )
    stop_errors = [repr(s) for s in stops if isinstance(s, BaseException)]
    return {
        "variant": variant,
        "concurrency": n,
        "round": round_no,
        "latencies": latencies,
        "to_pod_created": to_created,
        "wall": wall,
        "errors": errors,
        "stop_errors": stop_errors,
    }


def wait_no_pods(cp: Any, timeout: float = 300) -> None:
    from tests.fixtures.controlplane import wait_for

    wait_for(lambda: not cp.list_pods(), timeout, "every pod to be deleted", 0.2)


async def run(
    cp: Any,
    kubelet: KubeletProcess,
    levels: list[int],
    reps: dict[int, int],
    directory: Path,
    quiet: bool,
) -> list[dict[str, Any]]:
    from kubespawner import KubeSpawner

    nb = nb_hub(cp.namespace, directory)
    pods = await render_nbspawner_pods(nb, [user_name(i) for i in range(max(levels))])
    hubs = {
        "bare": same_pods_hub(cp.namespace, pods),
        "nbspawner": nb,
        "minimal": bare_hub(cp.namespace),
    }
    out: list[dict[str, Any]] = []
    try:
        # warm-up (not measured): reflectors started, directory file and catalog loaded
        for variant in VARIANTS:
            await one_round(variant, hubs, 1, -1)
            await asyncio.to_thread(wait_no_pods, cp)
            await asyncio.to_thread(kubelet.wait_idle)
        for n in levels:
            for r in range(reps.get(n, 1)):
                # rotate the order so drift on a shared machine hits every variant alike
                order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
                for variant in order:
                    res = await one_round(variant, hubs, n, r)
                    await asyncio.to_thread(wait_no_pods, cp)
                    await asyncio.to_thread(kubelet.wait_idle)
                    out.append(res)
                    if not quiet:
                        lat = res["latencies"]
                        p50 = f"{statistics.median(lat):.2f}" if lat else "-"
                        print(
                            f"  concurrency {n:3d} round {r} {variant:9s}: {len(lat)} ok, "
                            f"{len(res['errors'])} failed, p50 {p50} s, wall {res['wall']:.1f} s",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        await KubeSpawner._stop_all_reflectors()
    return out


def summarise(rounds: list[dict[str, Any]], levels: list[int]) -> list[dict[str, Any]]:
    rows = []
    for n in levels:
        row: dict[str, Any] = {"concurrency": n}
        for variant in VARIANTS:
            lat = [
                x
                for r in rounds
                if r["concurrency"] == n and r["variant"] == variant
                for x in r["latencies"]
            ]
            errs = sum(
                len(r["errors"])
                for r in rounds
                if r["concurrency"] == n and r["variant"] == variant
            )
            walls = [r["wall"] for r in rounds if r["concurrency"] == n and r["variant"] == variant]
            created = [
                x
                for r in rounds
                if r["concurrency"] == n and r["variant"] == variant
                for x in r["to_pod_created"]
            ]
            per_round = [
                percentile(r["latencies"], 95)
                for r in rounds
                if r["concurrency"] == n and r["variant"] == variant and r["latencies"]
            ]
            row[variant] = {
                "round_p95": per_round,
                "created_p50": percentile(created, 50) if created else None,
                "created_p95": percentile(created, 95) if created else None,
                "samples": len(lat),
                "failed": errs,
                "p50": percentile(lat, 50) if lat else None,
                "p95": percentile(lat, 95) if lat else None,
                "p99": percentile(lat, 99) if lat else None,
                "max": max(lat) if lat else None,
                "wall": max(walls) if walls else None,
            }
        b, s = row["bare"]["p95"], row["nbspawner"]["p95"]
        row["p95_ratio"] = (s / b) if b and s else None
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    def f(x: float | None) -> str:
        return f"{x:6.2f}" if x is not None else "     -"

    def cell(c: dict[str, Any]) -> str:
        return f"{f(c['p50'])} {f(c['p95'])} {f(c['p99'])} {c['failed']:>5d}"

    head = f"{'':11s} | " + " | ".join(f"{LABELS[v]:27s}" for v in VARIANTS)
    sub = f"{'concurrency':11s} | " + " | ".join(
        f"{'p50':>6s} {'p95':>6s} {'p99':>6s} {'fail':>5s}" for _ in VARIANTS
    )
    lines = [
        "spawn latency, start() -> URL (seconds), pods admitted under " + NAMESPACE_NOTE,
        "",
        head + " | NBSpawner/bare",
        sub + " |      p95 ratio",
        "-" * len(sub) + "-+---------------",
    ]
    for row in rows:
        ratio = f"{row['p95_ratio']:.2f}x" if row["p95_ratio"] else "-"
        lines.append(
            f"{row['concurrency']:>11d} | "
            + " | ".join(cell(row[v]) for v in VARIANTS)
            + f" | {ratio:>14s}"
        )
    lines += [
        "",
        '"bare, same pods" runs the very pods NBSpawner renders (init containers included), so',
        'the ratio is what nbspawner costs; "minimal pod" has no init containers: the difference',
        "to it is what the passwd and home-seeding init containers cost on this node.",
        "",
        "of which the hub's part, start() -> pod created (directory lookup, profile, manifest,",
        "pod POST); the rest is the node starting the pod and kubespawner seeing it Ready",
        "",
        f"{'concurrency':11s} | " + " | ".join(f"{LABELS[v]:13.13s} p50    p95" for v in VARIANTS),
    ]
    for row in rows:
        lines.append(
            f"{row['concurrency']:>11d} | "
            + " | ".join(
                f"{'':13s}{f(row[v]['created_p50'])} {f(row[v]['created_p95'])}" for v in VARIANTS
            )
        )
    lines += ["", "p95 of each round (the spread shows how noisy this machine is):"]
    for row in rows:
        if len(row["bare"]["round_p95"]) > 1:
            lines.append(
                f"{row['concurrency']:>11d} | "
                + " | ".join(
                    f"{v}: " + " ".join(f"{x:.2f}" for x in row[v]["round_p95"]) for v in VARIANTS
                )
            )
    lines.append("")
    lines.append(
        "samples per cell: "
        + ", ".join(
            f"{r['concurrency']}: " + "/".join(str(r[v]["samples"]) for v in VARIANTS) for r in rows
        )
        + " ("
        + "/".join(VARIANTS)
        + "); p99 of few samples is their maximum"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_spawn_latency", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", type=Path, help="write the raw results here")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument(
        "--concurrency", type=int, nargs="+", default=[1, 10, 100], help="spawns at once"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-round progress on stderr")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (the kubelet stand-in uses unshare and setpriv)", file=sys.stderr)
        return 2
    levels = sorted(set(args.concurrency))
    # 100 concurrent spawns: 3 rounds per variant (300 samples), for a steady p95
    reps = {1: 3, 10: 1, 100: 1} if args.quick else {1: 12, 10: 3, 100: 3}

    from tests.fixtures.controlplane import ControlPlane, binaries_dir

    workdir = Path(tempfile.mkdtemp(prefix="nbspawner-bench-latency-"))
    cp = ControlPlane(binaries_dir(), workdir / "controlplane")
    (workdir / "controlplane").mkdir()
    kubelet = None
    t_start = time.monotonic()
    try:
        cp.start()
        for claim in (HOMES_CLAIM, DATA_CLAIM):
            cp.api(
                "POST",
                cp.ns_path("persistentvolumeclaims"),
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim},
                    "spec": {
                        "accessModes": ["ReadWriteMany"],
                        "resources": {"requests": {"storage": "1Gi"}},
                    },
                },
            )
        kubelet = KubeletProcess(cp, workdir / "kubelet")
        directory = workdir / "directory.yaml"
        write_directory(directory, max(levels))
        # the hub's identity, as the k8s fixture does (kubespawner reads it in its constructor)
        import kubernetes_asyncio.config.kube_config as kube_config

        os.environ["KUBECONFIG"] = str(cp.hub_kubeconfig)
        kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(cp.hub_kubeconfig)
        for var in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
            os.environ.pop(var, None)
        rounds = asyncio.run(run(cp, kubelet, levels, reps, directory, args.quiet))
    finally:
        if kubelet is not None:
            kubelet.stop()
        cp.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    rows = summarise(rounds, levels)
    print(table(rows))
    took = time.monotonic() - t_start
    print(f"\n(control plane {cp.version}; whole run {took:.0f} s on {os.cpu_count()} CPUs)")
    failed = [r for r in rows if any(r[v]["failed"] for v in VARIANTS)]
    if failed:
        errors = [e for r in rounds for e in r["errors"]][:10]
        print("failed spawns (first 10):\n  " + "\n  ".join(errors))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "benchmark": "spawn_latency",
                    "control_plane": cp.version,
                    "cpus": os.cpu_count(),
                    "seconds": took,
                    "rows": rows,
                    "rounds": rounds,
                },
                indent=2,
            )
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
