"""nbspawner.storage: home volumes, data shares and seeding from a user record (pure)."""

from __future__ import annotations

import copy
import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from nbspawner.errors import ConfigError, StorageError
from nbspawner.podpatch import restricted_container_security_context
from nbspawner.record import UserRecord
from nbspawner.storage import (
    SEED_SCRIPT_PATH,
    build_storage,
    check_pod_conflicts,
    resolve_home,
    seed_script,
)
from nbspawner.storage_config import (
    HOME_VOLUME_NAME,
    SEED_CONTAINER_NAME,
    DataShare,
    HomeVolume,
    StorageConfig,
)
from nbspawner.templates import render_template, template_keys

IMAGE = "quay.io/jupyter/scipy-notebook:2024-10-07"

NFS_HOME = {"type": "nfs", "server": "nfs.example.org", "export_roots": ["/home"]}
PVC_HOME = {"type": "pvc", "claim_name": "homes", "export_roots": ["/export/home"]}
HOST_HOME = {"type": "hostPath", "export_roots": ["/home"]}


def record(**kw) -> UserRecord:
    base = {
        "username": "alice",
        "uid": 12345,
        "gid": 500,
        "home": "/home/alice",
        "groups": ("staff",),
        "source": "test",
    }
    base.update(kw)
    return UserRecord(**base)


def build(home_volume=None, rec=None, **kw):
    config = StorageConfig.from_config(home_volume=home_volume, **kw)
    return build_storage(config, rec or record(), image=IMAGE)


def mounts_by_path(plan) -> dict[str, dict]:
    return {m["mountPath"]: m for m in plan.patch.volume_mounts}


def volumes_by_name(plan) -> dict[str, dict]:
    return {v["name"]: v for v in plan.patch.volumes}


# ---------------------------------------------------------------------------
# Home modes
# ---------------------------------------------------------------------------

HOME_CASES = [
    pytest.param(
        NFS_HOME,
        "/home/alice",
        {"name": HOME_VOLUME_NAME, "nfs": {"server": "nfs.example.org", "path": "/home/alice"}},
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice"},
        id="nfs-same-path",
    ),
    pytest.param(
        dict(NFS_HOME, path="/export{home}"),
        "/home/alice",
        {
            "name": HOME_VOLUME_NAME,
            "nfs": {"server": "nfs.example.org", "path": "/export/home/alice"},
        },
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice"},
        id="nfs-prefixed",
    ),
    pytest.param(
        dict(NFS_HOME, export_roots=["/home", "/users"], path="/srv/homes/{home_relative}"),
        "/users/staff/alice",
        {
            "name": HOME_VOLUME_NAME,
            "nfs": {"server": "nfs.example.org", "path": "/srv/homes/staff/alice"},
        },
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice"},
        id="nfs-root-mapped",
    ),
    pytest.param(
        PVC_HOME,
        "/export/home/alice",
        {
            "name": HOME_VOLUME_NAME,
            "persistentVolumeClaim": {"claimName": "homes", "readOnly": False},
        },
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice", "subPath": "alice"},
        id="pvc-subpath",
    ),
    pytest.param(
        dict(PVC_HOME, export_roots=["/export", "/export/home"]),
        "/export/home/alice",
        {
            "name": HOME_VOLUME_NAME,
            "persistentVolumeClaim": {"claimName": "homes", "readOnly": False},
        },
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice", "subPath": "alice"},
        id="pvc-longest-root-wins",
    ),
    pytest.param(
        dict(PVC_HOME, sub_path="homes/{home_relative}"),
        "/export/home/a/alice",
        {
            "name": HOME_VOLUME_NAME,
            "persistentVolumeClaim": {"claimName": "homes", "readOnly": False},
        },
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice", "subPath": "homes/a/alice"},
        id="pvc-subpath-template",
    ),
    pytest.param(
        HOST_HOME,
        "/home/alice",
        {"name": HOME_VOLUME_NAME, "hostPath": {"path": "/home/alice", "type": "Directory"}},
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice"},
        id="hostpath",
    ),
]


