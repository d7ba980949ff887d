"""The admin CLI, every command: the bundled example, the example catalog, and a real slapd.

``--version``, ``--help`` and ``preview`` run the installed entry point in a subprocess (what
an admin types); the directory commands run ``nbspawner.cli.main`` in-process against the
session's slapd, with a z2jh ``config.yaml`` (and a ``jupyterhub_config.py``) written to
``tmp_path``. The service account's password must never appear in any output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbspawner import __version__
from nbspawner.cli import main
from nbspawner.offline import EXAMPLE_MOUNT_DIR, example_file
from tests.fixtures.slapd import READER_PASSWORD

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BAD_CATALOGS = REPO / "tests" / "data" / "catalogs"
CATALOG_MOUNT = f"{EXAMPLE_MOUNT_DIR}/catalog.yaml"
SECRET_MOUNT = "/usr/local/etc/nbspawner-secrets/bind-password"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbspawner.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``nbspawner ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def preview_docs(text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``preview`` prints the user and profiles, then the pod, as YAML documents."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    return docs[0], docs[-1]


def slugs(profiles: list[dict[str, Any]]) -> list[str]:
    return [p["slug"] for p in profiles]


def notebook(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")


def init_names(pod: dict[str, Any]) -> list[str]:
    return [c["name"] for c in pod["spec"].get("initContainers") or []]


# ---------------------------------------------------------------------------------------------
# version, help
# ---------------------------------------------------------------------------------------------


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"nbspawner {__version__}"


def test_help_lists_every_command():
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for command in ("preview", "lookup", "profiles", "render", "check", "catalog"):
        assert command in result.stdout
    assert "--version" in result.stdout


def test_no_command_prints_help(capsys):
    code, out, _ = call(capsys)
    assert code == 2
    assert "usage: nbspawner" in out


def test_catalog_without_subcommand_prints_help(capsys):
    code, out, _ = call(capsys, "catalog")
    assert code == 2
    assert "check" in out


@pytest.mark.parametrize("command", ["preview", "lookup", "profiles", "render", "check"])
def test_command_help(command):
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout


# ---------------------------------------------------------------------------------------------
# preview: the bundled example (static directory + example catalog), as an admin runs it
# ---------------------------------------------------------------------------------------------


def test_preview_alice():
    result = run_cli("preview", "alice")
    assert result.returncode == 0, result.stderr
    assert "bundled example" in result.stderr
    who, pod = preview_docs(result.stdout)
    assert who["user"]["uid"] == 2001
    assert who["user"]["source"] == "static"
    offered = slugs(who["profiles"])
    assert "pytorch-cuda" in offered
    assert "scipy" in offered
    assert "scipy-next" not in offered  # hidden
    assert pod["kind"] == "Pod"
    assert pod["spec"]["securityContext"]["runAsUser"] == 2001
    assert pod["spec"]["securityContext"]["runAsGroup"] == 3001
    assert notebook(pod)["securityContext"]["runAsUser"] == 2001
    assert "nbspawner-passwd" in init_names(pod)
    home = next(m for m in notebook(pod)["volumeMounts"] if m["mountPath"] == "/home/alice")
    assert home["subPath"] == "alice"
    mounted = {m["mountPath"] for m in notebook(pod)["volumeMounts"]}
    assert {"/etc/passwd", "/etc/group", "/data/physics", "/data/reference"} <= mounted
    env = {e["name"]: e.get("value") for e in notebook(pod)["env"]}
    assert env["HOME"] == "/home/alice"
    assert env["USER"] == "alice"


def test_preview_bob_sees_other_profiles(capsys):
    code, out, err = call(capsys, "preview", "bob")
    assert code == 0, err
    who, pod = preview_docs(out)
    offered = slugs(who["profiles"])
    assert "pytorch-cuda" not in offered  # gpu-users only
    assert "kubeflow-rstudio" in offered  # chemistry
    assert pod["spec"]["securityContext"]["runAsUser"] == 2002
    mounted = {m["mountPath"] for m in notebook(pod)["volumeMounts"]}
    assert "/data/chemistry" in mounted and "/data/physics" not in mounted


def test_preview_with_a_profile_and_option(capsys):
    code, out, err = call(
        capsys, "preview", "alice", "--profile", "pytorch-cuda", "--option", "gpu=nvidia-a100"
    )
    assert code == 0, err
    _, pod = preview_docs(out)
    assert notebook(pod)["image"] == "quay.io/jupyter/pytorch-notebook:cuda12-2024-09-30"
    assert notebook(pod)["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_preview_forbidden_profile(capsys):
    code, out, err = call(capsys, "preview", "bob", "--profile", "pytorch-cuda")
    assert code == 1
    assert "You may not use the image 'pytorch-cuda'" in err
    # the admin's reason is printed too
    assert "Refusing to spawn bob" in err
    assert "kind: Pod" not in out


def test_preview_unknown_user(capsys):
    code, _, err = call(capsys, "preview", "mallory")
    assert code == 1
    assert "not found in the user directory" in err
    assert "static: user 'mallory' is not in StaticDirectory.users or .path" in err


def test_bad_option_syntax(capsys):
    code, out, err = call(capsys, "render", "alice", "--option", "size")
    assert (code, out) == (2, "")  # a usage error, like argparse's own
    assert err.splitlines()[-1] == "nbspawner: --option expects KEY=VALUE, got 'size'"


# ---------------------------------------------------------------------------------------------
# catalog check
# ---------------------------------------------------------------------------------------------


def test_catalog_check_example(capsys):
    code, out, _ = call(capsys, "catalog", "check", example_file("catalog.yaml"))
    assert code == 0
    assert out.startswith(f"{example_file('catalog.yaml')}: OK (13 images")


def test_catalog_check_bad_file():
    bad = BAD_CATALOGS / "bad-slug.yaml"
    result = run_cli("catalog", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}: INVALID, 2 errors" in result.stdout
    assert "ERROR    images[0] (slug 'SciPy').slug: 'SciPy' is not a valid slug" in result.stdout
    assert "'none' is reserved for the implicit 'no GPU' choice" in result.stdout


def test_catalog_check_missing_file(capsys, tmp_path):
    code, out, _ = call(capsys, "catalog", "check", str(tmp_path / "nope.yaml"))
    assert code == 1
    assert "INVALID" in out and "file not found" in out


# ---------------------------------------------------------------------------------------------
# lookup, profiles, render, check: a z2jh config.yaml pointing at the real slapd
# ---------------------------------------------------------------------------------------------


def z2jh_values(slapd: Any, **ldap_overrides: Any) -> dict[str, Any]:
    ldap = slapd.ldap_config("starttls", **ldap_overrides)
    ldap["bind_password_file"] = SECRET_MOUNT  # as mounted in the hub pod; --file maps it
    return {
        "hub": {
            "config": {
                "JupyterHub": {"spawner_class": "nbspawner"},
                "NBSpawner": {
                    "directory_class": "ldap",
                    "catalog_file": CATALOG_MOUNT,
                    "home_roots": ["/home"],
                    "home_volume": {
                        "type": "pvc",
                        "claim_name": "homes",
                        "export_roots": ["/home"],
                    },
                },
                "LDAPDirectory": ldap,
            },
            "extraVolumes": [
                {"name": "nbspawner-config", "configMap": {"name": "nbspawner-config"}},
                {"name": "ldap", "secret": {"secretName": "nbspawner-ldap"}},
            ],
            "extraVolumeMounts": [
                {"name": "nbspawner-config", "mountPath": EXAMPLE_MOUNT_DIR},
                {"name": "ldap", "mountPath": str(Path(SECRET_MOUNT).parent)},
            ],
        },
        "singleuser": {
            "storage": {"type": "none"},
            "cloudMetadata": {"blockWithIptables": False},
        },
    }


@pytest.fixture
def ldap_config(tmp_path, slapd):
    """``--config`` and ``--file`` arguments for a config.yaml using the session's slapd."""
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(z2jh_values(slapd), sort_keys=False))
    return [
        "--config",
        str(path),
        "--file",
        f"{CATALOG_MOUNT}={example_file('catalog.yaml')}",
        "--file",
        f"{SECRET_MOUNT}={slapd.bind_password_file}",
    ]


