"""Convert between kubernetes_asyncio models and plain camelCase API dicts.

kubespawner builds a ``V1Pod`` model; nbspawner's builders work on plain dicts (easy to test,
print and validate). These two functions translate using each model's own ``openapi_types``
and ``attribute_map`` tables, without creating an ``ApiClient`` (which opens an HTTP session).

:func:`model_to_dict` and :func:`shallow_model` run on every spawn, so they take a fast
path where it is safe. The generated model classes keep each attribute ``x`` in an instance
field ``_x`` behind a property, plus ``local_vars_configuration`` and ``discriminator``. For a
class whose instances are verified to look exactly like that (checked once per class, on an
instance built by its own constructor), the fields are read, or filled in, directly instead of
through the properties one by one. A class that looks different (a future generator) goes
through the public constructor and properties instead. :func:`dict_to_model` (deep, rare: the
passwd Secret) always uses the constructors.
"""

from __future__ import annotations

import datetime
import functools
import re
from typing import Any

from kubernetes_asyncio.client import models as k8s_models
from kubernetes_asyncio.client.configuration import Configuration

_LIST_RE = re.compile(r"\Alist\[(.*)\]\Z")
_DICT_RE = re.compile(r"\Adict\((.*?), (.*)\)\Z")
_NATIVE = {"str": str, "int": int, "float": float, "bool": bool, "object": object}
_ATOMS = (str, int, float, bool)
_BOOKKEEPING = frozenset({"local_vars_configuration", "discriminator"})


@functools.cache
def _fields_out(cls: type) -> tuple[tuple[str, str], ...] | None:
    """(instance field, JSON key) pairs of a verified model class; None: use properties."""
    return _layout(cls)[0]


@functools.cache
def _layout(cls: type) -> tuple[tuple[tuple[str, str], ...] | None, dict[str, Any] | None]:
    """Verify once that ``cls`` keeps attribute ``x`` in ``_x`` (see the module docstring).

    Returns the output pairs and the template of a fresh instance's ``__dict__``, or
    ``(None, None)`` when the class does not have that layout.
    """
    types = getattr(cls, "openapi_types", None)
    amap = getattr(cls, "attribute_map", None)
    if not isinstance(types, dict) or not isinstance(amap, dict) or set(types) != set(amap):
        return None, None
    lenient = Configuration()
    lenient.client_side_validation = False  # required fields may stay None in the probe
    try:
        probe = cls(local_vars_configuration=lenient)
    except Exception:  # noqa: BLE001 - any surprise: not verified, slow path
        return None, None
    state = getattr(probe, "__dict__", None)
    expected = {f"_{attr}" for attr in types} | _BOOKKEEPING
    if not isinstance(state, dict) or set(state) != expected:
        return None, None
    if any(state[f"_{attr}"] is not None for attr in types) or state["discriminator"] is not None:
        return None, None
    # reading through the property must return the field (it does for generated models)
    for attr in types:
        marker = object()
        state[f"_{attr}"] = marker
        try:
            ok = getattr(probe, attr) is marker
        except Exception:  # noqa: BLE001
            ok = False
        state[f"_{attr}"] = None
        if not ok:
            return None, None
    template = {f"_{attr}": None for attr in types}
    template["discriminator"] = None
    return tuple((f"_{attr}", amap[attr]) for attr in types), template


#: verified model classes -> their (instance field, JSON key) pairs (see _layout)
_OUT_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}
_ATOM_TYPES = frozenset(_ATOMS)


