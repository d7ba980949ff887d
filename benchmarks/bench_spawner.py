"""Hub CPU per spawn: bare KubeSpawner vs NBSpawner, side by side in one process.

    python -m benchmarks.bench_spawner [--rounds 7] [--spawns 200] [--json PATH]

For each round, the same number of spawns is run for each variant (interleaved, so machine
noise hits both alike), with the same image and resources:

- ``bare``: kubespawner's ``load_user_options()`` (a static profile list) + ``get_pod_manifest()``;
- ``nbspawner``: NBSpawner's whole per-spawn work: directory lookup from the cache, identity
  validation, the catalog profile list for the user's groups, the choice check, kubespawner's
  own ``load_user_options()`` and ``get_pod_manifest()``, then storage + passwd patches,
  hardening and the restricted check.

The figure that matters is the *extra* cost: ``(nbspawner - bare) / bare``. A bare KubeSpawner
with a profile list applies the chosen profile in ``load_user_options()`` on every spawn, so
``bare`` is that plus ``get_pod_manifest()``, with the very profiles NBSpawner offers the
users (same image, resources, GPU, tolerations): both variants do kubespawner's work for the
same pod, and the difference is nbspawner's. The table also gives the extra cost over bare
``get_pod_manifest()`` alone (the profile applied once beforehand), the stricter denominator.
Scale points: users (distinct spawners) and catalog size.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import yaml
from kubespawner import KubeSpawner
from traitlets.config import Config

from nbspawner.hubconfig import HubConfig
from nbspawner.offline import example_file, make_spawner, offline_kubeconfig
from nbspawner.podpatch import manifest


def bare_config(profile_list: list[dict]) -> HubConfig:
    """Bare KubeSpawner as z2jh configures it, with a *static* profile list: the very profiles
    NBSpawner offers the benchmark's users (same image, resources, GPU, tolerations, /dev/shm),
    so both variants build the same pod apart from what nbspawner adds."""
    cfg = Config()
    cfg.KubeSpawner.uid = 1000
    cfg.KubeSpawner.fs_gid = 100
    cfg.KubeSpawner.profile_list = copy.deepcopy(profile_list)
    return HubConfig(cfg, "bench")


def nb_config(directory: str, catalog: str) -> HubConfig:
    cfg = Config()
    cfg.KubeSpawner.profile_list = []
    cfg.KubeSpawner.uid = 1000
    cfg.KubeSpawner.fs_gid = 100
    cfg.JupyterHub.spawner_class = "nbspawner"
    cfg.NBSpawner.directory_class = "static"
    cfg.NBSpawner.catalog_file = catalog
    cfg.NBSpawner.home_volume = {
        "type": "pvc",
        "claim_name": "homes",
        "export_roots": ["/export/home"],
    }
    cfg.NBSpawner.data_shares = [
        {
            "name": "group-data",
            "type": "pvc",
            "claim_name": "data",
            "mount_path": "/data/{group}",
            "sub_path": "groups/{group}",
            "allowed_groups": ["physics", "chemistry"],
        }
    ]
    cfg.StaticDirectory.path = directory
    return HubConfig(cfg, "bench")


def write_directory(tmp: Path, users: int) -> str:
    data = {
        "groups": {"physics": {"gid": 3001}, "gpu-users": {"gid": 3003}},
        "users": {
            f"user{i}": {
                "uid": 10000 + i,
                "gid": 3001,
                "home": f"/export/home/user{i}",
                "groups": ["physics", "gpu-users"],
            }
            for i in range(users)
        },
    }
    path = tmp / f"directory-{users}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def write_catalog(tmp: Path, images: int) -> str:
    base = yaml.safe_load(open(example_file("catalog.yaml")))
    if images > len(base["images"]):
        template = dict(base["images"][0])
        for i in range(images - len(base["images"])):
            extra = dict(template, slug=f"extra-{i}", display_name=f"Extra {i}")
            extra["allowed_groups"] = [f"group-{i % 50}"]
            base["images"].append(extra)
    path = tmp / f"catalog-{images}.yaml"
    path.write_text(yaml.safe_dump(base, sort_keys=False))
    return str(path)


async def spawn_once(spawner) -> None:
    await spawner.load_user_options()
    await spawner.get_pod_manifest()


async def time_spawns(spawners, n: int, work=spawn_once) -> float:
    """Median µs per spawn over ``n`` spawns cycling through ``spawners``."""
    samples = []
    for i in range(n):
        s = spawners[i % len(spawners)]
        t0 = time.perf_counter()
        await work(s)
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e6


async def manifest_only(spawner) -> None:
    await spawner.get_pod_manifest()


async def measure(users: int, images: int, rounds: int, spawns: int, tmp: Path) -> dict:
    directory = write_directory(tmp, users)
    catalog = write_catalog(tmp, images)
    with offline_kubeconfig():
        nb = [
            make_spawner(nb_config(directory, catalog), f"user{i}") for i in range(min(users, 50))
        ]
    # warm up: fill the directory cache for every user, load the catalog, build profile caches
    for i in range(users):
        with offline_kubeconfig():
            s = make_spawner(nb_config(directory, catalog), f"user{i}")
        await spawn_once(s)
    # the baseline's static profile list: what NBSpawner offers these users (they share groups)
    profiles = await nb[0].user_profile_list()
    static = [dict(p) for p in profiles]
    with offline_kubeconfig():
        bare = [
            make_spawner(bare_config(static), f"user{i}", cls=KubeSpawner)
            for i in range(min(users, 50))
        ]
    for s in bare + nb:
        await spawn_once(s)
    b_pod = manifest(await bare[1].get_pod_manifest())
    n_pod = manifest(await KubeSpawner.get_pod_manifest(nb[1]))
    same = {
        k: b_pod["spec"]["containers"][0].get(k) == n_pod["spec"]["containers"][0].get(k)
        for k in ("image", "resources")
    }
    if not all(same.values()):
        raise RuntimeError(f"baseline and NBSpawner pods differ: {same}")
    bare_us, nb_us, manifest_us = [], [], []
    for _ in range(rounds):
        gc.collect()
        bare_us.append(await time_spawns(bare, spawns))
        nb_us.append(await time_spawns(nb, spawns))
        manifest_us.append(await time_spawns(bare, spawns, manifest_only))
    b = statistics.median(bare_us)
    n = statistics.median(nb_us)
    m = statistics.median(manifest_us)
    return {
        "users": users,
        "catalog_images": images,
        "bare_us": round(b, 1),
        "nbspawner_us": round(n, 1),
        "extra_us": round(n - b, 1),
        "extra_ratio": round((n - b) / b, 2),
        "bare_manifest_us": round(m, 1),
        "extra_over_manifest_ratio": round((n - b) / m, 2),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--spawns", type=int, default=100)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--quick", action="store_true", help="fewer points, for smoke tests")
    args = parser.parse_args(argv)
    points = [(100, 12), (1000, 12), (1000, 100), (10000, 12)]
    if args.quick:
        points = [(10, 12), (100, 50), (200, 12)]
        args.rounds, args.spawns = 2, 20
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for users, images in points:
            results.append(asyncio.run(measure(users, images, args.rounds, args.spawns, Path(tmp))))
    print(
        "Hub CPU per spawn, median of rounds (µs); a spawn = load_user_options + get_pod_manifest"
    )
    print(
        f"{'users':>6} {'images':>6} {'bare':>9} {'nbspawner':>10} {'extra':>9} "
        f"{'extra/bare':>10} {'bare manifest':>14} {'extra/manifest':>15}"
    )
    for r in results:
        print(
            f"{r['users']:>6} {r['catalog_images']:>6} {r['bare_us']:>9} {r['nbspawner_us']:>10} "
            f"{r['extra_us']:>9} {r['extra_ratio']:>9}x {r['bare_manifest_us']:>14} "
            f"{r['extra_over_manifest_ratio']:>14}x"
        )
    print(
        "\nbare: KubeSpawner with the same (static) profiles; bare manifest: its get_pod_manifest()"
        "\nalone. extra = nbspawner - bare."
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"spawner_cpu": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
