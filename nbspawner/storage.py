"""Home directories and data shares: pure builders from a user record to a :class:`PodPatch`.

The admin describes storage with four settings (traits on ``NBSpawner``, plain YAML under
z2jh's ``hub.config``)::

    NBSpawner:
      home_volume:                  # where the user's home lives
        type: pvc                   # none | nfs | pvc | hostPath
        claim_name: homes           # an existing ReadWriteMany PVC holding every home
        export_roots: [/export/home]
        sub_path: "{home_relative}" # default: the home relative to its export root
      home_mount_path: /home/{username}
      seed_home_from: /tmp_home/jovyan
      data_shares:
        - name: experiments
          type: nfs
          server: nfs.example.org
          path: /exp/{group}
          mount_path: /data/{group}
          allowed_groups: [exp-1234, exp-5678]

:meth:`StorageConfig.from_config` validates that once (unknown keys, bad templates and bad
literal paths are a :class:`~nbspawner.errors.ConfigError` naming the setting) and
:func:`build_storage` turns it plus one :class:`~nbspawner.directory.base.UserRecord` into
volumes, mounts, an optional seeding init container, ``HOME`` and the working directory.

Paths come from the record's ``home``, never from kubespawner's ``{username}`` expansion: in
kubespawner 7 that is a *slug* (``Jane.Doe`` -> ``jane-doe---c8226e84``) that matches no
directory on the file server. Everything rendered from a record is checked at spawn time and
refused with a :class:`~nbspawner.errors.StorageError` that names the setting and the field,
never the offending value (it may be hostile or personal).

Templates know a fixed set of keys and nothing else: no attribute or index access, no format
specs, no conversions (``{username.__class__}`` is refused when the configuration is loaded).
"""

from __future__ import annotations

import functools
import posixpath
import re
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, InvalidRecord, StorageError
from .paths import normalise
from .podpatch import PodPatch, restricted_container_security_context
from .policy import check_path, path_is_under
from .record import UserRecord

#: the settings, as the admin writes them; every admin message names one of these
SETTING_HOME_VOLUME = "NBSpawner.home_volume"
SETTING_HOME_MOUNT_PATH = "NBSpawner.home_mount_path"
SETTING_DATA_SHARES = "NBSpawner.data_shares"
SETTING_SEED_HOME_FROM = "NBSpawner.seed_home_from"

HOME_TYPES = ("none", "nfs", "pvc", "hostPath")
SHARE_TYPES = ("nfs", "pvc", "hostPath")

DEFAULT_HOME_MOUNT_PATH = "/home/{username}"
#: Kubeflow notebook images keep the image's home here (their /home/jovyan is a volume)
DEFAULT_SEED_HOME_FROM = "/tmp_home/jovyan"

#: names of what nbspawner adds to the pod; prefixed so they never collide with z2jh's "home"
HOME_VOLUME_NAME = "nbs-home"
SHARE_VOLUME_PREFIX = "nbs-data-"
SEED_CONTAINER_NAME = "nbs-seed-home"

#: template keys per kind of template
HOME_PATH_KEYS = frozenset({"home", "home_relative", "username", "uid", "gid"})
MOUNT_PATH_KEYS = frozenset({"username"})
SHARE_KEYS = frozenset({"username", "uid", "gid", "group"})

#: one path segment substituted for {username} or {group}: no "/", not "." or "..", no
#: leading "-" or "." (option-looking or hidden names)
SEGMENT_RE = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}\Z")
#: a relative, normalised path (PVC subPath, {home_relative})
RELATIVE_RE = re.compile(r"\A[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")
#: a data share's name: part of a volume name (a DNS-1123 label, 63 characters at most)
SHARE_NAME_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?\Z")
#: a PVC name (DNS-1123 subdomain)
CLAIM_NAME_RE = re.compile(r"\A[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
#: an NFS server: host name, IPv4 or IPv6 address
SERVER_RE = re.compile(r"\A[A-Za-z0-9.:\[\]-]{1,253}\Z")

#: mounting over these would break or subvert the image (the passwd files, binaries, secrets)
SYSTEM_DIRS = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/proc",
    "/run/secrets",
    "/sbin",
    "/sys",
    "/usr",
    "/var/run/secrets",
)


