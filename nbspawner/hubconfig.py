"""Load the hub's configuration the way the hub would see it, for the admin CLI.

Two sources:

- a ``jupyterhub_config.py`` (run by traitlets' own loader, as JupyterHub does);
- a zero-to-jupyterhub ``config.yaml``: ``hub.config`` becomes traitlets config, the
  ``singleuser`` keys nbspawner's behaviour depends on are mapped the way the chart maps them
  (``profile_list = []``, ``uid``, ``fs_gid``, image, storage, ...), and ``hub.extraFiles`` are
  written to a temporary directory so that settings pointing at their ``mountPath`` (the
  catalog, a static directory file) resolve locally. ``hub.extraConfig`` Python is *not* run:
  the CLI says so when it is present.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from traitlets.config import Config, PyFileConfigLoader

from .errors import ConfigError
from .yamlload import YAMLFileError, read_yaml_file


@dataclass
class HubConfig:
    config: Config
    source: str
    notes: list[str] = field(default_factory=list)
    #: mountPath -> local file written for hub.extraFiles
    files: dict[str, str] = field(default_factory=dict)


def _remap(value: Any, files: dict[str, str]) -> Any:
    if isinstance(value, str):
        return files.get(value, value)
    if isinstance(value, list):
        return [_remap(v, files) for v in value]
    if isinstance(value, dict):
        return {k: _remap(v, files) for k, v in value.items()}
    return value


def _write_extra_files(extra_files: dict[str, Any], directory: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    for key, spec in (extra_files or {}).items():
        if not isinstance(spec, dict) or "mountPath" not in spec:
            raise ConfigError(f"hub.extraFiles.{key} needs a mountPath")
        mount = spec["mountPath"]
        target = directory / key / Path(mount).name
        target.parent.mkdir(parents=True, exist_ok=True)
        if "data" in spec:
            if mount.endswith((".yaml", ".yml")):
                target.write_text(yaml.safe_dump(spec["data"], sort_keys=False))
            elif mount.endswith(".json"):
                target.write_text(json.dumps(spec["data"], indent=2))
            else:
                raise ConfigError(f"hub.extraFiles.{key}: data needs a .yaml/.yml/.json mountPath")
        elif "stringData" in spec:
            target.write_text(spec["stringData"])
        elif "binaryData" in spec:
            target.write_bytes(base64.b64decode(spec["binaryData"]))
        else:
            # content given with `helm --set-file`: not in this file; the CLI's --file maps it
            continue
        files[mount] = str(target)
    return files


def z2jh_singleuser_config(values: dict[str, Any]) -> dict[str, Any]:
    """The KubeSpawner settings the chart derives from ``singleuser`` (the part nbspawner meets)."""
    su = values.get("singleuser") or {}
    ks: dict[str, Any] = {
        # the chart always sets these two, which is why nbspawner can't use trait defaults
        "profile_list": su.get("profileList") or [],
        "uid": su.get("uid", 1000),
        "fs_gid": su.get("fsGid", 100),
        "cmd": su.get("cmd", "jupyterhub-singleuser"),
    }
    image = su.get("image") or {}
    if image.get("name"):
        ks["image"] = f"{image['name']}:{image['tag']}" if image.get("tag") else image["name"]
    if su.get("defaultUrl"):
        ks["default_url"] = su["defaultUrl"]
    for key, trait in (("cpu", "cpu"), ("memory", "mem")):
        block = su.get(key) or {}
        if block.get("limit") is not None:
            ks[f"{trait}_limit"] = block["limit"]
        if block.get("guarantee") is not None:
            ks[f"{trait}_guarantee"] = block["guarantee"]
    if su.get("extraEnv"):
        ks["environment"] = dict(su["extraEnv"])
    if su.get("nodeSelector"):
        ks["node_selector"] = dict(su["nodeSelector"])
    if su.get("extraTolerations"):
        ks["tolerations"] = list(su["extraTolerations"])
    if "allowPrivilegeEscalation" in su:
        ks["allow_privilege_escalation"] = su["allowPrivilegeEscalation"]
    storage = su.get("storage") or {}
    stype = storage.get("type", "dynamic")
    home = storage.get("homeMountPath", "/home/jovyan")
    volumes = list(storage.get("extraVolumes") or [])
    mounts = list(storage.get("extraVolumeMounts") or [])
    if stype == "dynamic":
        ks["storage_pvc_ensure"] = True
        volumes.insert(
            0,
            {"name": "volume-{user_server}", "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
        )
        mounts.insert(0, {"name": "volume-{user_server}", "mountPath": home})
    elif stype == "static":
        static = storage.get("static") or {}
        volumes.insert(
            0, {"name": "home", "persistentVolumeClaim": {"claimName": static.get("pvcName")}}
        )
        mounts.insert(
            0, {"name": "home", "mountPath": home, "subPath": static.get("subPath", "{username}")}
        )
    if volumes:
        ks["volumes"] = volumes
    if mounts:
        ks["volume_mounts"] = mounts
    cloud = su.get("cloudMetadata") or {}
    if cloud.get("blockWithIptables", True):
        # the chart adds a privileged root init container; Pod Security "restricted" rejects it
        ks["init_containers"] = [
            {
                "name": "block-cloud-metadata",
                "image": "quay.io/jupyterhub/k8s-network-tools",
                "command": [
                    "iptables",
                    "-A",
                    "OUTPUT",
                    "-d",
                    cloud.get("ip", "169.254.169.254"),
                    "-j",
                    "DROP",
                ],
                "securityContext": {
                    "privileged": True,
                    "runAsUser": 0,
                    "capabilities": {"add": ["NET_ADMIN"]},
                },
            }
        ]
    return ks


class FileMapError(ConfigError):
    """A ``--file`` the configuration has no use for, or whose local file is missing."""


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    return []


def _check_file_map(
    path: Any,
    hub: dict[str, Any],
    files: dict[str, str],
    file_map: dict[str, str],
    notes: list[str],
) -> None:
    """``--file`` must name a path the configuration uses; a hub path no ``--file`` maps but
    that exists on this workstation is read from here, which a note says."""
    referenced = {s for s in _strings(hub.get("config") or {}) if s.startswith("/")}
    for mount, local in file_map.items():
        if mount not in referenced:
            known = ", ".join(sorted(referenced)[:8]) or "none"
            raise FileMapError(
                f"--file {mount}={local}: no setting in {path} names {mount} "
                f"(the paths it names: {known})"
            )
        if not os.path.exists(local):
            raise FileMapError(f"--file {mount}={local}: {local} does not exist")
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return  # inside the hub's pod: its paths are the hub's own files
    for ref in sorted(referenced - set(files)):
        if os.path.isfile(ref):
            notes.append(
                f"{ref} is read from this workstation (no --file maps it); the hub reads "
                "its own file at that path"
            )


def load_z2jh_values(
    path: str | os.PathLike[str], file_map: dict[str, str] | None = None
) -> HubConfig:
    # the strict loader: duplicate keys are refused and ids keep their spelling, so
    # `nbspawner check` refuses `uid: 02001` here although helm would silently read 1025
    try:
        values = read_yaml_file(str(path)) or {}
    except YAMLFileError as e:
        raise ConfigError(str(e)) from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: not a YAML mapping")
    hub = values.get("hub") or {}
    notes: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="nbspawner-extrafiles-"))
    files = _write_extra_files(hub.get("extraFiles") or {}, tmp)
    files.update(file_map or {})
    _check_file_map(path, hub, files, file_map or {}, notes)
    cfg = Config()
    cfg.KubeSpawner = Config(z2jh_singleuser_config(values))
    for cls_name, settings in (hub.get("config") or {}).items():
        if not isinstance(settings, dict):
            raise ConfigError(f"hub.config.{cls_name} must be a mapping of settings")
        section = cfg[cls_name] if cls_name in cfg else Config()
        for k, v in settings.items():
            section[k] = _remap(v, files)
        cfg[cls_name] = section
    if hub.get("extraConfig"):
        notes.append(
            "hub.extraConfig is Python and is not evaluated by the CLI "
            f"({', '.join(sorted(hub['extraConfig']))}); settings made there are not shown."
        )
    return HubConfig(cfg, str(path), notes, files)


def load_hub_config(
    path: str | os.PathLike[str], file_map: dict[str, str] | None = None
) -> HubConfig:
    """Load a ``jupyterhub_config.py`` or a z2jh ``config.yaml``."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"{path}: no such file")
    if p.suffix in (".yaml", ".yml"):
        return load_z2jh_values(p, file_map)
    loader = PyFileConfigLoader(p.name, path=str(p.parent.resolve()))
    cfg = loader.load_config()
    return HubConfig(cfg, str(p), [], dict(file_map or {}))
