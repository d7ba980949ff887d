"""nbspawner where it is copied into the hub rather than pip-installed (z2jh ``hub.extraFiles``
or a ConfigMap): no dist-info, so no entry points. The short names must still work."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    from importlib.metadata import entry_points
    # the environment really has no nbspawner distribution: no entry points at all
    assert not list(entry_points(group="nbspawner.directories")), "entry points found"
    assert not list(entry_points(group="jupyterhub.spawners", name="nbspawner"))
    import nbspawner
    assert nbspawner.__file__.startswith({copy!r}), nbspawner.__file__
    from nbspawner.spawner import NBSpawner
    from nbspawner.directory.chain import load_directory_class
    trait = NBSpawner.class_traits()["directory_class"]  # what config validation runs
    for name in ("static", "ldap", "oidc", "ldapauth", "http", "chain", "LDAP"):
        cls = trait.validate(None, name)
        print(name, cls.__module__ + "." + cls.__name__)
    print("chain", load_directory_class("http").__name__)
    """
)


def site_without_nbspawner(tmp_path: Path) -> Path:
    """A site directory with everything the hub image has except nbspawner's own distribution."""
    site = Path(sysconfig.get_paths()["purelib"])
    fake_site = tmp_path / "site"
    fake_site.mkdir()
    left_out = []
    for entry in site.iterdir():
        name = entry.name.lower()
        if name.startswith(("nbspawner", "__editable__", "_nbspawner")) or name.endswith(".pth"):
            left_out.append(entry.name)
            continue
        (fake_site / entry.name).symlink_to(entry)
    assert any(n.lower().startswith("nbspawner") for n in left_out), left_out
    return fake_site


def run_from(copy: Path, tmp_path: Path, code: str = CHILD) -> subprocess.CompletedProcess:
    """``code`` in a Python whose only nbspawner is the plain folder ``copy/nbspawner``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = f"{copy}{os.pathsep}{site_without_nbspawner(tmp_path)}"
    return subprocess.run(
        [sys.executable, "-S", "-c", code.format(copy=str(copy))],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )


EXPECTED_NAMES = [
    "static nbspawner.directory.static.StaticDirectory",
    "ldap nbspawner.directory.ldap.LDAPDirectory",
    "oidc nbspawner.directory.oidc.OIDCClaimsDirectory",
    "ldapauth nbspawner.directory.ldapauth.LDAPAuthStateDirectory",
    "http nbspawner.directory.http.HTTPDirectory",
    "chain nbspawner.directory.chain.ChainDirectory",
    "LDAP nbspawner.directory.ldap.LDAPDirectory",
    "chain HTTPDirectory",
]


def test_short_directory_names_work_without_entry_points(tmp_path):
    # the package as a plain folder on the path
    copy = tmp_path / "extra"
    shutil.copytree(REPO / "nbspawner", copy / "nbspawner")
    result = run_from(copy, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == EXPECTED_NAMES


#: the hub's view on top of the short names: the example user spawns from the mounted files
SPAWN = CHILD + textwrap.dedent(
    """
    import asyncio
    from nbspawner.offline import example_config, make_spawner, offline_kubeconfig
    from nbspawner.podpatch import manifest

    async def spawn():
        with offline_kubeconfig():
            spawner = make_spawner(example_config(), "alice")
        await spawner.load_user_options()
        pod = manifest(await spawner.get_pod_manifest())
        print("pod", pod["spec"]["containers"][0]["securityContext"]["runAsUser"])

    asyncio.run(spawn())
    """
)


def install_files(*args: str) -> tuple[object, str]:
    out = subprocess.run(
        [sys.executable, "-m", "nbspawner.cli", "install-files", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return yaml.safe_load(out.stdout), out.stderr


def test_the_extrafiles_block_mounts_a_working_package(tmp_path):
    values, budget = install_files("extrafiles")
    files = values["hub"]["extraFiles"]
    root = tmp_path / "hub"
    for entry in files.values():
        mount = entry["mountPath"]
        assert mount.startswith("/usr/local/etc/jupyterhub/nbspawner/"), mount
        target = root / mount.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(entry["stringData"])
    # the examples are the command line tool's, not the hub's; the spawn test needs them
    shutil.copytree(
        REPO / "nbspawner" / "examples", root / "usr/local/etc/jupyterhub/nbspawner/examples"
    )
    result = run_from(root / "usr/local/etc/jupyterhub", tmp_path, SPAWN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [*EXPECTED_NAMES, "pod 2001"]
    size = sum(len(e["stringData"].encode()) for e in files.values())
    assert budget.startswith(
        f"# nbspawner: {len(files)} files, {size:,} bytes; about {2 * size:,} "
    )


def test_the_configmap_and_its_items_mount_a_working_package(tmp_path):
    configmap, budget = install_files("configmap", "--name", "nbs")
    values, _ = install_files("configmap-values", "--name", "nbs")
    assert configmap["kind"] == "ConfigMap" and configmap["metadata"]["name"] == "nbs"
    (volume,) = values["hub"]["extraVolumes"]
    (mount,) = values["hub"]["extraVolumeMounts"]
    assert volume["configMap"]["name"] == "nbs" and mount["name"] == volume["name"]
    assert mount["mountPath"] == "/usr/local/etc/jupyterhub/nbspawner" and mount["readOnly"]
    # as the kubelet does it: each item's key written at its path below the mount
    package = tmp_path / "hub" / "nbspawner"
    items = volume["configMap"]["items"]
    assert {i["key"] for i in items} == set(configmap["data"])
    assert any("/" in i["path"] for i in items)  # subpackages come back as directories
    for item in items:
        target = package / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(configmap["data"][item["key"]])
    shutil.copytree(REPO / "nbspawner" / "examples", package / "examples")
    result = run_from(tmp_path / "hub", tmp_path, SPAWN)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [*EXPECTED_NAMES, "pod 2001"]
    size = sum(len(v.encode()) for v in configmap["data"].values())
    assert f"{size:,} bytes in the ConfigMap" in budget
