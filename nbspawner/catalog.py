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

import difflib
import json
import logging
import os
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jsonschema

from .errors import CatalogError
from .ids import id_problem
from .metrics import CATALOG_RELOADS
from .paths import RESERVED_VOLUME_PREFIX, mount_path_problem, normalise, relative_path_problem
from .watch import WatchedFile
from .yamlload import YAMLFileError, load_yaml

log = logging.getLogger(__name__)

#: the catalog format version this code understands
CATALOG_VERSION = 1
#: the slug of the implicit "no GPU" choice; no GPU entry may use it
NO_GPU = "none"
#: everyone, in ``allowed_groups`` and as a ``defaults`` key
EVERYONE = "*"
#: jupyter-server-proxy routes opened by each IDE (jupyter-rsession-proxy, jupyter-vscode-proxy)
IDE_DEFAULT_URLS = {
    "jupyterlab": None,
    "rstudio": "/rstudio/",
    "vscode": "/vscode/",
    "command": None,
}
#: default for ``max_gpus`` when the catalog does not set it
DEFAULT_MAX_GPUS = 8
#: volume sources an image may declare; hostPath (the node's filesystem) is never one of them
SAFE_VOLUME_SOURCES = ("configMap", "secret", "emptyDir", "persistentVolumeClaim", "nfs")
#: environment variables JupyterHub, kubespawner or nbspawner's identity handling set
RESERVED_ENV = frozenset(
    {
        "NB_UID",
        "NB_GID",
        "NB_USER",
        "USER",
        "LOGNAME",
        "HOME",
        "MEM_LIMIT",
        "MEM_GUARANTEE",
        "CPU_LIMIT",
        "CPU_GUARANTEE",
        "JUPYTER_IMAGE",
        "JUPYTER_IMAGE_SPEC",
    }
)
RESERVED_ENV_PREFIXES = ("JUPYTERHUB_", "JPY_")
#: files nbspawner's passwd hook mounts; an image may not mount anything over them
#: template fields kubespawner fills in volumes and env values (``{username}``...)
KUBESPAWNER_TEMPLATE_FIELDS = frozenset(
    {
        "userid",
        "unescaped_username",
        "unescaped_servername",
        "hubnamespace",
        "username",
        "servername",
        "user_server",
        "safe_username",
        "safe_servername",
        "safe_user_server",
        "escaped_username",
        "escaped_servername",
        "escaped_user_server",
        "pod_name",
        "pvc_name",
        "namespace",
    }
)
MAX_GID = 2**32 - 2

SCHEMA_RESOURCE = "schemas/catalog.schema.json"


# ---------------------------------------------------------------------------
# Read-only containers
# ---------------------------------------------------------------------------


