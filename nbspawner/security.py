"""Pod Security "restricted" for every pod nbspawner builds: the rules and the check.

Pure functions over a pod manifest as a plain camelCase dict (what
``ApiClient().sanitize_for_serialization(v1pod)`` returns).

Pinning the identity and filling in what "restricted" requires is
:func:`nbspawner.podpatch.harden_pod`; this module only judges.

:func:`restricted_violations` implements the checks of the Pod Security Standards
"baseline" and "restricted" profiles as Kubernetes' pod-security-admission does (host
namespaces, privileged, capabilities, hostPath and every volume type outside configMap, csi,
downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret, hostPorts,
AppArmor, SELinux, /proc mount, seccomp, sysctls, Windows hostProcess, probe/lifecycle
``host``, runAsNonRoot, runAsUser 0, allowPrivilegeEscalation) plus nbspawner's refusal of
*root mode*: uid 0 anywhere, gid 0 (primary, fsGroup or supplementary) unless
``allow_root_group``, and docker-stacks' root-mode switches (``GRANT_SUDO``, ``NB_UID=0``),
which only work when the container starts as root.

Note: ``nfs`` volumes are *not* allowed by "restricted" (inline ``nfs:`` is a restricted
volume type). Mount NFS through a PersistentVolume + ``persistentVolumeClaim``, a CSI
driver, or run the namespace at "baseline".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .errors import UnsafePod
from .paths import pod_mount_problems

#: inline volume types the "restricted" profile allows
ALLOWED_VOLUME_TYPES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)
#: sysctls the "baseline" profile allows (Kubernetes 1.29+)
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
    }
)
ALLOWED_SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
ALLOWED_SECCOMP_TYPES = frozenset({"RuntimeDefault", "Localhost"})
ALLOWED_ADD_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")
#: kubespawner's name for the notebook container
NOTEBOOK_CONTAINER = "notebook"

_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_SECCOMP_ANNOTATIONS = (
    "seccomp.security.alpha.kubernetes.io/pod",
    "container.seccomp.security.alpha.kubernetes.io/",
)
_TRUE_WORDS = frozenset({"1", "yes", "true", "on"})
_ROOT_MODE_ENV = frozenset({"GRANT_SUDO", "NB_UID", "NB_GID"})


def _spec(pod: dict[str, Any]) -> dict[str, Any]:
    spec = pod.get("spec")
    if spec is None and "containers" in pod:
        return pod  # a bare PodSpec
    return spec if isinstance(spec, dict) else {}


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for kind in CONTAINER_KINDS:
        for container in spec.get(kind) or ():
            if isinstance(container, dict):
                yield kind, container


def _label(kind: str, container: dict[str, Any]) -> str:
    noun = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
    return f"{noun.get(kind, 'container')} {container.get('name', '?')!r}"


def _seccomp_type(sc: dict[str, Any]) -> Any:
    profile = sc.get("seccompProfile")
    if profile is None:
        return None
    return profile.get("type") if isinstance(profile, dict) else profile


def _host_fields(container: dict[str, Any]) -> list[str]:
    found = []
    handlers: list[tuple[str, Any]] = [
        (name, container.get(name)) for name in ("livenessProbe", "readinessProbe", "startupProbe")
    ]
    lifecycle = container.get("lifecycle") or {}
    handlers += [(f"lifecycle.{name}", lifecycle.get(name)) for name in ("postStart", "preStop")]
    for where, handler in handlers:
        if not isinstance(handler, dict):
            continue
        for action in ("httpGet", "tcpSocket"):
            host = (handler.get(action) or {}).get("host")
            if host:
                found.append(f"{where}.{action}.host")
    return found


def restricted_violations(pod: dict[str, Any], *, allow_root_group: bool = False) -> list[str]:
    """Everything in ``pod`` that Pod Security "restricted" or nbspawner's root-mode rule forbids.

    One readable line per problem; an empty list means the pod passes.
    """
    problems: list[str] = []
    spec = _spec(pod)
    meta = pod.get("metadata") or {}
    psc = spec.get("securityContext") or {}

    # --- metadata annotations (AppArmor, legacy seccomp) ---
    for key, value in (meta.get("annotations") or {}).items():
        if key.startswith(_APPARMOR_ANNOTATION):
            if value != "runtime/default" and not str(value).startswith("localhost/"):
                problems.append(f"annotation {key}: AppArmor profile {value!r} is not allowed")
        elif key.startswith(_SECCOMP_ANNOTATIONS) and str(value).lower() == "unconfined":
            problems.append(f"annotation {key}: seccomp 'unconfined' is not allowed")

    # --- host namespaces ---
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            problems.append(f"pod: {key}=true is not allowed")

    # --- volumes ---
    for volume in spec.get("volumes") or ():
        name = volume.get("name", "?")
        kinds = [k for k, v in volume.items() if k != "name" and v is not None]
        bad = [k for k in kinds if k not in ALLOWED_VOLUME_TYPES]
        for k in bad:
            extra = (
                " (mount NFS through a PersistentVolumeClaim or a CSI driver)" if k == "nfs" else ""
            )
            problems.append(f"volume {name!r}: type {k!r} is not allowed by 'restricted'{extra}")
        if not kinds:
            problems.append(f"volume {name!r}: no volume type")

    # --- pod securityContext ---
    if psc.get("runAsNonRoot") is False:
        problems.append("pod: securityContext.runAsNonRoot=false is not allowed")
    if psc.get("runAsUser") == 0:
        problems.append("pod: securityContext.runAsUser=0 (root) is refused")
    pod_seccomp = _seccomp_type(psc)
    if pod_seccomp is not None and pod_seccomp not in ALLOWED_SECCOMP_TYPES:
        problems.append(f"pod: seccompProfile type {pod_seccomp!r} is not allowed")
    pod_seccomp_ok = pod_seccomp in ALLOWED_SECCOMP_TYPES
    pod_nonroot = psc.get("runAsNonRoot") is True
    problems += _selinux_problems("pod", psc)
    problems += _apparmor_problems("pod", psc)
    for sysctl in psc.get("sysctls") or ():
        name = sysctl.get("name") if isinstance(sysctl, dict) else sysctl
        if name not in SAFE_SYSCTLS:
            problems.append(f"pod: sysctl {name!r} is not allowed")
    if (psc.get("windowsOptions") or {}).get("hostProcess"):
        problems.append("pod: windowsOptions.hostProcess=true is not allowed")
    if not allow_root_group:
        if psc.get("runAsGroup") == 0:
            problems.append("pod: securityContext.runAsGroup=0 (root group) is refused")
        if psc.get("fsGroup") == 0:
            problems.append("pod: securityContext.fsGroup=0 (root group) is refused")
        if 0 in (psc.get("supplementalGroups") or ()):
            problems.append("pod: supplementalGroups contains 0 (root group), which is refused")

    # --- containers ---
    for kind, container in _containers(spec):
        who = _label(kind, container)
        sc = container.get("securityContext") or {}
        if sc.get("privileged"):
            problems.append(f"{who}: privileged=true is not allowed")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{who}: allowPrivilegeEscalation must be false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or ()):
            problems.append(f"{who}: capabilities.drop must contain ALL")
        added = [c for c in caps.get("add") or () if c not in ALLOWED_ADD_CAPABILITIES]
        if added:
            problems.append(
                f"{who}: capabilities.add {added} is not allowed (only NET_BIND_SERVICE)"
            )
        if sc.get("runAsNonRoot") is False:
            problems.append(f"{who}: securityContext.runAsNonRoot=false is not allowed")
        elif sc.get("runAsNonRoot") is None and not pod_nonroot:
            problems.append(f"{who}: runAsNonRoot must be true (on the pod or the container)")
        if sc.get("runAsUser") == 0:
            problems.append(f"{who}: securityContext.runAsUser=0 (root) is refused")
        if sc.get("runAsGroup") == 0 and not allow_root_group:
            problems.append(f"{who}: securityContext.runAsGroup=0 (root group) is refused")
        seccomp = _seccomp_type(sc)
        if seccomp is not None and seccomp not in ALLOWED_SECCOMP_TYPES:
            problems.append(f"{who}: seccompProfile type {seccomp!r} is not allowed")
        elif seccomp is None and not pod_seccomp_ok:
            problems.append(
                f"{who}: seccompProfile must be RuntimeDefault or Localhost (on the pod or the "
                "container)"
            )
        if sc.get("procMount") not in (None, "Default"):
            problems.append(f"{who}: procMount {sc.get('procMount')!r} is not allowed")
        problems += _selinux_problems(who, sc)
        problems += _apparmor_problems(who, sc)
        if (sc.get("windowsOptions") or {}).get("hostProcess"):
            problems.append(f"{who}: windowsOptions.hostProcess=true is not allowed")
        for port in container.get("ports") or ():
            if port.get("hostPort"):
                problems.append(f"{who}: hostPort {port['hostPort']} is not allowed")
        for field_path in _host_fields(container):
            problems.append(f"{who}: {field_path} must not be set")
        problems += _root_mode_env(who, container, allow_root_group)
    return problems


def _selinux_problems(who: str, sc: dict[str, Any]) -> list[str]:
    opts = sc.get("seLinuxOptions")
    if not opts:
        return []
    problems = []
    if (opts.get("type") or "") not in ALLOWED_SELINUX_TYPES:
        problems.append(f"{who}: seLinuxOptions.type {opts.get('type')!r} is not allowed")
    for key in ("user", "role"):
        if opts.get(key):
            problems.append(f"{who}: seLinuxOptions.{key} must not be set")
    return problems


def _apparmor_problems(who: str, sc: dict[str, Any]) -> list[str]:
    profile = sc.get("appArmorProfile")
    if isinstance(profile, dict) and profile.get("type") not in (
        None,
        "RuntimeDefault",
        "Localhost",
    ):
        return [f"{who}: appArmorProfile type {profile.get('type')!r} is not allowed"]
    return []


def _root_mode_env(who: str, container: dict[str, Any], allow_root_group: bool) -> list[str]:
    """docker-stacks' root-mode switches: they only act when the container starts as root."""
    problems = []
    for item in container.get("env") or ():
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if name not in _ROOT_MODE_ENV:
            continue
        value = item.get("value")
        if value is None:
            continue
        value = str(value).strip()
        if name == "GRANT_SUDO" and value.lower() in _TRUE_WORDS:
            problems.append(f"{who}: GRANT_SUDO (docker-stacks root mode) is refused")
        elif name == "NB_UID" and value == "0":
            problems.append(f"{who}: NB_UID=0 (root) is refused")
        elif name == "NB_GID" and value == "0" and not allow_root_group:
            problems.append(f"{who}: NB_GID=0 (root group) is refused")
    return problems


