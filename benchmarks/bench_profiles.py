"""Profile list construction per spawn, next to kubespawner's own get_pod_manifest().

    python -m benchmarks.bench_profiles [--json results.json] [--quick]

For synthetic catalogs of growing size (images x groups x sizes, 3 GPU options), it measures:

- load: parse + validate the catalog YAML (once per file change, hot reload);
- build: ``build_profile_list`` for one user (built anew on every spawn and form render);
- check: ``check_user_options`` + ``resolve_selection`` per spawn;
- ks-copy: kubespawner's own deep copy of that list in ``load_user_options`` (kubespawner's
  cost, shown because it grows with the list we hand it);
- get_pod_manifest: kubespawner building the pod, measured in the same run.

The user is in 3 of the catalog's groups ("typical"); the last rows put a user in every group
(the largest possible list).
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from nbspawner.catalog import load_data, loads
from nbspawner.choices import check_user_options, resolve_selection
from nbspawner.profiles import build_profile_list

SHAPES = [(10, 5, 3), (100, 20, 5), (500, 50, 10)]


def synthetic_catalog(n_images: int, n_groups: int, n_sizes: int) -> dict[str, Any]:
    groups = [f"group-{g:02d}" for g in range(n_groups)]
    images = []
    for i in range(n_images):
        image: dict[str, Any] = {
            "slug": f"image-{i:03d}",
            "display_name": f"Image {i}",
            "description": f"Synthetic image number {i} with a realistic description length.",
            "image": f"registry.example.org/notebooks/image-{i:03d}:2024-09-30",
            "labels": {"python": "3.11", "cuda": "12.1"} if i % 3 == 0 else {"python": "3.12"},
        }
        if i % 10:  # every 10th image is open to everyone
            image["allowed_groups"] = sorted({groups[i % n_groups], groups[(i * 7 + 3) % n_groups]})
        if i % 4 == 0:
            image["gpus"] = ["none", "a100", "mig-1g-10gb"]
            image["env"] = {"CUDA_CACHE_PATH": "/tmp/cuda"}
        elif i % 4 == 1:
            image["gpus"] = ["none"]
        if i % 5 == 0:
            image["volumes"] = [
                {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}
            ]
            image["volume_mounts"] = [{"name": "dshm", "mountPath": "/dev/shm"}]
        images.append(image)
    sizes = []
    for s in range(n_sizes):
        size: dict[str, Any] = {
            "slug": f"size-{s:02d}",
            "display_name": f"Size {s} ({2**s} CPUs)",
            "cpu_guarantee": f"{250 * 2**s}m",
            "cpu_limit": 2**s,
            "mem_guarantee": f"{2**s}Gi",
            "mem_limit": f"{2 ** (s + 1)}Gi",
        }
        if s >= 3:
            size["allowed_groups"] = groups[s::3]
        sizes.append(size)
    gpus = [
        {
            "slug": "a100",
            "display_name": "A100",
            "resource": "nvidia.com/gpu",
            "node_selector": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
            "allowed_groups": groups[::4],
        },
        {
            "slug": "mig-1g-10gb",
            "display_name": "MIG 1g.10gb",
            "resource": "nvidia.com/mig-1g.10gb",
            "allowed_groups": groups[::2],
        },
        {
            "slug": "mi210",
            "display_name": "MI210",
            "resource": "amd.com/gpu",
            "allowed_groups": groups[1::5],
        },
    ]
    defaults: dict[str, Any] = {}
    for group in groups:
        first = next((im["slug"] for im in images if group in im.get("allowed_groups", [])), None)
        if first:
            defaults[group] = {"image": first, "size": sizes[min(1, n_sizes - 1)]["slug"]}
    defaults["*"] = {"image": images[0]["slug"], "size": sizes[0]["slug"]}
    return {"version": 1, "images": images, "sizes": sizes, "gpus": gpus, "defaults": defaults}


def timeit(fn: Callable[[], Any], *, number: int, repeat: int = 5) -> float:
    """Median seconds per call over ``repeat`` runs of ``number`` calls."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        runs.append((time.perf_counter() - start) / number)
    return statistics.median(runs)


