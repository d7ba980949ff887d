"""The real seed-home.sh, run the way the init container runs it, in a mount namespace.

Each run builds a tiny container-like root in a private mount namespace (``unshare -m``):
a tmpfs root made read-only after setup (readOnlyRootFilesystem), the host's /usr and /etc
bound read-only (so /bin/sh, cp, id exist), the skeleton bound read-only at its image path
(/tmp_home/jovyan), and a host directory bound read-write as the home. The init container's
exact command and environment from :func:`nbspawner.storage.build_storage` are then run
inside it as the user's uid/gid with ``setpriv`` (no groups, no_new_privs). Files written to
the home land in a host directory the test inspects afterwards.

Needs root, unshare, setpriv and chroot: fails (never skips) without them.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from nbspawner.record import UserRecord
from nbspawner.storage import build_storage
from nbspawner.storage_config import StorageConfig

pytestmark = pytest.mark.namespace

UID = 23456
GID = 23457
SKEL_MOUNT = "/tmp_home/jovyan"
HOME_MOUNT = "/home/alice"

# Runs as root inside the new mount namespace. Arguments: root dir, host home, home mount
# point, host skeleton ("" for none), skeleton mount point, uid, gid, then the command.
LAYOUT = r"""
set -eu
R=$1 HOST_HOME=$2 HOME_MNT=$3 HOST_SKEL=$4 SKEL_MNT=$5 RUN_UID=$6 RUN_GID=$7
shift 7
mount -t tmpfs -o mode=0755 nbs-test-root "$R"
for d in usr etc; do
    mkdir "$R/$d"
    mount --rbind "/$d" "$R/$d"
    mount -o remount,bind,ro "$R/$d"
done
for l in bin sbin lib lib32 lib64; do
    if [ -L "/$l" ]; then
        ln -s "$(readlink "/$l")" "$R/$l"
    elif [ -d "/$l" ]; then
        mkdir "$R/$l"
        mount --rbind "/$l" "$R/$l"
    fi
done
# busybox applets, for the second shell flavour
mkdir "$R/bb"
if command -v busybox >/dev/null; then
    for a in sh cp mkdir cat chmod id; do ln -s "$(command -v busybox)" "$R/bb/$a"; done
fi
mkdir -p "$R$HOME_MNT"
mount --bind "$HOST_HOME" "$R$HOME_MNT"
if [ -n "$HOST_SKEL" ]; then
    mkdir -p "$R$SKEL_MNT"
    mount --bind "$HOST_SKEL" "$R$SKEL_MNT"
    mount -o remount,bind,ro "$R$SKEL_MNT"
fi
mount -o remount,ro "$R"
exec chroot "$R" /usr/bin/setpriv --reuid="$RUN_UID" --regid="$RUN_GID" --clear-groups \
    --no-new-privs -- "$@"
