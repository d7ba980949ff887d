"""Catalog node pools and per-image pod settings (issue 21): what reaches the pod, and what the
catalog refuses. The spawner is the hub's (make_spawner on a z2jh-shaped config), the pod is
kubespawner's own with nbspawner's additions."""

from __future__ import annotations

import logging

import pytest
from tornado import web
from traitlets.config import Config

from nbspawner.catalog import load_data
from nbspawner.errors import CatalogError
from nbspawner.hubconfig import HubConfig
from nbspawner.offline import example_file, make_spawner, offline_kubeconfig
from nbspawner.podpatch import manifest

USER_NODES = {
    "matchExpressions": [
        {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
    ]
}
USER_TAINT = {
    "key": "hub.jupyter.org/dedicated",
    "operator": "Equal",
    "value": "user",
    "effect": "NoSchedule",
}
HIGHMEM = {"key": "pool", "operator": "Equal", "value": "highmem", "effect": "NoSchedule"}
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def catalog(**image_fields) -> dict:
    return {
        "version": 1,
        "images": [
            {"slug": "lab", "display_name": "Lab", "image": "x/lab:1", **image_fields},
            {"slug": "plain", "display_name": "Plain", "image": "x/plain:1"},
        ],
        "sizes": [
            {"slug": "small", "display_name": "Small", "cpu_guarantee": 1, "mem_guarantee": "1Gi"},
            {
                "slug": "big",
                "display_name": "Big",
                "cpu_guarantee": 8,
                "mem_guarantee": "64Gi",
                "node_selector": {"pool": "highmem"},
                "tolerations": [HIGHMEM],
            },
        ],
        "gpus": [
            {
                "slug": "a100",
                "display_name": "A100",
                "resource": "nvidia.com/gpu",
                "node_selector": {"nvidia.com/gpu.product": "A100"},
                "tolerations": [GPU_TAINT],
            }
        ],
    }


def hub(data: dict, **nbspawner) -> HubConfig:
    """The z2jh chart's KubeSpawner settings (user-node affinity and taint) plus a catalog."""
    cfg = Config()
    cfg.KubeSpawner.profile_list = []
    cfg.KubeSpawner.image = "quay.io/jupyter/scipy-notebook:2025-03-17"
    cfg.KubeSpawner.node_affinity_required = [USER_NODES]
    cfg.KubeSpawner.tolerations = [USER_TAINT]
    cfg.KubeSpawner.node_selector = {"topology.kubernetes.io/zone": "a"}
    cfg.KubeSpawner.image_pull_secrets = ["site-registry"]
    cfg.NBSpawner.directory_class = "static"
    cfg.StaticDirectory.path = example_file("directory.yaml")
    cfg.NBSpawner.catalog = data
    for key, value in nbspawner.items():
        cfg.NBSpawner[key] = value
    return HubConfig(cfg, "test")


async def spawn(spawner, **options):
    spawner.user_options = options
    await spawner.load_user_options()
    return manifest(await spawner.get_pod_manifest())


async def test_size_and_gpu_node_pools_add_to_the_configured_scheduling():
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog()), "alice")
    pod = await spawn(spawner, profile="lab", size="big", gpu="a100")
    spec = pod["spec"]
    assert spec["nodeSelector"] == {
        "topology.kubernetes.io/zone": "a",
        "pool": "highmem",
        "nvidia.com/gpu.product": "A100",
    }
    assert spec["tolerations"] == [USER_TAINT, HIGHMEM, GPU_TAINT]
    # the same spawner, another choice: nothing of the earlier one stays behind
    pod = await spawn(spawner, profile="lab", size="small")
    assert pod["spec"]["nodeSelector"] == {"topology.kubernetes.io/zone": "a"}
    assert pod["spec"]["tolerations"] == [USER_TAINT]
    assert "nvidia.com/gpu" not in (notebook(pod)["resources"].get("limits") or {})


async def test_an_images_node_affinity_is_required_together_with_the_user_node_term():
    pool = {"key": "cpu-gen", "operator": "In", "values": ["icelake", "sapphire"]}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [pool]}]
            },
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [pool]}}
            ],
        }
    }
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog(affinity=affinity)), "alice")
    pod = await spawn(spawner, profile="lab", size="small")
    node = pod["spec"]["affinity"]["nodeAffinity"]
    assert node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        {"matchExpressions": [*USER_NODES["matchExpressions"], pool]}
    ]
    assert node["preferredDuringSchedulingIgnoredDuringExecution"] == [
        {"weight": 50, "preference": {"matchExpressions": [pool]}}
    ]
    pod = await spawn(spawner, profile="plain", size="small")
    node = pod["spec"]["affinity"]["nodeAffinity"]
    assert node["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"] == [
        USER_NODES
    ]
    assert "preferredDuringSchedulingIgnoredDuringExecution" not in node


