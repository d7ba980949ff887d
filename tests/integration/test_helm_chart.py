"""The z2jh release chart's real files give the hub exactly the pod ``nbspawner preview`` shows.

For every ``helm-values/*.yaml``:

1. ``helm lint`` and ``helm template`` the z2jh 4.4.0 release chart (``shared/z2jh/chart-4.4.0``)
   with the real helm binary (``tools/build-helm.sh``);
2. the hub pod's files are laid out from the *rendered* manifests as the kubelet would mount
   them into the hub container: each volumeMount of the rendered hub Deployment, with the
   rendered hub ConfigMap (the chart's ``jupyterhub_config.py``, ``z2jh.py`` and name
   templates) and hub Secret (``values.yaml`` exactly as helm's ``toYaml`` wrote it, keys
   sorted; ``hub.extraFiles``). ConfigMaps/Secrets the values file refers to but the admin
   creates (``nbspawner-config`` etc.) get the package's example files;
3. in a private mount namespace (``unshare -m``) that tree is bind-mounted over
   ``/usr/local/etc``, so the chart's code finds its files at the paths it hard-codes; the
   container's env (``POD_NAMESPACE``, the Services' ``*_SERVICE_PORT``, ...) is the rendered
   Deployment's. A real ``jupyterhub.app.JupyterHub`` parses the Deployment's args and loads
   ``--config`` with its own ``load_config_file`` (the call ``JupyterHub.initialize`` makes);
   the spawner class it resolves builds the pods of alice, bob and carol;
4. those pods must equal what ``nbspawner preview`` (``nbspawner.offline.render`` on
   ``load_hub_config(values file)``) shows.

Not real here: the hub is not started (no database, proxy or HTTP), ``tornado.curl_httpclient``
is replaced by the simple client when pycurl is absent (the config only selects the class),
the Kubernetes API is never contacted (the offline kube config of ``nbspawner.offline``), and
the directory backends that need a server (LDAP, OIDC claims, HTTP) are replaced on both sides by
the example static directory, the same way.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SHARED_DIR = Path(os.environ.get("NBSPAWNER_SHARED_DIR", REPO.parent / "shared"))
Z2JH_DIR = Path(os.environ.get("NBSPAWNER_Z2JH_DIR", SHARED_DIR / "z2jh"))
CHART_DIR = Z2JH_DIR / "chart-4.4.0" / "jupyterhub"
CHART_VERSION = "4.4.0"
HELM_VALUES = sorted((REPO / "helm-values").glob("*.yaml"))
EXAMPLES = REPO / "nbspawner" / "examples"
USERS = ("alice", "bob", "carol")
RELEASE, NAMESPACE = "jhub", "jhub"
#: the hub container's configuration files live below this directory (the tree is mounted here)
MOUNT_ROOT = "/usr/local/etc"
#: where the test's stand-in directory file is put in the hub's tree (not a chart path)
TEST_DIRECTORY = f"{MOUNT_ROOT}/nbspawner-test/directory.yaml"

#: the ConfigMaps and Secrets the values files mount but the admin creates (kubectl create ...)
EXTERNAL = {
    ("ConfigMap", "nbspawner-config"): {
        "catalog.yaml": (EXAMPLES / "catalog.yaml").read_text(),
        "directory.yaml": (EXAMPLES / "directory.yaml").read_text(),
        "ldap-ca.pem": "-----BEGIN CERTIFICATE-----\n(test)\n-----END CERTIFICATE-----\n",
    },
    ("Secret", "nbspawner-ldap"): {"bind-password": "test-bind-password"},
    ("Secret", "nbspawner-directory"): {"token": "test-token"},
}


def helm_binary() -> str:
    helm = os.environ.get("NBSPAWNER_HELM") or shutil.which("helm")
    if not helm or not os.access(helm, os.X_OK):
        built = subprocess.run(
            ["bash", str(REPO / "tools" / "build-helm.sh"), "--print-dir"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        helm = str(Path(built) / "helm") if built else ""
    if not helm or not os.access(helm, os.X_OK):
        pytest.fail(
            "helm not found: build it with tools/build-helm.sh (cached) and set NBSPAWNER_HELM "
            "to the binary or put its directory on PATH"
        )
    return helm


@pytest.fixture(scope="session")
def helm() -> str:
    return helm_binary()


@pytest.fixture(scope="session")
def chart(tmp_path_factory) -> Path:
    """The release chart, unchanged but for the version chartpress would have set."""
    if not (CHART_DIR / "Chart.yaml").exists():
        pytest.fail(f"z2jh release chart not found at {CHART_DIR}; set NBSPAWNER_Z2JH_DIR")
    copy = tmp_path_factory.mktemp("chart") / "jupyterhub"
    shutil.copytree(CHART_DIR, copy)
    meta = (copy / "Chart.yaml").read_text()
    assert "version: 0.0.1-set.by.chartpress" in meta
    (copy / "Chart.yaml").write_text(
        meta.replace("version: 0.0.1-set.by.chartpress", f"version: {CHART_VERSION}")
    )
    return copy


def run_helm(helm: str, *args: str) -> str:
    result = subprocess.run([helm, *args], capture_output=True, text=True)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def render(helm: str, chart: Path, values: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = run_helm(
        helm, "template", RELEASE, str(chart), "--namespace", NAMESPACE, "-f", str(values)
    )
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def object_files(kind: str, name: str, objects: dict) -> dict[str, bytes]:
    """The keys of a ConfigMap or Secret with their content, as the kubelet writes them."""
    if (kind, name) in EXTERNAL:
        return {k: v.encode() for k, v in EXTERNAL[kind, name].items()}
    obj = objects.get((kind, name))
    assert obj is not None, f"the hub mounts {kind} {name}: not rendered and not in EXTERNAL"
    files: dict[str, bytes] = {}
    if kind == "Secret":
        files.update({k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()})
        files.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
    else:
        files.update({k: v.encode() for k, v in (obj.get("data") or {}).items()})
        files.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return files


def hub_container(objects: dict) -> tuple[dict, dict]:
    deployment = objects["Deployment", "hub"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "hub"]
    return pod, container


def lay_out_hub_files(objects: dict, root: Path) -> None:
    """Write the hub container's configMap/secret volume mounts below ``root`` (= ``/``)."""
    pod, container = hub_container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            source, kind, name = volume["configMap"], "ConfigMap", volume["configMap"]["name"]
        elif "secret" in volume:
            source, kind, name = volume["secret"], "Secret", volume["secret"]["secretName"]
        else:
            continue  # the hub's database PVC etc.: not read by the configuration
        path = mount["mountPath"].rstrip("/")
        assert path.startswith(MOUNT_ROOT + "/"), f"{path}: outside {MOUNT_ROOT}, not laid out"
        data = object_files(kind, name, objects)
        if source.get("items"):
            data = {i["path"]: data[i["key"]] for i in source["items"]}
        if mount.get("subPath"):
            data = {"": data[mount["subPath"]]}
        for rel, content in data.items():
            target = root / path.lstrip("/") / rel if rel else root / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)


