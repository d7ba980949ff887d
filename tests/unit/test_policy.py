"""Identity policy: every record is validated before a pod is built; refusals name the field."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nbspawner.errors import InvalidRecord
from nbspawner.policy import NAME_RE, IdentityPolicy, check_path, validate_record
from nbspawner.record import UserRecord

GOOD = UserRecord(
    username="alice",
    uid=2001,
    gid=3001,
    home="/export/home/alice",
    groups=("physics",),
    supplemental_gids=(3003,),
    posix_groups=(("physics", 3001),),
    gecos="Alice Liddell",
    shell="/bin/bash",
    source="static",
)
POLICY = IdentityPolicy(home_roots=("/export/home",))


def with_(**changes):
    from dataclasses import replace

    return replace(GOOD, **changes)


def test_good_record_passes_unchanged():
    assert validate_record(GOOD, POLICY, username="alice") is GOOD


@pytest.mark.parametrize(
    "changes, field, kind",
    [
        ({"uid": 0}, "uid", "root id"),
        ({"gid": 0}, "gid", "root id"),
        ({"uid": 999}, "uid", "out of range"),
        ({"uid": 2**32 - 1}, "uid", "special id"),
        ({"uid": 2**32 - 2}, "uid", "special id"),
        ({"uid": 65534}, "uid", "special id"),
        ({"uid": 65535}, "uid", "special id"),
        ({"gid": 65534}, "gid", "special id"),
        ({"gid": 2**32 - 1}, "gid", "special id"),
        ({"supplemental_gids": (3001, 65534)}, "supplemental_gids", "special id"),
        ({"posix_groups": (("nogroup", 65534),)}, "posix_groups", "out of range"),
        ({"uid": -5}, "uid", "out of range"),
        ({"uid": True}, "uid", "not an integer"),
        ({"uid": "2001"}, "uid", "not an integer"),
        ({"supplemental_gids": (0,)}, "supplemental_gids", "root id"),
        ({"supplemental_gids": (2**40,)}, "supplemental_gids", "out of range"),
        ({"username": "root"}, "username", "reserved name"),
        ({"username": "al:ice"}, "username", "not a valid name"),
        ({"username": "alice\n"}, "username", "not a valid name"),
        ({"username": "1alice"}, "username", "not a valid name"),
        ({"username": "a" * 33}, "username", "not a valid name"),
        ({"home": "relative/home"}, "home", "not a normalised absolute path"),
        ({"home": "/export/home/../../etc"}, "home", "not a normalised absolute path"),
        ({"home": "/export/home/./alice"}, "home", "not a normalised absolute path"),
        ({"home": "/export//home/alice"}, "home", "not a normalised absolute path"),
        ({"home": "/export/home/alice/"}, "home", "not a normalised absolute path"),
        ({"home": "/export/home/al ice"}, "home", "not a normalised absolute path"),
        ({"home": "/etc/evil"}, "home", "outside allowed roots"),
        ({"home": "/export/homework/alice"}, "home", "outside allowed roots"),
        ({"shell": "/bin/sh;rm"}, "shell", "not a normalised absolute path"),
        ({"gecos": 42}, "gecos", "not a string"),
        ({"groups": ("ok", "bad\nname")}, "groups", "bad group name"),
        ({"posix_groups": (("ph:ysics", 3001),)}, "posix_groups", "not a valid name"),
    ],
)
def test_refusals_name_field_and_kind(changes, field, kind):
    with pytest.raises(InvalidRecord) as info:
        validate_record(with_(**changes), POLICY, username=changes.get("username", "alice"))
    assert info.value.field == field
    assert info.value.kind == kind
    # the admin message never repeats the (possibly hostile) value itself
    for value in changes.values():
        if isinstance(value, str) and len(value) > 4:
            assert value not in info.value.log_message


def test_username_must_match_hub_user():
    with pytest.raises(InvalidRecord) as info:
        validate_record(GOOD, POLICY, username="bob")
    assert info.value.field == "username" and info.value.kind == "mismatch"


def test_gid_zero_only_when_allowed():
    rec = with_(gid=0, supplemental_gids=(0,))
    with pytest.raises(InvalidRecord):
        validate_record(rec, POLICY)
    assert validate_record(rec, IdentityPolicy(allow_gid_zero=True, home_roots=("/export/home",)))


def test_min_uid_configurable():
    rec = with_(uid=500)
    with pytest.raises(InvalidRecord):
        validate_record(rec, POLICY)
    assert validate_record(rec, IdentityPolicy(min_uid=500))


def test_no_roots_means_any_normalised_path():
    assert validate_record(with_(home="/srv/x"), IdentityPolicy())


@given(st.text(max_size=40))
def test_accepted_names_are_passwd_safe(name):
    if NAME_RE.match(name):
        assert not any(c in name for c in ":\n\r\x00/ ,")


@given(st.text(alphabet="/.a-\x00\n:", max_size=20))
def test_accepted_paths_have_no_dot_segments(path):
    try:
        check_path(path, "home")
    except InvalidRecord:
        return
    segs = path.split("/")[1:]
    assert path.startswith("/")
    assert path == "/" or all(s not in ("", ".", "..") for s in segs)
    assert not any(c in path for c in "\x00\n:")


def test_unsafe_gecos_is_accepted_here_and_omitted_from_passwd():
    """An accent or a colon in the full name must not block the user; passwd drops the field."""
    from nbspawner.passwd import render_passwd_line

    for gecos in ("José Müller", "Alice:0:0", "Alice\nroot::0:0::/:/bin/sh"):
        rec = validate_record(with_(gecos=gecos), POLICY, username="alice")
        line = render_passwd_line(rec, home="/home/alice")
        assert line.count("\n") <= 1 and line.rstrip("\n").split(":")[4] == ""
        assert line.rstrip("\n").split(":") == [
            "alice",
            "x",
            "2001",
            "3001",
            "",
            "/home/alice",
            "/bin/bash",
        ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (
            "uid",
            60001,
            "test: uid 60001 is outside the allowed range 1000..60000 "
            "(NBSpawner.min_uid, NBSpawner.max_uid)",
        ),
        (
            "gid",
            70000,
            "test: gid 70000 is outside the allowed range 1..65000 "
            "(NBSpawner.min_gid, NBSpawner.max_gid)",
        ),
    ],
)
def test_max_uid_and_max_gid_bound_the_range(field, value, message):
    policy = IdentityPolicy(min_uid=1000, max_uid=60000, max_gid=65000)
    assert validate_record(with_(uid=60000, gid=65000), policy) is not None
    with pytest.raises(InvalidRecord) as info:
        validate_record(with_(source="test", **{field: value}), policy)
    assert (info.value.field, info.value.kind) == (field, "out of range")
    assert info.value.log_message == message


# -- inputs too big for the pod (issue 15, class 7) ------------------------------------------


def _groups(n: int) -> tuple[tuple[str, int], ...]:
    """``n`` groups with the longest POSIX names (32 characters) and 10-digit gids."""
    return tuple((f"g{i:031d}", 4_000_000_000 + i) for i in range(n))


@pytest.mark.parametrize(
    "n,refused", [(1, False), (2000, False), (2001, True), (7500, True)], ids=str
)
@pytest.mark.parametrize("field", ["posix_groups", "supplemental_gids"])
def test_too_many_groups_are_refused_at_lookup(n, refused, field):
    groups = _groups(n)
    record = with_(
        posix_groups=groups if field == "posix_groups" else (),
        supplemental_gids=tuple(g for _, g in groups) if field == "supplemental_gids" else (),
    )
    if not refused:
        assert validate_record(record, POLICY) is record
        return
    with pytest.raises(InvalidRecord) as info:
        validate_record(record, POLICY)
    assert info.value.log_message == (
        f"static: the user has {n} {field}, more than NBSpawner.max_groups (2000); "
        "the pod could not start with them all"
    )
    assert (info.value.field, info.value.kind) == (field, "too many groups")


@pytest.mark.parametrize("n", [2000, 2900])
def test_the_group_limit_fits_the_kernels_environment_limit(n):
    """The real kernel runs a program with the passwd hook's environment for max_groups groups
    (the limit is sound), and refuses one with 7500 (the limit is needed)."""
    import subprocess

    from nbspawner import passwd_hook

    def run(count):
        record = with_(posix_groups=_groups(count), supplemental_gids=())
        env = passwd_hook.script_env(record, home="/export/home/alice")
        return subprocess.run(["/usr/bin/env"], env=env, capture_output=True)

    assert run(n).returncode == 0
    with pytest.raises(OSError) as info:
        run(7500)
    assert info.value.errno == 7  # E2BIG: "Argument list too long"


@pytest.mark.parametrize(
    "home,expected",
    [
        ("/export/home/" + "a" * 255, None),
        (
            "/export/home/" + "a" * 256,
            "static: home is 269 characters long with a component of 256; a path may have at "
            "most 4095 characters and 255 per component (PATH_MAX, NAME_MAX), or the mount fails",
        ),
        ("/export/home/" + "/".join(["b" * 200] * 20), None),  # 4032 characters
        ("/export/home/" + "/".join(["b" * 200] * 21), "home is 4233 characters long"),
    ],
    ids=["name-max", "name-max+1", "under-path-max", "over-path-max"],
)
def test_homes_too_long_for_the_kernel_are_refused_at_lookup(home, expected):
    record = with_(home=home)
    if expected is None:
        assert validate_record(record, POLICY) is record
        return
    with pytest.raises(InvalidRecord) as info:
        validate_record(record, POLICY)
    assert expected in info.value.log_message
    assert info.value.kind == "too long"
