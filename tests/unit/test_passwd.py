"""nbspawner.passwd: lines, merging, collision policy, pod patch (hub side, no processes)."""

from __future__ import annotations

import base64
import dataclasses
import logging
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from nbspawner import passwd, passwd_hook
from nbspawner.errors import ConfigError, InvalidRecord
from nbspawner.passwd import PasswdHookConfig
from nbspawner.policy import MAX_ID, NAME_RE
from nbspawner.record import UserRecord

IMAGES = Path(__file__).resolve().parents[1] / "data" / "images"


def rec(**kw) -> UserRecord:
    base = dict(
        username="alice",
        uid=12345,
        gid=12345,
        home="/home/alice",
        posix_groups=(("alice", 12345), ("physics", 23456)),
        supplemental_gids=(23456,),
        gecos="Alice Example",
        shell="/bin/bash",
        source="test",
    )
    base.update(kw)
    return UserRecord(**base)


def image(name: str) -> tuple[str, str]:
    return (IMAGES / name / "passwd").read_text(), (IMAGES / name / "group").read_text()


# ---------------------------------------------------------------------------
# render_passwd_line
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash"),
        ({"home": "/"}, "alice:x:12345:12345:Alice Example:/:/bin/bash"),
        ({"gecos": ""}, "alice:x:12345:12345::/home/alice:/bin/bash"),
        (
            {"gecos": "O'Neil-Smith Jr. _2"},
            "alice:x:12345:12345:O'Neil-Smith Jr. _2:/home/alice:/bin/bash",
        ),
        (
            {"username": "_svc.x-1", "uid": 1, "gid": 1},
            "_svc.x-1:x:1:1:Alice Example:/home/alice:/bin/bash",
        ),
        (
            {"uid": MAX_ID - 1, "gid": MAX_ID - 1},
            f"alice:x:{MAX_ID - 1}:{MAX_ID - 1}:Alice Example:/home/alice:/bin/bash",
        ),
        (
            {"shell": "/usr/local/bin/zsh"},
            "alice:x:12345:12345:Alice Example:/home/alice:/usr/local/bin/zsh",
        ),
    ],
)
def test_render_passwd_line(kw, expected):
    assert passwd.render_passwd_line(rec(**kw)) == expected


def test_render_passwd_line_home_and_shell_override():
    line = passwd.render_passwd_line(
        rec(home="/export/home/alice"), home="/home/alice", shell="/bin/sh"
    )
    assert line == "alice:x:12345:12345:Alice Example:/home/alice:/bin/sh"


@pytest.mark.parametrize(
    "gecos", ["Jos\u00e9", "\u0141ukasz", "Alice, Room 3", "Alice:0", "a\nb", "A" * 65, "\x00"]
)
def test_unusable_gecos_is_omitted_and_logged_without_its_value(gecos, caplog):
    caplog.set_level(logging.DEBUG, logger="nbspawner.passwd")
    assert (
        passwd.render_passwd_line(rec(gecos=gecos)) == "alice:x:12345:12345::/home/alice:/bin/bash"
    )
    messages = [r.getMessage() for r in caplog.records if r.name == "nbspawner.passwd"]
    assert messages == [
        "passwd: the full name (GECOS) of user alice is left out of /etc/passwd: it has "
        "characters outside A-Z a-z 0-9 _ . space ' - or is over 64 long"
    ]
    assert gecos not in messages[0]


