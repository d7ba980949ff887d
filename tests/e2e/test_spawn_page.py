"""The spawn page in a real browser: each user sees only the profiles their groups allow.

A real JupyterHub (with configurable-http-proxy) runs NBSpawner with the bundled example
directory and catalog; headless Chromium logs in as users of different groups and reads the
profile list kubespawner renders. Forged choices (a form POST and a REST API spawn naming
another group's image) are refused before any Kubernetes call: the kube config below points at
a closed port, so reaching the API server would fail differently.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import requests

from nbspawner.offline import example_file
from tests.fixtures.browser import new_browser_page
from tests.fixtures.hub import run_hub, write_dry_kubeconfig

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"

HUB_CONFIG = f"""
c.KubeSpawner.profile_list = []
c.KubeSpawner.uid = 1000
c.JupyterHub.spawner_class = "nbspawner"
c.NBSpawner.directory_class = "static"
c.StaticDirectory.path = {example_file("directory.yaml")!r}
c.NBSpawner.catalog_file = {example_file("catalog.yaml")!r}
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = "e2e-password"
c.Authenticator.allow_all = True
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("spawnpage")
    env = {"KUBECONFIG": str(write_dry_kubeconfig(tmp))}
    with run_hub(tmp, textwrap.dedent(HUB_CONFIG), env=env) as hub:
        yield hub


def login(page, hub, username: str) -> None:
    page.goto(hub.url + "/hub/login")
    page.fill("input#username_input", username)
    page.fill("input#password_input", "e2e-password")
    page.click("input#login_submit, button#login_submit")
    page.wait_for_url(re.compile(r".*/hub/(spawn|home).*"))


def offered_profiles(page, hub) -> set[str]:
    page.goto(hub.url + "/hub/spawn")
    page.wait_for_selector("input[name='profile']", state="attached")
    return set(page.eval_on_selector_all("input[name='profile']", "els => els.map(e => e.value)"))


@pytest.mark.parametrize(
    "username, must_see, must_not_see",
    [
        ("alice", {"pytorch-cuda", "scipy"}, {"kubeflow-rstudio"}),
        ("bob", {"kubeflow-rstudio", "scipy"}, {"pytorch-cuda"}),
    ],
)
def test_each_user_sees_only_their_profiles(browser, hub, username, must_see, must_not_see):
    page = new_browser_page(browser)
    login(page, hub, username)
    offered = offered_profiles(page, hub)
    assert must_see <= offered, offered
    assert not (must_not_see & offered), offered
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"spawn-page-{username}.png"), full_page=True)
    page.context.close()


def test_forged_form_post_is_refused(browser, hub):
    page = new_browser_page(browser)
    login(page, hub, "bob")
    offered_profiles(page, hub)
    # bob edits the form: he submits alice's GPU image, which his page never offered
    page.evaluate(
        """() => {
            const form = document.querySelector('form#spawn_form');
            const input = document.createElement('input');
            input.type = 'hidden'; input.name = 'profile'; input.value = 'pytorch-cuda';
            form.querySelectorAll("input[name='profile']").forEach(e => e.remove());
            form.appendChild(input);
            form.submit();
        }"""
    )
    page.wait_for_load_state()
    page.wait_for_selector("text=You may not use", timeout=60_000)
    body = page.inner_text("body")
    assert "pytorch-cuda" in body
    page.context.close()
    assert "Refusing to spawn bob" in hub.log()


def test_forged_rest_spawn_is_refused(hub):
    assert hub.api("POST", "/users", json={"usernames": ["bob"]}).status_code in (201, 409)
    r = hub.api("POST", "/users/bob/server", json={"profile": "pytorch-cuda"})
    assert r.status_code == 403, r.text
    assert "pytorch-cuda" in r.json()["message"]
    r = hub.api("POST", "/users/bob/server", json={"profile": "no-such-image"})
    assert 400 <= r.status_code < 500, r.text
    # the hub stays healthy and nothing is running for bob
    user = requests.get(
        hub.api_url + "/users/bob", headers={"Authorization": f"token {hub.api_token}"}, timeout=30
    ).json()
    assert not user["servers"] or all(not s.get("ready") for s in user["servers"].values())


# -- catalog text is text (issue 15, class 4) -------------------------------------------------

XSS = '<img src=x onerror="window.__xss=1;alert(1)">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
XSS_SVG = '"><svg onload="window.__xss=3">'
XSS_CATALOG = {
    "version": 1,
    "images": [
        {
            "slug": "scipy",
            "display_name": f"SciPy {XSS}",
            "description": f"Description {XSS_SCRIPT}",
            "labels": {"stack": XSS_SVG},
            "image": "quay.io/jupyter/scipy-notebook:2025-03-17",
        }
    ],
    "sizes": [
        {
            "slug": "small",
            "display_name": f"Small {XSS_SVG}",
            "cpu_guarantee": 1,
            "mem_guarantee": "1Gi",
        }
    ],
}


@pytest.fixture(scope="module")
def xss_hub(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("xss")
    env = {"KUBECONFIG": str(write_dry_kubeconfig(tmp))}
    config = textwrap.dedent(HUB_CONFIG).replace(
        f"c.NBSpawner.catalog_file = {example_file('catalog.yaml')!r}",
        f"c.NBSpawner.catalog = {XSS_CATALOG!r}",
    )
    assert "c.NBSpawner.catalog = " in config
    with run_hub(tmp, config, env=env) as hub:
        yield hub


def test_catalog_html_shows_as_text_and_runs_nothing(browser, xss_hub):
    page = new_browser_page(browser)
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    login(page, xss_hub, "alice")
    assert offered_profiles(page, xss_hub) == {"scipy"}
    page.wait_for_timeout(500)  # an onerror/onload handler would have run by now
    form = "form#spawn_form"
    assert page.evaluate("() => window.__xss") is None
    assert dialogs == []
    injected = page.eval_on_selector(
        form, "f => f.querySelectorAll('img, svg, iframe, [onerror], [onload]').length"
    )
    assert injected == 0
    scripts = page.eval_on_selector(
        form, "f => [...f.querySelectorAll('script')].filter(s => s.text.includes('__xss')).length"
    )
    assert scripts == 0
    text = page.inner_text(form)
    for payload in (XSS, XSS_SCRIPT, XSS_SVG):
        assert payload in text, text
    page.context.close()
