"""nbspawner.security: harden a kubespawner pod to "restricted", detect every violation."""

from __future__ import annotations

import copy

import kubernetes_validate
import pytest
from kubespawner.objects import make_pod

from nbspawner import passwd, passwd_hook, podpatch, security
from nbspawner.errors import UnsafePod
from nbspawner.podpatch import apply_to_pod, manifest
from nbspawner.record import UserRecord

ALICE = UserRecord(
    "alice",
    12345,
    12345,
    "/home/alice",
    posix_groups=(("physics", 23456),),
    supplemental_gids=(23456,),
)


async def kubespawner_pod(**kw) -> dict:
    """A pod as kubespawner 7 builds it, serialised as the API server receives it."""
    return manifest(kubespawner_model(**kw))


def kubespawner_model(**kw):
    """The V1Pod kubespawner 7 builds (nbspawner's additions are applied to it)."""
    args = dict(
        name="jupyter-alice",
        cmd=["jupyterhub-singleuser"],
        port=8888,
        image="quay.io/jupyter/scipy-notebook:2025-01-01",
        uid=12345,
        gid=12345,
        supplemental_gids=[100],
        env={"JUPYTERHUB_API_TOKEN": "x"},
        labels={"hub.jupyter.org/username": "alice"},
        cpu_limit=2,
        mem_limit="2G",
        allow_privilege_escalation=False,
        volumes=[{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}],
        volume_mounts=[{"name": "home", "mountPath": "/home/alice"}],
    )
    args.update(kw)
    return make_pod(**args)


def hardened(pod: dict, **kw) -> dict:
    args = dict(uid=12345, gid=12345, supplemental_gids=[23456, 100])
    args.update(kw)
    return podpatch.harden_pod(pod, **args)


async def test_plain_kubespawner_pod_is_not_restricted():
    problems = security.restricted_violations(await kubespawner_pod())
    assert problems == [
        "container 'notebook': capabilities.drop must contain ALL",
        "container 'notebook': runAsNonRoot must be true (on the pod or the container)",
        "container 'notebook': seccompProfile must be RuntimeDefault or Localhost (on the pod or "
        "the container)",
    ]