def check_restricted(pod: dict[str, Any], *, allow_root_group: bool = False) -> None:
    """Raise :class:`~nbspawner.errors.UnsafePod` listing every violation, if there is one."""
    problems = restricted_violations(pod, allow_root_group=allow_root_group)
    if problems:
        name = (pod.get("metadata") or {}).get("name", "?")
        error = UnsafePod(
            f"pod {name} would not pass Pod Security 'restricted' / nbspawner's root-mode rule: "
            + "; ".join(problems)
            + ". Check the profile's kubespawner_override, extra_pod_config and "
            "init_containers (z2jh: cloudMetadata.blockWithIptables must be false)."
        )
        #: the individual violations, for tests and the admin CLI
        error.problems = problems  # type: ignore[attr-defined]
        raise error


#: inline volume types each level allows beyond "restricted" (nbspawner.settings.pod_security_level)
LEVEL_VOLUME_TYPES = {"baseline": ("nfs",), "privileged": ("nfs", "hostPath")}


def check_pod(
    pod: dict[str, Any],
    patch: Any = None,
    *,
    level: str = "restricted",
    pod_name: str = "",
    allow_root_group: bool = False,
) -> None:
    """The read-only check of a pod manifest, raising UnsafePod with every problem.

    Without ``patch`` (kubespawner's pod, before nbspawner's additions): the mount rules of
    :func:`nbspawner.paths.pod_mount_problems`. With the ``PodPatch`` nbspawner added: the
    mount rules again (its own mounts may use its volumes and the protected paths), then the
    Pod Security ``level`` (``baseline`` also allows inline nfs volumes, ``privileged``
    hostPath too; root and privileges are refused at every level).
    """
    own: list[Any] = []
    if patch is not None:
        own = [*patch.volumes, *patch.volume_mounts]
        own += [m for c in patch.init_containers for m in c.get("volumeMounts") or ()]
    problems = pod_mount_problems(pod, own)
    if problems:
        raise UnsafePod(
            f"pod {pod_name}: " + "; ".join(problems),
            "The selected environment mounts a volume where it is not allowed. "
            "Please contact your administrator.",
            reason="unsafe_mount",
        )
    if patch is None:
        return
    allowed = LEVEL_VOLUME_TYPES.get(level, ())
    problems = [
        p
        for p in restricted_violations(pod, allow_root_group=allow_root_group)
        if not (p.startswith("volume ") and any(f"type {t!r}" in p for t in allowed))
    ]
    if problems:
        raise UnsafePod(
            f"pod {pod_name} would not pass Pod Security {level!r} "
            "(NBSpawner.pod_security_level): " + "; ".join(problems)
        )
