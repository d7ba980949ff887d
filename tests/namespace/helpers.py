"""Run the real passwd-init.sh and probes inside a private mount namespace.

The test process (root) calls :func:`run_scenario`; it writes a JSON spec and runs this file
as a *driver* under ``unshare --mount --propagation private``. The driver, still root but
in its own mount namespace:

1. mounts a tmpfs scratch directory and copies the host's /etc into it, then bind-mounts that
   copy over /etc, so nothing a probe does (usermod lock files, backups) reaches the host;
2. bind-mounts the image-shaped passwd/group files over /etc/passwd and /etc/group;
3. runs the steps: commands as the user (``setpriv`` with the user's uid/gid/groups, no
   capabilities, no_new_privs), as root without capabilities, or as full root; ``install``
   bind-mounts the script's outputs *read-only* over /etc/passwd and /etc/group, as kubelet
   does with ``readOnly: true`` + ``subPath``;
4. prints the results as JSON.

The driver part uses only the standard library.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "nbspawner" / "data" / "passwd-init.sh"
IMAGES = REPO / "tests" / "data" / "images"
IMAGE_SHAPES = ("docker-stacks", "kubeflow-s6", "busybox")

#: tools the namespace tests need, with the Debian package that provides them
REQUIRED_TOOLS = {
    "unshare": "util-linux",
    "setpriv": "util-linux",
    "mount": "mount",
    "umount": "mount",
    "script": "bsdutils (util-linux)",
    "bash": "bash",
    "dash": "dash",
    "busybox": "busybox",
    "git": "git",
    "ssh": "openssh-client",
    "whoami": "coreutils",
    "id": "coreutils",
    "usermod": "passwd",
    "python3": "python3",
}
SYSTEM_PYTHON = "/usr/bin/python3"
#: shells the script is run with: Debian's /bin/sh is dash
SHELLS = {"dash": ["dash"], "busybox": ["busybox", "sh"], "bash-posix": ["bash", "--posix"]}
ENV_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def prerequisite_problems() -> list[str]:
    """What keeps the namespace tests from running here (empty when all is well)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("the namespace tests need root (they use unshare -m, mount and setpriv)")
    for tool, package in REQUIRED_TOOLS.items():
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found (apt-get install {package})")
    if not Path(SYSTEM_PYTHON).exists():
        problems.append(f"{SYSTEM_PYTHON} not found (apt-get install python3)")
    return problems


