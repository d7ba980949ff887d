"""NBSpawner: KubeSpawner plus the user's identity, catalog profiles, storage and passwd entry.

A spawn flows one way::

    record    = await self.resolve()                     # directory lookup + validate_record
    selection = select(catalog, groups, user_options)    # 4xx for a choice the user may not make
    (kubespawner applies the profile; the identity goes in through its traits uid/gid/...)
    additions = self.additions(record, pod)              # home, data shares, passwd hook
    check(pod)                                           # read-only: mounts, Pod Security

The spawner keeps only this spawn's :attr:`record` and :attr:`selection`; its settings are in
:mod:`nbspawner.settings`, the work in pure modules and the directory backends.
z2jh sets ``KubeSpawner.profile_list = []`` and ``uid = 1000``, which beat a subclass's
defaults: the catalog is installed in ``__init__`` and the identity set at spawn time.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

from jupyterhub.utils import url_path_join
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from tornado import web
from traitlets import TraitError

from . import metrics, passwd_hook, security
from .choices import Selection, image_environment, resolve_selection
from .errors import ConfigError, NBSpawnerError, UserNotFound, cluster_rejected, user_facing_error
from .ids import shown
from .podpatch import PodPatch, apply_to_pod, manifest, mounts_view, pin_identity
from .policy import validate_record
from .profiles import ALLOWED_OVERRIDE_KEYS, build_profile_list
from .record import UserRecord
from .secrets import create_secrets, delete_secret
from .settings import SpawnerSettings
from .storage import build_storage, check_pod_conflicts


class NBSpawner(SpawnerSettings, KubeSpawner):
    """KubeSpawner that runs each user's pod with their directory identity."""

    #: this spawn's validated record and catalog choice (image, size, GPU)
    record: UserRecord | None = None
    selection: Selection | None = None
    #: the admin's log message of the last refusal (``nbspawner check --user`` reports it)
    last_refusal: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Secrets this spawn's pod needs (passwd "secret" mode), created right before the pod
        self.pending_secrets: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._identity_done: asyncio.Event | None = None
        #: the admin's KubeSpawner.supplemental_gids: every user gets them besides the
        #: directory's groups (a profile's override is ignored, with a warning)
        gids = self.supplemental_gids
        self.admin_gids = tuple(gids) if isinstance(gids, (list, tuple)) else ()
        #: the traits catalog choices override, as configured: put back before each spawn, so
        #: a choice adds to the admin's values and an earlier choice leaves nothing behind
        self._configured = {k: copy.deepcopy(getattr(self, k)) for k in ALLOWED_OVERRIDE_KEYS}
        # z2jh always sets profile_list = [] on KubeSpawner, which beats any default of ours
        if not self.profile_list and (self.catalog_file or self.catalog):
            self.profile_list = self._catalog_profile_list

    @property
    def _log_name(self) -> str:
        """JupyterHub's ``user:server`` for log lines, quoted like ``repr`` unless it is plain
        printable text, so a hostile name cannot forge a log line."""
        name = super()._log_name
        return name if name.isprintable() and " " not in name else repr(name)

    def _refuse(self, err: NBSpawnerError) -> web.HTTPError:
        self.last_refusal = err.log_message
        metrics.REFUSALS.labels(reason=err.reason).inc()
        self.log.warning("Refusing to spawn %s: %s", self._log_name, err.log_message)
        return user_facing_error(err)

    # ------------------------------------------------------------------ 1. who the user is
    async def resolve(self) -> UserRecord:
        """Look the user up (through the cache) and validate the record against the policy:
        the one identity check on the hub. Raises the user-facing error on any failure."""
        username = self.user.name
        try:
            try:  # built inside the refusal path: a bad backend setting is a readable refusal
                directory = self.shared_directory()
            except TraitError as e:
                raise ConfigError(f"{self.directory_class.__name__}: {e}") from None
            try:
                record = await directory.lookup(username, await self._auth_state())
            except UserNotFound:
                if not self.fallback_identity:
                    raise
                record = self.fallback_record(username)
                self.log.warning(
                    "%r is not in the directory; using NBSpawner.fallback_identity", username
                )
            return validate_record(record, self.identity_policy, username=username)
        except NBSpawnerError as err:
            raise self._refuse(err) from None

    # ------------------------------------------------------------------ 2. what they may run
    def uses_catalog(self) -> bool:
        return self.profile_list == self._catalog_profile_list

    async def _catalog_profile_list(self, spawner: Any = None) -> list[dict[str, Any]]:
        """kubespawner's callable ``profile_list``: the catalog filtered by the user's groups.
        During a spawn, for this spawn's record; on the spawn form, for the user as they are now."""
        if self._spawning() and self.selection is not None:
            return list(self.selection.profile_list)  # the list select() checked the choice on
        record = self.record if self._spawning() and self.record else await self.resolve()
        try:
            return build_profile_list(await self.current_catalog(), self.access_groups(record))
        except NBSpawnerError as err:
            raise self._refuse(err) from None

    async def select(self, record: UserRecord) -> Selection:
        """Refuse a profile, image, size or GPU that does not exist or that the user's groups
        may not use (spawn form and REST API alike: a 4xx with one readable sentence)."""
        catalog = await self.current_catalog()
        profile_list = build_profile_list(catalog, self.access_groups(record))
        selection = resolve_selection(catalog, profile_list, self.user_options)
        account = selection.image.service_account
        if account and account not in self.allowed_service_accounts:
            raise ConfigError(
                f"catalog image {selection.image.slug} asks for service account {account!r}, "
                "which NBSpawner.allowed_service_accounts does not list"
            )
        size, gpu = selection.size, selection.gpu
        self.log.info(
            "%s chose image %s, size %s, gpu %s",
            self._log_name,
            selection.image.slug,
            size.slug if size else "-",
            gpu.slug if gpu else "-",
        )
        return selection

    # ------------------------------------------------------------------ the spawn
    def _spawning(self) -> bool:
        return self._identity_done is not None and not self._identity_done.is_set()

    def _progress(self, message: str, progress: int) -> None:
        self._events.append({"progress": progress, "message": message})

    async def progress(self):
        """Our own steps (directory lookup, checks) first, then kubespawner's pod events."""
        sent = 0
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            while sent < len(self._events):
                yield self._events[sent]
                sent += 1
            if self._identity_done is None or self._identity_done.is_set():
                break
            await asyncio.sleep(0.2)
        for event in self._events[sent:]:
            yield event
        async for event in super().progress():
            yield event

    async def load_user_options(self) -> None:
        self.record = self.selection = None
        self._events = []
        self._identity_done = asyncio.Event()
        try:
            self._progress("Looking you up in the directory...", 5)
            self.record = record = await self.resolve()
            self._progress(f"Found {record.username} in the directory (uid {record.uid})", 10)
            try:
                if self.uses_catalog():
                    self.selection = await self.select(record)
                    for key, value in self._configured.items():
                        if getattr(self, key) != value:  # only what an earlier choice changed
                            setattr(self, key, copy.deepcopy(value))
                self.supplemental_gids = list(self.admin_gids)  # a profile may override it
                await super().load_user_options()
                self.apply_identity(record)
            except NBSpawnerError as err:
                raise self._refuse(err) from None
        finally:
            self._identity_done.set()

    def _image_needs(self) -> Any:
        return self.selection.image.security if self.selection else None

    def apply_identity(self, record: UserRecord) -> None:
        """The identity into kubespawner's own traits, *after* the profile was applied, so no
        profile override can change it."""
        chosen = self.supplemental_gids
        if self.admin_gids:
            self.log.info(
                "%s gets KubeSpawner.supplemental_gids %s besides the directory's groups",
                self._log_name,
                list(self.admin_gids),
            )
        if isinstance(chosen, (list, tuple)) and list(chosen) != list(self.admin_gids):
            self.log.warning(
                "%s: a profile's supplemental_gids %s are ignored: groups come from the directory "
                "(and KubeSpawner.supplemental_gids, NBSpawner.default_groups)",
                self._log_name,
                shown(list(chosen), 80),
            )
        self.uid, self.gid = record.uid, record.gid
        self.supplemental_gids = passwd_hook.supplemental_gids(
            record, self.passwd_config, self._image_needs()
        )
        if not self.keep_fs_gid:
            self.fs_gid = None

    async def get_pod_manifest(self):
        record = self.record or await self.resolve()
        pod = await super().get_pod_manifest()
        try:
            built = mounts_view(pod)
            self.check(built)  # kubespawner's pod first: a readable cause
            additions = self.additions(record, built)
            for note in apply_to_pod(pod, additions):
                self.log.info("nbspawner pod %s: %s", self.pod_name, note)
            gids = passwd_hook.supplemental_gids(record, self.passwd_config, self._image_needs())
            root_group = 0 in gids or record.gid == 0
            identity = {"uid": record.uid, "gid": record.gid, "supplemental_gids": gids}
            pin_identity(pod, **identity, fs_group=self.fs_gid, allow_root_group=root_group)
            self.check(manifest(pod), additions, allow_root_group=root_group)
        except NBSpawnerError as err:
            raise self._refuse(err) from None
        self.pending_secrets = additions.secrets  # created right before the pod POST
        return pod

    def additions(self, record: UserRecord, pod: dict[str, Any]) -> PodPatch:
        """Everything nbspawner adds to the pod for this user (refuses on unsafe paths)."""
        plan = build_storage(
            self.storage_config,
            record,
            image=self.image,
            image_pull_policy=self.image_pull_policy,
            access_groups=self.access_groups(record),
        )
        check_pod_conflicts(pod, plan.patch)
        for line in plan.summary:
            self.log.debug("nbspawner storage for %s: %s", self._log_name, line)
        patch = plan.patch
        prefix = self.server.base_url if self.server else url_path_join(self.user.url, self.name)
        isolate = self.isolate_user_site
        patch.env.update(image_environment(self.selection, plan.home_mount_path, prefix, isolate))
        if self.passwd_hook != "off":
            needs, config = self._image_needs(), self.passwd_config
            secret = passwd_hook.hook_mode(config, needs) == "secret"
            patch.extend(
                passwd_hook.build_passwd_patch(
                    record,
                    image=self.image,
                    home=plan.home_mount_path,
                    config=config,
                    image_needs=needs,
                    pod_name=self.pod_name,
                    labels=self._build_common_labels({}) if secret else None,  # only the Secret's
                )
            )
        return patch

    def check(self, pod: dict[str, Any], patch: PodPatch | None = None, **kw: Any) -> None:
        """Refuse unsafe mounts (kubespawner's pod alone: no ``patch``); with nbspawner's
        additions, the finished pod against the configured Pod Security level too."""
        security.check_pod(pod, patch, level=self.pod_security_level, pod_name=self.pod_name, **kw)

    # ------------------------------------------------------------------ the passwd Secret
    async def _make_create_pod_request(self, pod, request_timeout):
        # kubespawner's pod POST (retried after stopping a pod of the same name, which deletes
        # our Secret): the Secrets are ensured before every attempt. An API server refusing the
        # pod (PodSecurity admission, quota, validation) becomes a readable error.
        if self.pending_secrets:
            await create_secrets(
                self.api, self.namespace, self.pending_secrets, self.log, self._log_name
            )
        try:
            return await super()._make_create_pod_request(pod, request_timeout)
        except ApiException as e:
            if e.status not in (400, 403, 422):
                raise
            raise self._refuse(
                cluster_rejected(e.status, e.body, e.reason, self.pod_name)
            ) from None

    async def stop(self, now: bool = False) -> None:
        await super().stop(now=now)
        if self.passwd_hook == "secret" or self.pending_secrets:
            name = passwd_hook.secret_name(self.pod_name)
            await delete_secret(self.api, self.namespace, name, self.log, self._log_name)


__all__ = ["NBSpawner"]
