"""Tests of the k8s harness itself: the real API server, its admission and RBAC, the kubelet
stand-in, and kubespawner's own start()/poll()/stop() against them."""

from __future__ import annotations

import asyncio
import copy
import os
import time
from pathlib import Path
from unittest.mock import Mock

import pytest
import requests

from tests.fixtures.controlplane import ApiError, ControlPlane, wait_for

pytestmark = pytest.mark.k8s

UID, GID = 12345, 12345
SH = "/bin/sh"


def restricted_pod(name: str, script: str, **spec) -> dict:
    """A pod that passes Pod Security "restricted", running ``sh -c script`` as UID."""
    pod = {
        "metadata": {"name": name, "labels": {"test": "harness"}},
        "spec": {
            "automountServiceAccountToken": False,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 2,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": UID,
                "runAsGroup": GID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container("notebook", script)],
        },
    }
    pod["spec"].update(spec)
    return pod


def container(name: str, script: str, **extra) -> dict:
    return {
        "name": name,
        "image": "example.org/notebook:1",
        "command": [SH, "-c", script],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
        **extra,
    }


def phase(p: str):
    return lambda pod: pod["status"].get("phase") == p


def is_ready(pod: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions", [])
    )


def pids_running(marker: str) -> list[int]:
    """Host pids whose command line contains ``marker``."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmdline = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if marker in cmdline:
                pids.append(int(d.name))
    return pids


# --------------------------------------------------------------------------- API server


def test_control_plane_is_real(k8s: ControlPlane):
    assert k8s.version.startswith("v1.")
    assert k8s.server.startswith("https://127.0.0.1:")
    ns = k8s.api("GET", f"/api/v1/namespaces/{k8s.namespace}")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    # TLS is verified against our CA; without a token the API refuses
    r = requests.get(f"{k8s.server}/api/v1/namespaces", verify=str(k8s.ca_path), timeout=10)
    assert r.status_code in (401, 403)
    assert k8s.startup_seconds < 60


def test_privileged_pod_rejected_by_pod_security(k8s: ControlPlane):
    pod = {
        "metadata": {"name": "privileged"},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "example.org/notebook:1",
                    "command": ["true"],
                    "securityContext": {"privileged": True, "runAsUser": 0},
                }
            ]
        },
    }
    with pytest.raises(ApiError) as exc:
        k8s.create_pod(pod, as_hub=True)
    assert exc.value.status == 403
    assert "PodSecurity" in exc.value.message
    assert 'violates PodSecurity "restricted:latest"' in exc.value.message
    assert "privileged" in exc.value.message
    assert k8s.get_pod("privileged") is None


def test_inline_nfs_and_hostpath_volumes_vs_pod_security_levels(k8s: ControlPlane):
    """restricted forbids inline nfs volumes, baseline admits them; hostPath needs privileged."""
    nfs = restricted_pod("nfs-home", "true")
    nfs["spec"]["volumes"] = [{"name": "home", "nfs": {"server": "nfs.example.org", "path": "/x"}}]
    with pytest.raises(ApiError) as exc:
        k8s.create_pod(nfs, as_hub=True)
    assert exc.value.status == 403
    assert "restricted volume types" in exc.value.message
    created = k8s.create_pod(nfs, as_hub=True, namespace=k8s.baseline_namespace)
    assert created["metadata"]["namespace"] == k8s.baseline_namespace

    host = restricted_pod("hostpath-home", "true")
    host["spec"]["volumes"] = [{"name": "home", "hostPath": {"path": "/srv", "type": "Directory"}}]
    with pytest.raises(ApiError) as exc:
        k8s.create_pod(host, as_hub=True, namespace=k8s.baseline_namespace)
    assert exc.value.status == 403
    assert "hostPath volumes" in exc.value.message
    k8s.create_pod(host, as_hub=True, namespace=k8s.privileged_namespace)


def test_hub_rbac_is_z2jh_role(k8s: ControlPlane):
    ns = k8s.namespace
    # allowed: pods, secrets, services, PVCs (create/delete/get/list/watch), events (read)
    for resource in ("pods", "secrets", "services", "persistentvolumeclaims"):
        for verb in ("get", "list", "watch", "create", "delete"):
            assert k8s.can_i(verb, resource), (verb, resource)
    assert k8s.can_i("list", "events")
    # not allowed: anything else
    assert not k8s.can_i("create", "configmaps")
    assert not k8s.can_i("create", "events")
    assert not k8s.can_i("patch", "pods")
    assert not k8s.can_i("list", "pods", namespace="default")

    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "hub-made"},
        "stringData": {"k": "v"},
    }
    k8s.api("POST", k8s.ns_path("secrets"), secret, as_hub=True)
    k8s.api("DELETE", k8s.ns_path("secrets", "hub-made"), as_hub=True)
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "nope"}}
    with pytest.raises(ApiError) as exc:
        k8s.api("POST", k8s.ns_path("configmaps"), configmap, as_hub=True)
    assert exc.value.status == 403
    assert f"system:serviceaccount:{ns}:hub" in exc.value.message
    with pytest.raises(ApiError) as exc:
        k8s.api("GET", "/api/v1/nodes", as_hub=True)
    assert exc.value.status == 403

    k8s.create_pod(restricted_pod("hub-pod", "sleep 60"), as_hub=True)
    k8s.delete_pod("hub-pod", grace=0, as_hub=True)
    k8s.wait_for_pod_gone("hub-pod")


# --------------------------------------------------------------------------- kubelet


def test_pod_runs_as_its_uid_with_own_ip(k8s: ControlPlane, kubelet):
    k8s.create_pod(restricted_pod("runs", "id; hostname; sleep 30"), as_hub=True)
    pod = k8s.wait_for_pod("runs", is_ready, 60)
    assert pod["status"]["phase"] == "Running"
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert pod["status"]["podIPs"] == [{"ip": ip}]
    assert pod["spec"]["nodeName"] == kubelet.node_name
    [cs] = pod["status"]["containerStatuses"]
    assert cs["ready"] is True and "running" in cs["state"]
    out = kubelet.wait_for_log("runs", f"uid={UID}")
    assert f"gid={GID}" in out
    assert "runs" in out.splitlines()[1]  # the hostname is the pod name
    reasons = [e["reason"] for e in k8s.events("runs")]
    assert reasons[:1] == ["Scheduled"] and "Started" in reasons


def test_pod_ips_are_distinct_and_listenable(k8s: ControlPlane, kubelet):
    server = (
        "exec /usr/bin/python3 -c 'import http.server, os; "
        'http.server.HTTPServer((os.environ["POD_IP"], 8888), '
        "http.server.SimpleHTTPRequestHandler).serve_forever()'"
    )
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    ips = []
    for name in ("web-a", "web-b"):
        pod = restricted_pod(name, server)
        pod["spec"]["containers"][0]["env"] = env
        pod["spec"]["containers"][0]["workingDir"] = "/usr/share"
        k8s.create_pod(pod, as_hub=True)
    for name in ("web-a", "web-b"):
        ip = k8s.wait_for_pod(name, is_ready)["status"]["podIP"]
        ips.append(ip)

        def answers(ip=ip):
            return requests.get(f"http://{ip}:8888/", timeout=2).status_code == 200

        wait_for(answers, 30, f"http server on {ip}:8888")
    assert len(set(ips)) == 2


def test_root_is_refused(k8s: ControlPlane, kubelet):
    """Without restricted enforcement (baseline namespace), uid 0 still never runs."""
    ns = k8s.baseline_namespace
    pod = restricted_pod("root", "id")
    pod["spec"]["securityContext"] = {"runAsUser": 0}
    k8s.create_pod(pod, namespace=ns)

    def config_error(pod):
        [cs] = pod["status"].get("containerStatuses") or [{}]
        return cs.get("state", {}).get("waiting", {}).get("reason") == "CreateContainerConfigError"

    pod = k8s.wait_for_pod("root", config_error, namespace=ns)
    assert pod["status"]["phase"] == "Pending"
    assert any(
        e["type"] == "Warning" and "runAsUser 0" in e["message"]
        for e in k8s.events("root", namespace=ns)
    )


def test_failed_init_container_fails_pod(k8s: ControlPlane, kubelet):
    pod = restricted_pod("init-fails", "echo main should not run")
    pod["spec"]["initContainers"] = [container("setup", "echo broken >&2; exit 3")]
    k8s.create_pod(pod, as_hub=True)
    pod = k8s.wait_for_pod("init-fails", phase("Failed"))
    [ics] = pod["status"]["initContainerStatuses"]
    assert ics["state"]["terminated"]["exitCode"] == 3
    assert ics["state"]["terminated"]["reason"] == "Error"
    assert "terminated" not in pod["status"]["containerStatuses"][0]["state"]
    warnings = [e for e in k8s.events("init-fails") if e["type"] == "Warning"]
    assert warnings and "setup" in warnings[-1]["message"] and "3" in warnings[-1]["message"]
    assert "broken" in kubelet.logs("init-fails", "setup")


def test_failed_init_container_backs_off(k8s: ControlPlane, kubelet):
    """restartPolicy OnFailure (kubespawner's): Init:CrashLoopBackOff and BackOff warnings."""
    kubelet.backoff_base = 0.5
    pod = restricted_pod("init-loop", "sleep 30", restartPolicy="OnFailure")
    pod["spec"]["initContainers"] = [container("setup", "exit 1")]
    k8s.create_pod(pod, as_hub=True)

    def looping(pod):
        ics = (pod["status"].get("initContainerStatuses") or [{}])[0]
        return ics.get("restartCount", 0) >= 2 and "waiting" in ics.get("state", {})

    pod = k8s.wait_for_pod("init-loop", looping)
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["initContainerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    backoffs = [e for e in k8s.events("init-loop") if e["reason"] == "BackOff"]
    assert backoffs and backoffs[0]["type"] == "Warning"
    assert "Back-off restarting failed container setup" in backoffs[0]["message"]


def test_init_then_main_and_exit_status(k8s: ControlPlane, kubelet):
    pod = restricted_pod("two-steps", "cat /work/msg; exit 7")
    pod["spec"]["volumes"] = [{"name": "work", "emptyDir": {}}]
    mount = [{"name": "work", "mountPath": "/work"}]
    pod["spec"]["containers"][0]["volumeMounts"] = mount
    pod["spec"]["initContainers"] = [
        container("setup", "echo hello from init > /work/msg", volumeMounts=mount)
    ]
    k8s.create_pod(pod, as_hub=True)
    pod = k8s.wait_for_pod("two-steps", phase("Failed"))
    [cs] = pod["status"]["containerStatuses"]
    assert cs["state"]["terminated"]["exitCode"] == 7
    assert kubelet.logs("two-steps") == "hello from init\n"


def test_delete_kills_processes(k8s: ControlPlane, kubelet):
    marker = "31337.5"  # a unique sleep argument to find the process on the host
    k8s.create_pod(restricted_pod("victim", f"sleep {marker} & wait"), as_hub=True)
    k8s.wait_for_pod("victim", is_ready)
    wait_for(lambda: pids_running(f"sleep {marker}"), 10, "the container's process")
    t0 = time.monotonic()
    k8s.delete_pod("victim", as_hub=True)  # graceful: terminationGracePeriodSeconds 2
    k8s.wait_for_pod_gone("victim", timeout=30)
    assert time.monotonic() - t0 < 20
    assert not pids_running(f"sleep {marker}")
    assert "Killing" in [e["reason"] for e in k8s.events("victim")]


def test_subpath_of_missing_file_becomes_a_directory(k8s: ControlPlane, kubelet):
    vol = [{"name": "scratch", "emptyDir": {}}]
    mounts = [
        {"name": "scratch", "mountPath": "/opt/nbspawner-subpath-probe/conf", "subPath": "conf"}
    ]
    pod = restricted_pod(
        "subdir", "ls -ld /opt/nbspawner-subpath-probe/conf; sleep 30", volumes=vol
    )
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    k8s.create_pod(pod, as_hub=True)
    k8s.wait_for_pod("subdir", is_ready)
    assert kubelet.wait_for_log("subdir", "/opt/nbspawner-subpath-probe/conf").startswith("d")
    assert not os.path.exists("/opt/nbspawner-subpath-probe")  # created in the pod's private root


def test_subpath_directory_over_etc_passwd_fails_start(k8s: ControlPlane, kubelet):
    """The passwd trap: nothing wrote the file, kubelet made a directory, runc fails."""
    vol = [{"name": "passwd", "emptyDir": {"medium": "Memory"}}]
    mounts = [{"name": "passwd", "mountPath": "/etc/passwd", "subPath": "passwd", "readOnly": True}]
    pod = restricted_pod("trap", "whoami", volumes=vol)
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    k8s.create_pod(pod, as_hub=True)
    pod = k8s.wait_for_pod("trap", phase("Failed"))
    term = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert term["reason"] == "StartError" and term["exitCode"] == 128
    assert "not a directory" in term["message"]
    failed = [e for e in k8s.events("trap") if e["reason"] == "Failed"]
    assert failed and "Are you trying to mount a directory onto a file" in failed[0]["message"]


def test_passwd_from_init_container_over_etc_passwd(k8s: ControlPlane, kubelet):
    """The safe pattern: an init container writes passwd/group, mounted with subPath, ro."""
    vol = [{"name": "passwd", "emptyDir": {"medium": "Memory"}}]
    init_script = (
        'printf "alice:x:%s:%s:Alice:/home/alice:/bin/sh\\n" "$NB_UID" "$NB_GID" > /nss/passwd;'
        'cat /etc/passwd >> /nss/passwd; printf "alice:x:%s:\\n" "$NB_GID" > /nss/group;'
        "cat /etc/group >> /nss/group"
    )
    env = [{"name": "NB_UID", "value": str(UID)}, {"name": "NB_GID", "value": str(GID)}]
    init = container(
        "passwd", init_script, env=env, volumeMounts=[{"name": "passwd", "mountPath": "/nss"}]
    )
    init["securityContext"]["readOnlyRootFilesystem"] = True
    mounts = [
        {"name": "passwd", "mountPath": "/etc/passwd", "subPath": "passwd", "readOnly": True},
        {"name": "passwd", "mountPath": "/etc/group", "subPath": "group", "readOnly": True},
    ]
    pod = restricted_pod(
        "alice",
        "whoami; id -gn; echo HOME=$HOME; touch /etc/passwd 2>/dev/null || echo ro",
        volumes=vol,
    )
    pod["spec"]["initContainers"] = [init]
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    k8s.create_pod(pod, as_hub=True)
    k8s.wait_for_pod("alice", phase("Succeeded"))
    assert kubelet.logs("alice").splitlines()[:4] == ["alice", "alice", "HOME=/home/alice", "ro"]


def test_read_only_root_filesystem(k8s: ControlPlane, kubelet):
    script = "touch /tmp/nbspawner-rofs-test && echo wrote || echo refused"
    pod = restricted_pod("rofs", script)
    pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] = True
    k8s.create_pod(pod, as_hub=True)
    k8s.wait_for_pod("rofs", phase("Succeeded"))
    assert kubelet.logs("rofs").strip().endswith("refused")
    assert not os.path.exists("/tmp/nbspawner-rofs-test")


def test_nfs_unmapped_fails_mount_mapped_works(k8s: ControlPlane, kubelet, tmp_path):
    ns = k8s.baseline_namespace
    vol = [{"name": "home", "nfs": {"server": "nfs.example.org", "path": "/export/home/alice"}}]
    mounts = [{"name": "home", "mountPath": "/home/alice"}]
    pod = restricted_pod("nfs", "ls /home/alice; touch /home/alice/new", volumes=vol)
    pod["spec"]["containers"][0]["volumeMounts"] = mounts
    k8s.create_pod(copy.deepcopy(pod), namespace=ns)

    def failed_mount():
        return [e for e in k8s.events("nfs", namespace=ns) if e["reason"] == "FailedMount"]

    [event, *_] = wait_for(failed_mount, 30, "a FailedMount event")
    assert event["type"] == "Warning"
    assert "mount failed" in event["message"] and "nfs.example.org" in event["message"]
    assert k8s.get_pod("nfs", namespace=ns)["status"]["phase"] == "Pending"
    k8s.delete_pod("nfs", grace=0, namespace=ns)
    k8s.wait_for_pod_gone("nfs", namespace=ns)

    export = tmp_path / "export"
    (export / "home" / "alice").mkdir(parents=True)
    (export / "home" / "alice" / "notes.txt").write_text("x")
    os.chown(export / "home" / "alice", UID, GID)
    kubelet.map_nfs("nfs.example.org", "/export", export)
    k8s.create_pod(pod, namespace=ns)
    k8s.wait_for_pod("nfs", phase("Succeeded"), namespace=ns)
    assert "notes.txt" in kubelet.logs("nfs")
    assert (export / "home" / "alice" / "new").stat().st_uid == UID


def test_pvc_bound_to_nfs_pv_under_restricted(k8s: ControlPlane, kubelet, tmp_path):
    """Under restricted, NFS goes through a PVC pre-bound to an nfs PersistentVolume."""
    (tmp_path / "alice").mkdir()
    os.chown(tmp_path / "alice", UID, GID)
    kubelet.map_nfs("nfs.example.org", "/export/home", tmp_path)
    k8s.api(
        "POST",
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "home-alice"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteMany"],
                "nfs": {"server": "nfs.example.org", "path": "/export/home/alice"},
            },
        },
    )
    k8s.api(
        "POST",
        k8s.ns_path("persistentvolumeclaims"),
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "home-alice"},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
                "storageClassName": "",
                "volumeName": "home-alice",
            },
        },
        as_hub=True,
    )
    vol = [{"name": "home", "persistentVolumeClaim": {"claimName": "home-alice"}}]
    pod = restricted_pod("pvc", "echo hi > /home/alice/hello", volumes=vol)
    pod["spec"]["containers"][0]["volumeMounts"] = [{"name": "home", "mountPath": "/home/alice"}]
    k8s.create_pod(pod, as_hub=True)
    k8s.wait_for_pod("pvc", phase("Succeeded"))
    assert (tmp_path / "alice" / "hello").read_text() == "hi\n"