@pytest.mark.parametrize(("home_volume", "home", "volume", "mount"), HOME_CASES)
def test_home_modes(home_volume, home, volume, mount):
    plan = build(home_volume, record(home=home), seed_home_from="")
    assert plan.patch.volumes == [volume]
    assert plan.patch.volume_mounts == [mount]
    assert plan.patch.init_containers == []
    assert plan.home_mount_path == "/home/alice"
    assert plan.patch.env == {"HOME": "/home/alice"}
    assert plan.patch.working_dir == "/home/alice"


def test_home_none_mounts_nothing_but_sets_home():
    plan = build({"type": "none"}, home_mount_path="/home/jovyan")
    assert plan.patch.volumes == []
    assert plan.patch.volume_mounts == []
    assert plan.patch.init_containers == []
    assert plan.patch.env == {"HOME": "/home/jovyan"}
    assert plan.patch.working_dir is None  # no home of ours: kubespawner's working_dir stays
    assert build(None).patch.volumes == []


@pytest.mark.parametrize(
    ("template", "expected"),
    [("/home/{username}", "/home/alice"), ("/home/jovyan", "/home/jovyan")],
)
def test_mount_path_home_and_workdir_agree(template, expected):
    plan = build(PVC_HOME, record(home="/export/home/alice"), home_mount_path=template)
    assert plan.home_mount_path == expected
    assert plan.patch.env["HOME"] == expected
    assert plan.patch.working_dir == expected
    assert mounts_by_path(plan)[expected]["subPath"] == "alice"
    # the seeding init container mounts the home at the same path
    (seed,) = plan.patch.init_containers
    assert seed["volumeMounts"] == [mounts_by_path(plan)[expected]]


def test_slug_is_not_used():
    """kubespawner 7 would turn Jane.Doe into jane-doe---<hash>; paths come from the record."""
    rec = record(username="Jane.Doe", home="/export/home/Jane.Doe")
    plan = build(
        PVC_HOME,
        rec,
        data_shares=[
            {
                "name": "scratch",
                "type": "pvc",
                "claim_name": "scratch",
                "sub_path": "{username}",
                "mount_path": "/scratch/{username}",
                "read_only": False,
            },
        ],
    )
    mounts = mounts_by_path(plan)
    assert mounts["/home/Jane.Doe"]["subPath"] == "Jane.Doe"
    assert mounts["/scratch/Jane.Doe"]["subPath"] == "Jane.Doe"
    dumped = json.dumps([plan.patch.volumes, plan.patch.volume_mounts, plan.patch.env])
    assert "jane-doe" not in dumped


# ---------------------------------------------------------------------------
# Data shares
# ---------------------------------------------------------------------------

EXPERIMENTS = {
    "name": "experiments",
    "type": "nfs",
    "server": "data.example.org",
    "path": "/exp/{group}",
    "mount_path": "/data/{group}",
    "allowed_groups": ["exp-1", "exp-2", "exp-3"],
}
REFERENCE = {
    "name": "reference",
    "type": "pvc",
    "claim_name": "reference-data",
    "mount_path": "/data/reference",
}
STAFF_ONLY = {
    "name": "staff",
    "type": "hostPath",
    "path": "/mnt/staff",
    "mount_path": "/data/staff",
    "allowed_groups": ["staff"],
    "read_only": False,
}
SCRATCH = {
    "name": "scratch",
    "type": "nfs",
    "server": "10.0.0.5",
    "path": "/scratch/{uid}",
    "mount_path": "/scratch/{username}",
    "read_only": False,
}


@pytest.mark.parametrize(
    ("groups", "expected_paths"),
    [
        ((), {"/data/reference", "/scratch/alice"}),
        (("exp-2",), {"/data/exp-2", "/data/reference", "/scratch/alice"}),
        (
            ("exp-1", "exp-3", "other"),
            {"/data/exp-1", "/data/exp-3", "/data/reference", "/scratch/alice"},
        ),
        (("staff", "exp-3"), {"/data/exp-3", "/data/reference", "/data/staff", "/scratch/alice"}),
    ],
)
def test_shares_only_for_members(groups, expected_paths):
    plan = build(
        NFS_HOME,
        record(groups=groups),
        data_shares=[EXPERIMENTS, REFERENCE, STAFF_ONLY, SCRATCH],
        seed_home_from="",
    )
    paths = set(mounts_by_path(plan)) - {"/home/alice"}
    assert paths == expected_paths
    # every mount refers to a volume of the patch, names are unique
    names = [v["name"] for v in plan.patch.volumes]
    assert len(names) == len(set(names))
    assert {m["name"] for m in plan.patch.volume_mounts} <= set(names)


