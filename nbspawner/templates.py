"""The one template language of nbspawner's settings: ``{key}`` fields and nothing else.

Storage paths (``/home/{username}``, ``/exp/{group}``, a PVC's ``{home_relative}``) are the
templates. A template knows a fixed set of keys: no attribute or index access, no format specs,
no conversions (``{username.__class__}`` is refused when the configuration is loaded); ``{{``
and ``}}`` stand for braces. Values are substituted as they are, so they must already be safe
path segments (the storage builders check what they substitute).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from .errors import ConfigError


def template_keys(template: str, allowed: frozenset[str], setting: str) -> frozenset[str]:
    """Return the keys ``template`` uses; ConfigError unless every field is a bare allowed key.

    ``{username}`` is fine; ``{username.__class__}``, ``{0}``, ``{}``, ``{uid:>8}``,
    ``{home!r}`` and unknown keys are refused, as are unbalanced braces.
    """
    if not isinstance(template, str):
        raise ConfigError(f"{setting} must be a string")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        raise ConfigError(f"{setting} has unbalanced braces '{{' or '}}'") from None
    allowed_text = ", ".join("{" + k + "}" for k in sorted(allowed))
    keys = set()
    for _literal, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed:
            raise ConfigError(
                f"{setting} uses the template field {{{name}}}, which is not allowed "
                f"(allowed: {allowed_text}; no attribute or index access)"
            )
        if spec or conversion:
            raise ConfigError(
                f"{setting} uses a format spec or conversion in {{{name}}}; "
                "only plain fields like {username} are allowed"
            )
        keys.add(name)
    return frozenset(keys)


def render_template(template: str, values: Mapping[str, str], setting: str) -> str:
    """Substitute ``values`` into ``template`` without ``str.format`` (so no attribute or
    index lookup can ever run).

    The template must already have passed :func:`template_keys`; values must already be
    checked (see :func:`_record_values`).
    """
    out = []
    for literal, name, _spec, _conversion in string.Formatter().parse(template):
        out.append(literal)
        if name is not None:
            if name not in values:
                raise ConfigError(f"{setting}: the template field {{{name}}} has no value here")
            out.append(values[name])
    return "".join(out)


def literal_prefix(template: str) -> str:
    """The directory a rendered template can never leave: the text before the first field,
    cut at its last "/" (``/exp/{group}/raw`` -> ``/exp``; ``{home}`` -> ``""``)."""
    if "{" not in template:
        return template
    head = template.split("{", 1)[0]
    return head.rsplit("/", 1)[0] if "/" in head else ""
