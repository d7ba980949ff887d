"""Home directories and data shares: pure builders from a user record to a :class:`PodPatch`.

Paths come from the record's ``home``, never from kubespawner's ``{username}`` expansion: in
kubespawner 7 that is a *slug* (``Jane.Doe`` -> ``jane-doe---c8226e84``) that matches no
directory on the file server. Everything rendered from a record is checked at spawn time and
refused with a :class:`~nbspawner.errors.StorageError` that names the setting and the field,
never the offending value (it may be hostile or personal).

The settings are validated by :mod:`nbspawner.storage_config`, the templates are
:mod:`nbspawner.templates`, the path rules :mod:`nbspawner.paths`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidRecord, StorageError
from .paths import check_absolute, check_own_mount_path, check_relative, normalise, overlaps
from .podpatch import PodPatch, restricted_container_security_context
from .policy import check_path, path_is_under
from .record import UserRecord
from .storage_config import (
    HOME_VOLUME_NAME,
    SEED_CONTAINER_NAME,
    SEGMENT_RE,
    SETTING_DATA_SHARES,
    SETTING_HOME_MOUNT_PATH,
    SETTING_HOME_VOLUME,
    SHARE_VOLUME_PREFIX,
    DataShare,
    HomeVolume,
    StorageConfig,
)
from .templates import literal_prefix, render_template

#: the fixed seeding script (package data; shipped with `hub.extraFiles` installs too)
SEED_SCRIPT_PATH = Path(__file__).resolve().parent / "data" / "seed-home.sh"


@functools.lru_cache(maxsize=1)
def seed_script() -> str:
    return SEED_SCRIPT_PATH.read_text(encoding="utf-8")


def resolve_home(
    home: str, export_roots: Sequence[str], setting: str = SETTING_HOME_VOLUME
) -> tuple[str, str]:
    """Return ``(root, relative)`` for a record's home: the longest export root it lies
    strictly below, and the rest of the path.

    ``/export/home/alice`` with roots ``[/export/home]`` -> ``("/export/home", "alice")``.
    A home that is not a normalised absolute path, equals a root, or lies outside every root
    is a StorageError naming ``{setting}.export_roots``.
    """
    try:
        check_path(home, "home")
    except InvalidRecord:
        raise StorageError(
            "the directory record's home is not a normalised absolute path "
            "(allowed: /, A-Z a-z 0-9 _ . -; no empty, '.' or '..' segments); "
            "check the directory backend's home attribute",
            reason="unsafe_home",
        ) from None
    matches = [r for r in export_roots if home != r and path_is_under(home, r)]
    if not matches:
        raise StorageError(
            f"the directory record's home is not below any of {setting}.export_roots; "
            "add its export root there or fix the directory entry",
            reason="home_outside_roots",
        )
    root = max(matches, key=len)
    relative = home[len(root) :].lstrip("/")
    check_relative(relative, f"{setting}: the home relative to its export root", StorageError)
    return root, relative


# ---------------------------------------------------------------------------


# ---------------------------------------------------------------------------
# Building the pod patch
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoragePlan:
    """What :func:`build_storage` returns."""

    patch: PodPatch
    #: where the home is in the pod: HOME, the working directory and the passwd entry's home
    home_mount_path: str
    #: one line per mount ("pvc homes subPath alice -> /home/alice"), for logs and previews
    summary: tuple[str, ...] = ()


def _record_values(record: UserRecord) -> dict[str, str]:
    """Record fields as template values, each checked: a username must be one safe path
    segment, ids non-negative integers."""
    if not isinstance(record.username, str) or not SEGMENT_RE.match(record.username):
        raise StorageError(
            "the username cannot be used in a path (allowed: one segment of A-Z a-z 0-9 _ . -, "
            "not starting with . or -)",
            reason="unsafe_storage_path",
        )
    values = {"username": record.username}
    for key in ("uid", "gid"):
        value = getattr(record, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StorageError(f"the directory record's {key} is not a non-negative integer")
        values[key] = str(value)
    return values


def _render_absolute(template: str, values: Mapping[str, str], setting: str) -> str:
    rendered = render_template(template, values, setting)
    check_absolute(rendered, setting, StorageError)
    prefix = literal_prefix(template)
    if prefix and not path_is_under(rendered, prefix):
        raise StorageError(f"{setting} leaves its directory {prefix}", reason="unsafe_storage_path")
    return rendered


class _Volumes:
    """Collects volumes; one volume per PVC however many mounts use it (two pod volumes for
    the same claim are legal but some kubelet/CSI versions handle them badly)."""

    def __init__(self) -> None:
        self.volumes: list[dict[str, Any]] = []
        self._claims: dict[str, dict[str, Any]] = {}

    def claim(self, claim_name: str, volume_name: str, read_only: bool) -> str:
        existing = self._claims.get(claim_name)
        if existing is not None:
            if not read_only:
                existing["persistentVolumeClaim"]["readOnly"] = False
            return existing["name"]
        volume = {
            "name": volume_name,
            "persistentVolumeClaim": {"claimName": claim_name, "readOnly": read_only},
        }
        self._claims[claim_name] = volume
        self.volumes.append(volume)
        return volume_name

    def add(self, volume: dict[str, Any]) -> str:
        self.volumes.append(volume)
        return volume["name"]


def _home_mount(
    home: HomeVolume, record: UserRecord, values: dict[str, str], mount_path: str, vols: _Volumes
) -> tuple[dict[str, Any], str]:
    root, relative = resolve_home(record.home, home.export_roots)
    values = dict(values, home=record.home, home_relative=relative)
    mount: dict[str, Any] = {"name": HOME_VOLUME_NAME, "mountPath": mount_path}
    if home.type == "pvc":
        setting = f"{SETTING_HOME_VOLUME}.sub_path"
        sub_path = render_template(home.sub_path, values, setting)
        check_relative(sub_path, setting, StorageError)
        mount["name"] = vols.claim(home.claim_name, HOME_VOLUME_NAME, read_only=False)
        mount["subPath"] = sub_path
        return mount, f"home: pvc {home.claim_name} subPath {sub_path} -> {mount_path}"
    setting = f"{SETTING_HOME_VOLUME}.path"
    path = _render_absolute(home.path, values, setting)
    if path == "/":
        raise StorageError(f"{setting} renders to /", reason="unsafe_storage_path")
    if home.type == "nfs":
        vols.add({"name": HOME_VOLUME_NAME, "nfs": {"server": home.server, "path": path}})
        return mount, f"home: nfs {home.server}:{path} -> {mount_path}"
    # type Directory: a missing home fails the mount instead of kubelet creating it as root
    vols.add({"name": HOME_VOLUME_NAME, "hostPath": {"path": path, "type": "Directory"}})
    return mount, f"home: hostPath {path} -> {mount_path}"


def _share_mounts(
    share: DataShare, user_groups: frozenset[str], values: dict[str, str], vols: _Volumes
) -> list[tuple[dict[str, Any], str]]:
    setting = f"{SETTING_DATA_SHARES}[{share.name}]"
    if share.per_group:
        targets = [(i, g) for i, g in enumerate(share.allowed_groups) if g in user_groups]
    elif not share.allowed_groups or user_groups.intersection(share.allowed_groups):
        targets = [(None, "")]
    else:
        targets = []

    result = []
    for index, group in targets:
        if group and not SEGMENT_RE.match(group):
            raise StorageError(f"{setting}: a group cannot be used in a path")
        v = dict(values, group=group)
        volume_name = SHARE_VOLUME_PREFIX + share.name + ("" if index is None else f"-{index}")
        mount_path = render_template(share.mount_path, v, f"{setting}.mount_path")
        check_own_mount_path(mount_path, f"{setting}.mount_path", StorageError)
        # "name" first: the mount reads like the manifests admins know
        mount: dict[str, Any] = {"name": "", "mountPath": mount_path, "readOnly": share.read_only}
        if share.type == "pvc":
            mount["name"] = vols.claim(
                share.claim_name, SHARE_VOLUME_PREFIX + share.name, share.read_only
            )
            what = f"pvc {share.claim_name}"
            if share.sub_path:
                sub_path = render_template(share.sub_path, v, f"{setting}.sub_path")
                check_relative(sub_path, f"{setting}.sub_path", StorageError)
                mount["subPath"] = sub_path
                what += f" subPath {sub_path}"
        else:
            path = _render_absolute(share.path, v, f"{setting}.path")
            if share.type == "nfs":
                source = {
                    "nfs": {"server": share.server, "path": path, "readOnly": share.read_only}
                }
                what = f"nfs {share.server}:{path}"
            else:
                source = {"hostPath": {"path": path, "type": "Directory"}}
                what = f"hostPath {path}"
            mount["name"] = vols.add({"name": volume_name, **source})
        mode = "ro" if share.read_only else "rw"
        result.append((mount, f"data {share.name}: {what} -> {mount_path} ({mode})"))
    return result


def seed_init_container(
    *,
    image: str,
    uid: int,
    gid: int,
    home_mount: Mapping[str, Any],
    seed_from: str,
    image_pull_policy: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The init container that copies ``seed_from`` into an empty home, as the user.

    Inputs go through the environment only; the script text is fixed (nbspawner/data/seed-home.sh)
    and passed as ``sh -c`` so nothing has to be mounted for it.
    """
    container: dict[str, Any] = {
        "name": SEED_CONTAINER_NAME,
        "image": image,
        "command": ["/bin/sh", "-c", seed_script(), SEED_CONTAINER_NAME],
        "env": [
            {"name": "NBS_SEED_FROM", "value": seed_from},
            {"name": "NBS_HOME", "value": home_mount["mountPath"]},
            {"name": "NBS_UID", "value": str(uid)},
            {"name": "NBS_GID", "value": str(gid)},
        ],
        "securityContext": restricted_container_security_context(uid, gid, read_only_root=True),
        "volumeMounts": [dict(home_mount)],
    }
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    if resources:
        container["resources"] = dict(resources)
    return container