def model_to_dict(obj: Any) -> Any:
    """A model (or list/dict of models) -> the JSON-ready dict the API server would receive."""
    fields = _OUT_FIELDS.get(type(obj))
    if fields is not None:  # the common case first: a verified model
        state = obj.__dict__
        out = {}
        for field, key in fields:
            value = state[field]
            if value is not None:
                out[key] = value if type(value) in _ATOM_TYPES else model_to_dict(value)
        return out
    if obj is None or isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, (list, tuple)):
        return [v if type(v) in _ATOM_TYPES else model_to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: v if type(v) in _ATOM_TYPES else model_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    cls = type(obj)
    fields = _fields_out(cls)
    if fields is not None:
        _OUT_FIELDS[cls] = fields
        return model_to_dict(obj)
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


_MISSING = object()
_MODEL_CONVERTERS: dict[str, Any] = {}


def _converter(klass: str) -> Any:
    """A function converting API data of type ``klass`` to models; None for native types."""
    conv = _MODEL_CONVERTERS.get(klass, _MISSING)
    if conv is _MISSING:
        conv = _MODEL_CONVERTERS[klass] = _make_converter(klass)
    return conv


def _make_converter(klass: str) -> Any:
    kind, inner = _parse_type(klass)
    if kind == "native":
        return None
    if kind == "list":
        sub = _converter(inner)
        if sub is None:
            return list
        return lambda data: [None if v is None else sub(v) for v in data]
    if kind == "dict":
        sub = _converter(inner)
        if sub is None:
            return dict
        return lambda data: {k: None if v is None else sub(v) for k, v in data.items()}
    cls = getattr(k8s_models, inner)
    # per JSON key: [constructor argument, value type, its converter]; the converter is looked
    # up on first use (model types refer to each other, some in cycles)
    fields = {
        json_key: [attr, cls.openapi_types[attr], _MISSING]
        for attr, json_key in cls.attribute_map.items()
    }

    def construct(data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(f"{inner} must be an object, not {type(data).__name__}")
        kwargs = {}
        for key, value in data.items():
            entry = fields.get(key)
            if entry is None:
                raise ValueError(f"{inner} has no field {key!r}")
            conv = entry[2]
            if conv is _MISSING:
                conv = entry[2] = _converter(entry[1])
            kwargs[entry[0]] = value if conv is None or value is None else conv(value)
        return cls(**kwargs)

    return construct


def dict_to_model(data: Any, klass: str) -> Any:
    """The inverse of :func:`model_to_dict`: ``dict_to_model(pod_dict, "V1Pod")``, every level
    a model built by its own constructor (with the client-side checks)."""
    if data is None:
        return None
    conv = _converter(klass)
    return data if conv is None else conv(data)


@functools.cache
def _shallow_fields(klass: str) -> tuple[type, dict[str, tuple[str, str]], Any]:
    cls = getattr(k8s_models, klass)
    fields = {json_key: (attr, f"_{attr}") for attr, json_key in cls.attribute_map.items()}
    return cls, fields, _layout(cls)[1]


def shallow_model(data: Any, klass: str) -> Any:
    """A model of type ``klass`` whose field values are ``data``'s values as they are.

    This is kubespawner's own convention (``kubespawner.utils.get_k8s_model``): the top level
    becomes a model, nested objects stay camelCase dicts, which kubernetes_asyncio serialises
    unchanged. Unknown keys are an error.
    """
    if data is None:
        return None
    cls, fields, template = _shallow_fields(klass)
    if not isinstance(data, dict):
        raise ValueError(f"{klass} must be an object, not {type(data).__name__}")
    out = template.copy() if template is not None else {}
    for key, value in data.items():
        entry = fields.get(key)
        if entry is None:
            raise ValueError(f"{klass} has no field {key!r}")
        out[entry[1] if template is not None else entry[0]] = value
    if template is None:
        return cls(**out)
    out["local_vars_configuration"] = Configuration.get_default()
    obj = object.__new__(cls)
    obj.__dict__.update(out)
    return obj


def _shallow_list(data: list[Any] | None, klass: str) -> list[Any] | None:
    return None if data is None else [shallow_model(item, klass) for item in data]


_CONTAINER_LISTS = (
    ("init_containers", "initContainers", "V1Container"),
    ("containers", "containers", "V1Container"),
    ("ephemeral_containers", "ephemeralContainers", "V1EphemeralContainer"),
)


def update_pod_model(pod: Any, data: dict[str, Any]) -> Any:
    """Write the parts of ``data`` that nbspawner edits back into the V1Pod ``pod``; return it.

    ``data`` must be ``model_to_dict(pod)`` after :func:`nbspawner.podpatch.apply_to_pod` and
    :func:`nbspawner.security.harden_pod`, which only change the pod's volumes, init
    containers, pod securityContext and, per container, securityContext, volumeMounts, env and
    workingDir. Only those are written back, the way kubespawner builds them itself (top-level
    models, nested objects as camelCase dicts; security contexts as dicts, as kubespawner's
    ``container_security_context`` gives them); everything else kubespawner made is kept.
    Containers that were added or removed are replaced (the tests compare the serialised
    result with a full conversion).
    """
    spec, spec_data = pod.spec, data["spec"]
    spec.volumes = _shallow_list(spec_data.get("volumes"), "V1Volume")
    spec.security_context = spec_data.get("securityContext")
    for attr, key, klass in _CONTAINER_LISTS:
        models = getattr(spec, attr) or []
        dicts = spec_data.get(key) or []
        if len(models) != len(dicts) or any(
            m.name != d.get("name") for m, d in zip(models, dicts, strict=True)
        ):
            setattr(spec, attr, _shallow_list(dicts, klass) if dicts else None)
            continue
        for model, container in zip(models, dicts, strict=True):
            model.security_context = container.get("securityContext")
            model.volume_mounts = _shallow_list(container.get("volumeMounts"), "V1VolumeMount")
            model.env = _env_models(model.env, container.get("env"))
            model.working_dir = container.get("workingDir")
    return pod


def _env_models(models: list[Any] | None, env: list[dict[str, Any]] | None) -> list[Any] | None:
    """The env list as models, reusing the unchanged plain ``name=value`` models of ``models``.

    ``env`` is ``models`` as dicts, with some entries removed and others appended (what
    apply_to_pod does), so one walk through both in order finds every entry that can be
    reused; an entry that does not match is built anew, which is always correct.
    """
    if env is None:
        return None
    models = models or []
    count = len(models)
    j = 0
    out = []
    for item in env:
        reuse = None
        if len(item) == 2 and "value" in item:
            name, value = item.get("name"), item["value"]
            while j < count:
                candidate = models[j]
                j += 1
                state = getattr(candidate, "__dict__", None)
                if (
                    state is not None
                    and state.get("_name") == name
                    and state.get("_value") == value
                    and state.get("_value_from") is None
                ):
                    reuse = candidate
                    break
        out.append(reuse if reuse is not None else shallow_model(item, "V1EnvVar"))
    return out
