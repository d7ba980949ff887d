"""Build real KubeSpawner objects in unit tests, without a cluster.

``KubeSpawner()`` loads a kube config in its constructor and must be created inside a running
event loop; nothing is contacted until it starts reflectors or pods, so ``load_user_options()``
and ``get_pod_manifest()`` work offline. kubespawner's own tests do the same with
``_mock=True`` and a mock user.

Usage (in an ``async`` test)::

    spawner = await make_kubespawner(tmp_path, username="alice", profile_list=[...])
    spawner.user_options = {"profile": "scipy"}
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    manifest = to_dict(pod)
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any
from unittest import mock

from jupyterhub.objects import Hub, Server
from kubernetes_asyncio.client import ApiClient

#: a kube config whose server is never contacted (port 9 is "discard")
DUMMY_KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters:
- name: offline
  cluster:
    server: https://127.0.0.1:9
contexts:
- name: offline
  context: {cluster: offline, user: offline, namespace: jhub}
current-context: offline
users:
- name: offline
  user: {token: not-a-real-token}
"""


class MockUser(mock.Mock):
    """The bits of jupyterhub.user.User that KubeSpawner reads."""

    name = "alice"
    id = 1
    server = Server()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__()
        for key, value in kwargs.items():
            setattr(self, key, value)

    @property
    def escaped_name(self) -> str:
        return self.name

    @property
    def url(self) -> str:
        return self.server.url


def write_kubeconfig(directory: Path) -> Path:
    path = Path(directory) / "kubeconfig"
    if not path.exists():
        path.write_text(DUMMY_KUBECONFIG)
    return path


async def make_kubespawner(
    tmp_path: Path,
    cls: type | None = None,
    username: str = "alice",
    user_id: int = 1,
    **config: Any,
):
    """A KubeSpawner (or subclass ``cls``) for ``username``, traits set from ``config``.

    Must be awaited inside a running event loop (pytest-asyncio tests are). The kube config
    is a dummy file in ``tmp_path``, used only while the constructor runs.
    """
    if cls is None:
        from kubespawner import KubeSpawner

        cls = KubeSpawner
    import kubernetes_asyncio.config.kube_config as kube_config

    kubeconfig = str(write_kubeconfig(tmp_path))
    # kubernetes_asyncio reads $KUBECONFIG once, at import time; kubespawner loads the config
    # once per process (lru_cache), so the first spawner built in a test run decides it
    with (
        mock.patch.dict(os.environ, {"KUBECONFIG": kubeconfig}),
        mock.patch.object(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig),
    ):
        spawner = cls(
            _mock=True,
            user=MockUser(name=username, id=user_id),
            hub=Hub(),
            **config,
        )
    return spawner


@functools.lru_cache(maxsize=1)
def _api_client() -> ApiClient:
    # sanitize_for_serialization needs no session; one client for the whole run
    client = ApiClient.__new__(ApiClient)
    client.client_side_validation = True
    return client


def to_dict(obj: Any) -> Any:
    """kubernetes_asyncio model -> the JSON dict the API server would receive (camelCase)."""
    return ApiClient.sanitize_for_serialization(_api_client(), obj)
