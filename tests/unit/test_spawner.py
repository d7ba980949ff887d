"""NBSpawner's glue, with the real kubespawner code (no cluster: manifests only).

The directory here is the real StaticDirectory over a YAML file; the spawn path (pod creation)
is covered against a real API server in tests/k8s/.
"""

from __future__ import annotations

import copy
import logging

import pytest
import yaml
from tornado import web
from traitlets.config import Config

from nbspawner import metrics
from nbspawner.hubconfig import HubConfig
from nbspawner.offline import example_config, example_file, make_spawner, offline_kubeconfig
from nbspawner.podpatch import manifest
from nbspawner.security import restricted_violations


def z2jh_config(**nbspawner: object) -> HubConfig:
    """What the z2jh chart emits for KubeSpawner, plus NBSpawner settings."""
    cfg = Config()
    cfg.KubeSpawner.profile_list = []
    cfg.KubeSpawner.uid = 1000
    cfg.KubeSpawner.fs_gid = 100
    cfg.KubeSpawner.image = "quay.io/jupyter/scipy-notebook:2025-03-17"
    cfg.NBSpawner.directory_class = "static"
    cfg.StaticDirectory.path = example_file("directory.yaml")
    for key, value in nbspawner.items():
        cfg.NBSpawner[key] = value
    return HubConfig(cfg, "test")


async def build(hub: HubConfig, username: str = "alice", **options):
    with offline_kubeconfig():
        spawner = make_spawner(hub, username, user_options=options)
    await spawner.load_user_options()
    pod = manifest(await spawner.get_pod_manifest())
    return spawner, pod


def notebook(pod):
    return next(c for c in pod["spec"]["containers"] if c["name"] == "notebook")


async def test_z2jh_defaults_give_directory_identity_not_1000():
    spawner, pod = await build(z2jh_config())
    sc = notebook(pod)["securityContext"]
    assert (sc["runAsUser"], sc["runAsGroup"]) == (2001, 3001)
    assert pod["spec"]["securityContext"]["runAsUser"] == 2001
    # the user's supplementary group (gpu-users 3003) and users (100) for docker-stacks' conda
    assert set(pod["spec"]["securityContext"]["supplementalGroups"]) == {3003, 100}
    # fsGroup would make the kubelet chgrp mounted homes: off unless keep_fs_gid
    assert "fsGroup" not in pod["spec"]["securityContext"]
    env = {e["name"]: e["value"] for e in notebook(pod)["env"]}
    assert env["NB_USER"] == env["USER"] == env["LOGNAME"] == "alice"
    assert (env["NB_UID"], env["NB_GID"]) == ("2001", "3001")
    assert restricted_violations(pod) == []


async def test_preview_example_has_passwd_hook_home_and_shares():
    spawner, pod = await build(example_config())
    init = {c["name"]: c for c in pod["spec"]["initContainers"]}
    assert "nbspawner-passwd" in init
    passwd_init = init["nbspawner-passwd"]
    assert passwd_init["image"] == notebook(pod)["image"], "the passwd hook uses the notebook image"
    assert passwd_init["securityContext"]["runAsUser"] == 2001
    assert passwd_init["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"]: m for m in notebook(pod)["volumeMounts"]}
    assert (
        mounts["/etc/passwd"]["readOnly"] is True and mounts["/etc/passwd"]["subPath"] == "passwd"
    )
    assert mounts["/etc/group"]["readOnly"] is True and mounts["/etc/group"]["subPath"] == "group"
    assert mounts["/home/alice"]["subPath"] == "alice"
    assert mounts["/data/physics"]["subPath"] == "groups/physics"
    assert "/data/chemistry" not in mounts, "alice is not in chemistry"
    assert mounts["/data/reference"]["readOnly"] is True
    assert notebook(pod)["workingDir"] == "/home/alice"
    assert restricted_violations(pod) == []
    # the catalog picked alice's group default (pytorch-cuda with a MIG slice)
    assert "pytorch" in notebook(pod)["image"]


async def test_bob_sees_other_profiles_than_alice():
    hub = example_config()
    with offline_kubeconfig():
        alice = make_spawner(hub, "alice")
        bob = make_spawner(hub, "bob")
    a = {p["slug"] for p in await alice.user_profile_list()}
    b = {p["slug"] for p in await bob.user_profile_list()}
    assert "pytorch-cuda" in a and "pytorch-cuda" not in b
    assert a != b


