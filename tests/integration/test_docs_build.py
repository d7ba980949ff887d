"""The documentation: it builds with warnings as errors, its reference is complete, its
troubleshooting page covers every message, and the tutorial's files work.

The build (fixture ``built_docs`` in tests/fixtures/docs.py) runs ``python -m sphinx -W`` in a
subprocess, as CI does. Warnings include every ``{setting}`Class.name``` that names no real
setting (see docs/_ext/nbspawner_reference.py), so a passing build means the prose mentions no
setting that does not exist. How the built pages look in a browser: test_docs_layout.py.
"""

from __future__ import annotations

import ast
import copy
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from nbspawner.catalog import check_file, load_data

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
TUTORIAL = DOCS / "tutorial" / "index.md"


# ---------------------------------------------------------------------------------------------
# the build
# ---------------------------------------------------------------------------------------------


def documented_classes() -> dict[str, list[str]]:
    """Every class the configuration reference must cover, with its config trait names."""
    from importlib.metadata import entry_points

    from kubespawner import KubeSpawner

    from nbspawner.spawner import NBSpawner

    # the settings NBSpawner adds to KubeSpawner's
    kube = set(KubeSpawner.class_trait_names())
    classes = {"NBSpawner": sorted(set(NBSpawner.class_trait_names(config=True)) - kube)}
    for ep in entry_points(group="nbspawner.directories"):
        cls = ep.load()
        classes[cls.__name__] = sorted(n for n in cls.class_trait_names(config=True) if n != "log")
    return classes


def test_build_succeeds_with_warnings_as_errors(built_docs):
    for page in (
        "index.html",
        "tutorial/index.html",
        "troubleshooting.html",
        "reference/config.html",
        "reference/cli.html",
        "reference/catalog-schema.html",
        "reference/directories.html",
        "reference/metrics.html",
        "explanation/fail-closed.html",
        "explanation/architecture.html",
        "explanation/passwd-threat-model.html",
    ):
        assert (built_docs / page).is_file(), page
    for guide in (
        "install",
        "ldap",
        "oidc-keycloak",
        "rest-directory",
        "nfs-homes",
        "gpus",
        "kubeflow-images",
        "rstudio-vscode",
        "restricted-namespaces",
        "migrate-from-extraconfig",
    ):
        assert (built_docs / "how-to" / f"{guide}.html").is_file(), guide


def test_config_reference_lists_every_setting(built_docs):
    generated = (DOCS / "reference" / "config.md").read_text()
    html = (built_docs / "reference" / "config.html").read_text()
    classes = documented_classes()
    assert {"NBSpawner", "LDAPDirectory", "StaticDirectory", "HTTPDirectory"} <= set(classes)
    for cls, names in classes.items():
        assert names, cls
        for name in names:
            assert f"### `{cls}.{name}`" in generated, f"{cls}.{name} missing from config.md"
            assert f"{cls}.{name}" in html, f"{cls}.{name} missing from config.html"


def test_cli_reference_lists_every_command(built_docs):
    from nbspawner.cli import build_parser

    generated = (DOCS / "reference" / "cli.md").read_text()
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == {
        "preview",
        "lookup",
        "profiles",
        "render",
        "check",
        "install-files",
        "prepuller",
        "catalog",
    }
    for name in sub.choices:
        assert f"## `nbspawner {name}`" in generated
    assert "### `nbspawner catalog check`" in generated


def test_catalog_schema_reference_lists_the_fields(built_docs):
    import json

    schema = json.loads((REPO / "nbspawner" / "schemas" / "catalog.schema.json").read_text())
    generated = (DOCS / "reference" / "catalog-schema.md").read_text()
    for key in schema["properties"]:
        if key != "$schema":
            assert f"| `{key}` |" in generated, key
    for key in schema["$defs"]["image"]["properties"]:
        assert f"| `images[].{key}` |" in generated, key


def test_every_helm_values_file_is_on_the_examples_page():
    page = (DOCS / "reference" / "helm-values.md").read_text()
    for path in sorted((REPO / "helm-values").glob("*.yaml")):
        assert f"../../helm-values/{path.name}" in page, path.name


# ---------------------------------------------------------------------------------------------
# troubleshooting covers every message
# ---------------------------------------------------------------------------------------------

#: calls whose first argument is an admin-facing message
_ERROR_CALLS = {
    "ConfigError",
    "DirectoryError",
    "UserNotFound",
    "InvalidRecord",
    "CatalogError",
    "ForbiddenChoice",
    "StorageError",
    "UnsafePod",
    "StaticFileError",
    "_refuse",
    "bad",
}
_LOG_CALLS = {"warning", "error", "info"}
#: modules whose messages only the CLI prints (documented in their own section)
_CLI_MODULES = {"cli.py", "checks.py", "hubconfig.py"}