def hub_env(objects: dict) -> dict[str, str]:
    """The hub container's environment: its rendered env and the Services' variables."""
    pod, container = hub_container(objects)
    env: dict[str, str] = {}
    for svc in (o for (kind, _), o in objects.items() if kind == "Service"):
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"] = "10.0.0.1"
        env[f"{prefix}_SERVICE_PORT"] = str(svc["spec"]["ports"][0]["port"])
    for item in container.get("env") or []:
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item["valueFrom"]
        if "fieldRef" in ref:
            assert ref["fieldRef"]["fieldPath"] == "metadata.namespace", ref
            env[item["name"]] = NAMESPACE
        else:
            kind = "Secret" if "secretKeyRef" in ref else "ConfigMap"
            sel = ref.get("secretKeyRef") or ref["configMapKeyRef"]
            if (kind, sel["name"]) in objects or (kind, sel["name"]) in EXTERNAL:
                env[item["name"]] = object_files(kind, sel["name"], objects)[sel["key"]].decode()
            else:
                env[item["name"]] = f"(test value for {kind} {sel['name']} {sel['key']})"
    return env


def stand_in_directory(values: dict) -> str:
    """The example users and groups, their homes below the file's first home root."""
    directory = yaml.safe_load((EXAMPLES / "directory.yaml").read_text())
    nbs = values["hub"]["config"]["NBSpawner"]
    root = (nbs.get("home_roots") or ["/export/home"])[0]
    for name, user in directory["users"].items():
        user["home"] = f"{root}/{name}"
    return yaml.safe_dump(directory, sort_keys=False)


