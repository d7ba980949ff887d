"""Turning raw directory values into typed record fields, and the rules every backend shares.

The parse helpers raise :class:`~nbspawner.errors.InvalidRecord` naming the field and the
*kind* of problem, never the value: ``"abc"`` for a uidNumber is a refusal, not a crash.
:func:`username_problem` is the one rule for names no directory can hold; :func:`read_secret`
the one way a backend reads a password or token.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from ..errors import InvalidRecord
from ..ids import id_problem, shown
from ..yamlload import SpelledInt


def _single(value: Any, field_name: str, source: str) -> Any:
    """Unwrap single-element lists (LDAP and ldapauthenticator return lists)."""
    if isinstance(value, (list, tuple)):
        if len(value) != 1:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} has {len(value)} values, expected exactly 1",
                field=field_name,
                kind="multi-valued" if value else "missing",
                source=source,
            )
        value = value[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} is not valid UTF-8",
                field=field_name,
                kind="not utf-8",
                source=source,
            ) from None
    return value


def parse_int(value: Any, field_name: str, source: str) -> int:
    """``"1234"``, ``1234``, ``["1234"]`` -> 1234; anything else is an InvalidRecord.

    An id is taken exactly as written (:func:`nbspawner.ids.id_problem`): leading zeros, YAML's
    octal/base-60 spellings, signs, underscores, floats, booleans and non-ASCII digits are
    refused, never reinterpreted.
    """
    if value is None:
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is missing",
            field=field_name,
            kind="missing",
            source=source,
        )
    value = _single(value, field_name, source)
    problem = id_problem(value)
    if problem is None:
        return int(value)
    raise InvalidRecord(
        f"{source}: {field_name}: {problem}",
        field=field_name,
        kind=_id_kind(value),
        source=source,
    )


def _id_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, SpelledInt):
        return "not plain decimal"
    if isinstance(value, (str, int)):
        return "not an integer"
    return f"a {type(value).__name__}, not an integer"


def parse_str(value: Any, field_name: str, source: str, *, required: bool = True) -> str:
    if value is None or value == [] or value == "":
        if required:
            raise InvalidRecord(
                f"{source}: attribute for {field_name} is missing",
                field=field_name,
                kind="missing",
                source=source,
            )
        return ""
    value = _single(value, field_name, source)
    if not isinstance(value, str):
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is a {type(value).__name__}, not a string",
            field=field_name,
            kind=f"a {type(value).__name__}",
            source=source,
        )
    return value


def _items(value: Any, field_name: str, source: str, scalars: tuple[type, ...]) -> list[Any]:
    """``value`` as a list: nothing is ``[]``, one scalar is ``[value]``, a mapping is refused."""
    if value is None:
        return []
    if isinstance(value, scalars):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise InvalidRecord(
            f"{source}: attribute for {field_name} is not a list",
            field=field_name,
            kind="not a list",
            source=source,
        )
    return list(value)


def parse_str_list(value: Any, field_name: str, source: str) -> tuple[str, ...]:
    """A list of strings (or one string, or nothing) -> tuple of strings."""
    items = _items(value, field_name, source, (str, bytes))
    return tuple(parse_str(v, field_name, source) for v in items)


def parse_int_list(value: Any, field_name: str, source: str) -> tuple[int, ...]:
    """A list of ids (or one id, or nothing) -> tuple of ints."""
    items = _items(value, field_name, source, (str, bytes, int))
    return tuple(parse_int([v], field_name, source) for v in items)


def get_path(data: Mapping[str, Any] | None, path: str) -> Any:
    """Read ``a.b.c`` from nested dicts; ``None`` when any step is missing.

    A key that itself contains dots can be read by giving the exact key (tried first).
    """
    if data is None:
        return None
    if path in data:
        return data[path]
    current: Any = data
    for part in path.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return None
    return current


def group_fields(
    gid: int,
    groups: Iterable[str],
    group_gids: Mapping[str, int],
    supplemental_gids: Any = None,
    *,
    source: str = "directory",
) -> dict[str, Any]:
    """The group fields of a :class:`UserRecord`, built the same way by every backend.

    - ``groups``: the names given plus the primary group's name when ``group_gids`` knows a
      group with gid ``gid`` (as ``id`` shows it), sorted and de-duplicated;
    - ``posix_groups``: ``(name, gid)`` of those names whose gid is known, sorted by name;
    - ``supplemental_gids``: the explicit list when given (as the backend read it: parsed and
      validated here, errors naming ``source``), otherwise the known gids of the groups other
      than the primary one; sorted and de-duplicated.

    Sorting makes records from different backends (and LDAP's arbitrary result order) compare
    equal, so the cache and the tests see one canonical form.
    """
    names = set(groups)
    names.update(name for name, group_gid in group_gids.items() if group_gid == gid)
    ordered = tuple(sorted(names))
    posix = tuple((name, group_gids[name]) for name in ordered if name in group_gids)
    if supplemental_gids is None:
        supplemental = tuple(sorted({g for _, g in posix if g != gid}))
    else:
        explicit = parse_int_list(supplemental_gids, "supplemental_gids", source)
        supplemental = tuple(sorted(set(explicit)))
    return {"groups": ordered, "supplemental_gids": supplemental, "posix_groups": posix}


#: the longest username any backend is asked about. Real ones are far shorter (``useradd``
#: allows 32 characters, LDAP sites rarely more than 64); a longer one is refused before any
#: query or request is sent
MAX_USERNAME_LENGTH = 256

#: characters no directory username can contain: control characters (Unicode category Cc: C0,
#: DEL, C1), the line and paragraph separators (Zl, Zp) and unpaired surrogates (Cs, which
#: cannot be encoded as UTF-8 for a URL or an LDAP filter)
_IMPOSSIBLE_USERNAME_CHAR = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

#: names that are path segments with a meaning of their own: sent in a URL (HTTPDirectory),
#: a server or proxy would resolve them into another path, bearer token included. Compared
#: after NFKC normalisation, as some servers normalise Unicode: fullwidth ``．．`` (U+FF0E) and
#: the two-dot leader ``‥`` (U+2025) become ``..``
_DOT_SEGMENTS = frozenset({".", ".."})


def username_problem(username: Any, max_length: int = MAX_USERNAME_LENGTH) -> str | None:
    """Why ``username`` cannot be anybody's name in any directory, or ``None``.

    The rule every backend shares: empty, longer than ``max_length``
    (:data:`MAX_USERNAME_LENGTH`), containing a control character, a line or paragraph
    separator or an unpaired surrogate, or the path segment ``.``/``..`` (also as spelled by
    Unicode compatibility characters). ``/``, ``?``, ``%``, ``*``, parentheses and the like are
    *possible*: the backends escape them (URL quoting with ``safe=""``, RFC 4515 filter
    escaping) and the directory answers "no such user".
    """
    if not isinstance(username, str):
        return f"is not a string (a {type(username).__name__})"
    if not username:
        return "is empty"
    if len(username) > max_length:
        return f"is longer than {max_length} characters ({len(username)})"
    bad = _IMPOSSIBLE_USERNAME_CHAR.search(username)
    if bad is not None:
        char = bad.group()
        if "\ud800" <= char <= "\udfff":
            what = "an unpaired surrogate"
        elif char in "\u2028\u2029":
            what = "a line separator"
        else:
            what = "a control character"
        return f"contains {what} (U+{ord(char):04X})"
    if unicodedata.normalize("NFKC", username) in _DOT_SEGMENTS:
        return "is a path segment ('.' or '..') that a web server would resolve to another path"
    return None


def refuse_impossible_username(
    username: Any, source: str, max_length: int = MAX_USERNAME_LENGTH
) -> None:
    """Raise UserNotFound when :func:`username_problem` finds ``username`` impossible.

    Backends that send the name somewhere (an LDAP filter, a URL) call this first, and
    :class:`~nbspawner.directory.cache.CachedDirectory` (the hub's entry point) calls it before
    any backend, so such names never reach a directory and no request (with its credentials)
    is sent for them. The message shows the name quoted and cut (:func:`nbspawner.ids.shown`):
    one line, whatever it contains.
    """
    from ..errors import UserNotFound

    problem = username_problem(username, max_length)
    if problem is not None:
        raise UserNotFound(
            f"{source}: username {shown(username)} {problem}; it was not looked up",
            reason="not_found",
        )


class UnexpectedError(Exception):
    """Stands in for an unexpected exception in a logged traceback (see :func:`quoted_exc_info`)."""


def quoted_exc_info(
    error: BaseException,
) -> tuple[type[BaseException], BaseException, TracebackType | None]:
    """``exc_info`` for a log call about an unexpected ``error``: its frames (source lines of
    the code that failed), with its text quoted on one line (``UnexpectedError: KeyError('x')``).

    The text of an exception from a backend or a client library may quote a username, a server
    answer or a directory value; logged raw (``exc_info=True``) it could forge log lines.
    Chained exceptions are left out for the same reason.
    """
    stand_in = UnexpectedError(shown(error, 300))
    return UnexpectedError, stand_in, error.__traceback__


def one_line(text: str) -> str:
    """Text composed elsewhere (a library's message) on one line: line breaks become ``; ``,
    other non-printable characters are escaped as ``repr`` escapes them."""
    joined = "; ".join(part.strip() for part in text.splitlines() if part.strip())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


def read_secret(
    file_path: str,
    env_name: str,
    *,
    file_setting: str,
    env_setting: str,
    source: str,
    strip_all: bool = False,
) -> str | None:
    """A password or token from a file (preferred) or an environment variable.

    Read each time it is needed (a rotated Secret is picked up) and never kept or logged; errors
    name the *setting*, never the value. The trailing newline of a file is dropped (``strip_all``:
    all surrounding whitespace, for tokens). ``None`` when neither setting is set.
    """
    import os

    from ..errors import ConfigError

    if file_path:
        try:
            with open(file_path, encoding="utf-8") as f:
                text = f.read()
        except OSError as e:
            raise ConfigError(
                f"{source}: {file_setting} ({file_path}) cannot be read: {e.strerror}"
            ) from None
        return text.strip() if strip_all else text.rstrip("\r\n")
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(
                f"{source}: environment variable {env_name} ({env_setting}) is not set"
            )
        return value.strip() if strip_all else value
    return None
