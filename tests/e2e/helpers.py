"""Helpers shared by the end-to-end scenarios (tests/e2e/test_e2e_*.py).

- the hub configuration, built the way zero-to-jupyterhub builds it: a ``config.yaml`` (one of
  helm-values/ with the site-specific addresses replaced) goes through
  :func:`nbspawner.hubconfig.load_z2jh_values` (``hub.config`` + the ``singleuser`` keys the
  chart maps), is written out as ``jupyterhub_config.py`` lines, and ``hub.extraConfig`` runs
  last, as in the chart;
- the users' home directories: one ReadWriteMany PVC ``homes`` bound to a PersistentVolume
  whose ``hostPath`` is a directory of the test (the kubelet stand-in mounts it);
- a TCP proxy in front of the directory's LDAP server that can simulate an outage;
- the browser side: log in, read the spawn form and the progress log, drive JupyterLab's
  terminal and read what it shows (xterm's DOM rows), screenshots.
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
import shutil
import socket
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tests.fixtures.controlplane import ApiError, ControlPlane, wait_for
from tests.fixtures.tcpproxy import TCPProxy

REPO = Path(__file__).resolve().parents[2]
HELM_VALUES = REPO / "helm-values"
EXAMPLE_CATALOG = REPO / "nbspawner" / "examples" / "catalog.yaml"
ARTIFACTS = REPO / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_SCREENSHOTS = REPO / "docs" / "_static" / "screenshots"

#: in a values override: remove this key
DELETE = object()


# ---------------------------------------------------------------------------- hub config


def load_helm_values(name: str) -> dict[str, Any]:
    """One of the documented z2jh ``config.yaml`` files in helm-values/."""
    return yaml.safe_load((HELM_VALUES / name).read_text(encoding="utf-8"))


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in (dicts recursively; :data:`DELETE` removes)."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _plain(value: Any) -> Any:
    """traitlets Config/LazyConfigValue-free plain data (for ``repr`` into Python source)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def z2jh_hub_config(
    values: Mapping[str, Any], workdir: Path, chart_python: str, late_python: str = ""
) -> str:
    """The ``jupyterhub_config.py`` body a z2jh hub would run for ``values``.

    ``values`` is written to ``workdir/config.yaml`` (kept as a test artifact: it is the
    configuration an admin would write) and loaded with nbspawner's own z2jh loader.
    ``chart_python`` stands for what the chart's jupyterhub_config.py sets from its
    environment (namespace, hub address, ...). ``hub.extraConfig`` snippets run after the
    values, then ``late_python``: test-site settings only known once the hub's ports are
    (``c.JupyterHub.port`` is set by tests/fixtures/hub.py before any of this).
    """
    from nbspawner.hubconfig import load_z2jh_values

    workdir.mkdir(parents=True, exist_ok=True)
    values_path = workdir / "config.yaml"
    values_path.write_text(yaml.safe_dump(_plain(values), sort_keys=False), encoding="utf-8")
    loaded = load_z2jh_values(values_path)
    lines = [
        "# --- what the z2jh chart's own jupyterhub_config.py sets (test environment) ---",
        textwrap.dedent(chart_python).strip(),
        f"# --- hub.config and singleuser of {values_path.name}, mapped as the chart maps them ---",
    ]
    for section, settings in loaded.config.items():
        for key, value in settings.items():
            lines.append(f"c.{section}.{key} = {_plain(value)!r}")
    extra = (values.get("hub") or {}).get("extraConfig") or {}
    for name in sorted(extra):
        lines.append(f"# --- hub.extraConfig.{name} ---")
        lines.append(textwrap.dedent(extra[name]))
    if late_python:
        lines.append("# --- test site: values known only at run time ---")
        lines.append(textwrap.dedent(late_python).strip())
    return "\n".join(lines) + "\n"