def directory_override(values: dict) -> dict[str, Any]:
    """The stand-in for directory backends that need a server: the example static directory."""
    nbs = ((values.get("hub") or {}).get("config") or {}).get("NBSpawner") or {}
    if nbs.get("directory_class") == "static":
        return {}
    return {"NBSpawner": {"directory_class": "static"}, "_directory": stand_in_directory(values)}


#: runs inside the mount namespace: the chart's config loaded by a real JupyterHub application
HUB_SIDE = textwrap.dedent(
    """
    import asyncio, json, sys, types

    args, overrides, users, out = json.loads(sys.argv[1])
    try:
        import pycurl  # noqa: F401  (the hub image has it)
    except ImportError:
        # the config only selects the class; no HTTP request is made here
        import tornado.simple_httpclient as simple
        stub = types.ModuleType("tornado.curl_httpclient")
        stub.CurlAsyncHTTPClient = type("CurlAsyncHTTPClient", (simple.SimpleAsyncHTTPClient,), {})
        sys.modules["tornado.curl_httpclient"] = stub

    from jupyterhub.app import JupyterHub

    assert args[0] == "jupyterhub", args
    app = JupyterHub()
    app.parse_command_line(args[1:])
    app.load_config_file(app.config_file)  # what JupyterHub.initialize does
    for section, settings in overrides.items():
        for key, value in settings.items():
            app.config[section][key] = value

    from nbspawner.hubconfig import HubConfig
    from nbspawner.offline import make_spawner, offline_kubeconfig
    from nbspawner.podpatch import manifest

    hub = HubConfig(app.config, app.config_file)

    async def pods():
        result = {"spawner_class": app.spawner_class.__module__ + "." + app.spawner_class.__name__}
        for name in users:
            with offline_kubeconfig():
                spawner = make_spawner(hub, name, cls=app.spawner_class)
                await spawner.load_user_options()
                result[name] = manifest(await spawner.get_pod_manifest())
        return result

    with open(out, "w") as f:
        json.dump(asyncio.run(pods()), f, indent=1, sort_keys=True, default=str)
    """
)


def hub_pods(objects: dict, tmp_path: Path, overrides: dict) -> dict[str, Any]:
    root = tmp_path / "hub-root"
    lay_out_hub_files(objects, root)
    tree = root / MOUNT_ROOT.lstrip("/")
    overrides = dict(overrides)
    if overrides:
        local = tree / TEST_DIRECTORY[len(MOUNT_ROOT) + 1 :]
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(overrides.pop("_directory"))
        overrides["StaticDirectory"] = {"path": TEST_DIRECTORY}
    _, container = hub_container(objects)
    out = tmp_path / "hub-pods.json"
    script = tmp_path / "hub_side.py"
    script.write_text(HUB_SIDE)
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "POD_NAMESPACE")}
    env.update(hub_env(objects))
    arg = json.dumps([container["args"], overrides, list(USERS), str(out)])
    # a private mount namespace: /usr/local/etc is the hub container's only there
    cmd = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        'mount --bind "$1" /usr/local/etc && shift && exec "$@"',
        "sh",
        str(tree),
        sys.executable,
        str(script),
        arg,
    ]
    result = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True)
    log = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, log
    # the chart's own loader ran: it read the rendered Secret's values.yaml
    assert "Loading /usr/local/etc/jupyterhub/secret/values.yaml" in result.stdout, log
    return json.loads(out.read_text())


def admin_file_map(values: dict) -> dict[str, str]:
    """The ``--file`` options an admin gives: the mounted example files the configuration names."""
    named = json.dumps(values["hub"]["config"])
    return {
        f"{MOUNT_ROOT}/nbspawner/{key}": str(EXAMPLES / key)
        for key in ("catalog.yaml", "directory.yaml")
        if f'"{MOUNT_ROOT}/nbspawner/{key}"' in named
    }


async def preview_pods(
    values_path: Path, file_map: dict[str, str], overrides: dict, tmp_path: Path
) -> dict[str, Any]:
    """What ``nbspawner preview USER --config FILE --file MOUNT=LOCAL ...`` shows."""
    from nbspawner.hubconfig import load_hub_config
    from nbspawner.offline import render

    hub = load_hub_config(values_path, file_map)
    overrides = dict(overrides)
    directory = overrides.pop("_directory", None)
    for section, settings in overrides.items():
        for key, value in settings.items():
            hub.config[section][key] = value
    if directory:
        stand_in = tmp_path / "stand-in-directory.yaml"
        stand_in.write_text(directory)
        hub.config.StaticDirectory.path = str(stand_in)
    pods = {}
    for name in USERS:
        pods[name] = json.loads(json.dumps((await render(hub, name, {}))["pod"], default=str))
    return pods


