"""The catalog's objects: immutable dataclasses, its constants and read-only data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

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
    #: the node pool the image runs on (merged with the size's and the GPU's)
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    image_pull_policy: str | None = None
    image_pull_secrets: tuple[str, ...] = ()
    service_account: str | None = None

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
    node_selector: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

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
