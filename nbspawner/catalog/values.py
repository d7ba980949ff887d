"""Kubernetes quantities, image references, label keys and template fields in the catalog."""

from __future__ import annotations

import re
import string
from decimal import Decimal, InvalidOperation
from typing import Any

from .model import KUBESPAWNER_TEMPLATE_FIELDS

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
