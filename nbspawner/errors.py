"""One exception tree for nbspawner.

Every error carries two messages:

- ``log_message``: for the admin, names the setting or field involved and what to check.
  It never contains secrets (passwords, tokens) and avoids personal data beyond the username.
- ``user_message``: one short sentence shown to the user on the spawn page, without internals.

``reason`` is a short machine-readable label used for the Prometheus refusal counter.
``status`` is the HTTP status the user gets when the error reaches the hub's web layer.
"""

from __future__ import annotations

import json
from typing import Any


class NBSpawnerError(Exception):
    """Base class of every error nbspawner raises on purpose."""

    default_user_message = "Your server could not be started. Please contact your administrator."
    default_reason = "error"
    status = 500

    def __init__(
        self,
        log_message: str,
        user_message: str | None = None,
        *,
        reason: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(log_message)
        self.log_message = log_message
        self.user_message = user_message or self.default_user_message
        self.reason = reason or self.default_reason
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.log_message


class ConfigError(NBSpawnerError):
    """The hub configuration is wrong (an admin must fix ``config.yaml``)."""

    default_reason = "config"


class DirectoryError(NBSpawnerError):
    """A directory backend failed: unreachable, timed out, TLS failure, bad answer."""

    default_user_message = (
        "The user directory could not be reached, so your server was not started. "
        "Please try again in a few minutes."
    )
    default_reason = "directory_unavailable"
    status = 503


class UserNotFound(DirectoryError):
    """The directory answered, but does not know this user."""

    default_user_message = (
        "Your account was not found in the user directory, so no server can be started for you. "
        "Please contact your administrator."
    )
    default_reason = "not_found"
    status = 403


class InvalidRecord(NBSpawnerError):
    """The directory returned a record that fails validation (uid 0, bad home, bad name...).

    ``field`` names the record field; ``kind`` describes what was wrong with the value
    without repeating the value itself (it may be hostile or personal).
    """

    default_user_message = (
        "Your account's directory entry cannot be used to start a server. "
        "Please contact your administrator."
    )
    default_reason = "invalid_record"
    status = 403

    def __init__(
        self,
        log_message: str,
        user_message: str | None = None,
        *,
        field: str = "",
        kind: str = "",
        source: str = "",
        reason: str | None = None,
    ) -> None:
        super().__init__(log_message, user_message, reason=reason)
        self.field = field
        self.kind = kind
        self.source = source


class CatalogError(NBSpawnerError):
    """The image catalog file is invalid. ``problems`` lists ``(location, message)`` pairs."""

    default_reason = "catalog"

    def __init__(self, log_message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(log_message)
        self.problems = list(problems or [])


class ForbiddenChoice(NBSpawnerError):
    """The user asked for an image, size, GPU or option they may not use (or that doesn't exist)."""

    default_user_message = "You are not allowed to start a server with the options you chose."
    default_reason = "forbidden_choice"
    status = 403


class StorageError(NBSpawnerError):
    """A home or data path cannot be mounted safely (outside the export roots, escapes, ...)."""

    default_user_message = (
        "Your home directory cannot be mounted safely, so your server was not started. "
        "Please contact your administrator."
    )
    default_reason = "storage"
    status = 403


class UnsafePod(NBSpawnerError):
    """The pod nbspawner built would not pass Pod Security "restricted" (a profile asked for root,
    privilege escalation, host mounts...)."""

    default_user_message = "The selected environment asks for privileges that are not allowed."
    default_reason = "unsafe_pod"
    status = 403


class ClusterRejected(NBSpawnerError):
    """The Kubernetes API server refused the pod or a resource nbspawner created (admission,
    quota, validation): the pod nbspawner built does not fit this cluster's rules."""

    default_reason = "api_rejected"
    status = 403


try:  # JupyterHub >= 6.0
    from jupyterhub.spawner import SpawnException as _SpawnException
except ImportError:  # JupyterHub 5.x
    _SpawnException = None


def user_facing_error(err: NBSpawnerError) -> Exception:
    """The exception the hub shows the user: a short sentence, no internals (JupyterHub 6's
    ``SpawnException``; on 5.x a ``tornado.web.HTTPError`` with ``jupyterhub_message``)."""
    from tornado import web

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


def cluster_rejected(status: int, body: Any, reason: str | None, pod_name: str) -> ClusterRejected:
    """The API server's refusal of a pod (PodSecurity admission, quota, validation), readable."""
    try:
        detail = json.loads(body)["message"]
    except (TypeError, ValueError, KeyError):
        detail = reason or f"HTTP {status}"
    return ClusterRejected(
        f"the API server refused pod {pod_name} ({status}): {detail}",
        f"The cluster refused to start your server: {detail}. Please contact your administrator.",
    )