def harness_singleuser(venv: Path) -> dict[str, Any]:
    """``singleuser`` values the test machine needs instead of a notebook image.

    The kubelet stand-in runs every pod on the host network, so the notebook server listens on
    its pod IP (``$(POD_IP)`` from the downward API) rather than 0.0.0.0:8888 of its own network
    namespace, and runs from a world-readable venv instead of an image. ``SHELL`` is what
    jupyter/docker-stacks images set in their Dockerfile (terminals start ``$SHELL``).
    """
    return {
        "cmd": [str(venv / "bin" / "jupyterhub-singleuser")],
        "extraEnv": {
            "POD_IP": {"valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            # the hub says http://0.0.0.0:8888/...; bind the pod IP instead (kubespawner sorts
            # the variables so that POD_IP and JUPYTERHUB_SERVICE_PREFIX come first)
            "JUPYTERHUB_SERVICE_URL": "http://$(POD_IP):8888$(JUPYTERHUB_SERVICE_PREFIX)",
            "SHELL": "/bin/bash",
        },
    }


def chart_settings(cp: ControlPlane) -> str:
    """What the z2jh chart's jupyterhub_config.py derives from its pod and defaults."""
    return f"""
        c.KubeSpawner.namespace = {cp.namespace!r}
        c.JupyterHub.hub_connect_ip = "127.0.0.1"
        c.KubeSpawner.start_timeout = 180
        c.KubeSpawner.http_timeout = 120
        c.KubeSpawner.events_enabled = True
        c.JupyterHub.last_activity_interval = 60
    """


# ---------------------------------------------------------------------------- cluster side


def create_homes_claim(cp: ControlPlane, host_dir: Path, claim: str = "homes") -> None:
    """A ReadWriteMany PVC ``claim`` bound to a hostPath PersistentVolume at ``host_dir``.

    Stands in for the NFS export of the homes: nbspawner mounts ``sub_path`` = the user's home
    relative to the export root. Pods only see the PVC (Pod Security "restricted" allows it).
    """
    pv_name = f"e2e-{claim}-{os.getpid()}"
    cp.api(
        "POST",
        "/api/v1/persistentvolumes",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "10Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(host_dir), "type": "Directory"},
            },
        },
    )
    cp.api(
        "POST",
        cp.ns_path("persistentvolumeclaims"),
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": claim},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv_name,
                "resources": {"requests": {"storage": "10Gi"}},
            },
        },
    )


def make_home(root: Path, name: str, uid: int, gid: int) -> Path:
    """The user's home on the "file server", owned by them (0700), as an admin creates it."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    home = root / name
    home.mkdir()
    os.chown(home, uid, gid)
    home.chmod(0o700)
    return home


def user_pods(cp: ControlPlane, username: str) -> list[str]:
    """Names of the pods kubespawner made for ``username`` (any state)."""
    return [
        p["metadata"]["name"]
        for p in cp.list_pods()
        if (p["metadata"].get("labels") or {}).get("hub.jupyter.org/username") == username
        or p["metadata"]["name"] == f"jupyter-{username}"
    ]


def reset_cluster(cp: ControlPlane, kubelet: Any) -> None:
    """Empty the test namespaces and let the kubelet finish (after a hub stopped)."""
    cp.clean_namespace()
    kubelet.wait_idle()
    kubelet.reset()


def pod_diagnostics(cp: ControlPlane, kubelet: Any, pod: str) -> str:
    """Events and container logs of ``pod``, for assertion messages."""
    out = []
    with contextlib.suppress(Exception):
        for ev in cp.events(pod):
            out.append(f"  event {ev['type']} {ev['reason']}: {ev['message']}")
    for container in ("nbspawner-passwd", "nbs-seed-home", "notebook"):
        with contextlib.suppress(Exception):
            out.append(f"--- {container} log ---\n{kubelet.logs(pod, container)[-3000:]}")
    return "\n".join(out)


# ---------------------------------------------------------------------------- directory outage


class CuttableProxy(TCPProxy):
    """A TCP proxy whose :meth:`outage` cuts every open connection and black-holes new ones
    (a firewall dropping packets: connections open, nothing ever answers)."""

    def outage(self) -> None:
        self.blackhole = True
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()

    def restore(self) -> None:
        self.blackhole = False


# ---------------------------------------------------------------------------- browser side


def screenshot(
    page: Any,
    name: str,
    *,
    docs: bool = False,
    full_page: bool = False,
    clip: Mapping[str, float] | None = None,
) -> Path:
    """Save ``name``.png under test-artifacts/screenshots/ (and docs/_static/screenshots/).

    ``clip`` (a viewport rectangle, see :func:`hub_column` and :func:`terminal_rows`) limits
    the picture to what it shows: the docs show screenshots at the width of their content
    column (about 900 px), so a whole 1280 px viewport would be shrunk to unreadable there
    (tests/integration/test_docs_layout.py checks the scale).
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page, clip=dict(clip) if clip else None)
    if docs:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
    return path


