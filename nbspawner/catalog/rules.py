"""The semantic checks the schema cannot express (slugs, groups, sizes, GPUs, defaults)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from .images import ImageRules
from .model import DEFAULT_MAX_GPUS, EVERYONE, NO_GPU
from .schema import _SLUGGED_SECTIONS, location
from .values import _LABEL_VALUE_RE, _check_label_key, parse_quantity

# ---------------------------------------------------------------------------
# Semantic checks
# ---------------------------------------------------------------------------


class _Checker(ImageRules):
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
        for i, image in images:
            self._check_placement(["images", i], image)
        for i, size in sizes:
            self._check_placement(["sizes", i], size)
        self._check_placement_conflicts(images, sizes, gpus)
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
        self._check_placement(base, gpu)

    def _check_placement(self, base: list[Any], entry: Mapping[str, Any]) -> None:
        """node_selector labels and tolerations of an image, a size or a GPU option."""
        for key, value in entry.get("node_selector", {}).items():
            problem = _check_label_key(key)
            if problem:
                self.error([*base, "node_selector", key], problem)
            elif not _LABEL_VALUE_RE.match(value):
                self.error([*base, "node_selector", key], f"{value!r} is not a valid label value")
        for j, toleration in enumerate(entry.get("tolerations", [])):
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

    def _check_placement_conflicts(self, images: list, sizes: list, gpus: list) -> None:
        """An image, a size and a GPU option offered together must not ask for one node label
        with two values, nor both set an affinity (the pod could be placed nowhere, or one
        would silently win)."""
        reported: set[tuple[Any, ...]] = set()
        for i, image in images:
            offered_sizes = [
                (j, s)
                for j, s in sizes
                if image.get("sizes") is None or s["slug"] in image["sizes"]
            ] or [(None, {})]
            offered_gpus = [
                (k, g) for k, g in gpus if image.get("gpus") is None or g["slug"] in image["gpus"]
            ] or [(None, {})]
            for j, size in offered_sizes:
                for k, gpu in [*offered_gpus, (None, {})]:
                    parts = [("images", i, image), ("sizes", j, size), ("gpus", k, gpu)]
                    seen: dict[str, tuple[str, Any, str]] = {}
                    for section, index, entry in parts:
                        for key, value in (entry.get("node_selector") or {}).items():
                            if key in seen and seen[key][2] != value:
                                first = seen[key]
                                token = (first[0], first[1], section, index, key)
                                if token not in reported:
                                    reported.add(token)
                                    self.error(
                                        [section, index, "node_selector", key],
                                        f"{value!r} conflicts with {first[2]!r} for the same "
                                        f"label in {location(self.data, [first[0], first[1]])}, "
                                        "which is offered with it: no node could match both",
                                    )
                            seen.setdefault(key, (section, index, value))
                    with_affinity = [(sec, idx) for sec, idx, e in parts[:2] if e.get("affinity")]
                    if len(with_affinity) == 2:
                        token = ("affinity", i, j)
                        if token not in reported:
                            reported.add(token)
                            self.error(
                                ["sizes", j, "affinity"],
                                "is set here and on "
                                f"{location(self.data, ['images', i])}, which is offered with "
                                "it: set the affinity in one place",
                            )

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