def test_per_group_share_volumes():
    plan = build(
        NFS_HOME, record(groups=("exp-3", "exp-1")), data_shares=[EXPERIMENTS], seed_home_from=""
    )
    vols = volumes_by_name(plan)
    mounts = mounts_by_path(plan)
    # volume names follow the order of allowed_groups, so they are stable across logins
    assert vols["nbs-data-experiments-0"] == {
        "name": "nbs-data-experiments-0",
        "nfs": {"server": "data.example.org", "path": "/exp/exp-1", "readOnly": True},
    }
    assert vols["nbs-data-experiments-2"]["nfs"]["path"] == "/exp/exp-3"
    assert mounts["/data/exp-1"] == {
        "name": "nbs-data-experiments-0",
        "mountPath": "/data/exp-1",
        "readOnly": True,
    }
    assert mounts["/data/exp-3"]["name"] == "nbs-data-experiments-2"


def test_access_groups_override_record_groups():
    """The spawner may decide access from the hub's groups too (access_groups_from)."""
    config = StorageConfig.from_config(home_volume=NFS_HOME, data_shares=[EXPERIMENTS, STAFF_ONLY])
    plan = build_storage(config, record(groups=("staff",)), image=IMAGE, access_groups=["exp-1"])
    assert set(mounts_by_path(plan)) == {"/home/alice", "/data/exp-1"}


def test_share_read_only_flags_and_sources():
    plan = build(
        NFS_HOME,
        record(groups=("staff",)),
        data_shares=[REFERENCE, STAFF_ONLY, SCRATCH],
        seed_home_from="",
    )
    vols = volumes_by_name(plan)
    mounts = mounts_by_path(plan)
    assert vols["nbs-data-reference"] == {
        "name": "nbs-data-reference",
        "persistentVolumeClaim": {"claimName": "reference-data", "readOnly": True},
    }
    assert mounts["/data/reference"]["readOnly"] is True
    assert "subPath" not in mounts["/data/reference"]
    assert vols["nbs-data-staff"] == {
        "name": "nbs-data-staff",
        "hostPath": {"path": "/mnt/staff", "type": "Directory"},
    }
    assert mounts["/data/staff"]["readOnly"] is False
    assert vols["nbs-data-scratch"]["nfs"] == {
        "server": "10.0.0.5",
        "path": "/scratch/12345",
        "readOnly": False,
    }
    assert mounts["/scratch/alice"]["readOnly"] is False


def test_one_volume_per_claim():
    """The home claim and a share on the same claim share one pod volume."""
    shared = {
        "name": "groups",
        "type": "pvc",
        "claim_name": "homes",
        "sub_path": "groups/{group}",
        "mount_path": "/groups/{group}",
        "allowed_groups": ["g1", "g2"],
    }
    plan = build(
        PVC_HOME,
        record(home="/export/home/alice", groups=("g1", "g2")),
        data_shares=[shared],
        seed_home_from="",
    )
    assert plan.patch.volumes == [
        {
            "name": HOME_VOLUME_NAME,
            "persistentVolumeClaim": {"claimName": "homes", "readOnly": False},
        }
    ]
    mounts = mounts_by_path(plan)
    assert mounts["/groups/g1"] == {
        "name": HOME_VOLUME_NAME,
        "mountPath": "/groups/g1",
        "readOnly": True,
        "subPath": "groups/g1",
    }
    assert mounts["/groups/g2"]["subPath"] == "groups/g2"


def test_read_only_claim_becomes_writable_if_any_mount_writes():
    ro = dict(REFERENCE, name="ro", mount_path="/data/ro")
    rw = dict(REFERENCE, name="rw", mount_path="/data/rw", read_only=False)
    plan = build(NFS_HOME, data_shares=[ro, rw], seed_home_from="")
    (volume,) = [v for v in plan.patch.volumes if "persistentVolumeClaim" in v]
    assert volume["persistentVolumeClaim"]["readOnly"] is False
    mounts = mounts_by_path(plan)
    assert mounts["/data/ro"]["readOnly"] is True
    assert mounts["/data/rw"]["readOnly"] is False


