"""The catalog's JSON Schema and readable locations for its problems."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import jsonschema

from .model import CATALOG_VERSION, SAFE_VOLUME_SOURCES, SCHEMA_RESOURCE


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
