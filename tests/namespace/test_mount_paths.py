"""No path in any container of a pod NBSpawner renders lets the user write the files behind
/etc/passwd and /etc/group (issue 15, class 3).

The pods come from the real NBSpawner (kubespawner's code, nbspawner's patch and checks). Their
volumes are mounted like the kubelet and runc mount them, with real bind mounts in a private
mount namespace (tests/namespace/mountdriver.py), and a probe running as the user (setpriv: the
user's uid, gid and groups, no capabilities, no_new_privs) tries to write, replace, chmod and
unlink every path that is the same file as the passwd volume's ``passwd``/``group``.

Not covered: nbspawner's own init container (``nbspawner-passwd``) writes the files: it runs
nbspawner's fixed script before any user code, so it is not probed. What this emulation does
not prove: the kubelet's own subPath handling (it bind-mounts a resolved path, which the test
mimics) and runc's mount ordering; tests/k8s runs the same pods through a real API server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from tornado import web
from traitlets.config import Config

from nbspawner import passwd
from nbspawner.hubconfig import HubConfig
from nbspawner.offline import example_file, make_spawner, offline_kubeconfig
from nbspawner.podpatch import manifest

from .helpers import IMAGES, SYSTEM_PYTHON, prerequisite_problems

pytestmark = pytest.mark.namespace

DRIVER = Path(__file__).with_name("mountdriver.py")
SIDECAR = {"name": "sidecar", "image": "busybox", "command": ["sleep", "infinity"]}
SCRATCH = {"name": "scratch", "emptyDir": {}}


@pytest.fixture(autouse=True, scope="module")
def _prerequisites():
    problems = prerequisite_problems()
    if problems:
        pytest.fail("namespace tests cannot run here: " + "; ".join(problems), pytrace=False)


def hub_config(**kubespawner) -> HubConfig:
    cfg = Config()
    cfg.KubeSpawner.profile_list = []
    cfg.KubeSpawner.image = "quay.io/jupyter/scipy-notebook:2025-03-17"
    cfg.NBSpawner.directory_class = "static"
    cfg.StaticDirectory.path = example_file("directory.yaml")
    for key, value in kubespawner.pop("nbspawner", {}).items():
        cfg.NBSpawner[key] = value
    for key, value in kubespawner.items():
        cfg.KubeSpawner[key] = value
    return HubConfig(cfg, "test")


async def render(hub: HubConfig):
    with offline_kubeconfig():
        spawner = make_spawner(hub, "alice")
    await spawner.load_user_options()
    pod = manifest(await spawner.get_pod_manifest())
    return spawner, pod


#: configurations NBSpawner accepts: sidecars and extra mounts where admins put them
ACCEPTED = {
    "defaults": {},
    "secret-mode": {"nbspawner": {"passwd_hook": "secret"}},
    "sidecar-and-config-mounts": {
        "volumes": [SCRATCH],
        "volume_mounts": [
            {"name": "scratch", "mountPath": "/etc/jupyter/site"},
            {"name": "scratch", "mountPath": "/usr/local/etc/jupyter/extra", "subPath": "x"},
        ],
        "extra_containers": [
            dict(SIDECAR, volumeMounts=[{"name": "scratch", "mountPath": "/srv/x"}])
        ],
    },
    "init-container-from-config": {
        "volumes": [SCRATCH],
        "init_containers": [
            dict(SIDECAR, name="site-init", volumeMounts=[{"name": "scratch", "mountPath": "/w"}])
        ],
    },
}


def probe(tmp_path: Path, spawner, pod: dict) -> dict:
    """Mount ``pod``'s volumes like the kubelet, probe every container as the user."""
    spec = pod["spec"]
    secrets = {s["metadata"]["name"]: s for s in spawner.pending_secrets}
    volumes = []
    passwd_volume = None
    for volume in spec["volumes"]:
        entry = {"name": volume["name"]}
        if "secret" in volume:
            secret = secrets[volume["secret"]["secretName"]]
            data = secret.get("stringData") or {}
            if not data:
                import base64

                data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
            entry.update(secret=True, files=data)
        volumes.append(entry)
        if volume["name"] == passwd.VOLUME_NAME:
            passwd_volume = volume["name"]
    assert passwd_volume is not None, "the pod has no passwd volume"
    record = spawner.record
    files = dict(
        zip(
            ("passwd", "group"),
            passwd.merge_files(
                record,
                (IMAGES / "docker-stacks" / "passwd").read_text(),
                (IMAGES / "docker-stacks" / "group").read_text(),
            ),
            strict=True,
        )
    )
    containers = [
        c
        for kind in ("initContainers", "containers")
        for c in spec.get(kind) or []
        if c["name"] != passwd.INIT_CONTAINER_NAME  # nbspawner's own, before any user code
    ]
    # outside pytest's tmp tree (root-only 0700), so the user can walk it
    scratch = Path(tempfile.mkdtemp(prefix="nbspawner-mounts-"))
    scratch.chmod(0o755)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(
        json.dumps(
            {
                "scratch": str(scratch),
                "uid": record.uid,
                "gid": record.gid,
                "groups": spec["securityContext"].get("supplementalGroups") or [],
                "volumes": volumes,
                "passwd_volume": passwd_volume,
                "files": files,
                "image_files": {n: str(IMAGES / "docker-stacks" / n) for n in ("passwd", "group")},
                "containers": containers,
            }
        )
    )
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            SYSTEM_PYTHON,
            str(DRIVER),
            str(spec_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(scratch, ignore_errors=True)  # the tmpfs went with the namespace
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["report"]


@pytest.mark.parametrize("name", sorted(ACCEPTED))
async def test_no_container_can_write_the_files_behind_etc_passwd(tmp_path, name):
    spawner, pod = await render(hub_config(**ACCEPTED[name]))
    report = probe(tmp_path, spawner, pod)
    assert "notebook" in report
    # the notebook sees the files exactly at /etc/passwd and /etc/group: the probe found them
    assert sorted(hit["path"] for hit in report["notebook"]) == ["etc/group", "etc/passwd"]
    probed = 0
    for container, hits in report.items():
        for hit in hits:
            for attempt, outcome in hit["attempts"].items():
                probed += 1
                assert outcome != "WRITABLE", (container, hit["path"], attempt)
                assert outcome in ("EROFS", "EACCES", "EPERM", "EBUSY"), (container, hit)
    assert probed >= 8  # 2 files x 4 attempts in the notebook at least


async def test_the_probe_finds_a_writable_view_when_the_check_is_bypassed(tmp_path):
    """The control: a second, read-write mount of the passwd volume (what nbspawner refuses)
    gives the user write access, and the probe says so."""
    spawner, pod = await render(hub_config())
    notebook = next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")
    notebook["volumeMounts"].append({"name": passwd.VOLUME_NAME, "mountPath": "/srv/p"})
    report = probe(tmp_path, spawner, pod)
    writable = {hit["path"] for hit in report["notebook"] if "WRITABLE" in hit["attempts"].values()}
    assert writable == {"srv/p/passwd", "srv/p/group"}


@pytest.mark.parametrize(
    "config",
    [
        {
            "volumes": [SCRATCH],
            "extra_containers": [
                dict(SIDECAR, volumeMounts=[{"name": passwd.VOLUME_NAME, "mountPath": "/srv/p"}])
            ],
        },
        {
            "volume_mounts": [
                {"name": passwd.VOLUME_NAME, "mountPath": "/srv/p", "subPath": "passwd"}
            ]
        },
        {"volumes": [SCRATCH], "volume_mounts": [{"name": "scratch", "mountPath": "/etc//passwd"}]},
        {"volumes": [SCRATCH], "volume_mounts": [{"name": "scratch", "mountPath": "/etc"}]},
    ],
    ids=["sidecar-mounts-passwd-volume", "second-subpath-view", "etc//passwd", "etc"],
)
async def test_what_would_reach_the_files_is_refused_before_any_pod(config):
    with pytest.raises(web.HTTPError) as info:
        await render(hub_config(**config))
    assert info.value.status_code == 403
