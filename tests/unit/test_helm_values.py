"""Every helm-values/*.yaml is a valid z2jh config.yaml and its nbspawner settings load.

Helm validates the *merged* values (chart defaults with the file deep-merged over them) against
the chart's values.schema.yaml; we do the same with the chart's own files from shared/z2jh.
"""

import copy
import logging
from pathlib import Path

import jsonschema
import pytest
import yaml

from nbspawner.offline import example_file

REPO = Path(__file__).resolve().parents[2]
HELM_VALUES = sorted((REPO / "helm-values").glob("*.yaml"))


def deep_merge(base, override):
    """Helm's merge: maps merge recursively, everything else (lists too) is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture(scope="module")
def chart(z2jh_dir):
    schema = yaml.safe_load((z2jh_dir / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((z2jh_dir / "values.yaml").read_text())
    return schema, defaults


def test_there_are_examples():
    names = {p.stem for p in HELM_VALUES}
    assert {
        "minimal",
        "ldap",
        "oidc-keycloak",
        "nfs-homes",
        "gpu",
        "kubeflow-images",
        "restricted",
    } <= names


@pytest.mark.parametrize(
    "path", HELM_VALUES + [Path(example_file("config.yaml"))], ids=lambda p: p.name
)
def test_validates_against_chart_schema(path, chart):
    schema, defaults = chart
    values = yaml.safe_load(path.read_text())
    merged = deep_merge(defaults, values)
    # placeholders the chart requires at install time
    merged.setdefault("proxy", {}).setdefault("secretToken", "0" * 64)
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(merged), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


@pytest.mark.parametrize("path", HELM_VALUES, ids=lambda p: p.name)
def test_nbspawner_settings_load_in_a_real_spawner(path, tmp_path, monkeypatch, caplog):
    """Every hub.config key of the file is a real trait: traitlets warns about unknown ones."""
    from nbspawner.hubconfig import load_hub_config
    from nbspawner.offline import make_spawner, offline_kubeconfig

    hub = load_hub_config(path)
    config = hub.config
    assert config.JupyterHub.spawner_class in ("nbspawner", "nbspawner.NBSpawner")

    async def build():
        with offline_kubeconfig():
            return make_spawner(hub, "alice")

    import asyncio

    with caplog.at_level(logging.WARNING):
        spawner = asyncio.run(build())
        # instantiate the directory backend too: its settings are checked the same way
        backend = spawner.directory_class(parent=spawner, log=spawner.log)
    unknown = [r.getMessage() for r in caplog.records if "not recognized" in r.getMessage()]
    assert not unknown, unknown
    for cls_name, settings in (yaml.safe_load(path.read_text())["hub"].get("config") or {}).items():
        if cls_name == type(backend).__name__ or cls_name == "NBSpawner":
            target = backend if cls_name == type(backend).__name__ else spawner
            for key in settings:
                assert hasattr(target, key), f"{cls_name}.{key} is not a setting"


def test_the_chart_defaults_that_reach_the_pod_are_merged_as_helm_merges():
    """What the z2jh chart's jupyterhub_config.py sets from its defaults (compared with the real
    chart in tests/integration/test_helm_chart.py)."""
    from nbspawner.hubconfig import helm_merge, z2jh_singleuser_config

    ks = z2jh_singleuser_config({})
    assert ks["extra_labels"] == {"hub.jupyter.org/network-access-hub": "true"}
    assert [t["key"] for t in ks["tolerations"]] == [
        "hub.jupyter.org/dedicated",
        "hub.jupyter.org_dedicated",
    ]
    (preferred,) = ks["node_affinity_preferred"]
    assert preferred["weight"] == 100
    assert ks["common_labels"] == {
        "app.kubernetes.io/name": "jupyterhub",
        "app": "jupyterhub",
        "app.kubernetes.io/managed-by": "kubespawner",
    }
    assert "scheduler_name" not in ks  # depends on the release: not in a config.yaml

    ks = z2jh_singleuser_config(
        {
            "singleuser": {"extraTolerations": [{"key": "gpu"}], "extraLabels": None},
            "scheduling": {"userPods": {"nodeAffinity": {"matchNodePurpose": "require"}}},
        }
    )
    assert [t["key"] for t in ks["tolerations"]][-1] == "gpu"  # added after the chart's
    assert "extra_labels" not in ks  # null removes a chart default, as in helm
    assert "node_affinity_preferred" not in ks and len(ks["node_affinity_required"]) == 1
    assert helm_merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


def test_release_settings_come_from_the_hub_secrets_values():
    from nbspawner.hubconfig import z2jh_singleuser_config

    secret = {
        "Chart": {"Name": "jupyterhub", "Version": "4.4.0+build"},
        "Release": {"Name": "jhub", "Namespace": "jhub"},
        "fullnameOverride": "",
        "scheduling": {"podPriority": {"enabled": True}},
    }
    ks = z2jh_singleuser_config(secret)
    assert ks["scheduler_name"] == "jhub-user-scheduler"
    assert ks["priority_class_name"] == "jhub-default-priority"
    assert ks["common_labels"]["helm.sh/chart"] == "jupyterhub-4.4.0_build"
    assert ks["common_labels"]["release"] == "jhub"
    # fullnameOverride: null -> <release>-<name> unless the release name holds the name
    ks = z2jh_singleuser_config(dict(secret, fullnameOverride=None))
    assert ks["scheduler_name"] == "jhub-jupyterhub-user-scheduler"
    assert ks["priority_class_name"] == "jhub-jupyterhub"
    ks = z2jh_singleuser_config(
        dict(secret, fullnameOverride=None, Release={"Name": "my-jupyterhub"})
    )
    assert ks["scheduler_name"] == "my-jupyterhub-user-scheduler"


def test_a_config_yaml_preview_notes_the_release_dependent_parts(tmp_path):
    from nbspawner.hubconfig import load_hub_config

    path = tmp_path / "config.yaml"
    path.write_text("hub: {config: {JupyterHub: {spawner_class: nbspawner}}}\n")
    hub = load_hub_config(path)
    assert not hub.notes  # not a problem for `nbspawner check`
    (note,) = hub.pod_notes
    assert "schedulerName" in note and "hub Secret's values.yaml" in note
    path.write_text(path.read_text() + "Release: {Name: jhub}\nChart: {Name: jupyterhub}\n")
    assert not load_hub_config(path).pod_notes
