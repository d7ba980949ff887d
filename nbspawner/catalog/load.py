"""Loading a catalog: YAML -> schema -> semantic checks -> objects; reports."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import CatalogError
from ..yamlload import YAMLFileError, load_yaml
from .model import (
    DEFAULT_MAX_GPUS,
    EVERYONE,
    GPU,
    IDE_DEFAULT_URLS,
    Catalog,
    Combination,
    Default,
    Image,
    Security,
    Size,
    _frozen,
)
from .rules import _Checker, default_entries
from .schema import _schema_problems
from .values import parse_quantity


def load(path: str | os.PathLike[str]) -> Catalog:
    """Read, parse and validate a catalog file; raise :class:`CatalogError` listing every problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(
            f"Catalog file {path} does not exist. Is the file mounted "
            "(z2jh hub.extraFiles / hub.extraVolumeMounts) and the path setting correct?",
            [("(file)", "file not found")],
        ) from None
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(
            f"Catalog file {path} cannot be read: {e}", [("(file)", f"cannot be read: {e}")]
        ) from None
    return loads(text, source=str(path))


def loads(text: str, *, source: str = "<inline>") -> Catalog:
    """Parse and validate catalog YAML text."""
    try:
        data = load_yaml(text, source=f"Catalog {source}")
    except YAMLFileError as e:
        where = e.where or "(file)"
        raise CatalogError(
            f"Catalog {source} is not valid YAML: {where}: {e.problem}", [(where, e.problem)]
        ) from None
    return load_data(data, source=source)


def load_data(data: Any, *, source: str = "<inline>") -> Catalog:
    """Validate already-parsed catalog data (e.g. given inline in ``hub.config``)."""
    errors, warnings = validate(data)
    if errors:
        raise CatalogError(_summary(source, errors), errors)
    return _build(data, source=source, warnings=tuple(warnings))