def _frozen(value: Any) -> Any:
    """YAML data made read-only (the catalog is shared by every spawner of the hub): mappings
    become ``MappingProxyType``, lists tuples. :func:`plain` gives a mutable copy."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """A mutable deep copy of catalog data as plain dicts and lists (what kubespawner gets)."""
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


# ---------------------------------------------------------------------------
# The catalog objects
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Security:
    """What an image needs from the pod to start under a directory UID/GID.

    Plain data: the passwd and pod-security code of nbspawner decides how to provide it.
    """

    #: mount a writable (in-memory emptyDir) ``/run``: s6-overlay images (Kubeflow) refuse to
    #: boot as a UID that does not own ``/run`` (nbspawner also sets the variable s6-overlay
    #: needs to accept a world-writable /run)
    needs_writable_run: bool = False
    #: numeric groups added to the pod's ``supplementalGroups`` (e.g. 100 for docker-stacks'
    #: ``users`` group that owns /opt/conda)
    extra_supplemental_gids: tuple[int, ...] = ()
    #: False for images without ``/bin/sh``: the hub must render /etc/passwd itself
    has_shell: bool = True
    #: with ``needs_writable_run``: the root filesystem is read-only for s6 (S6_READ_ONLY_ROOT=1)
    read_only_root: bool = False


@dataclass(frozen=True, slots=True)
class Image:
    slug: str
    display_name: str
    image: str
    description: str = ""
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    hidden: bool = False
    deprecated: bool = False
    deprecation_message: str = ""
    ide: str = "jupyterlab"
    #: the URL the server opens (``/rstudio/`` for RStudio...); None keeps the spawner's own
    default_url: str | None = None
    #: the container command for ``ide: command``; None keeps the spawner's own
    cmd: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    #: None: everyone
    allowed_groups: frozenset[str] | None = None
    #: size slugs offered with this image (None: all sizes)
    sizes: tuple[str, ...] | None = None
    #: GPU slugs offered with this image, ``"none"`` for "no GPU" (None: no GPU and all GPUs)
    gpus: tuple[str, ...] | None = None
    security: Security = field(default_factory=Security)

    def allows(self, groups: Iterable[str]) -> bool:
        return self.allowed_groups is None or not self.allowed_groups.isdisjoint(groups)


@dataclass(frozen=True, slots=True)
class Size:
    slug: str
    display_name: str
    description: str = ""
    #: CPUs (0.5 for "500m")
    cpu_guarantee: float | None = None
    cpu_limit: float | None = None
    #: bytes ("4Gi" -> 4294967296, "512M" -> 512000000: Kubernetes units, not JupyterHub's)
    mem_guarantee: int | None = None
    mem_limit: int | None = None
    allowed_groups: frozenset[str] | None = None

    def allows(self, groups: Iterable[str]) -> bool:
        return self.allowed_groups is None or not self.allowed_groups.isdisjoint(groups)


@dataclass(frozen=True, slots=True)
class GPU:
    slug: str
    display_name: str
    #: extended resource name: nvidia.com/gpu, amd.com/gpu, nvidia.com/mig-1g.10gb...
    resource: str
    count: int = 1
    description: str = ""
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping[str, Any], ...] = ()
    allowed_groups: frozenset[str] | None = None

    def allows(self, groups: Iterable[str]) -> bool:
        return self.allowed_groups is None or not self.allowed_groups.isdisjoint(groups)


@dataclass(frozen=True, slots=True)
class Default:
    """One ``defaults`` entry: what a member of ``group`` gets preselected."""

    group: str
    image: str | None = None
    size: str | None = None
    gpu: str | None = None
    #: combinations mode
    profile: str | None = None


@dataclass(frozen=True, slots=True)
class Combination:
    """A fixed image + size + GPU profile (``mode: combinations``)."""

    slug: str
    display_name: str
    image: str
    description: str = ""
    size: str | None = None
    gpu: str | None = None
    allowed_groups: frozenset[str] | None = None

    def allows(self, groups: Iterable[str]) -> bool:
        return self.allowed_groups is None or not self.allowed_groups.isdisjoint(groups)


@dataclass(frozen=True, eq=False)
class Catalog:
    """A validated catalog. Immutable; compare catalogs by identity."""

    images: tuple[Image, ...]
    sizes: tuple[Size, ...] = ()
    gpus: tuple[GPU, ...] = ()
    defaults: tuple[Default, ...] = ()
    profiles: tuple[Combination, ...] = ()
    mode: str = "choices"
    max_gpus: int = DEFAULT_MAX_GPUS
    version: int = CATALOG_VERSION
    #: ``(location, message)`` pairs that did not prevent loading
    warnings: tuple[tuple[str, str], ...] = ()
    #: where it came from (a path or ``<inline>``), for log messages
    source: str = "<inline>"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_images", {i.slug: i for i in self.images})
        object.__setattr__(self, "_sizes", {s.slug: s for s in self.sizes})
        object.__setattr__(self, "_gpus", {g.slug: g for g in self.gpus})
        object.__setattr__(self, "_profiles", {p.slug: p for p in self.profiles})

    def image(self, slug: str) -> Image | None:
        return self._images.get(slug)  # type: ignore[attr-defined]

    def size(self, slug: str) -> Size | None:
        return self._sizes.get(slug)  # type: ignore[attr-defined]

    def gpu(self, slug: str) -> GPU | None:
        return self._gpus.get(slug)  # type: ignore[attr-defined]

    def profile(self, slug: str) -> Combination | None:
        return self._profiles.get(slug)  # type: ignore[attr-defined]

    def group_names(self) -> frozenset[str]:
        """Every group name the catalog mentions (allowed_groups and defaults)."""
        names: set[str] = set()
        for entry in (*self.images, *self.sizes, *self.gpus, *self.profiles):
            if entry.allowed_groups:
                names.update(entry.allowed_groups)
        names.update(d.group for d in self.defaults if d.group != EVERYONE)
        return frozenset(names)


# ---------------------------------------------------------------------------
# Kubernetes quantities and names
# ---------------------------------------------------------------------------

_QUANTITY_RE = re.compile(
    r"\A(?P<num>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<bin>Ki|Mi|Gi|Ti|Pi|Ei)|(?P<dec>[numkMGTPE])|(?P<exp>[eE][+-]?\d+))?\Z"
)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}


def parse_quantity(value: Any) -> Decimal:
    """Parse a Kubernetes quantity (``"500m"``, ``2``, ``"1.5"``, ``"4Gi"``, ``"512M"``, ``"1e9"``).

    Raises ``ValueError`` for anything else (``"4GB"``, ``"2 cores"``, booleans).
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{value!r} is not a Kubernetes quantity")
        return Decimal(repr(value))
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    match = _QUANTITY_RE.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match["num"])
    except InvalidOperation:  # pragma: no cover - the regex only lets decimals through
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from None
    if match["bin"]:
        return number * _BINARY[match["bin"]]
    if match["dec"]:
        return number * _DECIMAL[match["dec"]]
    if match["exp"]:
        return number.scaleb(int(match["exp"][1:]))
    return number


def format_bytes(value: int) -> str:
    """4294967296 -> ``4Gi``; 512000000 -> ``512M``; for messages and docs."""
    for suffix, factor in sorted(_BINARY.items(), key=lambda kv: -kv[1]):
        if value >= factor and value % factor == 0:
            return f"{value // factor}{suffix}"
    for suffix in ("E", "P", "T", "G", "M", "k"):
        factor = int(_DECIMAL[suffix])
        if value >= factor and value % factor == 0:
            return f"{value // factor}{suffix}"
    return str(value)


