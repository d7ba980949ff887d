"""The real passwd-init.sh in real mount namespaces, as root: before/after, attacks, fuzz.

Marker ``namespace``. These tests never skip: without root, unshare, setpriv or one of the
probe tools they *fail* with a message saying what to install (CI must run them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from nbspawner import passwd, passwd_hook
from nbspawner.errors import InvalidRecord
from nbspawner.policy import GECOS_RE, MAX_ID, NAME_RE, SPECIAL_IDS, check_path
from nbspawner.record import UserRecord

from .helpers import IMAGE_SHAPES, IMAGES, SYSTEM_PYTHON, prerequisite_problems, run_scenario

pytestmark = pytest.mark.namespace


@pytest.fixture(autouse=True, scope="module")
def _prerequisites():
    problems = prerequisite_problems()
    if problems:
        pytest.fail("namespace tests cannot run here: " + "; ".join(problems), pytrace=False)


ALICE = UserRecord(
    username="alice",
    uid=12345,
    gid=12345,
    home="/home/alice",
    groups=("alice", "physics"),
    supplemental_gids=(23456,),
    posix_groups=(("alice", 12345), ("physics", 23456)),
    gecos="Alice Example",
    shell="/bin/bash",
    source="test",
)
CONFIG = passwd.PasswdHookConfig()
#: what the pod's supplementalGroups would be (the runtime sets them; here setpriv does)
ALICE_GROUPS = passwd_hook.supplemental_gids(ALICE, CONFIG)

PY_WHO = (
    "import getpass, os, pwd; "
    "print(getpass.getuser()); p = pwd.getpwuid(os.getuid()); print(p.pw_name, p.pw_uid, p.pw_dir)"
)
#: syscall-level attacks on the mounted file, each printing 'name errno-name'
PY_ATTACKS = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
def report(name, fn):
    try:
        result = fn()
    except OSError as e:
        print(name, errno.errorcode[e.errno]); return
    if isinstance(result, int) and result != 0:
        print(name, errno.errorcode[ctypes.get_errno()])
    else:
        print(name, "SUCCEEDED")
report("open-append", lambda: os.open("/etc/passwd", os.O_WRONLY | os.O_APPEND))
report("open-trunc", lambda: os.open("/etc/group", os.O_WRONLY | os.O_TRUNC))
report("chmod", lambda: os.chmod("/etc/passwd", 0o666))
report("chown", lambda: os.chown("/etc/passwd", os.getuid(), os.getgid()))
report("rename", lambda: os.rename("/etc/passwd", "/etc/passwd.old"))
report("unlink", lambda: os.unlink("/etc/group"))
report("umount2", lambda: libc.umount2(b"/etc/passwd", 0))
report("remount-rw", lambda: libc.mount(None, b"/etc/passwd", None, 0x20 | 0x1000, None))
report("truncate", lambda: os.truncate("/etc/passwd", 0))
"""
PROBE_ENV = {"PS1": r"\u@\h$ ", "EMAIL": "alice@example.org"}


def probes(prefix: str) -> list[dict]:
    """whoami, id, python, bash -i prompt, git, ssh — run as the user without USER/LOGNAME."""
    return [
        {"op": "run", "id": f"{prefix}-whoami", "argv": ["whoami"]},
        {"op": "run", "id": f"{prefix}-id", "argv": ["id"]},
        {"op": "run", "id": f"{prefix}-python", "argv": [SYSTEM_PYTHON, "-c", PY_WHO]},
        {
            "op": "run",
            "id": f"{prefix}-bash",
            # a real pty, as in a Jupyter terminal
            "argv": ["script", "-q", "-e", "-c", "bash --norc --noprofile -i", "/dev/null"],
            "stdin": "exit\n",
            "env": PROBE_ENV,
        },
        {
            "op": "run",
            "id": f"{prefix}-git",
            "argv": ["git", "var", "GIT_COMMITTER_IDENT"],
            "env": PROBE_ENV,
        },
        {"op": "run", "id": f"{prefix}-ssh", "argv": ["ssh", "-G", "localhost"]},
    ]


