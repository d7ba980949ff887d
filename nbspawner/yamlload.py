"""The one YAML loader for every file nbspawner reads (catalog, static directory, config.yaml).

PyYAML reads YAML 1.1, where ``02001`` is the octal number 1025 and ``33:21`` the base-60
number 2001, and where a mapping that names the same key twice silently keeps the last value.
For a uid either is a different person. This loader:

- refuses duplicate mapping keys, naming both lines;
- keeps every integer, but remembers how it was written: an integer whose spelling is not
  plain decimal digits (leading zeros, ``0x``/``0o``/``0b``, ``_``, ``:``, ``+``) is loaded as
  :class:`SpelledInt`, an ``int`` that still knows its text. Fields where such a spelling is
  harmless (a ``defaultMode: 0644``) keep working; id fields refuse it
  (:func:`nbspawner.ids.id_problem`).

Values z2jh passes through ``hub.config`` were already parsed by helm (Go YAML) and then by
PyYAML in the hub; nbspawner cannot see their spelling there. ``nbspawner check`` reads the
admin's ``config.yaml`` with this loader, so the same spellings are refused before deploying.
"""

from __future__ import annotations

import re
from typing import IO, Any

import yaml

#: an integer as an admin writes it: optional minus, then digits without a leading zero
PLAIN_INT_RE = re.compile(r"\A-?(?:0|[1-9][0-9]*)\Z")


class SpelledInt(int):
    """An integer YAML read from a spelling other than plain decimal (``02001`` -> 1025)."""

    text: str
    line: int

    def __new__(cls, value: int, text: str, line: int = 0) -> SpelledInt:
        obj = super().__new__(cls, value)
        obj.text = text
        obj.line = line
        return obj

    def __reduce__(self) -> tuple[Any, ...]:
        return (SpelledInt, (int(self), self.text, self.line))

    def __deepcopy__(self, memo: dict[int, Any]) -> SpelledInt:
        return self

    def __copy__(self) -> SpelledInt:
        return self


class YAMLFileError(ValueError):
    """The text is not YAML nbspawner accepts; ``where`` is ``line L, column C`` or empty."""

    def __init__(self, source: str, where: str, problem: str) -> None:
        self.source = source
        self.where = where
        self.problem = problem
        at = f" at {where}" if where else ""
        super().__init__(f"{source} is not valid YAML{at}: {problem}")


_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(_Base):  # type: ignore[misc,valid-type]
    """SafeLoader: duplicate keys refused, integer spellings remembered."""


def _construct_mapping(loader: Any, node: yaml.MappingNode, deep: bool = False) -> Any:
    loader.flatten_mapping(node)
    seen: dict[Any, Any] = {}
    for key_node, _value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "found an unhashable key", key_node.start_mark
            ) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"duplicate key {str(key)!r} (first at line {seen[key].line + 1})",
                key_node.start_mark,
            )
        seen[key] = key_node.start_mark
    return loader.construct_mapping(node, deep=deep)


def _construct_int(loader: Any, node: yaml.ScalarNode) -> int:
    value = yaml.constructor.SafeConstructor.construct_yaml_int(loader, node)
    text = str(node.value)
    if PLAIN_INT_RE.match(text):
        return value
    return SpelledInt(value, text, node.start_mark.line + 1)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)

# SpelledInt is an int to every dumper nbspawner uses (the CLI prints YAML)
yaml.SafeDumper.add_representer(SpelledInt, yaml.representer.SafeRepresenter.represent_int)
yaml.Dumper.add_representer(SpelledInt, yaml.representer.SafeRepresenter.represent_int)


def load_yaml(text: str | bytes | IO[str], *, source: str) -> Any:
    """Parse one YAML document; :class:`YAMLFileError` names ``source``, the line and the problem."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e)
        # PyYAML's texts may span lines and quote the offending character raw: one line, quoted
        problem = " ".join(str(problem).split())
        if not problem.isprintable():
            problem = repr(problem)
        raise YAMLFileError(source, where, problem) from None


def read_yaml_file(path: str, *, source: str | None = None) -> Any:
    """Read and parse a UTF-8 YAML file (OSError and UnicodeDecodeError pass through)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return load_yaml(text, source=source or path)