def _literal_parts(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        parts, current = [], ""
        for value in node.values:
            if isinstance(value, ast.Constant):
                current += value.value
            else:
                parts.append(current)
                current = ""
        return [*parts, current]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal_parts(node.left) + _literal_parts(node.right)
    return []


def admin_messages() -> list[tuple[str, str]]:
    """(where, longest literal fragment) of every error and log message in nbspawner/."""
    found = []
    for path in sorted((REPO / "nbspawner").rglob("*.py")):
        if path.name in _CLI_MODULES:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = getattr(func, "attr", None) or getattr(func, "id", "")
            is_log = name in _LOG_CALLS and isinstance(func, ast.Attribute)
            if name not in _ERROR_CALLS and name != "_error" and not is_log:
                continue
            arg = node.args[1] if name == "_error" and len(node.args) > 1 else node.args[0]
            fragments = [
                re.sub(r"\s+", " ", piece.strip(" .;:,()'\""))
                for part in _literal_parts(arg)
                for piece in re.split(r"%[sdr]", part)
            ]
            fragments = [f for f in fragments if len(f) >= 12]
            if fragments:
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                found.append((where, max(fragments, key=len).replace("`", "")))
    return found


def test_troubleshooting_covers_every_message():
    text = (DOCS / "troubleshooting.md").read_text().replace("`", "")
    text = re.sub(r"\s+", " ", text)
    messages = admin_messages()
    assert len(messages) > 150  # the scan finds the messages at all
    missing = [f"{where}: {fragment!r}" for where, fragment in messages if fragment not in text]
    assert not missing, "not in docs/troubleshooting.md:\n" + "\n".join(missing)


# ---------------------------------------------------------------------------------------------
# the tutorial's files
# ---------------------------------------------------------------------------------------------


def tutorial_file(name: str) -> str:
    """The code block of the tutorial whose first line is ``# file: <name>``."""
    text = TUTORIAL.read_text()
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        if block.startswith(f"# file: {name}\n"):
            return block
    raise AssertionError(f"no '# file: {name}' block in {TUTORIAL}")


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def test_tutorial_catalog_is_valid(tmp_path):
    path = tmp_path / "catalog.yaml"
    path.write_text(tutorial_file("catalog.yaml"))
    ok, report = check_file(path)
    assert ok, report
    # the output the tutorial shows
    assert report == f"{path}: OK (2 images, 2 sizes, 2 GPU options, mode choices)"
    assert "catalog.yaml: OK (2 images, 2 sizes, 2 GPU options, mode choices)" in (
        TUTORIAL.read_text()
    )
    assert load_data(yaml.safe_load(path.read_text())).warnings == ()


def test_tutorial_config_validates_against_the_chart(z2jh_dir):
    schema = yaml.safe_load((z2jh_dir / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((z2jh_dir / "values.yaml").read_text())
    merged = deep_merge(defaults, yaml.safe_load(tutorial_file("config.yaml")))
    merged.setdefault("proxy", {}).setdefault("secretToken", "0" * 64)
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(merged))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.fixture
def tutorial_against_slapd(tmp_path, slapd):
    """The tutorial's config.yaml and catalog.yaml, with only the LDAP server swapped for the
    test slapd (same base DN, service account and users as the tutorial)."""
    values = yaml.safe_load(tutorial_file("config.yaml"))
    ldap = values["hub"]["config"]["LDAPDirectory"]
    assert ldap["bind_dn"] == slapd.bind_dn
    assert ldap["search_base"] == slapd.people_dn
    assert ldap["group_search_base"] == slapd.groups_dn
    ldap["server_urls"] = [slapd.url]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(values))
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(tutorial_file("catalog.yaml"))
    return [
        "--config",
        str(config),
        "--file",
        f"/usr/local/etc/nbspawner/catalog.yaml={catalog}",
        "--file",
        f"/usr/local/etc/nbspawner/ldap-ca.pem={slapd.ca_file}",
        "--file",
        f"/usr/local/etc/nbspawner-secrets/bind-password={slapd.bind_password_file}",
    ]


def test_tutorial_check_passes(capsys, tutorial_against_slapd):
    from nbspawner.cli import main

    code = main(["check", *tutorial_against_slapd])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert out.splitlines()[-1] == "nbspawner check: all checks passed"
    assert "(starttls) bound as cn=reader,ou=services,dc=example,dc=org" in out


def test_tutorial_gives_alice_her_identity_home_and_gpu(capsys, tutorial_against_slapd):
    """What the tutorial promises for alice, on the pod the hub would create."""
    from nbspawner.cli import main

    assert main(["lookup", "alice", *tutorial_against_slapd]) == 0
    record = yaml.safe_load(capsys.readouterr().out)
    assert (record["uid"], record["gid"], record["home"]) == (2001, 2000, "/home/alice")
    assert record["groups"] == ["gpu-users", "hpc", "physics"]

    assert main(["render", "alice", *tutorial_against_slapd]) == 0
    pod = yaml.safe_load(capsys.readouterr().out)
    psc = pod["spec"]["securityContext"]
    assert (psc["runAsUser"], psc["runAsGroup"]) == (2001, 2000)
    assert {100, 3001, 3002} <= set(psc["supplementalGroups"])
    notebook = next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")
    # the gpu-users default: PyTorch, large, a MIG slice
    assert notebook["image"] == "quay.io/jupyter/pytorch-notebook:cuda12-2024-09-30"
    assert notebook["resources"]["limits"]["nvidia.com/mig-1g.10gb"] == "1"
    home = next(m for m in notebook["volumeMounts"] if m["mountPath"] == "/home/alice")
    assert home["subPath"] == "alice"
    volume = next(v for v in pod["spec"]["volumes"] if v["name"] == home["name"])
    assert volume["persistentVolumeClaim"]["claimName"] == "homes"
    env = {e["name"]: e.get("value") for e in notebook["env"]}
    assert (env["USER"], env["HOME"], env["NB_UID"]) == ("alice", "/home/alice", "2001")
    assert "nbspawner-passwd" in [c["name"] for c in pod["spec"]["initContainers"]]
