"""Load the hub's configuration the way the hub would see it, for the admin CLI.

Two sources:

- a ``jupyterhub_config.py`` (run by traitlets' own loader, as JupyterHub does);
- a zero-to-jupyterhub ``config.yaml``: ``hub.config`` becomes traitlets config, the
  ``singleuser`` keys nbspawner's behaviour depends on are mapped the way the chart maps them
  (``profile_list = []``, ``uid``, ``fs_gid``, image, storage, ...), and ``hub.extraFiles`` are
  written to a temporary directory so that settings pointing at their ``mountPath`` (the
  catalog, a static directory file) resolve locally. ``hub.extraConfig`` Python is *not* run:
  the CLI says so when it is present.

The chart's defaults that reach a user's pod (``Z2JH_POD_DEFAULTS``) are merged under the file
as helm merges them. The pod's release labels and ``schedulerName`` depend on the helm release
and chart version, which a ``config.yaml`` does not hold: they are exact when the file is the
hub Secret's ``values.yaml`` (helm adds ``Release`` and ``Chart`` there), and otherwise left out
with a note. ``tests/integration/test_helm_chart.py`` compares this reading with the chart's own
``jupyterhub_config.py`` run by JupyterHub.
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
    #: what the shown pod cannot include (printed by the CLI; not a problem for ``check``)
    pod_notes: list[str] = field(default_factory=list)


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


#: the z2jh chart defaults (4.4.0 and the development chart alike) that reach every user's pod,
#: for the keys the mapping below reads and a config.yaml usually leaves out
Z2JH_POD_DEFAULTS: dict[str, Any] = {
    "scheduling": {
        "userScheduler": {"enabled": True},
        "podPriority": {"enabled": False},
        "userPods": {
            "tolerations": [
                {
                    "key": "hub.jupyter.org/dedicated",
                    "operator": "Equal",
                    "value": "user",
                    "effect": "NoSchedule",
                },
                {
                    "key": "hub.jupyter.org_dedicated",
                    "operator": "Equal",
                    "value": "user",
                    "effect": "NoSchedule",
                },
            ],
            "nodeAffinity": {"matchNodePurpose": "prefer"},
        },
    },
    "singleuser": {"extraLabels": {"hub.jupyter.org/network-access-hub": "true"}},
    "fullnameOverride": "",
}


def helm_merge(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Helm's merge of a values file over the chart's defaults: maps merge recursively, other
    values (lists too) replace, and ``null`` removes the default."""
    out = dict(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = helm_merge(out[key], value)
        else:
            out[key] = value
    return out


def _z2jh_fullname(values: dict[str, Any]) -> str:
    """The chart's ``jupyterhub.fullname`` template."""
    override = values.get("fullnameOverride")
    if isinstance(override, str):
        return override
    name = values.get("nameOverride") or (values.get("Chart") or {}).get("Name") or "jupyterhub"
    release = (values.get("Release") or {}).get("Name") or ""
    return release if name in release else f"{release}-{name}"


def _z2jh_release_settings(values: dict[str, Any]) -> dict[str, Any]:
    """What the chart's jupyterhub_config.py sets from ``Chart``/``Release`` (in the hub Secret)."""
    ks: dict[str, Any] = {}
    chart = values.get("Chart") or {}
    release = (values.get("Release") or {}).get("Name")
    name = values.get("nameOverride") or chart.get("Name") or "jupyterhub"
    labels = {"app.kubernetes.io/name": name, "app": name}
    if release:
        labels["app.kubernetes.io/instance"] = labels["release"] = release
    if chart.get("Name") and chart.get("Version"):
        labels["helm.sh/chart"] = labels["chart"] = (
            f"{chart['Name']}-{str(chart['Version']).replace('+', '_')}"
        )
    labels["app.kubernetes.io/managed-by"] = "kubespawner"
    ks["common_labels"] = labels
    scheduling = values.get("scheduling") or {}
    fullname = _z2jh_fullname(values) if release else ""
    if release and (scheduling.get("userScheduler") or {}).get("enabled"):
        ks["scheduler_name"] = (
            f"{fullname}-user-scheduler" if fullname else f"{release}-user-scheduler"
        )
    if release and (scheduling.get("podPriority") or {}).get("enabled"):
        ks["priority_class_name"] = fullname or f"{release}-default-priority"
    return ks


def z2jh_singleuser_config(values: dict[str, Any]) -> dict[str, Any]:
    """The KubeSpawner settings the chart derives from ``singleuser`` (the part nbspawner meets)."""
    values = helm_merge(Z2JH_POD_DEFAULTS, values)
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
    if su.get("extraLabels"):
        ks["extra_labels"] = dict(su["extraLabels"])
    ks.update(_z2jh_release_settings(values))
    user_pods = (values.get("scheduling") or {}).get("userPods") or {}
    purpose = (user_pods.get("nodeAffinity") or {}).get("matchNodePurpose")
    node_purpose = {
        "matchExpressions": [
            {"key": "hub.jupyter.org/node-purpose", "operator": "In", "values": ["user"]}
        ]
    }
    if purpose == "prefer":
        ks["node_affinity_preferred"] = [{"weight": 100, "preference": node_purpose}]
    elif purpose == "require":
        ks["node_affinity_required"] = [node_purpose]
    tolerations = list(user_pods.get("tolerations") or []) + list(su.get("extraTolerations") or [])
    if tolerations:
        ks["tolerations"] = tolerations
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
    pod_notes: list[str] = []
    if not (values.get("Release") or {}).get("Name"):
        pod_notes.append(
            "the pod's release labels (app.kubernetes.io/instance, helm.sh/chart) and "
            "schedulerName (scheduling.userScheduler) depend on the helm release, which "
            f"{Path(path).name} does not name; for them, use the hub Secret's values.yaml "
            "(kubectl get secret hub -o jsonpath='{.data.values\\.yaml}' | base64 -d)."
        )
    if hub.get("extraConfig"):
        notes.append(
            "hub.extraConfig is Python and is not evaluated by the CLI "
            f"({', '.join(sorted(hub['extraConfig']))}); settings made there are not shown."
        )
    return HubConfig(cfg, str(path), notes, files, pod_notes)


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
