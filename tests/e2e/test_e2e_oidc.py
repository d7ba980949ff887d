"""End to end as a user, OpenID Connect edition: log in at the identity provider, pick a
profile, get a notebook whose terminal knows your name, uid and groups from the OIDC claims.

The hub is configured from helm-values/oidc-keycloak.yaml (the documented z2jh
``config.yaml``) with only the provider's addresses and the catalog path replaced: a real
GenericOAuthenticator (authorization code flow with PKCE, auth_state encrypted with
JUPYTERHUB_CRYPT_KEY, groups from the ``groups`` claim, userinfo refreshed before each spawn)
against a real ``oidc-provider-mock`` process whose userinfo carries uidNumber, gidNumber,
homeDirectory and groups; NBSpawner reads them with the OIDC claims directory. Kubernetes side
as in the LDAP scenario: real API server, restricted namespace, the kubelet stand-in.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import (
    ARTIFACTS,
    EXAMPLE_CATALOG,
    assert_no_pod,
    chart_settings,
    check_terminal_identity,
    create_homes_claim,
    harness_singleuser,
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
from tests.fixtures.oidc_provider import OIDCProvider

pytestmark = pytest.mark.e2e

CLIENT_SECRET = "e2e-oidc-client-secret"
#: a user whose identity lives only in the identity provider (no LDAP anywhere)
OLIVIA = {
    "preferred_username": "olivia",
    "name": "Olivia Quinn",
    "email": "olivia@example.org",
    "uidNumber": 2301,
    "gidNumber": 3001,  # physics (OIDCClaimsDirectory.group_gids in oidc-keycloak.yaml)
    "homeDirectory": "/export/home/olivia",
    "groups": ["jupyterhub-users", "physics"],
}
#: allowed to log in (group jupyterhub-users) but the provider sends no uidNumber for her
NEMO = {
    "preferred_username": "nemo",
    "name": "Nemo Nobody",
    "email": "nemo@example.org",
    "groups": ["jupyterhub-users", "physics"],
}


@dataclass
class Site:
    hub: HubProcess
    provider: OIDCProvider
    homes: Path
    cp: Any
    kubelet: Any


def site_values(provider: OIDCProvider, venv: Path) -> dict[str, Any]:
    """helm-values/oidc-keycloak.yaml with the local provider and the bundled catalog."""
    discovery = provider.discovery
    return merged(
        load_helm_values("oidc-keycloak.yaml"),
        {
            "hub": {
                "config": {
                    "GenericOAuthenticator": {
                        "authorize_url": discovery["authorization_endpoint"],
                        "token_url": discovery["token_endpoint"],
                        "userdata_url": discovery["userinfo_endpoint"],
                        "logout_redirect_url": provider.url + "/",
                        "login_service": "the test identity provider",
                    },
                    "NBSpawner": {"catalog_file": str(EXAMPLE_CATALOG)},
                },
            },
            "singleuser": harness_singleuser(venv),
        },
    )


@pytest.fixture(scope="module")
def site(
    tmp_path_factory: pytest.TempPathFactory,
    oidc_provider: OIDCProvider,
    e2e_cluster: Any,
    kubelet: Any,
    singleuser_venv: Path,
) -> Iterator[Site]:
    cp = e2e_cluster
    tmp = tmp_path_factory.mktemp("e2e-oidc")
    oidc_provider.set_user("olivia", OLIVIA)
    oidc_provider.set_user("nemo", NEMO)
    # the "NFS export" /export/home of the values file
    homes = tmp / "export-home"
    make_home(homes, "olivia", OLIVIA["uidNumber"], OLIVIA["gidNumber"])
    create_homes_claim(cp, homes)
    config = z2jh_hub_config(
        site_values(oidc_provider, singleuser_venv),
        tmp / "site",
        chart_settings(cp),
        # the hub's public address is only known once tests/fixtures/hub.py picked a port
        late_python="""
            c.GenericOAuthenticator.oauth_callback_url = (
                f"http://127.0.0.1:{c.JupyterHub.port}/hub/oauth_callback"
            )
        """,
    )
    env = {
        "KUBECONFIG": str(cp.hub_kubeconfig),
        # the chart's hub.extraEnv (a Secret in the cluster)
        "OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        # z2jh generates this key (hub.config.CryptKeeper.keys); auth_state needs one
        "JUPYTERHUB_CRYPT_KEY": os.urandom(32).hex(),
    }
    try:
        with run_hub(tmp, config, env=env, timeout=120) as hub:
            yield Site(hub=hub, provider=oidc_provider, homes=homes, cp=cp, kubelet=kubelet)
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        for src, dst in (
            (tmp / "site" / "config.yaml", "e2e-oidc-config.yaml"),
            (tmp / "hub" / "jupyterhub.log", "e2e-oidc-hub.log"),
        ):
            if src.exists():
                shutil.copyfile(src, ARTIFACTS / dst)


def oidc_login(page: Any, site: Site, sub: str, *, shot_prefix: str = "") -> None:
    """Hub login page -> the provider's authorize form -> back to the hub."""
    page.goto(f"{site.hub.url}/hub/login")
    button = page.locator("a", has_text="Sign in with the test identity provider")
    button.wait_for()
    if shot_prefix:
        screenshot(page, f"{shot_prefix}login")
    button.click()
    page.wait_for_url(re.compile(re.escape(site.provider.url) + r"/oauth2/authorize.*"))
    page.fill("input[name=sub]", sub)
    if shot_prefix:
        screenshot(page, f"{shot_prefix}provider")
    page.click("button[type=submit]:has-text('Authorize')", no_wait_after=True)


