"""SSSD's algorithmic ID mapping: the uid and gid an SSSD client computes from an ``objectSid``.

Active Directory users often have no ``uidNumber``/``gidNumber``. A file server running SSSD
with ``ldap_id_mapping = true`` (the default of ``id_provider = ad``) then derives the numbers
from the security identifier (SID) instead, with the algorithm of SSSD's ``libsss_idmap``.
nbspawner must compute the very same numbers, or the pod's user owns somebody else's files.
This module is a pure-Python model of that library (SSSD 2.x, ``src/lib/idmap/sss_idmap.c``)
together with the parts of SSSD's LDAP provider that drive it (``src/providers/ldap/
sdap_idmap.c``, ``sdap_async_users.c``). It is checked against the real library in
``tests/integration/test_idmap_sssd.py``.

The algorithm, in short:

- The id space ``[range_min, range_max)`` is cut into ``(range_max - range_min) // range_size``
  *slices* of ``range_size`` ids each.
- A domain (``S-1-5-21-a-b-c``) gets a *primary slice*: slice 0 for
  ``ldap_idmap_default_domain_sid``, otherwise ``murmurhash3(domain SID text, seed 0xdeadbeef)
  % number_of_slices`` (with ``ldap_idmap_autorid_compat``: slice 0). If that slice is taken by
  a domain added earlier, the next slice is tried, wrapping around, until a free one is found
  (none free: the domain gets no ids).
- An object ``domain-RID`` gets ``slice_min + RID`` when ``RID < range_size``. Larger RIDs use
  *secondary slices*: the slice for RIDs ``[k*range_size, (k+1)*range_size)`` is hashed from
  the text ``"<domain SID>-<k*range_size>"``. The first ``ldap_idmap_helper_table_size`` of
  them are computed when the domain is added; further ones when first needed.
- A user's primary gid is the id of the SID ``domain-primaryGroupID`` (or the uid itself in an
  ``auto_private_groups`` domain); group SIDs map like any other SID.

Collisions make the result depend on history: which slice a domain gets when its hashed slice
is taken depends on the domains SSSD saw before it, and on-demand secondary slices are not even
stored in SSSD's cache (they are recomputed, in lookup order, after a restart).
:class:`IdMapper` models the library exactly, in the order it is fed, and by default
(``strict=True``) refuses every id that came from such an order-dependent slice, naming
the setting that pins it (``domain_slices``) or the reason nothing can.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from .errors import InvalidRecord
from .ids import shown

#: SSSD's defaults for ``ldap_idmap_range_min``, ``_range_max``, ``_range_size``,
#: ``_helper_table_size``
DEFAULT_RANGE_MIN = 200000
DEFAULT_RANGE_MAX = 2000200000
DEFAULT_RANGE_SIZE = 200000
DEFAULT_HELPER_TABLE_SIZE = 10
#: the seed SSSD's ``sss_idmap_calculate_range`` gives murmurhash3
HASH_SEED = 0xDEADBEEF
#: sssd.conf reads these settings as a C ``int``
SETTING_MAX = 2**31 - 1
#: a SID holds at most 15 sub-authorities (MS-DTYP 2.4.2)
MAX_SUB_AUTHORITIES = 15
UINT32_MAX = 2**32 - 1

#: the domain part of an AD domain SID
DOMAIN_SID_PREFIX = "S-1-5-21-"
#: SIDs of the BUILTIN domain (``S-1-5-32-544`` Administrators, ...), never mapped by SSSD
BUILTIN_SID_PREFIX = "S-1-5-32-"

_NUMBER = r"(?:0|[1-9][0-9]*)"
_SID_TEXT_RE = re.compile(rf"\A[Ss]-({_NUMBER})-({_NUMBER})((?:-{_NUMBER})*)\Z", re.ASCII)
_DOMAIN_SID_RE = re.compile(rf"\AS-1-5-21-{_NUMBER}-{_NUMBER}-{_NUMBER}\Z", re.ASCII)
_RID_TEXT_RE = re.compile(r"\A(?:0|[1-9][0-9]{0,9})\Z", re.ASCII)


# ---------------------------------------------------------------------------------------------
# errors


def _where(attribute: str, entry: str) -> str:
    """``objectSid of 'cn=alice,...'`` for a message (the entry only when known)."""
    return f"{attribute} of {shown(entry, 120)}" if entry else attribute


class IdMapError(ValueError):
    """A SID or an id-mapping setting nbspawner refuses; ``str()`` is one readable sentence.

    ``kind`` is a short label (``"length"``, ``"revision"``, ``"no_range"``, ...);
    ``attribute`` and ``entry`` name where the value came from (``objectSid``, the user's DN).
    """

    def __init__(self, message: str, *, kind: str, attribute: str = "", entry: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.attribute = attribute
        self.entry = entry

    def as_invalid_record(self, *, field: str = "uid", source: str = "ldap") -> InvalidRecord:
        """The same refusal as the :class:`~nbspawner.errors.InvalidRecord` a backend raises."""
        return InvalidRecord(self.message, field=field, kind=self.kind, source=source)


class SidError(IdMapError):
    """A value that is not a well-formed SID (wrong length, revision, sub-authority count...)."""


class IdMapSettingsError(IdMapError):
    """Range settings SSSD itself would refuse (or could not read from ``sssd.conf``)."""


# ---------------------------------------------------------------------------------------------
# SIDs


def _sid_error(kind: str, what: str, attribute: str, entry: str) -> SidError:
    return SidError(
        f"{_where(attribute, entry)} is not a valid SID: {what}",
        kind=kind,
        attribute=attribute,
        entry=entry,
    )


def parse_sid(value: bytes | bytearray | memoryview | str, *, attribute: str = "objectSid",
              entry: str = "") -> str:  # fmt: skip
    """The SID ``value`` (binary as AD stores ``objectSid``, or ``S-1-...`` text) as canonical text.

    Binary: revision byte 1, a sub-authority count of at most 15, a 6-byte big-endian
    identifier authority and that many little-endian 32-bit sub-authorities, nothing more or
    less. Text: ``S-1-<authority>-<sub>...``, decimal without leading zeros. An identifier
    authority of 2**32 or more is refused (SSSD's text form would silently drop its high bytes).
    Raises :class:`SidError` whose message names ``attribute`` and ``entry``.
    """
    if isinstance(value, memoryview | bytearray):
        value = bytes(value)
    if isinstance(value, bytes):
        return _parse_binary_sid(value, attribute, entry)
    if isinstance(value, str):
        return _parse_text_sid(value, attribute, entry)
    raise _sid_error(
        "type", f"a {type(value).__name__} is neither bytes nor text", attribute, entry
    )


def _parse_binary_sid(data: bytes, attribute: str, entry: str) -> str:
    if len(data) < 8:
        raise _sid_error(
            "length", f"{len(data)} bytes, shorter than the 8-byte header", attribute, entry
        )
    revision, count = data[0], data[1]
    if revision != 1:
        raise _sid_error("revision", f"revision {revision}, not 1", attribute, entry)
    if count > MAX_SUB_AUTHORITIES:
        raise _sid_error(
            "sub_authorities",
            f"{count} sub-authorities, more than the {MAX_SUB_AUTHORITIES} a SID can hold",
            attribute,
            entry,
        )
    expected = 8 + 4 * count
    if len(data) != expected:
        raise _sid_error(
            "length",
            f"{len(data)} bytes, but its {count} sub-authorities make a SID of {expected} bytes",
            attribute,
            entry,
        )
    authority = int.from_bytes(data[2:8], "big")
    if authority > UINT32_MAX:
        raise _sid_error(
            "authority",
            f"identifier authority {authority} does not fit in 32 bits (SSSD cannot map it)",
            attribute,
            entry,
        )
    subs = [int.from_bytes(data[8 + 4 * i : 12 + 4 * i], "little") for i in range(count)]
    return "-".join(["S", str(revision), str(authority), *map(str, subs)])


def _parse_text_sid(text: str, attribute: str, entry: str) -> str:
    match = _SID_TEXT_RE.match(text)
    if match is None:
        raise _sid_error(
            "text",
            f"{shown(text)} is not of the form S-1-<authority>-<sub-authority>... "
            "in decimal digits without leading zeros",
            attribute,
            entry,
        )
    revision, authority = int(match.group(1)), int(match.group(2))
    subs = [int(part) for part in match.group(3).split("-")[1:]]
    if revision != 1:
        raise _sid_error("revision", f"revision {revision}, not 1", attribute, entry)
    if authority > UINT32_MAX:
        raise _sid_error(
            "authority",
            f"identifier authority {authority} does not fit in 32 bits (SSSD cannot map it)",
            attribute,
            entry,
        )
    if len(subs) > MAX_SUB_AUTHORITIES:
        raise _sid_error(
            "sub_authorities",
            f"{len(subs)} sub-authorities, more than the {MAX_SUB_AUTHORITIES} a SID can hold",
            attribute,
            entry,
        )
    for sub in subs:
        if sub > UINT32_MAX:
            raise _sid_error(
                "sub_authority", f"sub-authority {sub} does not fit in 32 bits", attribute, entry
            )
    return "-".join(["S", "1", str(authority), *map(str, subs)])


def sid_to_bytes(sid: str) -> bytes:
    """The binary (``objectSid``) form of the SID text ``sid`` (inverse of :func:`parse_sid`)."""
    text = parse_sid(sid, attribute="SID")
    parts = [int(part) for part in text.split("-")[1:]]
    revision, authority, subs = parts[0], parts[1], parts[2:]
    return (
        bytes([revision, len(subs)])
        + authority.to_bytes(6, "big")
        + b"".join(sub.to_bytes(4, "little") for sub in subs)
    )


def domain_of(sid: str) -> str:
    """The domain SID ``S-1-5-21-a-b-c`` of the canonical object SID ``sid``, or ``""``.

    Like SSSD (``sdap_idmap_get_dom_sid_from_object``): the first three sub-authorities after
    21, when at least one more follows.
    """
    parts = sid.split("-")
    if sid.startswith(DOMAIN_SID_PREFIX) and len(parts) >= 8:
        return "-".join(parts[:7])
    return ""


def murmurhash3(data: bytes, seed: int = HASH_SEED) -> int:
    """MurmurHash3 x86 32-bit of ``data``, the variant SSSD uses on every architecture."""
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed & mask
    length = len(data)
    blocks = length - length % 4

    def mix(k: int) -> int:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        return (k * c2) & mask

    for i in range(0, blocks, 4):
        h ^= mix(int.from_bytes(data[i : i + 4], "little"))
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[blocks:]
    if tail:
        h ^= mix(int.from_bytes(tail, "little"))
    h ^= length
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h


# ---------------------------------------------------------------------------------------------
# the mapping


@dataclass(frozen=True)
class SliceInfo:
    """One id range in the mapping table (what SSSD's library calls a domain entry)."""

    #: the domain SID the range belongs to
    domain_sid: str
    #: the domain's name (SSSD names domains it discovers by their SID)
    domain_name: str
    #: the slice number: ids ``range_min + slice * range_size`` onwards
    slice: int
    min_id: int
    max_id: int
    #: the RID that maps to ``min_id`` (0 for a primary slice, ``k * range_size`` otherwise)
    first_rid: int
    #: False when SSSD's choice of this slice depends on the order it saw domains or RIDs
    stable: bool
    #: why the slice is order-dependent ("" when stable)
    unstable_because: str = ""


@dataclass
class _Domain:
    """A domain entry of the mapping table, as ``struct idmap_domain_info`` holds it."""

    info: SliceInfo
    #: secondary slices computed when the domain was added: range_id -> SliceInfo
    helpers: dict[str, SliceInfo] = field(default_factory=dict)
    auto_add_ranges: bool = False
    #: the slice was given (default domain's slice 0, a pinned slice), not hashed
    fixed: bool = False


def _unstable(info: SliceInfo, why: str) -> SliceInfo:
    return info if not info.stable else replace(info, stable=False, unstable_because=why)


_REFUSAL_KINDS = {
    "builtin": "a BUILTIN SID (S-1-5-32-...), which SSSD does not map",
    "no_domain": "not from an Active Directory domain (S-1-5-21-a-b-c-RID)",
}


class IdMapper:
    """The uid/gid SSSD computes for SIDs, with the ``ldap_idmap_*`` settings of ``sssd.conf``.

    ``range_min``, ``range_max``, ``range_size``, ``helper_table_size``, ``autorid_compat``,
    ``default_domain_sid`` and ``default_domain`` are ``ldap_idmap_range_min``, ... with
    SSSD's defaults; they must equal the file server's. ``domains`` lists further domain SIDs
    to add at start, in order (as SSSD adds the domains of a forest it discovers), and
    ``domain_slices`` pins a domain's slice (the ``slice`` SSSD stored in its cache, see
    ``docs/how-to/active-directory-idmap.md``). A SID of a domain not yet known is added when
    first seen, as SSSD does.

    With ``strict`` (the default) an id whose slice SSSD chose depending on history (a hashed
    slice that was taken, autorid's first free slice, a secondary slice beyond the helper table)
    is refused: the file server may have chosen another. ``strict=False`` gives exactly the
    library's answer for the order the SIDs were fed.

    Not thread-safe (it has state, like SSSD's); one mapper per directory.
    """

    def __init__(
        self,
        range_min: int = DEFAULT_RANGE_MIN,
        range_max: int = DEFAULT_RANGE_MAX,
        range_size: int = DEFAULT_RANGE_SIZE,
        default_domain_sid: str | None = None,
        default_domain: str = "default",
        autorid_compat: bool = False,
        helper_table_size: int = DEFAULT_HELPER_TABLE_SIZE,
        domains: Iterable[str] = (),
        domain_slices: Mapping[str, int] | None = None,
        strict: bool = True,
    ) -> None:
        for name, value in (
            ("ldap_idmap_range_min", range_min),
            ("ldap_idmap_range_max", range_max),
            ("ldap_idmap_range_size", range_size),
            ("ldap_idmap_helper_table_size", helper_table_size),
        ):
            if isinstance(value, bool) or not isinstance(value, int):
                raise IdMapSettingsError(
                    f"{name} must be an integer, not {shown(value)}", kind="setting"
                )
            if not 0 <= value <= SETTING_MAX:
                raise IdMapSettingsError(
                    f"{name} = {value} is outside 0..{SETTING_MAX}, the values sssd.conf accepts",
                    kind="setting",
                )
        if range_size <= 0 or range_max <= range_min or range_max - range_min < range_size:
            raise IdMapSettingsError(
                f"ldap_idmap_range_min = {range_min}, ldap_idmap_range_max = {range_max}, "
                f"ldap_idmap_range_size = {range_size}: SSSD refuses these (the size must be "
                "positive and fit at least once between min and max)",
                kind="setting",
            )
        self.range_min = range_min
        self.range_max = range_max
        self.range_size = range_size
        self.helper_table_size = helper_table_size
        self.autorid_compat = bool(autorid_compat)
        self.strict = bool(strict)
        self.max_slices = (range_max - range_min) // range_size
        # newest first, as the library prepends
        self._domains: list[_Domain] = []
        self._pinned: dict[str, int] = {}
        for sid, slice_number in (domain_slices or {}).items():
            canonical = self._domain_sid_setting(sid, "domain_slices")
            if isinstance(slice_number, bool) or not isinstance(slice_number, int):
                raise IdMapSettingsError(
                    f"domain_slices[{canonical!r}] must be a slice number, "
                    f"not {shown(slice_number)}",
                    kind="setting",
                )
            self._pinned[canonical] = slice_number
        if default_domain_sid is not None:
            sid = self._domain_sid_setting(default_domain_sid, "ldap_idmap_default_domain_sid")
            self._configure(default_domain, sid, self._pinned.get(sid, 0))
        for sid in domains:
            canonical = self._domain_sid_setting(sid, "domains")
            if not self._known(canonical):
                self._configure(canonical, canonical, self._pinned.get(canonical))
        for sid, slice_number in self._pinned.items():
            if not self._known(sid):
                self._configure(sid, sid, slice_number)

    def _configure(self, name: str, sid: str, slice_number: int | None) -> None:
        error = self._add_domain(name, sid, slice_number)
        if error is not None:
            where = f"slice {slice_number}" if slice_number is not None else "a slice"
            raise IdMapSettingsError(
                f"domain {sid} cannot be given {where}: {self._reason(error)}",
                kind="setting",
            )

    # -- public API -------------------------------------------------------------------------

    def sid_to_id(self, sid: str | bytes, *, attribute: str = "objectSid", entry: str = "") -> int:
        """The uid/gid SSSD gives the user or group SID ``sid`` (binary or text).

        Raises :class:`SidError` for a malformed SID and :class:`IdMapError` when SSSD would
        give no id (BUILTIN SID, no free slice, RID beyond the mapped ranges, a slice collision)
        or, with ``strict``, when its choice depends on history. Messages name ``attribute``
        and ``entry``.
        """
        text = parse_sid(sid, attribute=attribute, entry=entry)
        return self._map(text, attribute, entry)

    def user_ids(
        self,
        object_sid: str | bytes,
        primary_group_id: int | str | None,
        *,
        entry: str = "",
        private_group: bool = False,
    ) -> tuple[int, int]:
        """``(uid, gid)`` of a user: uid from ``objectSid``, gid from the domain + ``primaryGroupID``.

        With ``private_group`` (SSSD's ``auto_private_groups = true``, the default for
        trusted subdomains, not for the main domain) the gid is the uid itself. A user without
        ``primaryGroupID`` is refused, as SSSD refuses it.
        """
        text = parse_sid(object_sid, attribute="objectSid", entry=entry)
        uid = self._map(text, "objectSid", entry)
        if primary_group_id is None:
            raise IdMapError(
                f"{_where('objectSid', entry)} is set but primaryGroupID is missing, so the "
                "user's primary gid cannot be computed",
                kind="no_primary_group",
                attribute="primaryGroupID",
                entry=entry,
            )
        rid = self._rid(primary_group_id, entry)
        gid = self._map(f"{domain_of(text)}-{rid}", "primaryGroupID", entry)
        return uid, (uid if private_group else gid)

    def group_ids(self, sids: Iterable[str | bytes], *, attribute: str = "objectSid",
                  entry: str = "") -> list[int]:  # fmt: skip
        """The gids of group SIDs (e.g. from ``tokenGroups`` or the groups' ``objectSid``)."""
        return [self.sid_to_id(sid, attribute=attribute, entry=entry) for sid in sids]

    def slices(self) -> list[SliceInfo]:
        """The mapping table: every id range in use, oldest first."""
        return [domain.info for domain in reversed(self._domains)]

    def helper_slices(self, domain_sid: str) -> list[SliceInfo]:
        """The secondary slices computed in advance for ``domain_sid`` (the helper table)."""
        canonical = self._domain_sid_setting(domain_sid, "domain_sid")
        for domain in self._domains:
            if domain.info.domain_sid == canonical:
                return list(domain.helpers.values())
        return []

    def slice_of(self, range_id: str) -> int:
        """The slice SSSD's hash prefers for ``range_id`` (a domain SID), before any probing."""
        if self.autorid_compat:
            return 0
        return murmurhash3(range_id.encode("utf-8")) % self.max_slices

    # -- the library, step by step ----------------------------------------------------------

    def _domain_sid_setting(self, sid: str, setting: str) -> str:
        try:
            text = parse_sid(sid, attribute=setting)
        except SidError as error:
            raise IdMapSettingsError(error.message, kind="setting") from None
        if not _DOMAIN_SID_RE.match(text):
            raise IdMapSettingsError(
                f"{setting}: {shown(sid)} is not an Active Directory domain SID (S-1-5-21-a-b-c)",
                kind="setting",
            )
        return text

    def _known(self, domain_sid: str) -> bool:
        return any(d.info.domain_sid == domain_sid for d in self._domains)

    def _rid(self, value: int | str, entry: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            text = None
        elif isinstance(value, int):
            text = str(value) if 0 <= value <= UINT32_MAX else None
        else:
            text = value if _RID_TEXT_RE.match(value) and int(value) <= UINT32_MAX else None
        if text is None:
            raise IdMapError(
                f"{_where('primaryGroupID', entry)} is {shown(value)}, not a RID "
                f"(a decimal number 0..{UINT32_MAX})",
                kind="primary_group",
                attribute="primaryGroupID",
                entry=entry,
            )
        return int(text)

    def _slice_range(self, slice_number: int) -> tuple[int, int]:
        low = self.range_min + slice_number * self.range_size
        return low, low + self.range_size - 1

    def _calculate_range(
        self, range_id: str, explicit: int | None, *, helper: bool = False
    ) -> tuple[int, bool, str] | str:
        """``(slice, stable, why)`` as ``sss_idmap_calculate_range``; an error label otherwise.

        Only primary slices (and secondary slices in use) count as taken, as in the library;
        helper tables do not. Probing past a slice that is not fixed (the default domain's,
        a pinned one) makes the result order-dependent, and a primary prober makes the holder
        order-dependent too (had the prober been seen first, the holder would have moved).
        """

        def holder_of(low: int, high: int) -> _Domain | None:
            for domain in self._domains:
                info = domain.info
                if (
                    (info.min_id <= low and info.max_id >= high)
                    or (low <= info.min_id <= high)
                    or (low <= info.max_id <= high)
                ):
                    return domain
            return None

        if explicit is not None:
            if holder_of(*self._slice_range(explicit)) is not None:
                return "collision"
            return explicit, True, ""
        start = 0 if self.autorid_compat else self.slice_of(range_id)
        candidate = start
        why = ""
        while True:
            holder = holder_of(*self._slice_range(candidate))
            if holder is None:
                break
            if not holder.fixed:
                clash = (
                    f"{range_id} hashes to slice {start}, held by "
                    f"{holder.info.domain_sid}-{holder.info.first_rid} (slice "
                    f"{holder.info.slice}); SSSD's choice depends on which it saw first"
                )
                why = why or clash
                if not helper:
                    self._mark(holder, clash)
            candidate = (candidate + 1) % self.max_slices
            if candidate == start:
                return "out_of_slices"
        if self.autorid_compat:
            why = why or (
                "ldap_idmap_autorid_compat gives each domain the first free slice, in the "
                "order SSSD first sees the domains"
            )
        # an unused helper table entry on the same slice: whoever is used first wins
        for domain in self._domains:
            for key, info in domain.helpers.items():
                if info.slice == candidate and not self._in_use(info):
                    clash = f"slice {candidate} is also in the helper table of {info.domain_sid}"
                    domain.helpers[key] = _unstable(info, clash)
                    why = why or clash
        return candidate, not why, why

    def _in_use(self, info: SliceInfo) -> bool:
        return any(
            d.info.domain_sid == info.domain_sid and d.info.first_rid == info.first_rid
            for d in self._domains
        )

    def _mark(self, domain: _Domain, why: str) -> None:
        if domain.info.stable:
            domain.info = _unstable(domain.info, why)

    def _add_domain(self, name: str, sid: str, explicit_slice: int | None) -> str | None:
        """``sdap_idmap_add_domain`` + ``sss_idmap_add_auto_domain_ex``; an error label or None."""
        result = self._calculate_range(sid, explicit_slice)
        if isinstance(result, str):
            return result
        slice_number, stable, why = result
        low, high = self._slice_range(slice_number)
        if high > self.range_max:
            return "range_max"
        info = SliceInfo(sid, name, slice_number, low, high, 0, stable, why)
        error = self._check_collision(info)
        if error:
            return error
        domain = _Domain(info, fixed=explicit_slice is not None)
        self._domains.insert(0, domain)
        if self.helper_table_size == 0:
            return None
        # filled as it goes, so that helpers on the same slice as an earlier one are seen
        helpers: dict[str, SliceInfo] = {}
        domain.helpers = helpers
        first_rid = self.range_size
        for _ in range(self.helper_table_size):
            range_id = f"{sid}-{first_rid}"
            result = self._calculate_range(range_id, None, helper=True)
            if isinstance(result, str):
                # running out of slices for helpers is not fatal, but leaves no helpers at all
                domain.helpers = {}
                return None
            h_slice, h_stable, h_why = result
            h_low, h_high = self._slice_range(h_slice)
            helpers[range_id] = SliceInfo(
                sid, name, h_slice, h_low, h_high, first_rid, h_stable, h_why
            )
            first_rid += self.range_size
        domain.auto_add_ranges = True
        return None

    def _check_collision(self, new: SliceInfo) -> str | None:
        """``dom_check_collision``: overlapping ids, or a name/SID mismatch, or RIDs taken."""
        for domain in self._domains:
            old = domain.info
            if (old.min_id <= new.min_id <= old.max_id) or (old.min_id <= new.max_id <= old.max_id):
                return "collision"
            names_equal = old.domain_name.casefold() == new.domain_name.casefold()
            sids_equal = old.domain_sid.casefold() == new.domain_sid.casefold()
            if names_equal != sids_equal:
                return "collision"
            if names_equal and old.first_rid <= new.first_rid <= old.first_rid + (
                old.max_id - old.min_id
            ):
                return "collision"
        return None

    def _lookup(self, sid: str) -> tuple[int, SliceInfo] | str:
        """``sss_idmap_sid_to_unix``: ``(id, slice)`` or an error label."""
        if sid.startswith(BUILTIN_SID_PREFIX):
            return "builtin"
        matched: _Domain | None = None
        rid = -1
        for domain in self._domains:
            info = domain.info
            prefix = info.domain_sid + "-"
            if not sid.startswith(prefix):
                continue
            rest = sid[len(prefix) :]
            if not rest.isdigit():
                return "invalid"
            rid = int(rest)
            if info.first_rid <= rid and rid - info.first_rid <= info.max_id - info.min_id:
                return info.min_id + rid - info.first_rid, info
            matched = domain
        if matched is None:
            return "no_domain"
        if not matched.auto_add_ranges:
            return "no_range"
        first_rid = rid // self.range_size * self.range_size
        range_id = f"{matched.info.domain_sid}-{first_rid}"
        helper = matched.helpers.get(range_id)
        if helper is None:
            result = self._calculate_range(range_id, None)
            if isinstance(result, str):
                return result
            slice_number, _, _ = result
            low, high = self._slice_range(slice_number)
            helper = SliceInfo(
                matched.info.domain_sid, matched.info.domain_name, slice_number, low, high,
                first_rid, False,
                f"RID {rid} is beyond the {self.helper_table_size} secondary slices of "
                "ldap_idmap_helper_table_size; SSSD computes further slices in the order it "
                "meets such RIDs and does not keep them across restarts",
            )  # fmt: skip
        error = self._check_collision(helper)
        if error:
            return error
        spawned = _Domain(helper, matched.helpers, matched.auto_add_ranges)
        self._domains.insert(0, spawned)
        return helper.min_id + rid - first_rid, helper

    def _map(self, sid: str, attribute: str, entry: str) -> int:
        result = self._lookup(sid)
        if result == "no_domain":
            domain_sid = domain_of(sid)
            if domain_sid:
                # SSSD adds a domain it has not seen yet, named by its SID, and tries again
                error = self._add_domain(domain_sid, domain_sid, self._pinned.get(domain_sid))
                result = self._lookup(sid) if error is None else error
        if isinstance(result, str):
            raise self._refusal(result, sid, attribute, entry)
        number, info = result
        if self.strict and not info.stable:
            raise IdMapError(
                f"{_where(attribute, entry)} is {sid}: SSSD would give it id {number} in "
                f"slice {info.slice} only in this history: {info.unstable_because}; pin the "
                "domain's slice with domain_slices (from the file server's SSSD cache) or set "
                "strict to false",
                kind="order_dependent",
                attribute=attribute,
                entry=entry,
            )
        return number

    def _reason(self, label: str) -> str:
        reasons = {
            "builtin": _REFUSAL_KINDS["builtin"],
            "no_domain": _REFUSAL_KINDS["no_domain"],
            "invalid": "not a domain SID followed by one RID",
            "no_range": (
                f"its RID is beyond the ids SSSD maps for the domain (ldap_idmap_range_size "
                f"{self.range_size} RIDs per slice, ldap_idmap_helper_table_size "
                f"{self.helper_table_size} secondary slices, and no further slice can be added)"
            ),
            "out_of_slices": (
                f"no free slice is left between ldap_idmap_range_min {self.range_min} and "
                f"ldap_idmap_range_max {self.range_max}"
            ),
            "collision": (
                "the slice SSSD chose collides with a slice another domain or RID range "
                "already holds, so SSSD gives it no id"
            ),
            "range_max": f"the slice ends above ldap_idmap_range_max {self.range_max}",
        }
        return reasons[label]

    def _refusal(self, label: str, sid: str, attribute: str, entry: str) -> IdMapError:
        return IdMapError(
            f"{_where(attribute, entry)} is {sid}, {self._reason(label)}",
            kind=label,
            attribute=attribute,
            entry=entry,
        )