def run_scenario(
    steps: list[dict[str, Any]],
    *,
    image: str,
    uid: int,
    gid: int,
    groups: list[int] | None = None,
    timeout: float = 120,
) -> dict[str, dict[str, Any]]:
    """Run ``steps`` in a fresh mount namespace; return ``{step id: {rc, stdout, stderr}}``.

    Step forms (strings may use ``{out}``, ``{home}``, ``{script}`` placeholders):

    ``{"op": "run", "id": ..., "argv": [...], "as": "user"|"root"|"root-nocaps",
    "env": {...}, "stdin": "..."}``
        ``env`` replaces the environment (PATH, HOME and TERM are provided).
    ``{"op": "init", "id": ..., "shell": "dash"|"busybox"|"bash-posix", "env": {...}}``
        Run passwd-init.sh as the user, as the init container would. ``NB_PW_OUT`` is set to
        ``{out}`` unless the step says ``"keep_out": True``.
    ``{"op": "install"}``
        Bind-mount ``{out}/passwd`` and ``{out}/group`` read-only over /etc/passwd, /etc/group
        (result id ``install``: rc 1 when the files are missing).
    ``{"op": "outputs", "id": ...}``
        List the output directory and read the files: ``stdout`` is JSON.
    ``{"op": "clear"}``
        Empty the output directory (between runs in one namespace).
    """
    spec = {
        "image_passwd": str(IMAGES / image / "passwd"),
        "image_group": str(IMAGES / image / "group"),
        "script": str(SCRIPT),
        "uid": uid,
        "gid": gid,
        "groups": list(groups or []),
        "steps": steps,
    }
    # a world-traversable base dir: /tmp/pytest-of-root is 0700 and the user must reach it
    base = tempfile.mkdtemp(prefix="nbspawner-ns-", dir="/tmp")
    try:
        os.chmod(base, 0o755)
        spec["scratch"] = base
        spec_file = Path(base + ".json")
        spec_file.write_text(json.dumps(spec))
        proc = subprocess.run(
            [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                sys.executable,
                __file__,
                str(spec_file),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"namespace driver failed (rc={proc.returncode}):\n{proc.stderr}\n{proc.stdout}"
            )
        return json.loads(proc.stdout)
    finally:
        Path(base + ".json").unlink(missing_ok=True)
        # the tmpfs lived only in the namespace: base is an empty directory on the host
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------------------
# The driver (runs as root inside the new mount namespace)
# ---------------------------------------------------------------------------


def _sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def _bind(src: str, dst: str, *, read_only: bool) -> None:
    _sh("mount", "--bind", src, dst)
    if read_only:
        _sh("mount", "-o", "remount,bind,ro", dst)


def _driver(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    scratch = Path(spec["scratch"])
    uid, gid, groups = spec["uid"], spec["gid"], spec["groups"]

    _sh("mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "nbspawner-test", str(scratch))
    etc_copy = scratch / "etc"
    shutil.copytree("/etc", etc_copy, symlinks=True)
    out = scratch / "out"  # the emptyDir: kubelet creates it 0777
    out.mkdir()
    out.chmod(0o777)
    home = scratch / "home"
    home.mkdir()
    os.chown(home, uid, gid)
    home.chmod(0o700)
    script = scratch / "passwd-init.sh"
    shutil.copyfile(spec["script"], script)
    script.chmod(0o644)
    image = scratch / "image"
    image.mkdir()
    for name in ("passwd", "group"):
        shutil.copyfile(spec[f"image_{name}"], image / name)
        (image / name).chmod(0o644)

    _bind(str(etc_copy), "/etc", read_only=False)
    _bind(str(image / "passwd"), "/etc/passwd", read_only=True)
    _bind(str(image / "group"), "/etc/group", read_only=True)

    subst = {"out": str(out), "home": str(home), "script": str(script)}

    def fill(value: str) -> str:
        for key, repl in subst.items():
            value = value.replace("{" + key + "}", repl)
        return value

    user_prefix = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={gid}",
        f"--groups={','.join(str(g) for g in groups)}" if groups else "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
        "--",
    ]
    prefixes = {
        "user": user_prefix,
        "root-nocaps": [
            "setpriv",
            "--reuid=0",
            "--regid=0",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
            "--no-new-privs",
            "--",
        ],
        "root": [],
    }
    results: dict[str, dict[str, Any]] = {}
    for step in spec["steps"]:
        op = step["op"]
        if op == "install":
            if not ((out / "passwd").is_file() and (out / "group").is_file()):
                results["install"] = {"rc": 1, "stdout": "", "stderr": "outputs missing"}
                continue
            _bind(str(out / "passwd"), "/etc/passwd", read_only=True)
            _bind(str(out / "group"), "/etc/group", read_only=True)
            results["install"] = {"rc": 0, "stdout": "", "stderr": ""}
            continue
        if op == "clear":
            for entry in out.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            continue
        if op == "outputs":
            listing = {}
            for entry in sorted(out.iterdir()):
                listing[entry.name] = {
                    "type": "dir" if entry.is_dir() else "file",
                    "mode": oct(entry.stat().st_mode & 0o7777),
                    "uid": entry.stat().st_uid,
                    "text": entry.read_text("latin-1") if entry.is_file() else None,
                }
            results[step["id"]] = {"rc": 0, "stdout": json.dumps(listing), "stderr": ""}
            continue
        env = {"PATH": ENV_PATH, "HOME": str(home), "TERM": "dumb"}
        if op == "init":
            argv = [*SHELLS[step.get("shell", "dash")], str(script)]
            who = "user"
            env = {"PATH": ENV_PATH}
        elif op == "run":
            argv = [fill(a) for a in step["argv"]]
            who = step.get("as", "user")
        else:
            raise ValueError(f"unknown step {op!r}")
        env.update({k: fill(v) for k, v in (step.get("env") or {}).items()})
        if op == "init" and not step.get("keep_out"):
            # the hub's value is the container path of the emptyDir; here it is {out}
            env["NB_PW_OUT"] = str(out)
        proc = subprocess.run(
            prefixes[who] + argv,
            input=step.get("stdin", ""),
            capture_output=True,
            text=True,
            errors="replace",
            env=env,
            cwd="/",
            timeout=60,
        )
        results[step["id"]] = {"rc": proc.returncode, "stdout": proc.stdout, "stderr": proc.stderr}
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    _driver(sys.argv[1])
