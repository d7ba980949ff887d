"""``nbspawner check``: can the hub start servers with this configuration?

Runs the same code the hub runs, without creating anything: the settings are loaded into a
real :class:`~nbspawner.spawner.NBSpawner`, the storage settings and the catalog are validated,
and the directory backend's :meth:`~nbspawner.directory.base.Directory.check` talks to the
directory (an LDAP bind and a read of the search base, a request to the REST API...).

Every result is one line starting with ``OK``, ``WARN`` or ``FAIL``; a ``FAIL`` line says what
to check. Secrets (bind passwords, tokens) are never printed: the backends' messages name the
setting that holds a secret, not its value.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

from traitlets import TraitError

from . import passwd_hook
from .catalog import Catalog, load, load_data
from .directory import directory_entry_points
from .errors import CatalogError, NBSpawnerError
from .hubconfig import HubConfig
from .offline import make_spawner, offline_kubeconfig
from .record import UserRecord

#: how long the directory connectivity check may take in all (backends have their own timeouts)
#: the username used to build the spawner (never looked up)
CHECK_USERNAME = "nbspawner-check"
#: volume types that need a Pod Security level below "restricted", and the level they need
_LEVEL_FOR_TYPE = {"nfs": "baseline", "hostPath": "privileged"}
_LEVELS = ("restricted", "baseline", "privileged")
#: ways to name the spawner in JupyterHub.spawner_class
_SPAWNER_NAMES = ("nbspawner", "nbspawner.NBSpawner", "nbspawner.spawner.NBSpawner")
#: where the admin learns to map a file mounted in the hub pod to a local copy
_FILE_HINT = (
    "On the hub that path is a mounted file; when checking elsewhere, pass a local copy with "
    "--file MOUNTPATH=LOCALPATH"
)


class Report:
    """The lines of a check run; ``ok`` turns false at the first failure."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.ok = True

    def good(self, message: str) -> None:
        self.lines.append(f"OK   {message}")

    def warn(self, message: str) -> None:
        self.lines.append(f"WARN {message}")

    def fail(self, message: str) -> None:
        self.ok = False
        self.lines.append(f"FAIL {message}")

    def detail(self, message: str) -> None:
        self.lines.append(f"       {message}")


def _directory_classes() -> dict[str, type]:
    classes: dict[str, type] = {}
    for ep in directory_entry_points().values():
        try:
            cls = ep.load()
        except Exception:  # noqa: S112 - a broken third-party plugin must not stop the check
            continue
        classes[cls.__name__] = cls
    return classes


