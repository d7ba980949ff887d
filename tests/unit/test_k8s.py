"""nbspawner.k8s: the model <-> dict conversion and the partial write-back into kubespawner's V1Pod.

The reference is kubernetes_asyncio's own serialisation (``ApiClient.sanitize_for_serialization``,
what the pod POST sends) and its own model constructors, so the fast paths are checked against
the real library, not against themselves.
"""

from __future__ import annotations

import copy

import pytest
from kubernetes_asyncio.client import ApiClient, V1Container, V1EnvVar, V1Pod
from kubernetes_asyncio.client import models as k8s_models
from kubespawner import KubeSpawner

from nbspawner import k8s
from nbspawner.k8s import dict_to_model, model_to_dict, update_pod_model
from nbspawner.offline import example_config, make_spawner, offline_kubeconfig
from nbspawner.podpatch import PodPatch, apply_to_pod
from nbspawner.security import harden_pod


def serialise(model):
    """What kubernetes_asyncio sends to the API server for ``model``."""
    client = object.__new__(ApiClient)  # sanitize_for_serialization needs no HTTP session
    return client.sanitize_for_serialization(model)


async def kubespawner_pod(username: str = "alice", **extra):
    """The V1Pod kubespawner itself builds for the example configuration."""
    hub = example_config()
    for key, value in extra.items():
        hub.config.KubeSpawner[key] = value
    with offline_kubeconfig():
        spawner = make_spawner(hub, username)
    spawner.dry_run = True
    await spawner.load_user_options()
    return spawner, await KubeSpawner.get_pod_manifest(spawner)


async def test_model_to_dict_matches_the_client_serialisation():
    _, pod = await kubespawner_pod()
    assert model_to_dict(pod) == serialise(pod)


async def test_dict_to_model_builds_what_the_constructors_build():
    _, pod = await kubespawner_pod()
    data = serialise(pod)
    rebuilt = dict_to_model(data, "V1Pod")
    assert isinstance(rebuilt, V1Pod)
    assert isinstance(rebuilt.spec.containers[0], V1Container)
    assert isinstance(rebuilt.spec.containers[0].env[0], V1EnvVar)
    assert isinstance(rebuilt.spec.security_context, k8s_models.V1PodSecurityContext)
    # (kubespawner leaves some parts as plain dicts; the serialised pods must be identical)
    assert serialise(rebuilt) == data
    # the new model owns its lists: editing the dict afterwards does not reach it
    data["spec"]["containers"][0]["env"].append({"name": "LATE", "value": "1"})
    assert "LATE" not in {e.name for e in rebuilt.spec.containers[0].env}


def test_unknown_field_is_an_error_naming_it():
    with pytest.raises(ValueError, match="V1Container has no field 'imagee'"):
        dict_to_model({"name": "x", "imagee": "typo"}, "V1Container")
    with pytest.raises(ValueError, match="V1EnvVar must be an object"):
        dict_to_model(["not", "a", "dict"], "V1EnvVar")


def test_every_core_model_used_in_pods_takes_the_verified_path():
    for name in ("V1Pod", "V1PodSpec", "V1Container", "V1EnvVar", "V1Volume", "V1ObjectMeta"):
        fields, template = k8s._layout(getattr(k8s_models, name))
        assert fields is not None and template is not None, name


class V1Unusual:
    """A model class laid out unlike the generated ones (values in one dict)."""

    openapi_types = {"name": "str", "size": "int"}
    attribute_map = {"name": "name", "size": "sizeBytes"}

    def __init__(self, name=None, size=None, local_vars_configuration=None):
        self.values = {"name": name, "size": size}

    @property
    def name(self):
        return self.values["name"]

    @property
    def size(self):
        return self.values["size"]


def test_a_class_with_another_layout_goes_through_its_constructor(monkeypatch):
    monkeypatch.setattr(k8s_models, "V1Unusual", V1Unusual, raising=False)
    assert k8s._layout(V1Unusual) == (None, None)
    obj = dict_to_model({"name": "a", "sizeBytes": 3}, "V1Unusual")
    assert isinstance(obj, V1Unusual) and obj.values == {"name": "a", "size": 3}
    assert model_to_dict(obj) == {"name": "a", "sizeBytes": 3}
    k8s._MODEL_CONVERTERS.pop("V1Unusual", None)


async def nbspawner_edits(pod_model, *, drop_init: bool = False):
    """model_to_dict + the edits NBSpawner makes (a patch like storage/passwd, then hardening)."""
    data = model_to_dict(pod_model)
    patch = PodPatch(
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "homes"}}],
        volume_mounts=[{"name": "home", "mountPath": "/home/alice", "subPath": "alice"}],
        env={"HOME": "/home/alice", "NB_USER": "alice", "JUPYTERHUB_USER": "alice"},
        working_dir="/home/alice",
        init_containers=[
            {
                "name": "nbspawner-passwd",
                "image": "x",
                "env": [{"name": "NB_PW_UID", "value": "2001"}],
                "resources": {"limits": {"memory": "64Mi"}},
            }
        ],
    )
    apply_to_pod(data, patch)
    if drop_init:
        data["spec"]["initContainers"] = data["spec"]["initContainers"][-1:]
    return harden_pod(data, uid=2001, gid=3001, supplemental_gids=[100], in_place=True)


@pytest.mark.parametrize(
    "extra",
    [
        {},
        # kubespawner's own init container and a sidecar, edited by hardening in place
        {
            "init_containers": [{"name": "site-init", "image": "busybox", "command": ["true"]}],
            "extra_containers": [{"name": "sidecar", "image": "busybox"}],
            "environment": {"HOME": "/home/jovyan", "FROM_CONFIG": "yes"},
        },
    ],
)
async def test_update_pod_model_equals_a_full_conversion(extra):
    _, pod = await kubespawner_pod(**extra)
    edited = await nbspawner_edits(pod)
    expected = dict_to_model(copy.deepcopy(edited), "V1Pod")
    updated = update_pod_model(pod, edited)
    assert updated is pod
    assert model_to_dict(updated) == edited
    assert serialise(updated) == serialise(expected)


async def test_update_pod_model_replaces_a_changed_container_list():
    _, pod = await kubespawner_pod(
        init_containers=[{"name": "site-init", "image": "busybox", "command": ["true"]}]
    )
    edited = await nbspawner_edits(pod, drop_init=True)
    updated = update_pod_model(pod, edited)
    assert [c.name for c in updated.spec.init_containers] == ["nbspawner-passwd"]
    assert model_to_dict(updated) == edited


async def test_update_pod_model_env_reuse_keeps_values_and_order():
    _, pod = await kubespawner_pod(environment={"SAME": "1", "CHANGED": "old"})
    data = model_to_dict(pod)
    env = data["spec"]["containers"][0]["env"]
    for item in env:
        if item["name"] == "CHANGED":
            item["value"] = "new"
    env.insert(0, {"name": "FIRST", "value": "0"})
    env.append({"name": "FROM_FIELD", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
    updated = update_pod_model(pod, data)
    assert model_to_dict(updated) == data
    names = [e.name for e in updated.spec.containers[0].env]
    assert names[0] == "FIRST" and names[-1] == "FROM_FIELD"
    assert {e.name: e.value for e in updated.spec.containers[0].env}["CHANGED"] == "new"
