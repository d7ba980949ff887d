"""NBSpawner's settings: the traits an admin sets under ``c.NBSpawner`` (z2jh: ``hub.config.NBSpawner``).

They live in a mixin so that ``spawner.py`` reads as the spawn flow. Every setting is validated
when it is set (at hub start, when the configuration loads), and the error names
``NBSpawner.<trait>`` and the value. Settings built from several traits (the identity policy,
the passwd hook, the storage) are assembled by the properties at the end, each time they are
needed: they are cheap, and nothing can go stale.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Mapping
from typing import Any

from jupyterhub.traitlets import EntryPointType
from jupyterhub.utils import maybe_future
from traitlets import Bool, Dict, Enum, Float, HasTraits, Int, List, TraitError, Unicode, validate

from . import passwd
from .catalog import Catalog, current_catalog
from .directory import directory_entry_points
from .directory.base import Directory
from .directory.cache import CachedDirectory, shared_directory
from .errors import ConfigError
from .ids import id_problem, shown
from .policy import (
    DEFAULT_MAX_GROUPS,
    DEFAULT_MAX_ID,
    MAX_GROUPS_LIMIT,
    NAME_RE,
    SPECIAL_IDS,
    IdentityPolicy,
)
from .record import UserRecord
from .storage_config import HomeVolume, StorageConfig


class _DirectoryClass(EntryPointType):
    """``directory_class``: a short name (built-in or an installed entry point) or a class."""

    def load_entry_points(self) -> dict[str, Any]:
        return directory_entry_points()

    def validate(self, obj: Any, value: Any) -> Any:
        try:
            return super().validate(obj, value)
        except TraitError:
            if not isinstance(value, str):
                raise
        names = sorted(self.load_entry_points())
        if "." not in value:
            close = difflib.get_close_matches(value.lower(), names, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise TraitError(
                f"NBSpawner.directory_class: {shown(value)} is not a directory backend; {hint}"
                f"the names are {', '.join(names)}, or give a class by its import path "
                "(package.module.Class)"
            ) from None
        raise TraitError(
            f"NBSpawner.directory_class: {shown(value)} could not be imported as a Directory "
            f"class (check the module path and that the package is installed in the hub); "
            f"the built-in names are {', '.join(names)}"
        ) from None


class SpawnerSettings(HasTraits):
    """The ``NBSpawner`` traits (mixed into :class:`nbspawner.spawner.NBSpawner`)."""

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

    isolate_user_site = Bool(
        True,
        config=True,
        help="""Give each catalog image its own Python user site (``PYTHONUSERBASE`` under the
        home, ``~/.local/images/<slug>``), so packages installed with ``pip install --user`` for
        one image never shadow another image's. Off: every image shares ``~/.local``.""",
    )
    allowed_service_accounts = List(
        Unicode(),
        config=True,
        help="""ServiceAccounts a catalog image may ask for (``service_account``, e.g. Kubeflow's
        ``default-editor`` for Pipelines). Empty: none; the pod keeps KubeSpawner.service_account.""",
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

    @validate("home_volume")
    def _valid_home_volume(self, proposal: Any) -> dict[str, Any]:
        try:
            HomeVolume.from_config(proposal["value"] or None)
        except ConfigError as e:
            raise TraitError(str(e)) from None
        return proposal["value"]

    @validate("home_mount_path", "data_shares", "seed_home_from")
    def _valid_storage_part(self, proposal: Any) -> Any:
        # each part alone; how home_mount_path and seed_home_from combine is checked when the
        # storage is built (first spawn, ``nbspawner check``), as the order settings load in
        # must not matter
        name = proposal["trait"].name
        # a mount path no skeleton can overlap, so seed_home_from is checked alone
        parts = {"home_mount_path": "/nbspawner-unset/{username}", "seed_home_from": ""}
        parts[name] = proposal["value"]
        try:
            StorageConfig.from_config(**parts)
        except ConfigError as e:
            raise TraitError(str(e)) from None
        return proposal["value"]

    # ------------------------------------------------------------------ assembled settings
    async def user_profile_list(self) -> list[dict[str, Any]]:
        """The profiles this user may pick, initialised as kubespawner initialises them."""
        profile_list = self.profile_list
        if callable(profile_list):
            profile_list = await maybe_future(profile_list(self))
        return self._get_initialized_profile_list(self._sorted_dict_values(profile_list))

    def shared_directory(self) -> CachedDirectory:
        """The hub-wide cached directory for this configuration (created on first use)."""
        return shared_directory(
            self.directory_class,
            self,
            ttl=self.directory_cache_ttl,
            negative_ttl=self.directory_negative_cache_ttl,
            max_size=self.directory_cache_size,
        )

    async def current_catalog(self) -> Catalog:
        """The catalog now (reloaded if the file changed). CatalogError if none can be loaded."""
        return await current_catalog(
            self.catalog_file, self.catalog_check_interval, self.catalog, logger=self.log
        )

    def fallback_record(self, username: str) -> UserRecord:
        fb = self.fallback_identity  # its keys and ids were checked when it was set
        return UserRecord(
            username=username,
            uid=int(fb["uid"]),
            gid=int(fb["gid"]),
            home=str(fb["home"]).replace("{username}", username),
            groups=tuple(fb.get("groups", ())),
            supplemental_gids=tuple(int(g) for g in fb.get("supplemental_gids", ())),
            gecos=str(fb.get("gecos", "")),
            shell=str(fb.get("shell", "/bin/bash")),
            source="fallback",
        )

    @property
    def identity_policy(self) -> IdentityPolicy:
        return IdentityPolicy(
            min_uid=self.min_uid,
            min_gid=self.min_gid,
            max_uid=self.max_uid,
            max_gid=self.max_gid,
            allow_gid_zero=self.allow_gid_zero,
            home_roots=tuple(self.home_roots),
            max_groups=self.max_groups,
        )

    @property
    def storage_config(self) -> StorageConfig:
        """The storage settings, validated (ConfigError names the setting)."""
        return StorageConfig.from_config(
            home_volume=self.home_volume or None,
            home_mount_path=self.home_mount_path,
            data_shares=self.data_shares,
            seed_home_from=self.seed_home_from,
        )

    #: the admin's KubeSpawner.supplemental_gids, as configured (the spawner keeps them)
    admin_gids: tuple[int, ...] = ()

    @property
    def passwd_config(self) -> passwd.PasswdHookConfig:
        return passwd.PasswdHookConfig(
            enabled=self.passwd_hook != "off",
            mode="secret" if self.passwd_hook == "secret" else "init-container",
            shell=self.passwd_shell or None,
            default_groups=tuple((str(n), int(g)) for n, g in self.default_groups.items()),
            extra_gids=self.admin_gids,
            allow_gid_zero=self.allow_gid_zero,
            image_pull_policy=self.image_pull_policy,
        )

    def access_groups(self, record: UserRecord) -> frozenset[str]:
        groups: set[str] = set()
        if self.access_groups_from in ("directory", "both"):
            groups.update(record.groups)
        if self.access_groups_from in ("hub", "both"):
            groups.update(g.name for g in getattr(self.user, "groups", ()) or ())
        return frozenset(groups)

    async def _auth_state(self) -> Mapping[str, Any] | None:
        state = getattr(self.user, "get_auth_state", lambda: None)()
        if inspect.isawaitable(state):
            state = await state
        return state if isinstance(state, Mapping) else None
