"""Convert between kubernetes_asyncio models and plain camelCase API dicts.

kubespawner builds a ``V1Pod`` model; nbspawner's builders work on plain dicts (easy to test,
print and validate). These two functions translate using each model's own ``openapi_types``
and ``attribute_map`` tables, without creating an ``ApiClient`` (which opens an HTTP session).
"""

from __future__ import annotations

import datetime
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


def dict_to_model(data: Any, klass: str) -> Any:
    """The inverse of :func:`model_to_dict`: ``dict_to_model(pod_dict, "V1Pod")``."""
    if data is None:
        return None
    m = _LIST_RE.match(klass)
    if m:
        return [dict_to_model(v, m.group(1)) for v in data]
    m = _DICT_RE.match(klass)
    if m:
        return {k: dict_to_model(v, m.group(2)) for k, v in data.items()}
    if klass in _NATIVE:
        return data
    if klass == "datetime":
        return data
    cls = getattr(k8s_models, klass)
    kwargs = {}
    reverse = {v: k for k, v in cls.attribute_map.items()}
    for key, value in data.items():
        attr = reverse.get(key)
        if attr is None:
            raise ValueError(f"{klass} has no field {key!r}")
        kwargs[attr] = dict_to_model(value, cls.openapi_types[attr])
    return cls(**kwargs)
