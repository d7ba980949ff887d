"""Mount a rendered pod's volumes the way the kubelet and runc do, then probe as the user.

Run as root by tests/namespace/test_mount_paths.py under ``unshare --mount --propagation
private`` (standard library only: it runs with the system Python). The spec (JSON) gives the
pod's volumes and containers, the user's uid/gid/groups and which volume holds the files behind
/etc/passwd and /etc/group. For every container:

1. a root filesystem directory with the image's /etc/passwd and /etc/group (root-owned, 0644);
2. each volume is a directory on a tmpfs (an emptyDir or a PVC alike; a Secret's files are
   root-owned 0444, as the kubelet writes them); the passwd volume holds ``passwd`` and
   ``group`` owned by the user, as nbspawner's init container (which runs as the user) leaves
   them;
3. each volumeMount is a bind mount of ``volume/subPath`` at ``rootfs/mountPath``, remounted
   read-only when ``readOnly`` is true.

Then, as the user (setpriv: the uid, gid and groups, no capabilities, no_new_privs), a probe
walks the container's whole tree and, for every path that is the same file (st_dev, st_ino) as
the passwd volume's ``passwd`` or ``group``, tries to open it for writing and to replace it.
It prints one JSON object: per container, the paths found and each attempt's result.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

PROBE = r"""
import errno, json, os, sys
targets = {tuple(t) for t in json.loads(sys.argv[2])}
root = sys.argv[1]
found = []
def unreadable(error):
    raise SystemExit(f"cannot walk {error.filename}: {error.strerror}")
for top, dirs, files in os.walk(root, onerror=unreadable):
    for name in files:
        path = os.path.join(top, name)
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in targets:
            continue
        attempts = {}
        for what, fn in (
            ("open-write", lambda: os.close(os.open(path, os.O_WRONLY | os.O_APPEND))),
            ("replace", lambda: (open(path + ".new", "w").close(), os.replace(path + ".new", path))),
            ("chmod", lambda: os.chmod(path, 0o666)),
            ("unlink", lambda: os.unlink(path)),
        ):
            try:
                fn()
                attempts[what] = "WRITABLE"
            except OSError as e:
                attempts[what] = errno.errorcode.get(e.errno, str(e.errno))
        found.append({"path": os.path.relpath(path, root), "attempts": attempts})
print(json.dumps(found))
"""


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def bind(src: Path, dst: Path, read_only: bool) -> None:
    sh("mount", "--bind", str(src), str(dst))
    if read_only:
        sh("mount", "-o", "remount,bind,ro", str(dst))


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    scratch = Path(spec["scratch"])
    uid, gid, groups = spec["uid"], spec["gid"], spec["groups"]
    sh("mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "nbspawner-mounts", str(scratch))

    volumes = scratch / "volumes"
    volumes.mkdir()
    for volume in spec["volumes"]:
        vdir = volumes / volume["name"]
        vdir.mkdir()
        if "secret" in volume:
            for key, text in volume["files"].items():
                (vdir / key).write_text(text)
                (vdir / key).chmod(0o444)
        else:
            vdir.chmod(0o777)  # an emptyDir, as the kubelet makes it
    passwd_dir = volumes / spec["passwd_volume"]
    targets = []
    for name in ("passwd", "group"):
        path = passwd_dir / name
        if not path.exists():  # init-container mode: the init container wrote them as the user
            path.write_text(spec["files"][name])
            os.chown(path, uid, gid)
            path.chmod(0o644)
        st = path.stat()
        targets.append([st.st_dev, st.st_ino])

    user = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    report = {}
    for container in spec["containers"]:
        rootfs = scratch / "root" / container["name"]
        (rootfs / "etc").mkdir(parents=True)
        for name in ("passwd", "group"):
            shutil.copyfile(spec["image_files"][name], rootfs / "etc" / name)
            (rootfs / "etc" / name).chmod(0o644)
        for mount in container.get("volumeMounts") or []:
            src = volumes / mount["name"]
            if mount.get("subPath"):
                src = src / mount["subPath"]
                if not src.exists():  # the kubelet creates a missing subPath as a directory
                    src.mkdir(parents=True)
            dst = rootfs / mount["mountPath"].lstrip("/")
            if src.is_dir():
                dst.mkdir(parents=True, exist_ok=True)
            else:
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.touch(exist_ok=True)
            bind(src, dst, bool(mount.get("readOnly")))
        out = subprocess.run(
            [*user, sys.executable, "-c", PROBE, str(rootfs), json.dumps(targets)],
            capture_output=True,
            text=True,
        )
        if out.returncode != 0:
            raise SystemExit(f"probe failed in {container['name']}: {out.stderr}")
        report[container["name"]] = json.loads(out.stdout)
    print(json.dumps({"targets": targets, "report": report}))


if __name__ == "__main__":
    main(sys.argv[1])