def _clip(page: Any, left: float, top: float, right: float, bottom: float) -> dict[str, float]:
    """The rectangle, rounded to whole pixels and cut to the viewport."""
    size = page.viewport_size
    left, top = max(0, int(left)), max(0, int(top))
    right, bottom = min(size["width"], int(right + 0.5)), min(size["height"], int(bottom + 0.5))
    return {"x": left, "y": top, "width": right - left, "height": bottom - top}


def hub_column(page: Any, selector: str, pad: int = 24) -> dict[str, float]:
    """A hub page's main column: as wide as ``selector`` (the login form, the spawn form, the
    progress log) plus ``pad``, from below the navigation bar to the end of the element or of
    the viewport."""
    box = page.locator(selector).first.bounding_box()
    assert box, f"{selector} is not on the page {page.url}"
    nav = page.locator("nav.navbar").first
    nav_box = nav.bounding_box() if nav.count() else None
    top = nav_box["y"] + nav_box["height"] if nav_box else box["y"] - pad
    return _clip(
        page, box["x"] - pad, top, box["x"] + box["width"] + pad, box["y"] + box["height"] + pad
    )


def terminal_rows(page: Any, pad: int = 16) -> dict[str, float]:
    """JupyterLab's terminal: its tab and the rows that have text, as wide as the terminal."""
    terminal = page.locator(".jp-Terminal").last.bounding_box()
    assert terminal, f"no terminal on the page {page.url}"
    # xterm.js keeps each row's text in its accessibility tree, one child per row of the screen
    rows = page.locator(".jp-Terminal .xterm-accessibility-tree").last.evaluate(
        "el => Array.from(el.children).map(r => r.textContent.trim() !== '')"
    )
    screen = page.locator(".jp-Terminal .xterm-screen").last.bounding_box() or terminal
    used = max((i for i, has_text in enumerate(rows) if has_text), default=len(rows) - 1)
    bottom = screen["y"] + screen["height"] * (used + 1) / max(len(rows), 1) + pad
    tabs = page.locator("#jp-main-dock-panel .lm-DockPanel-tabBar").first
    tabs_box = tabs.bounding_box() if tabs.count() else None
    top = tabs_box["y"] if tabs_box else terminal["y"]
    return _clip(page, terminal["x"], top, terminal["x"] + terminal["width"], bottom)


