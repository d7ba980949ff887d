"""The catalog file, hot-reloaded, and the catalog a spawn uses."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CatalogError
from ..metrics import CATALOG_RELOADS
from ..watch import WatchedFile
from .load import load, load_data
from .model import Catalog

# ---------------------------------------------------------------------------
# Hot reload
# ---------------------------------------------------------------------------


class CatalogFile(WatchedFile[Catalog]):
    """The catalog file, hot-reloaded (see :class:`nbspawner.watch.WatchedFile`).

    An edit that fails validation keeps the last good catalog, logs a warning with every problem
    and counts ``nbspawner_catalog_reloads{outcome="invalid"}``. If the *first* load fails,
    :meth:`get` raises :class:`CatalogError`: the hub must refuse to spawn rather than offer an
    empty or default environment.
    """

    invalid_error = CatalogError

    def parse(self, path: Path) -> Catalog:
        return load(path)

    def counted(self, outcome: str) -> None:
        CATALOG_RELOADS.labels(outcome=outcome).inc()

    def installed(self, catalog: Catalog, first: bool) -> None:
        if not first:
            self.log.info(
                "Catalog %s reloaded: %d images, %d sizes, %d GPU options",
                self.path,
                len(catalog.images),
                len(catalog.sizes),
                len(catalog.gpus),
            )
        for loc, msg in catalog.warnings:
            self.log.warning("Catalog %s: warning: %s: %s", self.path, loc, msg)

    def vanished(self) -> None:
        self.log.warning(
            "Catalog %s disappeared; still using the previous catalog. Is the volume still "
            "mounted?",
            self.path,
        )

    def rejected(self, error: Exception) -> None:
        problems = "\n".join(f"  {loc}: {msg}" for loc, msg in getattr(error, "problems", ()))
        self.log.warning(
            "Catalog %s was changed but is invalid; still using the previous catalog. "
            "Fix these problems (check with `nbspawner catalog check %s`):\n%s",
            self.path,
            self.path,
            problems,
        )


# One watcher per catalog file: a hot reload is noticed and parsed once, not once per user.
_WATCHED: dict[tuple[str, float], CatalogFile] = {}


@lru_cache(maxsize=8)
def _inline(text: str) -> Catalog:
    return load_data(json.loads(text), source="NBSpawner.catalog")


async def current_catalog(
    path: str, check_interval: float, inline: Mapping[str, Any], *, logger: Any = None
) -> Catalog:
    """The catalog now: the file at ``path`` (hot-reloaded), else the inline one."""
    if not path:
        return _inline(json.dumps(inline, sort_keys=True, default=repr))
    key = (path, check_interval)
    if key not in _WATCHED:
        _WATCHED[key] = CatalogFile(path, check_interval=check_interval, logger=logger)
    return await _WATCHED[key].aget()