def image_files(image: str) -> tuple[str, str]:
    return (
        (IMAGES / image / "passwd").read_text(),
        (IMAGES / image / "group").read_text(),
    )


def outputs(result: dict) -> dict:
    return json.loads(result["stdout"])


@pytest.mark.parametrize("image", IMAGE_SHAPES)
def test_before_and_after(image):
    steps = [
        *probes("before"),
        {"op": "init", "id": "init", "env": passwd_hook.script_env(ALICE, config=CONFIG)},
        {"op": "outputs", "id": "files"},
        {"op": "install"},
        *probes("after"),
        {"op": "run", "id": "getent-jovyan", "argv": ["getent", "passwd", "jovyan"]},
    ]
    r = run_scenario(steps, image=image, uid=ALICE.uid, gid=ALICE.gid, groups=ALICE_GROUPS)

    # before: the uid has no name
    assert r["before-whoami"]["rc"] != 0
    assert "cannot find name for user ID 12345" in r["before-whoami"]["stderr"]
    assert "uid=12345 gid=12345" in r["before-id"]["stdout"]
    assert r["before-python"]["rc"] != 0 and "KeyError" in r["before-python"]["stderr"]
    assert "I have no name!@" in r["before-bash"]["stdout"]
    assert r["before-git"]["rc"] != 0
    assert (
        r["before-ssh"]["rc"] != 0 and "No user exists for uid 12345" in r["before-ssh"]["stderr"]
    )

    # the script ran as the user and wrote exactly the two files, what merge_files predicts
    assert r["init"]["rc"] == 0, r["init"]["stderr"]
    files = outputs(r["files"])
    assert sorted(files) == ["group", "passwd"]
    expected = passwd.merge_files(ALICE, *image_files(image), shell=CONFIG.shell)
    assert (files["passwd"]["text"], files["group"]["text"]) == expected
    assert files["passwd"]["uid"] == ALICE.uid and files["passwd"]["mode"] == "0o644"
    assert r["install"]["rc"] == 0

    # after: every probe shows the user's name
    assert r["after-whoami"]["stdout"] == "alice\n"
    id_out = r["after-id"]["stdout"]
    assert id_out.startswith("uid=12345(alice) gid=12345(alice) groups=")
    assert "100(users)" in id_out and "23456(physics)" in id_out
    assert r["after-python"]["stdout"].splitlines() == ["alice", "alice 12345 /home/alice"]
    assert "alice@" in r["after-bash"]["stdout"]
    assert "I have no name!" not in r["after-bash"]["stdout"]
    assert r["after-git"]["stdout"].startswith("Alice Example <alice@example.org> ")
    assert "user alice" in r["after-ssh"]["stdout"].splitlines()
    if image != "busybox":
        # docker-stacks start.sh needs `id -u jovyan`; the image entry is still there
        assert r["getent-jovyan"]["stdout"].startswith("jovyan:x:1000:")


