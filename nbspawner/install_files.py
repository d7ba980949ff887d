"""The install routes without an image build: the package as files the z2jh hub mounts.

z2jh puts ``/usr/local/etc/jupyterhub`` (the directory of its ``jupyterhub_config.py``) on the
hub's ``sys.path``, so the package's files mounted at ``/usr/local/etc/jupyterhub/nbspawner/``
are importable. Two ways to mount them, each printed by ``nbspawner install-files``:

``extrafiles``
    a ``hub.extraFiles`` values block, one entry per file. Simple, but the chart keeps every
    file *twice* in the hub Secret: as the file's own key and inside ``values.yaml`` (the whole
    values, which the hub reads its configuration from). A Secret holds at most 1 MiB, so the
    package takes most of it; :func:`budget` says how much is left for the rest of the values.
``configmap``
    one ConfigMap holding the package (``kubectl apply``), mounted with ``hub.extraVolumes`` and
    ``hub.extraVolumeMounts`` (``configmap-values``). ConfigMap keys cannot contain ``/``, so
    each file gets a flat key and the volume's ``items`` put it back at its path, subpackages
    included. The hub Secret is untouched; the ConfigMap has its own 1 MiB.

Only what the hub runs is shipped: Python modules, the two init scripts, the catalog schema
(not the examples, which only the command line tool uses).
"""

from __future__ import annotations

from importlib import resources
from typing import Any

#: where z2jh's hub has its jupyterhub_config.py, and so a sys.path entry
HUB_CONFIG_DIR = "/usr/local/etc/jupyterhub"
#: the most a Secret or a ConfigMap may hold (Kubernetes refuses a bigger one)
OBJECT_LIMIT = 1024 * 1024
#: the package files the hub needs, by suffix
RUNTIME_SUFFIXES = (".py", ".sh", ".json")
_SKIPPED_DIRS = ("examples", "__pycache__")


def package_files() -> list[tuple[str, str]]:
    """``(path inside the package, text)`` of every file the hub needs, sorted by path."""
    files: list[tuple[str, str]] = []

    def walk(node: Any, prefix: str) -> None:
        for entry in sorted(node.iterdir(), key=lambda e: e.name):
            path = f"{prefix}{entry.name}"
            if entry.is_dir():
                if entry.name not in _SKIPPED_DIRS:
                    walk(entry, f"{path}/")
            elif entry.name.endswith(RUNTIME_SUFFIXES):
                files.append((path, entry.read_text(encoding="utf-8")))

    walk(resources.files("nbspawner"), "")
    return files


def flat_key(path: str) -> str:
    """A Secret/ConfigMap key for a package path (``directory/ldap.py`` -> ``directory__ldap.py``)."""
    return path.replace("/", "__")


def extra_files_values(mount_dir: str = HUB_CONFIG_DIR) -> dict[str, Any]:
    """The ``hub.extraFiles`` values block that mounts the package under ``mount_dir``."""
    files = {
        f"nbspawner-{flat_key(path)}": {
            "mountPath": f"{mount_dir}/nbspawner/{path}",
            "stringData": text,
        }
        for path, text in package_files()
    }
    return {"hub": {"extraFiles": files}}


def configmap(name: str = "nbspawner") -> dict[str, Any]:
    """The ConfigMap holding the package (apply it in the hub's namespace)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": "nbspawner"}},
        "data": {flat_key(path): text for path, text in package_files()},
    }


def configmap_values(name: str = "nbspawner", mount_dir: str = HUB_CONFIG_DIR) -> dict[str, Any]:
    """The values that mount :func:`configmap` in the hub, every file back at its path."""
    items = [{"key": flat_key(path), "path": path} for path, _ in package_files()]
    volume = {"name": "nbspawner-package", "configMap": {"name": name, "items": items}}
    mount = {"name": "nbspawner-package", "mountPath": f"{mount_dir}/nbspawner", "readOnly": True}
    return {"hub": {"extraVolumes": [volume], "extraVolumeMounts": [mount]}}


def budget(route: str) -> str:
    """One line: what the route puts into its Kubernetes object and what is left of 1 MiB."""
    size = sum(len(text.encode("utf-8")) for _, text in package_files())
    if route == "extrafiles":
        # the file's own key plus its copy inside values.yaml (YAML block scalars add about
        # one indentation per line; base64 is only the wire format, the limit counts bytes)
        used = 2 * size
        where = "the hub Secret (each file twice: its own key and inside values.yaml)"
    else:
        used = size
        where = "the ConfigMap"
    left = OBJECT_LIMIT - used
    return (
        f"# nbspawner: {len(package_files())} files, {size:,} bytes; about {used:,} bytes in "
        f"{where}, {used / OBJECT_LIMIT:.0%} of 1 MiB; about {left:,} bytes left"
    )


def prepuller_values(catalog: Any) -> tuple[dict[str, Any], list[str]]:
    """z2jh's ``prePuller.extraImages`` for every catalog image, and the images left out.

    The chart's pre-puller pulls ``name:tag`` on every user node, so the first spawn of an image
    does not wait for the pull. An image given by digest (``name@sha256:...``) has no tag the
    chart could use: it is left out, and named in the second value.
    """
    images: dict[str, Any] = {}
    skipped: list[str] = []
    seen: set[str] = set()
    for image in catalog.images:
        ref = image.image
        if ref in seen:
            continue
        seen.add(ref)
        if "@" in ref:
            skipped.append(ref)
            continue
        name, sep, tag = ref.rpartition(":")
        if not sep or "/" in tag:  # no tag (the colon belonged to a registry port)
            name, tag = ref, "latest"
        images[f"nbspawner-{image.slug}"] = {"name": name, "tag": tag}
    return {"prePuller": {"extraImages": images}}, skipped
