"""ChainDirectory: first-that-knows, fail closed when a backend is down, and field merging."""

import pytest
from traitlets.config import Config

from nbspawner.directory.base import Directory
from nbspawner.directory.chain import ChainDirectory, load_directory_class
from nbspawner.directory.static import StaticDirectory
from nbspawner.errors import ConfigError, DirectoryError, InvalidRecord, UserNotFound

PRIMARY = StaticDirectory(
    users={
        "alice": {"uid": 2001, "gid": 2000, "home": "/home/alice", "groups": ["physics"]},
        "mallory": {"uid": "abc", "gid": 2000, "home": "/home/mallory"},
    },
    groups={"hpc": 2000, "physics": 3001},
)
SECONDARY = StaticDirectory(
    users={
        "alice": {"uid": 9001, "gid": 9000, "home": "/nfs/alice", "groups": ["other"]},
        "bob": {"uid": 2002, "gid": 2000, "home": "/home/bob"},
        "mallory": {"uid": 2009, "gid": 2000, "home": "/home/mallory"},
    },
    groups={"other": 4000},
)


class DownDirectory(Directory):
    name = "down"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.calls = 0
        self.closed = False

    async def lookup(self, username, auth_state=None):
        self.calls += 1
        raise DirectoryError("down: connection refused")

    async def check(self):
        raise DirectoryError("down: connection refused")

    async def close(self):
        self.closed = True


async def test_first_backend_that_knows_the_user_answers():
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY])
    alice = await chain.lookup("alice")
    assert (alice.uid, alice.source) == (2001, "static")
    bob = await chain.lookup("bob")
    assert bob.uid == 2002


async def test_unknown_everywhere():
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY])
    with pytest.raises(UserNotFound) as info:
        await chain.lookup("nobody")
    assert "static, static" in info.value.log_message


async def test_a_backend_that_is_down_fails_closed():
    down = DownDirectory()
    chain = ChainDirectory(backends=[down, SECONDARY])
    # the secondary knows "alice" with another uid: it must not be used while the primary is down
    with pytest.raises(DirectoryError) as info:
        await chain.lookup("alice")
    assert not isinstance(info.value, UserNotFound)
    assert down.calls == 1


async def test_fall_through_on_error_when_configured(caplog):
    chain = ChainDirectory(backends=[DownDirectory(), SECONDARY], fall_through_on_error=True)
    assert (await chain.lookup("alice")).uid == 9001
    assert any("fall_through_on_error" in r.getMessage() for r in caplog.records)
    with pytest.raises(UserNotFound, match="down \\(unreachable\\)"):
        await chain.lookup("nobody")


async def test_invalid_record_stops_the_chain():
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY], fall_through_on_error=True)
    with pytest.raises(InvalidRecord) as info:
        await chain.lookup("mallory")
    assert info.value.field == "uid"


async def test_merge_takes_fields_from_other_backends():
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY], mode="merge", fields={"home": 1})
    alice = await chain.lookup("alice")
    assert (alice.uid, alice.gid, alice.home) == (2001, 2000, "/nfs/alice")
    assert alice.groups == ("hpc", "physics")
    assert alice.source == "static"

    chain = ChainDirectory(
        backends=[PRIMARY, SECONDARY], mode="merge", fields={"groups": 1, "uid": 0}
    )
    alice = await chain.lookup("alice")
    assert (alice.uid, alice.groups, alice.posix_groups) == (2001, ("other",), (("other", 4000),))


async def test_merge_needs_every_backend():
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY], mode="merge", fields={"home": 1})
    with pytest.raises(UserNotFound):
        await chain.lookup("bob")  # not in the primary
    chain = ChainDirectory(backends=[PRIMARY, DownDirectory()], mode="merge", fields={"home": 1})
    with pytest.raises(DirectoryError):
        await chain.lookup("alice")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"uidNumber": 1}, "unknown field"),
        ({"home": 2}, "must be an index"),
        ({"home": "1"}, "index"),
    ],
)
async def test_merge_config_errors(fields, message):
    chain = ChainDirectory(backends=[PRIMARY, SECONDARY], mode="merge", fields=fields)
    with pytest.raises(ConfigError, match=message):
        await chain.lookup("alice")


async def test_backends_from_entry_point_names_and_config():
    c = Config()
    c.ChainDirectory.directories = ["static", "nbspawner.directory.static:StaticDirectory"]
    c.StaticDirectory.users = {"carol": {"uid": 2003, "gid": 2000, "home": "/home/carol"}}
    chain = ChainDirectory(config=c)
    assert [type(b) for b in chain.backends] == [StaticDirectory, StaticDirectory]
    assert (await chain.lookup("carol")).uid == 2003
    assert (await chain.check()).startswith("chain (first): static: 1 inline users")


def test_load_directory_class():
    assert load_directory_class("static") is StaticDirectory
    assert load_directory_class(StaticDirectory) is StaticDirectory
    names = {
        "ldap": "LDAPDirectory",
        "oidc": "OIDCClaimsDirectory",
        "ldapauth": "LDAPAuthStateDirectory",
        "http": "HTTPDirectory",
        "chain": "ChainDirectory",
    }
    for entry_point, cls in names.items():
        assert load_directory_class(entry_point).__name__ == cls
    with pytest.raises(ConfigError, match="installed: .*ldap"):
        load_directory_class("nis")
    with pytest.raises(ConfigError, match="cannot import"):
        load_directory_class("nowhere:Nothing")
    with pytest.raises(ConfigError, match="not a nbspawner Directory"):
        load_directory_class(dict)


def test_empty_chain_is_a_config_error():
    with pytest.raises(ConfigError):
        ChainDirectory().backends  # noqa: B018


async def test_close_closes_every_backend():
    down = DownDirectory()
    await ChainDirectory(backends=[PRIMARY, down]).close()
    assert down.closed