def evil_profile(**override):
    return [{"display_name": "Evil", "slug": "evil", "kubespawner_override": override}]


async def test_profile_override_cannot_change_identity():
    """uid/gid/groups come from the directory, whatever a profile says (applied after it)."""
    hub = z2jh_config()
    hub.config.KubeSpawner.profile_list = evil_profile(uid=0, gid=0, supplemental_gids=[0])
    spawner, pod = await build(hub, profile="evil")
    sc = notebook(pod)["securityContext"]
    assert sc["runAsUser"] == 2001 and sc["runAsGroup"] == 3001
    assert 0 not in pod["spec"]["securityContext"]["supplementalGroups"]
    assert restricted_violations(pod) == []


@pytest.mark.parametrize(
    "override",
    [
        {"privileged": True},
        {"allow_privilege_escalation": True},
        {"container_security_context": {"capabilities": {"add": ["SYS_ADMIN"]}}},
        {
            "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
            "volume_mounts": [{"name": "host", "mountPath": "/host"}],
        },
        {"environment": {"GRANT_SUDO": "yes"}},
    ],
    ids=["privileged", "escalation", "capability", "hostPath", "sudo"],
)
async def test_profile_asking_for_privileges_is_refused(override):
    hub = z2jh_config()
    hub.config.KubeSpawner.profile_list = evil_profile(**override)
    with pytest.raises(web.HTTPError) as info:
        await build(hub, profile="evil")
    assert info.value.status_code == 403
    assert info.value.jupyterhub_message == (
        "The selected environment asks for privileges that are not allowed."
    )


SIDECAR = {"name": "sidecar", "image": "busybox", "command": ["sleep", "infinity"]}


@pytest.mark.parametrize("where", ["extra_containers", "init_containers", "profile"])
async def test_every_container_of_the_pod_is_the_user(where):
    """A sidecar or init container from config or a profile runs as the directory identity."""
    hub = z2jh_config()
    if where == "profile":
        hub.config.KubeSpawner.profile_list = evil_profile(extra_containers=[SIDECAR])
        spawner, pod = await build(hub, profile="evil")
    else:
        hub.config.KubeSpawner[where] = [SIDECAR]
        spawner, pod = await build(hub)
    containers = pod["spec"]["containers"] + pod["spec"].get("initContainers", [])
    [sidecar] = [c for c in containers if c["name"] == "sidecar"]
    assert (sidecar["securityContext"]["runAsUser"], sidecar["securityContext"]["runAsGroup"]) == (
        2001,
        3001,
    )
    assert restricted_violations(pod) == []


@pytest.mark.parametrize(
    "setting,value,expected",
    [
        (
            "extra_containers",
            [dict(SIDECAR, securityContext={"runAsUser": 1000})],
            "container 'sidecar' has securityContext.runAsUser 1000, not the user's 2001",
        ),
        (
            "extra_containers",
            [dict(SIDECAR, securityContext={"runAsGroup": 0})],
            "container 'sidecar' has securityContext.runAsGroup 0, not the user's 3001",
        ),
        (
            "init_containers",
            [dict(SIDECAR, securityContext={"runAsUser": 0})],
            "init container 'sidecar' has securityContext.runAsUser 0, not the user's 2001",
        ),
        (
            "extra_container_config",
            {"securityContext": {"runAsUser": 1000}},
            "container 'notebook' has securityContext.runAsUser 1000, not the user's 2001",
        ),
        (
            "extra_pod_config",
            {"securityContext": {"fsGroup": 100}},
            "the pod's securityContext.fsGroup is 100; fsGroup is set only from "
            "KubeSpawner.fs_gid with NBSpawner.keep_fs_gid: true",
        ),
    ],
)
async def test_a_container_or_fs_group_with_another_identity_is_refused(
    setting, value, expected, caplog
):
    hub = z2jh_config()
    hub.config.KubeSpawner[setting] = value
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError) as info:
        await build(hub)
    assert info.value.status_code == 403
    assert any(expected in r.getMessage() for r in caplog.records), [
        r.getMessage() for r in caplog.records
    ]


async def test_keep_fs_gid_keeps_the_configured_fs_gid():
    spawner, pod = await build(z2jh_config(keep_fs_gid=True))
    assert pod["spec"]["securityContext"]["fsGroup"] == 100


