"""Pure: (catalog, the user's group names) -> kubespawner ``profile_list``.

:func:`build_profile_list` returns only what the user's groups allow, with the user's default
marked ``default``. In ``mode: choices`` there is one profile per image, and sizes and GPU
options are kubespawner ``profile_options`` (``size``, ``gpu``); in ``mode: combinations`` each
catalog profile is one kubespawner profile with everything fixed.

Every profile dict carries an ``"nbspawner"`` key (``{"image": slug}``, or for combinations
``{"profile", "image", "size", "gpu"}``) and every choice one too (``{"size": slug}``,
``{"gpu": slug}``); kubespawner ignores them. :func:`nbspawner.choices.resolve_selection` uses them to tell the
spawner, after ``load_user_options()``, which :class:`~nbspawner.catalog.Image` (and so which
``security`` needs), :class:`~nbspawner.catalog.Size` and :class:`~nbspawner.catalog.GPU` were
chosen.

What the overrides may contain is a fixed list (:data:`ALLOWED_OVERRIDE_KEYS`): image, resources,
GPU limits, node selector, tolerations, environment, default_url, cmd and the catalog's safe
volumes. Never uid, gid, privileged, run_as_*, security contexts or host volumes.

A user's list is built anew for every spawn and form render from the (immutable) catalog:
plain dicts, which kubespawner may deep-copy and change as it likes. The lists hold everything
kubespawner 7.1 would otherwise add in place: a slug on every profile, one default profile, one
default choice per option and ``unlisted_choice: {enabled: false}``.

List-valued overrides are callables kubespawner calls with the spawner (:class:`ListOverride`,
for ``cmd``). Volumes, volume mounts and tolerations are :class:`MergeList` objects:
kubespawner *replaces* list traits with an override, which would drop the volumes (the home
directory!) and tolerations (the user-node taint) that z2jh configures. A ``MergeList`` is a list
(it serialises to JSON as one) that kubespawner calls, because it is callable, with the spawner,
and that returns the spawner's own list with the catalog's entries merged in.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .catalog import (
    GPU,
    NO_GPU,
    Catalog,
    Image,
    Size,
)
from .overrides import ListOverride, MergeList, NodeTerms, merged_overrides

#: the key of nbspawner's own data in profile and choice dicts
META = "nbspawner"
SIZE_OPTION = "size"
GPU_OPTION = "gpu"
OPTION_NAMES = (SIZE_OPTION, GPU_OPTION)
#: the only kubespawner traits a catalog profile or choice may override
ALLOWED_OVERRIDE_KEYS = frozenset(
    {
        "image",
        "default_url",
        "cmd",
        "environment",
        "volumes",
        "volume_mounts",
        "cpu_guarantee",
        "cpu_limit",
        "mem_guarantee",
        "mem_limit",
        "extra_resource_limits",
        "node_selector",
        "tolerations",
        "node_affinity_required",
        "node_affinity_preferred",
        "image_pull_policy",
        "image_pull_secrets",
        "service_account",
    }
)
NO_GPU_DISPLAY_NAME = "No GPU"

SLUG_RE = re.compile(r"\A[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")


# ---------------------------------------------------------------------------
# Building the pieces
# ---------------------------------------------------------------------------


def placement_override(entry: Any) -> dict[str, Any]:
    """The node pool of an image, a size or a GPU option, as kubespawner overrides."""
    override: dict[str, Any] = {}
    if entry.node_selector:
        override["node_selector"] = dict(entry.node_selector)
    if entry.tolerations:
        override["tolerations"] = MergeList("tolerations", entry.tolerations)
    node = (getattr(entry, "affinity", None) or {}).get("nodeAffinity") or {}
    required = (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    )
    if required:
        override["node_affinity_required"] = NodeTerms("node_affinity_required", required)
    preferred = node.get("preferredDuringSchedulingIgnoredDuringExecution")
    if preferred:
        override["node_affinity_preferred"] = MergeList("node_affinity_preferred", preferred)
    return override


def image_override(image: Image) -> dict[str, Any]:
    override: dict[str, Any] = {"image": image.image}
    if image.default_url:
        override["default_url"] = image.default_url
    if image.cmd:
        override["cmd"] = ListOverride("cmd", image.cmd)
    if image.env:
        override["environment"] = dict(image.env)
    if image.volumes:
        override["volumes"] = MergeList("volumes", image.volumes)
    if image.volume_mounts:
        override["volume_mounts"] = MergeList("volume_mounts", image.volume_mounts)
    if image.image_pull_policy:
        override["image_pull_policy"] = image.image_pull_policy
    if image.image_pull_secrets:
        secrets = [{"name": name} for name in image.image_pull_secrets]
        override["image_pull_secrets"] = MergeList("image_pull_secrets", secrets)
    if image.service_account:
        override["service_account"] = image.service_account
    return {**override, **placement_override(image)}


def size_override(size: Size) -> dict[str, Any]:
    # every key, None included: a size without a limit must also clear a limit the spawner
    # was configured with (z2jh singleuser.cpu.limit), or the pod may get a limit below our request
    return {
        "cpu_guarantee": size.cpu_guarantee,
        "cpu_limit": size.cpu_limit,
        "mem_guarantee": size.mem_guarantee,
        "mem_limit": size.mem_limit,
        **placement_override(size),
    }


def gpu_override(gpu: GPU | None, all_resources: Iterable[str]) -> dict[str, Any]:
    """Limits for ``gpu`` and removal (None) of every other GPU resource of the catalog.

    kubespawner merges dict overrides into the spawner's dicts and deletes keys set to None,
    so a spawner reused after a failed GPU start does not keep the old GPU limit.
    """
    limits: dict[str, Any] = dict.fromkeys(sorted(all_resources))
    override: dict[str, Any] = {}
    if gpu is not None:
        limits[gpu.resource] = str(gpu.count)
        override.update(placement_override(gpu))
    if limits:
        override["extra_resource_limits"] = limits
    return override


def _check_override(override: Mapping[str, Any]) -> None:
    unexpected = set(override) - ALLOWED_OVERRIDE_KEYS
    if unexpected:  # a programming error, never the catalog's: refuse to hand it to kubespawner
        raise RuntimeError(f"refusing to override {sorted(unexpected)} from the catalog")


def image_description(image: Image) -> str:
    parts = []
    if image.deprecated:
        parts.append(
            f"Deprecated: {image.deprecation_message}"
            if image.deprecation_message
            else "Deprecated."
        )
    if image.description:
        parts.append(image.description)
    if image.labels:
        parts.append("(" + ", ".join(f"{k}: {v}" for k, v in image.labels.items()) + ")")
    return " ".join(parts)


def shown_text(text: str) -> str:
    """Catalog text as it goes into the profile list: HTML-escaped, once.

    kubespawner renders ``display_name`` and ``description`` into the spawn form with Jinja
    without autoescaping, so catalog text is HTML there; ``<img src=x onerror=...>`` in a
    display name would run in every user's browser. Every piece of catalog text in the profile
    list passes through here (slugs, which the schema keeps to ``[a-z0-9-]``, stay as they are).
    The template puts these texts in element content only, where ``<``, ``>`` and ``&`` are
    what matters, so quotes are left readable (``Kubeflow's``); a test renders kubespawner's
    own template with attribute-breaking payloads to keep that true.
    """
    return html.escape(text, quote=False)


def image_display_name(image: Image) -> str:
    return f"{image.display_name} (deprecated)" if image.deprecated else image.display_name


def _defaults(catalog: Catalog, groups: frozenset[str], field_name: str) -> list[str]:
    """The catalog's defaults of ``field_name`` for these groups, in the catalog's order."""
    return [
        getattr(d, field_name)
        for d in catalog.defaults
        if getattr(d, field_name) and (d.group == "*" or d.group in groups)
    ]


def _pick(slugs: Sequence[str], preferred: Sequence[str]) -> str:
    return next((p for p in preferred if p in slugs), slugs[0])


def _checked(override: dict[str, Any]) -> dict[str, Any]:
    _check_override(override)
    return override


def _choice(display_name: str, override: dict[str, Any], kind: str, slug: str, default: bool):
    choice: dict[str, Any] = {
        "display_name": shown_text(display_name),
        "kubespawner_override": _checked(override),
        META: {kind: slug},
    }
    if default:
        choice["default"] = True
    return choice


def _option(
    display_name: str, choices: dict[str, Any], preferred: Sequence[str], fallback: str | None
):
    """A profile option offering ``choices`` (slug -> (choice dict, the same as the default))."""
    offered = list(choices)
    default = next((p for p in preferred if p in offered), None)
    if default is None:
        default = fallback if fallback in offered else offered[0]
    return {
        "display_name": shown_text(display_name),
        "choices": {slug: pair[slug == default] for slug, pair in choices.items()},
        # present so kubespawner's setdefault() finds it: never enabled
        "unlisted_choice": {"enabled": False},
    }


def _pair(display_name: str, override: dict[str, Any], kind: str, slug: str) -> tuple[dict, dict]:
    """A choice and its default twin, built once per list (kubespawner deep-copies the list)."""
    return (
        _choice(display_name, override, kind, slug, False),
        _choice(display_name, override, kind, slug, True),
    )


def _choices_profiles(catalog: Catalog, groups: frozenset[str]) -> list[dict[str, Any]]:
    """``mode: choices``: one profile per image, sizes and GPUs as its profile options."""
    resources = {g.resource for g in catalog.gpus}
    sizes = {
        s.slug: _pair(s.display_name, size_override(s), "size", s.slug)
        for s in catalog.sizes
        if s.allows(groups)
    }
    gpus = {NO_GPU: _pair(NO_GPU_DISPLAY_NAME, gpu_override(None, resources), "gpu", NO_GPU)}
    gpus.update(
        (g.slug, _pair(g.display_name, gpu_override(g, resources), "gpu", g.slug))
        for g in catalog.gpus
        if g.allows(groups)
    )
    size_defaults = _defaults(catalog, groups, "size")
    gpu_defaults = _defaults(catalog, groups, "gpu")
    profiles = []
    for image in catalog.images:
        if image.hidden or not image.allows(groups):
            continue
        options: dict[str, Any] = {}
        if catalog.sizes:
            offered = {k: v for k, v in sizes.items() if image.sizes is None or k in image.sizes}
            if not offered:
                continue  # nothing this user may run the image with
            options[SIZE_OPTION] = _option("Size", offered, size_defaults, None)
        offered = {k: v for k, v in gpus.items() if image.gpus is None or k in image.gpus}
        if not offered:
            continue  # a GPU-only image and no GPU this user may use
        if list(offered) != [NO_GPU]:
            options[GPU_OPTION] = _option("GPU", offered, gpu_defaults, NO_GPU)
        profile: dict[str, Any] = {
            "display_name": shown_text(image_display_name(image)),
            "slug": image.slug,
        }
        description = image_description(image)
        if description:
            profile["description"] = shown_text(description)
        profile["kubespawner_override"] = _checked(image_override(image))
        if options:
            profile["profile_options"] = options
        profile[META] = {"image": image.slug}
        profiles.append(profile)
    return profiles


def _combination_profiles(catalog: Catalog, groups: frozenset[str]) -> list[dict[str, Any]]:
    """``mode: combinations``: each catalog profile is one kubespawner profile, all fixed."""
    resources = {g.resource for g in catalog.gpus}
    profiles = []
    for combo in catalog.profiles:
        image = catalog.image(combo.image)
        size = catalog.size(combo.size) if combo.size else None
        gpu = catalog.gpu(combo.gpu) if combo.gpu and combo.gpu != NO_GPU else None
        if image is None or image.hidden or not combo.allows(groups):
            continue  # hidden image, or the profile's own groups
        if not all(e.allows(groups) for e in (image, size, gpu) if e is not None):
            continue
        override = merged_overrides(
            image_override(image),
            size_override(size) if size is not None else {},
            gpu_override(gpu, resources),
        )
        profile: dict[str, Any] = {
            "display_name": shown_text(combo.display_name),
            "slug": combo.slug,
        }
        description = combo.description or image_description(image)
        if description:
            profile["description"] = shown_text(description)
        profile["kubespawner_override"] = _checked(override)
        profile[META] = {
            "profile": combo.slug,
            "image": combo.image,
            "size": combo.size,
            "gpu": combo.gpu or NO_GPU,
        }
        profiles.append(profile)
    return profiles


def build_profile_list(catalog: Catalog, groups: Iterable[str]) -> list[dict[str, Any]]:
    """The kubespawner ``profile_list`` for a user in ``groups``, built anew on every call.

    An empty list means the user may use nothing; the spawner must then refuse to start
    (``check_user_options`` raises for an empty list).
    """
    groups = frozenset(groups)
    if catalog.mode == "combinations":
        profiles = _combination_profiles(catalog, groups)
        preferred = _defaults(catalog, groups, "profile")
    else:
        profiles = _choices_profiles(catalog, groups)
        preferred = _defaults(catalog, groups, "image")
    if profiles:
        default = _pick([p["slug"] for p in profiles], preferred)
        for p in profiles:
            if p["slug"] == default:
                # kubespawner reads the keys in order: "default" right after the slug, as before
                items = list(p.items())
                p.clear()
                p.update(items[:2] + [("default", True)] + items[2:])
    return profiles
