"""What the ``nbspawner`` command prints: YAML, JSON or kubectl-like tables, and the preview's
summary of one spawn.

Every command takes ``-o/--output yaml|json|table``. Tables are for reading (one row per
item, upper-case headers, columns padded like ``kubectl get``); YAML and JSON carry everything
and are for tools. In the pod, nbspawner's two init scripts are shown by file name and sha256
unless ``--full`` asks for their text (they are fixed package files; the values that differ per
user are in the container's environment).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

import yaml

from .catalog import Catalog, format_bytes, format_cpu

FORMATS = ("yaml", "json", "table")
#: the package's fixed scripts, by text (what a pod's ``sh -c`` argument holds)
_SCRIPTS = ("data/passwd-init.sh", "data/seed-home.sh")


class _Dumper(yaml.SafeDumper):
    """YAML with multi-line strings in readable block style."""


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_representer)


def dump_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """kubectl-style: upper-case headers, columns separated by three spaces, no borders."""
    cells = [[h.upper() for h in headers]] + [
        ["<none>" if v in (None, "", []) else str(v) for v in row] for row in rows
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines) + "\n"


def check_results(lines: Iterable[str]) -> list[dict[str, str]]:
    """``nbspawner check``'s lines as data: level and message (continuation lines joined)."""
    results: list[dict[str, str]] = []
    for line in lines:
        level, _, message = line.partition(" ")
        if level in ("OK", "WARN", "FAIL"):
            results.append({"level": level, "message": message.strip()})
        elif results and line.startswith(" "):
            results[-1]["message"] += "\n" + line.strip()
    return results


def script_references(pod: Any) -> Any:
    """``pod`` with each of nbspawner's fixed scripts replaced by ``<file, sha256, size>``."""
    known = {}
    for name in _SCRIPTS:
        text = resources.files("nbspawner").joinpath(name).read_text("utf-8")
        digest = hashlib.sha256(text.encode()).hexdigest()
        known[text] = (
            f"<nbspawner/{name}: sha256 {digest[:16]}, {len(text):,} bytes; --full shows it>"
        )

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return known.get(value, value)
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        return value

    return walk(pod)


def profiles_summary(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in profiles:
        entry: dict[str, Any] = {"slug": p.get("slug"), "display_name": p.get("display_name")}
        if p.get("default"):
            entry["default"] = True
        for name, option in (p.get("profile_options") or {}).items():
            entry.setdefault("options", {})[name] = list((option.get("choices") or {}).keys())
        out.append(entry)
    return out


def containers_table(pod: dict[str, Any]) -> str:
    rows = []
    spec = pod["spec"]
    for kind in ("initContainers", "containers"):
        for c in spec.get(kind) or []:
            sc = c.get("securityContext") or {}
            mounts = ", ".join(m["mountPath"] for m in c.get("volumeMounts") or [])
            rows.append(
                (
                    kind[:-1],
                    c["name"],
                    c.get("image"),
                    sc.get("runAsUser"),
                    sc.get("runAsGroup"),
                    mounts,
                )
            )
    return table(("kind", "name", "image", "uid", "gid", "mounts"), rows)


# ---------------------------------------------------------------------------
# The preview's summary
# ---------------------------------------------------------------------------


def _default_group(catalog: Catalog, groups: frozenset[str], field: str, slug: str) -> str | None:
    """The ``defaults`` entry that made ``slug`` the user's ``field`` default (its group)."""
    for entry in catalog.defaults:
        if getattr(entry, field) == slug and (entry.group == "*" or entry.group in groups):
            return entry.group
    return None


def _why(chosen: bool, group: str | None) -> str:
    if chosen:
        return "(chosen)"
    if group is None:
        return "(the first one allowed; no catalog default applies)"
    return "(default for everyone)" if group == "*" else f"(default for group {group})"


def _span(low: Any, high: Any, fmt: Any) -> str:
    shown = [fmt(v) for v in (low, high) if v]
    return " to ".join(dict.fromkeys(shown)) or "-"


def summary(rendered: Mapping[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """One spawn in a few lines: what was chosen and why, who the pod runs as, what it mounts."""
    record = rendered["record"]
    pod = rendered["pod"]
    selection = rendered.get("selection")
    catalog: Catalog | None = rendered.get("catalog")
    groups = frozenset(rendered.get("access_groups") or ())
    out: dict[str, Any] = {}
    if selection is not None and catalog is not None:
        image, size, gpu = selection.image, selection.size, selection.gpu
        mode_field = "profile" if selection.combination is not None else "image"
        out["profile"] = f"{selection.profile}, {image.display_name} " + _why(
            "profile" in options, _default_group(catalog, groups, mode_field, selection.profile)
        )
        out["image"] = image.image
        if size is not None:
            cpu = _span(size.cpu_guarantee, size.cpu_limit, format_cpu)
            mem = _span(size.mem_guarantee, size.mem_limit, format_bytes)
            out["size"] = f"{size.slug}, cpu {cpu}, memory {mem} " + _why(
                "size" in options, _default_group(catalog, groups, "size", size.slug)
            )
        out["gpu"] = (
            f"{gpu.slug}, {gpu.count} x {gpu.resource} "
            + _why("gpu" in options, _default_group(catalog, groups, "gpu", gpu.slug))
            if gpu is not None
            else "none"
        )
    if record:
        names = {gid: name for name, gid in record.get("posix_groups") or ()}
        gids = [f"{names.get(g, '?')} {g}" for g in [record["gid"], *record["supplemental_gids"]]]
        out["identity"] = (
            f"uid {record['uid']}, gid {record['gid']}, groups {', '.join(gids)} "
            f"(from the {record.get('source') or 'directory'} directory)"
        )
    nb = next(c for c in pod["spec"]["containers"] if c.get("name") == "notebook")
    env = {e["name"]: e.get("value") for e in nb.get("env") or []}
    out["home"] = env.get("HOME", "-")
    volumes = {v["name"]: v for v in pod["spec"].get("volumes") or []}
    out["mounts"] = [
        f"{m['mountPath']} <- {_source(volumes.get(m['name'], {}), m)}"
        for m in nb.get("volumeMounts") or []
    ]
    return out


def _source(volume: Mapping[str, Any], mount: Mapping[str, Any]) -> str:
    sub = f":{mount['subPath']}" if mount.get("subPath") else ""
    ro = " (read-only)" if mount.get("readOnly") else ""
    if "persistentVolumeClaim" in volume:
        return f"pvc {volume['persistentVolumeClaim']['claimName']}{sub}{ro}"
    if "nfs" in volume:
        return f"nfs {volume['nfs']['server']}:{volume['nfs']['path']}{sub}{ro}"
    for kind in ("emptyDir", "secret", "configMap", "hostPath", "projected", "csi"):
        if kind in volume:
            return f"{kind} {volume['name']}{sub}{ro}"
    return f"{volume.get('name', mount['name'])}{sub}{ro}"
