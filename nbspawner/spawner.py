"""NBSpawner: KubeSpawner plus the user's identity, catalog profiles, storage and passwd entry.

This module is glue only. The work is done by pure modules (``policy``, ``profiles``,
``storage``, ``passwd``, ``security``) and the directory backends; this class wires them
into the two places kubespawner supports for subclasses:

- :meth:`NBSpawner.load_user_options` (async, once per spawn): resolve the user in the
  directory, check the user's choice against the profiles *they* may use, let kubespawner
  apply the profile, then pin uid/gid/groups so no profile or override can change them.
- :meth:`NBSpawner.get_pod_manifest`: add the home and data mounts and the passwd init
  container to the pod kubespawner built, harden it to Pod Security "restricted", and
  refuse a pod that still fails the restricted checks.

The z2jh chart sets ``KubeSpawner.profile_list = []`` and ``KubeSpawner.uid = 1000``; config
on the parent class beats defaults of a subclass, so the catalog is installed in ``__init__``
(only when the admin has not set a profile list) and uid/gid are set at spawn time.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from tornado import web
from traitlets import Bool, Dict, Enum, Float, Int, List, TraitError, Unicode, observe, validate

from . import metrics, passwd, security
from .catalog import Catalog, CatalogFile, load_data
from .directory import directory_entry_points
from .directory.base import Directory, UserRecord
from .directory.cache import CachedDirectory
from .errors import (
    ClusterRejected,
    ConfigError,
    DirectoryError,
    ForbiddenChoice,
    NBSpawnerError,
    UnsafePod,
    UserNotFound,
)
from .ids import id_problem, shown
from .k8s import dict_to_model, model_to_dict, update_pod_model
from .paths import pod_mount_problems
from .podpatch import PodPatch, apply_to_pod
from .policy import (
    DEFAULT_MAX_GROUPS,
    DEFAULT_MAX_ID,
    MAX_GROUPS_LIMIT,
    NAME_RE,
    SPECIAL_IDS,
    IdentityPolicy,
    validate_record,
)
from .profiles import build_profile_list, resolve_selection
from .storage import StorageConfig, build_storage, check_pod_conflicts

try:  # JupyterHub >= 6.0
    from jupyterhub.spawner import SpawnException as _SpawnException
except ImportError:  # JupyterHub 5.x
    _SpawnException = None


def user_facing_error(err: NBSpawnerError) -> web.HTTPError:
    """The exception the hub shows the user: a short sentence, no internals.

    JupyterHub 6 has ``SpawnException`` (status, reason label, user message); on 5.x a
    ``tornado.web.HTTPError`` carrying ``jupyterhub_message`` gives the same page.
    """
    if _SpawnException is not None:
        exc = _SpawnException(
            err.user_message,
            reason=err.reason,
            log_message=err.user_message,
            status_code=err.status,
        )
    else:
        exc = web.HTTPError(err.status, err.user_message, reason=err.reason)
    exc.jupyterhub_message = err.user_message
    return exc


# One directory (and its cache and connection pool) per hub, shared by every spawner.
# Keyed by the directory class and its configuration, so tests with other config get their own.
_SHARED_DIRECTORIES: dict[str, CachedDirectory] = {}
# One catalog file watcher per path, and parsed inline catalogs, likewise shared.
_CATALOG_FILES: dict[tuple[str, float], CatalogFile] = {}
_INLINE_CATALOGS: dict[str, Catalog] = {}
_STORAGE_CONFIGS: dict[str, StorageConfig] = {}


def _config_key(cls: type, config: Mapping[str, Any], extra: Mapping[str, Any]) -> str:
    section = {}
    for klass in cls.mro():
        name = klass.__name__
        if name in config:
            section[name] = config[name]
    blob = json.dumps(
        [cls.__module__, cls.__qualname__, section, extra], sort_keys=True, default=repr
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class _DirectoryClass(EntryPointType):
    """``directory_class``: a short name (built-in or an installed entry point) or a class."""

    def load_entry_points(self) -> dict[str, Any]:
        return directory_entry_points()


class NBSpawner(KubeSpawner):
    """KubeSpawner that runs each user's pod with their directory identity."""

    # ------------------------------------------------------------------ directory
    directory_class = _DirectoryClass(
        default_value="nbspawner.directory.static.StaticDirectory",
        klass=Directory,
        entry_point_group="nbspawner.directories",
        config=True,
        help="""Where users' uid, gid, groups and home come from.

        An entry point name (``static``, ``ldap``, ``oidc``, ``ldapauth``, ``http``, ``chain``)
        or a class. Each backend has its own settings, e.g. ``c.LDAPDirectory.server_urls``.
        """,
    )
    directory_cache_ttl = Float(
        300.0, config=True, help="Seconds a resolved user record is reused before asking again."
    )
    directory_negative_cache_ttl = Float(
        30.0, config=True, help="Seconds a 'user not found' answer is remembered."
    )
    directory_cache_size = Int(
        10000, config=True, help="Most user records kept in the cache (least recently used go)."
    )
    fallback_identity = Dict(
        config=True,
        help="""An identity to use when the directory does not know the user.

        Off (empty) by default: a user who cannot be resolved gets no pod, because a guessed
        uid on a shared NFS export reads someone else's files. Set e.g.
        ``{"uid": 1000, "gid": 100, "home": "/home/jovyan"}`` only for sites without shared
        storage. Never used when the directory is *down* (that always fails closed).
        """,
    )

    # ------------------------------------------------------------------ policy
    min_uid = Int(1000, config=True, help="Smallest uid a user's pod may run as.")
    min_gid = Int(1, config=True, help="Smallest primary gid accepted (0 needs allow_gid_zero).")
    max_uid = Int(
        DEFAULT_MAX_ID,
        config=True,
        help="""Largest uid a user's pod may run as. Whatever it says, 65534 (nobody), 65535,
        4294967294 and 4294967295 are never accepted: file servers treat them specially.""",
    )
    max_gid = Int(
        DEFAULT_MAX_ID,
        config=True,
        help="Largest primary gid accepted (65534, 65535, 4294967294, 4294967295 never are).",
    )
    max_groups = Int(
        DEFAULT_MAX_GROUPS,
        config=True,
        help=f"""Most POSIX groups (and supplementary gids) a user may have; a record with
        more is refused at lookup with a readable message. The passwd hook passes the groups
        to its init container in one environment variable, which the kernel limits to 128 KiB,
        so at most {MAX_GROUPS_LIMIT}.""",
    )
    allow_gid_zero = Bool(
        False,
        config=True,
        help="Accept gid 0 as a primary or supplemental group. uid 0 is never accepted.",
    )
    home_roots = List(
        Unicode(),
        config=True,
        help="""Directory home paths must lie under one of these (e.g. ``["/home", "/export/home"]``).

        Empty: any normalised absolute path is accepted.
        """,
    )
    access_groups_from = Enum(
        ["directory", "hub", "both"],
        default_value="both",
        config=True,
        help="""Which group names decide the profiles and data shares a user may use:
        the directory record's groups, the user's JupyterHub groups, or both (their union).""",
    )
    default_groups = Dict(
        {"users": 100},
        config=True,
        help="""Groups (name: gid) every pod gets besides the user's own, as supplementary gids
        and named in the pod's /etc/group.

        ``users`` (100) keeps the conda environment of jupyter/docker-stacks images usable under
        a directory uid (it is group-owned and group-writable by ``users``).""",
    )
    keep_fs_gid = Bool(
        False,
        config=True,
        help="""Keep KubeSpawner.fs_gid (z2jh sets 100). Off by default: with ``fsGroup`` the kubelet
        may recursively change the group of a mounted home, which must stay owned as on the file server.""",
    )

    # ------------------------------------------------------------------ catalog
    catalog_file = Unicode(
        "",
        config=True,
        help="""The image catalog file (YAML) the profiles are built from, e.g. a ConfigMap
        mounted at /usr/local/etc/nbspawner/. Re-read when it changes (hot reload); a bad edit
        keeps the last good catalog. Ignored when KubeSpawner.profile_list is set.""",
    )
    catalog = Dict(
        config=True,
        help="""The image catalog inline (the same structure as the file), e.g. under z2jh's
        ``hub.config.NBSpawner.catalog``. ``catalog_file`` wins when both are set.""",
    )
    catalog_check_interval = Float(
        0.0,
        config=True,
        help="Least seconds between checks of catalog_file for changes (0: every spawn).",
    )

    # ------------------------------------------------------------------ storage
    home_volume = Dict(
        config=True,
        help="""Where users' homes come from: ``{"type": "pvc" | "nfs" | "hostPath" | "none", ...}``.

        ``pvc``: ``claim_name``, ``export_roots``, optional ``sub_path`` (default
        ``{home_relative}``: the record's home relative to its export root). ``nfs``: ``server``,
        ``export_roots``, optional ``path``. ``hostPath``: ``export_roots``, optional ``path``.
        Empty or ``none``: nbspawner mounts no home (leave it to z2jh's ``singleuser.storage``).
        Only ``pvc`` passes Pod Security "restricted". See the NFS homes guide.""",
    )
    home_mount_path = Unicode(
        "/home/{username}",
        config=True,
        help="""Where the home appears in the pod (``{username}`` is the directory username).
        ``/home/jovyan`` suits images that expect jovyan (docker-stacks, Kubeflow). HOME, the
        working directory and the passwd entry all agree with it.""",
    )
    data_shares = List(
        Dict(),
        config=True,
        help="""Data mounts: each ``{"name", "type": "pvc" | "nfs" | "hostPath", "mount_path",
        "claim_name"/"server"/"path"/"sub_path", "read_only" (default true), "allowed_groups"}``.
        Templates may use ``{username}``, ``{uid}``, ``{gid}`` and ``{group}`` (one mount per
        allowed group of the user).""",
    )
    seed_home_from = Unicode(
        "/tmp_home/jovyan",
        config=True,
        help="""A skeleton directory in the image copied into the home when the home is empty
        (as the user, never overwriting). Kubeflow images keep one in /tmp_home/jovyan. Empty
        string: no seeding.""",
    )

    # ------------------------------------------------------------------ passwd + pod security
    passwd_hook = Enum(
        ["init-container", "secret", "off"],
        default_value="init-container",
        config=True,
        help="""How the user's passwd/group entry gets into the pod ("I have no name!" fix).

        ``init-container``: the notebook image itself, as the user, writes the files into an
        in-memory volume mounted read-only over /etc/passwd and /etc/group. ``secret``: the hub
        renders them into a per-pod Secret (for images without /bin/sh; the catalog can also
        ask for this per image). ``off``: nothing (not recommended).""",
    )
    passwd_shell = Unicode(
        "/bin/bash",
        config=True,
        help="Login shell written to the passwd entry. Empty: keep the directory's loginShell.",
    )
    pod_security_level = Enum(
        ["restricted", "baseline", "privileged"],
        default_value="restricted",
        config=True,
        help="""The Pod Security Standard nbspawner checks every pod against before creating it.

        ``restricted`` (default) matches a namespace labelled
        ``pod-security.kubernetes.io/enforce: restricted``. ``baseline`` additionally allows
        inline ``nfs`` volumes, ``privileged`` also ``hostPath`` volumes (for nodes that mount
        homes themselves). Root, privilege escalation and added capabilities are refused at
        every level.""",
    )

    # ------------------------------------------------------------------ settings checks
    # A bad value fails when it is set (hub start), naming Class.trait and the value.
    @validate("directory_cache_size")
    def _valid_cache_size(self, proposal: Any) -> int:
        value = proposal["value"]
        if value < 1:
            raise TraitError(
                f"NBSpawner.directory_cache_size must be at least 1, not {value!r} "
                "(use directory_cache_ttl: 0 to keep records for no time)"
            )
        return value

    @validate("directory_cache_ttl", "directory_negative_cache_ttl")
    def _valid_ttl(self, proposal: Any) -> float:
        value = proposal["value"]
        if not value >= 0:  # also refuses NaN
            raise TraitError(f"NBSpawner.{proposal['trait'].name} must be >= 0, not {value!r}")
        return value

    @validate("min_uid", "max_uid", "min_gid", "max_gid")
    def _valid_id_bound(self, proposal: Any) -> int:
        value = proposal["value"]
        problem = id_problem(value)
        if problem is not None:
            raise TraitError(f"NBSpawner.{proposal['trait'].name}: {problem}")
        return value

    @validate("max_groups")
    def _valid_max_groups(self, proposal: Any) -> int:
        value = proposal["value"]
        if not 1 <= value <= MAX_GROUPS_LIMIT:
            raise TraitError(
                f"NBSpawner.max_groups must be between 1 and {MAX_GROUPS_LIMIT}, not {value!r} "
                "(the passwd hook's environment variable holds at most 128 KiB)"
            )
        return value

    @validate("default_groups")
    def _valid_default_groups(self, proposal: Any) -> dict[str, int]:
        groups = proposal["value"]
        for name, gid in groups.items():
            if not isinstance(name, str) or not NAME_RE.match(name):
                raise TraitError(
                    f"NBSpawner.default_groups: {shown(name)} is not a valid POSIX group name"
                )
            problem = id_problem(gid)
            if problem is not None:
                raise TraitError(f"NBSpawner.default_groups[{name!r}]: {problem}")
            if gid in SPECIAL_IDS:
                raise TraitError(
                    f"NBSpawner.default_groups[{name!r}]: gid {gid} is an id file servers "
                    "treat specially"
                )
        return groups

    @validate("fallback_identity")
    def _valid_fallback_identity(self, proposal: Any) -> dict[str, Any]:
        fb = proposal["value"]
        if not fb:
            return fb
        unknown = set(fb) - {"uid", "gid", "home", "groups", "supplemental_gids", "gecos", "shell"}
        if unknown or not {"uid", "gid", "home"} <= set(fb):
            raise TraitError(
                "NBSpawner.fallback_identity needs uid, gid and home and nothing else "
                f"(unknown keys: {sorted(map(shown, unknown))})"
            )
        gids = fb.get("supplemental_gids", ())
        if not isinstance(gids, (list, tuple)):
            raise TraitError("NBSpawner.fallback_identity.supplemental_gids must be a list")
        for where, value in [("uid", fb["uid"]), ("gid", fb["gid"])] + [
            (f"supplemental_gids[{i}]", g) for i, g in enumerate(gids)
        ]:
            problem = id_problem(value)
            if problem is not None:
                raise TraitError(f"NBSpawner.fallback_identity.{where}: {problem}")
        return fb

    # ------------------------------------------------------------------ hooks
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._nb_record: UserRecord | None = None
        self._nb_events: list[dict[str, Any]] = []
        self._nb_identity_done: asyncio.Event | None = None
        self._nb_image_needs: Any = None
        #: Secrets to create before the pod (passwd "secret" mode); filled by get_pod_manifest
        self.pending_secrets: list[dict[str, Any]] = []
        #: a dry run (``nbspawner render``): build manifests, create nothing
        self.dry_run = False
        self._nb_catalog: Catalog | None = None
        #: inside load_user_options: the record and catalog of this spawn are kept for it
        self._nb_spawning = False
        self._nb_profile_list: list[dict[str, Any]] | None = None
        #: this spawn's supplementary gids (apply_identity), reused by secure_pod
        self._nb_gids: tuple[UserRecord, list[int]] | None = None
        #: the admin's KubeSpawner.supplemental_gids: every user gets them on top of the
        #: directory's groups (a profile's override is not the admin's setting and is ignored)
        admin_gids = self.supplemental_gids
        self._nb_admin_gids: tuple[int, ...] = (
            tuple(admin_gids) if isinstance(admin_gids, (list, tuple)) else ()
        )
        # z2jh always sets profile_list = [] on KubeSpawner, which beats any default of ours: the
        # catalog is installed here, and only when the admin has not written a profile list.
        if not self.profile_list and (self.catalog_file or self.catalog):
            self.profile_list = self._catalog_profile_list

    # Settings objects built from several traits are used a few times per spawn: each is kept
    # until one of its traits is set again (config, a profile's kubespawner_override, a test).
    _MEMO_TRAITS = {
        "identity_policy": (
            "min_uid",
            "max_uid",
            "min_gid",
            "max_gid",
            "allow_gid_zero",
            "home_roots",
            "max_groups",
        ),
        "passwd_config": (
            "passwd_hook",
            "passwd_shell",
            "default_groups",
            "allow_gid_zero",
            "image_pull_policy",
        ),
        "storage_config": ("home_volume", "home_mount_path", "data_shares", "seed_home_from"),
    }

    @observe(*sorted({t for traits in _MEMO_TRAITS.values() for t in traits}))
    def _nb_forget_settings(self, change: Any) -> None:
        memo = self.__dict__.get("_nb_memo")
        if memo:
            for key, traits in self._MEMO_TRAITS.items():
                if change["name"] in traits:
                    memo.pop(key, None)

    def _nb_memoized(self, key: str, build: Any) -> Any:
        memo = self.__dict__.setdefault("_nb_memo", {})
        value = memo.get(key)
        if value is None:
            value = memo[key] = build()
        return value

    @property
    def identity_policy(self) -> IdentityPolicy:
        return self._nb_memoized("identity_policy", self._build_identity_policy)

    def _build_identity_policy(self) -> IdentityPolicy:
        return IdentityPolicy(
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            max_uid=self.max_uid,
            max_gid=self.max_gid,
            allow_gid_zero=self.allow_gid_zero,
            home_roots=tuple(self.home_roots),
            max_groups=self.max_groups,
        )

    # -------------------------------------------------------------- directory glue
    def shared_directory(self) -> CachedDirectory:
        """The hub-wide cached directory for this configuration (created on first use)."""
        cached = self.__dict__.get("_nb_directory")
        if cached is not None:
            return cached
        extra = {
            "ttl": self.directory_cache_ttl,
            "negative_ttl": self.directory_negative_cache_ttl,
            "size": self.directory_cache_size,
        }
        key = _config_key(self.directory_class, self.config, extra)
        cached = _SHARED_DIRECTORIES.get(key)
        if cached is None:
            backend = self.directory_class(parent=self, log=self.log)
            cached = CachedDirectory(
                backend,
                ttl=self.directory_cache_ttl,
                negative_ttl=self.directory_negative_cache_ttl,
                max_size=self.directory_cache_size,
            )
            _SHARED_DIRECTORIES[key] = cached
        self.__dict__["_nb_directory"] = cached
        return cached

    async def _auth_state(self) -> Mapping[str, Any] | None:
        get = getattr(self.user, "get_auth_state", None)
        if get is None:
            return None
        state = get()
        if inspect.isawaitable(state):
            state = await state
        return state if isinstance(state, Mapping) else None

    @property
    def _log_name(self) -> str:
        """JupyterHub's ``user`` or ``user:server`` for log lines, quoted like ``repr`` when it
        holds anything but plain printable text, so a hostile name cannot forge a log line."""
        name = super()._log_name
        return name if name.isprintable() and " " not in name else repr(name)

    #: the admin's log message of the last refusal (``nbspawner check --user`` reports it)
    last_refusal: str | None = None
    #: this spawn's catalog choice (image, size, GPU), once check_user_options resolved it
    selection: Any = None

    def _refuse(self, err: NBSpawnerError) -> web.HTTPError:
        self.last_refusal = err.log_message
        metrics.REFUSALS.labels(reason=err.reason).inc()
        self.log.warning("Refusing to spawn %s: %s", self._log_name, err.log_message)
        return user_facing_error(err)

    async def resolve_identity(self) -> UserRecord:
        """Look the user up (through the cache) and validate the record against the policy.

        Raises the user-facing error on any failure: no pod is ever built with a guessed uid.
        """
        if self._nb_record is not None:
            return self._nb_record
        username = self.user.name
        try:
            # built inside the refusal path: a bad backend setting is a readable refusal
            try:
                directory = self.shared_directory()
            except TraitError as e:
                raise ConfigError(f"{self.directory_class.__name__}: {e}") from None
            try:
                record = await directory.lookup(username, await self._auth_state())
            except UserNotFound:
                if not self.fallback_identity:
                    raise
                record = self._fallback_record(username)
                self.log.warning(
                    "%r is not in the directory; using NBSpawner.fallback_identity", username
                )
            record = validate_record(record, self.identity_policy, username=username)
        except NBSpawnerError as err:
            raise self._refuse(err) from None
        self._nb_record = record
        return record

    def _fallback_record(self, username: str) -> UserRecord:
        fb = dict(self.fallback_identity)
        unknown = set(fb) - {"uid", "gid", "home", "groups", "supplemental_gids", "gecos", "shell"}
        if unknown or not {"uid", "gid", "home"} <= set(fb):
            raise ConfigError(
                "NBSpawner.fallback_identity needs uid, gid and home and nothing else "
                f"(unknown keys: {sorted(unknown)})"
            )
        home = str(fb["home"]).replace("{username}", username)
        return UserRecord(
            username=username,
            uid=int(fb["uid"]),  # checked by _valid_fallback_identity
            gid=int(fb["gid"]),
            home=home,
            groups=tuple(fb.get("groups", ())),
            supplemental_gids=tuple(int(g) for g in fb.get("supplemental_gids", ())),
            gecos=str(fb.get("gecos", "")),
            shell=str(fb.get("shell", "/bin/bash")),
            source="fallback",
        )

    def access_groups(self, record: UserRecord) -> frozenset[str]:
        groups: set[str] = set()
        if self.access_groups_from in ("directory", "both"):
            groups.update(record.groups)
        if self.access_groups_from in ("hub", "both"):
            groups.update(g.name for g in getattr(self.user, "groups", ()) or ())
        return frozenset(groups)

    async def user_profile_list(self) -> list[dict[str, Any]]:
        """The profiles this user may pick, initialised as kubespawner initialises them."""
        profile_list = self.profile_list
        if callable(profile_list):
            profile_list = await maybe_future(profile_list(self))
        return self._get_initialized_profile_list(self._sorted_dict_values(profile_list))

    # -------------------------------------------------------------- progress
    def _progress(self, message: str, progress: int) -> None:
        self._nb_events.append({"progress": progress, "message": message})

    async def progress(self):
        """Our own steps (directory lookup, checks) first, then kubespawner's pod events."""
        sent = 0
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            while sent < len(self._nb_events):
                yield self._nb_events[sent]
                sent += 1
            done = self._nb_identity_done
            start_future = getattr(self, "_start_future", None)
            if (done is not None and done.is_set()) or (
                start_future is not None and start_future.done()
            ):
                break
            await asyncio.sleep(0.2)
        while sent < len(self._nb_events):
            yield self._nb_events[sent]
            sent += 1
        async for event in super().progress():
            yield event

    # -------------------------------------------------------------- spawn
    async def load_user_options(self) -> None:
        self._nb_record = None
        self._nb_catalog = None
        self._nb_image_needs = None
        self._nb_events = []
        self._nb_identity_done = asyncio.Event()
        self._nb_spawning = True
        self._nb_profile_list = None
        self._nb_gids = None
        try:
            self._progress("Looking you up in the directory...", 5)
            record = await self.resolve_identity()
            self._progress(f"Found {record.username} in the directory (uid {record.uid})", 10)
            try:
                await self.check_user_options(record)
            except NBSpawnerError as err:
                raise self._refuse(err) from None
            await super().load_user_options()
            try:
                self.apply_identity(record)
            except NBSpawnerError as err:
                raise self._refuse(err) from None
        finally:
            self._nb_spawning = False
            self._nb_identity_done.set()

    def uses_catalog(self) -> bool:
        return self.profile_list == self._catalog_profile_list

    async def current_catalog(self) -> Catalog:
        """The catalog now (reloaded if the file changed). CatalogError if none can be loaded."""
        if self.catalog_file:
            key = (self.catalog_file, self.catalog_check_interval)
            cf = _CATALOG_FILES.get(key)
            if cf is None:
                cf = _CATALOG_FILES[key] = CatalogFile(
                    self.catalog_file, check_interval=self.catalog_check_interval, logger=self.log
                )
            return await cf.aget()
        key_inline = json.dumps(self.catalog, sort_keys=True, default=repr)
        cached = _INLINE_CATALOGS.get(key_inline)
        if cached is None:
            cached = _INLINE_CATALOGS[key_inline] = load_data(
                self.catalog, source="NBSpawner.catalog"
            )
        return cached

    def _catalog_profile_list(self, spawner: NBSpawner | None = None) -> Any:
        """kubespawner's callable profile_list: the catalog filtered by the user's groups.

        During a spawn, the list check_user_options built moments ago is returned as it is
        (kubespawner's ``maybe_future`` then needs no task); otherwise a coroutine.
        """
        if self._nb_spawning and self._nb_profile_list is not None:
            return self._nb_profile_list
        return self._build_catalog_profile_list()

    async def _build_catalog_profile_list(self) -> list[dict[str, Any]]:
        if not self._nb_spawning:
            # rendering the spawn form (the hub keeps one spawner per user for its lifetime):
            # the current record (through the cache) and the current catalog, not last spawn's
            self._nb_record = None
            self._nb_catalog = None
        record = await self.resolve_identity()
        if self._nb_catalog is None:
            try:
                self._nb_catalog = await self.current_catalog()
            except NBSpawnerError as err:
                raise self._refuse(err) from None
        return build_profile_list(self._nb_catalog, self.access_groups(record))

    async def check_user_options(self, record: UserRecord) -> None:
        """Refuse choices the user may not make, before kubespawner applies them.

        Covers the spawn form and the REST API alike: a profile, image, size or GPU that does
        not exist or that the user's groups may not use is a 4xx with one readable sentence.
        """
        if not self.uses_catalog():
            return
        self._nb_catalog = await self.current_catalog()
        profile_list = self._nb_profile_list = await self._build_catalog_profile_list()
        selection = resolve_selection(self._nb_catalog, profile_list, self.user_options)
        self.selection = selection
        self._nb_image_needs = selection.image.security
        self.log.info(
            "%s chose image %s, size %s, gpu %s",
            self._log_name,
            selection.image.slug,
            selection.size.slug if selection.size else "-",
            selection.gpu.slug if selection.gpu else "-",
        )

    def apply_identity(self, record: UserRecord) -> None:
        """Pin uid/gid/groups *after* kubespawner applied the profile: overrides can't change them."""
        chosen = self.supplemental_gids  # the admin's, a profile's override, or last spawn's
        previous = self.__dict__.get("_nb_applied_gids")
        gids = passwd.supplemental_gids(record, self.passwd_config, self._nb_image_needs)
        self._nb_gids = (record, gids)
        self._nb_applied_gids = gids
        if self._nb_admin_gids:
            self.log.info(
                "%s gets KubeSpawner.supplemental_gids %s besides the directory's groups",
                self._log_name,
                list(self._nb_admin_gids),
            )
        if isinstance(chosen, (list, tuple)) and list(chosen) not in (
            list(self._nb_admin_gids),
            gids,
            previous,
        ):
            self.log.warning(
                "%s: a profile's supplemental_gids %s are ignored: groups come from the "
                "directory (and KubeSpawner.supplemental_gids, NBSpawner.default_groups)",
                self._log_name,
                shown(list(chosen), 80),
            )
        # set only what differs (a respawn usually finds the same values; setting validates)
        if self.uid != record.uid:
            self.uid = record.uid
        if self.gid != record.gid:
            self.gid = record.gid
        if self.supplemental_gids != gids:
            self.supplemental_gids = gids
        if not self.keep_fs_gid and self.fs_gid is not None:
            self.fs_gid = None

    @property
    def passwd_config(self) -> passwd.PasswdHookConfig:
        return self._nb_memoized("passwd_config", self._build_passwd_config)

    def _build_passwd_config(self) -> passwd.PasswdHookConfig:
        return passwd.PasswdHookConfig(
            enabled=self.passwd_hook != "off",
            mode="secret" if self.passwd_hook == "secret" else "init-container",
            shell=self.passwd_shell or None,
            default_groups=tuple((str(n), int(g)) for n, g in self.default_groups.items()),
            extra_gids=self._nb_admin_gids,
            allow_gid_zero=self.allow_gid_zero,
            image_pull_policy=self.image_pull_policy,
        )

    async def get_pod_manifest(self):
        pod = await super().get_pod_manifest()
        record = await self.resolve_identity()
        pod_dict = model_to_dict(pod)
        try:
            # kubespawner's pod first (a readable cause), then the pod with nbspawner's additions
            self.check_mounts(pod_dict)
            patch = self.build_pod_patch(record, pod_dict)
            for note in apply_to_pod(pod_dict, patch):
                self.log.info("nbspawner pod %s: %s", self.pod_name, note)
            self.check_mounts(pod_dict, patch)
            pod_dict = self.secure_pod(record, pod_dict)
        except NBSpawnerError as err:
            raise self._refuse(err) from None
        # created right before the pod POST (see _make_create_pod_request)
        self.pending_secrets = patch.secrets
        return update_pod_model(pod, pod_dict)

    def check_mounts(self, pod: dict[str, Any], patch: PodPatch | None = None) -> None:
        """Refuse mounts over protected files or system trees, of nbspawner's own volumes by
        anything else, and two mounts at one path (see nbspawner.paths), in every container."""
        own: list[Any] = []
        if patch is not None:
            own = [*patch.volumes, *patch.volume_mounts]
            own += [m for c in patch.init_containers for m in c.get("volumeMounts") or ()]
        problems = pod_mount_problems(pod, own)
        if problems:
            raise UnsafePod(
                f"pod {self.pod_name}: " + "; ".join(problems),
                "The selected environment mounts a volume where it is not allowed. "
                "Please contact your administrator.",
                reason="unsafe_mount",
            )

    def secure_pod(self, record: UserRecord, pod: dict[str, Any]) -> dict[str, Any]:
        """Harden to Pod Security "restricted" and refuse what still fails the configured level."""
        if self._nb_gids is not None and self._nb_gids[0] is record:
            gids = self._nb_gids[1]  # computed by this spawn's apply_identity
        else:
            gids = passwd.supplemental_gids(record, self.passwd_config, self._nb_image_needs)
        allow_root_group = 0 in gids or record.gid == 0
        pod = security.harden_pod(
            pod,
            uid=record.uid,
            gid=record.gid,
            supplemental_gids=gids,
            fs_group=self.fs_gid,
            allow_root_group=allow_root_group,
            in_place=True,
        )
        problems = security.restricted_violations(pod, allow_root_group=allow_root_group)
        allowed_types = {"baseline": ("nfs",), "privileged": ("nfs", "hostPath")}.get(
            self.pod_security_level, ()
        )
        problems = [
            p
            for p in problems
            if not (p.startswith("volume ") and any(f"type {t!r}" in p for t in allowed_types))
        ]
        if problems:
            raise UnsafePod(
                f"pod {self.pod_name} would not pass Pod Security {self.pod_security_level!r} "
                f"(NBSpawner.pod_security_level): " + "; ".join(problems)
            )
        return pod

    async def _create_secrets(self, secrets: list[dict[str, Any]]) -> None:
        """Create the pod's Secrets, replacing leftovers (z2jh's hub Role can create and delete
        Secrets but not update them, and ours are immutable anyway)."""
        for secret in secrets:
            name = secret["metadata"]["name"]
            body = dict_to_model(secret, "V1Secret")
            try:
                await self.api.create_namespaced_secret(self.namespace, body)
            except ApiException as e:
                if e.status != 409:
                    raise
                self.log.info("Replacing leftover Secret %s of %s", name, self._log_name)
                try:
                    await self.api.delete_namespaced_secret(name, self.namespace)
                except ApiException as e2:
                    if e2.status != 404:
                        raise
                await self.api.create_namespaced_secret(self.namespace, body)
            self.log.info("Created Secret %s for %s", name, self._log_name)

    async def _make_create_pod_request(self, pod, request_timeout):
        # kubespawner's pod POST (retried after stopping a pod of the same name, which deletes
        # our Secret): the Secrets are ensured right before every attempt. An API server that
        # refuses the pod (PodSecurity admission, quota, validation) gets a readable error
        # instead of the raw API response on the spawn page.
        if self.pending_secrets and not self.dry_run:
            await self._create_secrets(self.pending_secrets)
        try:
            return await super()._make_create_pod_request(pod, request_timeout)
        except ApiException as e:
            if e.status not in (400, 403, 422):
                raise
            try:
                detail = json.loads(e.body)["message"]
            except (TypeError, ValueError, KeyError):
                detail = e.reason or f"HTTP {e.status}"
            raise self._refuse(
                ClusterRejected(
                    f"the API server refused pod {self.pod_name} ({e.status}): {detail}",
                    f"The cluster refused to start your server: {detail}. "
                    "Please contact your administrator.",
                )
            ) from None

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        if self.passwd_hook == "secret" or self.pending_secrets:
            name = passwd.secret_name(self.pod_name)
            try:
                await self.api.delete_namespaced_secret(name, self.namespace)
                self.log.info("Deleted Secret %s of %s", name, self._log_name)
            except ApiException as e:
                if e.status != 404:
                    self.log.warning("Could not delete Secret %s: %s", name, e.reason)

    @property
    def storage_config(self) -> StorageConfig:
        """The storage settings, validated (ConfigError names the setting); parsed once per
        distinct configuration, since the traits rarely change but spawns are frequent."""
        return self._nb_memoized("storage_config", self._build_storage_config)

    def _build_storage_config(self) -> StorageConfig:
        key = json.dumps(
            [self.home_volume, self.home_mount_path, self.data_shares, self.seed_home_from],
            sort_keys=True,
            default=repr,
        )
        config = _STORAGE_CONFIGS.get(key)
        if config is None:
            config = _STORAGE_CONFIGS[key] = StorageConfig.from_config(
                home_volume=self.home_volume or None,
                home_mount_path=self.home_mount_path,
                data_shares=self.data_shares,
                seed_home_from=self.seed_home_from,
            )
        return config

    def build_pod_patch(self, record: UserRecord, pod: dict[str, Any]) -> PodPatch:
        """Everything nbspawner adds to the pod for this user (refuses on unsafe paths)."""
        groups = self.access_groups(record)
        plan = build_storage(
            self.storage_config,
            record,
            image=self.image,
            image_pull_policy=self.image_pull_policy,
            access_groups=groups,
        )
        check_pod_conflicts(pod, plan.patch)
        if self.log.isEnabledFor(logging.DEBUG):
            for line in plan.summary:
                self.log.debug("nbspawner storage for %s: %s", self._log_name, line)
        patch = plan.patch
        if self.passwd_hook != "off":
            config = self.passwd_config
            secret = passwd.hook_mode(config, self._nb_image_needs) == "secret"
            patch.extend(
                passwd.build_passwd_patch(
                    record,
                    image=self.image,
                    home=plan.home_mount_path,
                    config=config,
                    image_needs=self._nb_image_needs,
                    pod_name=self.pod_name,
                    # only the Secret carries labels
                    labels=self._build_common_labels({}) if secret else None,
                )
            )
        return patch


__all__ = ["NBSpawner", "user_facing_error", "DirectoryError", "ForbiddenChoice"]
