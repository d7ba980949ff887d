"""The storage settings, validated once: ``home_volume``, ``home_mount_path``, ``data_shares``,
``seed_home_from``.

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

This module validates them once (unknown keys, bad templates and bad
literal paths are a :class:`~nbspawner.errors.ConfigError` naming the setting) and
:func:`build_storage` turns it plus one :class:`~nbspawner.directory.base.UserRecord` into
volumes, mounts, an optional seeding init container, ``HOME`` and the working directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .paths import (
    check_absolute,
    check_own_mount_path,
    check_relative,
    overlaps,
)
from .policy import path_is_under
from .templates import literal_prefix, render_template, template_keys

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
#: a data share's name: part of a volume name (a DNS-1123 label, 63 characters at most)
SHARE_NAME_RE = re.compile(r"\A[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?\Z")
#: a PVC name (DNS-1123 subdomain)
CLAIM_NAME_RE = re.compile(r"\A[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
#: an NFS server: host name, IPv4 or IPv6 address
SERVER_RE = re.compile(r"\A[A-Za-z0-9.:\[\]-]{1,253}\Z")


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
            check_absolute(root, f"{setting}.export_roots", ConfigError)
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
            check_absolute(
                render_template(path, sample, f"{setting}.path"), f"{setting}.path", ConfigError
            )
            kwargs["path"] = path
        if kind == "pvc":
            kwargs["claim_name"] = _check_claim(
                _get_str(data, "claim_name", setting), f"{setting}.claim_name"
            )
            sub_path = _get_str(data, "sub_path", setting, cls.sub_path)
            template_keys(sub_path, HOME_PATH_KEYS - {"home"}, f"{setting}.sub_path")
            check_relative(
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
        check_own_mount_path(
            render_template(self.mount_path, _SAMPLE, setting),
            f"{setting}.mount_path",
            ConfigError,
        )
        if self.type in ("nfs", "hostPath"):
            check_absolute(
                render_template(self.path, _SAMPLE, setting), f"{setting}.path", ConfigError
            )
        if self.type == "pvc" and self.sub_path:
            check_relative(
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
        check_own_mount_path(sample_mount, SETTING_HOME_MOUNT_PATH, ConfigError)

        if not isinstance(seed_home_from, str):
            raise ConfigError(f"{SETTING_SEED_HOME_FROM} must be a string")
        if seed_home_from:
            check_absolute(seed_home_from, SETTING_SEED_HOME_FROM, ConfigError)
            if seed_home_from == "/":
                raise ConfigError(f"{SETTING_SEED_HOME_FROM} must not be /")
            fixed = "{" not in home_mount_path
            prefix = home_mount_path if fixed else literal_prefix(home_mount_path) or "/"
            # every user's home would be inside the skeleton, or the skeleton inside the home
            if path_is_under(prefix, seed_home_from) or (
                fixed and overlaps(seed_home_from, prefix)
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
