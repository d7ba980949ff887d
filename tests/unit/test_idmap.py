"""nbspawner.idmap: SID parsing, refusals and SSSD's slice arithmetic (the library comparison
itself is tests/integration/test_idmap_sssd.py)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from nbspawner.errors import InvalidRecord
from nbspawner.idmap import (
    IdMapError,
    IdMapper,
    IdMapSettingsError,
    SidError,
    domain_of,
    murmurhash3,
    parse_sid,
    sid_to_bytes,
)

DOMAIN = "S-1-5-21-1004336348-1177238915-682003330"
ENTRY = "CN=Alice,OU=People,DC=example,DC=org"


def binary(revision: int, count: int, authority: int, subs: list[int]) -> bytes:
    return (
        bytes([revision, count])
        + authority.to_bytes(6, "big")
        + b"".join(struct.pack("<I", s) for s in subs)
    )


# -- parsing ------------------------------------------------------------------------------


def test_binary_object_sid_parses_to_text():
    data = binary(1, 5, 5, [21, 1004336348, 1177238915, 682003330, 1104])
    assert parse_sid(data) == f"{DOMAIN}-1104"
    assert parse_sid(bytearray(data)) == parse_sid(memoryview(data)) == f"{DOMAIN}-1104"
    assert sid_to_bytes(f"{DOMAIN}-1104") == data


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("S-1-5-21-1-2-3-500", "S-1-5-21-1-2-3-500"),
        ("s-1-5-32-544", "S-1-5-32-544"),
        ("S-1-1-0", "S-1-1-0"),
        ("S-1-5", "S-1-5"),
        (f"S-1-4294967295-{'-'.join(['4294967295'] * 15)}", None),
    ],
)
def test_text_sids(text, canonical):
    assert parse_sid(text) == (canonical or text)


@pytest.mark.parametrize(
    "value, kind, words",
    [
        (b"", "length", "0 bytes, shorter than the 8-byte header"),
        (b"\x01\x01\x00\x00\x00\x00\x00\x05", "length", "8 bytes, but its 1 sub-authorities make a SID of 12 bytes"),
        (binary(2, 1, 5, [21]), "revision", "revision 2, not 1"),
        (binary(0, 1, 5, [21]), "revision", "revision 0, not 1"),
        (binary(1, 16, 5, [1] * 16), "sub_authorities", "16 sub-authorities, more than the 15"),
        (binary(1, 200, 5, [1] * 3), "sub_authorities", "200 sub-authorities"),
        (binary(1, 2, 5, [21, 1]) + b"\x00", "length", "17 bytes, but its 2 sub-authorities make a SID of 16 bytes"),
        (binary(1, 1, 2**32, [21]), "authority", "identifier authority 4294967296 does not fit in 32 bits"),
        ("S-1-5-21-01-2-3-4", "text", "decimal digits without leading zeros"),
        ("S-1-5-21-1-2-3-+4", "text", "is not of the form"),
        ("S-1-5-21-1-2-3-4 ", "text", "is not of the form"),
        ("S-1-5-21-1-2-3-٤", "text", "is not of the form"),
        ("S-2-5-21-1-2-3-4", "revision", "revision 2, not 1"),
        ("S-1-5-21-1-2-4294967296-4", "sub_authority", "sub-authority 4294967296 does not fit"),
        ("S-1-4294967296-21", "authority", "identifier authority 4294967296"),
        ("S-1-5" + "-1" * 16, "sub_authorities", "16 sub-authorities"),
        (12345, "type", "a int is neither bytes nor text"),
    ],
)  # fmt: skip
def test_refused_sids_name_attribute_and_entry(value, kind, words):
    with pytest.raises(SidError) as caught:
        parse_sid(value, attribute="objectSid", entry=ENTRY)
    error = caught.value
    assert error.kind == kind
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"objectSid of {ENTRY!r} is not a valid SID: ")
    assert words in str(error), str(error)
    assert "\n" not in str(error)
    record = error.as_invalid_record()
    assert isinstance(record, InvalidRecord) and record.kind == kind


_SUB = st.integers(0, 2**32 - 1)


@st.composite
def binary_sids(draw):
    """Well-formed SIDs, or one of them with exactly one thing wrong."""
    count = draw(st.integers(0, 15))
    data = binary(1, count, draw(st.integers(0, 2**32 - 1)), draw(st.lists(_SUB, min_size=count, max_size=count)))  # fmt: skip
    damage = draw(st.sampled_from(["none", "none", "revision", "count", "truncate", "extend"]))
    if damage == "revision":
        data = bytes([draw(st.integers(0, 255).filter(lambda r: r != 1))]) + data[1:]
    elif damage == "count":
        data = data[:1] + bytes([draw(st.integers(0, 255).filter(lambda c: c != count))]) + data[2:]
    elif damage == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif damage == "extend":
        data = data + draw(st.binary(min_size=1, max_size=8))
    return damage, data


def test_fuzz_binary_sids_parse_or_are_refused_by_rule():
    outcomes = {"parsed": 0, "refused": 0}

    @settings(max_examples=400, deadline=None)
    @given(binary_sids())
    def check(case):
        damage, data = case
        try:
            text = parse_sid(data, entry="cn=x")
        except SidError as error:
            event(f"refused ({error.kind})")
            outcomes["refused"] += 1
            assert damage != "none"
            assert str(error).startswith("objectSid of 'cn=x' is not a valid SID: ")
            if damage == "revision":
                assert error.kind == "revision"
            elif damage in ("truncate", "extend"):
                assert error.kind == "length"
            else:
                assert error.kind in ("length", "sub_authorities")
            return
        event("parsed")
        outcomes["parsed"] += 1
        # a parse is exact: the canonical text turns back into the same bytes
        assert damage == "none" or (damage == "count" and len(data) == 8 + 4 * data[1])
        assert sid_to_bytes(text) == data
        assert parse_sid(text) == text

    check()
    total = outcomes["parsed"] + outcomes["refused"]
    assert outcomes["parsed"] >= total // 5 and outcomes["refused"] >= total // 5, outcomes


@settings(max_examples=300, deadline=None)
@given(st.lists(_SUB, min_size=0, max_size=15), st.integers(0, 2**32 - 1))
def test_text_and_binary_round_trip(subs, authority):
    text = "-".join(["S", "1", str(authority), *map(str, subs)])
    assert parse_sid(text) == text
    assert parse_sid(sid_to_bytes(text)) == text
    event("round trip checked")


def test_domain_of_follows_sssd():
    assert domain_of(f"{DOMAIN}-500") == DOMAIN
    assert domain_of(f"{DOMAIN}-500-7") == DOMAIN
    assert domain_of(DOMAIN) == ""
    assert domain_of("S-1-5-32-544") == ""


# -- murmurhash3 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, seed, expected",
    [  # published MurmurHash3_x86_32 test vectors
        (b"", 0, 0),
        (b"", 1, 0x514E28B7),
        (b"", 0xFFFFFFFF, 0x81F16F39),
        (b"\x00\x00\x00\x00", 0, 0x2362F9DE),
        (b"aaaa", 0x9747B28C, 0x5A97808A),
        (b"abc", 0, 0xB3DD93FA),
        (b"Hello, world!", 0x9747B28C, 0x24884CBA),
        (b"The quick brown fox jumps over the lazy dog", 0x9747B28C, 0x2FA826CD),
    ],
)
def test_murmurhash3_vectors(data, seed, expected):
    assert murmurhash3(data, seed) == expected


# -- the mapping ----------------------------------------------------------------------------


def test_default_domain_is_slice_zero():
    mapper = IdMapper(default_domain_sid=DOMAIN)
    assert mapper.sid_to_id(f"{DOMAIN}-500") == 200500
    assert mapper.user_ids(f"{DOMAIN}-1104", 513) == (201104, 200513)
    assert mapper.user_ids(f"{DOMAIN}-1104", "513", private_group=True) == (201104, 201104)
    assert mapper.slices()[0].slice == 0 and mapper.slices()[0].stable


def test_hashed_domain_slice():
    mapper = IdMapper()
    expected = murmurhash3(DOMAIN.encode(), 0xDEADBEEF) % 10000
    assert mapper.slice_of(DOMAIN) == expected
    assert mapper.sid_to_id(sid_to_bytes(f"{DOMAIN}-1104")) == 200000 + expected * 200000 + 1104
    assert [s.slice for s in mapper.slices()] == [expected]


def test_secondary_slices_from_the_helper_table():
    mapper = IdMapper(default_domain_sid=DOMAIN, helper_table_size=2)
    helpers = mapper.helper_slices(DOMAIN)
    assert [h.first_rid for h in helpers] == [200000, 400000]
    for helper in helpers:
        assert helper.slice == murmurhash3(f"{DOMAIN}-{helper.first_rid}".encode()) % 10000
    assert mapper.sid_to_id(f"{DOMAIN}-200007") == helpers[0].min_id + 7
    assert mapper.sid_to_id(f"{DOMAIN}-400001") == helpers[1].min_id + 1


def test_rid_beyond_helpers_is_refused_when_strict():
    mapper = IdMapper(default_domain_sid=DOMAIN, helper_table_size=2)
    with pytest.raises(IdMapError) as caught:
        mapper.sid_to_id(f"{DOMAIN}-600000", entry=ENTRY)
    assert caught.value.kind == "order_dependent"
    assert f"objectSid of {ENTRY!r} is {DOMAIN}-600000" in str(caught.value)
    assert "ldap_idmap_helper_table_size" in str(caught.value)
    loose = IdMapper(default_domain_sid=DOMAIN, helper_table_size=2, strict=False)
    slice_number = murmurhash3(f"{DOMAIN}-600000".encode()) % 10000
    assert loose.sid_to_id(f"{DOMAIN}-600000") == 200000 + slice_number * 200000


def test_rid_too_large_without_helpers():
    mapper = IdMapper(default_domain_sid=DOMAIN, helper_table_size=0)
    with pytest.raises(IdMapError) as caught:
        mapper.sid_to_id(f"{DOMAIN}-200000", entry=ENTRY)
    assert caught.value.kind == "no_range"
    assert "RID is beyond the ids SSSD maps" in str(caught.value)
    assert "ldap_idmap_helper_table_size 0" in str(caught.value)


@pytest.mark.parametrize(
    "sid, kind, words",
    [
        ("S-1-5-32-544", "builtin", "BUILTIN SID"),
        ("S-1-5-18", "no_domain", "not from an Active Directory domain"),
        (DOMAIN, "no_domain", "not from an Active Directory domain"),
        (f"{DOMAIN}-500-1", "invalid", "not a domain SID followed by one RID"),
    ],
)
def test_sids_sssd_does_not_map(sid, kind, words):
    mapper = IdMapper(default_domain_sid=DOMAIN)
    with pytest.raises(IdMapError) as caught:
        mapper.sid_to_id(sid, entry=ENTRY)
    assert caught.value.kind == kind
    assert (
        str(caught.value)
        == f"objectSid of {ENTRY!r} is {sid}, " + str(caught.value).split(", ", 1)[1]
    )
    assert words in str(caught.value)


def test_user_without_primary_group_is_refused():
    mapper = IdMapper(default_domain_sid=DOMAIN)
    with pytest.raises(IdMapError) as caught:
        mapper.user_ids(f"{DOMAIN}-1104", None, entry=ENTRY)
    assert caught.value.kind == "no_primary_group"
    assert str(caught.value) == (
        f"objectSid of {ENTRY!r} is set but primaryGroupID is missing, so the user's primary "
        "gid cannot be computed"
    )
    for bad in ("0513", "-1", "513.0", True, 2**32, "x"):
        with pytest.raises(IdMapError) as caught:
            mapper.user_ids(f"{DOMAIN}-1104", bad, entry=ENTRY)
        assert caught.value.kind == "primary_group"
        assert f"primaryGroupID of {ENTRY!r} is " in str(caught.value)


def test_domains_outside_the_ranges_are_refused():
    # two slices only: the third domain finds none free
    mapper = IdMapper(range_min=1000, range_max=1200, range_size=100, helper_table_size=0)
    domains = [f"S-1-5-21-1-2-{n}" for n in range(3)]
    results = []
    for sid in domains:
        try:
            results.append(mapper.sid_to_id(f"{sid}-5", entry=ENTRY))
        except IdMapError as error:
            results.append(error.kind)
            last = error
    assert "out_of_slices" in results
    assert "no free slice is left between ldap_idmap_range_min 1000 and ldap_idmap_range_max 1200" in str(last)  # fmt: skip


def test_collision_probes_the_next_slice_and_strict_refuses_both():
    # find two domains that hash to the same slice of 50
    first = "S-1-5-21-7-7-0"
    want = IdMapper(range_min=0 + 1, range_max=1 + 50 * 10, range_size=10).slice_of(first)
    second = next(
        f"S-1-5-21-7-7-{n}"
        for n in range(1, 10000)
        if IdMapper(range_min=1, range_max=501, range_size=10).slice_of(f"S-1-5-21-7-7-{n}") == want
    )
    loose = IdMapper(range_min=1, range_max=501, range_size=10, helper_table_size=0, strict=False)
    assert loose.sid_to_id(f"{first}-3") == 1 + want * 10 + 3
    assert loose.sid_to_id(f"{second}-3") == 1 + (want + 1) % 50 * 10 + 3
    strict = IdMapper(range_min=1, range_max=501, range_size=10, helper_table_size=0)
    assert strict.sid_to_id(f"{first}-3") == 1 + want * 10 + 3  # alone: stable
    with pytest.raises(IdMapError) as caught:
        strict.sid_to_id(f"{second}-3", entry=ENTRY)
    assert caught.value.kind == "order_dependent"
    assert "domain_slices" in str(caught.value)
    with pytest.raises(IdMapError):  # and now the first one too: order decides
        strict.sid_to_id(f"{first}-3")
    pinned = IdMapper(
        range_min=1, range_max=501, range_size=10, helper_table_size=0,
        domain_slices={first: want, second: (want + 1) % 50},
    )  # fmt: skip
    assert pinned.sid_to_id(f"{second}-3") == 1 + (want + 1) % 50 * 10 + 3
    assert pinned.sid_to_id(f"{first}-3") == 1 + want * 10 + 3


def test_autorid_takes_first_free_slices():
    mapper = IdMapper(autorid_compat=True, default_domain_sid=DOMAIN, strict=False)
    assert mapper.sid_to_id(f"{DOMAIN}-1") == 200001
    assert mapper.sid_to_id("S-1-5-21-9-9-9-1") == 400001
    strict = IdMapper(autorid_compat=True, default_domain_sid=DOMAIN)
    assert strict.sid_to_id(f"{DOMAIN}-1") == 200001
    with pytest.raises(IdMapError, match="ldap_idmap_autorid_compat"):
        strict.sid_to_id("S-1-5-21-9-9-9-1")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"range_size": 0}, "SSSD refuses these"),
        ({"range_min": 5, "range_max": 5}, "SSSD refuses these"),
        ({"range_min": 0, "range_max": 10, "range_size": 11}, "SSSD refuses these"),
        ({"range_max": 2**31}, "outside 0..2147483647"),
        ({"range_size": "200000"}, "must be an integer"),
        ({"default_domain_sid": "S-1-5-32"}, "not an Active Directory domain SID"),
        ({"default_domain_sid": "S-1-5-21-1-2-4444444444"}, "does not fit in 32 bits"),
        ({"domain_slices": {DOMAIN: "3"}}, "must be a slice number"),
        ({"domain_slices": {DOMAIN: 10000}}, "cannot be given slice 10000"),
        ({"default_domain_sid": DOMAIN, "domain_slices": {"S-1-5-21-1-1-1": 0}}, "cannot be given slice 0"),
    ],
)  # fmt: skip
def test_bad_settings(kwargs, words):
    with pytest.raises(IdMapSettingsError) as caught:
        IdMapper(**kwargs)
    assert words in str(caught.value), str(caught.value)


def test_fuzz_object_sids_map_into_the_configured_range():
    outcomes = {"mapped": 0, "refused": 0}

    @settings(max_examples=300, deadline=None)
    @given(
        st.integers(1, 2**31 - 2**24), st.integers(1, 2**20), st.integers(1, 64),
        st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**32 - 1)), min_size=1, max_size=8),
        st.booleans(),
    )  # fmt: skip
    def check(range_min, range_size, slices, lookups, autorid):
        mapper = IdMapper(
            range_min=range_min, range_max=range_min + range_size * slices,
            range_size=range_size, autorid_compat=autorid, strict=False,
        )  # fmt: skip
        for domain, rid in lookups:
            sid = f"S-1-5-21-11-22-{domain}-{rid}"
            try:
                number = mapper.sid_to_id(sid)
            except IdMapError as error:
                event(f"refused ({error.kind})")
                outcomes["refused"] += 1
                assert error.kind in ("no_range", "out_of_slices", "collision")
                continue
            event("mapped")
            outcomes["mapped"] += 1
            assert range_min <= number < range_min + range_size * slices
            (owner,) = [
                s for s in mapper.slices() if s.min_id <= number <= s.max_id
            ]  # exactly one slice holds it
            assert owner.domain_sid == f"S-1-5-21-11-22-{domain}"
            assert number - owner.min_id == rid - owner.first_rid

    check()
    total = outcomes["mapped"] + outcomes["refused"]
    assert outcomes["mapped"] >= total // 2, outcomes