async def test_admin_profile_list_wins_over_catalog():
    hub = example_config()
    hub.config.KubeSpawner.profile_list = [
        {"display_name": "Only this", "slug": "only", "kubespawner_override": {"image": "x/y:1"}}
    ]
    with offline_kubeconfig():
        spawner = make_spawner(hub, "alice")
    assert [p["slug"] for p in await spawner.user_profile_list()] == ["only"]


async def test_unknown_user_is_refused_with_a_readable_message(caplog):
    before = metrics.REFUSALS.labels(reason="not_found")._value.get()
    with offline_kubeconfig():
        spawner = make_spawner(z2jh_config(), "mallory")
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError) as info:
        await spawner.load_user_options()
    err = info.value
    assert err.status_code == 403
    assert err.jupyterhub_message.startswith("Your account was not found in the user directory")
    assert metrics.REFUSALS.labels(reason="not_found")._value.get() == before + 1
    assert caplog.record_tuples == [
        (
            "traitlets",
            logging.WARNING,
            "Refusing to spawn mallory: static: user 'mallory' is not in StaticDirectory.users "
            "or .path",
        )
    ]
    # fail closed: the spawner never got an identity, so no manifest can be built either
    with pytest.raises(web.HTTPError):
        await spawner.get_pod_manifest()


async def test_fallback_identity_only_when_configured():
    hub = z2jh_config(fallback_identity={"uid": 1000, "gid": 100, "home": "/home/{username}"})
    hub.config.NBSpawner.min_uid = 1000
    spawner, pod = await build(hub, "mallory")
    assert notebook(pod)["securityContext"]["runAsUser"] == 1000


async def test_forged_profile_choices_get_4xx():
    hub = example_config()
    with offline_kubeconfig():
        bob = make_spawner(hub, "bob", user_options={"profile": "pytorch-cuda"})
    with pytest.raises(web.HTTPError) as info:
        await bob.load_user_options()
    assert info.value.status_code == 403
    assert "pytorch-cuda" in info.value.jupyterhub_message
    with offline_kubeconfig():
        bob = make_spawner(hub, "bob", user_options={"profile": "does-not-exist"})
    with pytest.raises(web.HTTPError) as info:
        await bob.load_user_options()
    assert 400 <= info.value.status_code < 500


async def test_progress_shows_directory_step():
    spawner, _ = await build(z2jh_config())
    messages = [e["message"] for e in spawner._events]
    assert messages[0] == "Looking you up in the directory..."
    assert messages[1].startswith("Found alice in the directory")


@pytest.mark.parametrize(
    "level, allowed",
    [("restricted", False), ("baseline", True), ("privileged", True)],
)
async def test_nfs_home_needs_baseline(level, allowed):
    hub = z2jh_config(
        home_volume={"type": "nfs", "server": "nfs.example.org", "export_roots": ["/export/home"]},
        pod_security_level=level,
    )
    if allowed:
        _, pod = await build(hub)
        assert any(v.get("nfs") for v in pod["spec"]["volumes"])
    else:
        with pytest.raises(web.HTTPError) as info:
            await build(hub)
        assert info.value.status_code == 403


async def test_home_outside_export_roots_is_refused():
    hub = z2jh_config(
        home_volume={"type": "pvc", "claim_name": "homes", "export_roots": ["/srv/other"]}
    )
    with pytest.raises(web.HTTPError) as info:
        await build(hub)
    assert "home directory cannot be mounted" in info.value.jupyterhub_message


async def test_secret_mode_renders_files_on_the_hub(tmp_path):
    spawner, pod = await build(z2jh_config(passwd_hook="secret"))
    assert not any(c["name"] == "nbspawner-passwd" for c in pod["spec"].get("initContainers", []))
    (secret,) = spawner.pending_secrets
    passwd_text = secret["stringData"]["passwd"] if "stringData" in secret else None
    if passwd_text is None:
        import base64

        passwd_text = base64.b64decode(secret["data"]["passwd"]).decode()
    assert passwd_text.splitlines()[0].startswith("alice:x:2001:3001:")
    vol = next(v for v in pod["spec"]["volumes"] if "secret" in v)
    assert vol["secret"]["secretName"] == secret["metadata"]["name"]