def test_duplicate_mount_paths_refused_at_spawn():
    clash = dict(REFERENCE, mount_path="/home/{username}")
    with pytest.raises(StorageError, match=r"data_shares\[reference\]\.mount_path"):
        build(NFS_HOME, data_shares=[clash], seed_home_from="")
    fixed = dict(REFERENCE, mount_path="/data/exp-1")
    with pytest.raises(StorageError, match="two mounts at one path"):
        build(NFS_HOME, record(groups=("exp-1",)), data_shares=[EXPERIMENTS, fixed])


# ---------------------------------------------------------------------------
# Seeding
# ---------------------------------------------------------------------------


def test_seed_init_container():
    plan = build(PVC_HOME, record(home="/export/home/alice"))
    (seed,) = plan.patch.init_containers
    assert seed["name"] == SEED_CONTAINER_NAME
    assert seed["image"] == IMAGE
    # the script is the fixed file, byte for byte: no input is ever pasted into it
    assert seed["command"] == ["/bin/sh", "-c", SEED_SCRIPT_PATH.read_text(), SEED_CONTAINER_NAME]
    assert seed["command"][2] == seed_script()
    assert seed["env"] == [
        {"name": "NBS_SEED_FROM", "value": "/tmp_home/jovyan"},
        {"name": "NBS_HOME", "value": "/home/alice"},
        {"name": "NBS_UID", "value": "12345"},
        {"name": "NBS_GID", "value": "500"},
    ]
    assert seed["securityContext"] == restricted_container_security_context(
        12345, 500, read_only_root=True
    )
    assert seed["volumeMounts"] == [
        {"name": HOME_VOLUME_NAME, "mountPath": "/home/alice", "subPath": "alice"}
    ]


def test_seed_options():
    config = StorageConfig.from_config(home_volume=NFS_HOME, seed_home_from="/etc/skel")
    plan = build_storage(
        config,
        record(),
        image=IMAGE,
        image_pull_policy="IfNotPresent",
        seed_resources={"limits": {"cpu": "100m", "memory": "64Mi"}},
    )
    (seed,) = plan.patch.init_containers
    assert seed["imagePullPolicy"] == "IfNotPresent"
    assert seed["resources"] == {"limits": {"cpu": "100m", "memory": "64Mi"}}
    assert {"name": "NBS_SEED_FROM", "value": "/etc/skel"} in seed["env"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"home_volume": NFS_HOME, "seed_home_from": ""},
        {"home_volume": {"type": "none"}},
    ],
)
def test_no_seeding(kwargs):
    assert build(**kwargs).patch.init_containers == []


def test_seed_skipped_when_the_home_hides_the_skeleton():
    """docker-stacks keep their skeleton in /home/jovyan: fine for alice, not for a user jovyan."""
    kwargs = {"home_volume": dict(NFS_HOME), "seed_home_from": "/home/jovyan"}
    assert len(build(**kwargs).patch.init_containers) == 1
    plan = build(rec=record(username="jovyan", home="/home/jovyan"), **kwargs)
    assert plan.patch.init_containers == []
    assert any("skipped" in line for line in plan.summary)


def test_seed_refuses_root_ids():
    config = StorageConfig.from_config(home_volume=NFS_HOME)
    with pytest.raises(StorageError, match="uid or gid 0"):
        build_storage(config, record(uid=0), image=IMAGE)


# ---------------------------------------------------------------------------
# Refusals at spawn time: record values (StorageError, value never echoed)
# ---------------------------------------------------------------------------

HOSTILE_HOMES = [
    "/home/../etc",
    "/export/home/../../etc",
    "/export/home/alice/..",
    "/export/home/./alice",
    "/export/home//alice",
    "//export/home/alice",
    "/export/home/alice/",
    "export/home/alice",
    "~alice",
    "",
    "/export/home",
    "/export/homeX/alice",
    "/etc/alice",
    "/",
    "/export/home/alice\x00",
    "/export/home/al\nice",
    "/export/home/\u00e5lice",
    "/export/home/ali\u200bce",
    "/export/home/alice;rm",
    "/export/home/$(id)",
    "/export/home/{username}",
]


