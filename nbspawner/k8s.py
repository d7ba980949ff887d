"""Convert between kubernetes_asyncio models and plain camelCase API dicts.

kubespawner builds a ``V1Pod`` model; nbspawner's builders work on plain dicts (easy to test,
print and validate). These two functions translate using each model's own ``openapi_types``
and ``attribute_map`` tables, without creating an ``ApiClient`` (which opens an HTTP session).

They run on every spawn, so they take a fast path where it is safe. The generated model
classes keep each attribute ``x`` in an instance field ``_x`` behind a property, plus
``local_vars_configuration`` and ``discriminator``. For a class whose instances are verified
to look exactly like that (checked once per class, on an instance built by its own
constructor), :func:`model_to_dict` reads the fields directly and :func:`dict_to_model` fills
them in without running the property setters one by one. A class that looks different (a
future generator) goes through the public constructor and properties instead. The fast path
skips the models' client-side checks (a required field left ``None``); the API server
validates every object anyway, and the slow path is used whenever a class is not verified.
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


def model_to_dict(obj: Any) -> Any:
    """A model (or list/dict of models) -> the JSON-ready dict the API server would receive."""
    if obj is None or isinstance(obj, _ATOMS):
        return obj
    if isinstance(obj, (list, tuple)):
        return [model_to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: model_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (datetime.datetime, datetime.date)):
        return obj.isoformat()
    cls = type(obj)
    fields = _fields_out(cls)
    out = {}
    if fields is not None:
        state = obj.__dict__
        for field, key in fields:
            value = state[field]
            if value is not None:
                out[key] = value if isinstance(value, _ATOMS) else model_to_dict(value)
        return out
    types = getattr(obj, "openapi_types", None)
    if types is None:
        raise TypeError(f"cannot serialise {type(obj).__name__}")
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


_MODEL_CONVERTERS: dict[str, Any] = {}


def _converter(klass: str) -> Any:
    """A function converting API data of type ``klass`` to models; None for native types."""
    conv = _MODEL_CONVERTERS.get(klass, _MISSING)
    if conv is _MISSING:
        conv = _MODEL_CONVERTERS[klass] = _make_converter(klass)
    return conv


_MISSING = object()


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
    template = _layout(cls)[1]
    # per JSON key: [constructor argument, instance field, value type, its converter]; the
    # converter is looked up on first use (model types refer to each other, some in cycles)
    fields = {
        json_key: [attr, f"_{attr}", cls.openapi_types[attr], _MISSING]
        for attr, json_key in cls.attribute_map.items()
    }
    new = object.__new__
    default_config = Configuration.get_default

    def convert_fields(data: Any, use_fields: bool) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ValueError(f"{inner} must be an object, not {type(data).__name__}")
        out = template.copy() if use_fields else {}
        for key, value in data.items():
            entry = fields.get(key)
            if entry is None:
                raise ValueError(f"{inner} has no field {key!r}")
            conv = entry[3]
            if conv is _MISSING:
                conv = entry[3] = _converter(entry[2])
            out[entry[1] if use_fields else entry[0]] = (
                value if conv is None or value is None else conv(value)
            )
        return out

    if template is None:  # not verified: the public constructor, with its checks
        return lambda data: cls(**convert_fields(data, False))

    def fill(data: Any) -> Any:
        state = convert_fields(data, True)
        state["local_vars_configuration"] = default_config()
        obj = new(cls)
        obj.__dict__.update(state)
        return obj

    return fill


def dict_to_model(data: Any, klass: str) -> Any:
    """The inverse of :func:`model_to_dict`: ``dict_to_model(pod_dict, "V1Pod")``."""
    if data is None:
        return None
    conv = _converter(klass)
    return data if conv is None else conv(data)


#: the fields of a container that nbspawner edits (podpatch.apply_to_pod, security.harden_pod)
_CONTAINER_EDITS = (
    ("security_context", "securityContext", "V1SecurityContext"),
    ("volume_mounts", "volumeMounts", "list[V1VolumeMount]"),
    ("env", "env", "list[V1EnvVar]"),
    ("working_dir", "workingDir", "str"),
)
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
    workingDir. Converting just those is several times cheaper than building a new V1Pod, and
    keeps every other object kubespawner made. Containers that were added or removed are
    converted whole (the tests compare the result with a full conversion).
    """
    spec, spec_data = pod.spec, data["spec"]
    spec.volumes = dict_to_model(spec_data.get("volumes"), "list[V1Volume]")
    spec.security_context = dict_to_model(spec_data.get("securityContext"), "V1PodSecurityContext")
    for attr, key, klass in _CONTAINER_LISTS:
        models = getattr(spec, attr) or []
        dicts = spec_data.get(key) or []
        if len(models) != len(dicts) or any(
            m.name != d.get("name") for m, d in zip(models, dicts, strict=True)
        ):
            setattr(spec, attr, dict_to_model(dicts, f"list[{klass}]") if dicts else None)
            continue
        for model, container in zip(models, dicts, strict=True):
            for field, json_key, field_type in _CONTAINER_EDITS:
                value = container.get(json_key)
                if field == "env":
                    value = _env_models(model.env, value)
                else:
                    value = dict_to_model(value, field_type)
                setattr(model, field, value)
    return pod


def _env_models(models: list[Any] | None, env: list[dict[str, Any]] | None) -> list[Any] | None:
    """The env list as models, reusing the unchanged plain ``name=value`` models of ``models``."""
    if env is None:
        return None
    plain = {
        (m.name, m.value): m
        for m in models or ()
        if m.value_from is None and isinstance(m.value, str)
    }
    out = []
    for item in env:
        reuse = None
        if len(item) == 2 and "value" in item:
            reuse = plain.get((item.get("name"), item["value"]))
        out.append(reuse if reuse is not None else dict_to_model(item, "V1EnvVar"))
    return out