async def test_unknown_config_keys_are_reported(caplog):
    hub = z2jh_config()
    hub.config.NBSpawner.home_volum = {"type": "pvc"}  # typo
    with caplog.at_level(logging.WARNING), offline_kubeconfig():
        make_spawner(hub, "alice")
    assert any("home_volum" in r.getMessage() for r in caplog.records)


def test_hub_image_requirement_versions_are_the_ones_under_test(z2jh_dir):
    """The pinned environment is the hub image's; the latest one is newer (two CI runs)."""
    import jupyterhub
    import kubespawner

    pins = dict(
        line.split("==", 1)
        for line in (z2jh_dir / "hub-image-requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["jupyterhub"] == "5.5.0" and pins["jupyterhub-kubespawner"] == "7.1.0"
    assert tuple(int(x) for x in jupyterhub.__version__.split(".")[:2]) >= (5, 5)
    assert kubespawner.__version__.startswith("7.")


def test_example_catalog_file_is_valid_yaml():
    data = yaml.safe_load(open(example_file("catalog.yaml")))
    assert copy.deepcopy(data)["images"]


async def test_spawn_form_reflects_catalog_edits_for_a_long_lived_spawner(tmp_path):
    """The hub keeps one spawner per user: the form must show the catalog as it is now."""
    import shutil

    catalog = tmp_path / "catalog.yaml"
    shutil.copy(example_file("catalog.yaml"), catalog)
    hub = z2jh_config(catalog_file=str(catalog))
    spawner, _ = await build(hub)  # a first spawn caches this spawn's catalog and record
    before = {p["slug"] for p in await spawner.user_profile_list()}
    assert {"scipy", "datascience"} <= before
    data = yaml.safe_load(catalog.read_text())
    data["images"] = [i for i in data["images"] if i["slug"] != "datascience"]
    catalog.write_text(yaml.safe_dump(data, sort_keys=False))
    after = {p["slug"] for p in await spawner.user_profile_list()}
    assert after == before - {"datascience"}


EMPTY = {"name": "scratch", "emptyDir": {}}
MOUNT_SPELLINGS = [
    ("/etc//passwd", "mount path '/etc//passwd' (that is, '/etc/passwd') is a protected file"),
    ("/etc/./group", "mount path '/etc/./group' (that is, '/etc/group') is a protected file"),
    (
        "/etc/jupyter/../passwd",
        "mount path '/etc/jupyter/../passwd' (that is, '/etc/passwd') is a protected file",
    ),
    ("//etc/shadow", "mount path '//etc/shadow' (that is, '/etc/shadow') is a protected file"),
    ("/etc/nsswitch.conf", "mount path '/etc/nsswitch.conf' is a protected file"),
    ("/etc", "mount path '/etc' would cover the protected files"),
    ("/etc/", "mount path '/etc/' (that is, '/etc') would cover the protected files"),
    ("/", "mount path '/' would cover the protected files"),
    ("/usr/", "mount path '/usr/' (that is, '/usr') is a system directory"),
    ("/lib64", "mount path '/lib64' is a system directory"),
    (
        "/run/secrets/kubernetes.io",
        "mount path '/run/secrets/kubernetes.io' is a system directory",
    ),
]


@pytest.mark.parametrize("path,expected", MOUNT_SPELLINGS, ids=[p for p, _ in MOUNT_SPELLINGS])
@pytest.mark.parametrize("where", ["volume_mounts", "extra_containers", "profile"])
async def test_mounts_over_protected_paths_are_refused_in_every_container(
    path, expected, where, caplog
):
    hub = z2jh_config()
    mount = {"name": "scratch", "mountPath": path}
    if where == "volume_mounts":
        hub.config.KubeSpawner.volumes = [EMPTY]
        hub.config.KubeSpawner.volume_mounts = [mount]
        label = "container 'notebook'"
    elif where == "extra_containers":
        hub.config.KubeSpawner.volumes = [EMPTY]
        hub.config.KubeSpawner.extra_containers = [dict(SIDECAR, volumeMounts=[mount])]
        label = "container 'sidecar'"
    else:
        hub.config.KubeSpawner.profile_list = evil_profile(volumes=[EMPTY], volume_mounts=[mount])
        label = "container 'notebook'"
    options = {"profile": "evil"} if where == "profile" else {}
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError) as info:
        await build(hub, **options)
    assert info.value.status_code == 403
    assert info.value.jupyterhub_message == (
        "The selected environment mounts a volume where it is not allowed. "
        "Please contact your administrator."
    )
    logged = [r.getMessage() for r in caplog.records]
    assert any(f"{label}: {expected}" in m for m in logged), logged


@pytest.mark.parametrize(
    "mounts,expected",
    [
        (
            [{"name": "nbspawner-passwd", "mountPath": "/srv/passwd"}],
            "container 'sidecar': mounts nbspawner's own volume 'nbspawner-passwd'",
        ),
        (
            [
                {"name": "scratch", "mountPath": "/srv/a"},
                {"name": "scratch", "mountPath": "/srv/a/"},
            ],
            "container 'sidecar': two mounts at '/srv/a' ('/srv/a' and '/srv/a/')",
        ),
        (
            [{"name": "scratch", "mountPath": "/srv/a", "subPath": "../../etc"}],
            "container 'sidecar': subPath '../../etc' may not contain a '..' segment",
        ),
    ],
)
async def test_sidecars_cannot_reach_nbspawner_volumes_or_mount_twice(mounts, expected, caplog):
    hub = z2jh_config()
    hub.config.KubeSpawner.volumes = [EMPTY]
    hub.config.KubeSpawner.extra_containers = [dict(SIDECAR, volumeMounts=mounts)]
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError):
        await build(hub)
    logged = [r.getMessage() for r in caplog.records]
    assert any(expected in m for m in logged), logged