def no_secret(*texts: str) -> None:
    for text in texts:
        assert READER_PASSWORD not in text


def test_lookup(capsys, ldap_config):
    code, out, err = call(capsys, "lookup", "alice", *ldap_config)
    assert code == 0, err
    record = yaml.safe_load(out)
    assert record["username"] == "alice"
    assert (record["uid"], record["gid"]) == (2001, 2000)
    assert record["home"] == "/home/alice"
    assert {"physics", "gpu-users", "hpc"} <= set(record["groups"])
    assert record["source"] == "ldap"
    assert record["gecos"] == "Alice Liddell"
    no_secret(out, err)


def test_lookup_in_a_subprocess(ldap_config):
    """The real entry point, once, against slapd."""
    result = run_cli("lookup", "bob", *ldap_config)
    assert result.returncode == 0, result.stderr
    record = yaml.safe_load(result.stdout)
    assert (record["uid"], record["shell"]) == (2002, "/bin/zsh")
    no_secret(result.stdout, result.stderr)


def test_lookup_unknown_user(capsys, ldap_config):
    code, out, err = call(capsys, "lookup", "nobody-here", *ldap_config)
    assert code == 1
    assert out == ""
    assert "Your account was not found in the user directory" in err
    assert "ldap: no entry matches 'nobody-here' under LDAPDirectory.search_base" in err
    no_secret(out, err)


