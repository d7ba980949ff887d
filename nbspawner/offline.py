"""The hub's spawner, outside the hub: one user's spawn without a cluster.

``nbspawner`` commands and ``nbspawner check`` build the spawner exactly as the hub would from
the hub's configuration and run its lookup, profile list and pod manifest. kubespawner loads a
kube config in its constructor, so a throwaway one (never contacted) stands in for it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from importlib import resources
from types import SimpleNamespace
from typing import Any

import yaml

from .hubconfig import HubConfig, load_hub_config
from .podpatch import manifest

EXAMPLE_MOUNT_DIR = "/usr/local/etc/nbspawner"


def example_file(name: str) -> str:
    return str(resources.files("nbspawner") / "examples" / name)


def example_config() -> HubConfig:
    """The bundled example: a z2jh config.yaml whose extraFiles are the bundled catalog and directory."""
    file_map = {
        f"{EXAMPLE_MOUNT_DIR}/catalog.yaml": example_file("catalog.yaml"),
        f"{EXAMPLE_MOUNT_DIR}/directory.yaml": example_file("directory.yaml"),
    }
    return load_hub_config(example_file("config.yaml"), file_map)


@contextlib.contextmanager
def offline_kubeconfig() -> Iterator[None]:
    """kubespawner loads a kube config in its constructor. For dry runs outside a cluster, point it
    at a throwaway config whose server is never contacted (nothing here makes an API call)."""
    if os.environ.get("KUBECONFIG") or os.environ.get("KUBERNETES_SERVICE_HOST"):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="nbspawner-dry-run-") as tmp:
        path = os.path.join(tmp, "kubeconfig")
        with open(path, "w") as f:
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "dry-run", "cluster": {"server": "https://127.0.0.1:9"}}],
                    "users": [{"name": "dry-run", "user": {"token": "dry-run"}}],
                    "contexts": [
                        {"name": "dry-run", "context": {"cluster": "dry-run", "user": "dry-run"}}
                    ],
                    "current-context": "dry-run",
                },
                f,
            )
        # kubernetes_asyncio reads $KUBECONFIG once, at import time
        from kubernetes_asyncio.config import kube_config

        saved = kube_config.KUBE_CONFIG_DEFAULT_LOCATION
        os.environ["KUBECONFIG"] = kube_config.KUBE_CONFIG_DEFAULT_LOCATION = path
        try:
            yield
        finally:
            os.environ.pop("KUBECONFIG", None)
            kube_config.KUBE_CONFIG_DEFAULT_LOCATION = saved


class CLIUser(SimpleNamespace):
    """The minimum of a JupyterHub ``User`` a spawner needs for a dry run."""

    async def get_auth_state(self) -> Any:
        return self.auth_state


def make_spawner(
    hub: HubConfig,
    username: str,
    *,
    groups: Sequence[str] = (),
    auth_state: Any = None,
    user_options: dict[str, Any] | None = None,
    cls: type | None = None,
    **spawner_kwargs: Any,
):
    """An NBSpawner (or ``cls``) configured exactly as the hub would configure it, for one user.

    ``spawner_kwargs`` go to the constructor as the hub passes them (``orm_spawner`` for a named
    server, ``api_token``, ``oauth_client_id``).
    """
    from .spawner import NBSpawner

    cls = cls or NBSpawner

    user = CLIUser(
        name=username,
        id=1,
        url=f"/user/{username}/",
        groups=[SimpleNamespace(name=g) for g in groups],
        auth_state=auth_state,
    )
    hub_obj = SimpleNamespace(
        public_host="",
        url="http://hub:8081/hub/",
        base_url="/hub/",
        api_url="http://hub:8081/hub/api",
    )
    spawner = cls(config=hub.config, user=user, hub=hub_obj, **spawner_kwargs)
    spawner.user_options = dict(user_options or {})
    return spawner


async def lookup(hub: HubConfig, username: str, auth_state: Any = None) -> dict[str, Any]:
    with offline_kubeconfig():
        spawner = make_spawner(hub, username, auth_state=auth_state)
        record = await spawner.resolve()
        return record.as_dict()


async def profiles(hub: HubConfig, username: str, auth_state: Any = None) -> list[dict[str, Any]]:
    with offline_kubeconfig():
        spawner = make_spawner(hub, username, auth_state=auth_state)
        await spawner.resolve()
        return await spawner.user_profile_list()


async def render(
    hub: HubConfig, username: str, options: dict[str, Any], auth_state: Any = None
) -> dict[str, Any]:
    with offline_kubeconfig():
        spawner = make_spawner(hub, username, user_options=options, auth_state=auth_state)
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        record = spawner.record
        return {
            "record": record.as_dict() if record else None,
            "pod": manifest(pod),
            "secrets": list(spawner.pending_secrets),
            # for the preview's summary: what was chosen, from which catalog, for which groups
            "selection": spawner.selection,
            "catalog": await spawner.current_catalog() if spawner.uses_catalog() else None,
            "access_groups": sorted(spawner.access_groups(record)) if record else [],
        }


async def catalog(hub: HubConfig) -> Any:
    """The catalog the hub would use (None when it uses none)."""
    with offline_kubeconfig():
        spawner = make_spawner(hub, "nbspawner-cli")
        return await spawner.current_catalog() if spawner.uses_catalog() else None


def read_auth_state(hub: HubConfig, auth_state_file: str | None, claims_file: str | None) -> Any:
    """The user's auth_state for the claim-based backends, from ``--auth-state`` (as it is) or
    ``--claims`` (placed where OIDCClaimsDirectory reads them: its ``auth_state_key``).
    ValueError with one sentence for a file that cannot be used."""
    path = auth_state_file or claims_file
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)  # JSON is YAML
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ValueError(f"{path} is not JSON or YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a mapping (a JSON object)")
    if auth_state_file:
        return data
    section = hub.config.get("OIDCClaimsDirectory", {})
    key = section.get("auth_state_key", "oauth_user") if hasattr(section, "get") else "oauth_user"
    return {key: data}
