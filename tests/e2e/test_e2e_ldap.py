"""End to end as a user, LDAP edition: log in with an LDAP password, pick a profile, get a
notebook whose terminal knows your name.

The hub is configured from helm-values/ldap.yaml (the documented z2jh ``config.yaml``) with
only the site-specific values replaced: the LDAP servers are the slapd fixture (the directory
goes through a TCP proxy so that an outage can be simulated while logins still work), the
catalog is the bundled example, the homes PVC is bound to a directory of this test. The
spawner talks to the real kube-apiserver with the hub's ServiceAccount token (z2jh's Role) in
a namespace enforcing Pod Security "restricted"; the kubelet stand-in runs the pod on this
machine as the user's uid, with the real passwd init script.

Tests run in file order against one hub (starting a hub, its proxy and a pod is what costs).
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    ARTIFACTS,
    DELETE,
    EXAMPLE_CATALOG,
    CuttableProxy,
    assert_no_pod,
    chart_settings,
    check_terminal_identity,
    create_homes_claim,
    harness_singleuser,
    hub_latency_probe,
    ldap_login,
    load_helm_values,
    make_home,
    merged,
    poll,
    profile_slugs,
    profile_titles,
    screenshot,
    spawn_from_form,
    z2jh_hub_config,
)
from tests.fixtures.browser import new_browser_page
from tests.fixtures.hub import HubProcess, run_hub
from tests.fixtures.slapd import SlapdServer, load_directory_data, user_password

pytestmark = pytest.mark.e2e

#: the users of tests/fixtures/ldap_data/directory.yaml this module logs in as
ALICE = {"name": "alice", "uid": 2001, "gid": 2000}
#: LDAP lookup bounds for the outage test: a black-holed server fails a lookup within seconds
CONNECT_TIMEOUT, SEARCH_TIMEOUT, LOOKUP_TIMEOUT = 2.0, 3.0, 10.0


@dataclass
class Site:
    hub: HubProcess
    proxy: CuttableProxy
    homes: Path
    cp: Any
    kubelet: Any
    slapd: SlapdServer


def site_values(slapd: SlapdServer, proxy: CuttableProxy, venv: Path) -> dict[str, Any]:
    """helm-values/ldap.yaml with this machine's addresses and files."""
    return merged(
        load_helm_values("ldap.yaml"),
        {
            "hub": {
                "config": {
                    "LDAPAuthenticator": {
                        # logins go straight to slapd (StartTLS with the test CA)...
                        "server_address": "127.0.0.1",
                        "server_port": slapd.port,
                        "tls_kwargs": {"ca_certs_file": slapd.ca_file},
                        # the test slapd lets a user read only their own entry, so group
                        # checks done with the user's bind cannot work: everyone may log in
                        "allowed_groups": DELETE,
                        "allow_all": True,
                    },
                    "NBSpawner": {
                        "catalog_file": str(EXAMPLE_CATALOG),
                        # the test directory's homes are /home/<name>
                        "home_roots": ["/home"],
                        "home_volume": {
                            "type": "pvc",
                            "claim_name": "homes",
                            "export_roots": ["/home"],
                        },
                    },
                    "LDAPDirectory": {
                        # ...the directory's lookups go through a proxy that can cut them off
                        "server_urls": [f"ldap://127.0.0.1:{proxy.port}"],
                        "ca_file": slapd.ca_file,
                        "bind_dn": slapd.bind_dn,
                        "bind_password_file": str(slapd.bind_password_file),
                        "connect_timeout": CONNECT_TIMEOUT,
                        "search_timeout": SEARCH_TIMEOUT,
                        "lookup_timeout": LOOKUP_TIMEOUT,
                    },
                },
            },
            "singleuser": harness_singleuser(venv),
        },
    )


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    slapd: SlapdServer,
    e2e_cluster: Any,
    kubelet: Any,
    singleuser_venv: Path,
) -> Iterator[Site]:
    slapd.start()
    cp = e2e_cluster
    tmp = tmp_path_factory.mktemp("e2e-ldap")
    # the "NFS export" of the homes: every LDAP user with a usable entry has one
    homes = tmp / "export-home"
    users = load_directory_data()["users"]
    for name in ("alice", "bob", "carol"):
        make_home(homes, name, users[name]["uid"], users[name]["gid"])
    create_homes_claim(cp, homes)
    proxy = CuttableProxy("127.0.0.1", slapd.port).start()
    config = z2jh_hub_config(
        site_values(slapd, proxy, singleuser_venv), tmp / "site", chart_settings(cp)
    )
    env = {"KUBECONFIG": str(cp.hub_kubeconfig)}
    try:
        with run_hub(tmp, config, env=env, timeout=120) as hub:
            yield Site(hub=hub, proxy=proxy, homes=homes, cp=cp, kubelet=kubelet, slapd=slapd)
        # leaving run_hub stopped the hub, which stopped every server (cleanup_servers)
    finally:
        proxy.close()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for src, dst in (
            (tmp / "site" / "config.yaml", "e2e-ldap-config.yaml"),
            (tmp / "hub" / "jupyterhub.log", "e2e-ldap-hub.log"),
        ):
            if src.exists():
                shutil.copyfile(src, ARTIFACTS / dst)


