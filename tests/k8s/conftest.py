"""Helpers for the NBSpawner spawn tests against the real control plane (tests/k8s/).

NBSpawner is configured like the bundled z2jh example (``nbspawner/examples/config.yaml``,
loaded with :func:`nbspawner.offline.example_config`) with what a test cluster needs changed:

- ``KubeSpawner.namespace`` is the test namespace (Pod Security "restricted" enforced);
- the notebook command is a tiny HTTP server on ``$(POD_IP):8888`` (the kubelet stand-in
  ignores the image and runs the command on this host; ``POD_IP`` comes from the downward API
  through kubespawner's ``environment``, which accepts EnvVar dicts);
- the homes PVC ``institute-homes`` of the example is pre-bound to an ``nfs``
  PersistentVolume ``nfs.example.org:/export/home`` that the kubelet stand-in serves from a
  temporary directory (:meth:`Kubelet.map_nfs`), with a home per directory user owned by
  their uid/gid; ``institute-data`` is a plain claim (a directory of the kubelet's).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from nbspawner.hubconfig import HubConfig
from nbspawner.offline import example_config, example_file, make_spawner

#: a minimal HTTP server: answers every GET with "pong" (no braces: kubespawner formats strings)
HTTP_SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"pong")
    def log_message(self, *args):
        pass
http.server.HTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
"""
PORT = 8888
#: the notebook command: the kubelet stand-in expands $(POD_IP) like a kubelet
SERVER_CMD = ["/usr/bin/python3", "-c", HTTP_SERVER, "$(POD_IP)", str(PORT)]
POD_IP_ENV = {"POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}}

NFS_SERVER = "nfs.example.org"
HOMES_EXPORT = "/export/home"
HOMES_CLAIM = "institute-homes"  # the example config.yaml's home_volume.claim_name
DATA_CLAIM = "institute-data"  # the example config.yaml's data_shares claim


def example_directory() -> dict[str, Any]:
    with open(example_file("directory.yaml")) as f:
        return yaml.safe_load(f)


def example_catalog() -> dict[str, Any]:
    with open(example_file("catalog.yaml")) as f:
        return yaml.safe_load(f)


def shell_cmd(script: str) -> list[str]:
    """``sh -c script`` ending in the HTTP server (``exec``: it is the container's pid 1)."""
    server = f"exec /usr/bin/python3 -c '{HTTP_SERVER}' \"$POD_IP\" {PORT}"
    return ["/bin/sh", "-c", f"{script}\n{server}"]


def nb_hub_config(namespace: str, *, cmd: list[str] | None = None, **nbspawner: Any) -> HubConfig:
    """The bundled example configuration, adapted to the test cluster (see the module doc)."""
    hub = example_config()
    ks = hub.config.KubeSpawner
    ks.namespace = namespace
    ks.cmd = list(cmd or SERVER_CMD)
    ks.environment = dict(POD_IP_ENV)
    ks.start_timeout = 150
    ks.http_timeout = 60
    # the API server shares 2 cores with everything else: kubespawner's 3 s default is tight
    ks.k8s_api_request_timeout = 30
    ks.k8s_api_request_retry_timeout = 60
    for key, value in nbspawner.items():
        hub.config.NBSpawner[key] = value
    return hub


def make_nb_spawner(
    hub: HubConfig,
    username: str,
    *,
    server_name: str = "",
    user_options: dict[str, Any] | None = None,
    cls: type | None = None,
    groups: tuple[str, ...] = (),
):
    """An NBSpawner (or ``cls``) for one user as the hub would create it.

    Like :func:`nbspawner.offline.make_spawner`, plus a server name (named servers: several pods
    per user at once), an API token and an OAuth client id, as the hub passes them.
    Must be called inside a running event loop with ``KUBECONFIG`` set (the ``k8s`` fixture).
    """
    # a named server: Spawner.name is the name of its ORM record
    orm_spawner = (
        SimpleNamespace(name=server_name, server=None, last_activity=None) if server_name else None
    )
    return make_spawner(
        hub,
        username,
        groups=groups,
        user_options=user_options,
        cls=cls,
        orm_spawner=orm_spawner,
        api_token="test-api-token",
        oauth_client_id=f"jupyterhub-user-{username}",
    )


def resources_in(k8s, namespace: str | None = None) -> dict[str, list[str]]:
    """Names of the pods and Secrets in a namespace (as admin)."""
    out = {}
    for resource in ("pods", "secrets"):
        items = k8s.api("GET", k8s.ns_path(resource, namespace=namespace))["items"]
        out[resource] = sorted(i["metadata"]["name"] for i in items)
    return out


def nothing_created(k8s) -> dict[str, dict[str, list[str]]]:
    """Pods/Secrets left in any of the test namespaces (empty dict: none)."""
    found = {}
    for ns in k8s.namespaces:
        left = {k: v for k, v in resources_in(k8s, ns).items() if v}
        if left:
            found[ns] = left
    return found


def create_claim(k8s, name: str, namespace: str | None = None, **spec: Any) -> None:
    """A PersistentVolumeClaim (RWX, 1Gi). Without ``volumeName`` nothing binds it (there is no
    controller); the kubelet stand-in then gives it a directory of its own."""
    k8s.api(
        "POST",
        k8s.ns_path("persistentvolumeclaims", namespace=namespace),
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "resources": {"requests": {"storage": "1Gi"}},
                **spec,
            },
        },
    )