@pytest.mark.parametrize(
    "spelling", ["/home/{username}/", "/home//{username}", "/home/./{username}"]
)
async def test_home_mount_spelled_another_way_clashes_with_nbspawner_home(spelling, caplog):
    """kubespawner's own mount at /home/alice/ is the same path as nbspawner's /home/alice."""
    hub = example_config()
    hub.config.KubeSpawner.volumes = [EMPTY]
    hub.config.KubeSpawner.volume_mounts = [{"name": "scratch", "mountPath": spelling}]
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError):
        await build(hub)
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        "the notebook container already mounts something at /home/alice" in m for m in logged
    )


async def test_allowed_paths_below_etc_and_usr_still_mount():
    hub = z2jh_config()
    hub.config.KubeSpawner.volumes = [EMPTY]
    hub.config.KubeSpawner.volume_mounts = [
        {"name": "scratch", "mountPath": "/etc/jupyter/site"},
        {"name": "scratch", "mountPath": "/usr/local/etc/jupyter/extra", "subPath": "x"},
    ]
    spawner, pod = await build(hub)
    paths = {m["mountPath"] for m in notebook(pod)["volumeMounts"]}
    assert {"/etc/jupyter/site", "/usr/local/etc/jupyter/extra", "/etc/passwd"} <= paths


@pytest.mark.parametrize("n,refused", [(2000, False), (7500, True)])
async def test_a_user_in_thousands_of_groups_is_refused_at_lookup(tmp_path, n, refused, caplog):
    """7500 groups would not fit the passwd init container's environment: refused before any
    pod is built, with the count and the setting in the admin's log."""
    groups = {f"grp{i:05d}": {"gid": 100000 + i} for i in range(n)}
    directory = {
        "groups": groups,
        "users": {
            "alice": {
                "uid": 2001,
                "gid": 3001,
                "home": "/export/home/alice",
                "groups": sorted(groups),
            }
        },
    }
    path = tmp_path / "directory.yaml"
    path.write_text(yaml.safe_dump(directory))
    hub = z2jh_config()
    hub.config.StaticDirectory.path = str(path)
    if not refused:
        spawner, pod = await build(hub)
        assert len(pod["spec"]["securityContext"]["supplementalGroups"]) >= n
        return
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError) as info:
        await build(hub)
    assert info.value.status_code == 403
    logged = [r.getMessage() for r in caplog.records]
    assert any(
        f"the user has {n} posix_groups, more than NBSpawner.max_groups (2000)" in m for m in logged
    ), logged


# -- a drop-in for kubespawner: what the admin configured stays (issue 19) --------------------


