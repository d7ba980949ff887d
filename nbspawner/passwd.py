"""The passwd hook: a name for the user's uid inside the pod ("I have no name!" fixed safely).

Pure functions: a :class:`~nbspawner.record.UserRecord` in, passwd/group text out (the pod
side, init container or Secret, is :mod:`nbspawner.passwd_hook`).

Validation: refuse, never clean
    Names, ids and paths are checked with :mod:`nbspawner.policy`'s rules
    (:func:`~nbspawner.policy.check_name`, :func:`~nbspawner.policy.check_path`); a record
    that fails raises :class:`~nbspawner.errors.InvalidRecord`. uid 0 is always refused;
    gid 0 only with ``allow_gid_zero``. Paths are also limited to 4095 characters (PATH_MAX),
    like the script. **GECOS is the one exception**: a full name outside
    :data:`~nbspawner.policy.GECOS_RE` (``José``, ``Łukasz``, a comma) is *omitted* from the
    line and the omission is logged at debug level, without the value. GECOS is cosmetic: no
    lookup, permission or identity depends on it, so dropping it changes no identity field,
    while refusing would stop a user from working because of an accent in their name.
    (:func:`nbspawner.policy.validate_record` still refuses such a GECOS; the spawner decides
    which of the two it applies first.)

Collision policy (same in :func:`merge_files` and in the script; tests compare them)
    * The user's passwd line comes first. glibc's ``files`` backend returns the *first*
      match, so ``getpwuid(uid)`` and ``getpwnam(name)`` both give the user.
    * An image entry with the user's **uid** but another name (docker-stacks' ``jovyan`` is
      1000, a directory user may be 1000 too) is **kept after** the user's line:
      ``getpwuid(1000)`` gives the user, ``getpwnam("jovyan")`` still resolves, which
      docker-stacks' ``start.sh`` needs (it exits when ``id -u jovyan`` fails).
    * An image entry with the user's **name** (a directory user called ``jovyan``) is
      **dropped**: a name must resolve to the directory uid, not to the image's.
    * Groups: each of the user's groups (:func:`group_entries`) is written first, with the
      user as a member of every supplementary one; an image group with the same name and gid
      keeps its members (merged); an image group with the same *name* but another gid is
      dropped (the directory's gid wins); an image group with the same *gid* but another
      name is kept after (``getgrgid`` gives the directory's name, ``getgrnam`` of the image
      name still works). If the primary gid has no name at all, a private group named after
      the user is added, unless the image already uses that name.

Supplementary groups
    :func:`supplemental_gids` adds ``PasswdHookConfig.default_groups`` (``users``, gid 100)
    so the conda environment of docker-stacks images (group ``users``, group-writable) stays
    usable under a directory uid; the name ``users`` goes into the group file unless the
    directory already has a group with that name or gid.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Literal

from .errors import ConfigError, InvalidRecord
from .policy import GECOS_RE, MAX_ID, SPECIAL_IDS, check_name, check_path
from .record import UserRecord

log = logging.getLogger(__name__)

#: the fixed script run by the init container (inputs only via NB_PW_* environment variables)
SCRIPT_TEXT: str = resources.files("nbspawner").joinpath("data/passwd-init.sh").read_text("utf-8")

VOLUME_NAME = "nbspawner-passwd"
INIT_CONTAINER_NAME = "nbspawner-passwd"
#: where the init container mounts the emptyDir and writes the files
OUTPUT_DIR = "/nbspawner-passwd"
RUN_VOLUME_NAME = "nbspawner-run"
#: the longest home/shell path accepted (PATH_MAX - 1), checked here and in the script
MAX_PATH_LEN = 4095
#: PATH for the init container: the image's own PATH may start with a conda env
INIT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# passwd lines, not passwords ("x" means: no password here)
_ROOT_LINE = "root:x:0:0:root:/root:/sbin/nologin\n"
_NOBODY_LINE = "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
DEFAULT_BASE_PASSWD = _ROOT_LINE + _NOBODY_LINE
JOVYAN_PASSWD_LINE = "jovyan:x:1000:100::/home/jovyan:/bin/bash\n"  # noqa: S105
DEFAULT_BASE_GROUP = "root:x:0:\nusers:x:100:\nnogroup:x:65534:\n"

Mode = Literal["init-container", "secret"]


def _default_init_resources() -> dict[str, dict[str, str]]:
    return {
        "requests": {"cpu": "10m", "memory": "16Mi"},
        "limits": {"cpu": "500m", "memory": "64Mi"},
    }


@dataclass(frozen=True)
class PasswdHookConfig:
    """Settings of the passwd hook (the spawner fills them from its traits)."""

    enabled: bool = True
    mode: Mode = "init-container"
    #: login shell written to passwd; ``None`` keeps the directory's shell (which may not
    #: exist in the image)
    shell: str | None = "/bin/bash"
    #: (name, gid) groups every user gets: supplementary gid and a name in /etc/group
    default_groups: tuple[tuple[str, int], ...] = (("users", 100),)
    #: accept gid 0 as primary or listed group (mirrors IdentityPolicy.allow_gid_zero)
    allow_gid_zero: bool = False
    #: supplementary gids every user gets without a name (the admin's
    #: ``KubeSpawner.supplemental_gids``)
    extra_gids: tuple[int, ...] = ()
    #: sizeLimit of the in-memory emptyDir holding the two files
    size_limit: str = "1Mi"
    #: sizeLimit of the /run emptyDir for images that need a writable /run
    run_size_limit: str = "64Mi"
    init_resources: Mapping[str, Mapping[str, str]] = field(default_factory=_default_init_resources)
    image_pull_policy: str | None = None
    #: Secret mode: the files that stand in for the image's (unknown to the hub)
    base_passwd: str = DEFAULT_BASE_PASSWD
    base_group: str = DEFAULT_BASE_GROUP
    #: Secret mode: add jovyan 1000:100 to the base (docker-stacks start.sh needs it)
    base_include_jovyan: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("init-container", "secret"):
            raise ConfigError(
                f"PasswdHookConfig.mode must be 'init-container' or 'secret', not {self.mode!r}"
            )


# ---------------------------------------------------------------------------
# Validation (policy's rules plus the limits the script enforces too)
# ---------------------------------------------------------------------------


def _source(record: UserRecord) -> str:
    return record.source or "directory"


def _check_id(value: object, field_name: str, source: str, *, allow_zero: bool) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidRecord(
            f"{source}: {field_name} is not an integer",
            field=field_name,
            kind="not an integer",
            source=source,
        )
    if value == 0 and not allow_zero:
        raise InvalidRecord(
            f"{source}: {field_name} is 0 (root), which the passwd hook refuses",
            field=field_name,
            kind="root id",
            source=source,
            reason="root_id",
        )
    if value < 0 or value > MAX_ID:
        raise InvalidRecord(
            f"{source}: {field_name} is outside 0..{MAX_ID}",
            field=field_name,
            kind="out of range",
            source=source,
            reason="id_out_of_range",
        )
    if value in SPECIAL_IDS:
        raise InvalidRecord(
            f"{source}: {field_name} {value} is an id file servers treat specially, "
            "which the passwd hook refuses",
            field=field_name,
            kind="special id",
            source=source,
            reason="id_out_of_range",
        )
    return value


def _check_path(value: object, field_name: str, source: str) -> str:
    path = check_path(value, field_name, source)  # type: ignore[arg-type]
    if len(path) > MAX_PATH_LEN:
        raise InvalidRecord(
            f"{source}: {field_name} is longer than {MAX_PATH_LEN} characters",
            field=field_name,
            kind="too long",
            source=source,
        )
    return path


def _checked_default_groups(groups: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    result = []
    for item in groups:
        try:
            name, gid = item
            check_name(name, "default_groups", "PasswdHookConfig")
            _check_id(gid, "default_groups", "PasswdHookConfig", allow_zero=False)
        except (InvalidRecord, TypeError, ValueError):
            raise ConfigError(
                "PasswdHookConfig.default_groups must be (name, gid) pairs with a valid group "
                "name and a gid from 1 to 4294967294"
            ) from None
        result.append((name, gid))
    return result


def safe_gecos(record: UserRecord) -> str:
    """The record's GECOS if it matches :data:`~nbspawner.policy.GECOS_RE`, else ``""``.

    An unusable GECOS is omitted, not refused (see the module docstring) and never logged.
    """
    gecos = record.gecos
    if isinstance(gecos, str) and GECOS_RE.match(gecos):
        return gecos
    log.debug(
        "passwd: the full name (GECOS) of user %s is left out of /etc/passwd: it has "
        "characters outside A-Z a-z 0-9 _ . space ' - or is over 64 long",
        record.username if isinstance(record.username, str) else "?",
    )
    return ""


def _resolve(record: UserRecord, home: str | None, shell: str | None) -> tuple[str, str]:
    return (record.home if home is None else home, record.shell if shell is None else shell)


def render_passwd_line(
    record: UserRecord,
    *,
    home: str | None = None,
    shell: str | None = None,
    allow_gid_zero: bool = False,
) -> str:
    """The user's 7-field passwd line, without newline.

    ``home`` is the home directory *inside the container* (default ``record.home``),
    ``shell`` the login shell (default ``record.shell``). Raises InvalidRecord.
    """
    src = _source(record)
    name = check_name(record.username, "username", src)
    uid = _check_id(record.uid, "uid", src, allow_zero=False)
    gid = _check_id(record.gid, "gid", src, allow_zero=allow_gid_zero)
    home, shell = _resolve(record, home, shell)
    home = _check_path(home, "home", src)
    shell = _check_path(shell, "shell", src)
    return f"{name}:x:{uid}:{gid}:{safe_gecos(record)}:{home}:{shell}"


def group_entries(
    record: UserRecord,
    *,
    default_groups: Iterable[tuple[str, int]] = (("users", 100),),
    allow_gid_zero: bool = False,
) -> list[tuple[str, int]]:
    """The (name, gid) groups that go into the group file for this user, in order.

    The directory's ``posix_groups`` (validated; exact duplicates removed; the same name with
    two gids is refused), then each default group whose name *and* gid are both still unused.
    """
    src = _source(record)
    check_name(record.username, "username", src)
    _check_id(record.gid, "gid", src, allow_zero=allow_gid_zero)
    entries: list[tuple[str, int]] = []
    by_name: dict[str, int] = {}
    for item in record.posix_groups:
        if not isinstance(item, (tuple, list)) or len(item) != 2:
            raise InvalidRecord(
                f"{src}: a posix group is not a (name, gid) pair",
                field="posix_groups",
                kind="not a pair",
                source=src,
            )
        name, gid = item
        check_name(name, "posix_groups", src)
        _check_id(gid, "posix_groups", src, allow_zero=allow_gid_zero)
        if name in by_name:
            if by_name[name] != gid:
                raise InvalidRecord(
                    f"{src}: posix group names one group twice with different gids",
                    field="posix_groups",
                    kind="ambiguous group",
                    source=src,
                )
            continue
        by_name[name] = gid
        entries.append((name, gid))
    used_gids = {g for _, g in entries}
    for name, gid in _checked_default_groups(default_groups):
        if name in by_name or gid in used_gids:
            continue
        by_name[name] = gid
        used_gids.add(gid)
        entries.append((name, gid))
    return entries


def render_group_lines(
    record: UserRecord,
    *,
    default_groups: Iterable[tuple[str, int]] = (("users", 100),),
    allow_gid_zero: bool = False,
) -> list[str]:
    """The user's own group lines (no image context), without newlines.

    One ``name:x:gid:members`` line per :func:`group_entries` entry, the user a member of
    each supplementary group, plus a private group named after the user when the primary gid
    has no name. :func:`merge_files` does the same against an image's group file.
    """
    entries = group_entries(record, default_groups=default_groups, allow_gid_zero=allow_gid_zero)
    lines = [_group_line(n, g, "", record.username, record.gid) for n, g in entries]
    if record.gid not in {g for _, g in entries} and record.username not in {n for n, _ in entries}:
        lines.append(f"{record.username}:x:{record.gid}:")
    return lines


def _group_line(name: str, gid: int, members: str, user: str, primary_gid: int) -> str:
    if gid != primary_gid and user not in members.split(","):
        members = f"{members},{user}" if members else user
    return f"{name}:x:{gid}:{members}"


# ---------------------------------------------------------------------------
# Merging with the image's files (the script's algorithm, in Python)
# ---------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Lines as the script's ``read -r`` loop sees them: split on \\n only, empties dropped."""
    return [line for line in text.split("\n") if line != ""]