def poll(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    """Wait until ``predicate()`` is truthy; TimeoutError naming ``what``."""
    return wait_for(predicate, timeout, what, interval)


def ldap_login(page: Any, hub_url: str, username: str, password: str, *, shot: str = "") -> None:
    """Fill the hub's login form and submit it (without waiting for where it leads)."""
    page.goto(f"{hub_url}/hub/login")
    page.fill("#username_input", username)
    page.fill("#password_input", password)
    if shot:
        screenshot(page, shot, docs=True, clip=hub_column(page, "#login-main form"))
    page.click("#login_submit", no_wait_after=True)


def profile_titles(page: Any) -> list[str]:
    """The display names of the profiles on the spawn form."""
    page.wait_for_selector("#kubespawner-profiles-list")
    return [t.strip() for t in page.locator("#kubespawner-profiles-list h3").all_inner_texts()]


def profile_slugs(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#kubespawner-profiles-list input[name=profile]", "els => els.map(e => e.value)"
    )


def progress_log(page: Any) -> str:
    return page.locator("#progress-log").inner_text()


def open_progress_log(page: Any) -> None:
    page.evaluate("document.getElementById('progress-details').open = true")


def wait_for_jupyterlab(page: Any, timeout: float = 180) -> None:
    """Wait until JupyterLab's launcher is on screen."""
    page.wait_for_selector(".jp-Launcher", timeout=timeout * 1000)


def open_terminal(page: Any) -> Any:
    """Start a terminal from JupyterLab's launcher; return the terminal's locator."""
    card = page.locator('.jp-LauncherCard[title="Start a new terminal session"]')
    if card.count() == 0:  # title wording differs between JupyterLab versions
        card = page.locator(".jp-LauncherCard", has_text="Terminal")
    card.first.click()
    terminal = page.locator(".jp-Terminal").last
    terminal.wait_for(state="visible")
    return terminal


def terminal_text(page: Any) -> str:
    """What the visible terminal shows, one line per row.

    Read from xterm.js's accessibility rows (the notebook environment turns on JupyterLab's
    terminal ``screenReaderMode``, see tools/singleuser-venv.sh): the rows are drawn on a
    canvas, but their text is also kept in the DOM there.
    """
    rows = page.locator(".jp-Terminal .xterm-accessibility-tree").last
    if rows.count() == 0:
        return ""
    lines = rows.evaluate("el => Array.from(el.children).map(r => r.textContent)")
    return "\n".join(line.replace("\xa0", " ").rstrip() for line in lines)


def wait_terminal(page: Any, pattern: str, timeout: float = 60, what: str = "") -> re.Match:
    """Wait until the terminal text matches ``pattern`` (multiline regex); return the match."""
    rx = re.compile(pattern, re.MULTILINE)
    deadline = time.monotonic() + timeout
    while True:
        text = terminal_text(page)
        m = rx.search(text)
        if m:
            return m
        if time.monotonic() > deadline:
            shot = screenshot(page, "failed-terminal")
            html = ""
            with contextlib.suppress(Exception):
                html = page.locator(".jp-Terminal").last.inner_html()[:3000]
            raise AssertionError(
                f"terminal never showed {what or pattern!r} within {timeout}s; it shows:\n{text}"
                f"\n(screenshot {shot}; terminal HTML: {html})"
            )
        time.sleep(0.2)


def type_command(page: Any, command: str) -> None:
    """Type ``command`` + Enter into the focused terminal, like a user."""
    page.locator(".jp-Terminal .xterm-helper-textarea").last.focus()
    page.keyboard.type(command, delay=15)
    page.keyboard.press("Enter")


@contextlib.contextmanager
def hub_latency_probe(api_url: str) -> Iterator[list[float]]:
    """Measure ``GET /hub/api`` while the block runs (in a thread); yields the timings list."""
    import threading

    import requests

    samples: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        session = requests.Session()
        session.trust_env = False
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                session.get(api_url + "/", timeout=30).raise_for_status()
                samples.append(time.monotonic() - t0)
            except requests.RequestException:
                samples.append(float("inf"))
            stop.wait(0.2)

    thread = threading.Thread(target=probe, name="hub-latency-probe", daemon=True)
    thread.start()
    try:
        yield samples
    finally:
        stop.set()
        thread.join(35)


def assert_no_pod(cp: ControlPlane, username: str) -> None:
    try:
        pods = user_pods(cp, username)
    except ApiError as e:  # pragma: no cover - the admin API must answer
        raise AssertionError(f"cannot list pods: {e}") from None
    assert not pods, f"{username} got pods {pods} although the spawn was refused"


# ---------------------------------------------------------------------------- the user's journey


def spawn_from_form(
    page: Any,
    hub: Any,
    cp: ControlPlane,
    kubelet: Any,
    username: str,
    profile: str,
    size: str | None = None,
    *,
    docs_shots: bool = False,
    shot_prefix: str = "",
) -> None:
    """On the spawn form: pick ``profile`` (and ``size``), start, watch the progress page
    (NBSpawner's directory step must show in the event log), and wait for JupyterLab."""
    page.check(f"#profile-item-{profile}")
    if size:
        # by name: kubespawner 7.0.0's form gives the select no id (7.1.0 does)
        page.select_option(f"select[name='profile-option-{profile}--size']", size)
    page.evaluate("window.scrollTo(0, 0)")
    clip = hub_column(page, "#spawn_form") if docs_shots else None
    screenshot(page, f"{shot_prefix}profiles", docs=docs_shots, clip=clip)

    page.click("#spawn_form button[type=submit]")
    page.wait_for_url(re.compile(rf".*/hub/spawn-pending/{re.escape(username)}.*"))
    open_progress_log(page)
    poll(
        lambda: "Looking you up in the directory..." in progress_log(page),
        60,
        "NBSpawner's directory step in the progress log",
        0.1,
    )
    poll(
        lambda: f"Found {username} in the directory" in progress_log(page),
        60,
        "the directory lookup's result in the progress log",
        0.1,
    )
    clip = hub_column(page, "#progress-details") if docs_shots else None
    screenshot(page, f"{shot_prefix}progress", docs=docs_shots, clip=clip)

    try:
        wait_for_jupyterlab(page, timeout=180)
    except Exception as e:
        pods = user_pods(cp, username)
        diag = pod_diagnostics(cp, kubelet, pods[0]) if pods else "no pod"
        body = ""
        with contextlib.suppress(Exception):
            body = page.inner_text("body")[:2000]
        raise AssertionError(
            f"JupyterLab did not load ({e}); page {page.url}\n{body}\n{diag}\n"
            f"--- hub log ---\n{hub.log()[-6000:]}"
        ) from None
    assert f"/user/{username}/lab" in page.url, page.url


def check_terminal_identity(
    page: Any,
    username: str,
    uid: int,
    gid: int,
    primary_group: str,
    groups: Mapping[str, int],
    not_groups: Iterable[str] = (),
    *,
    docs_shots: bool = False,
    shot_prefix: str = "",
) -> None:
    """Open a terminal in JupyterLab and check, as the user reads it, who they are there."""
    open_terminal(page)
    wait_terminal(
        page, rf"{re.escape(username)}@jupyter-{re.escape(username)}:~\$", 60, "the prompt"
    )
    type_command(page, "whoami")
    wait_terminal(page, rf"^{re.escape(username)}$", 30, "whoami's answer")
    type_command(page, "id")
    ident = wait_terminal(
        page,
        rf"^uid={uid}\({re.escape(username)}\) gid={gid}\({re.escape(primary_group)}\) "
        r"groups=(\S+)$",
        30,
        "id's answer",
    )
    shown = ident.group(1).split(",")
    for name, number in groups.items():
        assert f"{number}({name})" in shown, (name, shown)
    for name in not_groups:
        assert not any(g.endswith(f"({name})") for g in shown), (name, shown)
    type_command(page, "touch ~/e2e-file && stat -c 'owner %u:%g' ~/e2e-file")
    wait_terminal(page, rf"^owner {uid}:{gid}$", 30, "the new file's owner")
    # JupyterLab's file browser (the server's contents API, in the home) shows it too
    refresh = page.locator(".jp-FileBrowser [title^='Refresh']")
    if refresh.count():
        refresh.first.click()
    page.locator(".jp-DirListing-item", has_text="e2e-file").first.wait_for(timeout=30_000)
    type_command(page, "echo x >> /etc/passwd")
    wait_terminal(
        page,
        r"/etc/passwd: (Read-only file system|Permission denied)$",
        30,
        "the refused write to /etc/passwd",
    )
    assert "I have no name!" not in terminal_text(page)
    clip = terminal_rows(page) if docs_shots else None
    screenshot(page, f"{shot_prefix}terminal", docs=docs_shots, clip=clip)