def test_forged_choices_through_the_rest_api_get_4xx(site: Site) -> None:
    """bob (chemistry) asks the REST API for things his groups do not allow: refused, no pod."""
    hub = site.hub
    assert hub.api("POST", "/users", json={"usernames": ["bob"]}).status_code == 201
    forged = [
        # an image only physics may use
        ({"profile": "kubeflow-pytorch"}, 403),
        # an open image, but a size only gpu-users and staff may use
        ({"profile": "scipy", "size": "xlarge"}, 403),
        # a KubeSpawner setting smuggled in as an option
        ({"profile": "scipy", "uid": 0}, 400),
        # an image that does not exist
        ({"profile": "no-such-image"}, 403),
    ]
    for options, status in forged:
        t0 = time.monotonic()
        r = hub.api("POST", "/users/bob/server", json=options)
        assert r.status_code == status, (options, r.status_code, r.text)
        message = r.json()["message"]
        assert "Traceback" not in message and "KeyError" not in message, message
        assert time.monotonic() - t0 < 30
    assert (
        "may not use" in hub.api("POST", "/users/bob/server", json=forged[0][0]).json()["message"]
    )
    assert_no_pod(site.cp, "bob")
    log = hub.log()
    assert "Refusing to spawn bob" in log
    assert "kubeflow-pytorch" in log  # the admin's log names what was asked for


def test_invalid_directory_entry_gets_a_readable_error_page(site: Site, browser: Any) -> None:
    """mallory can log in (her LDAP password is right) but her entry has uidNumber "abc":
    she gets a short refusal instead of the spawn form, and no pod is created."""
    page = new_browser_page(browser)
    try:
        ldap_login(page, site.hub.url, "mallory", user_password("mallory"))
        page.wait_for_selector("text=cannot be used to start a server")
        body = page.inner_text("body")
        screenshot(page, "ldap-refused-invalid-record")
        assert "Please contact your administrator" in body
        assert "403" in body
        # nothing internal leaks to the user
        for leak in ("Traceback", "uidNumber", "abc", "ldap3", "LDAPDirectory"):
            assert leak not in body, (leak, body)
        assert page.locator("#kubespawner-profiles-list").count() == 0
    finally:
        page.context.close()
    assert_no_pod(site.cp, "mallory")
    assert "Refusing to spawn mallory" in site.hub.log()


