"""The streaming log verifier and the JSONL export: intact logs pass, every tampering is caught
at the right index, whichever way the log is fed."""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.canonical import ZERO_HASH, canonical_json, event_body
from audit.checkpoint import Checkpoint, generate_signing_key, public_key_to_pem, sign_checkpoint
from audit.merkle import Frontier, leaf_hash
from audit.verify import (
    LogVerifier,
    Unreadable,
    UnusableInput,
    VerifyResult,
    load_public_key,
    read_export,
    verify_export,
    write_export,
)

KEY = generate_signing_key()
FOREIGN_KEY = generate_signing_key()
T0 = datetime(2026, 11, 24, 15, 6, 1, tzinfo=UTC)


@dataclass
class Log:
    events: list[bytes]
    checkpoints: list[Checkpoint]


def event(index: int, prev_hash: str, **details: Any) -> dict[str, Any]:
    return event_body(
        index,
        T0 + timedelta(seconds=index),
        "data.read",
        "user:alice",
        {"dataset": "hospital-registry"},
        {"rows": index, "note": "zürich", **details},
        prev_hash,
    )


def seal(
    bodies: list[dict[str, Any]],
    every: int,
    key: Ed25519PrivateKey = KEY,
    *,
    rechain: bool = True,
) -> Log:
    """Serialise events (re-linking prev_hash if ``rechain``) and sign a checkpoint every
    ``every`` events: what an honest writer does, or an attacker holding ``key``."""
    events: list[bytes] = []
    checkpoints: list[Checkpoint] = []
    frontier = Frontier()
    prev = ZERO_HASH
    for number, body in enumerate(bodies, 1):
        if rechain:
            body = {**body, "prev_hash": prev}
        data = canonical_json(body)
        events.append(data)
        prev = leaf_hash(data).hex()
        frontier.append(leaf_hash(data))
        if number % every == 0:
            checkpoints.append(sign_checkpoint(key, number, frontier.root(), T0))
    return Log(events, checkpoints)


def honest_log(n: int = 60, every: int = 10) -> Log:
    return seal([event(i, ZERO_HASH) for i in range(n)], every)


def bodies_of(log: Log) -> list[dict[str, Any]]:
    return [json.loads(data) for data in log.events]


# --- Ways of feeding the verifier; all must agree ---------------------------------------------


def feed_stored(log: Log, *, full: bool = False, pending_limit: int = 1 << 16) -> VerifyResult:
    """Like the database verifier: each checkpoint right after the event completing its tree."""
    verifier = LogVerifier(KEY.public_key(), full=full, pending_limit=pending_limit)
    by_size: dict[int, list[Checkpoint]] = {}
    for cp in log.checkpoints:
        by_size.setdefault(cp.tree_size, []).append(cp)
    for cp in by_size.pop(0, []):
        verifier.add_checkpoint(cp)
    for number, data in enumerate(log.events, 1):
        verifier.add_event_bytes(data)
        for cp in by_size.pop(number, []):
            verifier.add_checkpoint(cp)
    for size in sorted(by_size):
        for cp in by_size[size]:
            verifier.add_checkpoint(cp)
    return verifier.result()


def feed_export(log: Log, *, full: bool = False, via_file: bool = False) -> VerifyResult:
    if via_file:  # read back in blocks, not lines
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "export.jsonl"
            write_export(path, log.events, log.checkpoints)
            return verify_export(path, KEY.public_key(), full=full)
    out = io.BytesIO()
    write_export(out, log.events, log.checkpoints)
    return verify_export(out.getvalue().splitlines(keepends=True), KEY.public_key(), full=full)


FEEDERS: dict[str, Callable[[Log], VerifyResult]] = {
    "stored": feed_stored,
    "stored-full": lambda log: feed_stored(log, full=True),
    "stored-small-backlog": lambda log: feed_stored(log, pending_limit=3),
    "export": feed_export,
    "export-full": lambda log: feed_export(log, full=True),
    "export-file": lambda log: feed_export(log, via_file=True),
}


@pytest.fixture(params=sorted(FEEDERS))
def feed(request: pytest.FixtureRequest) -> Callable[[Log], VerifyResult]:
    return FEEDERS[request.param]