def build_storage(
    config: StorageConfig,
    record: UserRecord,
    *,
    image: str,
    image_pull_policy: str | None = None,
    seed_resources: Mapping[str, Any] | None = None,
    access_groups: Iterable[str] | None = None,
) -> StoragePlan:
    """Volumes, mounts, seeding and HOME for ``record``'s pod.

    ``image`` is the notebook image (the seeding init container uses it, so the skeleton is
    the image's own). ``access_groups`` are the group names that decide which data shares the
    user gets (default: ``record.groups``; the spawner passes the union with the hub's groups
    when ``NBSpawner.access_groups_from`` says so). Raises StorageError (the spawner refuses
    to start, no pod) when a path rendered from the record is unsafe or the home lies outside
    the export roots.
    """
    groups = frozenset(record.groups if access_groups is None else access_groups)
    values = _record_values(record)
    mount_path = render_template(config.home_mount_path, values, SETTING_HOME_MOUNT_PATH)
    check_own_mount_path(mount_path, SETTING_HOME_MOUNT_PATH, StorageError)

    patch = PodPatch(env={"HOME": mount_path})
    vols = _Volumes()
    summary: list[str] = []
    mount_paths = {mount_path: SETTING_HOME_MOUNT_PATH}

    home_mount = None
    if config.home.type != "none":
        home_mount, line = _home_mount(config.home, record, values, mount_path, vols)
        patch.volume_mounts.append(home_mount)
        # start in the home nbspawner mounts (unless the admin chose a working_dir)
        patch.working_dir = mount_path
        summary.append(line)

    for share in config.data_shares:
        for mount, line in _share_mounts(share, groups, values, vols):
            setting = f"{SETTING_DATA_SHARES}[{share.name}].mount_path"
            if mount["mountPath"] in mount_paths:
                raise StorageError(
                    f"{setting} is the same as {mount_paths[mount['mountPath']]}: "
                    "two mounts at one path",
                    reason="storage_conflict",
                )
            mount_paths[mount["mountPath"]] = setting
            patch.volume_mounts.append(mount)
            summary.append(line)

    if home_mount is not None and config.seed_home_from:
        if record.uid == 0 or record.gid == 0:
            raise StorageError(
                "the home would be seeded as uid or gid 0; refusing (root-owned files in a home)",
                reason="root_id",
            )
        if overlaps(config.seed_home_from, mount_path):
            # e.g. seed_home_from /home/jovyan with /home/{username} for a user named jovyan:
            # the home hides the skeleton; starting without seeding beats refusing the user
            summary.append(f"seed: skipped, {config.seed_home_from} overlaps {mount_path}")
        else:
            patch.init_containers.append(
                seed_init_container(
                    image=image,
                    uid=record.uid,
                    gid=record.gid,
                    home_mount=home_mount,
                    seed_from=config.seed_home_from,
                    image_pull_policy=image_pull_policy,
                    resources=seed_resources,
                )
            )
            summary.append(f"seed: {config.seed_home_from} -> {mount_path} when empty")

    patch.volumes.extend(vols.volumes)
    return StoragePlan(patch=patch, home_mount_path=mount_path, summary=tuple(summary))