@pytest.mark.parametrize("home", HOSTILE_HOMES)
@pytest.mark.parametrize("mode", ["pvc", "nfs", "hostPath"])
def test_hostile_home_refused(home, mode):
    home_volume = {
        "pvc": PVC_HOME,
        "nfs": dict(NFS_HOME, export_roots=["/export/home"]),
        "hostPath": dict(HOST_HOME, export_roots=["/export/home"]),
    }[mode]
    with pytest.raises(StorageError) as info:
        build(home_volume, record(home=home))
    message = info.value.log_message
    assert "home" in message
    assert info.value.user_message  # the spawner shows this one
    if home not in ("", "/"):
        assert home not in message


def test_home_outside_roots_names_the_setting():
    with pytest.raises(StorageError) as info:
        build(PVC_HOME, record(home="/srv/alice"))
    assert "NBSpawner.home_volume.export_roots" in info.value.log_message
    assert info.value.reason == "home_outside_roots"


@pytest.mark.parametrize("username", ["..", ".", ".hidden", "-rf", "a/b", "a b", "\u00e9", "a\n"])
def test_hostile_username_refused(username):
    with pytest.raises(StorageError) as info:
        build(PVC_HOME, record(username=username, home="/export/home/alice"))
    assert "username" in info.value.log_message
    if len(username) > 2:  # "." and "-" occur in the message's list of allowed characters
        assert username not in info.value.log_message


def test_resolve_home():
    assert resolve_home("/export/home/alice", ["/export", "/export/home"]) == (
        "/export/home",
        "alice",
    )
    assert resolve_home("/export/homes/alice", ["/export/home", "/export"]) == (
        "/export",
        "homes/alice",
    )


