"""The helpers every backend uses to build the group fields and refuse impossible names."""

import pytest

from nbspawner.directory.base import group_fields, refuse_impossible_username
from nbspawner.errors import UserNotFound

GIDS = {"hpc": 2000, "physics": 3001, "gpu-users": 3002}


@pytest.mark.parametrize(
    ("gid", "groups", "supplemental", "expected"),
    [
        # the primary group's name is added from the gid map
        (
            2000,
            ["physics", "gpu-users"],
            None,
            {
                "groups": ("gpu-users", "hpc", "physics"),
                "supplemental_gids": (3001, 3002),
                "posix_groups": (("gpu-users", 3002), ("hpc", 2000), ("physics", 3001)),
            },
        ),
        # unknown names stay names only; duplicates collapse
        (
            2000,
            ["web", "physics", "physics"],
            None,
            {
                "groups": ("hpc", "physics", "web"),
                "supplemental_gids": (3001,),
                "posix_groups": (("hpc", 2000), ("physics", 3001)),
            },
        ),
        # an explicit supplemental list wins, sorted and de-duplicated
        (
            4242,
            ["physics"],
            [9, 7, 9],
            {
                "groups": ("physics",),
                "supplemental_gids": (7, 9),
                "posix_groups": (("physics", 3001),),
            },
        ),
        (4242, [], None, {"groups": (), "supplemental_gids": (), "posix_groups": ()}),
    ],
)
def test_group_fields(gid, groups, supplemental, expected):
    assert group_fields(gid, groups, GIDS, supplemental) == expected


@pytest.mark.parametrize("name", ["", "a\x00b", "alice\n", "\rbob", "x" * 257, None, 42])
def test_impossible_usernames_are_refused_without_quoting_them(name):
    with pytest.raises(UserNotFound) as info:
        refuse_impossible_username(name, "ldap")
    if isinstance(name, str) and name:
        assert name not in info.value.log_message


@pytest.mark.parametrize("name", ["alice", "a*", "José", "x" * 256, "a b", "(", "\\"])
def test_possible_usernames_pass(name):
    refuse_impossible_username(name, "ldap")