async def test_per_image_pull_policy_secrets_and_allowed_service_account():
    data = catalog(
        image_pull_policy="Always",
        image_pull_secrets=["kubeflow-registry"],
        service_account="default-editor",
    )
    with offline_kubeconfig():
        spawner = make_spawner(hub(data, allowed_service_accounts=["default-editor"]), "alice")
    pod = await spawn(spawner, profile="lab", size="small")
    assert notebook(pod)["imagePullPolicy"] == "Always"
    assert pod["spec"]["imagePullSecrets"] == [
        {"name": "site-registry"},
        {"name": "kubeflow-registry"},
    ]
    assert pod["spec"]["serviceAccountName"] == "default-editor"
    # the passwd init container runs the same image: pulled the same way
    init = {c["name"]: c for c in pod["spec"]["initContainers"]}
    assert init["nbspawner-passwd"]["imagePullPolicy"] == "Always"
    pod = await spawn(spawner, profile="plain", size="small")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "site-registry"}]
    assert "serviceAccountName" not in pod["spec"] or pod["spec"]["serviceAccountName"] != (
        "default-editor"
    )


async def test_a_service_account_the_admin_did_not_allow_is_refused(caplog):
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog(service_account="default-editor")), "alice")
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError) as info:
        await spawn(spawner, profile="lab", size="small")
    assert info.value.status_code == 500
    assert caplog.record_tuples == [
        (
            "traitlets",
            logging.WARNING,
            "Refusing to spawn alice: catalog image lab asks for service account "
            "'default-editor', which NBSpawner.allowed_service_accounts does not list",
        )
    ]


def notebook(pod):
    return next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")


@pytest.mark.parametrize(
    "change, problem",
    [
        (
            lambda d: d["images"][0].update(node_selector={"pool": "gpu"}),
            (
                "sizes[1] (slug 'big').node_selector.pool",
                "'highmem' conflicts with 'gpu' for the same label in images[0] (slug 'lab'), "
                "which is offered with it: no node could match both",
            ),
        ),
        (
            lambda d: (
                d["images"][0].update(affinity={"nodeAffinity": {}}),
                d["sizes"][1].update(affinity={"nodeAffinity": {}}),
            ),
            (
                "sizes[1] (slug 'big').affinity",
                "is set here and on images[0] (slug 'lab'), which is offered with it: set the "
                "affinity in one place",
            ),
        ),
    ],
)
def test_placements_that_cannot_both_hold_are_refused(change, problem):
    data = catalog()
    change(data)
    with pytest.raises(CatalogError) as info:
        load_data(data)
    assert problem in info.value.problems


def test_only_node_affinity_is_accepted():
    data = catalog(affinity={"podAntiAffinity": {}})
    with pytest.raises(CatalogError) as info:
        load_data(data)
    assert info.value.problems == [
        (
            "images[0] (slug 'lab').affinity.podAntiAffinity",
            "unknown key 'podAntiAffinity' (did you mean 'nodeAffinity'?)",
        )
    ]


async def test_url_prefix_and_a_user_site_per_image():
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog()), "alice")
    env = {e["name"]: e.get("value") for e in notebook(await spawn(spawner, profile="lab"))["env"]}
    assert env["NB_PREFIX"] == "/user/alice/"
    assert env["PYTHONUSERBASE"] == "/home/alice/.local/images/lab"
    pod = await spawn(spawner, profile="plain")
    env = {e["name"]: e.get("value") for e in notebook(pod)["env"]}
    assert env["PYTHONUSERBASE"] == "/home/alice/.local/images/plain"
    # the catalog's own setting wins; the site-wide switch turns it off
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog(env={"PYTHONUSERBASE": "/opt/site"})), "alice")
    env = {e["name"]: e.get("value") for e in notebook(await spawn(spawner, profile="lab"))["env"]}
    assert env["PYTHONUSERBASE"] == "/opt/site"
    with offline_kubeconfig():
        spawner = make_spawner(hub(catalog(), isolate_user_site=False), "alice")
    env = {e["name"]: e.get("value") for e in notebook(await spawn(spawner, profile="lab"))["env"]}
    assert "PYTHONUSERBASE" not in env and env["NB_PREFIX"] == "/user/alice/"