#: the fixed seeding script (package data; shipped with `hub.extraFiles` installs too)
SEED_SCRIPT_PATH = Path(__file__).resolve().parent / "data" / "seed-home.sh"


@functools.lru_cache(maxsize=1)
def seed_script() -> str:
    return SEED_SCRIPT_PATH.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------


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


def _literal_prefix(template: str) -> str:
    """The directory a rendered template can never leave: the text before the first field,
    cut at its last "/" (``/exp/{group}/raw`` -> ``/exp``; ``{home}`` -> ``""``)."""
    if "{" not in template:
        return template
    head = template.split("{", 1)[0]
    return head.rsplit("/", 1)[0] if "/" in head else ""


# ---------------------------------------------------------------------------
# Path checks
# ---------------------------------------------------------------------------


def _check_absolute(value: str, setting: str, error: type[Exception]) -> str:
    try:
        check_path(value, setting)
    except InvalidRecord:
        raise _error(
            error,
            f"{setting} is not a normalised absolute path (allowed: /, A-Z a-z 0-9 _ . -; "
            "no empty, '.' or '..' segments)",
        ) from None
    return value


def _check_relative(value: str, setting: str, error: type[Exception]) -> str:
    ok = isinstance(value, str) and bool(RELATIVE_RE.match(value))
    if ok and any(s in (".", "..") for s in value.split("/")):
        ok = False
    if not ok:
        raise _error(
            error,
            f"{setting} is not a normalised relative path (allowed: A-Z a-z 0-9 _ . - and /; "
            "no leading /, no empty, '.' or '..' segments)",
        )
    return value


def _check_mount_path(value: str, setting: str, error: type[Exception]) -> str:
    _check_absolute(value, setting, error)
    # value is normalised by now, so a prefix test is exact (and this runs for every mount)
    if value == "/" or value in _SYSTEM_DIR_SET or value.startswith(_SYSTEM_DIR_PREFIXES):
        raise _error(
            error,
            f"{setting} is / or inside a system directory ({', '.join(SYSTEM_DIRS)}); "
            "mount homes and data elsewhere (e.g. /home/..., /data/...)",
        )
    return value


_SYSTEM_DIR_SET = frozenset(posixpath.normpath(d) for d in SYSTEM_DIRS)
_SYSTEM_DIR_PREFIXES = tuple(d + "/" for d in sorted(_SYSTEM_DIR_SET))


def _error(error: type[Exception], message: str) -> Exception:
    if error is StorageError:
        return StorageError(message, reason="unsafe_storage_path")
    return error(message)


def _overlaps(a: str, b: str) -> bool:
    return path_is_under(a, b) or path_is_under(b, a)


def resolve_home(
    home: str, export_roots: Sequence[str], setting: str = SETTING_HOME_VOLUME
) -> tuple[str, str]:
    """Return ``(root, relative)`` for a record's home: the longest export root it lies
    strictly below, and the rest of the path.

    ``/export/home/alice`` with roots ``[/export/home]`` -> ``("/export/home", "alice")``.
    A home that is not a normalised absolute path, equals a root, or lies outside every root
    is a StorageError naming ``{setting}.export_roots``.
    """
    try:
        check_path(home, "home")
    except InvalidRecord:
        raise StorageError(
            "the directory record's home is not a normalised absolute path "
            "(allowed: /, A-Z a-z 0-9 _ . -; no empty, '.' or '..' segments); "
            "check the directory backend's home attribute",
            reason="unsafe_home",
        ) from None
    matches = [r for r in export_roots if home != r and path_is_under(home, r)]
    if not matches:
        raise StorageError(
            f"the directory record's home is not below any of {setting}.export_roots; "
            "add its export root there or fix the directory entry",
            reason="home_outside_roots",
        )
    root = max(matches, key=len)
    relative = home[len(root) :].lstrip("/")
    _check_relative(relative, f"{setting}: the home relative to its export root", StorageError)
    return root, relative


# ---------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------


