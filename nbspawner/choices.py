"""The user's choice, checked and resolved: what ``user_options`` may select, and what it did.

:func:`check_user_options` refuses, with a 4xx and one readable sentence, a profile, image,
size or GPU that does not exist or that the user's groups may not use, and any attempt to set
a spawner setting through ``user_options`` (spawn form and REST API alike).
:func:`resolve_selection` returns the :class:`Selection`: the catalog entries behind the
choice, defaults filled in exactly as kubespawner fills them, and the profile list it was
checked against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .catalog import (
    GPU,
    NO_GPU,
    Catalog,
    Combination,
    Image,
    Size,
)
from .errors import ForbiddenChoice
from .profiles import ALLOWED_OVERRIDE_KEYS, GPU_OPTION, META, OPTION_NAMES, SIZE_OPTION, SLUG_RE


@lru_cache(maxsize=1)
def _spawner_trait_names() -> frozenset[str]:
    """KubeSpawner's configurable names: a user option named like one is an attempt to set it."""
    try:
        from kubespawner import KubeSpawner
    except ImportError:  # pragma: no cover - kubespawner is a runtime dependency
        return ALLOWED_OVERRIDE_KEYS | {"uid", "gid", "fs_gid", "supplemental_gids", "privileged"}
    return frozenset(KubeSpawner.class_trait_names())


def _shown(value: str, noun: str) -> str:
    """Quote a user-supplied slug only if it looks like one (never echo arbitrary input)."""
    if isinstance(value, str) and SLUG_RE.match(value):
        return f"the {noun} '{value}'"
    return f"that {noun}"


def _refuse(log_message: str, user_message: str, status: int) -> ForbiddenChoice:
    reason = "forbidden_choice" if status == 403 else "invalid_choice"
    return ForbiddenChoice(log_message, user_message, status=status, reason=reason)


def _exists(catalog: Catalog | None, kind: str, slug: str) -> bool | None:
    if catalog is None:
        return None
    if kind == GPU_OPTION:
        return slug == NO_GPU or catalog.gpu(slug) is not None
    if kind == SIZE_OPTION:
        return catalog.size(slug) is not None
    if kind == "profile":
        return catalog.profile(slug) is not None
    return catalog.image(slug) is not None


def _profile_noun(profile_list: Sequence[Mapping[str, Any]]) -> str:
    meta = profile_list[0].get(META, {}) if profile_list else {}
    return "profile" if "profile" in meta else "image"


def _find_profile(profile_list: Sequence[Mapping[str, Any]], slug: Any) -> Mapping[str, Any] | None:
    if slug in (None, ""):
        return next((p for p in profile_list if p.get("default")), profile_list[0])
    for profile in profile_list:
        if profile.get("slug") == slug:
            return profile
    return None


def check_user_options(
    profile_list: Sequence[Mapping[str, Any]],
    user_options: Any,
    *,
    catalog: Catalog | None = None,
    strict: bool = False,
) -> None:
    """Refuse user options that name anything outside this user's ``profile_list``.

    ``user_options`` come from the spawn form or, unchecked, from the REST API. Raises
    :class:`~nbspawner.errors.ForbiddenChoice` (403 for something the user may not use, 400 for
    a malformed request or something that does not exist) when:

    - the profile list is empty (the user's groups allow nothing);
    - ``profile`` names a profile that is not in the list: another group's image or a
      nonexistent one get the same answer, so users cannot probe for other groups' images;
    - a ``size``/``gpu`` value is not among that profile's choices;
    - any ``<option>--unlisted-choice`` key (nbspawner never enables free-form choices);
    - a key named like a KubeSpawner setting (``image``, ``uid``, ``cpu_limit``...) or a raw
      form field (``profile-option-...``); other unknown keys are ignored unless ``strict``.

    With ``catalog`` the 400/403 split and the log message say whether a refused size or GPU
    exists at all.
    """
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise _refuse(
            f"user_options is {type(user_options).__name__}, not a mapping",
            "The server options were not understood.",
            400,
        )
    if not profile_list:
        raise _refuse(
            "the user's groups allow no image of the catalog (empty profile list)",
            "No server environment is available to your account. Please contact your "
            "administrator.",
            403,
        )
    noun = _profile_noun(profile_list)
    slug = user_options.get("profile")
    if slug not in (None, "") and not isinstance(slug, str):
        raise _refuse(
            f"user_options profile is a {type(slug).__name__}, not a string",
            f"The {noun} must be given by name.",
            400,
        )
    profile = _find_profile(profile_list, slug)
    if profile is None:
        exists = _exists(catalog, noun, slug)
        detail = {
            True: "it exists in the catalog, but the user's groups do not allow it",
            False: "it does not exist in the catalog",
            None: "",
        }[exists]
        raise _refuse(
            f"user_options name the {noun} {slug[:80]!r}, which is not in the user's profile list"
            + (f" ({detail})" if detail else ""),
            f"You may not use {_shown(slug, noun)}.",
            403,
        )
    profile_slug = profile.get("slug", "")
    options = profile.get("profile_options") or {}
    for key, value in user_options.items():
        if key == "profile":
            continue
        if not isinstance(key, str):
            raise _refuse(
                "user_options has a non-string key", "The server options were not understood.", 400
            )
        if key.endswith("--unlisted-choice"):
            raise _refuse(
                f"user_options contain {key[:80]!r}; free-form (unlisted) choices are never enabled",
                "Only the offered choices can be used.",
                400,
            )
        if key in options or key in OPTION_NAMES:
            if value in (None, ""):
                continue  # kubespawner uses the default choice
            kind_noun = "GPU" if key == GPU_OPTION else key
            if not isinstance(value, str):
                raise _refuse(
                    f"user_options {key!r} is a {type(value).__name__}, not a string",
                    f"The {kind_noun} must be given by name.",
                    400,
                )
            choices = options[key].get("choices", {}) if key in options else {}
            if value in choices:
                continue
            if key == GPU_OPTION and value == NO_GPU and key not in options:
                continue  # "no GPU" where no GPU is offered anyway
            exists = _exists(catalog, key, value)
            if exists is False:
                raise _refuse(
                    f"user_options ask for the {kind_noun} {value[:80]!r}, which does not exist "
                    "in the catalog",
                    f"There is no {kind_noun} '{value}'."
                    if SLUG_RE.match(value)
                    else f"There is no such {kind_noun}.",
                    400,
                )
            raise _refuse(
                f"user_options ask for the {kind_noun} {value[:80]!r} with the {noun} "
                f"{profile_slug!r}; it is not among the choices the user's groups allow there",
                f"You may not use {_shown(value, kind_noun)} with {_shown(profile_slug, noun)}.",
                403,
            )
        if strict or key.startswith("profile-option-") or key in _spawner_trait_names():
            raise _refuse(
                f"user_options try to set {key[:80]!r} directly",
                f"The option '{key}' cannot be set."
                if SLUG_RE.match(key.replace("_", "-"))
                else "These server options cannot be set.",
                400,
            )


