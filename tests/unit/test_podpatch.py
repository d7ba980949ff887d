"""Applying nbspawner's additions and the user's identity to the V1Pod kubespawner builds."""

import pytest
from kubernetes_asyncio.client import V1SecurityContext
from kubespawner.objects import make_pod

from nbspawner.errors import UnsafePod
from nbspawner.podpatch import PodPatch, apply_to_pod, manifest, pin_identity


def kubespawner_pod(**kwargs):
    """A pod from kubespawner's own make_pod, shaped like z2jh's default (a home PVC)."""
    args = dict(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="quay.io/jupyter/scipy-notebook:2024-05-27",
        uid=2001,
        gid=2001,
        supplemental_gids=[100],
        env={"JUPYTERHUB_USER": "alice", "HOME": "/home/jovyan"},
        volumes=[{"name": "volume-alice", "persistentVolumeClaim": {"claimName": "claim-alice"}}],
        volume_mounts=[{"name": "volume-alice", "mountPath": "/home/jovyan"}],
    )
    args.update(kwargs)
    return make_pod(**args)


def test_additions_replace_the_clashing_home_and_drop_its_volume():
    pod = kubespawner_pod()
    patch = PodPatch(
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "homes"}}],
        volume_mounts=[{"name": "home", "mountPath": "/home/jovyan", "subPath": "alice"}],
        env={"HOME": "/home/jovyan", "NB_USER": "alice"},
        working_dir="/home/jovyan",
        init_containers=[{"name": "nbspawner-passwd", "image": "x"}],
    )
    notes = apply_to_pod(pod, patch)
    spec = manifest(pod)["spec"]
    nb = spec["containers"][0]
    assert nb["volumeMounts"] == [{"name": "home", "mountPath": "/home/jovyan", "subPath": "alice"}]
    assert [v["name"] for v in spec["volumes"]] == ["home"]
    env = {e["name"]: e["value"] for e in nb["env"]}
    assert env["JUPYTERHUB_USER"] == "alice" and env["NB_USER"] == "alice"
    assert [e["name"] for e in nb["env"]].count("HOME") == 1
    assert nb["workingDir"] == "/home/jovyan"
    assert [c["name"] for c in spec["initContainers"]] == ["nbspawner-passwd"]
    assert notes == [
        "replaced the mount at /home/jovyan (volume 'volume-alice')",
        "removed volume(s) ['volume-alice'] that only the replaced mount used",
    ]


def test_a_volume_no_container_mounts_is_kept():
    # meant for modify_pod_hook, volumeDevices or a sidecar a webhook injects
    pod = kubespawner_pod(volumes=[{"name": "spare", "emptyDir": {}}], volume_mounts=[])
    apply_to_pod(pod, PodPatch(volumes=[{"name": "home", "emptyDir": {}}]))
    assert [v["name"] for v in manifest(pod)["spec"]["volumes"]] == ["spare", "home"]


def test_the_admins_working_dir_wins():
    pod = kubespawner_pod(working_dir="/srv/work")
    apply_to_pod(pod, PodPatch(working_dir="/home/alice"))
    assert manifest(pod)["spec"]["containers"][0]["workingDir"] == "/srv/work"


def test_identity_pinned_in_every_container_and_the_pod():
    pod = kubespawner_pod(
        init_containers=[{"name": "admin-init", "image": "busybox"}],
        extra_containers=[
            {
                "name": "sidecar",
                "image": "x",
                "securityContext": V1SecurityContext(privileged=False),
            }
        ],
    )
    pin_identity(pod, uid=2001, gid=2001, supplemental_gids=[100, 3001])
    spec = manifest(pod)["spec"]
    assert spec["securityContext"]["runAsUser"] == 2001
    assert spec["securityContext"]["supplementalGroups"] == [100, 3001]
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in spec["initContainers"] + spec["containers"]:
        sc = c["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"], sc["runAsNonRoot"]) == (2001, 2001, True), c
        assert sc["allowPrivilegeEscalation"] is False and "ALL" in sc["capabilities"]["drop"]


def test_a_container_running_as_someone_else_is_refused():
    pod = kubespawner_pod(
        init_containers=[{"name": "other", "image": "x", "securityContext": {"runAsUser": 1000}}]
    )
    with pytest.raises(UnsafePod) as info:
        pin_identity(pod, uid=2001, gid=2001, supplemental_gids=[])
    assert "init container 'other' has securityContext.runAsUser 1000, not the user's 2001" in (
        info.value.log_message
    )