@pytest.mark.parametrize(
    "kw, field, kind",
    [
        ({"username": "ali:ce"}, "username", "not a valid name"),
        ({"username": "alice\n"}, "username", "not a valid name"),
        ({"username": "root"}, "username", "reserved name"),
        ({"username": ""}, "username", "not a valid name"),
        ({"username": "9alice"}, "username", "not a valid name"),
        ({"username": "a" * 33}, "username", "not a valid name"),
        ({"uid": 0}, "uid", "root id"),
        ({"uid": -1}, "uid", "out of range"),
        ({"uid": MAX_ID + 1}, "uid", "out of range"),
        ({"uid": 2**64}, "uid", "out of range"),
        ({"uid": True}, "uid", "not an integer"),
        ({"uid": "1000"}, "uid", "not an integer"),
        ({"gid": 0}, "gid", "root id"),
        ({"home": "home/alice"}, "home", "not a normalised absolute path"),
        ({"home": "/home/../etc"}, "home", "not a normalised absolute path"),
        ({"home": "/home//alice"}, "home", "not a normalised absolute path"),
        ({"home": "/home/alice/"}, "home", "not a normalised absolute path"),
        ({"home": "/home/alice:/bin/sh"}, "home", "not a normalised absolute path"),
        ({"home": "/" + "a" * 4095}, "home", "too long"),
        ({"shell": "bash"}, "shell", "not a normalised absolute path"),
        ({"shell": "/bin/bash\n"}, "shell", "not a normalised absolute path"),
    ],
)
def test_render_passwd_line_refuses(kw, field, kind):
    with pytest.raises(InvalidRecord) as e:
        passwd.render_passwd_line(rec(**kw))
    assert (e.value.field, e.value.kind) == (field, kind)


def test_gid_zero_only_when_allowed():
    with pytest.raises(InvalidRecord):
        passwd.render_passwd_line(rec(gid=0))
    assert passwd.render_passwd_line(rec(gid=0), allow_gid_zero=True).startswith("alice:x:12345:0:")
    with pytest.raises(InvalidRecord):
        passwd.render_passwd_line(rec(uid=0), allow_gid_zero=True)


# ---------------------------------------------------------------------------
# groups
# ---------------------------------------------------------------------------


def test_group_entries_and_lines():
    r = rec()
    assert passwd.group_entries(r) == [("alice", 12345), ("physics", 23456), ("users", 100)]
    assert passwd.render_group_lines(r) == [
        "alice:x:12345:",  # primary group: no member list needed
        "physics:x:23456:alice",
        "users:x:100:alice",
    ]


def test_private_group_when_the_primary_gid_has_no_name():
    r = rec(posix_groups=())
    assert passwd.render_group_lines(r) == ["users:x:100:alice", "alice:x:12345:"]


def test_default_group_skipped_when_its_name_or_gid_is_taken():
    assert passwd.group_entries(rec(posix_groups=(("users", 5001),))) == [("users", 5001)]
    assert passwd.group_entries(rec(posix_groups=(("staff", 100),))) == [("staff", 100)]
    assert passwd.group_entries(rec(), default_groups=()) == [("alice", 12345), ("physics", 23456)]


def test_duplicate_groups():
    r = rec(posix_groups=(("physics", 23456), ("physics", 23456)))
    assert passwd.group_entries(r, default_groups=()) == [("physics", 23456)]
    with pytest.raises(InvalidRecord) as e:
        passwd.group_entries(rec(posix_groups=(("physics", 1), ("physics", 2))))
    assert e.value.kind == "ambiguous group"


@pytest.mark.parametrize(
    "groups",
    [(("ph:ysics", 5),), (("root", 5),), (("physics", 0),), (("physics", -1),), (("x",),), ("x",)],
)
def test_bad_groups_refused(groups):
    with pytest.raises(InvalidRecord):
        passwd.group_entries(rec(posix_groups=groups))


def test_bad_default_groups_are_a_config_error():
    with pytest.raises(ConfigError):
        passwd.group_entries(rec(), default_groups=(("us:ers", 100),))
    with pytest.raises(ConfigError):
        passwd_hook.supplemental_gids(rec(), PasswdHookConfig(default_groups=(("users", 0),)))


def test_supplemental_gids():
    r = rec(supplemental_gids=(23456, 100, 12345))
    assert passwd_hook.supplemental_gids(r) == [23456, 100]
    assert passwd_hook.supplemental_gids(r, PasswdHookConfig(default_groups=())) == [23456, 100]
    assert passwd_hook.supplemental_gids(rec(), None, {"extra_supplemental_gids": [0, 100]}) == [
        23456,
        100,
        0,
    ]
    with pytest.raises(InvalidRecord):
        passwd_hook.supplemental_gids(rec(supplemental_gids=(0,)))
    assert passwd_hook.supplemental_gids(
        rec(supplemental_gids=(0,)), PasswdHookConfig(allow_gid_zero=True)
    ) == [0, 100]


# ---------------------------------------------------------------------------
# merging with image files: the collision policy
# ---------------------------------------------------------------------------