async def test_volumes_no_container_mounts_are_kept_for_hooks_and_devices():
    """A volume meant for modify_pod_hook, volumeDevices or an injected sidecar is not pruned."""
    hub = example_config()
    hub.config.KubeSpawner.volumes = [
        {"name": "for-the-hook", "emptyDir": {}},
        {"name": "block", "persistentVolumeClaim": {"claimName": "raw-block"}},
    ]
    hub.config.KubeSpawner.extra_container_config = {
        "volumeDevices": [{"name": "block", "devicePath": "/dev/xvda"}]
    }
    spawner, pod = await build(hub)
    names = {v["name"] for v in pod["spec"]["volumes"]}
    assert {"for-the-hook", "block", "nbs-home", "nbspawner-passwd"} <= names


@pytest.mark.parametrize(
    "setting,value",
    [
        ("working_dir", "/srv/work"),
        ("extra_container_config", {"workingDir": "/srv/work"}),
    ],
)
async def test_the_admins_working_dir_wins_over_the_home(setting, value):
    hub = example_config()
    hub.config.KubeSpawner[setting] = value
    spawner, pod = await build(hub)
    assert notebook(pod)["workingDir"] == "/srv/work"


async def test_working_dir_is_the_home_nbspawner_mounts_and_unset_without_one():
    _, pod = await build(example_config())
    assert notebook(pod)["workingDir"] == "/home/alice"
    _, pod = await build(z2jh_config())  # no home volume of nbspawner's
    assert "workingDir" not in notebook(pod)


async def test_admin_supplemental_gids_are_added_to_the_directorys_groups(caplog):
    hub = z2jh_config()
    hub.config.KubeSpawner.supplemental_gids = [5000, 3003]
    with caplog.at_level(logging.INFO):
        spawner, pod = await build(hub)
    gids = pod["spec"]["securityContext"]["supplementalGroups"]
    assert gids == [3003, 100, 5000]  # directory, default_groups, then the admin's (deduplicated)
    assert (
        "traitlets",
        logging.INFO,
        "alice gets KubeSpawner.supplemental_gids [5000, 3003] besides the directory's groups",
    ) in caplog.record_tuples


@pytest.mark.parametrize(
    "gid,expected",
    [
        (0, "is 0 (root), which the passwd hook refuses"),
        (65534, "65534 is an id file servers treat specially, which the passwd hook refuses"),
    ],
)
async def test_admin_supplemental_gids_follow_the_id_rules(gid, expected, caplog):
    hub = z2jh_config()
    hub.config.KubeSpawner.supplemental_gids = [gid]
    with caplog.at_level(logging.WARNING), pytest.raises(web.HTTPError):
        await build(hub)
    assert caplog.record_tuples == [
        (
            "traitlets",
            logging.WARNING,
            f"Refusing to spawn alice: config: KubeSpawner.supplemental_gids {expected}",
        )
    ]


async def test_a_profiles_supplemental_gids_are_ignored_with_a_warning(caplog):
    hub = z2jh_config()
    hub.config.KubeSpawner.profile_list = evil_profile(supplemental_gids=[4242])
    with caplog.at_level(logging.WARNING):
        spawner, pod = await build(hub, profile="evil")
    assert 4242 not in pod["spec"]["securityContext"]["supplementalGroups"]
    assert caplog.record_tuples == [
        (
            "traitlets",
            logging.WARNING,
            "alice: a profile's supplemental_gids [4242] are ignored: groups come from the "
            "directory (and KubeSpawner.supplemental_gids, NBSpawner.default_groups)",
        )
    ]


HOSTILE_HUB_NAMES = [
    "alice\nWARNING Refusing nothing",
    "alice\r\x1b[2K",
    "alice\u2028forged",
    "alice bob",
    "alice\x85",
]


@pytest.mark.parametrize("username", HOSTILE_HUB_NAMES, ids=repr)
async def test_hostile_hub_usernames_stay_on_one_quoted_log_line(username, caplog):
    """Whatever the hub lets through as a name, nbspawner's log lines stay one line each."""
    with offline_kubeconfig():
        spawner = make_spawner(z2jh_config(), username)
    with caplog.at_level(logging.DEBUG), pytest.raises(web.HTTPError):
        await spawner.load_user_options()
    ours = [r.getMessage() for r in caplog.records if r.name == spawner.log.name]
    assert any(repr(username) in m for m in ours), ours
    for message in ours:
        assert not any(c in message for c in "\n\r\x1b\u2028\x85"), message
