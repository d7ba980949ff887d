"""Identity policy: the checks every directory record passes before a pod is built.

Refuse, never "clean up": a record that fails any rule is refused with an
:class:`~nbspawner.errors.InvalidRecord` naming the field and the kind of problem.
The same character rules are enforced a second time inside the passwd init script
(``nbspawner/data/passwd-init.sh``), so the two must stay in sync; the tests check both.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field

from .errors import InvalidRecord
from .record import UserRecord

#: user and group names that can appear in a passwd/group line
NAME_RE = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,31}\Z")
#: absolute paths for home and shell: a conservative character set, no empty/dot segments
PATH_RE = re.compile(r"\A/[A-Za-z0-9_./-]*\Z")
#: the GECOS (full name) field
GECOS_RE = re.compile(r"\A[A-Za-z0-9_. '-]{0,64}\Z")

#: the largest uid/gid Linux accepts (2**32 - 1 is the "invalid" id, -1)
MAX_ID = 2**32 - 2
#: ids file servers and kernels treat specially, refused as any user's uid or gid whatever the
#: range settings say: 65534 nobody/nogroup (NFS maps unknown and squashed users to it), 65535
#: (the 16-bit -1), 4294967294 (the 32-bit -2, nfsnobody on old systems), 4294967295 (-1,
#: "no id" to setresuid/chown)
SPECIAL_IDS = frozenset({65534, 65535, 2**32 - 2, 2**32 - 1})
#: default upper bound of NBSpawner.max_uid / max_gid
DEFAULT_MAX_ID = 2**32 - 3
RESERVED_NAMES = frozenset({"root"})
#: the kernel's limits for a path and for one of its components (PATH_MAX - 1, NAME_MAX)
MAX_PATH_LEN = 4095
MAX_NAME_LEN = 255
#: default of NBSpawner.max_groups: the passwd hook hands the groups to its init container in
#: one environment variable, and the kernel refuses one longer than 128 KiB (MAX_ARG_STRLEN);
#: 2000 groups of the longest POSIX name and id take 88 KiB
DEFAULT_MAX_GROUPS = 2000
#: the most NBSpawner.max_groups may be: 2900 groups of 44 bytes stay under 128 KiB
MAX_GROUPS_LIMIT = 2900


def check_name(value: str, field_name: str, source: str = "") -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise InvalidRecord(
            f"{source or 'record'}: {field_name} is not a valid POSIX name "
            "(allowed: a letter or _ then up to 31 of A-Z a-z 0-9 _ . -)",
            field=field_name,
            kind="not a valid name",
            source=source,
        )
    if value in RESERVED_NAMES:
        raise InvalidRecord(
            f"{source or 'record'}: {field_name} is the reserved name 'root'",
            field=field_name,
            kind="reserved name",
            source=source,
        )
    return value


def check_path(value: str, field_name: str, source: str = "") -> str:
    """An absolute, already-normalised path: no ``//``, ``.`` or ``..`` segments, safe characters."""
    ok = isinstance(value, str) and bool(PATH_RE.match(value))
    if ok:
        segments = value.split("/")[1:]
        # "/" alone is allowed (segments == [""]); otherwise no empty, "." or ".." segment
        if value != "/" and any(s in ("", ".", "..") for s in segments):
            ok = False
    if not ok:
        raise InvalidRecord(
            f"{source or 'record'}: {field_name} is not a normalised absolute path "
            "(allowed: /, A-Z a-z 0-9 _ . -, no empty, '.' or '..' segments)",
            field=field_name,
            kind="not a normalised absolute path",
            source=source,
        )
    longest = max((len(s) for s in value.split("/")), default=0)
    if len(value) > MAX_PATH_LEN or longest > MAX_NAME_LEN:
        raise InvalidRecord(
            f"{source or 'record'}: {field_name} is {len(value)} characters long with a "
            f"component of {longest}; a path may have at most {MAX_PATH_LEN} characters and "
            f"{MAX_NAME_LEN} per component (PATH_MAX, NAME_MAX), or the mount fails",
            field=field_name,
            kind="too long",
            source=source,
        )
    return value


def path_is_under(path: str, root: str) -> bool:
    """True when normalised ``path`` equals ``root`` or lies below it."""
    root = posixpath.normpath(root)
    if root == "/":
        return True
    return path == root or path.startswith(root + "/")


@dataclass(frozen=True)
class IdentityPolicy:
    """What a record must satisfy. Built from NBSpawner's traits."""

    min_uid: int = 1000
    max_uid: int = DEFAULT_MAX_ID
    min_gid: int = 1
    max_gid: int = DEFAULT_MAX_ID
    allow_uid_zero: bool = False
    allow_gid_zero: bool = False
    #: home must lie under one of these (empty: any normalised absolute path)
    home_roots: tuple[str, ...] = field(default_factory=tuple)
    #: the most POSIX groups (and supplementary gids) a record may have
    max_groups: int = DEFAULT_MAX_GROUPS