def test_the_user_cannot_change_the_files():
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(ALICE, config=CONFIG)},
        {"op": "install"},
        {
            "op": "run",
            "id": "sh-append",
            "argv": ["sh", "-c", "echo evil::0:0::/:/bin/sh >> /etc/passwd"],
        },
        {"op": "run", "id": "chmod", "argv": ["chmod", "666", "/etc/passwd"]},
        {"op": "run", "id": "mv", "argv": ["mv", "/etc/passwd", "/etc/passwd.old"]},
        {"op": "run", "id": "umount", "argv": ["umount", "/etc/passwd"]},
        {"op": "run", "id": "syscalls", "argv": [SYSTEM_PYTHON, "-c", PY_ATTACKS]},
        {
            "op": "run",
            "id": "userns-remount",
            # an unprivileged user+mount namespace cannot unlock a read-only bind mount
            "argv": [
                "unshare",
                "--user",
                "--map-root-user",
                "--mount",
                "sh",
                "-c",
                "mount -o remount,bind,rw /etc/passwd && echo x >> /etc/passwd",
            ],
        },
        {"op": "run", "id": "whoami", "argv": ["whoami"]},
        {"op": "outputs", "id": "files"},
    ]
    r = run_scenario(
        steps, image="docker-stacks", uid=ALICE.uid, gid=ALICE.gid, groups=ALICE_GROUPS
    )
    assert r["init"]["rc"] == 0
    assert r["sh-append"]["rc"] != 0 and "Read-only file system" in r["sh-append"]["stderr"]
    assert r["chmod"]["rc"] != 0 and "Read-only file system" in r["chmod"]["stderr"]
    assert r["mv"]["rc"] != 0
    assert r["umount"]["rc"] != 0
    attacks = dict(line.split() for line in r["syscalls"]["stdout"].splitlines())
    assert attacks == {
        "open-append": "EROFS",
        "open-trunc": "EROFS",
        "chmod": "EROFS",
        "chown": "EROFS",
        "rename": attacks["rename"],  # EACCES (/etc is root's) or EBUSY (a mount point)
        "unlink": attacks["unlink"],
        "umount2": "EPERM",
        "remount-rw": "EPERM",
        "truncate": "EROFS",
    }
    assert attacks["rename"] in ("EACCES", "EBUSY", "EPERM")
    assert attacks["unlink"] in ("EACCES", "EBUSY", "EPERM")
    assert r["userns-remount"]["rc"] != 0
    assert r["whoami"]["stdout"] == "alice\n"
    # the file the user owns in the emptyDir is unchanged: read-only mount, not ownership,
    # is what protects it (the init container wrote it as the user)
    files = outputs(r["files"])
    assert files["passwd"]["text"].splitlines()[0] == (
        "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash"
    )
    assert "evil" not in files["passwd"]["text"]


def test_container_root_cannot_edit_the_mounted_files():
    """uid 0 in the same mount namespace, after the read-only bind: writes and usermod fail.

    A root *with* CAP_SYS_ADMIN can unmount the file (last step): that is why nbspawner
    refuses uid 0 and drops every capability instead of relying on the mount alone.
    """
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(ALICE, config=CONFIG)},
        {"op": "install"},
        {
            "op": "run",
            "id": "root-append",
            "as": "root",
            "argv": ["sh", "-c", "echo x >> /etc/passwd"],
        },
        {"op": "run", "id": "usermod", "as": "root", "argv": ["usermod", "-c", "Mallory", "alice"]},
        {"op": "run", "id": "useradd", "as": "root", "argv": ["useradd", "-o", "-u", "0", "evil"]},
        {
            "op": "run",
            "id": "nocaps-syscalls",
            "as": "root-nocaps",
            "argv": [SYSTEM_PYTHON, "-c", PY_ATTACKS],
        },
        {"op": "run", "id": "getent", "argv": ["getent", "passwd", "alice"]},
        {"op": "run", "id": "full-root-umount", "as": "root", "argv": ["umount", "/etc/passwd"]},
    ]
    r = run_scenario(
        steps, image="docker-stacks", uid=ALICE.uid, gid=ALICE.gid, groups=ALICE_GROUPS
    )
    assert r["root-append"]["rc"] != 0 and "Read-only file system" in r["root-append"]["stderr"]
    assert r["usermod"]["rc"] != 0
    assert r["useradd"]["rc"] != 0
    nocaps = dict(line.split() for line in r["nocaps-syscalls"]["stdout"].splitlines())
    # no CAP_DAC_OVERRIDE: the permission check (EACCES) may come before EROFS
    assert nocaps["open-append"] in ("EROFS", "EACCES")
    assert nocaps["umount2"] == "EPERM"
    assert nocaps["remount-rw"] == "EPERM"
    assert "SUCCEEDED" not in nocaps.values()
    assert r["getent"]["stdout"] == "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash\n"
    # residual risk, documented: full root (CAP_SYS_ADMIN) defeats any mount
    assert r["full-root-umount"]["rc"] == 0