def test_merge_docker_stacks():
    pw, gr = passwd.merge_files(rec(), *image("docker-stacks"))
    lines = pw.splitlines()
    assert lines[0] == "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash"
    assert lines[1:] == image("docker-stacks")[0].splitlines()
    glines = gr.splitlines()
    assert glines[:3] == ["alice:x:12345:", "physics:x:23456:alice", "users:x:100:alice"]
    assert "users:x:100:" not in glines  # merged, not duplicated
    assert len(glines) == 3 + len(image("docker-stacks")[1].splitlines()) - 1


def test_uid_collision_keeps_the_image_entry_after_the_user():
    bob = rec(username="bob", uid=1000, gid=1000, posix_groups=(), gecos="")
    pw, _ = passwd.merge_files(bob, *image("docker-stacks"))
    lines = pw.splitlines()
    assert lines[0] == "bob:x:1000:1000::/home/alice:/bin/bash"
    assert "jovyan:x:1000:100::/home/jovyan:/bin/bash" in lines[1:]


def test_name_collision_replaces_the_image_entry():
    jovyan = rec(
        username="jovyan", uid=5000, gid=100, posix_groups=(("users", 100),), home="/home/jovyan"
    )
    pw, gr = passwd.merge_files(jovyan, *image("docker-stacks"))
    assert [line for line in pw.splitlines() if line.startswith("jovyan:")] == [
        "jovyan:x:5000:100:Alice Example:/home/jovyan:/bin/bash"
    ]
    assert "1000" not in pw
    # primary group users: jovyan is not listed as a member of its own primary group
    assert gr.splitlines()[0] == "users:x:100:"


def test_group_collisions():
    carol = rec(
        username="carol",
        uid=23000,
        gid=23000,
        posix_groups=(("carol", 23000), ("staff", 5050), ("physics", 46), ("users", 100)),
    )
    _, gr = passwd.merge_files(carol, *image("docker-stacks"))
    lines = gr.splitlines()
    assert lines[:4] == [
        "carol:x:23000:",
        "staff:x:5050:carol",
        "physics:x:46:carol",
        "users:x:100:carol",
    ]
    assert "staff:x:50:" not in lines  # same name, other gid: replaced
    assert "plugdev:x:46:" in lines  # same gid, other name: kept after


def test_existing_members_are_kept_when_merging():
    _, gr = passwd.merge_files(rec(posix_groups=(("wheel", 10),)), *image("busybox"))
    assert gr.splitlines()[0] == "wheel:x:10:root,alice"


def test_private_group_not_added_when_the_image_names_the_gid_or_the_name():
    r = rec(gid=100, posix_groups=())
    _, gr = passwd.merge_files(r, *image("docker-stacks"))
    assert not any(line.startswith("alice:") for line in gr.splitlines())
    r = rec(username="staff", gid=6000, posix_groups=())
    _, gr = passwd.merge_files(r, *image("docker-stacks"), default_groups=())
    assert "staff:x:6000:" not in gr.splitlines() and "staff:x:50:" in gr.splitlines()


def test_merge_handles_missing_trailing_newline_and_blank_lines():
    pw, gr = passwd.merge_files(
        rec(), "root:x:0:0::/root:/bin/sh\n\nnobody:x:65534:65534::/:/bin/false", "root:x:0:"
    )
    assert pw == (
        "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash\n"
        "root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"
    )
    assert gr.endswith("root:x:0:\n")


def test_kubeflow_image_jovyan_primary_gid_zero_is_kept():
    pw, _ = passwd.merge_files(rec(), *image("kubeflow-s6"))
    assert "jovyan:x:1000:0::/home/jovyan:/bin/bash" in pw.splitlines()


# ---------------------------------------------------------------------------
# hypothesis: hostile records on the hub side
# ---------------------------------------------------------------------------

_hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "",
            "root",
            "..",
            ".",
            "/",
            "//",
            "a:b",
            "a\nb",
            "a\x00b",
            "jos\u00e9",
            "/home/../x",
            "/x/./y",
        ]
    ),
    st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,34}\Z"),
    st.from_regex(r"\A(/[A-Za-z0-9_.-]{1,6}){1,4}\Z"),
)
_hostile_ids = st.one_of(
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, 1, 999, 1000, MAX_ID, MAX_ID + 1, 2**63]),
    st.booleans(),
    st.text(max_size=5),
)
_valid_group_names = st.from_regex(r"\A[a-z_][a-z0-9_-]{0,20}\Z").filter(lambda n: n != "root")
#: a record the hook renders; each example changes exactly one of its fields
_VALID_RECORD = UserRecord(
    "alice",
    2001,
    3001,
    "/home/alice",
    posix_groups=(("physics", 3001), ("gpu-users", 3003)),
    gecos="Alice Liddell",
    shell="/bin/bash",
)
_ONE_FIELD = {
    "username": _hostile_text,
    "uid": st.one_of(_hostile_ids, st.integers(1000, 2**31)),
    "gid": st.one_of(_hostile_ids, st.integers(1000, 2**31)),
    "home": _hostile_text,
    "gecos": _hostile_text,
    "shell": st.one_of(_hostile_text, st.just("/bin/sh")),
    # valid groups with at most one hostile entry among them
    "posix_groups": st.tuples(
        st.lists(st.tuples(_valid_group_names, st.integers(1000, 2**31)), max_size=4),
        st.lists(st.tuples(_hostile_text, _hostile_ids), max_size=1),
        st.integers(0, 4),
    ).map(lambda t: tuple(t[0][: t[2]] + t[1] + t[0][t[2] :])),
}
#: the InvalidRecord.field a refusal of each varied field names
_REFUSAL_FIELDS = {"posix_groups": {"posix_groups", "groups"}}


@st.composite
def _one_field_changed(draw):
    field = draw(st.sampled_from(sorted(_ONE_FIELD)))
    return field, dataclasses.replace(_VALID_RECORD, **{field: draw(_ONE_FIELD[field])})


def _refused(field: str, error: InvalidRecord) -> None:
    """A refusal names the one field that was changed (the rest of the record is valid)."""
    event(f"refused ({field})")
    assert error.field in _REFUSAL_FIELDS.get(field, {field}), (field, error.log_message)
    assert "\n" not in error.log_message


@settings(max_examples=600, deadline=None)
@given(_one_field_changed())
def test_fuzz_passwd_line_is_one_well_formed_line_or_refused(case):
    field, record = case
    try:
        line = passwd.render_passwd_line(record)
    except InvalidRecord as error:
        _refused(field, error)
        return
    event(f"rendered ({field})")
    assert "\n" not in line and "\r" not in line and "\x00" not in line
    fields = line.split(":")
    assert len(fields) == 7
    name, pw, uid, gid, gecos, home, shell = fields
    assert NAME_RE.match(name) and name != "root" and name == record.username
    assert pw == "x"
    assert uid == str(record.uid) and 1 <= record.uid <= MAX_ID
    assert gid == str(record.gid) and 1 <= record.gid <= MAX_ID
    assert gecos in (record.gecos, "")
    assert (home, shell) == (record.home, record.shell)
    for path in (home, shell):
        assert path.startswith("/") and ".." not in path.split("/") and "//" not in path


@settings(max_examples=600, deadline=None)
@given(_one_field_changed())
def test_fuzz_group_lines_are_well_formed_or_refused(case):
    field, record = case
    try:
        lines = passwd.render_group_lines(record)
    except InvalidRecord as error:
        _refused(field, error)
        return
    event(f"rendered ({field})")
    names = set()
    for line in lines:
        assert "\n" not in line and "\x00" not in line
        fields = line.split(":")
        assert len(fields) == 4
        name, pw, gid, members = fields
        assert NAME_RE.match(name) and name not in names
        names.add(name)
        assert pw == "x" and 1 <= int(gid) <= MAX_ID and gid == str(int(gid))
        assert members in ("", record.username)


@settings(max_examples=300, deadline=None)
@given(_one_field_changed())
def test_fuzz_merge_never_adds_a_malformed_or_extra_line(case):
    field, record = case
    image_pw, image_gr = image("docker-stacks")
    try:
        pw, gr = passwd.merge_files(record, image_pw, image_gr)
    except InvalidRecord as error:
        _refused(field, error)
        return
    event(f"merged ({field})")
    lines = pw.splitlines()
    assert pw.endswith("\n") and all(line.count(":") == 6 for line in lines)
    assert [line.split(":")[0] for line in lines].count(record.username) == 1
    assert len(lines) - 1 == sum(
        1 for line in image_pw.splitlines() if not line.startswith(record.username + ":")
    )
    assert gr.endswith("\n") and all(line.count(":") == 3 for line in gr.splitlines())