# ---------------------------------------------------------------------------
# Refusals at configuration time (ConfigError naming the setting)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"home_volume": {"type": "nfs"}}, r"home_volume\.export_roots is required"),
        ({"home_volume": dict(NFS_HOME, export_roots=["/"])}, "must not contain /"),
        ({"home_volume": dict(NFS_HOME, export_roots=["home"])}, "export_roots"),
        ({"home_volume": dict(NFS_HOME, export_roots=["/home/../etc"])}, "export_roots"),
        ({"home_volume": dict(NFS_HOME, export_roots="/home")}, "list of strings"),
        ({"home_volume": dict(NFS_HOME, server="")}, r"home_volume\.server"),
        ({"home_volume": dict(NFS_HOME, server="a b")}, r"home_volume\.server"),
        ({"home_volume": dict(NFS_HOME, claim_name="x")}, r"unknown key\(s\) claim_name"),
        ({"home_volume": dict(NFS_HOME, serverr="x")}, r"unknown key\(s\) serverr"),
        ({"home_volume": dict(PVC_HOME, claim_name="Homes_1")}, "claim_name"),
        ({"home_volume": dict(PVC_HOME, sub_path="/abs/{home_relative}")}, "sub_path"),
        ({"home_volume": dict(PVC_HOME, sub_path="{home}")}, r"\{home\}"),
        ({"home_volume": dict(PVC_HOME, sub_path="../{home_relative}")}, "sub_path"),
        ({"home_volume": dict(NFS_HOME, path="{home_relative}")}, r"home_volume\.path"),
        ({"home_volume": dict(NFS_HOME, path="/x/{group}")}, r"\{group\}"),
        ({"home_volume": {"type": "nfs4"}}, r"home_volume\.type must be one of"),
        ({"home_volume": ["nfs"]}, "must be a mapping"),
        ({"home_mount_path": "home/{username}"}, "home_mount_path"),
        ({"home_mount_path": "/home//{username}"}, "home_mount_path"),
        ({"home_mount_path": "/home/{uid}"}, r"\{uid\}"),
        ({"home_mount_path": "/home/{username.__class__}"}, "attribute or index"),
        ({"home_mount_path": "/home/{username[0]}"}, "attribute or index"),
        ({"home_mount_path": "/home/{0}"}, r"\{0\}"),
        ({"home_mount_path": "/home/{}"}, "not allowed"),
        ({"home_mount_path": "/home/{username!r}"}, "conversion"),
        ({"home_mount_path": "/home/{username:>9}"}, "format spec"),
        ({"home_mount_path": "/home/{username"}, "unbalanced"),
        ({"home_mount_path": "/etc/{username}"}, "system directory"),
        ({"home_mount_path": "/usr/local/{username}"}, "system directory"),
        ({"home_mount_path": "/"}, "system directory"),
        ({"home_mount_path": 3}, "must be a string"),
        ({"seed_home_from": "tmp_home"}, "seed_home_from"),
        ({"seed_home_from": "/"}, "must not be /"),
        ({"seed_home_from": "/home/jovyan", "home_mount_path": "/home/jovyan"}, "overlaps"),
        ({"seed_home_from": "/home/jovyan/skel", "home_mount_path": "/home/jovyan"}, "overlaps"),
        ({"seed_home_from": "/home", "home_mount_path": "/home/{username}"}, "overlaps"),
        ({"data_shares": {"name": "x"}}, "must be a list"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        StorageConfig.from_config(**kwargs)


@pytest.mark.parametrize(
    ("share", "match"),
    [
        ({"type": "nfs"}, r"data_shares\[0\]\.name is required"),
        (dict(REFERENCE, name="Ref_Data"), r"\.name is required"),
        (dict(REFERENCE, name="x" * 41), r"\.name is required"),
        (dict(REFERENCE, type="cifs"), r"data_shares\[reference\]\.type must be one of"),
        (dict(REFERENCE, read_only="false"), "must be true or false"),
        (dict(REFERENCE, readOnly=True), r"unknown key\(s\) readOnly"),
        (dict(REFERENCE, server="x"), r"unknown key\(s\) server"),
        (dict(REFERENCE, mount_path=""), "mount_path is required"),
        (dict(REFERENCE, mount_path="data"), "mount_path"),
        (dict(REFERENCE, mount_path="/proc/data"), "system directory"),
        (dict(REFERENCE, mount_path="/data/{username.__class__}"), "attribute or index"),
        (dict(REFERENCE, mount_path="/data/{home}"), r"\{home\}"),
        (dict(REFERENCE, sub_path="{user}"), r"\{user\}"),
        (dict(REFERENCE, sub_path="/abs"), "sub_path"),
        (dict(REFERENCE, sub_path="a/../../b"), "sub_path"),
        (dict(REFERENCE, allowed_groups="staff"), "list of strings"),
        (dict(REFERENCE, allowed_groups=[""]), "non-empty"),
        (dict(EXPERIMENTS, allowed_groups=[]), r"uses \{group\}"),
        (dict(EXPERIMENTS, allowed_groups=["/team/a"]), "single path segment"),
        (dict(EXPERIMENTS, allowed_groups=[".."]), "single path segment"),
        (dict(EXPERIMENTS, path="exp/{group}"), r"\.path"),
        (dict(EXPERIMENTS, path="/exp//{group}"), r"\.path"),
        (dict(EXPERIMENTS, path=""), r"\.path is required"),
        (dict(EXPERIMENTS, server=""), r"\.server"),
        (dict(STAFF_ONLY, path="/mnt/{gid}/../x"), r"\.path"),
    ],
)
def test_share_config_errors(share, match):
    with pytest.raises(ConfigError, match=match):
        StorageConfig.from_config(data_shares=[share])


def test_duplicate_share_names():
    with pytest.raises(ConfigError, match="used twice"):
        StorageConfig.from_config(data_shares=[REFERENCE, dict(REFERENCE, mount_path="/x")])


def test_from_config_builds_frozen_dataclasses():
    config = StorageConfig.from_config(
        home_volume=PVC_HOME, data_shares=[EXPERIMENTS], seed_home_from="/etc/skel"
    )
    assert config.home == HomeVolume(type="pvc", export_roots=("/export/home",), claim_name="homes")
    (share,) = config.data_shares
    assert isinstance(share, DataShare)
    assert share.per_group and share.read_only
    assert share.allowed_groups == ("exp-1", "exp-2", "exp-3")
    with pytest.raises(AttributeError):
        config.seed_home_from = "/x"  # type: ignore[misc]


# ---------------------------------------------------------------------------
# The template mini-language
# ---------------------------------------------------------------------------


def test_template_keys_and_render():
    keys = template_keys("/a/{username}/{uid}", frozenset({"username", "uid"}), "S")
    assert keys == {"username", "uid"}
    assert render_template("/a/{username}/{uid}", {"username": "x", "uid": "1"}, "S") == "/a/x/1"
    # literal braces are allowed by the parser (and then refused by the path checks)
    assert render_template("/a/{{x}}", {}, "S") == "/a/{x}"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_templates_never_crash(template):
    """Any text is either a valid template or a ConfigError: no KeyError, IndexError,
    AttributeError from str.format machinery."""
    try:
        StorageConfig.from_config(home_mount_path=template)
    except ConfigError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("/.ab\x00\n{}~-_é"), max_size=24))
