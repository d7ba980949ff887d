"""The passwd hook's pod side: how the passwd/group files get into the notebook pod.

Two ways to get the files into the pod (``PasswdHookConfig.mode``):

``"init-container"`` (default)
    An init container named ``nbspawner-passwd`` runs the *notebook image itself* as the
    user's uid/gid (non-root, no privilege escalation, all capabilities dropped, read-only
    root filesystem, seccomp RuntimeDefault). Its command is ``/bin/sh -c <fixed script>``,
    the text of ``nbspawner/data/passwd-init.sh``: user data is passed only through
    ``NB_PW_*`` environment variables and never pasted into the script. The script validates
    every input again, merges the user into the image's own /etc/passwd and /etc/group and
    writes both files into an in-memory emptyDir. The notebook container mounts them
    read-only with ``subPath`` over /etc/passwd and /etc/group.

``"secret"``
    For images without ``/bin/sh``. The hub renders both files itself
    (:func:`render_files`) into a per-pod Secret (``PodPatch.secrets``) which the spawner
    creates before the pod and deletes when the server stops. The hub cannot read the
    image's files, so a configurable *base* (``PasswdHookConfig.base_passwd`` /
    ``base_group``: root, nobody, nogroup, users and, by default, jovyan 1000:100) stands in
    for them. Tradeoff: accounts the image defines beyond that base have no name in the pod.

Image needs (``image_needs``: a plain dict, or the catalog's ``Security`` object, read by
attribute; unknown keys are ignored)
    ``has_shell`` (bool, default True)
        False: the image has no ``/bin/sh``; the Secret mode is used whatever ``mode`` says.
    ``needs_writable_run`` (bool) — also accepted as ``s6_overlay``
        Kubeflow example images (s6-overlay v3 ``/init``, jovyan with primary gid 0, ``/run``
        mode 0775 owned by jovyan:root). Under another uid, s6's ``preinit`` cannot fix
        ``/run`` (no privileges: the suid ``s6-overlay-suexec`` is neutered by
        ``allowPrivilegeEscalation: false``) and aborts unless ``/run`` is world-writable *and*
        ``S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES=1`` is set. So this mounts an
        in-memory emptyDir ``nbspawner-run`` at ``/run`` (mode 0777, which s6 then accepts) and
        sets that variable (inert for images without s6).
    ``read_only_root`` (bool)
        With a writable ``/run``: also sets ``S6_READ_ONLY_ROOT=1`` (s6's ``preinit`` then only
        checks that ``/run`` is writable instead of creating it).
    ``extra_supplemental_gids`` (list of int)
        Added to :func:`supplemental_gids`, e.g. ``[0]`` for Kubeflow images whose files are
        group-owned by root and group-writable. gid 0 is accepted here because the catalog is
        admin-written, but it gives write access to every root-group-writable file the pod
        can see; pass ``allow_root_group=True`` to :mod:`nbspawner.security` for such images.

Trap: when the source of a ``subPath`` mount does not exist, kubelet creates a *directory*
there and /etc/passwd would be a directory. The script therefore writes both files to
temporary names in the emptyDir, renames them into place only after every check passed and
exits non-zero on any problem, so the pod fails instead of starting without the files. In
Secret mode the Secret volume is not ``optional``: without the Secret the pod does not start.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from .passwd import (
    INIT_CONTAINER_NAME,
    INIT_PATH,
    OUTPUT_DIR,
    RUN_VOLUME_NAME,
    SCRIPT_TEXT,
    VOLUME_NAME,
    Mode,
    PasswdHookConfig,
    _check_id,
    _checked_default_groups,
    _source,
    group_entries,
    render_files,
    render_passwd_line,
)
from .podpatch import PodPatch, restricted_container_security_context
from .record import UserRecord


def script_env(
    record: UserRecord,
    *,
    home: str | None = None,
    config: PasswdHookConfig | None = None,
    output_dir: str = OUTPUT_DIR,
) -> dict[str, str]:
    """The NB_PW_* environment of the init container (validated values only)."""
    config = config or PasswdHookConfig()
    line = render_passwd_line(
        record, home=home, shell=config.shell, allow_gid_zero=config.allow_gid_zero
    )
    name, _, uid, gid, gecos, home_value, shell_value = line.split(":")
    entries = group_entries(
        record, default_groups=config.default_groups, allow_gid_zero=config.allow_gid_zero
    )
    env = {
        "NB_PW_USER": name,
        "NB_PW_UID": uid,
        "NB_PW_GID": gid,
        "NB_PW_HOME": home_value,
        "NB_PW_SHELL": shell_value,
        "NB_PW_GECOS": gecos,
        "NB_PW_GROUPS": ",".join(f"{n}:{g}" for n, g in entries),
        "NB_PW_OUT": output_dir,
    }
    if config.allow_gid_zero:
        env["NB_PW_ALLOW_GID0"] = "1"
    return env


def supplemental_gids(
    record: UserRecord,
    config: PasswdHookConfig | None = None,
    image_needs: Mapping[str, Any] | Any | None = None,
) -> list[int]:
    """The pod's ``supplementalGroups``: the record's, the default groups', the image's needs.

    Duplicates and the primary gid are left out; order is kept.
    """
    config = config or PasswdHookConfig()
    src = _source(record)
    gids: list[int] = []
    for gid in record.supplemental_gids:
        gids.append(_check_id(gid, "supplemental_gids", src, allow_zero=config.allow_gid_zero))
    for _, gid in _checked_default_groups(config.default_groups):
        gids.append(gid)
    for gid in config.extra_gids:
        gids.append(
            _check_id(
                gid, "KubeSpawner.supplemental_gids", "config", allow_zero=config.allow_gid_zero
            )
        )
    for gid in needs_dict(image_needs).get("extra_supplemental_gids") or ():
        # gid 0 is accepted from the (admin-written) catalog; see the module docstring
        gids.append(_check_id(gid, "extra_supplemental_gids", "image catalog", allow_zero=True))
    seen: set[int] = set()
    result = []
    for gid in gids:
        if gid != record.gid and gid not in seen:
            seen.add(gid)
            result.append(gid)
    return result


def notebook_env(record: UserRecord, home: str) -> dict[str, str]:
    """USER, LOGNAME, NB_USER, NB_UID, NB_GID and HOME for the notebook container."""
    return {
        "USER": record.username,
        "LOGNAME": record.username,
        "NB_USER": record.username,
        "NB_UID": str(record.uid),
        "NB_GID": str(record.gid),
        "HOME": home,
    }


def secret_name(pod_name: str) -> str:
    return f"nbspawner-passwd-{pod_name}"


def _file_mounts() -> list[dict[str, Any]]:
    return [
        {"name": VOLUME_NAME, "mountPath": "/etc/passwd", "subPath": "passwd", "readOnly": True},
        {"name": VOLUME_NAME, "mountPath": "/etc/group", "subPath": "group", "readOnly": True},
    ]


def needs_dict(image_needs: Any) -> dict[str, Any]:
    """``image_needs`` as a dict: a Mapping, an object with attributes (the catalog's
    ``Security``) or None."""
    if image_needs is None:
        return {}
    if isinstance(image_needs, Mapping):
        return dict(image_needs)
    keys = (
        "has_shell",
        "needs_writable_run",
        "s6_overlay",
        "read_only_root",
        "extra_supplemental_gids",
    )
    return {k: getattr(image_needs, k) for k in keys if hasattr(image_needs, k)}


def _needs_patch(image_needs: Mapping[str, Any], config: PasswdHookConfig) -> PodPatch:
    patch = PodPatch()
    if image_needs.get("needs_writable_run") or image_needs.get("s6_overlay"):
        patch.volumes.append(
            {
                "name": RUN_VOLUME_NAME,
                "emptyDir": {"medium": "Memory", "sizeLimit": config.run_size_limit},
            }
        )
        patch.volume_mounts.append({"name": RUN_VOLUME_NAME, "mountPath": "/run"})
        # s6-overlay v3 preinit: an unprivileged /init accepts a root-owned, world-writable
        # /run (what an emptyDir is) only with this variable
        patch.env["S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"] = "1"
        if image_needs.get("read_only_root"):
            patch.env["S6_READ_ONLY_ROOT"] = "1"
    return patch


def hook_mode(config: PasswdHookConfig, image_needs: Mapping[str, Any] | Any | None) -> Mode:
    """How the files get into this pod: the configured mode, or ``secret`` for an image the
    catalog marks as having no shell (``has_shell: false``), which cannot run the script."""
    if needs_dict(image_needs).get("has_shell") is False:
        return "secret"
    return config.mode


def build_passwd_patch(
    record: UserRecord,
    *,
    image: str,
    home: str,
    config: PasswdHookConfig | None = None,
    image_needs: Mapping[str, Any] | Any | None = None,
    pod_name: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> PodPatch:
    """Everything the passwd hook adds to the notebook pod.

    ``image`` is the notebook image (the init container uses it), ``home`` the home
    directory inside the container. ``pod_name`` is required in Secret mode (the Secret is
    named ``nbspawner-passwd-<pod_name>``); ``labels`` are added to the Secret's labels.
    Raises InvalidRecord for a record the hook cannot render.
    """
    config = config or PasswdHookConfig()
    needs = needs_dict(image_needs)
    patch = PodPatch()
    if not config.enabled:
        return patch.extend(_needs_patch(needs, config))

    # validates everything once, whichever mode is used
    env = script_env(record, home=home, config=config)
    mode = hook_mode(config, needs)

    if mode == "init-container":
        patch.volumes.append(
            {"name": VOLUME_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": config.size_limit}}
        )
        container: dict[str, Any] = {
            "name": INIT_CONTAINER_NAME,
            "image": image,
            # $0 is the last element; the script text is fixed, the inputs are in env
            "command": ["/bin/sh", "-c", SCRIPT_TEXT, INIT_CONTAINER_NAME],
            "env": [{"name": "PATH", "value": INIT_PATH}]
            + [{"name": k, "value": v} for k, v in env.items()],
            "workingDir": "/",
            "securityContext": restricted_container_security_context(
                record.uid, record.gid, read_only_root=True
            ),
            "resources": {k: dict(v) for k, v in config.init_resources.items()},
            "volumeMounts": [{"name": VOLUME_NAME, "mountPath": OUTPUT_DIR}],
            # a refusal's one-line message becomes the container's termination message,
            # which kubectl describe and the spawn events show
            "terminationMessagePolicy": "FallbackToLogsOnError",
        }
        if config.image_pull_policy:
            container["imagePullPolicy"] = config.image_pull_policy
        patch.init_containers.append(container)
    else:
        if not pod_name:
            raise ValueError("build_passwd_patch: pod_name is required in Secret mode")
        passwd, group = render_files(record, home=home, config=config)
        name = secret_name(pod_name)
        patch.secrets.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": name,
                    "labels": {
                        **dict(labels or {}),
                        "app.kubernetes.io/managed-by": "nbspawner",
                        "app.kubernetes.io/component": "passwd",
                    },
                },
                "type": "Opaque",
                # nothing may change the files after creation; the hub deletes the Secret
                "immutable": True,
                "data": {
                    "passwd": base64.b64encode(passwd.encode("utf-8")).decode("ascii"),
                    "group": base64.b64encode(group.encode("utf-8")).decode("ascii"),
                },
            }
        )
        patch.volumes.append(
            {
                "name": VOLUME_NAME,
                "secret": {
                    "secretName": name,
                    "defaultMode": 0o444,
                    "optional": False,
                    "items": [
                        {"key": "passwd", "path": "passwd"},
                        {"key": "group", "path": "group"},
                    ],
                },
            }
        )

    patch.volume_mounts.extend(_file_mounts())
    patch.env.update(notebook_env(record, env["NB_PW_HOME"]))
    return patch.extend(_needs_patch(needs, config))
