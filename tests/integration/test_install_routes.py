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


def test_short_directory_names_work_without_entry_points(tmp_path):
    # a site directory with everything the hub image has except nbspawner's own distribution
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
    # the package as hub.extraFiles puts it: a plain folder on the path
    copy = tmp_path / "extra"
    shutil.copytree(REPO / "nbspawner", copy / "nbspawner")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = f"{copy}{os.pathsep}{fake_site}"
    result = subprocess.run(
        [sys.executable, "-S", "-c", CHILD.format(copy=str(copy))],
        env=env,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "static nbspawner.directory.static.StaticDirectory",
        "ldap nbspawner.directory.ldap.LDAPDirectory",
        "oidc nbspawner.directory.oidc.OIDCClaimsDirectory",
        "ldapauth nbspawner.directory.ldapauth.LDAPAuthStateDirectory",
        "http nbspawner.directory.http.HTTPDirectory",
        "chain nbspawner.directory.chain.ChainDirectory",
        "LDAP nbspawner.directory.ldap.LDAPDirectory",
        "chain HTTPDirectory",
    ]