def _group_fields(line: str) -> tuple[str, str] | None:
    """(gid, members) of a group line with at least 4 fields, else None."""
    if line.count(":") < 3:
        return None
    _, _, gid, members = line.split(":", 3)
    return gid, members


def merge_files(
    record: UserRecord,
    image_passwd: str,
    image_group: str,
    *,
    home: str | None = None,
    shell: str | None = None,
    default_groups: Iterable[tuple[str, int]] = (("users", 100),),
    allow_gid_zero: bool = False,
) -> tuple[str, str]:
    """(passwd, group) text: the user merged into an image's files by the collision policy.

    Byte for byte what ``passwd-init.sh`` writes for the same inputs.
    """
    user_line = render_passwd_line(record, home=home, shell=shell, allow_gid_zero=allow_gid_zero)
    entries = group_entries(record, default_groups=default_groups, allow_gid_zero=allow_gid_zero)
    user, primary = record.username, record.gid

    passwd = [user_line]
    passwd += [line for line in _lines(image_passwd) if not line.startswith(user + ":")]

    image_groups = _lines(image_group)

    def image_members(name: str, gid: int) -> str:
        for line in image_groups:
            if line.startswith(name + ":"):
                fields = _group_fields(line)
                if fields is not None and fields[0] == str(gid):
                    return fields[1]
        return ""

    def image_has_gid(gid: int) -> bool:
        for line in image_groups:
            fields = _group_fields(line)
            if fields is not None and fields[0] == str(gid):
                return True
        return False

    group = [_group_line(n, g, image_members(n, g), user, primary) for n, g in entries]
    names = {n for n, _ in entries}
    if (
        primary not in {g for _, g in entries}
        and not image_has_gid(primary)
        and user not in names
        and not any(line.startswith(user + ":") for line in image_groups)
    ):
        group.append(f"{user}:x:{primary}:")
    group += [
        line for line in image_groups if ":" not in line or line.split(":", 1)[0] not in names
    ]
    return "".join(line + "\n" for line in passwd), "".join(line + "\n" for line in group)


def base_files(config: PasswdHookConfig) -> tuple[str, str]:
    """The (passwd, group) base that stands in for the image's files in Secret mode."""
    passwd = config.base_passwd
    if config.base_include_jovyan and not any(
        line.startswith("jovyan:") for line in _lines(passwd)
    ):
        if passwd and not passwd.endswith("\n"):
            passwd += "\n"
        passwd += JOVYAN_PASSWD_LINE
    return passwd, config.base_group


def render_files(
    record: UserRecord,
    base_passwd: str | None = None,
    base_group: str | None = None,
    *,
    home: str | None = None,
    config: PasswdHookConfig | None = None,
) -> tuple[str, str]:
    """(passwd, group) rendered by the hub, for images without ``/bin/sh`` (Secret mode).

    ``base_passwd``/``base_group`` default to :func:`base_files` of ``config``.
    """
    config = config or PasswdHookConfig()
    default_passwd, default_group = base_files(config)
    return merge_files(
        record,
        default_passwd if base_passwd is None else base_passwd,
        default_group if base_group is None else base_group,
        home=home,
        shell=config.shell,
        default_groups=config.default_groups,
        allow_gid_zero=config.allow_gid_zero,
    )