def test_uid_collision_with_jovyan_keeps_jovyan_after_the_user():
    bob = UserRecord("bob", 1000, 1000, "/home/bob", gecos="Bob", source="test")
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(bob, config=CONFIG)},
        {"op": "outputs", "id": "files"},
        {"op": "install"},
        {"op": "run", "id": "whoami", "argv": ["whoami"]},
        {"op": "run", "id": "by-uid", "argv": ["getent", "passwd", "1000"]},
        {"op": "run", "id": "by-name", "argv": ["getent", "passwd", "jovyan"]},
        {"op": "run", "id": "id-jovyan", "argv": ["id", "-u", "jovyan"]},
    ]
    r = run_scenario(steps, image="docker-stacks", uid=1000, gid=1000, groups=[100])
    assert r["init"]["rc"] == 0
    assert r["whoami"]["stdout"] == "bob\n"
    assert r["by-uid"]["stdout"].startswith("bob:x:1000:1000:")
    assert r["by-name"]["stdout"] == "jovyan:x:1000:100::/home/jovyan:/bin/bash\n"
    assert r["id-jovyan"]["stdout"] == "1000\n"
    text = outputs(r["files"])["passwd"]["text"]
    assert text.splitlines()[0].startswith("bob:")
    assert text == passwd.merge_files(bob, *image_files("docker-stacks"), shell=CONFIG.shell)[0]


def test_name_collision_replaces_the_image_entry():
    jovyan = UserRecord("jovyan", 5000, 5000, "/home/jovyan", source="test")
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(jovyan, config=CONFIG)},
        {"op": "outputs", "id": "files"},
        {"op": "install"},
        {"op": "run", "id": "whoami", "argv": ["whoami"]},
        {"op": "run", "id": "by-name", "argv": ["getent", "passwd", "jovyan"]},
        {"op": "run", "id": "old-uid", "argv": ["getent", "passwd", "1000"]},
    ]
    r = run_scenario(steps, image="docker-stacks", uid=5000, gid=5000, groups=[100])
    assert r["whoami"]["stdout"] == "jovyan\n"
    assert r["by-name"]["stdout"] == "jovyan:x:5000:5000::/home/jovyan:/bin/bash\n"
    assert r["old-uid"]["rc"] == 2  # not found: the image's jovyan line was replaced
    text = outputs(r["files"])["passwd"]["text"]
    assert sum(line.startswith("jovyan:") for line in text.splitlines()) == 1


def test_group_collisions():
    carol = UserRecord(
        "carol",
        23000,
        23000,
        "/home/carol",
        posix_groups=(("carol", 23000), ("staff", 5050), ("physics", 46), ("users", 100)),
        source="test",
    )
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(carol, config=CONFIG)},
        {"op": "outputs", "id": "files"},
        {"op": "install"},
        {"op": "run", "id": "staff", "argv": ["getent", "group", "staff"]},
        {"op": "run", "id": "gid50", "argv": ["getent", "group", "50"]},
        {"op": "run", "id": "gid46", "argv": ["getent", "group", "46"]},
        {"op": "run", "id": "plugdev", "argv": ["getent", "group", "plugdev"]},
        {"op": "run", "id": "users", "argv": ["getent", "group", "users"]},
        {"op": "run", "id": "id", "argv": ["id"]},
    ]
    r = run_scenario(steps, image="docker-stacks", uid=23000, gid=23000, groups=[100, 46, 5050])
    assert r["init"]["rc"] == 0
    # same name, other gid: the directory's gid wins, the image line is gone
    assert r["staff"]["stdout"] == "staff:x:5050:carol\n"
    assert r["gid50"]["rc"] == 2
    # same gid, other name: the directory's name first, the image name still resolves
    assert r["gid46"]["stdout"] == "physics:x:46:carol\n"
    assert r["plugdev"]["stdout"] == "plugdev:x:46:\n"
    # same name and gid: merged, listed once
    assert r["users"]["stdout"] == "users:x:100:carol\n"
    assert outputs(r["files"])["group"]["text"].count("users:") == 1
    assert r["id"]["stdout"].startswith("uid=23000(carol) gid=23000(carol) groups=")


