"""Where a volume may be mounted in a user's container: one rule for every source of mounts.

A pod's mounts come from many places: nbspawner's home and data shares, the catalog's
``volume_mounts``, kubespawner's ``volume_mounts`` / ``extra_containers`` / ``init_containers``
and profile overrides. Every one of them is judged here, by its *normalised* path, so
``/etc//passwd``, ``/etc/./group``, ``/etc/jupyter/../passwd`` and ``/home/alice/`` are the same
paths the container runtime will mount at (``/etc/passwd``, ``/etc/group``, ``/home/alice``).

Refused for any mount that is not nbspawner's own:

* a protected file (:data:`PROTECTED_FILES`: the account database and what decides who may
  become whom) or anything below one (``/etc/sudoers.d/x``);
* an ancestor of a protected file or of a system tree: ``/``, ``/etc``, ``/var``, ``/run``...
  (mounting there shadows the files nbspawner mounts read-only below it);
* a system tree itself (:data:`SYSTEM_TREES`: ``/usr``, ``/bin``, ``/lib*``, ``/proc``, ``/sys``,
  ``/dev``, the service-account token directories). Paths *below* ``/usr`` or ``/etc`` stay
  allowed (``/usr/local/etc/jupyter/...``, ``/etc/jupyter/...``): admins mount config there;
* a relative path, or one with a NUL or a control character;
* two mounts at the same normalised path in one container;
* any reference to nbspawner's own volumes (names starting with :data:`RESERVED_VOLUME_PREFIX`:
  the passwd emptyDir or Secret, the writable /run): a second view of the files behind a
  read-only /etc/passwd would be a writable one.

What this does not see: symbolic links inside the image (an image whose ``/opt/x`` links to
``/etc`` is the image author's choice; the runtime follows it). The namespace test
(tests/namespace/test_mount_paths.py) mounts rendered pods' volumes with real bind mounts.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import InvalidRecord, StorageError
from .policy import check_path, path_is_under

#: nbspawner's own volumes (passwd files, /run); nothing else may mount them
RESERVED_VOLUME_PREFIX = "nbspawner-"

#: files that decide who the user is or may become; never a mount target (nor anything under them)
PROTECTED_FILES = (
    "/etc/passwd",
    "/etc/group",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/subuid",
    "/etc/subgid",
    "/etc/nsswitch.conf",
    "/etc/login.defs",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/pam.d",
    "/etc/security",
    "/etc/ld.so.preload",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/ld.so.cache",
)
#: the image's programs and the kernel's interfaces; never a mount target themselves
SYSTEM_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/sbin",
    "/sys",
    "/usr",
    "/run/secrets/kubernetes.io",
    "/var/run/secrets/kubernetes.io",
)


def _ancestors(path: str) -> Iterator[str]:
    while path != "/":
        path = posixpath.dirname(path)
        yield path


_PROTECTED = frozenset(PROTECTED_FILES)
_PROTECTED_PREFIXES = tuple(p + "/" for p in PROTECTED_FILES)
_SYSTEM = frozenset(SYSTEM_TREES)
#: "/", "/etc", "/var", "/var/run", "/run", "/run/secrets", ...
_ANCESTORS = frozenset(a for p in (*PROTECTED_FILES, *SYSTEM_TREES) for a in _ancestors(p))


def normalise(path: str) -> str:
    """``path`` as the runtime resolves it inside the container (lexically; no symlinks).

    ``//etc//passwd`` -> ``/etc/passwd``, ``/etc/jupyter/../group`` -> ``/etc/group``,
    ``/home/alice/`` -> ``/home/alice``. A relative path stays relative.
    """
    norm = posixpath.normpath(path)
    if norm.startswith("//"):  # POSIX keeps a leading "//"; Linux does not
        norm = "/" + norm.lstrip("/")
    return norm


def mount_path_problem(path: Any) -> str | None:
    """Why nothing but nbspawner may mount at ``path``, or ``None`` when a mount may go there."""
    if not isinstance(path, str) or not path:
        return "a mount path must be a non-empty string"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in path):
        return f"mount path {path!r} contains a control character"
    norm = normalise(path)
    shown = repr(norm) if norm == path else f"{path!r} (that is, {norm!r})"
    if not norm.startswith("/"):
        return f"mount path {path!r} is not absolute"
    if norm in _PROTECTED or norm.startswith(_PROTECTED_PREFIXES):
        return (
            f"mount path {shown} is a protected file ({', '.join(PROTECTED_FILES[:3])}, ...): "
            "nbspawner provides /etc/passwd and /etc/group read-only"
        )
    if norm in _ANCESTORS:
        return (
            f"mount path {shown} would cover the protected files or system directories below "
            "it; mount at a path of its own (e.g. /etc/jupyter/..., /data/...)"
        )
    if norm in _SYSTEM:
        return f"mount path {shown} is a system directory; mount below it or elsewhere"
    return None


def relative_path_problem(value: Any, what: str = "path") -> str | None:
    """Kubernetes' rule for ``subPath`` and a volume's ``items[].path``: a relative path that
    stays inside the volume (not absolute, no ``..`` segment, no control character)."""
    if not isinstance(value, str):
        return f"{what} must be a string"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return f"{what} {value!r} contains a control character"
    if value.startswith("/"):
        return f"{what} {value!r} must be relative (inside the volume), not absolute"
    if ".." in value.split("/"):
        return f"{what} {value!r} may not contain a '..' segment"
    return None


def _containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    noun = {"initContainers": "init container", "ephemeralContainers": "ephemeral container"}
    for kind in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(kind) or ():
            if isinstance(container, Mapping):
                yield f"{noun.get(kind, 'container')} {container.get('name', '?')!r}", container


def pod_mount_problems(pod: Mapping[str, Any], own: Iterable[Mapping[str, Any]] = ()) -> list[str]:
    """Every mount of every container in ``pod`` (a camelCase dict) that breaks the rules above.

    ``own`` are the mount and volume dicts nbspawner itself added (compared by value): they may
    use nbspawner's volumes and the protected paths. The spawner checks kubespawner's pod alone
    first, so an entry equal to one of nbspawner's can only be nbspawner's. Returns one
    sentence per problem.
    """
    own = list(own)
    spec = pod.get("spec") if "spec" in pod else pod
    spec = spec if isinstance(spec, Mapping) else {}
    problems: list[str] = []
    for label, container in _containers(spec):
        seen: dict[str, str] = {}
        for mount in container.get("volumeMounts") or ():
            if not isinstance(mount, Mapping):
                continue
            path = mount.get("mountPath")
            norm = normalise(path) if isinstance(path, str) and path else path
            if isinstance(norm, str):
                if norm in seen:
                    problems.append(
                        f"{label}: two mounts at {norm!r} ({seen[norm]!r} and {path!r})"
                    )
                seen.setdefault(norm, path)
            if any(mount == o for o in own):
                continue
            if mount.get("subPath"):
                problem = relative_path_problem(mount["subPath"], "subPath")
                if problem:
                    problems.append(f"{label}: {problem}")
            name = mount.get("name")
            if isinstance(name, str) and name.startswith(RESERVED_VOLUME_PREFIX):
                problems.append(
                    f"{label}: mounts nbspawner's own volume {name!r}; volumes whose names "
                    f"start with {RESERVED_VOLUME_PREFIX!r} are mounted by nbspawner only"
                )
            problem = mount_path_problem(path)
            if problem:
                problems.append(f"{label}: {problem}")
    for volume in spec.get("volumes") or ():
        name = volume.get("name") if isinstance(volume, Mapping) else None
        if (
            not any(volume == o for o in own)
            and isinstance(name, str)
            and name.startswith(RESERVED_VOLUME_PREFIX)
        ):
            problems.append(
                f"volume {name!r}: names starting with {RESERVED_VOLUME_PREFIX!r} are reserved "
                "for nbspawner's own volumes"
            )
    return problems


# ---------------------------------------------------------------------------
# Where nbspawner itself mounts homes and data shares (stricter: never in a system tree)
# ---------------------------------------------------------------------------

#: a relative, normalised path (PVC subPath, {home_relative})
RELATIVE_RE = re.compile(r"\A[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*\Z")

#: where nbspawner never mounts a home or a data share, nor below: the system trees, with all of
#: /run/secrets and /var/run/secrets (not only the service-account token directories)
SYSTEM_DIRS = tuple(
    sorted({t for t in SYSTEM_TREES if "/secrets/" not in t} | {"/run/secrets", "/var/run/secrets"})
)


def check_absolute(value: str, setting: str, error: type[Exception]) -> str:
    try:
        check_path(value, setting)
    except InvalidRecord:
        raise path_error(
            error,
            f"{setting} is not a normalised absolute path (allowed: /, A-Z a-z 0-9 _ . -; "
            "no empty, '.' or '..' segments)",
        ) from None
    return value


def check_relative(value: str, setting: str, error: type[Exception]) -> str:
    ok = isinstance(value, str) and bool(RELATIVE_RE.match(value))
    if ok and any(s in (".", "..") for s in value.split("/")):
        ok = False
    if not ok:
        raise path_error(
            error,
            f"{setting} is not a normalised relative path (allowed: A-Z a-z 0-9 _ . - and /; "
            "no leading /, no empty, '.' or '..' segments)",
        )
    return value


def check_own_mount_path(value: str, setting: str, error: type[Exception]) -> str:
    check_absolute(value, setting, error)
    # value is normalised by now, so a prefix test is exact (and this runs for every mount)
    if value == "/" or value in _SYSTEM_DIR_SET or value.startswith(_SYSTEM_DIR_PREFIXES):
        raise path_error(
            error,
            f"{setting} is / or inside a system directory ({', '.join(SYSTEM_DIRS)}); "
            "mount homes and data elsewhere (e.g. /home/..., /data/...)",
        )
    return value


_SYSTEM_DIR_SET = frozenset(posixpath.normpath(d) for d in SYSTEM_DIRS)
_SYSTEM_DIR_PREFIXES = tuple(d + "/" for d in sorted(_SYSTEM_DIR_SET))


def path_error(error: type[Exception], message: str) -> Exception:
    if error is StorageError:
        return StorageError(message, reason="unsafe_storage_path")
    return error(message)


def overlaps(a: str, b: str) -> bool:
    return path_is_under(a, b) or path_is_under(b, a)