def validate(data: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return ``(errors, warnings)``, each a list of ``(location, message)``, for catalog data.

    Schema problems come first; the semantic checks then run on every entry the schema found
    no problem in, so one pass reports as much as possible.
    """
    errors, broken = _schema_problems(data)
    if not isinstance(data, Mapping):
        return errors, []
    checker = _Checker(data, broken)
    checker.run()
    return errors + [p for p in checker.errors if p not in errors], checker.warnings


def _summary(source: str, errors: Sequence[tuple[str, str]]) -> str:
    shown = "; ".join(f"{loc}: {msg}" for loc, msg in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    count = f"{len(errors)} problem" + ("s" if len(errors) != 1 else "")
    return f"Catalog {source} is invalid ({count}): {shown}{more}"


# ---------------------------------------------------------------------------
# Building the objects
# ---------------------------------------------------------------------------


def _groups(value: list[str] | None) -> frozenset[str] | None:
    if not value or EVERYONE in value:
        return None
    return frozenset(value)


def _placement(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The node-pool fields an image or a size may carry, read-only."""
    return {
        "node_selector": _frozen(entry.get("node_selector", {})),
        "tolerations": tuple(_frozen(t) for t in entry.get("tolerations", [])),
        "affinity": _frozen(entry.get("affinity", {})),
    }


def _build(
    data: Mapping[str, Any], *, source: str, warnings: tuple[tuple[str, str], ...]
) -> Catalog:
    images = []
    for entry in data["images"]:
        security = entry.get("security", {})
        deprecated = entry.get("deprecated", False)
        ide = entry.get("ide", "jupyterlab")
        images.append(
            Image(
                slug=entry["slug"],
                display_name=entry["display_name"],
                image=entry["image"],
                description=entry.get("description", ""),
                labels=_frozen(entry.get("labels", {})),
                hidden=entry.get("hidden", False),
                deprecated=bool(deprecated),
                deprecation_message=deprecated if isinstance(deprecated, str) else "",
                ide=ide,
                default_url=entry.get("default_url", IDE_DEFAULT_URLS[ide]),
                cmd=tuple(entry["cmd"]) if entry.get("cmd") else None,
                env=_frozen(entry.get("env", {})),
                volumes=tuple(_frozen(v) for v in entry.get("volumes", [])),
                volume_mounts=tuple(_frozen(m) for m in entry.get("volume_mounts", [])),
                allowed_groups=_groups(entry.get("allowed_groups")),
                sizes=tuple(entry["sizes"]) if entry.get("sizes") is not None else None,
                gpus=tuple(entry["gpus"]) if entry.get("gpus") is not None else None,
                security=Security(
                    needs_writable_run=security.get("needs_writable_run", False),
                    extra_supplemental_gids=tuple(security.get("extra_supplemental_gids", ())),
                    has_shell=security.get("has_shell", True),
                    read_only_root=security.get("read_only_root", False),
                ),
                **_placement(entry),
                image_pull_policy=entry.get("image_pull_policy"),
                image_pull_secrets=tuple(entry.get("image_pull_secrets", ())),
                service_account=entry.get("service_account"),
            )
        )

    def cpu(v: Any) -> float | None:
        return None if v is None else float(parse_quantity(v))

    def mem(v: Any) -> int | None:
        return None if v is None else int(parse_quantity(v))

    sizes = [
        Size(
            slug=e["slug"],
            display_name=e["display_name"],
            description=e.get("description", ""),
            cpu_guarantee=cpu(e.get("cpu_guarantee")),
            cpu_limit=cpu(e.get("cpu_limit")),
            mem_guarantee=mem(e.get("mem_guarantee")),
            mem_limit=mem(e.get("mem_limit")),
            allowed_groups=_groups(e.get("allowed_groups")),
            **_placement(e),
        )
        for e in data.get("sizes", [])
    ]
    gpus = [
        GPU(
            slug=e["slug"],
            display_name=e["display_name"],
            resource=e["resource"],
            count=e.get("count", 1),
            description=e.get("description", ""),
            node_selector=_frozen(e.get("node_selector", {})),
            tolerations=tuple(_frozen(t) for t in e.get("tolerations", [])),
            allowed_groups=_groups(e.get("allowed_groups")),
        )
        for e in data.get("gpus", [])
    ]
    defaults = [
        Default(
            group=g,
            image=d.get("image"),
            size=d.get("size"),
            gpu=d.get("gpu"),
            profile=d.get("profile"),
        )
        for _, g, d in default_entries(data.get("defaults", {}))
    ]
    profiles = [
        Combination(
            slug=e["slug"],
            display_name=e["display_name"],
            image=e["image"],
            description=e.get("description", ""),
            size=e.get("size"),
            gpu=e.get("gpu"),
            allowed_groups=_groups(e.get("allowed_groups")),
        )
        for e in data.get("profiles", [])
    ]
    return Catalog(
        images=tuple(images),
        sizes=tuple(sizes),
        gpus=tuple(gpus),
        defaults=tuple(defaults),
        profiles=tuple(profiles),
        mode=data.get("mode", "choices"),
        max_gpus=data.get("max_gpus", DEFAULT_MAX_GPUS),
        version=data["version"],
        warnings=warnings,
        source=source,
    )


# ---------------------------------------------------------------------------
# Reports for `nbspawner catalog check`
# ---------------------------------------------------------------------------


def format_report(
    source: str,
    errors: Sequence[tuple[str, str]] = (),
    warnings: Sequence[tuple[str, str]] = (),
    catalog: Catalog | None = None,
) -> str:
    """Human-readable result of a check, one problem per line."""

    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    lines = []
    if errors:
        head = f"{source}: INVALID, {plural(len(errors), 'error')}"
        if warnings:
            head += f", {plural(len(warnings), 'warning')}"
        lines.append(head)
    else:
        head = f"{source}: OK"
        if catalog is not None:
            head += (
                f" ({plural(len(catalog.images), 'image')}, {plural(len(catalog.sizes), 'size')}, "
                f"{plural(len(catalog.gpus), 'GPU option')}, mode {catalog.mode})"
            )
        if warnings:
            head += f", {plural(len(warnings), 'warning')}"
        lines.append(head)
    lines.extend(f"  ERROR    {loc}: {msg}" for loc, msg in errors)
    lines.extend(f"  WARNING  {loc}: {msg}" for loc, msg in warnings)
    return "\n".join(lines)


def check_file(path: str | os.PathLike[str]) -> tuple[bool, str]:
    """Validate a catalog file for the CLI: ``(ok, report text)``. Never raises CatalogError."""
    try:
        catalog = load(path)
    except CatalogError as e:
        return False, format_report(str(path), e.problems)
    return True, format_report(str(path), (), catalog.warnings, catalog)