# --- Intact logs ------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "every"), [(0, 10), (1, 1), (60, 10), (65, 10), (64, 64), (7, 100)])
def test_intact_logs_verify(feed: Callable[[Log], VerifyResult], n: int, every: int) -> None:
    log = honest_log(n, every)
    assert feed(log) == VerifyResult(
        ok=True, events=n, checkpoints=n // every, first_bad_index=None, reason=None
    )


def test_checkpoints_may_come_before_their_events() -> None:
    log = honest_log(60, 10)
    verifier = LogVerifier(KEY.public_key())
    for cp in log.checkpoints:
        verifier.add_checkpoint(cp)
    verifier.add_events(log.events[:25])
    for data in log.events[25:]:
        verifier.add_event_bytes(data)
    assert verifier.result().ok


def test_empty_tree_and_repeated_checkpoints(feed: Callable[[Log], VerifyResult]) -> None:
    log = honest_log(20, 10)
    empty = sign_checkpoint(KEY, 0, Frontier().root(), T0)
    again = sign_checkpoint(KEY, 10, bytes.fromhex(log.checkpoints[0].root_hash), T0)
    log.checkpoints = [empty, log.checkpoints[0], again, log.checkpoints[1]]
    result = feed(log)
    assert result.ok and result.checkpoints == 4


# --- Tampering: each case gives ok=False and names the right event ---------------------------


def modify_field(log: Log, i: int) -> Log:
    bodies = bodies_of(log)
    bodies[i]["details"]["rows"] = 10**6
    return Log([canonical_json(b) for b in bodies], log.checkpoints)


def delete(log: Log, i: int) -> Log:
    return Log(log.events[:i] + log.events[i + 1 :], log.checkpoints)


def swap(log: Log, i: int, j: int) -> Log:
    events = list(log.events)
    events[i], events[j] = events[j], events[i]
    return Log(events, log.checkpoints)


def insert_forged(log: Log, i: int) -> Log:
    """A well-formed event claiming index i, correctly chained to event i - 1."""
    prev = leaf_hash(log.events[i - 1]).hex() if i else ZERO_HASH
    forged = canonical_json(event(i, prev, note="forged"))
    return Log([*log.events[:i], forged, *log.events[i:]], log.checkpoints)


def reformat(log: Log, i: int) -> Log:
    """Same content, non-canonical bytes (json.dumps' default spacing)."""
    events = list(log.events)
    events[i] = json.dumps(json.loads(events[i]), sort_keys=True).encode()
    return Log(events, log.checkpoints)


def resign(log: Log, size: int) -> Log:
    """Re-sign the checkpoint for ``size`` (same content) with a foreign key."""
    checkpoints = [
        sign_checkpoint(FOREIGN_KEY, cp.tree_size, bytes.fromhex(cp.root_hash), T0)
        if cp.tree_size == size
        else cp
        for cp in log.checkpoints
    ]
    return Log(log.events, checkpoints)


def rewrite_and_rechain(log: Log, i: int, key: Ed25519PrivateKey | None) -> Log:
    """Change event i and fix every later prev_hash. With a key, re-sign the checkpoints from
    the first affected one on (an attacker with a foreign key); without, keep the originals."""
    bodies = bodies_of(log)
    bodies[i]["details"]["rows"] = -1
    forged = seal(bodies, 10, key or KEY)
    if key is None:
        return Log(forged.events, log.checkpoints)
    keep = [cp for cp in log.checkpoints if cp.tree_size <= i]
    return Log(forged.events, keep + [cp for cp in forged.checkpoints if cp.tree_size > i])


def set_prev_hash(log: Log, i: int) -> Log:
    bodies = bodies_of(log)
    bodies[i]["prev_hash"] = "1" * 64
    return Log([canonical_json(b) for b in bodies], log.checkpoints)


def replace_event(log: Log, i: int, data: bytes) -> Log:
    return Log([*log.events[:i], data, *log.events[i + 1 :]], log.checkpoints)