def test_lookup_invalid_record(capsys, ldap_config):
    code, _, err = call(capsys, "lookup", "mallory", *ldap_config)
    assert code == 1
    assert "directory entry cannot be used" in err
    assert "ldap: uid: 'abc' is not a plain decimal integer" in err


def test_lookup_uid_zero_is_refused(capsys, ldap_config):
    code, _, err = call(capsys, "lookup", "toor", *ldap_config)
    assert code == 1
    assert "uid is 0 (root), which is refused" in err


def test_profiles(capsys, ldap_config):
    code, out, err = call(capsys, "profiles", "alice", *ldap_config)
    assert code == 0, err
    alice = yaml.safe_load(out)
    assert "pytorch-cuda" in slugs(alice)  # alice is in gpu-users (memberUid)
    default = [p["slug"] for p in alice if p.get("default")]
    assert default == ["pytorch-cuda"]  # the gpu-users default comes first
    code, out, err = call(capsys, "profiles", "bob", *ldap_config)
    assert code == 0, err
    bob = yaml.safe_load(out)
    assert "pytorch-cuda" not in slugs(bob)
    assert "kubeflow-rstudio" in slugs(bob)  # chemistry
    no_secret(out, err)


def test_profiles_full(capsys, ldap_config):
    code, out, err = call(capsys, "profiles", "alice", "--full", *ldap_config)
    assert code == 0, err
    full = yaml.safe_load(out)
    scipy = next(p for p in full if p["slug"] == "scipy")
    assert scipy["kubespawner_override"]["image"] == "quay.io/jupyter/scipy-notebook:2024-09-30"
    assert set(scipy["profile_options"]) == {"size"}