def _as_mapping(data: Any, setting: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{setting} must be a mapping (a dict), not a {type(data).__name__}")
    for key in data:
        if not isinstance(key, str):
            raise ConfigError(f"{setting} has a key that is not a string")
    return data


def _check_keys(data: Mapping[str, Any], allowed: Iterable[str], setting: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{setting} has unknown key(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))})"
        )


def _get_str(data: Mapping[str, Any], key: str, setting: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{setting}.{key} must be a string, not a {type(value).__name__}")
    return value


def _get_str_list(data: Mapping[str, Any], key: str, setting: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{setting}.{key} must be a list of strings")
    for item in value:
        if not isinstance(item, str) or not item:
            raise ConfigError(f"{setting}.{key} must be a list of non-empty strings")
    return tuple(value)


def _check_server(value: str, setting: str) -> str:
    if not SERVER_RE.match(value):
        raise ConfigError(f"{setting} must be an NFS server host name or IP address")
    return value


def _check_claim(value: str, setting: str) -> str:
    if not CLAIM_NAME_RE.match(value):
        raise ConfigError(
            f"{setting} must be the name of an existing PersistentVolumeClaim "
            "(lowercase letters, digits, '-' and '.')"
        )
    return value


#: example values used to try every template once when the configuration is loaded
_SAMPLE = {"username": "user", "uid": "1000", "gid": "1000", "group": "group"}

_HOME_KEYS = {
    "none": {"type"},
    "nfs": {"type", "server", "export_roots", "path"},
    "pvc": {"type", "claim_name", "export_roots", "sub_path"},
    "hostPath": {"type", "export_roots", "path"},
}


@dataclass(frozen=True)
class HomeVolume:
    """Where users' homes live. ``type`` is one of :data:`HOME_TYPES`.

    - ``nfs``: a Kubernetes ``nfs`` volume, ``server`` + ``path`` (default ``{home}``: the
      same path on the server as in the directory; ``/export{home}`` or
      ``/srv/homes/{home_relative}`` when the server's layout differs).
    - ``pvc``: an existing ReadWriteMany claim ``claim_name`` holding every home, mounted with
      ``subPath`` = ``sub_path`` (default ``{home_relative}``: the home relative to the export
      root it lies under).
    - ``hostPath``: every node mounts the homes itself; ``path`` as for ``nfs``.
    - ``none``: nbspawner mounts no home (z2jh's ``singleuser.storage`` or nothing).

    ``export_roots``: the record's home must lie strictly below one of these; required for
    every type but ``none`` (fail closed: a home of ``/`` or ``/etc`` is never mounted).
    Templates know ``{home}``, ``{home_relative}``, ``{username}``, ``{uid}``, ``{gid}``.
    """

    type: str = "none"
    export_roots: tuple[str, ...] = ()
    server: str = ""
    path: str = "{home}"
    claim_name: str = ""
    sub_path: str = "{home_relative}"

    @classmethod
    def from_config(
        cls, data: Mapping[str, Any] | None, setting: str = SETTING_HOME_VOLUME
    ) -> HomeVolume:
        if data is None or (isinstance(data, Mapping) and not data):
            return cls()
        data = _as_mapping(data, setting)
        kind = data.get("type", "none")
        if kind not in HOME_TYPES:
            raise ConfigError(f"{setting}.type must be one of {', '.join(HOME_TYPES)}")
        _check_keys(data, _HOME_KEYS[kind], f"{setting} (type {kind})")
        if kind == "none":
            return cls()

        roots = _get_str_list(data, "export_roots", setting)
        if not roots:
            raise ConfigError(
                f"{setting}.export_roots is required for type {kind}: list the directories "
                "under which users' homes may lie (e.g. [/home, /export/home])"
            )
        for root in roots:
            _check_absolute(root, f"{setting}.export_roots", ConfigError)
            if root == "/":
                raise ConfigError(f"{setting}.export_roots must not contain /")
        sample_root = roots[0]
        sample = dict(_SAMPLE, home=sample_root + "/user", home_relative="user")

        kwargs: dict[str, Any] = {"type": kind, "export_roots": roots}
        if kind == "nfs":
            kwargs["server"] = _check_server(_get_str(data, "server", setting), f"{setting}.server")
        if kind in ("nfs", "hostPath"):
            path = _get_str(data, "path", setting, cls.path)
            template_keys(path, HOME_PATH_KEYS, f"{setting}.path")
            _check_absolute(
                render_template(path, sample, f"{setting}.path"), f"{setting}.path", ConfigError
            )
            kwargs["path"] = path
        if kind == "pvc":
            kwargs["claim_name"] = _check_claim(
                _get_str(data, "claim_name", setting), f"{setting}.claim_name"
            )
            sub_path = _get_str(data, "sub_path", setting, cls.sub_path)
            template_keys(sub_path, HOME_PATH_KEYS - {"home"}, f"{setting}.sub_path")
            _check_relative(
                render_template(sub_path, sample, f"{setting}.sub_path"),
                f"{setting}.sub_path",
                ConfigError,
            )
            kwargs["sub_path"] = sub_path
        return cls(**kwargs)


_SHARE_KEYS = {
    "nfs": {"server", "path"},
    "pvc": {"claim_name", "sub_path"},
    "hostPath": {"path"},
}
_SHARE_COMMON = {"name", "type", "mount_path", "read_only", "allowed_groups"}


@dataclass(frozen=True)
class DataShare:
    """A data mount: per user, per group, or for everyone.

    ``allowed_groups`` empty means every user gets it. A share whose templates use ``{group}``
    is mounted once for each of its ``allowed_groups`` the user belongs to (so it must list
    them). ``read_only`` defaults to True. Templates know ``{username}``, ``{uid}``, ``{gid}``
    and ``{group}``.
    """

    name: str
    type: str
    mount_path: str
    server: str = ""
    path: str = ""
    claim_name: str = ""
    sub_path: str = ""
    read_only: bool = True
    allowed_groups: tuple[str, ...] = ()
    per_group: bool = False

    @classmethod
    def from_config(cls, data: Mapping[str, Any], setting: str) -> DataShare:
        data = _as_mapping(data, setting)
        name = data.get("name")
        if not isinstance(name, str) or not SHARE_NAME_RE.match(name):
            raise ConfigError(
                f"{setting}.name is required: 1-40 lowercase letters, digits and '-' "
                "(it becomes part of the volume name)"
            )
        setting = (
            f"{SETTING_DATA_SHARES}[{name}]" if setting.startswith(SETTING_DATA_SHARES) else setting
        )
        kind = data.get("type")
        if kind not in SHARE_TYPES:
            raise ConfigError(f"{setting}.type must be one of {', '.join(SHARE_TYPES)}")
        _check_keys(data, _SHARE_COMMON | _SHARE_KEYS[kind], f"{setting} (type {kind})")

        read_only = data.get("read_only", True)
        if not isinstance(read_only, bool):
            # a YAML string "false" would be truthy: refuse rather than guess
            raise ConfigError(f"{setting}.read_only must be true or false (a boolean)")
        groups = _get_str_list(data, "allowed_groups", setting)

        mount_path = _get_str(data, "mount_path", setting)
        if not mount_path:
            raise ConfigError(f"{setting}.mount_path is required")
        keys = set(template_keys(mount_path, SHARE_KEYS, f"{setting}.mount_path"))
        kwargs: dict[str, Any] = {}
        if kind == "nfs":
            kwargs["server"] = _check_server(_get_str(data, "server", setting), f"{setting}.server")
        if kind in ("nfs", "hostPath"):
            path = _get_str(data, "path", setting)
            if not path:
                raise ConfigError(f"{setting}.path is required for type {kind}")
            keys |= template_keys(path, SHARE_KEYS, f"{setting}.path")
            kwargs["path"] = path
        if kind == "pvc":
            kwargs["claim_name"] = _check_claim(
                _get_str(data, "claim_name", setting), f"{setting}.claim_name"
            )
            sub_path = _get_str(data, "sub_path", setting)
            keys |= template_keys(sub_path, SHARE_KEYS, f"{setting}.sub_path")
            kwargs["sub_path"] = sub_path

        per_group = "group" in keys
        if per_group:
            if not groups:
                raise ConfigError(
                    f"{setting} uses {{group}}: list the groups it is for in "
                    f"{setting}.allowed_groups (one mount per listed group the user is in)"
                )
            for g in groups:
                if not SEGMENT_RE.match(g):
                    raise ConfigError(
                        f"{setting}.allowed_groups: a group used in {{group}} must be a single "
                        "path segment of A-Z a-z 0-9 _ . - (not starting with . or -)"
                    )
        share = cls(
            name=name,
            type=kind,
            mount_path=mount_path,
            read_only=read_only,
            allowed_groups=groups,
            per_group=per_group,
            **kwargs,
        )
        share._try(setting)
        return share

    def _try(self, setting: str) -> None:
        """Render every template once with sample values (catches relative paths, ``//``...)."""
        _check_mount_path(
            render_template(self.mount_path, _SAMPLE, setting),
            f"{setting}.mount_path",
            ConfigError,
        )
        if self.type in ("nfs", "hostPath"):
            _check_absolute(
                render_template(self.path, _SAMPLE, setting), f"{setting}.path", ConfigError
            )
        if self.type == "pvc" and self.sub_path:
            _check_relative(
                render_template(self.sub_path, _SAMPLE, setting), f"{setting}.sub_path", ConfigError
            )


@dataclass(frozen=True)
class StorageConfig:
    """Everything :func:`build_storage` needs besides the user record."""

    home: HomeVolume = field(default_factory=HomeVolume)
    #: where the home is mounted in the notebook; only ``{username}`` is known
    home_mount_path: str = DEFAULT_HOME_MOUNT_PATH
    data_shares: tuple[DataShare, ...] = ()
    #: skeleton directory inside the image copied into an empty home; "" disables seeding
    seed_home_from: str = DEFAULT_SEED_HOME_FROM

    @classmethod
    def from_config(
        cls,
        home_volume: Mapping[str, Any] | None = None,
        home_mount_path: str = DEFAULT_HOME_MOUNT_PATH,
        data_shares: Sequence[Mapping[str, Any]] | None = None,
        seed_home_from: str = DEFAULT_SEED_HOME_FROM,
    ) -> StorageConfig:
        """Build from the trait values (``NBSpawner.home_volume`` etc.); ConfigError on any
        unknown key, bad template or unsafe literal path, naming the setting."""
        home = HomeVolume.from_config(home_volume)

        if not isinstance(home_mount_path, str):
            raise ConfigError(f"{SETTING_HOME_MOUNT_PATH} must be a string")
        template_keys(home_mount_path, MOUNT_PATH_KEYS, SETTING_HOME_MOUNT_PATH)
        sample_mount = render_template(home_mount_path, _SAMPLE, SETTING_HOME_MOUNT_PATH)
        _check_mount_path(sample_mount, SETTING_HOME_MOUNT_PATH, ConfigError)

        if not isinstance(seed_home_from, str):
            raise ConfigError(f"{SETTING_SEED_HOME_FROM} must be a string")
        if seed_home_from:
            _check_absolute(seed_home_from, SETTING_SEED_HOME_FROM, ConfigError)
            if seed_home_from == "/":
                raise ConfigError(f"{SETTING_SEED_HOME_FROM} must not be /")
            fixed = "{" not in home_mount_path
            prefix = home_mount_path if fixed else _literal_prefix(home_mount_path) or "/"
            # every user's home would be inside the skeleton, or the skeleton inside the home
            if path_is_under(prefix, seed_home_from) or (
                fixed and _overlaps(seed_home_from, prefix)
            ):
                raise ConfigError(
                    f"{SETTING_SEED_HOME_FROM} overlaps {SETTING_HOME_MOUNT_PATH}: the home "
                    "volume hides the image's files there (Kubeflow images keep their skeleton "
                    "in /tmp_home/jovyan for this reason)"
                )

        if data_shares is None:
            data_shares = ()
        if isinstance(data_shares, (str, Mapping)) or not isinstance(data_shares, Sequence):
            raise ConfigError(f"{SETTING_DATA_SHARES} must be a list of mappings")
        shares = tuple(
            DataShare.from_config(s, f"{SETTING_DATA_SHARES}[{i}]")
            for i, s in enumerate(data_shares)
        )
        seen: set[str] = set()
        for share in shares:
            if share.name in seen:
                raise ConfigError(f"{SETTING_DATA_SHARES}: the name {share.name} is used twice")
            seen.add(share.name)
        return cls(
            home=home,
            home_mount_path=home_mount_path,
            data_shares=shares,
            seed_home_from=seed_home_from,
        )


# ---------------------------------------------------------------------------
# Building the pod patch
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StoragePlan:
    """What :func:`build_storage` returns."""

    patch: PodPatch
    #: where the home is in the pod: HOME, the working directory and the passwd entry's home
    home_mount_path: str
    #: one line per mount ("pvc homes subPath alice -> /home/alice"), for logs and previews
    summary: tuple[str, ...] = ()


def _record_values(record: UserRecord) -> dict[str, str]:
    """Record fields as template values, each checked: a username must be one safe path
    segment, ids non-negative integers."""
    if not isinstance(record.username, str) or not SEGMENT_RE.match(record.username):
        raise StorageError(
            "the username cannot be used in a path (allowed: one segment of A-Z a-z 0-9 _ . -, "
            "not starting with . or -)",
            reason="unsafe_storage_path",
        )
    values = {"username": record.username}
    for key in ("uid", "gid"):
        value = getattr(record, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise StorageError(f"the directory record's {key} is not a non-negative integer")
        values[key] = str(value)
    return values


def _render_absolute(template: str, values: Mapping[str, str], setting: str) -> str:
    rendered = render_template(template, values, setting)
    _check_absolute(rendered, setting, StorageError)
    prefix = _literal_prefix(template)
    if prefix and not path_is_under(rendered, prefix):
        raise StorageError(f"{setting} leaves its directory {prefix}", reason="unsafe_storage_path")
    return rendered


class _Volumes:
    """Collects volumes; one volume per PVC however many mounts use it (two pod volumes for
    the same claim are legal but some kubelet/CSI versions handle them badly)."""

    def __init__(self) -> None:
        self.volumes: list[dict[str, Any]] = []
        self._claims: dict[str, dict[str, Any]] = {}

    def claim(self, claim_name: str, volume_name: str, read_only: bool) -> str:
        existing = self._claims.get(claim_name)
        if existing is not None:
            if not read_only:
                existing["persistentVolumeClaim"]["readOnly"] = False
            return existing["name"]
        volume = {
            "name": volume_name,
            "persistentVolumeClaim": {"claimName": claim_name, "readOnly": read_only},
        }
        self._claims[claim_name] = volume
        self.volumes.append(volume)
        return volume_name

    def add(self, volume: dict[str, Any]) -> str:
        self.volumes.append(volume)
        return volume["name"]


def _home_mount(
    home: HomeVolume, record: UserRecord, values: dict[str, str], mount_path: str, vols: _Volumes
) -> tuple[dict[str, Any], str]:
    root, relative = resolve_home(record.home, home.export_roots)
    values = dict(values, home=record.home, home_relative=relative)
    mount: dict[str, Any] = {"name": HOME_VOLUME_NAME, "mountPath": mount_path}
    if home.type == "pvc":
        setting = f"{SETTING_HOME_VOLUME}.sub_path"
        sub_path = render_template(home.sub_path, values, setting)
        _check_relative(sub_path, setting, StorageError)
        mount["name"] = vols.claim(home.claim_name, HOME_VOLUME_NAME, read_only=False)
        mount["subPath"] = sub_path
        return mount, f"home: pvc {home.claim_name} subPath {sub_path} -> {mount_path}"
    setting = f"{SETTING_HOME_VOLUME}.path"
    path = _render_absolute(home.path, values, setting)
    if path == "/":
        raise StorageError(f"{setting} renders to /", reason="unsafe_storage_path")
    if home.type == "nfs":
        vols.add({"name": HOME_VOLUME_NAME, "nfs": {"server": home.server, "path": path}})
        return mount, f"home: nfs {home.server}:{path} -> {mount_path}"
    # type Directory: a missing home fails the mount instead of kubelet creating it as root
    vols.add({"name": HOME_VOLUME_NAME, "hostPath": {"path": path, "type": "Directory"}})
    return mount, f"home: hostPath {path} -> {mount_path}"


def _share_mounts(
    share: DataShare, user_groups: frozenset[str], values: dict[str, str], vols: _Volumes
) -> list[tuple[dict[str, Any], str]]:
    setting = f"{SETTING_DATA_SHARES}[{share.name}]"
    if share.per_group:
        targets = [(i, g) for i, g in enumerate(share.allowed_groups) if g in user_groups]
    elif not share.allowed_groups or user_groups.intersection(share.allowed_groups):
        targets = [(None, "")]
    else:
        targets = []

    result = []
    for index, group in targets:
        if group and not SEGMENT_RE.match(group):
            raise StorageError(f"{setting}: a group cannot be used in a path")
        v = dict(values, group=group)
        volume_name = SHARE_VOLUME_PREFIX + share.name + ("" if index is None else f"-{index}")
        mount_path = render_template(share.mount_path, v, f"{setting}.mount_path")
        _check_mount_path(mount_path, f"{setting}.mount_path", StorageError)
        # "name" first: the mount reads like the manifests admins know
        mount: dict[str, Any] = {"name": "", "mountPath": mount_path, "readOnly": share.read_only}
        if share.type == "pvc":
            mount["name"] = vols.claim(
                share.claim_name, SHARE_VOLUME_PREFIX + share.name, share.read_only
            )
            what = f"pvc {share.claim_name}"
            if share.sub_path:
                sub_path = render_template(share.sub_path, v, f"{setting}.sub_path")
                _check_relative(sub_path, f"{setting}.sub_path", StorageError)
                mount["subPath"] = sub_path
                what += f" subPath {sub_path}"
        else:
            path = _render_absolute(share.path, v, f"{setting}.path")
            if share.type == "nfs":
                source = {
                    "nfs": {"server": share.server, "path": path, "readOnly": share.read_only}
                }
                what = f"nfs {share.server}:{path}"
            else:
                source = {"hostPath": {"path": path, "type": "Directory"}}
                what = f"hostPath {path}"
            mount["name"] = vols.add({"name": volume_name, **source})
        mode = "ro" if share.read_only else "rw"
        result.append((mount, f"data {share.name}: {what} -> {mount_path} ({mode})"))
    return result


def seed_init_container(
    *,
    image: str,
    uid: int,
    gid: int,
    home_mount: Mapping[str, Any],
    seed_from: str,
    image_pull_policy: str | None = None,
    resources: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The init container that copies ``seed_from`` into an empty home, as the user.

    Inputs go through the environment only; the script text is fixed (nbspawner/data/seed-home.sh)
    and passed as ``sh -c`` so nothing has to be mounted for it.
    """
    container: dict[str, Any] = {
        "name": SEED_CONTAINER_NAME,
        "image": image,
        "command": ["/bin/sh", "-c", seed_script(), SEED_CONTAINER_NAME],
        "env": [
            {"name": "NBS_SEED_FROM", "value": seed_from},
            {"name": "NBS_HOME", "value": home_mount["mountPath"]},
            {"name": "NBS_UID", "value": str(uid)},
            {"name": "NBS_GID", "value": str(gid)},
        ],
        "securityContext": restricted_container_security_context(uid, gid, read_only_root=True),
        "volumeMounts": [dict(home_mount)],
    }
    if image_pull_policy:
        container["imagePullPolicy"] = image_pull_policy
    if resources:
        container["resources"] = dict(resources)
    return container


def build_storage(
    config: StorageConfig,
    record: UserRecord,
    *,
    image: str,
    image_pull_policy: str | None = None,
    seed_resources: Mapping[str, Any] | None = None,
    access_groups: Iterable[str] | None = None,
) -> StoragePlan:
    """Volumes, mounts, seeding and HOME for ``record``'s pod.

    ``image`` is the notebook image (the seeding init container uses it, so the skeleton is
    the image's own). ``access_groups`` are the group names that decide which data shares the
    user gets (default: ``record.groups``; the spawner passes the union with the hub's groups
    when ``NBSpawner.access_groups_from`` says so). Raises StorageError (the spawner refuses
    to start, no pod) when a path rendered from the record is unsafe or the home lies outside
    the export roots.
    """
    groups = frozenset(record.groups if access_groups is None else access_groups)
    values = _record_values(record)
    mount_path = render_template(config.home_mount_path, values, SETTING_HOME_MOUNT_PATH)
    _check_mount_path(mount_path, SETTING_HOME_MOUNT_PATH, StorageError)

    patch = PodPatch(env={"HOME": mount_path})
    vols = _Volumes()
    summary: list[str] = []
    mount_paths = {mount_path: SETTING_HOME_MOUNT_PATH}

    home_mount = None
    if config.home.type != "none":
        home_mount, line = _home_mount(config.home, record, values, mount_path, vols)
        patch.volume_mounts.append(home_mount)
        # start in the home nbspawner mounts (unless the admin chose a working_dir)
        patch.working_dir = mount_path
        summary.append(line)

    for share in config.data_shares:
        for mount, line in _share_mounts(share, groups, values, vols):
            setting = f"{SETTING_DATA_SHARES}[{share.name}].mount_path"
            if mount["mountPath"] in mount_paths:
                raise StorageError(
                    f"{setting} is the same as {mount_paths[mount['mountPath']]}: "
                    "two mounts at one path",
                    reason="storage_conflict",
                )
            mount_paths[mount["mountPath"]] = setting
            patch.volume_mounts.append(mount)
            summary.append(line)

    if home_mount is not None and config.seed_home_from:
        if record.uid == 0 or record.gid == 0:
            raise StorageError(
                "the home would be seeded as uid or gid 0; refusing (root-owned files in a home)",
                reason="root_id",
            )
        if _overlaps(config.seed_home_from, mount_path):
            # e.g. seed_home_from /home/jovyan with /home/{username} for a user named jovyan:
            # the home hides the skeleton; starting without seeding beats refusing the user
            summary.append(f"seed: skipped, {config.seed_home_from} overlaps {mount_path}")
        else:
            patch.init_containers.append(
                seed_init_container(
                    image=image,
                    uid=record.uid,
                    gid=record.gid,
                    home_mount=home_mount,
                    seed_from=config.seed_home_from,
                    image_pull_policy=image_pull_policy,
                    resources=seed_resources,
                )
            )
            summary.append(f"seed: {config.seed_home_from} -> {mount_path} when empty")

    patch.volumes.extend(vols.volumes)
    return StoragePlan(patch=patch, home_mount_path=mount_path, summary=tuple(summary))


def check_pod_conflicts(
    pod: Mapping[str, Any], patch: PodPatch, container_name: str = "notebook"
) -> None:
    """Raise ConfigError if ``patch`` clashes with what kubespawner already put in ``pod``
    (a camelCase pod dict): a volume name, an init container name, or a mount path of the
    notebook container. The usual cause is z2jh's ``singleuser.storage.type`` still being
    ``dynamic`` or ``static`` (a second home at ``singleuser.storage.homeMountPath``)."""
    spec = pod.get("spec") or {}
    names = {v.get("name") for v in spec.get("volumes") or []}
    for volume in patch.volumes:
        if volume["name"] in names:
            raise ConfigError(
                f"the pod already has a volume named {volume['name']}; rename the volume in "
                "singleuser.storage.extraVolumes or KubeSpawner.volumes"
            )
    init_names = {c.get("name") for c in spec.get("initContainers") or []}
    for container in patch.init_containers:
        if container["name"] in init_names:
            raise ConfigError(f"the pod already has an init container named {container['name']}")
    for container in spec.get("containers") or []:
        if container.get("name") != container_name:
            continue
        existing = {
            normalise(m["mountPath"])
            for m in container.get("volumeMounts") or []
            if isinstance(m.get("mountPath"), str)
        }
        for mount in patch.volume_mounts:
            path = normalise(mount["mountPath"])
            if path in existing:
                raise ConfigError(
                    f"the notebook container already mounts something at {path}: with "
                    f"{SETTING_HOME_VOLUME} set, set z2jh's singleuser.storage.type to none "
                    f"(or change {SETTING_HOME_MOUNT_PATH} / the data share's mount_path)"
                )