CASES: list[tuple[str, Callable[[Log], Log], int, str]] = [
    ("modified field", lambda log: modify_field(log, 23), 23, "prev_hash"),
    ("modified last event before a checkpoint", lambda log: modify_field(log, 29), 20, "root"),
    ("modified first event", lambda log: modify_field(log, 0), 0, "prev_hash"),
    ("deleted event", lambda log: delete(log, 23), 23, "index 24"),
    ("deleted first event", lambda log: delete(log, 0), 0, "index 1"),
    ("reordered events", lambda log: swap(log, 23, 27), 23, "index 27"),
    ("swapped neighbours", lambda log: swap(log, 23, 24), 23, "index 24"),
    ("inserted event", lambda log: insert_forged(log, 23), 23, "inserted"),
    ("inserted after a checkpoint", lambda log: insert_forged(log, 30), 30, "inserted"),
    (
        "duplicated event",
        lambda log: Log([*log.events[:24], *log.events[23:]], log.checkpoints),
        23,
        "inserted",
    ),
    ("truncated", lambda log: Log(log.events[:55], log.checkpoints), 55, "missing"),
    ("truncated at a checkpoint", lambda log: Log(log.events[:50], log.checkpoints), 50, "missing"),
    ("checkpoint re-signed by a foreign key", lambda log: resign(log, 40), 30, "signed by key"),
    ("non-canonical bytes", lambda log: reformat(log, 23), 23, "canonical"),
    ("non-canonical last event before a checkpoint", lambda log: reformat(log, 29), 29, "canonical"),
    ("rewritten and re-chained", lambda log: rewrite_and_rechain(log, 23, None), 20, "root"),
    (
        "rewritten, re-chained, re-signed by a foreign key",
        lambda log: rewrite_and_rechain(log, 23, FOREIGN_KEY),
        20,
        "signed by key",
    ),
    ("link altered right after a checkpoint", lambda log: set_prev_hash(log, 30), 30, "attested event 29"),
    ("tail event modified", lambda log: modify_field(log, 61), 61, "prev_hash"),
    ("tail event not canonical", lambda log: reformat(log, 64), 64, "canonical"),
    ("not JSON", lambda log: replace_event(log, 23, b'{"index":23'), 23, "not UTF-8 JSON"),
    ("not UTF-8", lambda log: replace_event(log, 23, b'"\xff"'), 23, "not UTF-8 JSON"),
    (
        "duplicate key",
        lambda log: replace_event(
            log, 23, log.events[23].replace(b'{"actor":', b'{"actor":"mallory","actor":')
        ),
        23,
        "canonical",
    ),
    (
        "NaN",
        lambda log: replace_event(log, 23, log.events[23].replace(b'"rows":23', b'"rows":NaN')),
        23,
        "canonical",
    ),
    (
        "missing field",
        lambda log: replace_event(
            log, 23, canonical_json({k: v for k, v in json.loads(log.events[23]).items() if k != "actor"})
        ),
        23,
        "event fields",
    ),
    (
        "index is a string",
        lambda log: replace_event(log, 23, log.events[23].replace(b'"index":23', b'"index":"23"')),
        23,
        "wrong type",
    ),
    (
        "bad timestamp",
        lambda log: replace_event(log, 23, log.events[23].replace(b'.000000Z"', b'Z"')),
        23,
        "wrong type",
    ),
    (
        "signed checkpoint beyond the last event",
        lambda log: Log(log.events, [*log.checkpoints[:3], sign_checkpoint(KEY, 70, bytes(32), T0)]),
        65,
        "missing",
    ),
]