def test_render(capsys, ldap_config):
    code, out, err = call(capsys, "render", "alice", *ldap_config)
    assert code == 0, err
    pod = yaml.safe_load(out)
    psc = pod["spec"]["securityContext"]
    assert (psc["runAsUser"], psc["runAsGroup"], psc["runAsNonRoot"]) == (2001, 2000, True)
    assert {3001, 3002, 100} <= set(psc["supplementalGroups"])
    assert "fsGroup" not in psc
    assert "nbspawner-passwd" in init_names(pod)
    container = notebook(pod)
    home = next(m for m in container["volumeMounts"] if m["mountPath"] == "/home/alice")
    assert home["subPath"] == "alice"
    claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in pod["spec"]["volumes"]
        if "persistentVolumeClaim" in v
    }
    assert claims == {"homes"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    no_secret(out, err)


def test_render_profile_and_options(capsys, ldap_config):
    code, out, err = call(
        capsys, "render", "alice", "-p", "scipy", "--option", "size=medium", *ldap_config
    )
    assert code == 0, err
    container = notebook(yaml.safe_load(out))
    assert container["image"] == "quay.io/jupyter/scipy-notebook:2024-09-30"
    assert container["resources"]["limits"]["cpu"] == 2.0


def test_render_forbidden_choices(capsys, ldap_config):
    code, out, err = call(capsys, "render", "bob", "-p", "pytorch-cuda", *ldap_config)
    assert (code, out) == (1, "")
    assert "You may not use the image 'pytorch-cuda'" in err
    code, out, err = call(
        capsys, "render", "alice", "-p", "scipy", "--option", "size=huge", *ldap_config
    )
    assert (code, out) == (1, "")
    assert "There is no size 'huge'" in err
    no_secret(out, err)


def test_check_passes(capsys, ldap_config):
    code, out, err = call(capsys, "check", *ldap_config)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[-1] == "nbspawner check: all checks passed"
    assert not [line for line in lines if line.startswith("FAIL")]
    assert any(
        line.startswith("OK   directory: ldap: ldap://127.0.0.1:")
        and "(starttls) bound as cn=reader,ou=services,dc=example,dc=org" in line
        for line in lines
    ), out
    assert any(line.startswith("OK   catalog: ") and "13 images" in line for line in lines)
    assert any(line.startswith("OK   storage: home from claim homes") for line in lines)
    no_secret(out, err)


def test_check_wrong_password(capsys, tmp_path, slapd, ldap_config):
    wrong = tmp_path / "wrong-password"
    wrong.write_text("Wrong-Pw-7c1-NOT-PRINTED\n")
    args = [a.replace(str(slapd.bind_password_file), str(wrong)) for a in ldap_config]
    code, out, err = call(capsys, "check", *args)
    assert code == 1
    fail = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(fail) == 1, out
    assert fail[0].startswith("FAIL directory: ldap: bind to ldap://127.0.0.1:")
    assert "Are LDAPDirectory.bind_dn and the password in" in fail[0]
    assert out.splitlines()[-1] == "nbspawner check: 1 problem found"
    for text in (out, err):
        assert "Wrong-Pw-7c1-NOT-PRINTED" not in text
    no_secret(out, err)


def test_check_directory_down(capsys, slapd, ldap_config):
    with slapd.stopped():
        code, out, _ = call(capsys, "check", *ldap_config)
    assert code == 1
    assert "FAIL directory: ldap: no LDAP server could be used" in out
    assert "Is LDAPDirectory.server_urls correct and the server reachable" in out


def test_check_missing_local_files(capsys, ldap_config):
    """Without --file, the mounted paths do not exist locally: the check says how to map them."""
    code, out, _ = call(capsys, "check", *ldap_config[:2])
    assert code == 1
    assert (
        f"FAIL catalog: NBSpawner.catalog_file ({CATALOG_MOUNT}) does not exist. "
        "On the hub that path is a mounted file" in out
    )
    assert "LDAPDirectory.bind_password_file" in out
    assert "--file MOUNTPATH=LOCALPATH" in out


def test_check_reports_configuration_mistakes(capsys, tmp_path, slapd):
    values = z2jh_values(slapd)
    values["hub"]["config"]["NBSpawner"]["home_volum"] = {}
    values["hub"]["config"]["NBSpawner"]["catalog_file"] = str(BAD_CATALOGS / "bad-slug.yaml")
    values["hub"]["config"]["NBSpawner"]["home_volume"] = {
        "type": "nfs",
        "server": "nfs.example.org",
        "export_roots": ["/home"],
    }
    del values["singleuser"]  # the chart's defaults: iptables init container, a PVC per user
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    code, out, _ = call(
        capsys,
        "check",
        "--config",
        str(path),
        "--file",
        f"{SECRET_MOUNT}={slapd.bind_password_file}",
    )
    assert code == 1
    assert (
        "FAIL settings: NBSpawner.home_volum is not a setting "
        "(did you mean NBSpawner.home_volume?)" in out
    )
    assert "FAIL storage: NBSpawner.home_volume has type 'nfs'" in out
    assert "NBSpawner.pod_security_level: baseline" in out
    assert "FAIL pod: the init container 'block-cloud-metadata' runs privileged or as root" in out
    assert "singleuser.cloudMetadata.blockWithIptables: false" in out
    assert "WARN storage: KubeSpawner also creates a PVC per user" in out
    assert "FAIL catalog: Catalog" in out
    assert "images[0] (slug 'SciPy').slug: 'SciPy' is not a valid slug" in out
    # the directory itself is fine
    assert any(line.startswith("OK   directory: ldap:") for line in out.splitlines())


def test_check_bundled_example(capsys):
    code, out, err = call(capsys, "check")
    assert code == 0, out + err
    assert "OK   directory: static: 3 users" in out


def test_jupyterhub_config_py(capsys, tmp_path, slapd):
    """The same commands work from a jupyterhub_config.py (no z2jh mapping)."""
    ldap = slapd.ldap_config("starttls")
    lines = [
        "c = get_config()  # noqa",
        "c.JupyterHub.spawner_class = 'nbspawner'",
        "c.NBSpawner.directory_class = 'ldap'",
        f"c.NBSpawner.catalog_file = {example_file('catalog.yaml')!r}",
        *(f"c.LDAPDirectory.{k} = {v!r}" for k, v in ldap.items()),
    ]
    path = tmp_path / "jupyterhub_config.py"
    path.write_text("\n".join(lines) + "\n")
    code, out, err = call(capsys, "lookup", "carol", "--config", str(path))
    assert code == 0, err
    assert yaml.safe_load(out)["uid"] == 2003
    code, out, err = call(capsys, "check", "--config", str(path))
    assert code == 0, out + err
    no_secret(out, err)


# ---------------------------------------------------------------------------------------------
# output: the preview's summary, the init scripts by reference, -o yaml|json|table
# ---------------------------------------------------------------------------------------------


def test_preview_starts_with_a_summary_of_the_choice_and_its_reasons(capsys):
    code, out, _ = call(capsys, "preview", "alice")
    assert code == 0
    lines = out.splitlines()
    start = lines.index("# --- summary ---")
    assert lines[start + 1 : start + 16] == [
        "summary:",
        "  profile: pytorch-cuda, PyTorch (CUDA 12) (default for group gpu-users)",
        "  image: quay.io/jupyter/pytorch-notebook:cuda12-2024-09-30",
        "  size: large, cpu 2 to 4, memory 16Gi (default for group gpu-users)",
        "  gpu: nvidia-mig-1g-10gb, 1 x nvidia.com/mig-1g.10gb (default for group gpu-users)",
        "  identity: uid 2001, gid 3001, groups physics 3001, gpu-users 3003 (from the static "
        "directory)",
        "  home: /home/alice",
        "  mounts:",
        "  - /dev/shm <- emptyDir dshm",
        "  - /home/alice <- pvc institute-homes:alice",
        "  - /data/physics <- pvc institute-data:groups/physics",
        "  - /data/reference <- pvc institute-data:reference (read-only)",
        "  - /etc/passwd <- emptyDir nbspawner-passwd:passwd (read-only)",
        "  - /etc/group <- emptyDir nbspawner-passwd:group (read-only)",
        "# --- who the user is (from the directory) ---",
    ]
    code, out, _ = call(capsys, "preview", "alice", "--profile", "scipy", "--option", "size=medium")
    assert "  profile: scipy, SciPy (chosen)" in out.splitlines()
    assert "  size: medium, cpu 1 to 2, memory 4Gi to 8Gi (chosen)" in out.splitlines()
    assert "  gpu: none" in out.splitlines()


def test_preview_names_the_init_scripts_unless_full(capsys):
    import hashlib

    scripts = {}
    for name in ("passwd-init.sh", "seed-home.sh"):
        text = (REPO / "nbspawner" / "data" / name).read_text()
        scripts[name] = (text, hashlib.sha256(text.encode()).hexdigest()[:16], len(text))
    _, short, _ = call(capsys, "preview", "alice")
    _, full, _ = call(capsys, "preview", "alice", "--full")

    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for v in value.values():
                yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    short_strings = set(strings(preview_docs(short)[1]))
    full_strings = set(strings(preview_docs(full)[1]))
    for name, (text, digest, size) in scripts.items():
        reference = f"<nbspawner/data/{name}: sha256 {digest}, {size:,} bytes; --full shows it>"
        assert reference in short_strings and text not in short_strings
        assert text in full_strings and reference not in full_strings
    assert len(short.splitlines()) < len(full.splitlines()) // 2


def test_output_formats(capsys):
    code, out, _ = call(capsys, "lookup", "alice", "-o", "table")
    assert code == 0
    assert out.splitlines()[:3] == [
        "FIELD               VALUE",
        "username            alice",
        "uid                 2001",
    ]
    assert "posix_groups        gpu-users 3003, physics 3001" in out.splitlines()
    code, out, _ = call(capsys, "lookup", "alice", "-o", "json")
    assert json.loads(out)["uid"] == 2001
    code, out, _ = call(capsys, "profiles", "bob", "-o", "table")
    lines = out.splitlines()
    assert lines[0].split() == ["SLUG", "DISPLAY", "NAME", "DEFAULT", "OPTIONS"]
    assert [line.split()[0] for line in lines[1:]] == [
        "scipy",
        "datascience",
        "scipy-2024-04",
        "kubeflow-scipy",
        "kubeflow-tensorflow",
        "kubeflow-rstudio",
    ]
    assert lines[-1].split()[-5:] == ["yes", "size:", "small,", "medium,", "large"]
    code, out, _ = call(capsys, "render", "alice", "-o", "table")
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["KIND", "NAME"],
        ["initContainer", "nbs-seed-home"],
        ["initContainer", "nbspawner-passwd"],
        ["container", "notebook"],
    ]
    assert all(line.split()[3:5] == ["2001", "3001"] for line in out.splitlines()[1:])
    code, out, _ = call(capsys, "render", "alice", "-o", "json")
    assert json.loads(out)["pod"]["kind"] == "Pod"
    code, out, _ = call(capsys, "check", "-o", "json")
    data = json.loads(out)
    assert data["ok"] is True and data["results"][0]["level"] == "OK"
    assert data["results"][-1] == {
        "level": "WARN",
        "message": "no user was looked up: this checked the configuration only (add --user NAME "
        "to spawn users as the hub would)",
    }
    code, out, _ = call(capsys, "catalog", "check", example_file("catalog.yaml"), "-o", "json")
    assert (code, json.loads(out)["ok"]) == (0, True)
    code, out, err = call(capsys, "install-files", "configmap", "-o", "table")
    assert (code, out) == (2, "")
    assert err.splitlines()[-1] == (
        "nbspawner: nbspawner install-files has no table output; use -o yaml or -o json"
    )