def validate_record(
    record: UserRecord, policy: IdentityPolicy, username: str | None = None
) -> UserRecord:
    """Return ``record`` unchanged if it passes ``policy``; raise InvalidRecord otherwise.

    ``username`` is the hub's name for the user: the record must be for that user.
    """
    src = record.source or "directory"
    if username is not None and record.username != username:
        raise InvalidRecord(
            f"{src}: record username does not match the hub user",
            field="username",
            kind="mismatch",
            source=src,
        )
    check_name(record.username, "username", src)

    for field_name, value, min_value, max_value, allow_zero in (
        ("uid", record.uid, policy.min_uid, policy.max_uid, policy.allow_uid_zero),
        ("gid", record.gid, policy.min_gid, policy.max_gid, policy.allow_gid_zero),
    ):
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidRecord(
                f"{src}: {field_name} is not an integer",
                field=field_name,
                kind="not an integer",
                source=src,
            )
        if value == 0 and allow_zero:
            continue
        if value == 0:
            raise InvalidRecord(
                f"{src}: {field_name} is 0 (root), which is refused",
                field=field_name,
                kind="root id",
                source=src,
                reason="root_id",
            )
        if value in SPECIAL_IDS:
            raise InvalidRecord(
                f"{src}: {field_name} {value} is an id file servers treat specially "
                "(nobody, or -1/-2 as an unsigned number), which is refused",
                field=field_name,
                kind="special id",
                source=src,
                reason="id_out_of_range",
            )
        if value < min_value or value > max_value:
            raise InvalidRecord(
                f"{src}: {field_name} {value} is outside the allowed range {min_value}..{max_value} "
                f"(NBSpawner.min_{field_name}, NBSpawner.max_{field_name})",
                field=field_name,
                kind="out of range",
                source=src,
                reason="id_out_of_range",
            )

    for field_name, items in (
        ("posix_groups", record.posix_groups),
        ("supplemental_gids", record.supplemental_gids),
    ):
        if len(items) > policy.max_groups:
            raise InvalidRecord(
                f"{src}: the user has {len(items)} {field_name}, more than "
                f"NBSpawner.max_groups ({policy.max_groups}); the pod could not start with "
                "them all",
                field=field_name,
                kind="too many groups",
                source=src,
            )
    for gid in record.supplemental_gids:
        if not isinstance(gid, int) or isinstance(gid, bool) or gid < 0 or gid > MAX_ID:
            raise InvalidRecord(
                f"{src}: a supplemental gid is out of range",
                field="supplemental_gids",
                kind="out of range",
                source=src,
            )
        if gid in SPECIAL_IDS:
            raise InvalidRecord(
                f"{src}: supplemental gid {gid} is an id file servers treat specially, "
                "which is refused",
                field="supplemental_gids",
                kind="special id",
                source=src,
            )
        if gid == 0 and not policy.allow_gid_zero:
            raise InvalidRecord(
                f"{src}: supplemental gid 0 (root group) is refused",
                field="supplemental_gids",
                kind="root id",
                source=src,
                reason="root_id",
            )
    for name in record.groups:
        if (
            not isinstance(name, str)
            or not name
            or len(name) > 256
            or any(c in name for c in "\n\r\x00")
        ):
            raise InvalidRecord(
                f"{src}: a group name is empty, too long or contains control characters",
                field="groups",
                kind="bad group name",
                source=src,
            )
    for name, gid in record.posix_groups:
        check_name(name, "posix_groups", src)
        if (
            not isinstance(gid, int)
            or isinstance(gid, bool)
            or gid < 0
            or gid > MAX_ID
            or gid in SPECIAL_IDS
            or (gid == 0 and not policy.allow_gid_zero)
        ):
            raise InvalidRecord(
                f"{src}: a posix group gid is out of range",
                field="posix_groups",
                kind="out of range",
                source=src,
            )

    check_path(record.home, "home", src)
    check_path(record.shell, "shell", src)
    # GECOS is cosmetic (no lookup or permission depends on it): a full name outside GECOS_RE
    # (an accent, a comma) is *omitted* from the passwd line by nbspawner.passwd rather than
    # refusing the user. It is only required to be a string here.
    if not isinstance(record.gecos, str):
        raise InvalidRecord(
            f"{src}: gecos is not a string", field="gecos", kind="not a string", source=src
        )
    if policy.home_roots and not any(path_is_under(record.home, r) for r in policy.home_roots):
        raise InvalidRecord(
            f"{src}: home is outside the allowed roots (NBSpawner.home_roots)",
            field="home",
            kind="outside allowed roots",
            source=src,
            reason="home_outside_roots",
        )
    return record