def test_kubeflow_image_with_root_group():
    """Kubeflow images: jovyan's primary gid 0; the user gets gid 0 as a supplementary group
    only when the catalog says so (extra_supplemental_gids)."""
    groups = passwd_hook.supplemental_gids(ALICE, CONFIG, {"extra_supplemental_gids": [0]})
    assert 0 in groups
    steps = [
        {"op": "init", "id": "init", "env": passwd_hook.script_env(ALICE, config=CONFIG)},
        {"op": "install"},
        {"op": "run", "id": "id", "argv": ["id"]},
        {"op": "run", "id": "jovyan", "argv": ["id", "jovyan"]},
    ]
    r = run_scenario(steps, image="kubeflow-s6", uid=ALICE.uid, gid=ALICE.gid, groups=groups)
    assert r["init"]["rc"] == 0
    assert "0(root)" in r["id"]["stdout"] and "uid=12345(alice)" in r["id"]["stdout"]
    assert r["jovyan"]["stdout"].startswith("uid=1000(jovyan) gid=0(root)")


@pytest.mark.parametrize("image", IMAGE_SHAPES)
@pytest.mark.parametrize("shell", ["dash", "busybox", "bash-posix"])
def test_every_shell_writes_what_merge_files_predicts(image, shell):
    records = [
        ALICE,
        UserRecord("bob", 1000, 1000, "/home/bob", source="t"),
        UserRecord("jovyan", 5000, 100, "/home/jovyan", posix_groups=(("users", 100),), source="t"),
        UserRecord("root_ish", 4242, 4242, "/", posix_groups=(("wheel", 10),), shell="/bin/sh"),
    ]
    steps = []
    for i, record in enumerate(records):
        steps += [
            {
                "op": "init",
                "id": f"init{i}",
                "shell": shell,
                "env": passwd_hook.script_env(record, config=CONFIG),
            },
            {"op": "outputs", "id": f"files{i}"},
            {"op": "clear"},
        ]
    r = run_scenario(steps, image=image, uid=ALICE.uid, gid=ALICE.gid)
    for i, record in enumerate(records):
        assert r[f"init{i}"]["rc"] == 0, r[f"init{i}"]["stderr"]
        files = outputs(r[f"files{i}"])
        assert (files["passwd"]["text"], files["group"]["text"]) == passwd.merge_files(
            record, *image_files(image), shell=CONFIG.shell
        )


