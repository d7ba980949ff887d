"""The benchmark command runs and reports its targets (figures are never asserted: they are
measured by ``python -m benchmarks`` and published in docs/reference/performance.md).

The hub CPU and profile benchmarks run for real here (``--quick``, ``--no-write``); the slapd
and control-plane ones are exercised through the same code paths by the directory and k8s
suites, and take minutes, so only their target bookkeeping is checked.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from benchmarks.__main__ import targets, targets_table

REPO = Path(__file__).resolve().parent.parent.parent


def figures(extra_ms: float, stall_ms: float, p95_ratio: float, per_user: float) -> dict:
    return {
        "spawner": {
            "spawner_cpu": [
                {"extra_us": 400.0, "extra_ratio": 0.4},
                {"extra_us": extra_ms * 1000, "extra_ratio": 1.9},
            ]
        },
        "directory": {
            "slow": {"nbspawner": {"loop_stall": {"p99_ms": stall_ms}}},
            "memory": {"1000": {"bytes_per_user": 700.0}, "10000": {"bytes_per_user": per_user}},
        },
        "spawn_latency": {
            "rows": [{"concurrency": 1}, {"concurrency": 100, "p95_ratio": p95_ratio}]
        },
    }


def test_targets_are_judged_on_the_worst_figures():
    rows = targets(figures(0.6, 3.0, 1.05, 1500.0))
    assert [r[2] for r in rows] == ["met"] * 4
    assert rows[0][1] == "0.60 ms" and rows[3][1] == "1,500 B"
    rows = targets(figures(1.2, 5.0, 1.11, 2048.0))
    assert [r[2] for r in rows] == ["NOT MET"] * 4
    table = targets_table(rows)
    assert table.count("NOT MET") == 4 and "spawn latency p95" in table
    # the guard is absolute: a small ratio to bare does not pass 1 ms
    assert targets(figures(1.0, 1.0, 1.0, 900.0))[0][2] == "NOT MET"


def test_targets_skip_benchmarks_that_did_not_run():
    only_spawner = {"spawner": {"spawner_cpu": [{"extra_us": 900.0, "extra_ratio": 0.9}]}}
    rows = targets(only_spawner)
    assert len(rows) == 1 and rows[0][2] == "met"
    assert targets({"spawner": {"spawner_cpu": [{"extra_ratio": 0.9}]}}) == []  # older JSON


def test_benchmark_command_runs_and_prints_tables():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            "spawner",
            "profiles",
            "--no-write",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "Hub CPU per spawn" in out and "extra/manifest" in out
    assert "per spawn (build + check + resolve)" in out
    # the targets table, with the CPU target judged from this run's figures
    targets_part = out.split("=== Targets", 1)[1]
    verdict = re.search(
        r"NBSpawner's extra hub CPU per spawn.*\s(\d+\.\d\d ms)\s+(met|NOT MET)$",
        targets_part,
        re.M,
    )
    assert verdict, targets_part
    assert "wrote docs/" not in out