@pytest.mark.parametrize(
    ("tamper", "first_bad", "reason"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_tampering_is_caught_at_the_right_index(
    feed: Callable[[Log], VerifyResult],
    tamper: Callable[[Log], Log],
    first_bad: int,
    reason: str,
) -> None:
    log = honest_log(65, 10)  # checkpoints at 10..60; events 60..64 are covered by none
    result = feed(tamper(log))
    assert not result.ok
    assert result.first_bad_index == first_bad, result.reason
    assert result.reason is not None and reason in result.reason


def test_wrong_public_key_fails_at_the_first_checkpoint() -> None:
    log = honest_log(30, 10)
    verifier = LogVerifier(FOREIGN_KEY.public_key())
    for number, data in enumerate(log.events, 1):
        verifier.add_event_bytes(data)
        if number % 10 == 0:
            verifier.add_checkpoint(log.checkpoints[number // 10 - 1])
    result = verifier.result()
    assert (result.ok, result.first_bad_index) == (False, 0)
    assert result.events == 30 and result.checkpoints == 3


def test_checkpoint_sizes_must_not_go_backwards() -> None:
    log = honest_log(40, 10)
    verifier = LogVerifier(KEY.public_key())
    verifier.add_checkpoint(log.checkpoints[2])  # size 30, waits for its events
    verifier.add_checkpoint(log.checkpoints[1])  # size 20
    result = verifier.result()
    assert (result.ok, result.first_bad_index) == (False, 0)
    assert result.reason is not None and "smaller than the previous" in result.reason


def test_checkpoint_after_its_size_was_passed_fails() -> None:
    log = honest_log(40, 10)
    verifier = LogVerifier(KEY.public_key())
    for number, data in enumerate(log.events, 1):
        verifier.add_event_bytes(data)
        if number == 10:
            verifier.add_checkpoint(log.checkpoints[0])
    verifier.add_checkpoint(log.checkpoints[1])  # size 20, after 40 events
    result = verifier.result()
    assert (result.ok, result.first_bad_index) == (False, 10)
    assert result.reason is not None and "comes after 40 events" in result.reason


def test_events_before_a_bad_checkpoint_are_checked_first() -> None:
    # An event failure earlier in the stream wins over a checkpoint failure found later.
    log = resign(reformat(honest_log(40, 10), 12), 20)
    for feed in FEEDERS.values():
        result = feed(log)
        assert (result.ok, result.first_bad_index) == (False, 12)


def test_only_full_mode_checks_what_the_signer_signed() -> None:
    # A writer bug (first prev_hash not zero) signed with the real key: the default mode trusts
    # signed content, full=True re-checks every event and catches the writer.
    bodies = [event(i, ZERO_HASH) for i in range(20)]
    log = seal(bodies, 10)
    first = {**json.loads(log.events[0]), "prev_hash": "1" * 64}
    buggy = seal([first, *bodies_of(log)[1:]], 10, rechain=False)
    buggy = seal([json.loads(d) for d in buggy.events], 10, rechain=False)
    assert feed_stored(buggy).ok
    result = feed_stored(buggy, full=True)
    assert (result.ok, result.first_bad_index) == (False, 0)
    assert result.reason is not None and "all zeros" in result.reason


def test_the_last_event_after_the_last_checkpoint_is_not_protected() -> None:
    # Inherent to hash chains: nothing commits to the newest event until a checkpoint does.
    log = honest_log(15, 10)
    assert feed_stored(modify_field(log, 14)).ok
    assert not feed_stored(modify_field(log, 13)).ok


def test_counting_continues_after_a_failure_and_results_are_final() -> None:
    log = delete(honest_log(60, 10), 5)
    verifier = LogVerifier(KEY.public_key())
    verifier.add_events(log.events)
    for cp in log.checkpoints:
        verifier.add_checkpoint(cp)
    assert verifier.failed
    result = verifier.result()
    assert (result.events, result.checkpoints, result.first_bad_index) == (59, 6, 5)
    assert verifier.result() == result
    with pytest.raises(RuntimeError, match="already"):
        verifier.add_event_bytes(log.events[0])
    with pytest.raises(RuntimeError, match="already"):
        verifier.add_checkpoint(log.checkpoints[0])


tamper_ops = st.one_of(
    st.tuples(st.just("modify"), st.integers(0, 39)),
    st.tuples(st.just("delete"), st.integers(0, 39)),
    st.tuples(st.just("swap"), st.integers(0, 38), st.integers(1, 10)),
    st.tuples(st.just("insert"), st.integers(1, 39)),
    st.tuples(st.just("truncate"), st.integers(1, 39)),
    st.tuples(st.just("reformat"), st.integers(0, 39)),
    st.tuples(st.just("resign"), st.integers(0, 39)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(op=tamper_ops, every=st.sampled_from([1, 4, 5, 8, 40]))
def test_all_modes_agree_on_any_tampering(op: tuple[Any, ...], every: int) -> None:
    log = honest_log(40, every)  # every divides 40: the log ends with a checkpoint
    kind, i = op[0], op[1]
    if kind == "resign":
        i = every * (1 + i % (40 // every))
    tampered = {
        "modify": lambda: modify_field(log, i),
        "delete": lambda: delete(log, i),
        "swap": lambda: swap(log, i, min(i + op[-1], 39)),
        "insert": lambda: insert_forged(log, i),
        "truncate": lambda: Log(log.events[:i], log.checkpoints),
        "reformat": lambda: reformat(log, i),
        "resign": lambda: resign(log, i),
    }[kind]()
    results = {name: feed(tampered) for name, feed in FEEDERS.items()}
    # The log ends with a checkpoint, so every change to its bytes must be caught ...
    assert not results["stored"].ok
    # ... and how it is fed or checked does not change what is reported.
    assert len({(r.ok, r.first_bad_index, r.reason) for r in results.values()}) == 1, results


# --- Export format ----------------------------------------------------------------------------


def export_lines(log: Log) -> list[bytes]:
    out = io.BytesIO()
    write_export(out, log.events, log.checkpoints)
    return out.getvalue().splitlines(keepends=True)


def test_export_lines_are_canonical_wrappers_in_log_order() -> None:
    log = honest_log(25, 10)
    lines = export_lines(log)
    assert len(lines) == 25 + 2
    kinds = [json.loads(line)["record"] for line in lines]
    assert kinds[10] == kinds[21] == "checkpoint"
    assert kinds.count("event") == 25
    for line in lines:
        assert line.endswith(b"\n")
        record = json.loads(line)
        assert canonical_json(record) + b"\n" == line
        if record["record"] == "event":
            assert set(record) == {"record", "event"}
    assert list(read_export(lines)) == [
        *log.events[:10],
        log.checkpoints[0],
        *log.events[10:20],
        log.checkpoints[1],
        *log.events[20:],
    ]


def test_export_file_round_trip(tmp_path: Path) -> None:
    log = honest_log(30, 10)
    path = tmp_path / "audit.jsonl"
    write_export(path, log.events, log.checkpoints)
    key_path = tmp_path / "audit-key.pem"
    key_path.write_bytes(public_key_to_pem(KEY.public_key()))
    result = verify_export(path, load_public_key(key_path))
    assert result == VerifyResult(True, 30, 3, None, None)


def test_missing_or_unreadable_inputs_are_unusable(tmp_path: Path) -> None:
    with pytest.raises(UnusableInput, match="cannot read"):
        verify_export(tmp_path / "missing.jsonl", KEY.public_key())
    with pytest.raises(UnusableInput, match="cannot read"):
        list(read_export(tmp_path))  # a directory
    with pytest.raises(UnusableInput, match="cannot read public key"):
        load_public_key(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    with pytest.raises(UnusableInput, match="not an Ed25519 public key"):
        load_public_key(garbage)


def verify_lines(lines: list[bytes], tmp_path: Path, source: str, *, full: bool = False) -> VerifyResult:
    """Verify export lines handed over as a list, or written to a file and read from there."""
    if source == "lines":
        return verify_export(lines, KEY.public_key(), full=full)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines))
    return verify_export(path, KEY.public_key(), full=full)


@pytest.mark.parametrize("source", ["lines", "file"])
def test_last_line_may_lack_its_newline(source: str, tmp_path: Path) -> None:
    lines = export_lines(honest_log(25, 10))
    lines[-1] = lines[-1].rstrip(b"\n")
    assert verify_lines(lines, tmp_path, source).ok


def test_file_and_line_reading_agree_across_blocks(tmp_path: Path) -> None:
    # ~700 events of ~250 bytes span several 64 KiB read blocks; checkpoints land anywhere.
    log = honest_log(700, 7)
    lines = export_lines(log)
    path = tmp_path / "export.jsonl"
    path.write_bytes(b"".join(lines))
    assert list(read_export(path)) == list(read_export(lines))
    lines[-1] = lines[-1].rstrip(b"\n")
    lines[351] = b"junk\n"
    path.write_bytes(b"".join(lines))
    assert list(read_export(path)) == list(read_export(lines))
    assert Unreadable(352, "line 352 is not UTF-8 JSON") in list(read_export(path))


def test_an_event_longer_than_a_read_block(tmp_path: Path) -> None:
    bodies = [event(i, ZERO_HASH) for i in range(5)]
    bodies[2]["details"]["blob"] = "x" * 200_000
    log = seal(bodies, 5)
    assert verify_lines(export_lines(log), tmp_path, "file").ok


@pytest.mark.parametrize("source", ["lines", "file"])
@pytest.mark.parametrize(
    ("garble", "reason"),
    [
        (lambda line: b"garbage\n", "not UTF-8 JSON"),
        (lambda line: b"\n", "not UTF-8 JSON"),
        (lambda line: line.replace(b"\n", b"\r\n"), "not a canonical event or checkpoint"),
        (lambda line: line.replace(b'{"event":', b'{"event": '), "canonical"),
        (lambda line: line.replace(b'"record":"event"', b'"record":"other"'), "not a canonical"),
        (lambda line: line[:40] + b"\n", "not UTF-8 JSON"),
    ],
)
def test_garbled_event_line_is_tampering_at_its_position(
    garble: Callable[[bytes], bytes], reason: str, source: str, tmp_path: Path
) -> None:
    lines = export_lines(honest_log(25, 10))
    lines[14] = garble(lines[14])  # line 14 holds event 13 (a checkpoint line precedes it)
    for full in (False, True):
        result = verify_lines(lines, tmp_path, source, full=full)
        assert (result.ok, result.first_bad_index) == (False, 13), result
        assert result.reason is not None and reason in result.reason


@pytest.mark.parametrize(
    ("garble", "reason"),
    [
        (lambda cp: {**cp, "tree_size": "ten"}, "malformed checkpoint"),
        (lambda cp: {**cp, "extra": 1}, "malformed checkpoint"),
    ],
)
@pytest.mark.parametrize("source", ["lines", "file"])
def test_garbled_checkpoint_line_is_tampering(
    garble: Callable[[dict[str, Any]], dict[str, Any]], reason: str, source: str, tmp_path: Path
) -> None:
    log = honest_log(25, 10)
    lines = export_lines(log)
    record = json.loads(lines[10])
    lines[10] = canonical_json({**record, "checkpoint": garble(record["checkpoint"])}) + b"\n"
    result = verify_lines(lines, tmp_path, source)
    assert (result.ok, result.first_bad_index) == (False, 10)
    assert result.reason is not None and reason in result.reason


def test_non_canonical_checkpoint_line_is_unreadable() -> None:
    lines = export_lines(honest_log(25, 10))
    lines[10] = json.dumps(json.loads(lines[10])).encode() + b"\n"
    records = list(read_export(lines))
    assert records[10] == Unreadable(11, "line 11 is not canonical JSON")


def test_checkpoints_beyond_the_last_event_are_exported_last() -> None:
    log = honest_log(30, 10)
    lines = export_lines(Log(log.events[:25], log.checkpoints))
    assert json.loads(lines[-1])["checkpoint"]["tree_size"] == 30
    result = verify_export(lines, KEY.public_key())
    assert (result.ok, result.first_bad_index) == (False, 25)


def test_bad_pending_limit_is_rejected() -> None:
    with pytest.raises(ValueError, match="pending_limit"):
        LogVerifier(KEY.public_key(), pending_limit=0)


def test_replaced_checkpoint_with_valid_signature_but_other_root_fails() -> None:
    log = honest_log(30, 10)
    wrong = sign_checkpoint(KEY, 20, bytes(32), T0)
    result = feed_stored(Log(log.events, [log.checkpoints[0], wrong, log.checkpoints[2]]))
    assert (result.ok, result.first_bad_index) == (False, 10)
    tampered_field = replace(log.checkpoints[1], tree_size=21)
    result = feed_stored(Log(log.events, [log.checkpoints[0], tampered_field]))
    assert (result.ok, result.first_bad_index) == (False, 10)
    assert result.reason is not None and "invalid signature" in result.reason