def test_olivia_logs_in_with_oidc_and_her_terminal_knows_her(site: Site, browser: Any) -> None:
    hub, cp = site.hub, site.cp
    page = new_browser_page(browser)
    try:
        oidc_login(page, site, "olivia", shot_prefix="oidc-")
        page.wait_for_url(re.compile(re.escape(hub.url) + r"/hub/spawn(/olivia)?$"))
        titles = profile_titles(page)
        slugs = profile_slugs(page)
        # physics may use these...
        for allowed in ("SciPy", "Kubeflow PyTorch (CPU)", "VS Code (Python)"):
            assert allowed in titles, titles
        # ...but not the GPU images of gpu-users, nor chemistry's RStudio
        for forbidden in ("pytorch-cuda", "kubeflow-pytorch-cuda", "kubeflow-rstudio"):
            assert forbidden not in slugs, slugs

        spawn_from_form(
            page, hub, cp, site.kubelet, "olivia", "scipy", "small", shot_prefix="oidc-"
        )
        pod = cp.get_pod("jupyter-olivia")
        assert pod is not None
        assert pod["spec"]["containers"][0]["securityContext"]["runAsUser"] == OLIVIA["uidNumber"]

        check_terminal_identity(
            page,
            "olivia",
            OLIVIA["uidNumber"],
            OLIVIA["gidNumber"],
            "physics",
            {"physics": 3001, "users": 100},
            not_groups=["gpu-users", "chemistry"],
            shot_prefix="oidc-",
        )
    finally:
        page.context.close()

    created = site.homes / "olivia" / "e2e-file"
    assert (created.stat().st_uid, created.stat().st_gid) == (2301, 3001)

    # the claims reached the hub as groups too (manage_groups + auth_state_groups_key)
    user = hub.api("GET", "/users/olivia").json()
    assert {"jupyterhub-users", "physics"} <= set(user["groups"]), user

    r = hub.api("DELETE", "/users/olivia/server")
    assert r.status_code in (202, 204), r.text
    poll(lambda: cp.get_pod("jupyter-olivia") is None, 90, "olivia's pod to be deleted", 0.5)


def test_user_without_uid_claim_gets_a_readable_refusal(site: Site, browser: Any) -> None:
    """nemo may log in (group jupyterhub-users) but the provider sends no uidNumber: the spawn
    page says so in one sentence and no pod is created."""
    page = new_browser_page(browser)
    try:
        oidc_login(page, site, "nemo")
        page.wait_for_selector("text=not found in the user directory")
        body = page.inner_text("body")
        screenshot(page, "oidc-refused-no-uid")
        assert "Please contact your administrator" in body
        for leak in ("Traceback", "uidNumber", "auth_state", "OIDCClaimsDirectory"):
            assert leak not in body, (leak, body)
    finally:
        page.context.close()
    assert_no_pod(site.cp, "nemo")
    assert "Refusing to spawn nemo" in site.hub.log()
