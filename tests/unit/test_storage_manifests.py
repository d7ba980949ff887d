"""Storage patches applied to *real* kubespawner pod manifests, validated against the
Kubernetes schema of several versions.

kubespawner builds the pod (``get_pod_manifest()``, no cluster contacted: it only needs a kube
config file and a running event loop); the storage patch is applied to its camelCase dict the
way the spawner applies it to the V1Pod, and the result is validated with kubernetes-validate
(strict: unknown fields are errors) and checked for volumes, mounts, subPaths and read-only
flags.
"""

from __future__ import annotations

import copy
import re
from typing import Any
from unittest.mock import Mock

import kubernetes_validate
import pytest
from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import ApiClient
from traitlets.config import Config

from nbspawner.errors import ConfigError
from nbspawner.podpatch import PodPatch
from nbspawner.record import UserRecord
from nbspawner.storage import build_storage, check_pod_conflicts
from nbspawner.storage_config import HOME_VOLUME_NAME, SEED_CONTAINER_NAME, StorageConfig

K8S_VERSIONS = ["1.25", "1.29", "1.33", "1.37"]
IMAGE = "quay.io/jupyter/scipy-notebook:2024-10-07"

#: volume types Pod Security "restricted" allows
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}

DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: dummy
  cluster: {server: "https://127.0.0.1:9"}
contexts:
- name: dummy
  context: {cluster: dummy, user: dummy, namespace: jhub}
current-context: dummy
users:
- name: dummy
  user: {token: not-a-token}
"""


class MockUser(Mock):
    """The user object kubespawner's own unit tests use."""

    name = "fake"
    server = Server()

    def __init__(self, **kwargs):
        super().__init__()
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def escaped_name(self):
        return self.name

    @property
    def url(self):
        return self.server.url


