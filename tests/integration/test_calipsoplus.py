"""The Calipsoplus setup from the JupyterHub-on-Kubernetes guide, purely in config.yaml.

helm-values/nfs-homes.yaml replaces the guide's hand-written extraConfig (a KubeSpawner
subclass asking a REST API for the home path, uid and gid, hostPath mounts): here a real HTTP
API (tornado, on loopback) answers for the user, and `nbspawner render` shows the pod the hub
would create from that file alone.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import yaml
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop
from tornado.netutil import bind_sockets

from nbspawner.cli import main

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TOKEN = "calipso-test-token-0123456789"
USERS = {
    "jdoe": {
        "username": "jdoe",
        "uidNumber": 52001,
        "gidNumber": 52000,
        "homeDirectory": "/users/jdoe",
        "displayName": "Jane Doe",
        "groups": [{"name": "exp-20190112", "gid": 60112}, {"name": "staff", "gid": 52000}],
    }
}


class UserAPI:
    """A minimal institute user API: GET /api/v1/users/<name> with a bearer token."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.port = 0
        self._loop: IOLoop | None = None

    def start(self) -> UserAPI:
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(asyncio.new_event_loop())
            api = self

            class Handler(web.RequestHandler):
                def get(self, name: str) -> None:
                    api.requests.append((name, self.request.headers.get("Authorization", "")))
                    if self.request.headers.get("Authorization") != f"Bearer {TOKEN}":
                        raise web.HTTPError(401)
                    if name not in USERS:
                        raise web.HTTPError(404)
                    self.set_header("Content-Type", "application/json")
                    self.write(json.dumps(USERS[name]))

            sockets = bind_sockets(0, "127.0.0.1")
            self.port = sockets[0].getsockname()[1]
            server = HTTPServer(web.Application([(r"/api/v1/users/([^/]+)", Handler)]))
            server.add_sockets(sockets)
            self._loop = IOLoop.current()
            ready.set()
            self._loop.start()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.add_callback(self._loop.stop)


@pytest.fixture
def user_api():
    api = UserAPI().start()
    yield api
    api.stop()


def test_calipsoplus_setup_renders_from_config_yaml_alone(user_api, tmp_path, capsys):
    values = yaml.safe_load((REPO / "helm-values" / "nfs-homes.yaml").read_text())
    assert "extraConfig" not in values["hub"], "the point is: no Python in config.yaml"
    # the only changes: where the API and its token are on this machine
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    http = values["hub"]["config"]["HTTPDirectory"]
    http["url_template"] = f"http://127.0.0.1:{user_api.port}/api/v1/users/{{username}}"
    http["token_file"] = str(token_file)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(values))

    assert main(["render", "jdoe", "--config", str(config)]) == 0
    out = capsys.readouterr()
    pod = yaml.safe_load(out.out)
    assert TOKEN not in out.out + out.err, "the API token must never be printed"
    assert user_api.requests == [("jdoe", f"Bearer {TOKEN}")]

    spec = pod["spec"]
    nb = next(c for c in spec["containers"] if c["name"] == "notebook")
    # uid/gid from the API, not the chart's 1000
    assert nb["securityContext"]["runAsUser"] == 52001
    assert nb["securityContext"]["runAsGroup"] == 52000
    assert 60112 in spec["securityContext"]["supplementalGroups"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: m for m in nb["volumeMounts"]}
    # the home path the API gave, on the institute's NFS server, at /home/<user>
    home = volumes[mounts["/home/jdoe"]["name"]]
    assert home["nfs"] == {"server": "nfs.example-institute.eu", "path": "/users/jdoe"}
    # experiment data of the user's experiment group only, read-only
    exp = mounts["/data/exp-20190112"]
    assert exp["readOnly"] is True
    assert volumes[exp["name"]]["nfs"]["path"] == "/exp/exp-20190112"
    assert not any(p.startswith("/data/exp-2019024") for p in mounts)
    # the name fix: passwd entry for jdoe mounted read-only
    assert mounts["/etc/passwd"]["readOnly"] is True
    init = {c["name"]: c for c in spec["initContainers"]}
    env = {e["name"]: e["value"] for e in init["nbspawner-passwd"]["env"]}
    assert env["NB_PW_USER"] == "jdoe" and env["NB_PW_HOME"] == "/home/jdoe"


def test_unknown_user_gets_no_pod(user_api, tmp_path, capsys):
    values = yaml.safe_load((REPO / "helm-values" / "nfs-homes.yaml").read_text())
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    http = values["hub"]["config"]["HTTPDirectory"]
    http["url_template"] = f"http://127.0.0.1:{user_api.port}/api/v1/users/{{username}}"
    http["token_file"] = str(token_file)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(values))
    assert main(["render", "mallory", "--config", str(config)]) == 1
    out = capsys.readouterr()
    assert out.out == ""
    assert "not found in the user directory" in out.err
