"""Run every benchmark, print the tables, and write them to docs/reference/performance.md.

    python -m benchmarks              # everything (several minutes; needs slapd and the
                                      # control plane from tools/test-all.sh's setup)
    python -m benchmarks --quick      # shorter runs, same tables
    python -m benchmarks --only spawner profiles

Each benchmark compares nbspawner with a baseline *in the same run* (bare KubeSpawner, a naive
blocking ldap3 lookup), because absolute times on shared machines are noisy: read the ratios.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "reference" / "performance.md"

BENCHMARKS = {
    "spawner": (
        "benchmarks.bench_spawner",
        "Hub CPU per spawn: NBSpawner's whole per-spawn work vs bare KubeSpawner",
        [],
        ["--quick"],
    ),
    "profiles": (
        "benchmarks.bench_profiles",
        "Profile list per spawn for growing catalogs, next to kubespawner's get_pod_manifest()",
        [],
        ["--quick"],
    ),
    "directory": (
        "benchmarks.bench_directory",
        "Directory lookups against a real slapd: nbspawner vs a naive in-start() ldap3 lookup",
        [],
        ["--users", "2000", "--storm", "300", "--memory-points", "1000", "10000"],
    ),
    "spawn_latency": (
        "benchmarks.bench_spawn_latency",
        "End-to-end spawn latency against the real API server and kubelet stand-in",
        [],
        ["--quick"],
    ),
}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    import jupyterhub
    import kubespawner

    return (
        f"{os.cpu_count()} CPUs ({cpu}){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, jupyterhub {jupyterhub.__version__}, "
        f"kubespawner {kubespawner.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--no-write", action="store_true", help="print only; leave the docs page")
    args = parser.parse_args(argv)
    names = args.only or list(BENCHMARKS)
    command = "python -m benchmarks" + (" --quick" if args.quick else "")
    sections = []
    failed = []
    for name in names:
        module, title, full_args, quick_args = BENCHMARKS[name]
        cmd = [sys.executable, "-m", module, *(quick_args if args.quick else full_args)]
        print(f"\n=== {title}\n$ {' '.join(cmd[1:])}", flush=True)
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        took = time.monotonic() - t0
        print(proc.stdout, end="")
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            failed.append(name)
            continue
        sections.append(
            f"## {title}\n\n`python -m {module} {' '.join(cmd[3:])}` ({took:.0f} s)\n\n"
            f"```text\n{proc.stdout.strip()}\n```\n"
        )
    if not args.no_write and not failed:
        today = datetime.date.today().isoformat()
        PAGE.write_text(
            "# Performance\n\n"
            "<!-- written by `python -m benchmarks`; rerun it to refresh -->\n\n"
            f"Measured on {today} with `{command}` on: {machine()}.\n\n"
            "Every table compares nbspawner with a baseline measured in the same run (bare "
            "KubeSpawner; a naive ldap3 lookup inside `start()` as hand-written extraConfig does "
            "it), because absolute times on shared machines are noisy: read the ratios. What each "
            "benchmark measures is described at the top of its file in `benchmarks/`. The "
            "directory cache and lookup-time [metrics](metrics.md) show the same quantities on a "
            "running hub.\n\n" + "\n".join(sections)
        )
        print(f"\nwrote {PAGE.relative_to(REPO)}")
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