def oidc_config(tmp_path: Path) -> Path:
    values = {
        "hub": {
            "config": {
                "JupyterHub": {"spawner_class": "nbspawner"},
                "NBSpawner": {"directory_class": "oidc", "home_roots": ["/home"]},
                "OIDCClaimsDirectory": {
                    "uid_claim": "posix.uid",
                    "gid_claim": "posix.gid",
                    "home_claim": "posix.home",
                    "group_gids": {"physics": 3001},
                },
            }
        },
        # the chart's default iptables init container runs as root: nbspawner refuses it
        "singleuser": {"cloudMetadata": {"blockWithIptables": False}},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def test_claims_and_auth_state_files_preview_oidc_users(capsys, tmp_path):
    config = oidc_config(tmp_path)
    claims = {"preferred_username": "dana", "groups": ["physics"]}
    claims["posix"] = {"uid": 2101, "gid": 3001, "home": "/home/dana"}
    (tmp_path / "claims.json").write_text(json.dumps(claims))
    code, out, err = call(
        capsys, "lookup", "dana", "-c", str(config), "--claims", str(tmp_path / "claims.json")
    )
    assert code == 0, err
    record = yaml.safe_load(out)
    assert (record["uid"], record["gid"], record["home"], record["source"]) == (
        2101,
        3001,
        "/home/dana",
        "oidc",
    )
    assert record["posix_groups"] == [["physics", 3001]]
    # the same claims as a whole auth_state, under the key GenericOAuthenticator uses
    (tmp_path / "state.yaml").write_text(yaml.safe_dump({"oauth_user": claims}))
    code, out, _ = call(
        capsys, "render", "dana", "-c", str(config), "--auth-state", str(tmp_path / "state.yaml")
    )
    assert code == 0
    assert notebook(yaml.safe_load(out))["securityContext"]["runAsUser"] == 2101
    # without them the backend has nothing to read: the hub's refusal, exit 1 (another user:
    # dana's record is in the directory cache of this process now, as it would be in the hub)
    code, _, err = call(capsys, "lookup", "erin", "-c", str(config))
    assert code == 1 and "auth_state" in err
    code, _, err = call(capsys, "lookup", "dana", "-c", str(config), "--claims", "/nope.json")
    assert (code, err.splitlines()[-1]) == (
        2,
        "nbspawner: cannot read /nope.json: No such file or directory",
    )


def test_prepuller_lists_every_catalog_image_once(capsys):
    from nbspawner.catalog import load

    code, out, _ = call(capsys, "prepuller")
    assert code == 0
    images = yaml.safe_load(out)["prePuller"]["extraImages"]
    refs = [f"{i['name']}:{i['tag']}" for i in images.values()]
    catalog = load(example_file("catalog.yaml"))
    assert sorted(refs) == sorted({image.image for image in catalog.images})
    assert set(images) <= {f"nbspawner-{image.slug}" for image in catalog.images}


def test_prepuller_leaves_digests_out_and_says_so(capsys, tmp_path):
    from nbspawner.catalog import load_data
    from nbspawner.install_files import prepuller_values

    digest = "quay.io/x/lab@sha256:" + "a" * 64
    data = {
        "version": 1,
        "images": [
            {"slug": "a", "display_name": "A", "image": digest},
            {"slug": "b", "display_name": "B", "image": "registry.local:5000/lab:v2"},
        ],
    }
    values, skipped = prepuller_values(load_data(data))
    assert skipped == [digest]
    assert values == {
        "prePuller": {
            "extraImages": {"nbspawner-b": {"name": "registry.local:5000/lab", "tag": "v2"}}
        }
    }


def test_a_file_the_configuration_does_not_name_is_refused(capsys, ldap_config, tmp_path):
    typo = CATALOG_MOUNT.replace("catalog", "catalgo")
    code, out, err = call(
        capsys, "check", *ldap_config, "--file", f"{typo}={example_file('catalog.yaml')}"
    )
    assert (code, out) == (2, "")
    last = err.splitlines()[-1]
    assert last.startswith(
        f"nbspawner: --file {typo}={example_file('catalog.yaml')}: no setting in "
        f"{ldap_config[1]} names {typo} (the paths it names: "
    )
    assert CATALOG_MOUNT in last and SECRET_MOUNT in last
    code, out, err = call(
        capsys, "check", *ldap_config[:2], "--file", f"{CATALOG_MOUNT}={tmp_path / 'nope.yaml'}"
    )
    assert code == 2
    assert err.splitlines()[-1] == (
        f"nbspawner: --file {CATALOG_MOUNT}={tmp_path / 'nope.yaml'}: {tmp_path / 'nope.yaml'} "
        "does not exist"
    )