def format_cpu(value: float) -> str:
    return f"{round(value * 1000)}m" if value < 1 else f"{value:g}"


# docker/distribution reference grammar (reference.go), slightly simplified (no IPv6 hosts)
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_RE = re.compile(rf"\A{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*(?::[0-9]+)?\Z")
_PATH_COMPONENT_RE = re.compile(r"\A[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG_RE = re.compile(r"\A[\w][\w.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"\A[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}\Z")


def check_image_reference(ref: str) -> tuple[str | None, str | None]:
    """Return ``(error, warning)`` for an image reference; both None when it is fine."""
    example = "quay.io/jupyter/scipy-notebook:2024-10-07"
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        return f"{ref!r} is not a valid image reference (expected e.g. {example})", None
    name, _, digest = ref.partition("@")
    if digest:
        if not _DIGEST_RE.match(digest):
            return f"{ref!r} has a malformed digest (expected @sha256: and 64 hex digits)", None
        algorithm, _, hexdigits = digest.partition(":")
        if algorithm == "sha256" and len(hexdigits) != 64:
            return f"{ref!r} has a malformed digest (expected @sha256: and 64 hex digits)", None
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG_RE.match(tag):
            return f"{ref!r} has a malformed tag {tag!r} (letters, digits, _ . -; max 128)", None
    components = name.split("/")
    if len(components) > 1 and (
        "." in components[0] or ":" in components[0] or components[0] == "localhost"
    ):
        domain, components = components[0], components[1:]
        if not _DOMAIN_RE.match(domain):
            return f"{ref!r} has a malformed registry host {domain!r}", None
    if not components or not all(_PATH_COMPONENT_RE.match(c) for c in components):
        if any(c != c.lower() for c in components):
            return f"{ref!r} is not a valid image reference: repository names are lowercase", None
        return f"{ref!r} is not a valid image reference (expected e.g. {example})", None
    if len(name) > 255:
        return f"{ref!r} is longer than 255 characters", None
    if tag is None and not digest:
        return (
            f"{ref!r} has no tag or digest; pin a version such as ':2024-10-07' or '@sha256:...'",
            None,
        )
    if tag == "latest" and not digest:
        return None, (
            f"{ref!r} uses the tag 'latest': users get whatever was pushed last and nodes may "
            "cache an old one; pin a version"
        )
    return None, None


_DNS_SUBDOMAIN_RE = re.compile(
    r"\A(?=.{1,253}\Z)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z"
)
_LABEL_NAME_RE = re.compile(r"\A(?=.{1,63}\Z)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?\Z")
_LABEL_VALUE_RE = re.compile(r"\A(?:(?=.{1,63}\Z)[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?\Z")
_ENV_NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.-]*\Z")


def _check_label_key(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and not _DNS_SUBDOMAIN_RE.match(prefix):
        return f"{key!r} is not a valid label key (prefix must be a DNS subdomain)"
    if not _LABEL_NAME_RE.match(name):
        return f"{key!r} is not a valid label key (max 63 of A-Z a-z 0-9 - _ ., alphanumeric ends)"
    return None


def _template_problem(value: str) -> str | None:
    """kubespawner runs str.format over volume and env strings: only its fields may appear."""
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as e:
        return f"{value!r} is not a valid template ({e}); write a literal brace as {{{{ or }}}}"
    unknown = sorted(
        {f for f in fields if f.split(".")[0].split("[")[0] not in KUBESPAWNER_TEMPLATE_FIELDS}
    )
    if unknown:
        return (
            f"{value!r} uses unknown template field(s) {', '.join(unknown)}; kubespawner "
            "expands {username}, {servername}, {user_server}...; write a literal brace as {{ or }}"
        )
    return None


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------


@lru_cache(maxsize=1)
def catalog_schema() -> dict[str, Any]:
    """The catalog's JSON Schema (shipped as ``nbspawner/schemas/catalog.schema.json``)."""
    text = resources.files("nbspawner").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")
    return json.loads(text)


@lru_cache(maxsize=1)
def _validator() -> jsonschema.protocols.Validator:
    schema = catalog_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    # JSON Schema patterns are ECMA-262 regular expressions, where a final "$" matches only at
    # the end; Python's "$" also matches before a trailing newline ("alice\n" would pass)
    strict = jsonschema.validators.extend(cls, {"pattern": _ecma_pattern})
    return strict(schema)


@cache
def _python_regex(pattern: str) -> re.Pattern[str]:
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    return re.compile(pattern)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _python_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


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
# Locations and schema problems
# ---------------------------------------------------------------------------

_SLUGGED_SECTIONS = ("images", "sizes", "gpus", "profiles")


#: a mapping key shown as it is in a location; any other key is shown quoted
_PLAIN_KEY_RE = re.compile(r"\A[A-Za-z0-9_*][A-Za-z0-9_.*/-]*\Z")


def location(data: Any, path: Iterable[Any]) -> str:
    """``["images", 2, "image"]`` -> ``images[2] (slug 'rstudio').image``."""
    out = ""
    path = list(path)
    node = data
    for i, part in enumerate(path):
        if isinstance(part, int):
            out += f"[{part}]"
            if (
                i == 1
                and path[0] in _SLUGGED_SECTIONS
                and isinstance(node, list)
                and part < len(node)
                and isinstance(node[part], Mapping)
                and isinstance(node[part].get("slug"), str)
            ):
                out += f" (slug {node[part]['slug']!r})"
        else:
            text = str(part)
            if not _PLAIN_KEY_RE.match(text):
                # a key that is not plain text is shown quoted (a hostile key stays one line)
                text = f"[{text!r}]" if out else repr(text)
                out += text
            else:
                out += f".{text}" if out else text
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            node = None
    return out or "(top level)"


_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "empty",
}