"""


@pytest.fixture(scope="module", autouse=True)
def namespace_tools():
    if os.geteuid() != 0:
        pytest.fail(
            "the namespace tests need root (unshare -m, mount, chroot, setpriv); "
            "run them as root: pytest -m namespace tests/namespace"
        )
    missing = [t for t in ("unshare", "setpriv", "chroot", "mount") if not shutil.which(t)]
    if missing:
        pytest.fail(f"the namespace tests need {', '.join(missing)} (util-linux, coreutils)")


def init_container(seed_from: str = SKEL_MOUNT) -> dict:
    """The real init container nbspawner builds for alice."""
    config = StorageConfig.from_config(
        home_volume={"type": "pvc", "claim_name": "homes", "export_roots": ["/export/home"]},
        seed_home_from=seed_from,
    )
    rec = UserRecord(username="alice", uid=UID, gid=GID, home="/export/home/alice")
    (container,) = build_storage(config, rec, image="img").patch.init_containers
    return container


def make_home(tmp_path: Path, owner: tuple[int, int] = (UID, GID), mode: int = 0o700) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    os.chown(home, *owner)
    home.chmod(mode)
    return home


def make_skeleton(tmp_path: Path) -> Path:
    """A skeleton shaped like an image's home, owned by root as in an image."""
    skel = tmp_path / "skel"
    (skel / ".jupyter" / "lab" / "user-settings").mkdir(parents=True)
    (skel / ".local" / "bin").mkdir(parents=True)
    (skel / ".bashrc").write_text("# skeleton bashrc\n")
    (skel / ".profile").write_text("# skeleton profile\n")
    (skel / ".jupyter" / "jupyter_server_config.py").write_text("c = get_config()\n")
    (skel / ".jupyter" / "lab" / "user-settings" / "theme.json").write_text("{}\n")
    (skel / ".local" / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (skel / ".local" / "bin" / "hello").chmod(0o755)
    (skel / "my notes.txt").write_text("spaces\n")
    (skel / "-n").write_text("option-looking name\n")
    (skel / "..dots").write_text("two leading dots\n")
    (skel / "new\nline").write_text("newline in the name\n")
    (skel / "link-to-bashrc").symlink_to(".bashrc")
    (skel / "dangling").symlink_to("/nonexistent/target")
    (skel / "escape").symlink_to("/etc")  # must be copied as a link, never followed
    os.mkfifo(skel / "fifo")
    secret = skel / "root-only"
    secret.write_text("not readable by the user\n")
    secret.chmod(0o600)
    for p in [skel, *skel.rglob("*")]:
        os.lchown(p, 0, 0)
    return skel


def run(
    tmp_path: Path,
    home: Path,
    skel: Path | None,
    *,
    env: dict[str, str] | None = None,
    container: dict | None = None,
    as_ids: tuple[int, int] = (UID, GID),
    shell: str = "dash",
    skel_mount: str = SKEL_MOUNT,
) -> subprocess.CompletedProcess:
    container = container or init_container()
    command = list(container["command"])
    assert command[:2] == ["/bin/sh", "-c"]
    variables = {e["name"]: e["value"] for e in container["env"]}
    if env is not None:
        variables = env
    path = "/usr/bin:/bin"
    if shell == "busybox":
        if not shutil.which("busybox"):
            pytest.fail("busybox is needed for the busybox flavour (apt-get install busybox)")
        command[0] = "/bb/sh"
        path = "/bb"
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        LAYOUT,
        "nbs-test-layout",
        str(root),
        str(home),
        HOME_MOUNT,
        str(skel) if skel else "",
        skel_mount,
        str(as_ids[0]),
        str(as_ids[1]),
        "/usr/bin/env",
        "-i",
        f"PATH={path}",
        *[f"{k}={v}" for k, v in variables.items()],
        *command,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def tree(root: Path) -> dict[str, os.stat_result]:
    return {str(p.relative_to(root)): os.lstat(p) for p in root.rglob("*")}


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_empty_home_is_seeded_as_the_user(tmp_path, shell):
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    result = run(tmp_path, home, skel, shell=shell)
    assert result.returncode == 0, result.stderr
    assert "seeded the home" in result.stderr

    got = tree(home)
    expected = set(tree(skel)) - {"fifo", "root-only"}
    assert set(got) == expected
    for name, st in got.items():
        assert (st.st_uid, st.st_gid) == (UID, GID), name
    for name in expected:
        src, dst = skel / name, home / name
        if src.is_symlink():
            assert dst.is_symlink() and os.readlink(dst) == os.readlink(src), name
        elif src.is_dir():
            assert stat.S_IMODE(os.lstat(dst).st_mode) == 0o700, name
        else:
            assert dst.read_bytes() == src.read_bytes(), name
            # contents and the user-execute bit are copied; umask 077 makes the rest private
            want = 0o700 if os.lstat(src).st_mode & 0o100 else 0o600
            assert stat.S_IMODE(os.lstat(dst).st_mode) == want, name
    # the link to /etc was copied as a link: nothing of /etc came along
    assert (home / "escape").is_symlink() and os.readlink(home / "escape") == "/etc"
    # the unreadable file was reported, not created empty
    assert "1 failed" in result.stderr


def test_home_with_only_lost_and_found_is_seeded(tmp_path):
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    (home / "lost+found").mkdir()
    result = run(tmp_path, home, skel)
    assert result.returncode == 0, result.stderr
    assert (home / ".bashrc").read_text() == "# skeleton bashrc\n"


@pytest.mark.parametrize("shell", ["dash", "busybox"])
def test_non_empty_home_is_left_alone(tmp_path, shell):
    """Only-when-empty semantics: an existing file is not overwritten and nothing else from
    the skeleton is added."""
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    mine = home / ".bashrc"
    mine.write_text("mine\n")
    os.chown(mine, UID, GID)
    before = {k: (v.st_mtime_ns, v.st_size) for k, v in tree(home).items()}

    result = run(tmp_path, home, skel, shell=shell)
    assert result.returncode == 0, result.stderr
    assert "not empty" in result.stderr
    assert mine.read_text() == "mine\n"
    assert {k: (v.st_mtime_ns, v.st_size) for k, v in tree(home).items()} == before
    assert not (home / ".profile").exists()


def test_hidden_only_home_counts_as_not_empty(tmp_path):
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    (home / "..x").write_text("")
    result = run(tmp_path, home, skel)
    assert result.returncode == 0 and "not empty" in result.stderr
    assert not (home / ".bashrc").exists()


def test_missing_skeleton_is_not_an_error(tmp_path):
    """Images without /tmp_home/jovyan (docker-stacks) start normally."""
    home = make_home(tmp_path)
    result = run(tmp_path, home, None)
    assert result.returncode == 0, result.stderr
    assert "no skeleton" in result.stderr
    assert list(home.iterdir()) == []


def test_unwritable_home_is_not_seeded(tmp_path):
    """A home kubelet created as root (missing subPath) is reported, not half-seeded."""
    home, skel = make_home(tmp_path, owner=(0, 0), mode=0o755), make_skeleton(tmp_path)
    result = run(tmp_path, home, skel)
    assert result.returncode == 0, result.stderr
    assert "not writable" in result.stderr
    assert list(home.iterdir()) == []


def test_unreadable_home_is_not_taken_for_empty(tmp_path):
    home, skel = make_home(tmp_path, owner=(0, 0), mode=0o733), make_skeleton(tmp_path)
    result = run(tmp_path, home, skel)
    assert result.returncode == 0, result.stderr
    assert "not readable" in result.stderr
    assert list(home.iterdir()) == []


GOOD_ENV = {
    "NBS_SEED_FROM": SKEL_MOUNT,
    "NBS_HOME": HOME_MOUNT,
    "NBS_UID": str(UID),
    "NBS_GID": str(GID),
}

HOSTILE_ENV = [
    ("NBS_HOME", "/home/alice/../alice"),
    ("NBS_HOME", "/home/./alice"),
    ("NBS_HOME", "/home//alice"),
    ("NBS_HOME", "/home/alice/"),
    ("NBS_HOME", "home/alice"),
    ("NBS_HOME", "/home/al\nice"),
    ("NBS_HOME", "/home/alice;id"),
    ("NBS_HOME", "/home/$(id)"),
    ("NBS_HOME", "/home/`id`"),
    ("NBS_HOME", "/home/\u00e5lice"),
    ("NBS_HOME", "/home/alice\t"),
    ("NBS_HOME", "/home/*"),
    ("NBS_HOME", "/"),
    ("NBS_HOME", ""),
    ("NBS_SEED_FROM", "/tmp_home/../etc"),
    ("NBS_SEED_FROM", "/"),
    ("NBS_SEED_FROM", "/home/alice/skel"),  # inside the home
    ("NBS_SEED_FROM", "/home"),  # the home inside the skeleton
    ("NBS_UID", "0"),
    ("NBS_UID", "abc"),
    ("NBS_UID", "-1"),
    ("NBS_UID", f"0{UID}"),
    ("NBS_UID", f"{UID} "),
    ("NBS_UID", "99999999999"),
    ("NBS_UID", str(UID + 1)),  # not the uid it runs as
    ("NBS_GID", str(GID + 1)),
    ("NBS_GID", ""),
]


@pytest.mark.parametrize(("name", "value"), HOSTILE_ENV)
def test_hostile_env_refused(tmp_path, name, value):
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    result = run(tmp_path, home, skel, env=dict(GOOD_ENV, **{name: value}))
    assert result.returncode == 2, result.stderr
    assert "refused" in result.stderr
    if len(value) > 1:
        assert value not in result.stderr
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("missing", sorted(GOOD_ENV))
def test_missing_env_refused(tmp_path, missing):
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    env = {k: v for k, v in GOOD_ENV.items() if k != missing}
    result = run(tmp_path, home, skel, env=env)
    assert result.returncode == 2, result.stderr
    assert list(home.iterdir()) == []


def test_refuses_to_run_as_root(tmp_path):
    """Even if the pod's securityContext were dropped, the script never seeds as root."""
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    result = run(tmp_path, home, skel, as_ids=(0, 0))
    assert result.returncode == 2
    assert "running as root" in result.stderr
    assert list(home.iterdir()) == []
    result = run(tmp_path, home, skel, as_ids=(0, 0), env=dict(GOOD_ENV, NBS_UID="0"))
    assert result.returncode == 2
    assert list(home.iterdir()) == []


def test_admin_skeleton_path(tmp_path):
    """seed_home_from can point anywhere in the image (an admin's skeleton directory)."""
    home, skel = make_home(tmp_path), make_skeleton(tmp_path)
    container = init_container(seed_from="/opt/site-skel")
    assert {"name": "NBS_SEED_FROM", "value": "/opt/site-skel"} in container["env"]
    result = run(tmp_path, home, skel, container=container, skel_mount="/opt/site-skel")
    assert result.returncode == 0, result.stderr
    assert (home / ".profile").read_text() == "# skeleton profile\n"
