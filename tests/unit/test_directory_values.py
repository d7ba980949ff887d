"""The helpers every backend uses to build the group fields and refuse impossible names."""

import pytest

from nbspawner.directory.values import group_fields, refuse_impossible_username, username_problem
from nbspawner.errors import UserNotFound
from nbspawner.ids import shown

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


DOT_SEGMENT = "is a path segment ('.' or '..') that a web server would resolve to another path"

IMPOSSIBLE = [
    ("", "is empty"),
    (".", DOT_SEGMENT),
    ("..", DOT_SEGMENT),
    # Unicode spellings a normalising server reads as "." or ".." (NFKC)
    ("\uff0e\uff0e", DOT_SEGMENT),
    ("\u2025", DOT_SEGMENT),
    ("\u2024", DOT_SEGMENT),
    (".\ufe52", DOT_SEGMENT),
    ("x" * 257, "is longer than 256 characters (257)"),
    ("\u00e9" * 300, "is longer than 256 characters (300)"),
    ("a\x00b", "contains a control character (U+0000)"),
    ("alice\n", "contains a control character (U+000A)"),
    ("\rbob", "contains a control character (U+000D)"),
    ("al\tice", "contains a control character (U+0009)"),
    ("\x1b[31malice", "contains a control character (U+001B)"),
    ("alice\x7f", "contains a control character (U+007F)"),
    ("alice\x85", "contains a control character (U+0085)"),
    ("alice\x9f", "contains a control character (U+009F)"),
    ("alice\u2028bob", "contains a line separator (U+2028)"),
    ("alice\u2029", "contains a line separator (U+2029)"),
    ("alice\ud800", "contains an unpaired surrogate (U+D800)"),
    ("\udfffalice", "contains an unpaired surrogate (U+DFFF)"),
    (None, "is not a string (a NoneType)"),
    (42, "is not a string (a int)"),
    (b"alice", "is not a string (a bytes)"),
]


@pytest.mark.parametrize(("name", "problem"), IMPOSSIBLE, ids=repr)
def test_impossible_usernames_are_refused_with_the_name_quoted(name, problem):
    assert username_problem(name) == problem
    with pytest.raises(UserNotFound) as info:
        refuse_impossible_username(name, "ldap")
    message = info.value.log_message
    assert message == f"ldap: username {shown(name)} {problem}; it was not looked up"
    # quoted and cut: one line whatever the name holds, and never the raw name
    assert message.isprintable()
    if isinstance(name, str) and not name.isprintable():
        assert name not in message
    assert info.value.status == 403 and info.value.reason == "not_found"


@pytest.mark.parametrize(
    "name",
    [
        "alice",
        "a*",
        "José",
        "x" * 256,
        "a b",
        "(",
        "\\",
        "...",
        ".alice",
        "alice.",
        "a..",
        "../alice",
        "%2e%2e",
        "\u00a0",  # no-break space: printable, not a control character
        "\u202e",  # a format character: quoted (escaped) wherever it is shown
        "\U0001f600",
    ],
)
def test_possible_usernames_pass(name):
    assert username_problem(name) is None
    refuse_impossible_username(name, "ldap")


def test_the_length_limit_is_a_parameter():
    assert username_problem("x" * 33, max_length=32) == "is longer than 32 characters (33)"
    assert username_problem("x" * 32, max_length=32) is None
