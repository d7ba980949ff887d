"""Convert between kubernetes_asyncio models and plain camelCase API dicts.

kubespawner builds a ``V1Pod`` model; nbspawner's builders work on plain dicts (easy to test,
print and validate). These two functions translate using each model's own ``openapi_types``
and ``attribute_map`` tables, without creating an ``ApiClient`` (which opens an HTTP session).
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Any

from kubernetes_asyncio.client import models as k8s_models

_LIST_RE = re.compile(r"\Alist\[(.*)\]\Z")
_DICT_RE = re.compile(r"\Adict\((.*?), (.*)\)\Z")
_NATIVE = {"str": str, "int": int, "float": float, "bool": bool, "object": object}


def model_to_dict(obj: Any) -> Any:
    """A model (or list/dict of models) -> the JSON-ready dict the API server would receive."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [model_to_dict(v) for v in obj]
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    if isinstance(obj, dict):
        return {k: model_to_dict(v) for k, v in obj.items()}
    types = getattr(obj, "openapi_types", None)
    if types is None:
        raise TypeError(f"cannot serialise {type(obj).__name__}")
    out = {}
    for attr in types:
        value = getattr(obj, attr)
        if value is not None:
            out[obj.attribute_map[attr]] = model_to_dict(value)
    return out


@functools.cache
def _parse_type(klass: str) -> tuple[str, str]:
    """``"list[V1Container]"`` -> ("list", "V1Container"); ``"V1Pod"`` -> ("model", "V1Pod")."""
    m = _LIST_RE.match(klass)
    if m:
        return "list", m.group(1)
    m = _DICT_RE.match(klass)
    if m:
        return "dict", m.group(2)
    if klass in _NATIVE or klass == "datetime":
        return "native", klass
    return "model", klass


@functools.cache
def _model_fields(klass: str) -> tuple[type, dict[str, tuple[str, str]]]:
    """The model class and, per JSON key, (attribute name, attribute type)."""
    cls = getattr(k8s_models, klass)
    return cls, {
        json_key: (attr, cls.openapi_types[attr]) for attr, json_key in cls.attribute_map.items()
    }


def dict_to_model(data: Any, klass: str) -> Any:
    """The inverse of :func:`model_to_dict`: ``dict_to_model(pod_dict, "V1Pod")``."""
    if data is None:
        return None
    kind, inner = _parse_type(klass)
    if kind == "list":
        return [dict_to_model(v, inner) for v in data]
    if kind == "dict":
        return {k: dict_to_model(v, inner) for k, v in data.items()}
    if kind == "native":
        return data
    cls, fields = _model_fields(inner)
    kwargs = {}
    for key, value in data.items():
        try:
            attr, attr_type = fields[key]
        except KeyError:
            raise ValueError(f"{klass} has no field {key!r}") from None
        kwargs[attr] = dict_to_model(value, attr_type)
    return cls(**kwargs)