GOOD_ENV = passwd_hook.script_env(ALICE, config=CONFIG)
HOSTILE = [
    ("NB_PW_USER", "ali:ce"),
    ("NB_PW_USER", "alice\nevil"),
    ("NB_PW_USER", "root"),
    ("NB_PW_USER", ""),
    ("NB_PW_USER", "-alice"),
    ("NB_PW_USER", "a" * 33),
    ("NB_PW_USER", "al ice"),
    ("NB_PW_USER", "Jos\u00e9"),
    ("NB_PW_USER", "$(id)"),
    ("NB_PW_UID", "0"),
    ("NB_PW_UID", "00"),
    ("NB_PW_UID", "01000"),
    ("NB_PW_UID", "-1"),
    ("NB_PW_UID", " 1000"),
    ("NB_PW_UID", "1000 "),
    ("NB_PW_UID", "+1000"),
    ("NB_PW_UID", "1e3"),
    ("NB_PW_UID", "4294967295"),
    ("NB_PW_UID", "99999999999999999999"),
    ("NB_PW_UID", "0x10"),
    ("NB_PW_UID", "1000\n"),
    ("NB_PW_GID", "0"),
    ("NB_PW_GID", ""),
    ("NB_PW_HOME", "home/alice"),
    ("NB_PW_HOME", "/home/../root"),
    ("NB_PW_HOME", "/home//alice"),
    ("NB_PW_HOME", "/home/alice/"),
    ("NB_PW_HOME", "/home/./alice"),
    ("NB_PW_HOME", "/home/alice:/bin/sh"),
    ("NB_PW_HOME", "/home/alice\nevil:x:0:0::/:/bin/sh"),
    ("NB_PW_HOME", "/" + "a" * 4095),
    ("NB_PW_SHELL", "bash"),
    ("NB_PW_SHELL", "/bin/bash -c id"),
    ("NB_PW_GECOS", "Alice,,,"),
    ("NB_PW_GECOS", "Alice:0"),
    ("NB_PW_GECOS", "Alice\nroot::0:0::/:/bin/sh"),
    ("NB_PW_GECOS", "A" * 65),
    ("NB_PW_GECOS", "Jos\u00e9"),
    ("NB_PW_GECOS", "`id`"),
    ("NB_PW_GROUPS", "users:100,"),
    ("NB_PW_GROUPS", ",users:100"),
    ("NB_PW_GROUPS", "users"),
    ("NB_PW_GROUPS", "users:100:alice"),
    ("NB_PW_GROUPS", "users:100,users:101"),
    ("NB_PW_GROUPS", "root:0"),
    ("NB_PW_GROUPS", "wheel:0"),
    ("NB_PW_GROUPS", "users:100\nevil:0"),
    ("NB_PW_GROUPS", "us ers:100"),
    ("NB_PW_ALLOW_GID0", "yes"),
    ("NB_PW_OUT", "/nonexistent-dir"),
]


def test_hostile_inputs_are_refused_without_output():
    steps = []
    for i, (key, value) in enumerate(HOSTILE):
        env = {**GOOD_ENV, key: value}
        steps += [
            {"op": "init", "id": f"init{i}", "env": env, "keep_out": key == "NB_PW_OUT"},
            {"op": "outputs", "id": f"files{i}"},
            {"op": "clear"},
        ]
    r = run_scenario(steps, image="docker-stacks", uid=ALICE.uid, gid=ALICE.gid)
    for i, (key, value) in enumerate(HOSTILE):
        result = r[f"init{i}"]
        assert result["rc"] != 0, f"{key}={value!r} was accepted"
        assert "nbspawner-passwd: refused:" in result["stderr"], (key, value, result["stderr"])
        assert outputs(r[f"files{i}"]) == {}, f"{key}={value!r} left files behind"


def test_gid_zero_needs_the_explicit_switch():
    env = {**GOOD_ENV, "NB_PW_GID": "0"}
    steps = [
        {"op": "init", "id": "refused", "env": env},
        {"op": "init", "id": "allowed", "env": {**env, "NB_PW_ALLOW_GID0": "1"}},
        {"op": "outputs", "id": "files"},
    ]
    r = run_scenario(steps, image="kubeflow-s6", uid=ALICE.uid, gid=0)
    assert r["refused"]["rc"] != 0
    assert r["allowed"]["rc"] == 0
    assert outputs(r["files"])["passwd"]["text"].startswith("alice:x:12345:0:")


def test_a_missing_output_is_never_installed():
    """The subPath trap: a refused run leaves nothing, and the pod must not start.

    kubelet would create a directory where a subPath source is missing; the script's
    non-zero exit stops the pod before the notebook container, and here the install step
    refuses to mount what is not there."""
    steps = [
        {"op": "init", "id": "init", "env": {**GOOD_ENV, "NB_PW_UID": "0"}},
        {"op": "outputs", "id": "files"},
        {"op": "install"},
        {"op": "run", "id": "whoami", "argv": ["whoami"]},
    ]
    r = run_scenario(steps, image="docker-stacks", uid=ALICE.uid, gid=ALICE.gid)
    assert r["init"]["rc"] == 1
    assert outputs(r["files"]) == {}
    assert r["install"]["rc"] == 1
    assert r["whoami"]["rc"] != 0  # still nameless: nothing half-written was installed


