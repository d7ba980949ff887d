"""Applying feature patches to kubespawner's pod, and the model <-> dict conversion."""

from nbspawner.k8s import dict_to_model, model_to_dict
from nbspawner.podpatch import PodPatch, apply_to_pod


def kubespawner_like_pod():
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-alice", "labels": {"component": "singleuser-server"}},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/scipy-notebook:2024-05-27",
                    "env": [
                        {"name": "JUPYTERHUB_USER", "value": "alice"},
                        {"name": "HOME", "value": "/home/jovyan"},
                    ],
                    "volumeMounts": [{"name": "volume-alice", "mountPath": "/home/jovyan"}],
                }
            ],
            "volumes": [
                {"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}}
            ],
        },
    }


def test_patch_replaces_clashing_home_and_drops_unused_volume():
    pod = kubespawner_like_pod()
    patch = PodPatch(
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "homes"}}],
        volume_mounts=[{"name": "home", "mountPath": "/home/jovyan", "subPath": "alice"}],
        env={"HOME": "/home/jovyan", "NB_USER": "alice"},
        working_dir="/home/jovyan",
        init_containers=[{"name": "nbspawner-passwd", "image": "x"}],
    )
    notes = apply_to_pod(pod, patch)
    nb = pod["spec"]["containers"][0]
    assert nb["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan", "subPath": "alice"}]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["home"]
    assert {e["name"]: e["value"] for e in nb["env"]} == {
        "JUPYTERHUB_USER": "alice",
        "HOME": "/home/jovyan",
        "NB_USER": "alice",
    }
    assert [e["name"] for e in nb["env"]].count("HOME") == 1
    assert nb["workingDir"] == "/home/jovyan"
    assert pod["spec"]["initContainers"][0]["name"] == "nbspawner-passwd"
    assert any("replaced the mount at /home/jovyan" in n for n in notes)


def test_model_round_trip_keeps_every_field():
    pod = kubespawner_like_pod()
    pod["spec"]["securityContext"] = {
        "runAsUser": 2001,
        "supplementalGroups": [100],
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1", "memory": "4Gi"}}
    model = dict_to_model(pod, "V1Pod")
    assert model.spec.security_context.run_as_user == 2001
    assert model.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
    assert model_to_dict(model) == pod