async def pod_manifest_seconds(number: int) -> float:
    """kubespawner's get_pod_manifest(), with a dummy kube config (nothing is contacted)."""
    from tests.unit._kube import make_kubespawner

    with tempfile.TemporaryDirectory() as tmp:
        spawner = await make_kubespawner(Path(tmp), username="alice")
        spawner.user_options = {}
        await spawner.load_user_options()
        await spawner.get_pod_manifest()  # warm up
        runs = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(number):
                await spawner.get_pod_manifest()
            runs.append((time.perf_counter() - start) / number)
        return statistics.median(runs)


def bench_shape(shape: tuple[int, int, int], groups_kind: str, quick: bool) -> dict[str, Any]:
    n_images, n_groups, n_sizes = shape
    data = synthetic_catalog(*shape)
    text = yaml.safe_dump(data, sort_keys=False)
    load_s = timeit(lambda: loads(text), number=1, repeat=3 if quick else 5)
    all_groups = [f"group-{g:02d}" for g in range(n_groups)]
    user_groups = (
        all_groups
        if groups_kind == "all"
        else [all_groups[0], all_groups[1 % n_groups], all_groups[2 % n_groups], "users"]
    )

    catalog = load_data(data)
    profile_list = build_profile_list(catalog, user_groups)
    build_s = timeit(lambda: build_profile_list(catalog, user_groups), number=20 if quick else 200)

    default = next(p for p in profile_list if p.get("default"))
    options = {"profile": default["slug"]}
    for name, option in default.get("profile_options", {}).items():
        options[name] = list(option["choices"])[-1]

    def check() -> None:
        check_user_options(profile_list, options, catalog=catalog)
        resolve_selection(catalog, profile_list, options)

    check_s = timeit(check, number=2000 if quick else 20000)
    copy_s = timeit(lambda: copy.deepcopy(profile_list), number=20 if quick else 200)
    return {
        "catalog": f"{n_images}x{n_groups}x{n_sizes}",
        "images": n_images,
        "groups": n_groups,
        "sizes": n_sizes,
        "user_groups": groups_kind,
        "profiles_seen": len(profile_list),
        "load_validate_s": load_s,
        "build_s": build_s,
        "check_resolve_s": check_s,
        "kubespawner_deepcopy_s": copy_s,
    }


def fmt(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (CI smoke run)")
    args = parser.parse_args(argv)

    manifest_s = asyncio.run(pod_manifest_seconds(200 if args.quick else 2000))
    rows = [bench_shape(shape, "3", args.quick) for shape in SHAPES]
    rows.append(bench_shape(SHAPES[-1], "all", args.quick))
    for row in rows:
        row["get_pod_manifest_s"] = manifest_s
        row["build_vs_manifest"] = row["build_s"] / manifest_s

    header = (
        "catalog (img x grp x size)",
        "user groups",
        "profiles",
        "load+validate",
        "build",
        "check+resolve",
        "ks deepcopy",
        "get_pod_manifest",
    )
    table = [header]
    for r in rows:
        table.append(
            (
                r["catalog"],
                "all" if r["user_groups"] == "all" else "3",
                str(r["profiles_seen"]),
                fmt(r["load_validate_s"]),
                fmt(r["build_s"]),
                fmt(r["check_resolve_s"]),
                fmt(r["kubespawner_deepcopy_s"]),
                fmt(r["get_pod_manifest_s"]),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for n, row in enumerate(table):
        print(
            "  ".join(
                cell.rjust(w) if i else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))
    worst = max(r["build_s"] + r["check_resolve_s"] for r in rows)
    print(
        f"\nper spawn (build + check + resolve), worst row: {fmt(worst)} = "
        f"{worst / manifest_s:.1%} of get_pod_manifest ({fmt(manifest_s)})"
    )
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                    "get_pod_manifest_s": manifest_s,
                    "rows": rows,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