def test_any_home_is_mounted_safely_or_refused(home):
    config = StorageConfig.from_config(home_volume=PVC_HOME, seed_home_from="")
    try:
        plan = build_storage(config, record(home=home), image=IMAGE)
    except StorageError:
        return
    (mount,) = plan.patch.volume_mounts
    sub_path = mount["subPath"]
    assert home == "/export/home/" + sub_path
    assert not sub_path.startswith("/")
    assert all(seg not in ("", ".", "..") for seg in sub_path.split("/"))


# ---------------------------------------------------------------------------
# Conflicts with what kubespawner / z2jh already put in the pod
# ---------------------------------------------------------------------------


def z2jh_pod(mount_path="/home/jovyan"):
    """What z2jh's singleuser.storage.type static/dynamic adds."""
    return {
        "spec": {
            "volumes": [{"name": "home", "persistentVolumeClaim": {"claimName": "claim-x"}}],
            "initContainers": [],
            "containers": [
                {
                    "name": "notebook",
                    "volumeMounts": [{"name": "home", "mountPath": mount_path}],
                }
            ],
        }
    }


def test_conflict_with_z2jh_storage():
    plan = build(NFS_HOME, home_mount_path="/home/jovyan")
    with pytest.raises(ConfigError, match="singleuser.storage.type to none"):
        check_pod_conflicts(z2jh_pod(), plan.patch)
    # a different mount path is not a clash (z2jh's volume is then just unused)
    check_pod_conflicts(z2jh_pod("/home/other"), plan.patch)


def test_conflict_volume_and_init_names():
    plan = build(NFS_HOME)
    pod = z2jh_pod("/srv")
    pod["spec"]["volumes"].append({"name": HOME_VOLUME_NAME, "emptyDir": {}})
    with pytest.raises(ConfigError, match="volume named nbs-home"):
        check_pod_conflicts(pod, plan.patch)
    pod = z2jh_pod("/srv")
    pod["spec"]["initContainers"].append({"name": SEED_CONTAINER_NAME})
    with pytest.raises(ConfigError, match="init container"):
        check_pod_conflicts(pod, plan.patch)


# ---------------------------------------------------------------------------
# The how-to page's examples are real configuration
# ---------------------------------------------------------------------------

DOCS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "how-to" / "nfs-homes.md"
STORAGE_TRAITS = {"home_volume", "data_shares", "home_mount_path", "seed_home_from"}


def _yaml_blocks():
    for block in re.findall(r"```yaml\n(.*?)```", DOCS_PAGE.read_text(), re.S):
        yield from yaml.safe_load_all(textwrap.dedent(block))


def _storage_settings(node):
    if isinstance(node, dict):
        if STORAGE_TRAITS & set(node):
            yield {k: node[k] for k in STORAGE_TRAITS & set(node)}
        for value in node.values():
            yield from _storage_settings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _storage_settings(value)


def _merge(defaults, values):
    out = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def test_docs_examples_load():
    found = [s for doc in _yaml_blocks() for s in _storage_settings(doc)]
    assert len(found) >= 5
    for settings_ in found:
        StorageConfig.from_config(**settings_)


def test_docs_config_yaml_examples_match_the_chart_schema(z2jh_dir):
    schema = yaml.safe_load((z2jh_dir / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((z2jh_dir / "values.yaml").read_text())
    full = [d for d in _yaml_blocks() if isinstance(d, dict) and {"hub", "singleuser"} <= set(d)]
    assert len(full) >= 2
    for values in full:
        jsonschema.validate(_merge(defaults, values), schema)
        # the Calipsoplus-style examples are self-contained: z2jh storage off, restricted-ready
        assert values["singleuser"]["storage"]["type"] == "none"
