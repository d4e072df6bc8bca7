"""Canonical JSON, timestamps and the event envelope (DESIGN.md §4.5)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.canonical import (
    ZERO_HASH,
    canonical_json,
    canonical_text,
    event_body,
    event_leaf_hash,
    is_hex_hash,
    parse_rfc3339_utc,
    rfc3339_utc,
    rfc3339_utc_now,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=25,
)


def test_canonical_form() -> None:
    value = {"b": [1, 2.5, None, True], "a": {"z": "ü€😀", "y": "line\nbreak\u0001"}}
    assert canonical_json(value) == (
        '{"a":{"y":"line\\nbreak\\u0001","z":"ü€😀"},"b":[1,2.5,null,true]}'.encode()
    )


@given(json_values)
def test_canonical_json_is_a_fixed_point_of_parse_and_serialise(value: Any) -> None:
    data = canonical_json(value)
    assert canonical_json(json.loads(data)) == data
    assert canonical_text(value).encode("utf-8") == data
    assert b"\n" not in data  # one event per export line relies on this


@given(st.dictionaries(st.text(), st.integers(), min_size=2))
def test_key_order_does_not_matter(value: dict[str, int]) -> None:
    reversed_order = dict(reversed(list(value.items())))
    assert canonical_json(reversed_order) == canonical_json(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), {"a": [1, float("nan")]}])
def test_nan_and_infinity_are_rejected(value: object) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json(value)


def test_lone_surrogates_are_rejected() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        canonical_json({"a": "\ud800"})


def test_unserialisable_values_are_rejected() -> None:
    with pytest.raises(TypeError):
        canonical_json({"when": datetime.now(UTC)})


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2026, 11, 24, 15, 6, 1, 123456, tzinfo=UTC), "2026-11-24T15:06:01.123456Z"),
        (datetime(2026, 11, 24, 15, 6, 1, tzinfo=UTC), "2026-11-24T15:06:01.000000Z"),
        (
            datetime(2026, 11, 24, 16, 6, 1, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-11-24T15:06:01.000005Z",
        ),
        (datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC), "0999-01-02T03:04:05.000000Z"),
    ],
)
def test_rfc3339_utc(moment: datetime, text: str) -> None:
    assert rfc3339_utc(moment) == text
    assert parse_rfc3339_utc(text) == moment


@given(
    st.datetimes(datetime(2, 1, 1), datetime(9998, 12, 31), timezones=st.just(UTC)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_rfc3339_utc_is_the_same_from_any_zone(moment: datetime, minutes: int) -> None:
    # datetime.UTC takes a shortcut; a zone that merely has offset 0, or any other, takes the long way.
    zero = timezone(timedelta(0), "zero")
    text = rfc3339_utc(moment)
    assert text == rfc3339_utc(moment.astimezone(zero))
    assert parse_rfc3339_utc(text) == moment
    assert rfc3339_utc(moment.astimezone(timezone(timedelta(minutes=minutes)))) == text


def test_naive_datetimes_are_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        rfc3339_utc(datetime(2026, 11, 24, 15, 6, 1))


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-24T15:06:01Z",
        "2026-11-24T15:06:01.123456+00:00",
        "2026-11-24 15:06:01.123456Z",
        "2026-13-24T15:06:01.123456Z",
        "2026-11-24T15:06:01.123456Z\n",
        "\uff12026-11-24T15:06:01.123456Z",  # a full-width digit
    ],
)
def test_parse_rejects_other_formats(text: str) -> None:
    with pytest.raises(ValueError, match=r"RFC 3339|month"):
        parse_rfc3339_utc(text)


def test_event_body() -> None:
    when = datetime(2026, 11, 24, 15, 6, 1, 123456, tzinfo=UTC)
    body = event_body(0, when, "session.started", "user:alice", {"session": "s1"}, {"image": "py"}, ZERO_HASH)
    assert body == {
        "index": 0,
        "timestamp": "2026-11-24T15:06:01.123456Z",
        "type": "session.started",
        "actor": "user:alice",
        "subject": {"session": "s1"},
        "details": {"image": "py"},
        "prev_hash": ZERO_HASH,
    }
    assert canonical_json(body).startswith(b'{"actor":"user:alice","details":{"image":"py"},')


@pytest.mark.parametrize(
    ("index", "type_", "actor", "prev_hash"),
    [
        (-1, "t", "a", ZERO_HASH),
        (True, "t", "a", ZERO_HASH),
        (0, "", "a", ZERO_HASH),
        (0, "t", "", ZERO_HASH),
        (0, "t", "a", "0" * 63),
        (0, "t", "a", "A" * 64),
    ],
)
def test_event_body_rejects_malformed_fields(index: int, type_: str, actor: str, prev_hash: str) -> None:
    with pytest.raises(ValueError, match=r"index|type|actor|prev_hash"):
        event_body(index, datetime.now(UTC), type_, actor, {}, {}, prev_hash)


def test_event_leaf_hash_is_rfc9162_leaf_hash() -> None:
    data = b'{"index":0}'
    assert event_leaf_hash(data) == hashlib.sha256(b"\x00" + data).digest()


def test_zero_hash_and_hex_hash_check() -> None:
    assert ZERO_HASH == "0" * 64
    assert is_hex_hash(ZERO_HASH)
    assert is_hex_hash(hashlib.sha256().hexdigest())
    assert not is_hex_hash(hashlib.sha256().hexdigest().upper())
    assert not is_hex_hash(hashlib.sha256().digest())


@given(json_values)
def test_canonical_json_is_the_reference_serialisation(value: Any) -> None:
    """The shared C encoder writes exactly what ``json.dumps`` writes with the canonical options."""
    reference = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    assert canonical_json(value) == reference.encode("utf-8")
    assert canonical_text(value) == reference


def test_circular_values_are_rejected() -> None:
    looped: dict[str, object] = {}
    looped["self"] = looped
    with pytest.raises(ValueError, match="circular"):
        canonical_json(looped)


def test_rfc3339_utc_now_reads_the_system_clock() -> None:
    """The fast stamp has the exact format and lies between two readings of the system clock."""
    for _ in range(2_000):  # (crossing a second is tested deterministically below)
        before = datetime.now(UTC)
        stamp = rfc3339_utc_now()
        after = datetime.now(UTC)
        # parse_rfc3339_utc also checks the exact format
        assert before - timedelta(microseconds=1) <= parse_rfc3339_utc(stamp) <= after


def test_rfc3339_utc_now_follows_the_second(monkeypatch: pytest.MonkeyPatch) -> None:
    moments = iter([1_764_050_399_999_999_000, 1_764_050_400_000_001_000, 1_764_050_400_000_002_000])
    monkeypatch.setattr("audit.canonical.time.time_ns", lambda: next(moments))
    assert rfc3339_utc_now() == "2025-11-25T05:59:59.999999Z"
    assert rfc3339_utc_now() == "2025-11-25T06:00:00.000001Z"
    assert rfc3339_utc_now() == "2025-11-25T06:00:00.000002Z"