def catalog_claims(catalog: dict[str, Any]) -> set[str]:
    """The claims the catalog's images mount (e.g. shared datasets)."""
    return {
        v["persistentVolumeClaim"]["claimName"]
        for image in catalog.get("images") or []
        for v in image.get("volumes") or []
        if "persistentVolumeClaim" in v
    }


def create_claims(k8s, namespace: str | None = None) -> None:
    """The example's claims in ``namespace``: ``institute-homes`` pre-bound to the nfs PV,
    ``institute-data`` and the claims the example catalog's images mount, unbound."""
    create_claim(k8s, HOMES_CLAIM, namespace, storageClassName="", volumeName=HOMES_CLAIM)
    for claim in sorted({DATA_CLAIM} | catalog_claims(example_catalog())):
        create_claim(k8s, claim, namespace)


@pytest.fixture
def homes(k8s, kubelet, tmp_path) -> Path:
    """The example's storage in the restricted namespace: ``institute-homes`` (an nfs PV whose
    export has a home per directory user, owned by them) and ``institute-data``.
    Returns the local directory serving ``nfs.example.org:/export/home``."""
    export = tmp_path / "export-home"
    export.mkdir()
    export.chmod(0o755)
    for name, user in example_directory()["users"].items():
        home = export / name
        home.mkdir()
        os.chown(home, user["uid"], user["gid"])
        home.chmod(0o750)
    kubelet.map_nfs(NFS_SERVER, HOMES_EXPORT, export)
    k8s.api(
        "POST",
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": HOMES_CLAIM},
            "spec": {
                "capacity": {"storage": "1Ti"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "nfs": {"server": NFS_SERVER, "path": HOMES_EXPORT},
            },
        },
    )
    create_claims(k8s)
    return export


# --------------------------------------------------------------------------- API recorder


class ApiCall(SimpleNamespace):
    method: str
    path: str
    query: dict[str, list[str]]
    token: str
    status: int | None
    #: the decoded answer to a write (POST/PUT/PATCH/DELETE)
    body: Any

    @property
    def verb(self) -> str:
        """The Kubernetes authorization verb of this request."""
        named = self.name is not None
        if self.method == "GET":
            if self.query.get("watch", ["false"])[0].lower() in ("true", "1"):
                return "watch"
            return "get" if named else "list"
        return {
            "POST": "create",
            "PUT": "update",
            "PATCH": "patch",
            "DELETE": "delete" if named else "deletecollection",
        }[self.method]

    @property
    def _parts(self) -> list[str]:
        return [p for p in self.path.split("/") if p]

    @property
    def resource(self) -> str:
        parts = self._parts
        if "namespaces" in parts and len(parts) > parts.index("namespaces") + 2:
            return parts[parts.index("namespaces") + 2]
        return parts[-1]

    @property
    def name(self) -> str | None:
        parts = self._parts
        if "namespaces" in parts:
            rest = parts[parts.index("namespaces") + 3 :]
            return rest[0] if rest else None
        return None

    @property
    def subresource(self) -> str | None:
        parts = self._parts
        if "namespaces" in parts:
            rest = parts[parts.index("namespaces") + 3 :]
            return rest[1] if len(rest) > 1 else None
        return None

    @property
    def namespace(self) -> str | None:
        parts = self._parts
        return parts[parts.index("namespaces") + 1] if "namespaces" in parts else None


@contextlib.contextmanager
def record_api_calls() -> Iterator[list[ApiCall]]:
    """Record every request kubernetes_asyncio sends (method, path, query, bearer token,
    status). A pass-through wrapper: the real API server answers every request."""
    from kubernetes_asyncio.client import rest

    calls: list[ApiCall] = []
    original = rest.RESTClientObject.request

    async def request(self, method, url, query_params=None, headers=None, *args, **kwargs):
        split = urlsplit(url)
        query = parse_qs(split.query)
        for k, v in query_params or []:
            query.setdefault(k, []).append(str(v))
        auth = (headers or {}).get("Authorization") or (headers or {}).get("authorization") or ""
        call = ApiCall(
            method=method.upper(),
            path=split.path,
            query=query,
            token=auth.removeprefix("Bearer ").removeprefix("bearer "),
            status=None,
            body=None,
        )
        calls.append(call)
        try:
            response = await original(self, method, url, query_params, headers, *args, **kwargs)
        except Exception as e:
            call.status = getattr(e, "status", None)
            raise
        call.status = getattr(response, "status", None)
        data = getattr(response, "data", None)  # read already unless streaming (watches)
        if isinstance(data, (bytes, str)) and call.method != "GET":
            with contextlib.suppress(ValueError):
                call.body = json.loads(data)
        return response

    rest.RESTClientObject.request = request
    try:
        yield calls
    finally:
        rest.RESTClientObject.request = original