def check_pod_conflicts(
    pod: Mapping[str, Any], patch: PodPatch, container_name: str = "notebook"
) -> None:
    """Raise ConfigError if ``patch`` clashes with what kubespawner already put in ``pod``
    (a camelCase pod dict): a volume name, an init container name, or a mount path of the
    notebook container. The usual cause is z2jh's ``singleuser.storage.type`` still being
    ``dynamic`` or ``static`` (a second home at ``singleuser.storage.homeMountPath``)."""
    spec = pod.get("spec") or {}
    names = {v.get("name") for v in spec.get("volumes") or []}
    for volume in patch.volumes:
        if volume["name"] in names:
            raise ConfigError(
                f"the pod already has a volume named {volume['name']}; rename the volume in "
                "singleuser.storage.extraVolumes or KubeSpawner.volumes"
            )
    init_names = {c.get("name") for c in spec.get("initContainers") or []}
    for container in patch.init_containers:
        if container["name"] in init_names:
            raise ConfigError(f"the pod already has an init container named {container['name']}")
    for container in spec.get("containers") or []:
        if container.get("name") != container_name:
            continue
        existing = {
            normalise(m["mountPath"])
            for m in container.get("volumeMounts") or []
            if isinstance(m.get("mountPath"), str)
        }
        for mount in patch.volume_mounts:
            path = normalise(mount["mountPath"])
            if path in existing:
                raise ConfigError(
                    f"the notebook container already mounts something at {path}: with "
                    f"{SETTING_HOME_VOLUME} set, set z2jh's singleuser.storage.type to none "
                    f"(or change {SETTING_HOME_MOUNT_PATH} / the data share's mount_path)"
                )