def test_alice_logs_in_picks_a_profile_and_her_terminal_knows_her(site: Site, browser: Any) -> None:
    hub, cp = site.hub, site.cp
    page = new_browser_page(browser)
    try:
        # the hub's login page: her LDAP password
        ldap_login(page, hub.url, ALICE["name"], user_password(ALICE["name"]), shot="login")

        # the profiles her groups (physics, gpu-users) allow, and only those
        page.wait_for_url(re.compile(r".*/hub/spawn(/alice)?$"))
        titles = profile_titles(page)
        slugs = profile_slugs(page)
        for allowed in ("SciPy", "PyTorch (CUDA 12)", "Kubeflow PyTorch (CPU)", "VS Code (Python)"):
            assert allowed in titles, titles
        # chemistry/staff only, and a hidden image
        assert "RStudio (tidyverse)" not in titles, titles
        assert "kubeflow-rstudio" not in slugs and "scipy-next" not in slugs, slugs

        # pick SciPy, small; the progress page shows the directory step; JupyterLab opens
        spawn_from_form(page, hub, cp, site.kubelet, "alice", "scipy", "small", docs_shots=True)
        pod = cp.get_pod("jupyter-alice")
        assert pod is not None and pod["status"]["phase"] == "Running"
        assert pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == ALICE["uid"]
        assert any(c["name"] == "nbspawner-passwd" for c in pod["spec"]["initContainers"])

        # a terminal that knows who she is
        check_terminal_identity(
            page,
            "alice",
            ALICE["uid"],
            ALICE["gid"],
            "hpc",
            {"hpc": 2000, "physics": 3001, "gpu-users": 3002},
            not_groups=["chemistry"],
            docs_shots=True,
        )
    finally:
        page.context.close()

    # the file is on the "file server", owned by her uid and primary gid
    created = site.homes / "alice" / "e2e-file"
    assert created.exists()
    assert (created.stat().st_uid, created.stat().st_gid) == (ALICE["uid"], ALICE["gid"])

    # stopping the server deletes the pod
    r = hub.api("DELETE", "/users/alice/server")
    assert r.status_code in (202, 204), r.text
    poll(lambda: cp.get_pod("jupyter-alice") is None, 90, "alice's pod to be deleted", 0.5)


def test_directory_outage_refuses_the_spawn_and_the_hub_stays_responsive(
    site: Site, browser: Any
) -> None:
    """carol logs in (her password is checked by slapd directly) while the directory's
    connection is black-holed: the lookup times out off the event loop, she gets a readable
    "try again" page, no pod is created, and the hub answers other requests meanwhile."""
    hub = site.hub
    page = new_browser_page(browser, timeout_ms=(LOOKUP_TIMEOUT + 60) * 1000)
    try:
        site.proxy.outage()
        try:
            with hub_latency_probe(hub.api_url) as samples:
                t0 = time.monotonic()
                ldap_login(page, hub.url, "carol", user_password("carol"))
                page.wait_for_selector("text=could not be reached")
                waited = time.monotonic() - t0
            screenshot(page, "ldap-refused-directory-outage")
            body = page.inner_text("body")
        finally:
            site.proxy.restore()
        assert "try again" in body, body
        assert "503" in body, body
        for leak in ("Traceback", "ldap://", "timed out", "LDAPDirectory"):
            assert leak not in body, (leak, body)
        # the lookup really hung (at least one search timeout) and the hub kept answering
        assert waited >= SEARCH_TIMEOUT - 0.5, waited
        assert len(samples) >= 5, samples
        assert max(samples) < 2.0, f"GET /hub/api took up to {max(samples):.2f}s: {samples}"
        assert_no_pod(site.cp, "carol")
        assert "Refusing to spawn carol" in hub.log()

        # the directory is back: the same user gets her profiles (failures are never cached)
        page.goto(f"{hub.url}/hub/spawn")
        titles = profile_titles(page)
        assert "SciPy" in titles and "Kubeflow PyTorch (CPU)" not in titles, titles
    finally:
        page.context.close()
    assert_no_pod(site.cp, "carol")
