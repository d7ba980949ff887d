"""StaticDirectory: the YAML file, inline users, reloading and keeping the last good data."""

import logging
import os
import textwrap

import pytest

from nbspawner.directory.static import StaticDirectory
from nbspawner.errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound
from nbspawner.record import UserRecord

GOOD = textwrap.dedent(
    """\
    groups:
      hpc: {gid: 2000}
      physics: {gid: 3001, members: [alice]}
      gpu-users: 3002
    users:
      alice: {uid: 2001, gid: 2000, home: /home/alice, groups: [gpu-users], gecos: Alice L}
      bob: {uid: 2002, gid: 2000, home: /home/bob, shell: /bin/zsh}
      mallory: {uid: abc, gid: 2000, home: /home/mallory}
    """
)

ALICE = UserRecord(
    username="alice",
    uid=2001,
    gid=2000,
    home="/home/alice",
    groups=("gpu-users", "hpc", "physics"),
    supplemental_gids=(3001, 3002),
    posix_groups=(("gpu-users", 3002), ("hpc", 2000), ("physics", 3001)),
    gecos="Alice L",
    shell="/bin/bash",
)


def write(path, text, bump=0):
    path.write_text(text)
    # make the change visible even on filesystems with coarse timestamps
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + bump * 1_000_000_000))


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "users.yaml"
    write(path, GOOD)
    return path


async def test_file_user_record(users_file):
    directory = StaticDirectory(path=str(users_file))
    record = await directory.lookup("alice")
    assert record == ALICE
    assert record.source == "static"
    bob = await directory.lookup("bob")
    assert (bob.shell, bob.groups, bob.supplemental_gids) == ("/bin/zsh", ("hpc",), ())


async def test_unknown_user(users_file):
    with pytest.raises(UserNotFound):
        await StaticDirectory(path=str(users_file)).lookup("nobody")


async def test_malformed_user_is_refused_alone(users_file):
    directory = StaticDirectory(path=str(users_file))
    with pytest.raises(InvalidRecord) as info:
        await directory.lookup("mallory")
    assert info.value.field == "uid"
    assert info.value.log_message == (
        "static: uid: 'abc' is not a plain decimal integer "
        f"(in StaticDirectory.path ({users_file}), users.'mallory')"
    )
    assert (await directory.lookup("alice")).uid == 2001


async def test_reload_on_change(users_file, caplog):
    directory = StaticDirectory(path=str(users_file))
    assert (await directory.lookup("alice")).uid == 2001
    write(users_file, GOOD.replace("uid: 2001", "uid: 2501"), bump=1)
    with caplog.at_level(logging.INFO):
        assert (await directory.lookup("alice")).uid == 2501
    assert any("reloaded" in r.getMessage() for r in caplog.records)


async def test_bad_edit_keeps_last_good_data_and_logs_why(users_file, caplog):
    directory = StaticDirectory(path=str(users_file))
    assert (await directory.lookup("alice")).uid == 2001
    write(users_file, GOOD.replace("users:", "users: [oops"), bump=1)
    with caplog.at_level(logging.WARNING):
        assert (await directory.lookup("alice")).uid == 2001
        assert (await directory.lookup("bob")).uid == 2002
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # logged once, not at every lookup
    assert "not valid YAML" in warnings[0] and "keeping the last good data" in warnings[0]
    # the fixed file is picked up again
    write(users_file, GOOD.replace("uid: 2002", "uid: 2502"), bump=2)
    assert (await directory.lookup("bob")).uid == 2502


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("users: [alice]\n", "'users' must be a mapping"),
        ("users: {alice: 3}\n", "users.'alice' must be a mapping"),
        ("groups: {physics: {gid: lots}}\n", "groups.'physics'.gid: not an integer"),
        ("groups: {physics: {gid: 1, members: alice}}\n", "members must be a list"),
        ("userz: {}\n", "unknown top-level keys"),
        ("- a\n- b\n", "must contain a mapping"),
    ],
)
async def test_structural_errors_keep_last_good_data(users_file, text, message, caplog):
    directory = StaticDirectory(path=str(users_file))
    await directory.lookup("alice")
    write(users_file, text, bump=1)
    with caplog.at_level(logging.WARNING):
        assert (await directory.lookup("alice")).uid == 2001
    assert any(message in r.getMessage() for r in caplog.records)


async def test_bad_file_without_good_data_is_a_directory_error(tmp_path, caplog):
    path = tmp_path / "users.yaml"
    path.write_text("users: [")
    directory = StaticDirectory(path=str(path))
    with pytest.raises(DirectoryError) as info:
        await directory.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert "StaticDirectory.path" in info.value.log_message


async def test_missing_file(tmp_path):
    directory = StaticDirectory(path=str(tmp_path / "nope.yaml"))
    with pytest.raises(DirectoryError, match="does not exist"):
        await directory.lookup("alice")


async def test_deleted_file_keeps_last_good_data(users_file):
    directory = StaticDirectory(path=str(users_file))
    await directory.lookup("alice")
    users_file.unlink()
    assert (await directory.lookup("alice")).uid == 2001


async def test_inline_users_and_file_override():
    directory = StaticDirectory(
        users={"carol": {"uid": 2003, "gid": 2000, "home": "/home/carol"}},
        groups={"hpc": {"gid": 2000}},
    )
    carol = await directory.lookup("carol")
    assert carol.posix_groups == (("hpc", 2000),)
    assert "inline" in await directory.check()


async def test_file_overrides_inline_user(users_file):
    directory = StaticDirectory(
        path=str(users_file),
        users={
            "alice": {"uid": 9999, "gid": 9999, "home": "/x"},
            "dave": {"uid": 2004, "gid": 2000, "home": "/home/dave", "groups": ["physics"]},
        },
    )
    assert (await directory.lookup("alice")).uid == 2001
    dave = await directory.lookup("dave")  # inline user, groups table from the file
    assert dave.posix_groups == (("hpc", 2000), ("physics", 3001))
    # check() reads every entry as a spawn would: the file's broken mallory is named
    with pytest.raises(DirectoryError) as info:
        await directory.check()
    assert info.value.log_message == (
        "static: 1 of 4 users cannot be used: static: uid: 'abc' is not a plain decimal integer "
        f"(in StaticDirectory.path ({users_file}), users.'mallory')"
    )


async def test_inline_structure_error_is_a_config_error():
    with pytest.raises(ConfigError):
        await StaticDirectory(users={"alice": "x"}).lookup("alice")


async def test_explicit_supplemental_gids(tmp_path):
    path = tmp_path / "u.yaml"
    path.write_text(
        "users:\n  eve: {uid: 2010, gid: 2000, home: /home/eve, supplemental_gids: [7, 5]}\n"
    )
    assert (await StaticDirectory(path=str(path)).lookup("eve")).supplemental_gids == (5, 7)


def test_traits_are_configurable_from_config():
    from traitlets.config import Config

    c = Config()
    c.StaticDirectory.path = "/etc/nbspawner/users.yaml"
    assert StaticDirectory(config=c).path == "/etc/nbspawner/users.yaml"