# ---------------------------------------------------------------------------
# What was chosen
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Selection:
    """The catalog entries behind a user's (validated) choice."""

    #: the kubespawner profile slug (the image slug in choices mode)
    profile: str
    image: Image
    size: Size | None
    gpu: GPU | None
    #: the catalog profile in combinations mode
    combination: Combination | None = None
    #: the user's profile list the choice was made from (kubespawner applies it from the same)
    profile_list: Sequence[Mapping[str, Any]] = field(default=(), repr=False, compare=False)


def _default_choice(option: Mapping[str, Any]) -> str | None:
    choices = option.get("choices") or {}
    for slug, choice in choices.items():
        if choice.get("default"):
            return slug
    return next(iter(choices), None)


def resolve_selection(
    catalog: Catalog, profile_list: Sequence[Mapping[str, Any]], user_options: Any
) -> Selection:
    """Validate ``user_options`` (like :func:`check_user_options`) and return what they select,
    defaults filled in exactly as kubespawner fills them.

    Use the same ``catalog`` object that built ``profile_list``. The spawner calls this in
    ``load_user_options()`` and reads e.g. ``selection.image.security.needs_writable_run``.
    """
    check_user_options(profile_list, user_options, catalog=catalog)
    user_options = user_options or {}
    profile = _find_profile(profile_list, user_options.get("profile"))
    assert profile is not None  # check_user_options refused it otherwise
    meta = profile.get(META) or {}

    def stale() -> Exception:  # built only when raised
        return _refuse(
            f"profile {profile.get('slug')!r} is not from catalog {catalog.source} "
            "(reloaded meanwhile?)",
            "The list of environments changed while you were choosing. Please reload the page "
            "and choose again.",
            409,
        )

    if "profile" in meta:
        combination = catalog.profile(meta["profile"])
        image = catalog.image(meta["image"])
        size = catalog.size(meta["size"]) if meta.get("size") else None
        gpu = catalog.gpu(meta["gpu"]) if meta.get("gpu") not in (None, NO_GPU) else None
        if combination is None or image is None:
            raise stale()
        return Selection(
            profile=combination.slug,
            image=image,
            size=size,
            gpu=gpu,
            combination=combination,
            profile_list=profile_list,
        )
    image = catalog.image(meta.get("image", ""))
    if image is None:
        raise stale()
    options = profile.get("profile_options") or {}
    chosen: dict[str, str | None] = {}
    for name in OPTION_NAMES:
        option = options.get(name)
        if option is None:
            chosen[name] = None
            continue
        chosen[name] = user_options.get(name) or _default_choice(option)
    size = catalog.size(chosen[SIZE_OPTION]) if chosen[SIZE_OPTION] else None
    gpu_slug = chosen[GPU_OPTION]
    gpu = catalog.gpu(gpu_slug) if gpu_slug and gpu_slug != NO_GPU else None
    if (chosen[SIZE_OPTION] and size is None) or (gpu_slug not in (None, NO_GPU) and gpu is None):
        raise stale()
    return Selection(profile=image.slug, image=image, size=size, gpu=gpu, profile_list=profile_list)


def image_environment(
    selection: Selection | None, home: str, url_prefix: str, isolate_user_site: bool = True
) -> dict[str, str]:
    """Environment every notebook gets from its choice.

    ``NB_PREFIX`` is the server's URL prefix, which Kubeflow images' start scripts pass to
    Jupyter as its base URL. ``PYTHONUSERBASE`` (with ``NBSpawner.isolate_user_site``) gives
    each catalog image its own user site under the home, so ``pip install --user`` for one
    image never shadows another image's packages; an image whose catalog ``env`` sets it wins.
    """
    env = {"NB_PREFIX": url_prefix.rstrip("/") + "/"}
    if selection is not None and isolate_user_site and "PYTHONUSERBASE" not in selection.image.env:
        env["PYTHONUSERBASE"] = f"{home.rstrip('/')}/.local/images/{selection.image.slug}"
    return env
