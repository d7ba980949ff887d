"""The catalog rules for images: references, environment, volumes and mounts."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..ids import id_problem
from ..paths import RESERVED_VOLUME_PREFIX, mount_path_problem, normalise, relative_path_problem
from .model import NO_GPU, RESERVED_ENV, RESERVED_ENV_PREFIXES, SAFE_VOLUME_SOURCES
from .values import _ENV_NAME_RE, _template_problem, check_image_reference


class ImageRules:
    """The image entries' rules, mixed into the catalog checker (``error``/``warn``)."""

    def _check_image(self, i: int, image: Mapping[str, Any]) -> None:
        base = ["images", i]
        err, warn = check_image_reference(image["image"])
        if err:
            self.error([*base, "image"], err)
        if warn:
            self.warn([*base, "image"], warn)
        ide = image.get("ide", "jupyterlab")
        cmd = image.get("cmd")
        if ide == "command" and not cmd:
            self.error([*base, "cmd"], "ide: command needs cmd, the container command as a list")
        if ide != "command" and cmd is not None:
            self.error(
                [*base, "cmd"], f"cmd is only used with ide: command (this image has ide: {ide})"
            )
        if image.get("hidden") and image.get("deprecated"):
            self.warn(
                [*base, "deprecated"],
                "a hidden image is never offered, so deprecated has no effect",
            )
        for key, value in image.get("labels", {}).items():
            if not isinstance(value, str):  # pragma: no cover - the schema already refuses it
                self.error([*base, "labels", key], "must be a string")
            elif not (key.isprintable() and value.isprintable()):
                self.error(
                    [*base, "labels", key],
                    f"label {key!r}: {value!r} is shown on one line; no control characters",
                )
        self._check_env([*base, "env"], image.get("env", {}))
        volume_names = self._check_volumes([*base, "volumes"], image.get("volumes", []))
        self._check_mounts([*base, "volume_mounts"], image.get("volume_mounts", []), volume_names)
        for key, known, noun in (
            ("sizes", self.size_slugs, "size"),
            ("gpus", self.gpu_slugs, "GPU"),
        ):
            listed = image.get(key)
            if listed is None:
                continue
            valid = known | {NO_GPU} if key == "gpus" else known
            for j, slug in enumerate(listed):
                if slug not in valid:
                    self.error([*base, key, j], f"there is no {noun} {slug!r}")
        if image.get("sizes") == [] and self.size_slugs:
            self.error(
                [*base, "sizes"],
                "an empty list offers the image with no size at all; "
                "omit the key to offer every size",
            )
        security = image.get("security", {})
        for j, gid in enumerate(security.get("extra_supplemental_gids", [])):
            problem = id_problem(gid)
            if problem is not None:
                # JSON Schema's "integer" admits 100.0, and YAML reads 0100 as 64
                self.error([*base, "security", "extra_supplemental_gids", j], problem)
            elif gid == 0:
                self.warn(
                    [*base, "security", "extra_supplemental_gids", j],
                    "gid 0 gives users the root group's access to every file owned by group 0, "
                    "on shared filesystems too; prefer fixing the image's group ownership",
                )

    def _check_env(self, path: list[Any], env: Mapping[str, Any]) -> None:
        for key, value in env.items():
            if not _ENV_NAME_RE.match(key):
                self.error([*path, key], f"{key!r} is not a valid environment variable name")
            elif key in RESERVED_ENV or key.startswith(RESERVED_ENV_PREFIXES):
                self.error(
                    [*path, key],
                    "is set by JupyterHub/nbspawner for every user and cannot be set per image",
                )
            if isinstance(value, str):
                problem = _template_problem(value)
                if problem:
                    self.error([*path, key], problem)

    def _walk_strings(self, value: Any, path: list[Any]) -> Iterator[tuple[list[Any], str]]:
        if isinstance(value, str):
            yield path, value
        elif isinstance(value, Mapping):
            for k, v in value.items():
                yield from self._walk_strings(v, [*path, k])
        elif isinstance(value, list):
            for j, v in enumerate(value):
                yield from self._walk_strings(v, [*path, j])

    def _check_volumes(self, path: list[Any], volumes: list[Mapping[str, Any]]) -> set[str]:
        names: dict[str, int] = {}
        for j, volume in enumerate(volumes):
            vpath = [*path, j]
            name = volume["name"]
            if name in names:
                self.error([*vpath, "name"], f"duplicate volume name {name!r}")
            names.setdefault(name, j)
            if name.startswith(RESERVED_VOLUME_PREFIX):
                self.error(
                    [*vpath, "name"],
                    f"names starting with {RESERVED_VOLUME_PREFIX!r} "
                    "are reserved for nbspawner's own volumes",
                )
            for source in ("configMap", "secret"):
                for k, item in enumerate((volume.get(source) or {}).get("items") or ()):
                    problem = relative_path_problem(item.get("path"), "path")
                    if problem:
                        self.error([*vpath, source, "items", k, "path"], problem)
            sources = [k for k in SAFE_VOLUME_SOURCES if k in volume]
            if len(sources) != 1:
                self.error(
                    vpath,
                    f"needs exactly one source ({', '.join(SAFE_VOLUME_SOURCES)}), "
                    f"found {len(sources)}",
                )
            empty_dir = volume.get("emptyDir") or {}
            if "sizeLimit" in empty_dir:
                self._quantity(
                    [*vpath, "emptyDir", "sizeLimit"], empty_dir["sizeLimit"], memory=True
                )
            nfs = volume.get("nfs")
            if nfs is not None and not nfs["path"].startswith("/"):
                self.error([*vpath, "nfs", "path"], "must be an absolute path")
            for spath, text in self._walk_strings(volume, vpath):
                problem = _template_problem(text)
                if problem:
                    self.error(spath, problem)
        return set(names)

    def _check_mounts(
        self, path: list[Any], mounts: list[Mapping[str, Any]], volumes: set[str]
    ) -> None:
        seen: dict[str, str] = {}
        for j, mount in enumerate(mounts):
            mpath = [*path, j]
            mount_path = normalise(mount["mountPath"])
            if mount_path in seen:
                self.error(
                    [*mpath, "mountPath"],
                    f"two mounts at {mount_path!r} ({seen[mount_path]!r} and "
                    f"{mount['mountPath']!r})",
                )
            seen.setdefault(mount_path, mount["mountPath"])
            problem = mount_path_problem(mount["mountPath"])
            if problem:
                self.error([*mpath, "mountPath"], problem)
            if "subPath" in mount:
                problem = relative_path_problem(mount["subPath"], "subPath")
                if problem:
                    self.error([*mpath, "subPath"], problem)
            if mount["name"].startswith(RESERVED_VOLUME_PREFIX):
                self.error(
                    [*mpath, "name"],
                    f"mounts nbspawner's own volume {mount['name']!r}; volumes whose names "
                    f"start with {RESERVED_VOLUME_PREFIX!r} are mounted by nbspawner only",
                )
                continue
            if mount["name"] not in volumes:
                self.warn(
                    [*mpath, "name"],
                    f"volume {mount['name']!r} is not declared by this "
                    "image; it must exist in the spawner's own volumes",
                )
            for spath, text in self._walk_strings(mount, mpath):
                problem = _template_problem(text)
                if problem:
                    self.error(spath, problem)

    # -- sizes and GPUs ---------------------------------------------------