def _type_name(value: Any) -> str:
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _path_key(path: Iterable[Any]) -> list[tuple[int, int, str]]:
    # document order: list indexes compare as numbers (images[10] after images[2])
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in path]


def _schema_problems(data: Any) -> tuple[list[tuple[str, str]], list[tuple[Any, ...]]]:
    """Schema problems (translated), and the paths where they were found."""
    problems: list[tuple[str, str]] = []
    broken: list[tuple[Any, ...]] = []
    errors = sorted(_validator().iter_errors(data), key=lambda e: _path_key(e.absolute_path))
    for error in errors:
        broken.append(tuple(error.absolute_path))
        for problem in _translate(data, error):
            if problem not in problems:
                problems.append(problem)
    return problems, broken


def _translate(data: Any, error: jsonschema.ValidationError) -> list[tuple[str, str]]:
    path = list(error.absolute_path)
    where = location(data, path)
    kind = error.validator
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    custom = schema.get("x-error-message")
    if kind == "additionalProperties":
        allowed = sorted(schema.get("properties", {}))
        out = []
        extras = [k for k in error.instance if k not in schema.get("properties", {})]
        for key in extras:
            key_loc = location(data, [*path, key])
            if key == "hostPath":
                out.append(
                    (
                        key_loc,
                        "hostPath volumes are refused: they expose the node's filesystem to the user; "
                        f"use one of {', '.join(SAFE_VOLUME_SOURCES)}",
                    )
                )
                continue
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            if hint:
                msg = f"unknown key {key!r} (did you mean {hint[0]!r}?)"
            elif allowed:
                msg = f"unknown key {key!r}; allowed keys: {', '.join(allowed)}"
            else:
                msg = f"unknown key {key!r}"
            out.append((key_loc, msg))
        return out
    if kind == "required":
        missing = re.findall(r"'([^']+)' is a required property", error.message)
        key = missing[0] if missing else error.message
        return [(where, f"missing required key {key!r}")]
    if custom and kind in ("pattern", "format", "minLength", "maxLength"):
        return [
            (where, f"{error.instance!r} {custom}" if isinstance(error.instance, str) else custom)
        ]
    if kind == "type":
        expected = error.validator_value
        expected = expected if isinstance(expected, list) else [expected]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in expected)
        msg = f"must be {names}, not {_type_name(error.instance)}"
        if (
            "string" in expected
            and isinstance(error.instance, (int, float))
            and not isinstance(error.instance, bool)
        ):
            msg += f' (quote it in YAML: "{error.instance}")'
        return [(where, msg)]
    if kind == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return [(where, f"must be one of: {choices} (got {error.instance!r})")]
    if kind == "const":
        if path == ["version"]:
            return [
                (
                    where,
                    f"unsupported catalog version {error.instance!r}; this nbspawner "
                    f"reads version {CATALOG_VERSION}",
                )
            ]
        return [(where, f"must be {error.validator_value!r}")]
    if kind == "minItems":
        if error.validator_value == 1:
            return [(where, "must not be empty")]
        return [(where, f"must have at least {error.validator_value} items")]
    if kind == "minLength" and error.validator_value == 1:
        return [(where, "must not be empty")]
    if kind == "minimum":
        return [(where, f"must be at least {error.validator_value} (got {error.instance!r})")]
    if kind == "maximum":
        return [(where, f"must be at most {error.validator_value} (got {error.instance!r})")]
    if kind == "uniqueItems":
        return [(where, "has duplicate entries")]
    if kind == "pattern":
        return [(where, f"{error.instance!r} does not match {error.validator_value}")]
    return [(where, error.message)]


# ---------------------------------------------------------------------------
# Semantic checks
# ---------------------------------------------------------------------------


