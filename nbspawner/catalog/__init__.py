"""The image catalog: load and validate one YAML file into immutable objects.

The catalog says what users may run: **images**, named **sizes** (CPU/memory), **GPU** options,
**who may use what** (``allowed_groups``) and a **default per group**. The format is documented in
the JSON Schema shipped with the package (``nbspawner/schemas/catalog.schema.json``, usable by
editors for completion) and in ``docs/reference/catalog.md``.

Validation runs in two passes and reports *every* problem at once:

1. the JSON Schema (types, required keys, unknown keys are refused);
2. semantic checks the schema cannot express: duplicate slugs, Kubernetes quantities,
   limit below guarantee, GPU count above ``max_gpus``, image references, volume types
   (``hostPath`` is always refused), slugs referenced by ``defaults`` and ``profiles``...

Each problem is a ``(location, message)`` pair whose location names the entry and the field,
e.g. ``images[2] (slug 'rstudio').image``. Errors raise :class:`~nbspawner.errors.CatalogError`;
warnings (a group in ``defaults`` that no ``allowed_groups`` names, a ``:latest`` tag...) are kept
on :attr:`Catalog.warnings` and printed by ``nbspawner catalog check``.

:class:`CatalogFile` re-reads the file when it changes (hot reload) and keeps the last good
catalog when an edit is invalid.
"""

from __future__ import annotations

from .load import check_file, format_report, load, load_data, loads, validate
from .model import (
    CATALOG_VERSION,
    DEFAULT_MAX_GPUS,
    EVERYONE,
    GPU,
    IDE_DEFAULT_URLS,
    NO_GPU,
    Catalog,
    Combination,
    Default,
    Image,
    Security,
    Size,
    plain,
)
from .rules import default_entries
from .schema import catalog_schema, location
from .values import check_image_reference, format_bytes, format_cpu, parse_quantity
from .watch import CatalogFile, current_catalog

__all__ = [
    "CATALOG_VERSION",
    "DEFAULT_MAX_GPUS",
    "EVERYONE",
    "GPU",
    "IDE_DEFAULT_URLS",
    "NO_GPU",
    "Catalog",
    "CatalogFile",
    "Combination",
    "Default",
    "Image",
    "Security",
    "Size",
    "catalog_schema",
    "check_file",
    "check_image_reference",
    "current_catalog",
    "default_entries",
    "format_bytes",
    "format_cpu",
    "format_report",
    "load",
    "load_data",
    "loads",
    "location",
    "parse_quantity",
    "plain",
    "validate",
]
