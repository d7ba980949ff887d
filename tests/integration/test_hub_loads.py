"""A real JupyterHub process loads NBSpawner the way z2jh configures it."""

import textwrap

import pytest
import requests

from nbspawner.offline import example_file
from tests.fixtures.hub import write_dry_kubeconfig

pytestmark = pytest.mark.integration


def test_hub_loads_nbspawner_with_z2jh_settings(tmp_path):
    from tests.fixtures.hub import run_hub

    config = textwrap.dedent(
        f"""
        # what the z2jh chart's jupyterhub_config.py always sets
        c.KubeSpawner.profile_list = []
        c.KubeSpawner.uid = 1000
        c.KubeSpawner.fs_gid = 100
        # what an admin writes under hub.config
        c.JupyterHub.spawner_class = "nbspawner"
        c.NBSpawner.directory_class = "static"
        c.StaticDirectory.path = {example_file("directory.yaml")!r}
        c.JupyterHub.authenticator_class = "dummy"
        c.Authenticator.allow_all = True
        c.JupyterHub.authenticate_prometheus = False
        """
    )
    env = {"KUBECONFIG": str(write_dry_kubeconfig(tmp_path))}
    with run_hub(tmp_path, config, env=env) as hub:
        assert "Using Spawner: nbspawner.spawner.NBSpawner" in hub.log()
        # a user the directory does not know: refused by NBSpawner (fail closed), readable message
        assert hub.api("POST", "/users", json={"usernames": ["mallory"]}).status_code == 201
        r = hub.api("POST", "/users/mallory/server")
        assert r.status_code == 403, r.text
        assert "not found in the user directory" in r.json()["message"]
        # the admin's log says which backend and which setting to check
        assert (
            "Refusing to spawn mallory: static: user 'mallory' is not in "
            "StaticDirectory.users or .path" in hub.log()
        )
        # nbspawner's metrics are on the hub's own /metrics
        metrics = requests.get(hub.url + "/hub/metrics", timeout=30).text
        assert 'nbspawner_spawn_refusals_total{reason="not_found"} 1.0' in metrics
        assert "nbspawner_directory_lookup_duration_seconds_bucket" in metrics
        assert 'nbspawner_directory_cache_requests_total{result="miss"}' in metrics