class _Checker:
    """Semantic checks on schema-valid data. Fills ``errors`` and ``warnings``."""

    def __init__(self, data: Mapping[str, Any], broken: Sequence[tuple[Any, ...]] = ()) -> None:
        self.data = data
        self.broken = [tuple(p) for p in broken]
        self.errors: list[tuple[str, str]] = []
        self.warnings: list[tuple[str, str]] = []
        mode = data.get("mode", "choices")
        self.mode = mode if mode in ("choices", "combinations") else None
        max_gpus = data.get("max_gpus", DEFAULT_MAX_GPUS)
        self.max_gpus = max_gpus if self._ok(("max_gpus",)) else DEFAULT_MAX_GPUS

    def _ok(self, path: tuple[Any, ...]) -> bool:
        """True when the schema found no problem at, inside or above ``path``."""
        n = len(path)
        return not any(b[:n] == path or path[: len(b)] == b for b in self.broken)

    def error(self, path: Sequence[Any], message: str) -> None:
        self.errors.append((location(self.data, path), message))

    def warn(self, path: Sequence[Any], message: str) -> None:
        self.warnings.append((location(self.data, path), message))

    def _section(self, name: str) -> list[tuple[int, Mapping[str, Any]]]:
        """The entries of a section that the schema accepted, with their indexes."""
        entries = self.data.get(name, [])
        if not isinstance(entries, list):
            return []
        return [
            (i, e) for i, e in enumerate(entries) if isinstance(e, Mapping) and self._ok((name, i))
        ]

    def _slugs(self, name: str) -> set[str]:
        """Every string slug of a section, valid entries or not (avoids cascades of
        "there is no image X" when image X has a problem of its own)."""
        entries = self.data.get(name, [])
        if not isinstance(entries, list):
            return set()
        return {
            e["slug"] for e in entries if isinstance(e, Mapping) and isinstance(e.get("slug"), str)
        }

    def run(self) -> None:
        images = self._section("images")
        sizes = self._section("sizes")
        gpus = self._section("gpus")
        profiles = self._section("profiles")
        self._unique_slugs("images", images)
        self._unique_slugs("sizes", sizes)
        self._unique_slugs("gpus", gpus)
        self._unique_slugs("profiles", profiles)
        self.image_slugs = self._slugs("images")
        self.size_slugs = self._slugs("sizes")
        self.gpu_slugs = self._slugs("gpus")
        self.profile_slugs = self._slugs("profiles")
        for i, gpu in gpus:
            if gpu["slug"] == NO_GPU:
                self.error(
                    ["gpus", i, "slug"], f"{NO_GPU!r} is reserved for the implicit 'no GPU' choice"
                )
        self.by_slug = {
            name: {e["slug"]: e for _, e in entries}
            for name, entries in (
                ("images", images),
                ("sizes", sizes),
                ("gpus", gpus),
                ("profiles", profiles),
            )
        }
        for section, entries in (
            ("images", images),
            ("sizes", sizes),
            ("gpus", gpus),
            ("profiles", profiles),
        ):
            for i, entry in entries:
                self._check_groups([section, i, "allowed_groups"], entry.get("allowed_groups"))
        for i, image in images:
            self._check_image(i, image)
        for i, size in sizes:
            self._check_size(i, size)
        for i, gpu in gpus:
            self._check_gpu(i, gpu)
        if self.mode is not None:
            self._check_mode(profiles)
            if isinstance(self.data.get("defaults", {}), (Mapping, list)):
                self._check_defaults()

    def _unique_slugs(self, section: str, entries: list[tuple[int, Mapping[str, Any]]]) -> None:
        first: dict[str, int] = {}
        for i, entry in entries:
            slug = entry["slug"]
            if slug in first:
                self.error(
                    [section, i, "slug"],
                    f"duplicate slug {slug!r} (also used by {section}[{first[slug]}])",
                )
            else:
                first[slug] = i

    def _check_groups(self, path: list[Any], groups: list[str] | None) -> None:
        if groups is None:
            return
        if groups == []:
            self.warn(
                path,
                f"an empty list allows everyone; write ['{EVERYONE}'] to say so, "
                "or use hidden: true to offer the entry to nobody",
            )
        elif EVERYONE in groups and len(groups) > 1:
            self.warn(
                path, f"'{EVERYONE}' already allows everyone; the other groups have no effect"
            )

    # -- images ------------------------------------------------------------

    def _check_image(self, i: int, image: Mapping[str, Any]) -> None:
        base = ["images", i]
        err, warn = check_image_reference(image["image"])
        if err:
            self.error([*base, "image"], err)
        if warn:
            self.warn([*base, "image"], warn)
        ide = image.get("ide", "jupyterlab")
        cmd = image.get("cmd")
        if ide == "command" and not cmd:
            self.error([*base, "cmd"], "ide: command needs cmd, the container command as a list")
        if ide != "command" and cmd is not None:
            self.error(
                [*base, "cmd"], f"cmd is only used with ide: command (this image has ide: {ide})"
            )
        if image.get("hidden") and image.get("deprecated"):
            self.warn(
                [*base, "deprecated"],
                "a hidden image is never offered, so deprecated has no effect",
            )
        for key, value in image.get("labels", {}).items():
            if not isinstance(value, str):  # pragma: no cover - the schema already refuses it
                self.error([*base, "labels", key], "must be a string")
            elif not (key.isprintable() and value.isprintable()):
                self.error(
                    [*base, "labels", key],
                    f"label {key!r}: {value!r} is shown on one line; no control characters",
                )
        self._check_env([*base, "env"], image.get("env", {}))
        volume_names = self._check_volumes([*base, "volumes"], image.get("volumes", []))
        self._check_mounts([*base, "volume_mounts"], image.get("volume_mounts", []), volume_names)
        for key, known, noun in (
            ("sizes", self.size_slugs, "size"),
            ("gpus", self.gpu_slugs, "GPU"),
        ):
            listed = image.get(key)
            if listed is None:
                continue
            valid = known | {NO_GPU} if key == "gpus" else known
            for j, slug in enumerate(listed):
                if slug not in valid:
                    self.error([*base, key, j], f"there is no {noun} {slug!r}")
        if image.get("sizes") == [] and self.size_slugs:
            self.error(
                [*base, "sizes"],
                "an empty list offers the image with no size at all; "
                "omit the key to offer every size",
            )
        security = image.get("security", {})
        for j, gid in enumerate(security.get("extra_supplemental_gids", [])):
            problem = id_problem(gid)
            if problem is not None:
                # JSON Schema's "integer" admits 100.0, and YAML reads 0100 as 64
                self.error([*base, "security", "extra_supplemental_gids", j], problem)
            elif gid == 0:
                self.warn(
                    [*base, "security", "extra_supplemental_gids", j],
                    "gid 0 gives users the root group's access to every file owned by group 0, "
                    "on shared filesystems too; prefer fixing the image's group ownership",
                )

    def _check_env(self, path: list[Any], env: Mapping[str, Any]) -> None:
        for key, value in env.items():
            if not _ENV_NAME_RE.match(key):
                self.error([*path, key], f"{key!r} is not a valid environment variable name")
            elif key in RESERVED_ENV or key.startswith(RESERVED_ENV_PREFIXES):
                self.error(
                    [*path, key],
                    "is set by JupyterHub/nbspawner for every user and cannot be set per image",
                )
            if isinstance(value, str):
                problem = _template_problem(value)
                if problem:
                    self.error([*path, key], problem)

    def _walk_strings(self, value: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, Mapping):
            for k, v in value.items():
                yield from self._walk_strings(v, [*path, k])
        elif isinstance(value, list):
            for j, v in enumerate(value):
                yield from self._walk_strings(v, [*path, j])

    def _check_volumes(self, path: list[Any], volumes: list[Mapping[str, Any]]) -> set[str]:
        names: dict[str, int] = {}
        for j, volume in enumerate(volumes):
            vpath = [*path, j]
            name = volume["name"]
            if name in names:
                self.error([*vpath, "name"], f"duplicate volume name {name!r}")
            names.setdefault(name, j)
            if name.startswith(RESERVED_VOLUME_PREFIX):
                self.error(
                    [*vpath, "name"],
                    f"names starting with {RESERVED_VOLUME_PREFIX!r} "
                    "are reserved for nbspawner's own volumes",
                )
            for source in ("configMap", "secret"):
                for k, item in enumerate((volume.get(source) or {}).get("items") or ()):
                    problem = relative_path_problem(item.get("path"), "path")
                    if problem:
                        self.error([*vpath, source, "items", k, "path"], problem)
            sources = [k for k in SAFE_VOLUME_SOURCES if k in volume]
            if len(sources) != 1:
                self.error(
                    vpath,
                    f"needs exactly one source ({', '.join(SAFE_VOLUME_SOURCES)}), "
                    f"found {len(sources)}",
                )
            empty_dir = volume.get("emptyDir") or {}
            if "sizeLimit" in empty_dir:
                self._quantity(
                    [*vpath, "emptyDir", "sizeLimit"], empty_dir["sizeLimit"], memory=True
                )
            nfs = volume.get("nfs")
            if nfs is not None and not nfs["path"].startswith("/"):
                self.error([*vpath, "nfs", "path"], "must be an absolute path")
            for spath, text in self._walk_strings(volume, vpath):
                problem = _template_problem(text)
                if problem:
                    self.error(spath, problem)
        return set(names)

    def _check_mounts(
        self, path: list[Any], mounts: list[Mapping[str, Any]], volumes: set[str]
    ) -> None:
        seen: dict[str, str] = {}
        for j, mount in enumerate(mounts):
            mpath = [*path, j]
            mount_path = normalise(mount["mountPath"])
            if mount_path in seen:
                self.error(
                    [*mpath, "mountPath"],
                    f"two mounts at {mount_path!r} ({seen[mount_path]!r} and "
                    f"{mount['mountPath']!r})",
                )
            seen.setdefault(mount_path, mount["mountPath"])
            problem = mount_path_problem(mount["mountPath"])
            if problem:
                self.error([*mpath, "mountPath"], problem)
            if "subPath" in mount:
                problem = relative_path_problem(mount["subPath"], "subPath")
                if problem:
                    self.error([*mpath, "subPath"], problem)
            if mount["name"].startswith(RESERVED_VOLUME_PREFIX):
                self.error(
                    [*mpath, "name"],
                    f"mounts nbspawner's own volume {mount['name']!r}; volumes whose names "
                    f"start with {RESERVED_VOLUME_PREFIX!r} are mounted by nbspawner only",
                )
                continue
            if mount["name"] not in volumes:
                self.warn(
                    [*mpath, "name"],
                    f"volume {mount['name']!r} is not declared by this "
                    "image; it must exist in the spawner's own volumes",
                )
            for spath, text in self._walk_strings(mount, mpath):
                problem = _template_problem(text)
                if problem:
                    self.error(spath, problem)

    # -- sizes and GPUs ---------------------------------------------------

    def _quantity(self, path: list[Any], value: Any, *, memory: bool) -> Decimal | None:
        try:
            number = parse_quantity(value)
        except ValueError:
            example = "4Gi, 512Mi, 8G" if memory else "500m, 2, 1.5"
            self.error(path, f"{value!r} is not a Kubernetes quantity (e.g. {example})")
            return None
        if number < 0:
            self.error(path, f"{value!r} is negative")
            return None
        if memory and number != number.to_integral_value():
            self.error(
                path, f"{value!r} is not a whole number of bytes (use Ki, Mi, Gi; 'm' means milli)"
            )
            return None
        return number

    def _check_size(self, i: int, size: Mapping[str, Any]) -> None:
        base = ["sizes", i]
        for kind, memory in (("cpu", False), ("mem", True)):
            guarantee = limit = None
            if f"{kind}_guarantee" in size:
                guarantee = self._quantity(
                    [*base, f"{kind}_guarantee"], size[f"{kind}_guarantee"], memory=memory
                )
            if f"{kind}_limit" in size:
                limit = self._quantity(
                    [*base, f"{kind}_limit"], size[f"{kind}_limit"], memory=memory
                )
                if limit == 0:
                    self.error(
                        [*base, f"{kind}_limit"], "must be more than 0 (omit it for no limit)"
                    )
            if guarantee is not None and limit is not None and 0 < limit < guarantee:
                self.error(
                    [*base, f"{kind}_limit"],
                    f"{size[f'{kind}_limit']!r} is below {kind}_guarantee "
                    f"{size[f'{kind}_guarantee']!r}; Kubernetes refuses a limit below the request",
                )

    def _check_gpu(self, i: int, gpu: Mapping[str, Any]) -> None:
        base = ["gpus", i]
        if gpu.get("count", 1) > self.max_gpus:
            self.error([*base, "count"], f"{gpu['count']} GPUs is above max_gpus ({self.max_gpus})")
        for key, value in gpu.get("node_selector", {}).items():
            problem = _check_label_key(key)
            if problem:
                self.error([*base, "node_selector", key], problem)
            elif not _LABEL_VALUE_RE.match(value):
                self.error([*base, "node_selector", key], f"{value!r} is not a valid label value")
        for j, toleration in enumerate(gpu.get("tolerations", [])):
            tpath = [*base, "tolerations", j]
            if toleration.get("operator", "Equal") == "Exists" and toleration.get("value"):
                self.error([*tpath, "value"], "must be empty when operator is Exists")
            if "key" not in toleration and toleration.get("operator", "Equal") != "Exists":
                self.error(tpath, "a toleration without key must use operator: Exists")
            if "key" in toleration and toleration["key"]:
                problem = _check_label_key(toleration["key"])
                if problem:
                    self.error([*tpath, "key"], problem)
            if "tolerationSeconds" in toleration and toleration.get("effect") != "NoExecute":
                self.error([*tpath, "tolerationSeconds"], "is only used with effect: NoExecute")

    # -- modes and defaults -----------------------------------------------

    def _check_mode(self, profiles: list[tuple[int, Mapping[str, Any]]]) -> None:
        if self.mode == "choices":
            if "profiles" in self.data:
                self.error(["profiles"], "is only used with mode: combinations")
            return
        if not self.data.get("profiles"):
            self.error(["mode"], "mode: combinations needs a non-empty profiles list")
            return
        for i, profile in profiles:
            base = ["profiles", i]
            image = self.by_slug["images"].get(profile["image"])
            if profile["image"] not in self.image_slugs:
                self.error([*base, "image"], f"there is no image {profile['image']!r}")
            size = profile.get("size")
            if size is not None and size not in self.size_slugs:
                self.error([*base, "size"], f"there is no size {size!r}")
            gpu = profile.get("gpu")
            if gpu is not None and gpu != NO_GPU and gpu not in self.gpu_slugs:
                self.error([*base, "gpu"], f"there is no GPU {gpu!r}")
            if image is None:
                continue
            if image.get("hidden"):
                self.warn(
                    [*base, "image"],
                    f"image {profile['image']!r} is hidden, so this profile is never offered",
                )
            if size is not None and image.get("sizes") is not None and size not in image["sizes"]:
                self.error(
                    [*base, "size"], f"image {profile['image']!r} is not offered with size {size!r}"
                )
            if gpu is not None and image.get("gpus") is not None and gpu not in image["gpus"]:
                self.error(
                    [*base, "gpu"], f"image {profile['image']!r} is not offered with GPU {gpu!r}"
                )
            groups = self._effective_groups(
                profile.get("allowed_groups"),
                image.get("allowed_groups"),
                self.by_slug["sizes"].get(size, {}).get("allowed_groups"),
                self.by_slug["gpus"].get(gpu, {}).get("allowed_groups"),
            )
            if groups is not None and not groups:
                self.warn(
                    base,
                    "no group is allowed the profile, its image, size and GPU at "
                    "once, so nobody is offered this profile",
                )

    @staticmethod
    def _effective_groups(*lists: list[str] | None) -> set[str] | None:
        result: set[str] | None = None
        for groups in lists:
            if not groups or EVERYONE in groups:
                continue
            result = set(groups) if result is None else result & set(groups)
        return result

    def _allows(self, entry: Mapping[str, Any], group: str) -> bool:
        groups = entry.get("allowed_groups")
        if not groups or EVERYONE in groups:
            return True
        return group != EVERYONE and group in groups

    def _check_defaults(self) -> None:
        defaults = self.data.get("defaults", {})
        mentioned: set[str] = set()
        for section in _SLUGGED_SECTIONS:
            for _, entry in self._section(section):
                mentioned.update(entry.get("allowed_groups") or [])
        if isinstance(defaults, Mapping):
            written = [g for g in defaults if g != EVERYONE]
            if written != sorted(written):
                self.warn(
                    ["defaults"],
                    "in a mapping, defaults take effect in group-name order ('*' last): "
                    f"{', '.join(sorted(written))}; helm sorts map keys, so file order cannot "
                    "survive into the hub. Write defaults as a list of entries with a group: "
                    "key to choose the order",
                )
        groups_seen: dict[str, Any] = {}
        for where, group, default in default_entries(defaults):
            base = ["defaults", where]
            if not isinstance(default, Mapping) or not self._ok(("defaults", where)):
                continue
            if isinstance(defaults, Mapping) and "group" in default:
                self.error([*base, "group"], "group: belongs to the list form of defaults")
                continue
            if group in groups_seen:
                self.error(
                    [*base, "group"],
                    f"group {group!r} already has a default (defaults[{groups_seen[group]}])",
                )
            groups_seen.setdefault(group, where)
            if group != EVERYONE and group not in mentioned:
                self.warn(
                    base,
                    f"no allowed_groups names the group {group!r}; its members only "
                    "see the entries open to everyone (a typo?)",
                )
            if self.mode == "combinations":
                for key in ("image", "size", "gpu"):
                    if key in default:
                        self.error(
                            [*base, key],
                            "with mode: combinations a default names a profile (profile: SLUG)",
                        )
                if "profile" in default:
                    self._check_default_slug(base, group, "profile", default["profile"])
                continue
            if "profile" in default:
                self.error([*base, "profile"], "profile is only used with mode: combinations")
            image = None
            if "image" in default:
                image = self._check_default_slug(base, group, "image", default["image"])
            if "size" in default:
                self._check_default_slug(base, group, "size", default["size"])
                if (
                    image is not None
                    and image.get("sizes") is not None
                    and default["size"] not in image["sizes"]
                ):
                    self.error(
                        [*base, "size"],
                        f"image {default['image']!r} is not offered with size {default['size']!r}",
                    )
            if "gpu" in default:
                if default["gpu"] != NO_GPU:
                    self._check_default_slug(base, group, "gpu", default["gpu"])
                if (
                    image is not None
                    and image.get("gpus") is not None
                    and default["gpu"] not in image["gpus"]
                ):
                    self.error(
                        [*base, "gpu"],
                        f"image {default['image']!r} is not offered with GPU {default['gpu']!r}",
                    )

    def _check_default_slug(self, base: list[Any], group: str, key: str, slug: str):
        section = {"image": "images", "size": "sizes", "gpu": "gpus", "profile": "profiles"}[key]
        noun = {"gpu": "GPU"}.get(key, key)
        entry = self.by_slug[section].get(slug)
        if entry is None:
            if slug not in self._slugs(section):  # else: the entry has problems of its own
                self.error([*base, key], f"there is no {noun} {slug!r}")
            return None
        if entry.get("hidden"):
            self.error([*base, key], f"{noun} {slug!r} is hidden, so it cannot be a default")
        elif entry.get("deprecated"):
            self.warn([*base, key], f"{noun} {slug!r} is deprecated")
        if not self._allows(entry, group):
            if group == EVERYONE:
                self.warn(
                    [*base, key],
                    f"{noun} {slug!r} is not open to everyone; users who may "
                    f"not use it get their first allowed {noun} instead",
                )
            else:
                self.error(
                    [*base, key],
                    f"the group {group!r} may not use the {noun} {slug!r} (see its allowed_groups)",
                )
        return entry


