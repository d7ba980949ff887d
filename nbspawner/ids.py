"""Numeric ids (uid, gid) exactly as the directory or the admin wrote them.

An id is an ``int`` (not a ``bool``, not a ``float``) or a string of ASCII decimal digits
without a leading zero, at most 10 of them (ids are 32-bit). Everything else is refused, never
reinterpreted: ``02001`` (YAML's octal 1025), ``33:21`` (YAML's base-60 2001), ``0x7d1``,
``2_001``, ``+2001``, ``" 2001"``, ``2001.0``, ``true`` and fullwidth digits (which Python's
``int()`` would happily read) all name a different number than the admin meant, or none.
"""

from __future__ import annotations

import re
from typing import Any

from .yamlload import SpelledInt

#: an id in text: ASCII digits only, no sign, no leading zero, at most 10 digits
ID_TEXT_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,9})\Z", re.ASCII)
#: a negative id in text (refused by range, not by spelling, so the message can say so)
NEGATIVE_TEXT_RE = re.compile(r"\A-[1-9][0-9]{0,9}\Z", re.ASCII)
#: the largest value a 32-bit id field holds
ID_FIELD_MAX = 2**32 - 1


def shown(value: Any, limit: int = 40) -> str:
    """A value for a message: quoted like ``repr``, one line, cut after ``limit`` characters."""
    text = repr(value)
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def id_problem(value: Any) -> str | None:
    """Why ``value`` is not a plain decimal id, or ``None`` when it is one."""
    if isinstance(value, bool):
        return f"{shown(value)} is a boolean, not an id"
    if isinstance(value, SpelledInt):
        return (
            f"{shown(value.text)} is not a plain decimal integer (YAML reads it as {int(value)}); "
            "write the id in decimal digits without a leading zero"
        )
    if isinstance(value, int):
        return None
    if isinstance(value, float):
        return f"{shown(value)} is a number with a fraction part, not an id"
    if isinstance(value, str):
        if ID_TEXT_RE.match(value) or NEGATIVE_TEXT_RE.match(value):
            return None
        if len(value) > 10 and value.isascii() and value.isdigit():
            return f"{shown(value)} has {len(value)} digits, more than any 32-bit id"
        return f"{shown(value)} is not a plain decimal integer"
    return f"a {type(value).__name__} is not an id"


def to_id(value: Any) -> int:
    """``value`` as an int; ``ValueError`` with :func:`id_problem`'s sentence otherwise."""
    problem = id_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return int(value)