# ---------------------------------------------------------------------------
# hypothesis: hostile environments, script vs. an oracle built on policy's rules
# ---------------------------------------------------------------------------

_ENV_CHARS = st.characters(
    blacklist_categories=("Cs",),  # lone surrogates cannot be encoded into an environment
    blacklist_characters="\x00",  # nor can NUL
)
_NASTY = st.sampled_from(
    [
        ":",
        "\n",
        "\r",
        ",",
        "/",
        ".",
        "..",
        " ",
        "'",
        "-",
        "_",
        "\u00e9",
        "\t",
        "$",
        "`",
        "\\",
        "*",
        "[",
        "0",
    ]
)


def _mixed(valid: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    mutated = st.tuples(valid, _NASTY, st.integers(0, 40)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2] :]
    )
    return st.one_of(valid, mutated, st.text(_ENV_CHARS, max_size=40))


_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,33}\Z")
_valid_names = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z").filter(lambda n: n != "root")
_ids = st.one_of(
    st.integers(-5, 2**33).map(str),
    st.sampled_from(
        ["0", "1", "00", "01", "1000", "4294967294", "4294967295", " 7", "7 ", "+7", "1e3"]
    ),
)
_valid_ids = st.integers(1, MAX_ID).map(str)
_paths = st.one_of(
    st.from_regex(r"\A(/[A-Za-z0-9_.-]{1,8}){1,4}/?\Z"),
    st.sampled_from(["/", "/home/x", "/home/../x", "//x", "/x/", "/x/.", "/.", "/..x", "x"]),
)
_valid_paths = st.from_regex(r"\A(/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,8}){1,4}\Z")
_gecos = st.from_regex(r"\A[A-Za-z0-9_. '-]{0,66}\Z")
_valid_gecos = st.from_regex(r"\A[A-Za-z0-9_. '-]{0,64}\Z")


def _group_list(names, ids):
    return st.lists(st.tuples(names, ids), max_size=4).map(
        lambda items: ",".join(f"{n}:{g}" for n, g in items)
    )


_VALID = {
    "NB_PW_USER": _valid_names,
    "NB_PW_UID": _valid_ids,
    "NB_PW_GID": _valid_ids,
    "NB_PW_HOME": _valid_paths,
    "NB_PW_SHELL": _valid_paths,
    "NB_PW_GECOS": _valid_gecos,
    "NB_PW_GROUPS": _group_list(_valid_names, _valid_ids),
}
_HOSTILE = {
    "NB_PW_USER": _mixed(_names),
    "NB_PW_UID": _mixed(_ids),
    "NB_PW_GID": _mixed(_ids),
    "NB_PW_HOME": _mixed(_paths),
    "NB_PW_SHELL": _mixed(_paths),
    "NB_PW_GECOS": _mixed(_gecos),
    "NB_PW_GROUPS": _mixed(_group_list(_names, _ids)),
}


@st.composite
def _envs(draw):
    """A valid environment with (at most) one field replaced by a hostile value, so that the
    oracle's verdict turns on that field and many examples are accepted and compared."""
    env = {key: draw(strategy) for key, strategy in _VALID.items()}
    key = draw(st.one_of(st.none(), st.sampled_from(sorted(_HOSTILE))))
    if key is not None:
        env[key] = draw(_HOSTILE[key])
    env["NB_PW_ALLOW_GID0"] = draw(st.sampled_from(["", "1", "0"]))
    return env


ENVS = _envs()


def _oracle_id(text: str, minimum: int) -> int | None:
    if not (text.isascii() and text.isdigit()) or (len(text) > 1 and text[0] == "0"):
        return None
    if len(text) > 10:
        return None
    value = int(text)
    return value if minimum <= value <= MAX_ID and value not in SPECIAL_IDS else None