#: the issue's symptom of helm's sorted keys (inline catalog defaults picking "*" first): in the
#: hub, GPU users get the CUDA image and chemistry gets RStudio, as the file intends
INTENDED_IMAGES = {
    ("gpu.yaml", "alice"): "quay.io/jupyter/pytorch-notebook:cuda12-2024-09-30",
    ("gpu.yaml", "bob"): "quay.io/jupyter/scipy-notebook:2024-09-30",
    ("kubeflow-images.yaml", "bob"): "registry.example.org/notebooks/rstudio-tidyverse-hub:v1.9.2",
    ("kubeflow-images.yaml", "alice"): "registry.example.org/notebooks/jupyter-scipy-hub:v1.9.2",
}

#: what a config.yaml cannot tell (the preview notes it): the release name and chart version
RELEASE_DEPENDENT = {
    ".metadata.labels.app.kubernetes.io/instance",
    ".metadata.labels.release",
    ".metadata.labels.chart",
    ".metadata.labels.helm.sh/chart",
    ".spec.schedulerName",
}


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two manifests differ, one line per leaf: ``path: hub-value != preview-value``."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in b or key not in a:
                out.append(
                    f"{path}.{key}: {a.get(key, '(absent)')!r} != {b.get(key, '(absent)')!r}"
                )
            else:
                out.extend(differences(a[key], b[key], f"{path}.{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in differences(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize("values_path", HELM_VALUES, ids=lambda p: p.name)
def test_the_chart_gives_the_hub_the_pod_the_preview_shows(values_path, helm, chart, tmp_path):
    import asyncio

    lint = run_helm(helm, "lint", str(chart), "-f", str(values_path))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint, lint
    objects = render(helm, chart, values_path)
    values = yaml.safe_load(values_path.read_text())
    # the hub Secret's values.yaml is helm's toYaml of the merged values: keys sorted
    rendered = object_files("Secret", "hub", objects)["values.yaml"].decode()
    assert (
        yaml.safe_load(rendered)["hub"]["config"]["NBSpawner"]
        == values["hub"]["config"]["NBSpawner"]
    )
    top = [line.split(":")[0] for line in rendered.splitlines() if line[:1].isalpha()]
    assert top == sorted(top), top

    overrides = directory_override(values)
    hub = hub_pods(objects, tmp_path, overrides)
    assert hub.pop("spawner_class") == "nbspawner.spawner.NBSpawner"
    for name in USERS:
        pod = hub[name]
        # the chart's own settings reached the pod (not nbspawner's reading of them)
        assert pod["metadata"]["labels"]["helm.sh/chart"] == f"jupyterhub-{CHART_VERSION}"
        assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == RELEASE
        assert pod["spec"]["schedulerName"] == f"{RELEASE}-user-scheduler"
        if (values_path.name, name) in INTENDED_IMAGES:
            (notebook,) = [c for c in pod["spec"]["containers"] if c["name"] == "notebook"]
            assert notebook["image"] == INTENDED_IMAGES[values_path.name, name]

    # the CLI on the hub Secret's values.yaml (what the hub reads): the very same pods
    secret_values = tmp_path / "hub-secret-values.yaml"
    secret_values.write_text(rendered)
    preview = asyncio.run(preview_pods(secret_values, admin_file_map(values), overrides, tmp_path))
    for name in USERS:
        diff = differences(hub[name], preview[name])
        assert not diff, (
            f"{values_path.name} through the hub Secret: {name}'s pod (hub != preview):\n"
            + "\n".join(diff)
        )

    # the CLI on the file itself: the same pods but for what depends on the helm release
    preview = asyncio.run(preview_pods(values_path, admin_file_map(values), overrides, tmp_path))
    for name in USERS:
        diff = differences(hub[name], preview[name])
        assert {d.split(":")[0] for d in diff} == RELEASE_DEPENDENT, (
            f"{values_path.name}: {name}'s pod (hub != preview):\n" + "\n".join(diff)
        )
        assert all(d.endswith("!= '(absent)'") for d in diff), diff