def default_entries(defaults: Any) -> list[tuple[Any, str, Mapping[str, Any]]]:
    """``defaults`` in precedence order, as ``(location key, group, entry)``.

    A list (``[{group: gpu-users, image: ...}, ...]``) keeps its order. A mapping
    (``{gpu-users: {...}, physics: {...}}``) is taken in group-name order: z2jh writes
    ``hub.config`` with helm's ``toYaml``, which sorts map keys, so file order would not survive
    the trip into the hub and the CLI would show another default than the hub gives. Either
    way ``'*'`` (everyone) comes last.
    """
    if isinstance(defaults, Mapping):
        pairs = [(group, group, d) for group, d in sorted(defaults.items(), key=lambda kv: kv[0])]
    elif isinstance(defaults, list):
        pairs = [
            (i, d.get("group"), d)
            for i, d in enumerate(defaults)
            if isinstance(d, Mapping) and isinstance(d.get("group"), str)
        ]
    else:
        return []
    return [p for p in pairs if p[1] != EVERYONE] + [p for p in pairs if p[1] == EVERYONE]


# ---------------------------------------------------------------------------
# Building the objects
# ---------------------------------------------------------------------------


def _groups(value: list[str] | None) -> frozenset[str] | None:
    if not value or EVERYONE in value:
        return None
    return frozenset(value)


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
