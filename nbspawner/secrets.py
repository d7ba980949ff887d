"""The lifecycle of the Secrets a pod needs (the passwd hook's "secret" mode).

Created right before every pod POST (kubespawner retries the POST after deleting a pod of the
same name, which deletes our Secret), deleted when the server stops. z2jh's hub Role may create
and delete Secrets but not update them, and ours are immutable anyway: a leftover is replaced.
"""

from __future__ import annotations

import logging
from typing import Any

from kubernetes_asyncio.client.rest import ApiException


async def create_secrets(
    api: Any, namespace: str, secrets: list[dict[str, Any]], log: logging.Logger, who: str
) -> None:
    """Create each Secret (a manifest dict), replacing a leftover of the same name."""
    for secret in secrets:
        name = secret["metadata"]["name"]
        try:
            await api.create_namespaced_secret(namespace, secret)
        except ApiException as e:
            if e.status != 409:
                raise
            log.info("Replacing leftover Secret %s of %s", name, who)
            try:
                await api.delete_namespaced_secret(name, namespace)
            except ApiException as e2:
                if e2.status != 404:
                    raise
            await api.create_namespaced_secret(namespace, secret)
        log.info("Created Secret %s for %s", name, who)


async def delete_secret(api: Any, namespace: str, name: str, log: logging.Logger, who: str) -> None:
    """Delete the Secret if it is there; a failure is logged, never raised (the server stopped)."""
    try:
        await api.delete_namespaced_secret(name, namespace)
        log.info("Deleted Secret %s of %s", name, who)
    except ApiException as e:
        if e.status != 404:
            log.warning("Could not delete Secret %s: %s", name, e.reason)
