"""``nbspawner check``, the live part: the configured directory asked, and users spawned as the
hub would spawn them (lookup, policy, default choice, pod), without a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

#: how long the directory connectivity check may take in all (backends have their own timeouts)
from .checks import _FILE_HINT, Report, _sections, lines_for_exception
from .errors import NBSpawnerError
from .hubconfig import HubConfig
from .offline import make_spawner, offline_kubeconfig
from .podpatch import manifest

#: seconds the directory check may take before it is reported as hanging
DIRECTORY_CHECK_TIMEOUT = 60.0


def _auth_state_enabled(config: Mapping[str, Any]) -> bool:
    return any(settings.get("enable_auth_state") is True for settings in _sections(config).values())


def _backend_names(spawner: Any, config: Mapping[str, Any]) -> set[str]:
    names = {getattr(spawner.directory_class, "name", "")}
    chain = config.get("ChainDirectory") or {}
    if isinstance(chain, Mapping):
        names.update(str(d) for d in chain.get("directories") or () if isinstance(d, str))
    return names


async def check_directory(spawner: Any, config: Mapping[str, Any], report: Report) -> None:
    cls = spawner.directory_class
    if {"oidc", "ldapauth"} & _backend_names(spawner, config) and not _auth_state_enabled(config):
        report.fail(
            f"directory: {cls.__name__} reads the authenticator's auth_state, which is off. "
            "Set enable_auth_state: true on the authenticator (e.g. "
            "hub.config.GenericOAuthenticator.enable_auth_state)"
        )
    try:
        backend = cls(parent=spawner, log=spawner.log)
    except Exception as e:
        message = e.log_message if isinstance(e, NBSpawnerError) else f"{type(e).__name__}: {e}"
        report.fail(f"directory: {cls.__name__} cannot be created: {message}")
        return
    try:
        description = await asyncio.wait_for(backend.check(), DIRECTORY_CHECK_TIMEOUT)
    except NBSpawnerError as e:
        message = e.log_message
        if "does not exist" in message or "cannot be read" in message:
            message += f" ({_FILE_HINT})"
        report.fail(f"directory: {message}")
    except asyncio.TimeoutError:
        report.fail(
            f"directory: {cls.__name__} did not answer within {DIRECTORY_CHECK_TIMEOUT:g}s. "
            "Is the directory reachable from here?"
        )
    except Exception as e:
        report.fail(f"directory: {cls.__name__} check failed unexpectedly ({type(e).__name__})")
    else:
        report.good(f"directory: {description}")
    finally:
        try:
            await backend.close()
        except Exception:  # noqa: S110 - closing is best effort
            pass


async def check_users(hub: HubConfig, usernames: Iterable[str], report: Report) -> None:
    """Spawn each user as the hub would, without a cluster: look them up through the configured
    directory, validate the record against the policy, pick their default profile and build
    the pod. A user the hub would refuse fails with the hub's own log message."""
    from tornado import web

    usernames = list(usernames)
    seen_groups: set[str] = set()
    catalog = None
    for username in usernames:
        with offline_kubeconfig():
            spawner = make_spawner(hub, username)
        try:
            await spawner.load_user_options()
            pod = manifest(await spawner.get_pod_manifest())
        except web.HTTPError as e:
            why = spawner.last_refusal or getattr(e, "jupyterhub_message", None) or str(e)
            report.fail(f"user {username!r}: the hub would refuse to spawn: {why}")
            continue
        except Exception as e:  # noqa: BLE001 - reported, never hides the next user
            report.fail(lines_for_exception(f"user {username!r}: spawning crashed", e))
            continue
        record = spawner.record
        seen_groups |= spawner.access_groups(record)
        if spawner.uses_catalog():
            catalog = await spawner.current_catalog()
        sel = spawner.selection
        choice = (
            f"image {sel.image.slug}, size {sel.size.slug if sel.size else '-'}, "
            f"gpu {sel.gpu.slug if sel.gpu else 'none'}"
            if sel is not None
            else "the admin's profile_list"
        )
        groups = ", ".join(f"{n} {g}" for n, g in record.posix_groups) or "none"
        containers = [c["name"] for c in pod["spec"]["containers"]]
        init = [c["name"] for c in pod["spec"].get("initContainers") or []]
        report.good(
            f"user {username!r}: uid {record.uid}, gid {record.gid}, groups {groups}, home "
            f"{record.home} (from {record.source}); default choice: {choice}; pod "
            f"{pod['metadata']['name']} builds ({len(containers)} container(s), "
            f"{len(init)} init container(s))"
        )
    if catalog is not None:
        unheld = sorted(catalog.group_names() - seen_groups)
        if unheld:
            report.warn(
                "catalog: no checked user is in "
                + ", ".join(repr(g) for g in unheld)
                + " (named by allowed_groups or defaults): a misspelt group makes what it "
                "allows unreachable for everyone; check with a user of each group "
                f"(checked: {', '.join(repr(u) for u in usernames)})"
            )