# --------------------------------------------------------------------------- kubespawner

HTTP_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"pong")
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""


class MockUser(Mock):
    """What kubespawner needs from a JupyterHub user (as in kubespawner's own tests)."""

    name = "harness"

    def __init__(self, **kwargs):
        super().__init__()
        from jupyterhub.objects import Server

        self.server = Server()
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def escaped_name(self):
        return self.name

    @property
    def url(self):
        return self.server.url


async def test_kubespawner_start_poll_stop(k8s: ControlPlane, kubelet):
    from jupyterhub.objects import Hub
    from kubespawner import KubeSpawner
    from traitlets.config import Config

    c = Config()
    c.KubeSpawner.namespace = k8s.namespace
    c.KubeSpawner.uid = UID
    c.KubeSpawner.gid = GID
    c.KubeSpawner.cmd = ["/usr/bin/python3", "-c", HTTP_SERVER, "$(POD_IP)", "8888"]
    c.KubeSpawner.container_security_context = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    c.KubeSpawner.extra_pod_config = {"terminationGracePeriodSeconds": 2}
    c.KubeSpawner.start_timeout = 120
    c.KubeSpawner.http_timeout = 60
    c.KubeSpawner.environment = {"CHECK": "kubespawner"}
    spawner = KubeSpawner(
        hub=Hub(),
        user=MockUser(name="harness"),
        config=c,
        api_token="abc123",
        oauth_client_id="unused",
    )
    # kubespawner puts its env first; POD_IP for the command line comes from the downward API
    spawner.modify_pod_hook = _add_pod_ip_env
    assert isinstance(await spawner.poll(), int)  # not running yet

    url = await asyncio.wait_for(spawner.start(), 150)
    pod = k8s.get_pod(spawner.pod_name)
    ip = pod["status"]["podIP"]
    assert url == f"http://{ip}:8888"
    assert ip.startswith("127.") and ip != "127.0.0.1"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert await spawner.poll() is None

    def pong():
        return requests.get(url, timeout=2).text == "pong"

    await asyncio.to_thread(wait_for, pong, 60, f"the server at {url}")

    await asyncio.wait_for(spawner.stop(), 120)
    assert k8s.get_pod(spawner.pod_name) is None
    assert isinstance(await spawner.poll(), int)


def _add_pod_ip_env(spawner, pod):
    from kubernetes_asyncio.client import V1EnvVar, V1EnvVarSource, V1ObjectFieldSelector

    env = V1EnvVar(
        name="POD_IP",
        value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path="status.podIP")),
    )
    pod.spec.containers[0].env.insert(0, env)
    return pod