@pytest.fixture(autouse=True)
def kubeconfig(tmp_path, monkeypatch):
    """A kube config file for KubeSpawner's constructor; nothing is ever contacted."""
    import kubernetes_asyncio.config.kube_config as kube_config

    path = tmp_path / "kubeconfig"
    path.write_text(DUMMY_KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    # kubernetes_asyncio reads $KUBECONFIG once, at import time
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
    return path


async def kubespawner_pod(rec: UserRecord, **traits: Any) -> dict[str, Any]:
    """The pod kubespawner 7 builds for ``rec`` (as a camelCase dict)."""
    from kubespawner import KubeSpawner

    config = Config()
    config.KubeSpawner.image = IMAGE
    config.KubeSpawner.uid = rec.uid
    config.KubeSpawner.gid = rec.gid
    for name, value in traits.items():
        setattr(config.KubeSpawner, name, value)
    spawner = KubeSpawner(config=config, user=MockUser(name=rec.username), hub=Hub(), _mock=True)
    pod = await spawner.get_pod_manifest()
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


def apply_patch(pod: dict[str, Any], patch: PodPatch, container: str = "notebook") -> dict:
    """Apply a PodPatch to a pod dict the way the spawner applies it to the V1Pod."""
    pod = copy.deepcopy(pod)
    spec = pod["spec"]
    spec.setdefault("volumes", []).extend(copy.deepcopy(patch.volumes))
    spec["initContainers"] = list(spec.get("initContainers") or []) + copy.deepcopy(
        patch.init_containers
    )
    (notebook,) = [c for c in spec["containers"] if c["name"] == container]
    notebook.setdefault("volumeMounts", []).extend(copy.deepcopy(patch.volume_mounts))
    env = notebook.setdefault("env", [])
    for name, value in patch.env.items():
        env[:] = [e for e in env if e["name"] != name]
        env.append({"name": name, "value": value})
    if patch.working_dir is not None:
        notebook["workingDir"] = patch.working_dir
    return pod


DNS_LABEL = re.compile(r"\A[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def assert_valid(pod: dict[str, Any]) -> None:
    """Schema validation for several Kubernetes versions, plus what the API server checks and
    the schema cannot: unique names, mounts that refer to volumes, unique mount paths."""
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(pod, version, strict=True)
    spec = pod["spec"]
    volume_names = [v["name"] for v in spec.get("volumes", [])]
    assert len(volume_names) == len(set(volume_names)), volume_names
    for name in volume_names:
        assert DNS_LABEL.match(name) and len(name) <= 63, name
    containers = spec["containers"] + spec.get("initContainers", [])
    container_names = [c["name"] for c in containers]
    assert len(container_names) == len(set(container_names))
    for c in containers:
        mounts = c.get("volumeMounts", [])
        paths = [m["mountPath"] for m in mounts]
        assert len(paths) == len(set(paths)), paths
        for m in mounts:
            assert m["name"] in volume_names, m
            assert not m.get("subPath", "").startswith("/")
            assert ".." not in m.get("subPath", "").split("/")


def notebook(pod):
    (c,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
    return c


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def mounts_of(container):
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes_of(pod):
    return {v["name"]: v for v in pod["spec"].get("volumes", [])}


JANE = UserRecord(
    username="Jane.Doe",
    uid=23456,
    gid=600,
    home="/export/home/Jane.Doe",
    groups=("exp-2", "staff"),
)
BOB = UserRecord(username="bob", uid=23457, gid=600, home="/export/home/bob", groups=("other",))

SHARES = [
    {
        "name": "experiments",
        "type": "nfs",
        "server": "data.example.org",
        "path": "/exp/{group}",
        "mount_path": "/data/{group}",
        "allowed_groups": ["exp-1", "exp-2"],
        "read_only": False,
    },
    {
        "name": "reference",
        "type": "pvc",
        "claim_name": "reference-data",
        "sub_path": "v1",
        "mount_path": "/data/reference",
    },
]

MODES = {
    "nfs": {"type": "nfs", "server": "nfs.example.org", "export_roots": ["/export/home"]},
    "pvc": {"type": "pvc", "claim_name": "homes", "export_roots": ["/export/home"]},
    "hostPath": {"type": "hostPath", "export_roots": ["/export/home"]},
    "none": {"type": "none"},
}

EXPECTED_HOME_VOLUME = {
    "nfs": {"nfs": {"server": "nfs.example.org", "path": "/export/home/Jane.Doe"}},
    "pvc": {"persistentVolumeClaim": {"claimName": "homes", "readOnly": False}},
    "hostPath": {"hostPath": {"path": "/export/home/Jane.Doe", "type": "Directory"}},
}


@pytest.mark.parametrize("mode", list(MODES))
async def test_storage_mode_manifest(mode):
    config = StorageConfig.from_config(home_volume=MODES[mode], data_shares=SHARES)
    plan = build_storage(config, JANE, image=IMAGE, image_pull_policy="IfNotPresent")
    base = await kubespawner_pod(JANE)
    check_pod_conflicts(base, plan.patch)
    pod = apply_patch(base, plan.patch)
    assert_valid(pod)

    nb = notebook(pod)
    mounts = mounts_of(nb)
    volumes = volumes_of(pod)
    assert env_of(nb)["HOME"] == "/home/Jane.Doe"
    # the home nbspawner mounts is where the server starts; without one, kubespawner decides
    assert nb.get("workingDir") == (None if mode == "none" else "/home/Jane.Doe")

    if mode == "none":
        assert "/home/Jane.Doe" not in mounts
        assert HOME_VOLUME_NAME not in volumes
        assert not pod["spec"]["initContainers"]
    else:
        home = mounts["/home/Jane.Doe"]
        assert home["name"] == HOME_VOLUME_NAME
        assert not home.get("readOnly", False)
        assert volumes[HOME_VOLUME_NAME] == {"name": HOME_VOLUME_NAME, **EXPECTED_HOME_VOLUME[mode]}
        if mode == "pvc":
            assert home["subPath"] == "Jane.Doe"  # from the record, not the kubespawner slug
        else:
            assert "subPath" not in home
        (seed,) = [c for c in pod["spec"]["initContainers"] if c["name"] == SEED_CONTAINER_NAME]
        assert seed["image"] == IMAGE
        assert seed["volumeMounts"] == [home]
        assert seed["securityContext"]["runAsUser"] == JANE.uid
        assert seed["securityContext"]["runAsGroup"] == JANE.gid
        assert seed["securityContext"]["readOnlyRootFilesystem"] is True

    # Jane is in exp-2 only: one experiment mount, read-write as configured
    assert mounts["/data/exp-2"]["readOnly"] is False
    assert volumes[mounts["/data/exp-2"]["name"]]["nfs"] == {
        "server": "data.example.org",
        "path": "/exp/exp-2",
        "readOnly": False,
    }
    assert "/data/exp-1" not in mounts
    ref = mounts["/data/reference"]
    assert ref["readOnly"] is True and ref["subPath"] == "v1"
    assert volumes[ref["name"]]["persistentVolumeClaim"] == {
        "claimName": "reference-data",
        "readOnly": True,
    }


async def test_group_mounts_only_for_members():
    config = StorageConfig.from_config(home_volume=MODES["pvc"], data_shares=SHARES)
    pod = apply_patch(await kubespawner_pod(BOB), build_storage(config, BOB, image=IMAGE).patch)
    assert_valid(pod)
    mounts = mounts_of(notebook(pod))
    assert not [p for p in mounts if p.startswith("/data/exp")]
    assert not [v for v in volumes_of(pod) if v.startswith("nbs-data-experiments")]
    assert "/data/reference" in mounts  # no allowed_groups: everyone
    assert mounts["/home/bob"]["subPath"] == "bob"


@pytest.mark.parametrize("mode", ["nfs", "pvc", "hostPath"])
async def test_restricted_volume_types(mode):
    """Only the PVC mode (and PVC data shares) use volume types Pod Security "restricted"
    allows; nfs and hostPath volumes need a baseline or privileged namespace."""
    config = StorageConfig.from_config(home_volume=MODES[mode])
    plan = build_storage(config, JANE, image=IMAGE)
    (volume,) = plan.patch.volumes
    kinds = set(volume) - {"name"}
    assert (kinds <= RESTRICTED_VOLUME_TYPES) == (mode == "pvc")


async def test_z2jh_static_storage_uses_the_slug_and_clashes():
    """What singleuser.storage.type=static does: subPath {username} becomes the slug, and a
    home of ours at the same path is reported instead of producing an invalid pod."""
    z2jh = {
        "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "homes"}}],
        "volume_mounts": [{"mountPath": "/home/jovyan", "name": "home", "subPath": "{username}"}],
    }
    base = await kubespawner_pod(JANE, **z2jh)
    assert mounts_of(notebook(base))["/home/jovyan"]["subPath"].startswith("jane-doe---")

    config = StorageConfig.from_config(home_volume=MODES["pvc"], home_mount_path="/home/jovyan")
    plan = build_storage(config, JANE, image=IMAGE)
    with pytest.raises(ConfigError, match="singleuser.storage.type to none"):
        check_pod_conflicts(base, plan.patch)


async def test_z2jh_extra_volumes_combine():
    """singleuser.storage.extraVolumes / extraVolumeMounts end up in KubeSpawner.volumes and
    combine with nbspawner's mounts."""
    extra = {
        "volumes": [{"name": "shm", "emptyDir": {"medium": "Memory"}}],
        "volume_mounts": [{"name": "shm", "mountPath": "/dev/shm"}],
    }
    base = await kubespawner_pod(JANE, **extra)
    config = StorageConfig.from_config(
        home_volume=MODES["pvc"], home_mount_path="/home/jovyan", data_shares=SHARES
    )
    plan = build_storage(config, JANE, image=IMAGE)
    check_pod_conflicts(base, plan.patch)
    pod = apply_patch(base, plan.patch)
    assert_valid(pod)
    mounts = mounts_of(notebook(pod))
    assert mounts["/dev/shm"]["name"] == "shm"
    assert mounts["/home/jovyan"]["subPath"] == "Jane.Doe"
    assert env_of(notebook(pod))["HOME"] == "/home/jovyan"


async def test_validator_catches_a_broken_mount():
    """The schema check is not vacuous: a readOnly string or an unknown field fails."""
    config = StorageConfig.from_config(home_volume=MODES["pvc"])
    plan = build_storage(config, JANE, image=IMAGE)
    pod = apply_patch(await kubespawner_pod(JANE), plan.patch)
    broken = copy.deepcopy(pod)
    mounts_of(notebook(broken))["/home/Jane.Doe"]["readOnly"] = "yes"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    broken = copy.deepcopy(pod)
    volumes_of(broken)[HOME_VOLUME_NAME]["persistentVolumeClaim"]["subPath"] = "x"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