def oracle(env: dict[str, str], image: str) -> tuple[str, str] | None:
    """What the script must write for ``env`` (None: it must refuse), from policy's rules."""
    min_gid = 0 if env["NB_PW_ALLOW_GID0"] == "1" else 1
    user = env["NB_PW_USER"]
    if not NAME_RE.match(user) or user == "root":
        return None
    uid = _oracle_id(env["NB_PW_UID"], 1)
    gid = _oracle_id(env["NB_PW_GID"], min_gid)
    if uid is None or gid is None:
        return None
    try:
        for key in ("NB_PW_HOME", "NB_PW_SHELL"):
            check_path(env[key], key)
            if len(env[key]) > passwd.MAX_PATH_LEN:
                return None
    except InvalidRecord:
        return None
    if not GECOS_RE.match(env["NB_PW_GECOS"]):
        return None
    groups: list[tuple[str, int]] = []
    if env["NB_PW_GROUPS"]:
        for token in env["NB_PW_GROUPS"].split(","):
            if token.count(":") != 1:
                return None
            name, gid_text = token.split(":")
            if not NAME_RE.match(name) or name == "root":
                return None
            g = _oracle_id(gid_text, min_gid)
            if g is None:
                return None
            if (name, g) in groups:
                continue
            if any(n == name for n, _ in groups):
                return None
            groups.append((name, g))
    record = UserRecord(
        user,
        uid,
        gid,
        env["NB_PW_HOME"],
        posix_groups=tuple(groups),
        gecos=env["NB_PW_GECOS"],
        shell=env["NB_PW_SHELL"],
    )
    return passwd.merge_files(
        record, *image_files(image), default_groups=(), allow_gid_zero=min_gid == 0
    )


def _well_formed(text: str, *, fields: int) -> bool:
    return text.endswith("\n") and all(line.count(":") == fields - 1 for line in text.splitlines())


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(envs=st.lists(ENVS, min_size=20, max_size=20), shell=st.sampled_from(["dash", "busybox"]))
def test_fuzz_script_matches_the_oracle(envs, shell):
    """About 240 script runs: the script accepts exactly what the oracle accepts, writes
    exactly what merge_files writes, and leaves nothing behind when it refuses."""
    image = "docker-stacks"
    steps = []
    for i, env in enumerate(envs):
        steps += [
            {"op": "init", "id": f"init{i}", "shell": shell, "env": env},
            {"op": "outputs", "id": f"files{i}"},
            {"op": "clear"},
        ]
    r = run_scenario(steps, image=image, uid=ALICE.uid, gid=ALICE.gid)
    image_passwd_lines = len(image_files(image)[0].splitlines())
    accepted = 0
    for i, env in enumerate(envs):
        expected = oracle(env, image)
        result, files = r[f"init{i}"], outputs(r[f"files{i}"])
        if expected is None:
            assert result["rc"] != 0, f"accepted: {env!r}"
            assert files == {}, f"files left after refusal: {env!r}"
            continue
        accepted += 1
        assert result["rc"] == 0, (env, result["stderr"])
        assert sorted(files) == ["group", "passwd"]
        got = (files["passwd"]["text"], files["group"]["text"])
        assert got == expected, env
        # exactly one line for the user, first; image lines all kept but a same-name one
        lines = got[0].splitlines()
        assert lines[0].split(":")[0] == env["NB_PW_USER"]
        assert [line.split(":")[0] for line in lines].count(env["NB_PW_USER"]) == 1
        assert len(lines) in (image_passwd_lines + 1, image_passwd_lines)
        assert _well_formed(got[0], fields=7) and _well_formed(got[1], fields=4)
    # every run reaches an assertion; these show how many compared written files
    low = min(accepted // 5 * 5, 15)
    event(f"{low}-{min(low + 4, 20) if low < 15 else 20} of 20 runs accepted and compared")


def test_script_file_is_what_the_pod_runs():
    text = Path(passwd.__file__).with_name("data").joinpath("passwd-init.sh").read_text()
    assert text == passwd.SCRIPT_TEXT