def _sections(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {name: value for name, value in config.items() if isinstance(value, Mapping)}


def check_setting_names(config: Mapping[str, Any], report: Report) -> None:
    """Unknown keys in nbspawner's sections, and sections that look like misspelt ones."""
    from .spawner import NBSpawner

    known: dict[str, type] = {"NBSpawner": NBSpawner, **_directory_classes()}
    sections = _sections(config)
    bad = 0
    for name, settings in sections.items():
        cls = known.get(name)
        if cls is None:
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close:
                report.fail(
                    f"settings: there is no class {name!r} (did you mean {close[0]}?); "
                    "its settings are ignored"
                )
                bad += 1
            continue
        traits = set(cls.class_trait_names(config=True))
        for key in settings:
            if key not in traits:
                close = difflib.get_close_matches(key, traits, n=1, cutoff=0.75)
                hint = f" (did you mean {name}.{close[0]}?)" if close else ""
                report.fail(f"settings: {name}.{key} is not a setting{hint}; it is ignored")
                bad += 1
    if not bad:
        report.good("settings: every NBSpawner and directory setting is known")


def check_spawner_class(config: Mapping[str, Any], report: Report) -> None:
    from .spawner import NBSpawner

    jupyterhub = config.get("JupyterHub") or {}
    value = jupyterhub.get("spawner_class") if isinstance(jupyterhub, Mapping) else None
    if value is None:
        report.warn(
            "JupyterHub.spawner_class is not set: the hub uses its default spawner, not "
            "nbspawner (z2jh: hub.config.JupyterHub.spawner_class: nbspawner)"
        )
    elif value in _SPAWNER_NAMES or (isinstance(value, type) and issubclass(value, NBSpawner)):
        report.good(f"JupyterHub.spawner_class is {getattr(value, '__name__', value)}")
    else:
        report.warn(
            f"JupyterHub.spawner_class is {value!r}, not nbspawner: these nbspawner settings "
            "are not used by the hub"
        )


def _make_spawner(hub: HubConfig) -> Any:

    with offline_kubeconfig():
        return make_spawner(hub, CHECK_USERNAME)


def _sample_record(spawner: Any) -> UserRecord:
    uid = max(spawner.min_uid, 1000)
    gid = max(spawner.min_gid, 1)
    return UserRecord(CHECK_USERNAME, uid, gid, f"/home/{CHECK_USERNAME}")


def check_identity_settings(spawner: Any, report: Report) -> None:
    from .policy import validate_record

    try:
        passwd_hook.supplemental_gids(_sample_record(spawner), spawner.passwd_config)
    except (NBSpawnerError, TypeError, ValueError):
        report.fail(
            "NBSpawner.default_groups must map group names to gids from 1 to 4294967294 "
            "(e.g. {users: 100})"
        )
    if spawner.fallback_identity:
        try:
            record = spawner.fallback_record(CHECK_USERNAME)
            validate_record(record, spawner.identity_policy)
        except NBSpawnerError as e:
            report.fail(f"NBSpawner.fallback_identity: {e.log_message}")
        else:
            report.warn(
                f"NBSpawner.fallback_identity is set: users the directory does not know run "
                f"as uid {record.uid}, gid {record.gid}. Never use it with shared storage."
            )
    if spawner.passwd_hook == "off":
        report.warn(
            'NBSpawner.passwd_hook is "off": users see "I have no name!" in terminals and '
            "tools that look up the user fail"
        )


def _storage_summary(storage: Any) -> str:
    home = storage.home
    if home.type == "none":
        text = f"no home volume from nbspawner (HOME={storage.home_mount_path})"
    elif home.type == "pvc":
        text = f"home from claim {home.claim_name} at {storage.home_mount_path}"
    elif home.type == "nfs":
        text = f"home from nfs {home.server} at {storage.home_mount_path}"
    else:
        text = f"home from the node's {home.type} at {storage.home_mount_path}"
    count = len(storage.data_shares)
    return text + f", {count} data share{'' if count == 1 else 's'}"


def check_storage(spawner: Any, report: Report) -> None:
    try:
        storage = spawner.storage_config
    except NBSpawnerError as e:
        report.fail(f"storage: {e.log_message}")
        return
    report.good(f"storage: {_storage_summary(storage)}")

    level = spawner.pod_security_level
    used = [("NBSpawner.home_volume", storage.home.type)] + [
        (f"NBSpawner.data_shares[{s.name}]", s.type) for s in storage.data_shares
    ]
    for setting, kind in used:
        needed = _LEVEL_FOR_TYPE.get(kind)
        if needed and _LEVELS.index(level) < _LEVELS.index(needed):
            report.fail(
                f"storage: {setting} has type {kind!r}, which Pod Security {level!r} forbids; "
                f"every spawn would be refused. Use a PersistentVolumeClaim (type pvc), or set "
                f"NBSpawner.pod_security_level: {needed} and label the namespace "
                f"pod-security.kubernetes.io/enforce={needed}"
            )

    # what z2jh's singleuser.storage adds (KubeSpawner.volume_mounts / storage_pvc_ensure)
    chart_mounts = [
        m.get("mountPath")
        for m in spawner.volume_mounts or ()
        if isinstance(m, Mapping) and isinstance(m.get("mountPath"), str)
    ]
    if storage.home.type != "none":
        mount = storage.home_mount_path
        if mount in chart_mounts:
            report.fail(
                f"storage: something else is already mounted at {mount} "
                "(z2jh singleuser.storage); set singleuser.storage.type: none"
            )
        elif spawner.storage_pvc_ensure:
            report.warn(
                "storage: KubeSpawner also creates a PVC per user (z2jh singleuser.storage.type "
                "dynamic) although nbspawner mounts the home; set singleuser.storage.type: none"
            )
    elif chart_mounts and "{" not in storage.home_mount_path:
        if storage.home_mount_path not in chart_mounts:
            report.warn(
                f"storage: HOME is {storage.home_mount_path} but the chart mounts the user's "
                f"volume at {', '.join(chart_mounts)}; set NBSpawner.home_mount_path to it"
            )
    elif chart_mounts:
        report.warn(
            f"storage: HOME is {storage.home_mount_path} (NBSpawner.home_mount_path) but the chart "
            f"mounts the user's volume at {', '.join(chart_mounts)}; set "
            "NBSpawner.home_mount_path to that path"
        )
    if spawner.storage_pvc_ensure and storage.home.type == "none" and not spawner.keep_fs_gid:
        report.warn(
            "storage: a new per-user PVC (z2jh singleuser.storage.type dynamic) is owned by root; "
            "without fsGroup the user cannot write to it: set NBSpawner.keep_fs_gid: true"
        )


def _is_root_container(container: Mapping[str, Any]) -> bool:
    sc = container.get("securityContext") or {}
    if not isinstance(sc, Mapping):
        return False
    caps = sc.get("capabilities") or {}
    return bool(
        sc.get("privileged")
        or sc.get("runAsUser") == 0
        or sc.get("allowPrivilegeEscalation")
        or (isinstance(caps, Mapping) and caps.get("add"))
    )


def check_pod_settings(spawner: Any, report: Report) -> None:
    """Spawner settings that make nbspawner refuse every pod."""
    bad = False
    for container in spawner.init_containers or ():
        if isinstance(container, Mapping) and _is_root_container(container):
            bad = True
            name = container.get("name", "?")
            hint = (
                "z2jh: set singleuser.cloudMetadata.blockWithIptables: false"
                if name == "block-cloud-metadata"
                else "remove it from KubeSpawner.init_containers (z2jh singleuser.initContainers)"
            )
            report.fail(
                f"pod: the init container {name!r} runs privileged or as root; nbspawner refuses "
                f"such pods at every NBSpawner.pod_security_level. {hint}"
            )
    if spawner.privileged:
        bad = True
        report.fail("pod: KubeSpawner.privileged is true; nbspawner refuses privileged pods")
    if not bad:
        report.good(
            f"pod: no root or privileged containers configured "
            f"(Pod Security level checked: {spawner.pod_security_level})"
        )


def _report_catalog(catalog: Catalog, where: str, spawner: Any, report: Report) -> None:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    report.good(
        f"catalog: {where}: {plural(len(catalog.images), 'image')}, "
        f"{plural(len(catalog.sizes), 'size')}, {plural(len(catalog.gpus), 'GPU option')} "
        f"(mode {catalog.mode})"
    )
    for location, message in catalog.warnings:
        report.warn(f"catalog: {location}: {message}")
    if spawner.pod_security_level == "restricted":
        for image in catalog.images:
            kinds = {
                key for volume in image.volumes or () for key in volume if key in _LEVEL_FOR_TYPE
            }
            for kind in sorted(kinds):
                report.warn(
                    f"catalog: image {image.slug!r} declares a {kind!r} volume, which Pod "
                    "Security 'restricted' forbids; spawns of it are refused. Use a "
                    "persistentVolumeClaim, or lower NBSpawner.pod_security_level"
                )


def _report_catalog_error(err: CatalogError, report: Report) -> None:
    report.fail(f"catalog: {err.log_message.split(': ', 1)[0]}; fix these problems:")
    for location, message in err.problems:
        report.detail(f"{location}: {message}")


def check_catalog(spawner: Any, report: Report) -> None:
    if spawner.profile_list and not spawner.uses_catalog():
        extra = (
            "; NBSpawner.catalog_file/catalog are ignored"
            if spawner.catalog_file or spawner.catalog
            else ""
        )
        report.good(f"catalog: not used, KubeSpawner.profile_list is set{extra}")
        return
    if spawner.catalog_file:
        path = spawner.catalog_file
        if not os.path.exists(path):
            report.fail(f"catalog: NBSpawner.catalog_file ({path}) does not exist. {_FILE_HINT}")
            return
        try:
            catalog = load(path)
        except CatalogError as e:
            _report_catalog_error(e, report)
            return
        _report_catalog(catalog, path, spawner, report)
        return
    if spawner.catalog:
        try:
            catalog = load_data(spawner.catalog, source="NBSpawner.catalog")
        except CatalogError as e:
            _report_catalog_error(e, report)
            return
        _report_catalog(catalog, "NBSpawner.catalog (inline)", spawner, report)
        return
    report.good(
        "catalog: none configured; every user gets KubeSpawner.image "
        "(set NBSpawner.catalog_file to offer profiles)"
    )


def lines_for_exception(prefix: str, err: BaseException) -> str:
    if isinstance(err, NBSpawnerError):
        return f"{prefix}: {err.log_message}"
    return f"{prefix}: {type(err).__name__}: {err}"


async def run_checks(hub: HubConfig, users: Iterable[str] = ()) -> tuple[bool, list[str]]:
    """Check ``hub``'s configuration, catalog and directory; with ``users``, spawn each of them
    as the hub would (no cluster); return ``(ok, lines)``."""
    report = Report()
    report.good(f"configuration: {hub.source}")
    for note in hub.notes:
        report.warn(f"configuration: {note}")
    config = hub.config
    check_spawner_class(config, report)
    check_setting_names(config, report)
    try:
        spawner = _make_spawner(hub)
    except TraitError as e:
        if re.match(r"\A[A-Z]\w*\.\w+", str(e)):
            # nbspawner's own setting checks name Class.trait and the value, as the hub logs
            # them when it starts
            report.fail(str(e))
        else:
            report.fail(lines_for_exception("NBSpawner settings cannot be loaded", e))
        return report.ok, _finish(report)
    except Exception as e:
        report.fail(lines_for_exception("NBSpawner settings cannot be loaded", e))
        return report.ok, _finish(report)
    directory = getattr(spawner.directory_class, "__name__", str(spawner.directory_class))
    report.good(
        f"NBSpawner settings load (directory {directory}, passwd hook {spawner.passwd_hook}, "
        f"Pod Security level {spawner.pod_security_level})"
    )
    for step in (check_identity_settings, check_storage, check_pod_settings, check_catalog):
        try:
            step(spawner, report)
        except Exception as e:  # a check must never hide the ones after it
            report.fail(lines_for_exception(f"{step.__name__} crashed", e))
    from . import checks_live  # it imports this module

    await checks_live.check_directory(spawner, config, report)
    users = list(users)
    if users:
        await checks_live.check_users(hub, users, report)
    else:
        report.warn(
            "no user was looked up: this checked the configuration only "
            "(add --user NAME to spawn users as the hub would)"
        )
    return report.ok, _finish(report)


def _finish(report: Report) -> list[str]:
    failures = sum(1 for line in report.lines if line.startswith("FAIL"))
    if failures:
        report.lines.append(
            f"nbspawner check: {failures} problem{'' if failures == 1 else 's'} found"
        )
    else:
        report.lines.append("nbspawner check: all checks passed")
    return report.lines


__all__: Iterable[str] = ["run_checks", "Report"]