async def test_harden_gives_zero_violations_and_does_not_mutate():
    pod = await kubespawner_pod()
    before = copy.deepcopy(pod)
    out = hardened(pod)
    assert pod == before
    assert security.restricted_violations(out) == []
    security.check_restricted(out)
    psc = out["spec"]["securityContext"]
    assert psc == {
        "supplementalGroups": [23456, 100],
        "runAsUser": 12345,
        "runAsGroup": 12345,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = out["spec"]["containers"][0]["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert sc["runAsNonRoot"] is True and sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert (sc["runAsUser"], sc["runAsGroup"]) == (12345, 12345)


async def test_pod_with_passwd_patch_and_run_volume_passes():
    model = kubespawner_model()
    needs = {"needs_writable_run": True}
    patch = passwd_hook.build_passwd_patch(
        ALICE, image="img", home="/home/alice", image_needs=needs
    )
    apply_to_pod(model, patch)
    pod = manifest(model)
    out = hardened(
        pod, supplemental_gids=passwd_hook.supplemental_gids(ALICE, None, needs), fs_group=12345
    )
    assert security.restricted_violations(out) == []
    assert out["spec"]["initContainers"][0]["name"] == "nbspawner-passwd"
    assert out["spec"]["securityContext"]["fsGroup"] == 12345


async def test_secret_mode_pod_passes():
    model = kubespawner_model()
    config = passwd.PasswdHookConfig(mode="secret")
    apply_to_pod(
        model,
        passwd_hook.build_passwd_patch(ALICE, image="i", home="/h", config=config, pod_name="p"),
    )
    pod = manifest(model)
    assert security.restricted_violations(hardened(pod)) == []


async def test_root_group_needs_the_switch():
    pod = await kubespawner_pod()
    with pytest.raises(UnsafePod):
        hardened(pod, supplemental_gids=[0])
    with pytest.raises(UnsafePod):
        hardened(pod, gid=0)
    with pytest.raises(UnsafePod):
        hardened(pod, fs_group=0)
    out = hardened(pod, supplemental_gids=[0, 100], allow_root_group=True)
    assert security.restricted_violations(out) == [
        "pod: supplementalGroups contains 0 (root group), which is refused"
    ]
    assert security.restricted_violations(out, allow_root_group=True) == []


@pytest.mark.parametrize("uid", [0, -1, True, "1000"])
async def test_harden_refuses_root_and_nonsense_uid(uid):
    with pytest.raises(UnsafePod):
        hardened(await kubespawner_pod(), uid=uid)


async def test_harden_refuses_identity_conflicts():
    pod = await kubespawner_pod()
    pod["spec"]["securityContext"]["runAsUser"] = 1000
    with pytest.raises(UnsafePod, match="runAsUser is 1000"):
        hardened(pod)
    pod = await kubespawner_pod(uid=0)
    with pytest.raises(UnsafePod) as info:
        hardened(pod)
    assert info.value.log_message == (
        "harden_pod: container 'notebook' has securityContext.runAsUser 0, not the user's 12345; "
        "every container of a user's pod runs as the user (remove that setting from the profile, "
        "extra_containers, init_containers or extra_container_config)"
    )


SIDECAR = {"name": "sidecar", "image": "busybox"}


@pytest.mark.parametrize("kind", ["initContainers", "containers", "ephemeralContainers"])
async def test_every_container_runs_as_the_user(kind):
    pod = await kubespawner_pod()
    pod["spec"].setdefault(kind, []).append(copy.deepcopy(SIDECAR))
    out = hardened(pod)
    for container in out["spec"][kind]:
        sc = container["securityContext"]
        assert (sc["runAsUser"], sc["runAsGroup"]) == (12345, 12345), container["name"]
    assert security.restricted_violations(out) == []


@pytest.mark.parametrize("kind", ["initContainers", "containers", "ephemeralContainers"])
@pytest.mark.parametrize(
    "key,value", [("runAsUser", 0), ("runAsUser", 1000), ("runAsGroup", 0), ("runAsGroup", 100)]
)
async def test_any_container_with_another_identity_is_refused(kind, key, value):
    pod = await kubespawner_pod()
    sidecar = dict(copy.deepcopy(SIDECAR), securityContext={key: value})
    pod["spec"].setdefault(kind, []).append(sidecar)
    with pytest.raises(UnsafePod) as info:
        hardened(pod)
    noun = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
    assert info.value.log_message.startswith(
        f"harden_pod: {noun.get(kind, 'container')} 'sidecar' has securityContext.{key} {value}, "
        "not the user's 12345;"
    )
    assert info.value.reason == "identity_conflict"


@pytest.mark.parametrize(
    "pod_fs_group,fs_group,refused",
    [
        (100, None, "fsGroup is set only from KubeSpawner.fs_gid with NBSpawner.keep_fs_gid: true"),
        (0, None, "fsGroup is set only from KubeSpawner.fs_gid with NBSpawner.keep_fs_gid: true"),
        (100, 200, "NBSpawner.keep_fs_gid keeps fs_gid 200"),
        (100, 100, None),
        (None, 100, None),
        (None, None, None),
    ],
)
async def test_fs_group_follows_keep_fs_gid_only(pod_fs_group, fs_group, refused):
    pod = await kubespawner_pod()
    if pod_fs_group is not None:
        pod["spec"]["securityContext"]["fsGroup"] = pod_fs_group
    if refused:
        with pytest.raises(UnsafePod) as info:
            hardened(pod, fs_group=fs_group)
        assert info.value.log_message == (
            f"harden_pod: the pod's securityContext.fsGroup is {pod_fs_group}; {refused} "
            "(remove fsGroup from extra_pod_config or the profile)"
        )
    else:
        out = hardened(pod, fs_group=fs_group)
        assert out["spec"]["securityContext"].get("fsGroup") == fs_group


async def test_harden_strict_supplemental_groups():
    out = hardened(await kubespawner_pod(), strict_supplemental_groups=True)
    assert out["spec"]["securityContext"]["supplementalGroupsPolicy"] == "Strict"


async def test_harden_leaves_explicit_requests_for_privilege_for_the_check():
    pod = await kubespawner_pod(privileged=True, allow_privilege_escalation=True)
    out = hardened(pod)
    sc = out["spec"]["containers"][0]["securityContext"]
    assert sc["privileged"] is True and sc["allowPrivilegeEscalation"] is True
    with pytest.raises(UnsafePod) as e:
        security.check_restricted(out)
    assert e.value.problems == [  # type: ignore[attr-defined]
        "container 'notebook': privileged=true is not allowed",
        "container 'notebook': allowPrivilegeEscalation must be false",
    ]
    assert "jupyter-alice" in e.value.log_message
    assert (
        e.value.user_message == "The selected environment asks for privileges that are not allowed."
    )


# Each mutation of a hardened pod and the violation it must produce.
def _c(pod):
    return pod["spec"]["containers"][0]


def _sc(pod):
    return _c(pod)["securityContext"]


def _psc(pod):
    return pod["spec"]["securityContext"]


MUTATIONS = [
    ("hostNetwork", lambda p: p["spec"].update(hostNetwork=True), "pod: hostNetwork=true"),
    ("hostPID", lambda p: p["spec"].update(hostPID=True), "pod: hostPID=true"),
    ("hostIPC", lambda p: p["spec"].update(hostIPC=True), "pod: hostIPC=true"),
    ("privileged", lambda p: _sc(p).update(privileged=True), "privileged=true"),
    (
        "escalation",
        lambda p: _sc(p).update(allowPrivilegeEscalation=True),
        "allowPrivilegeEscalation",
    ),
    (
        "escalation-unset",
        lambda p: _sc(p).pop("allowPrivilegeEscalation"),
        "allowPrivilegeEscalation",
    ),
    ("cap-add", lambda p: _sc(p)["capabilities"].update(add=["SYS_ADMIN"]), "capabilities.add"),
    (
        "cap-drop",
        lambda p: _sc(p)["capabilities"].update(drop=["NET_RAW"]),
        "drop must contain ALL",
    ),
    (
        "hostPath",
        lambda p: p["spec"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
        "'hostPath'",
    ),
    (
        "nfs",
        lambda p: p["spec"]["volumes"].append({"name": "n", "nfs": {"server": "s", "path": "/x"}}),
        "type 'nfs' is not allowed by 'restricted' (mount NFS through a PersistentVolumeClaim",
    ),
    (
        "gitRepo",
        lambda p: p["spec"]["volumes"].append({"name": "g", "gitRepo": {"repository": "x"}}),
        "'gitRepo'",
    ),
    ("hostPort", lambda p: _c(p)["ports"][0].update(hostPort=8888), "hostPort 8888"),
    (
        "apparmor-annotation",
        lambda p: p["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/notebook": "unconfined"}
        ),
        "AppArmor profile 'unconfined'",
    ),
    (
        "apparmor-field",
        lambda p: _sc(p).update(appArmorProfile={"type": "Unconfined"}),
        "appArmorProfile",
    ),
    (
        "selinux-type",
        lambda p: _psc(p).update(seLinuxOptions={"type": "spc_t"}),
        "seLinuxOptions.type",
    ),
    (
        "selinux-user",
        lambda p: _sc(p).update(seLinuxOptions={"user": "system_u"}),
        "seLinuxOptions.user",
    ),
    ("procMount", lambda p: _sc(p).update(procMount="Unmasked"), "procMount 'Unmasked'"),
    (
        "seccomp-container",
        lambda p: _sc(p).update(seccompProfile={"type": "Unconfined"}),
        "'Unconfined'",
    ),
    (
        "seccomp-missing",
        lambda p: (_psc(p).pop("seccompProfile"), _sc(p).pop("seccompProfile")),
        "seccompProfile must be RuntimeDefault",
    ),
    (
        "seccomp-annotation",
        lambda p: p["metadata"]["annotations"].update(
            {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
        ),
        "seccomp 'unconfined'",
    ),
    (
        "sysctl",
        lambda p: _psc(p).update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
        "sysctl 'kernel.msgmax'",
    ),
    (
        "nonroot-false-pod",
        lambda p: _psc(p).update(runAsNonRoot=False),
        "pod: securityContext.runAsNonRoot=false",
    ),
    ("nonroot-false", lambda p: _sc(p).update(runAsNonRoot=False), "runAsNonRoot=false"),
    (
        "nonroot-missing",
        lambda p: (_psc(p).pop("runAsNonRoot"), _sc(p).pop("runAsNonRoot")),
        "runAsNonRoot must be true",
    ),
    ("uid0-pod", lambda p: _psc(p).update(runAsUser=0), "pod: securityContext.runAsUser=0"),
    ("uid0", lambda p: _sc(p).update(runAsUser=0), "runAsUser=0 (root)"),
    ("gid0", lambda p: _sc(p).update(runAsGroup=0), "runAsGroup=0 (root group)"),
    ("fsgroup0", lambda p: _psc(p).update(fsGroup=0), "fsGroup=0"),
    ("hostProcess", lambda p: _sc(p).update(windowsOptions={"hostProcess": True}), "hostProcess"),
    (
        "probe-host",
        lambda p: _c(p).update(livenessProbe={"httpGet": {"host": "10.0.0.1", "port": 80}}),
        "livenessProbe.httpGet.host",
    ),
    (
        "lifecycle-host",
        lambda p: _c(p).update(lifecycle={"preStop": {"tcpSocket": {"host": "x", "port": 1}}}),
        "lifecycle.preStop.tcpSocket.host",
    ),
    (
        "grant-sudo",
        lambda p: _c(p)["env"].append({"name": "GRANT_SUDO", "value": "yes"}),
        "GRANT_SUDO (docker-stacks root mode)",
    ),
    ("nb-uid-0", lambda p: _c(p)["env"].append({"name": "NB_UID", "value": "0"}), "NB_UID=0"),
    (
        "root-init-container",
        lambda p: (
            p["spec"]
            .setdefault("initContainers", [])
            .append(
                {
                    "name": "block-cloud-metadata",
                    "image": "iptables",
                    "securityContext": {
                        "runAsUser": 0,
                        "privileged": True,
                        "capabilities": {"add": ["NET_ADMIN"]},
                    },
                }
            )
        ),
        "init container 'block-cloud-metadata': privileged=true",
    ),
    (
        "ephemeral",
        lambda p: p["spec"].update(ephemeralContainers=[{"name": "debug", "image": "busybox"}]),
        "ephemeral container 'debug': allowPrivilegeEscalation must be false",
    ),
]


@pytest.mark.parametrize(
    "mutate, expected", [(m, e) for _, m, e in MUTATIONS], ids=[n for n, _, _ in MUTATIONS]
)
async def test_each_violation_is_detected(mutate, expected):
    pod = hardened(await kubespawner_pod())
    assert security.restricted_violations(pod) == []
    mutate(pod)
    problems = security.restricted_violations(pod)
    assert any(expected in p for p in problems), problems
    with pytest.raises(UnsafePod):
        security.check_restricted(pod)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: _sc(p)["capabilities"].update(add=["NET_BIND_SERVICE"]),
        lambda p: _psc(p).update(sysctls=[{"name": "net.ipv4.ping_group_range", "value": "0 1"}]),
        lambda p: _sc(p).update(seccompProfile={"type": "Localhost", "localhostProfile": "x.json"}),
        lambda p: _sc(p).update(seLinuxOptions={"type": "container_t", "level": "s0:c1,c2"}),
        lambda p: p["metadata"]["annotations"].update(
            {"container.apparmor.security.beta.kubernetes.io/notebook": "runtime/default"}
        ),
        lambda p: _c(p)["env"].append({"name": "GRANT_SUDO", "value": "no"}),
        lambda p: p["spec"]["volumes"].extend(
            [
                {"name": "e", "emptyDir": {}},
                {"name": "s", "secret": {"secretName": "x"}},
                {"name": "c", "configMap": {"name": "x"}},
                {"name": "pr", "projected": {"sources": []}},
                {"name": "d", "downwardAPI": {"items": []}},
                {"name": "csi", "csi": {"driver": "nfs.csi.k8s.io"}},
                {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
            ]
        ),
    ],
)
async def test_allowed_values_pass(mutate):
    pod = hardened(await kubespawner_pod())
    mutate(pod)
    assert security.restricted_violations(pod) == []


def test_bare_pod_spec_is_accepted():
    spec = {"containers": [{"name": "notebook", "image": "x"}]}
    out = podpatch.harden_pod(spec, uid=2000, gid=2000)
    assert security.restricted_violations(out) == []
    assert "containers" in out and "spec" not in out


def test_allowed_volume_types_are_the_documented_list():
    assert security.ALLOWED_VOLUME_TYPES == {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }


@pytest.mark.parametrize("version", ["1.29", "1.33", "1.37"])
@pytest.mark.parametrize("mode", ["init-container", "secret"])
async def test_hardened_pod_and_secret_match_the_kubernetes_schema(version, mode):
    model = kubespawner_model()
    config = passwd.PasswdHookConfig(mode=mode)
    needs = {"needs_writable_run": True}
    patch = passwd_hook.build_passwd_patch(
        ALICE, image="img", home="/home/alice", config=config, image_needs=needs, pod_name="p"
    )
    apply_to_pod(model, patch)
    out = hardened(manifest(model), fs_group=12345)
    kubernetes_validate.validate(out, version, strict=True)
    for secret in patch.secrets:
        kubernetes_validate.validate(secret, version, strict=True)