# ---------------------------------------------------------------------------
# the pod patch
# ---------------------------------------------------------------------------

IMAGE = "quay.io/jupyter/scipy-notebook:2025-01-01"


def test_init_container_patch():
    r = rec(home="/export/home/alice")
    patch = passwd_hook.build_passwd_patch(
        r, image=IMAGE, home="/home/alice", config=PasswdHookConfig()
    )
    assert patch.volumes == [
        {"name": "nbspawner-passwd", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    ]
    [init] = patch.init_containers
    assert init["name"] == "nbspawner-passwd" and init["image"] == IMAGE
    # the script is the fixed file, user data only in env
    assert init["command"] == ["/bin/sh", "-c", passwd.SCRIPT_TEXT, "nbspawner-passwd"]
    assert (
        passwd.SCRIPT_TEXT == (Path(passwd.__file__).parent / "data" / "passwd-init.sh").read_text()
    )
    assert "alice" not in " ".join(init["command"])
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {
        "PATH": passwd.INIT_PATH,
        "NB_PW_USER": "alice",
        "NB_PW_UID": "12345",
        "NB_PW_GID": "12345",
        "NB_PW_HOME": "/home/alice",
        "NB_PW_SHELL": "/bin/bash",
        "NB_PW_GECOS": "Alice Example",
        "NB_PW_GROUPS": "alice:12345,physics:23456,users:100",
        "NB_PW_OUT": "/nbspawner-passwd",
    }
    assert init["securityContext"] == {
        "runAsUser": 12345,
        "runAsGroup": 12345,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert init["resources"]["limits"] and init["resources"]["requests"]
    assert init["volumeMounts"] == [{"name": "nbspawner-passwd", "mountPath": "/nbspawner-passwd"}]
    assert init["workingDir"] == "/"
    assert init["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert patch.volume_mounts == [
        {
            "name": "nbspawner-passwd",
            "mountPath": "/etc/passwd",
            "subPath": "passwd",
            "readOnly": True,
        },
        {
            "name": "nbspawner-passwd",
            "mountPath": "/etc/group",
            "subPath": "group",
            "readOnly": True,
        },
    ]
    assert patch.env == {
        "USER": "alice",
        "LOGNAME": "alice",
        "NB_USER": "alice",
        "NB_UID": "12345",
        "NB_GID": "12345",
        "HOME": "/home/alice",
    }
    assert patch.secrets == []


def test_patch_refuses_a_bad_record():
    with pytest.raises(InvalidRecord):
        passwd_hook.build_passwd_patch(rec(uid=0), image=IMAGE, home="/home/alice")
    with pytest.raises(InvalidRecord):
        passwd_hook.build_passwd_patch(rec(), image=IMAGE, home="/home/../root")


def test_shell_none_keeps_the_directory_shell_and_gid_zero_switch():
    config = PasswdHookConfig(shell=None, allow_gid_zero=True)
    env = passwd_hook.script_env(rec(shell="/bin/zsh", gid=0), home="/home/alice", config=config)
    assert env["NB_PW_SHELL"] == "/bin/zsh" and env["NB_PW_ALLOW_GID0"] == "1"


def test_image_pull_policy_and_resources_are_configurable():
    config = PasswdHookConfig(
        image_pull_policy="IfNotPresent", init_resources={"limits": {"memory": "32Mi"}}
    )
    [init] = passwd_hook.build_passwd_patch(
        rec(), image=IMAGE, home="/h", config=config
    ).init_containers
    assert init["imagePullPolicy"] == "IfNotPresent"
    assert init["resources"] == {"limits": {"memory": "32Mi"}}


@pytest.mark.parametrize("needs", [{"needs_writable_run": True}, {"s6_overlay": True}])
def test_kubeflow_needs(needs):
    patch = passwd_hook.build_passwd_patch(
        rec(), image=IMAGE, home="/home/alice", image_needs=needs
    )
    assert {
        "name": "nbspawner-run",
        "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"},
    } in patch.volumes
    assert {"name": "nbspawner-run", "mountPath": "/run"} in patch.volume_mounts
    assert patch.env["S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"] == "1"
    assert "S6_READ_ONLY_ROOT" not in patch.env
    ro = passwd_hook.build_passwd_patch(
        rec(), image=IMAGE, home="/home/alice", image_needs={**needs, "read_only_root": True}
    )
    assert ro.env["S6_READ_ONLY_ROOT"] == "1"


def test_needs_read_from_an_object_like_the_catalog_security():
    class Security:
        needs_writable_run = True
        extra_supplemental_gids = (0,)
        has_shell = True

    assert passwd_hook.needs_dict(Security()) == {
        "has_shell": True,
        "needs_writable_run": True,
        "extra_supplemental_gids": (0,),
    }
    assert passwd_hook.supplemental_gids(rec(), None, Security()) == [23456, 100, 0]


def test_disabled_hook_adds_only_the_image_needs():
    patch = passwd_hook.build_passwd_patch(
        rec(), image=IMAGE, home="/h", config=PasswdHookConfig(enabled=False)
    )
    assert patch.init_containers == [] and patch.volumes == [] and patch.env == {}


def test_secret_mode():
    config = PasswdHookConfig(mode="secret")
    patch = passwd_hook.build_passwd_patch(
        rec(),
        image=IMAGE,
        home="/home/alice",
        config=config,
        pod_name="jupyter-alice",
        labels={"hub.jupyter.org/username": "alice"},
    )
    assert patch.init_containers == []
    [secret] = patch.secrets
    assert secret["metadata"]["name"] == "nbspawner-passwd-jupyter-alice"
    assert secret["metadata"]["labels"] == {
        "hub.jupyter.org/username": "alice",
        "app.kubernetes.io/managed-by": "nbspawner",
        "app.kubernetes.io/component": "passwd",
    }
    assert secret["immutable"] is True and secret["type"] == "Opaque"
    pw = base64.b64decode(secret["data"]["passwd"]).decode()
    gr = base64.b64decode(secret["data"]["group"]).decode()
    assert (pw, gr) == passwd.render_files(rec(), home="/home/alice", config=config)
    assert pw.splitlines() == [
        "alice:x:12345:12345:Alice Example:/home/alice:/bin/bash",
        "root:x:0:0:root:/root:/sbin/nologin",
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
        "jovyan:x:1000:100::/home/jovyan:/bin/bash",
    ]
    assert patch.volumes == [
        {
            "name": "nbspawner-passwd",
            "secret": {
                "secretName": "nbspawner-passwd-jupyter-alice",
                "defaultMode": 0o444,
                "optional": False,
                "items": [{"key": "passwd", "path": "passwd"}, {"key": "group", "path": "group"}],
            },
        }
    ]
    assert [m["subPath"] for m in patch.volume_mounts] == ["passwd", "group"]
    assert all(m["readOnly"] for m in patch.volume_mounts)
    assert patch.env["USER"] == "alice"


def test_images_without_shell_use_the_secret_mode():
    patch = passwd_hook.build_passwd_patch(
        rec(), image=IMAGE, home="/h", image_needs={"has_shell": False}, pod_name="jupyter-alice"
    )
    assert patch.init_containers == [] and len(patch.secrets) == 1
    with pytest.raises(ValueError):
        passwd_hook.build_passwd_patch(
            rec(), image=IMAGE, home="/h", image_needs={"has_shell": False}
        )


def test_secret_base_without_jovyan_and_custom_base():
    config = PasswdHookConfig(base_include_jovyan=False)
    pw, _ = passwd.render_files(rec(), config=config)
    assert "jovyan" not in pw
    pw, gr = passwd.render_files(
        rec(), "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin", "nonroot:x:65532:"
    )
    assert pw.splitlines()[1] == "nonroot:x:65532:65532::/home/nonroot:/sbin/nologin"
    assert gr.splitlines()[-1] == "nonroot:x:65532:"


def test_bad_mode_is_refused():
    with pytest.raises(ConfigError):
        PasswdHookConfig(mode="sudo")  # type: ignore[arg-type]
