"""Streaming verification of the audit log, from the database or from an exported JSONL file.

What is checked
    Every event: it is UTF-8 JSON, an object with exactly the event fields, byte-identical to the
    canonical JSON of what it parses to, its ``index`` equals its position and its ``prev_hash``
    is the previous event's leaf hash (``ZERO_HASH`` for the first). Every checkpoint: it carries
    a valid signature by the given key, tree sizes never go backwards, and its root equals the
    Merkle root recomputed over the events up to its size. A checkpoint beyond the last event
    means the log was truncated.

How it stays fast (≈3 µs per event here, JSON parsing alone costs more)
    Events are buffered until the next checkpoint is due, leaf-hashed in a batch and folded into
    a :class:`~audit.merkle.Frontier`. When the root matches a validly signed checkpoint, the
    buffered bytes are proven identical to what the signer committed to, and the signer
    (``AuditLog.append``) only ever commits canonical, correctly indexed and chained events, so
    parsing them again would prove nothing new about tampering. Events no checkpoint covers yet
    (the tail, or a backlog of more than ``pending_limit`` events) get the per-event checks, and
    so does a segment whose root does not match, to name the first bad event. ``full=True`` runs
    the per-event checks on every event, which also checks the writer; it is about ten times slower.

Checkpoint placement
    A checkpoint may be added before the events it covers (it waits until the log reaches its
    size) or right after the event that brings the log to its size, but not later: once more
    events have been added its root can no longer be recomputed, and it is reported as a failure.
    The export puts each checkpoint right after the event that makes the tree reach its size.

``first_bad_index`` names the earliest event the first failure implicates: the event that is
malformed, not canonical or out of place; for a broken ``prev_hash`` link the earlier of the two
events, since either may have been altered; for a bad checkpoint (signature, key, root, order)
the first event not attested by an earlier verified checkpoint; for a truncated log the first
missing index. It never points before the last verified checkpoint.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import IO, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from audit.canonical import (
    EVENT_FIELDS,
    ZERO_HASH,
    canonical_json,
    canonical_text,
    looks_like_rfc3339_utc,
)
from audit.checkpoint import Checkpoint, key_id, public_key_from_pem, verify_checkpoint
from audit.merkle import Frontier

_sha256 = hashlib.sha256
_json_decode = json.JSONDecoder().decode

# An event line is canonical_json({"event": E, "record": "event"}): these bytes around E's own
# canonical JSON, since "event" sorts before "record".
_EVENT_PREFIX = b'{"event":'
_EVENT_SUFFIX = b',"record":"event"}'


class UnusableInput(Exception):
    """The input cannot be examined at all (missing or unreadable file, unparsable public key).

    Distinct from a log that was read and found tampered, which is a :class:`VerifyResult`.
    """


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of a verification: counts of records read and the first failure, if any."""

    ok: bool
    events: int
    checkpoints: int
    first_bad_index: int | None
    reason: str | None


Failure = tuple[int, str]  # (first_bad_index, reason)


class LogVerifier:
    """Verifies a log fed in order, event by event or in runs; keeps the first failure.

    Feed events with :meth:`add_event_bytes` or :meth:`add_events`, checkpoints with
    :meth:`add_checkpoint`, then call :meth:`result` once. See the module docstring for what is
    checked and where checkpoints may be placed; adding every checkpoint first and then all events
    is fine.
    """

    def __init__(
        self, public_key: Ed25519PublicKey, *, full: bool = False, pending_limit: int = 1 << 16
    ) -> None:
        if pending_limit < 1:
            raise ValueError("pending_limit must be at least 1")
        self._public_key = public_key
        self._key_id = key_id(public_key)
        self._full = full
        self._pending_limit = pending_limit
        self._frontier = Frontier()  # the events verified so far (or found bad)
        self._prev_hex = ZERO_HASH  # leaf hash of the frontier's last event
        self._pending: list[bytes] = []  # the events after the frontier's, unexamined
        self._consumed = 0  # events taken out of _pending (into the frontier, or discarded)
        self._flush_at = pending_limit  # len(_pending) at which _flush must run
        self._waiting: deque[Checkpoint] = deque()  # signature good, log not at its size yet
        self._attested = 0  # tree size of the last checkpoint whose root matched
        self._last_checkpoint_size = 0
        self._checkpoints = 0
        self._failure: Failure | None = None
        self._finished = False

    @property
    def failed(self) -> bool:
        """True once a failure has been found; later records no longer matter."""
        return self._failure is not None

    def add_event_bytes(self, canonical: bytes) -> None:
        """Add the next event's exact bytes, as stored or exported."""
        # The hot path only buffers; hashing happens a batch at a time in _flush.
        pending = self._pending
        pending.append(canonical)
        if len(pending) >= self._flush_at:
            self._flush()

    def add_events(self, events: Iterable[bytes]) -> None:
        """Add the next events' exact bytes, in index order (same as repeated add_event_bytes)."""
        pending = self._pending
        pending += events
        if len(pending) >= self._flush_at:
            self._flush()

    def add_checkpoint(self, cp: Checkpoint) -> None:
        """Add a checkpoint at its place in the log (see the module docstring)."""
        self._refuse_if_finished()
        self._checkpoints += 1
        if self._failure is not None:
            return
        label = f"checkpoint #{self._checkpoints}"
        if not verify_checkpoint(cp, self._public_key):
            if cp.key_id != self._key_id:
                why = f"is signed by key {cp.key_id!r}, not by the trusted key {self._key_id!r}"
            else:
                why = "has an invalid signature or malformed fields"
            self._fail_after_pending(f"{label} {why}", at_position=False)
            return
        size = cp.tree_size
        if size < self._last_checkpoint_size:
            self._fail_after_pending(
                f"{label}: tree size {size} is smaller than the previous checkpoint's "
                f"{self._last_checkpoint_size}",
                at_position=False,
            )
            return
        self._last_checkpoint_size = size
        read = self._frontier.size + len(self._pending)
        if size < read:
            self._fail_after_pending(
                f"{label} for tree size {size} comes after {read} events; it must come no later "
                "than right after the event that completes its tree",
                at_position=False,
            )
            return
        self._waiting.append(cp)
        self._flush()

    def add_unreadable(self, description: str) -> None:
        """Record that the next record could not be read (a garbled export line): tampering."""
        self._refuse_if_finished()
        if self._failure is None:
            self._fail_after_pending(description, at_position=True)

    def result(self) -> VerifyResult:
        """Finish: run the per-event checks on events no checkpoint covered; detect truncation."""
        if not self._finished:
            self._finished = True
            self._flush_at = 0  # a later add_event_bytes reaches _flush, which refuses
            tail_ok = self._failure is None and self._settle(self._take_pending(), check=True)
            if tail_ok and self._waiting:
                size = self._frontier.size
                self._failure = (
                    size,
                    f"the log ends after {size} events but a checkpoint covers "
                    f"{self._waiting[-1].tree_size}: events from index {size} are missing",
                )
        failure = self._failure
        return VerifyResult(
            ok=failure is None,
            events=self._consumed + len(self._pending),
            checkpoints=self._checkpoints,
            first_bad_index=None if failure is None else failure[0],
            reason=None if failure is None else failure[1],
        )

    # -- internals ---------------------------------------------------------------------------

    def _refuse_if_finished(self) -> None:
        if self._finished:
            raise RuntimeError("result() was already called")

    def _take_pending(self) -> list[bytes]:
        batch = self._pending
        self._pending = []
        self._consumed += len(batch)
        return batch

    def _flush(self) -> None:
        """Settle pending events up to each checkpoint that is due, or a backlog's worth."""
        self._refuse_if_finished()
        pending = self._pending
        used = 0  # slicing and deleting once beats deleting per checkpoint
        while self._failure is None:
            base = self._frontier.size  # index of pending[used]
            available = len(pending) - used
            if self._waiting and self._waiting[0].tree_size - base <= available:
                take = self._waiting[0].tree_size - base
                self._reach_checkpoint(pending[used : used + take])
            elif available >= self._pending_limit:
                take = self._pending_limit
                self._settle(pending[used : used + take], check=True)
            else:
                break
            used += take
        if self._failure is not None:
            used = len(pending)  # nothing after the first failure is examined
        del pending[:used]
        self._consumed += used
        if self._failure is not None:
            self._flush_at = 1  # only count what comes next
        elif self._waiting:
            due = self._waiting[0].tree_size - self._frontier.size
            self._flush_at = min(due, self._pending_limit)
        else:
            self._flush_at = self._pending_limit

    def _settle(self, batch: list[bytes], *, check: bool) -> bool:
        """Fold ``batch`` into the tree, after the per-event checks if ``check``; False on failure."""
        if check:
            leaves, failure = _check_events(batch, self._frontier.size, self._prev_hex, self._attested)
            if failure is not None:
                self._failure = failure
                return False
        else:
            leaves = [_sha256(b"\x00" + event).digest() for event in batch]
        if leaves:
            self._frontier.extend(leaves)
            self._prev_hex = leaves[-1].hex()
        return True

    def _reach_checkpoint(self, batch: list[bytes]) -> None:
        """``batch`` brings the log to the first waiting checkpoint(s): compare roots."""
        start, prev_hex = self._frontier.size, self._prev_hex
        if not self._settle(batch, check=self._full):
            return
        size = self._frontier.size
        root = self._frontier.root().hex()
        while self._waiting and self._waiting[0].tree_size == size:
            if self._waiting.popleft().root_hash != root:
                if not self._full:
                    # Name the first bad event if the per-event checks can; they come first.
                    _, failure = _check_events(batch, start, prev_hex, self._attested)
                    if failure is not None:
                        self._failure = failure
                        return
                self._failure = (
                    self._attested,
                    f"the checkpoint for tree size {size} does not match the events' Merkle root",
                )
                return
        self._attested = size

    def _fail_after_pending(self, reason: str, *, at_position: bool) -> None:
        """Record a failure found at the current record, unless a pending event fails first."""
        if self._settle(self._take_pending(), check=True):
            self._failure = (self._frontier.size if at_position else self._attested, reason)
        self._flush_at = 1


def _check_events(
    events: Sequence[bytes], start: int, prev_hex: str, attested: int
) -> tuple[list[bytes], Failure | None]:
    """Per-event checks of ``events`` (indices from ``start``); their leaf hashes up to a failure."""
    leaves: list[bytes] = []
    for position, data in enumerate(events, start):
        failure = _event_failure(data, position, prev_hex, attested)
        if failure is not None:
            return leaves, failure
        leaf = _sha256(b"\x00" + data).digest()
        leaves.append(leaf)
        prev_hex = leaf.hex()
    return leaves, None


def _event_failure(data: bytes, position: int, prev_hex: str, attested: int) -> Failure | None:
    where = f"event at position {position}"
    try:
        text = data.decode("utf-8")
        event = _json_decode(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return position, f"{where} is not UTF-8 JSON"
    if type(event) is not dict or event.keys() != EVENT_FIELDS:
        return position, f"{where} is not an object with exactly the event fields"
    try:
        canonical = canonical_text(event)
    except ValueError:  # NaN or Infinity
        canonical = None
    if canonical != text:
        return position, f"{where} is not in canonical JSON form"
    if not _well_typed(event):
        return position, f"{where} has a field of the wrong type or format"
    index = event["index"]
    if index > position:
        return position, f"{where} has index {index}: events are missing or out of order"
    if index < position:
        # Something was inserted or repeated; the run that claims these indices starts there.
        return max(index, attested), f"{where} has index {index}: an event was inserted"
    if event["prev_hash"] != prev_hex:
        if position == 0:
            return 0, "the first event's prev_hash is not all zeros"
        if position == attested:  # the event before is vouched for by a checkpoint
            return position, f"{where}: prev_hash is not the leaf hash of attested event {position - 1}"
        return (
            position - 1,
            f"{where}: prev_hash is not the leaf hash of event {position - 1}; one of the two was altered",
        )
    return None


def _well_typed(event: dict[str, object]) -> bool:
    if type(event["index"]) is not int:
        return False
    if type(event["prev_hash"]) is not str or type(event["subject"]) is not dict:
        return False
    if type(event["details"]) is not dict:
        return False
    if type(event["type"]) is not str or type(event["actor"]) is not str:
        return False
    return looks_like_rfc3339_utc(event["timestamp"])


# -- export ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unreadable:
    """An export line that is neither an event nor a checkpoint record."""

    line_number: int
    reason: str


ExportRecord = bytes | Checkpoint | Unreadable
"""What :func:`read_export` yields: event bytes, a checkpoint, or an unreadable line."""


def write_export(
    destination: str | os.PathLike[str] | IO[bytes],
    events: Iterable[bytes],
    checkpoints: Iterable[Checkpoint],
) -> None:
    """Write the JSONL export: events in the given (index) order, each checkpoint right after
    the event that makes the tree reach its size.

    Event bytes are copied verbatim, so stored bytes that were tampered with stay detectable;
    checkpoints beyond the last event are written at the end, where they show the truncation.
    """
    if isinstance(destination, str | os.PathLike):
        with open(destination, "wb") as out:
            out.writelines(export_lines(events, checkpoints))
    else:
        destination.writelines(export_lines(events, checkpoints))


def export_lines(events: Iterable[bytes], checkpoints: Iterable[Checkpoint]) -> Iterator[bytes]:
    """The lines of the JSONL export (see :func:`write_export`), lazily: for streaming responses."""
    ordered = sorted(checkpoints, key=lambda cp: cp.tree_size)
    next_cp = 0
    for written, event in enumerate(events):
        while next_cp < len(ordered) and ordered[next_cp].tree_size <= written:
            yield _checkpoint_line(ordered[next_cp])
            next_cp += 1
        yield _EVENT_PREFIX + event + _EVENT_SUFFIX + b"\n"
    for cp in ordered[next_cp:]:
        yield _checkpoint_line(cp)


#: Columns of the CSV export (for reading in a spreadsheet; the JSONL export is the verifiable one).
CSV_COLUMNS = ("index", "timestamp", "type", "actor", "subject", "details", "prev_hash")


def csv_lines(events: Iterable[bytes], since: str | None = None) -> Iterator[bytes]:
    """The CSV export of canonical ``events`` (UTF-8, header first), in chunks of about 64 KiB;
    ``since``: only events whose RFC 3339 UTC timestamp is at or after it."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for canonical in events:
        event = json.loads(canonical)
        if since and event["timestamp"] < since:
            continue
        writer.writerow(
            [event["index"], event["timestamp"], event["type"], event["actor"],
             json.dumps(event["subject"], ensure_ascii=False, sort_keys=True),
             json.dumps(event["details"], ensure_ascii=False, sort_keys=True),
             event["prev_hash"]]
        )  # fmt: skip
        if buffer.tell() >= 1 << 16:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")


def _checkpoint_line(cp: Checkpoint) -> bytes:
    return canonical_json({"record": "checkpoint", "checkpoint": cp.to_dict()}) + b"\n"


def read_export(source: str | os.PathLike[str] | Iterable[bytes]) -> Iterator[ExportRecord]:
    """Read an export file (path) or its lines (bytes), yielding one record per line.

    An event line must be exactly canonical JSON, as :func:`write_export` writes it; its event
    bytes are taken verbatim from inside it (for a canonical line they are the canonical JSON of
    the event, which the verifier checks like any stored event). Raises :class:`UnusableInput`
    if the file cannot be opened (at once) or read (while iterating).
    """
    return _one_per_line(_read_runs(source))  # not a generator itself: opening fails here


def _one_per_line(runs: Iterator[list[bytes] | Checkpoint | Unreadable]) -> Iterator[ExportRecord]:
    for item in runs:
        if isinstance(item, list):
            yield from item
        else:
            yield item


def _read_runs(
    source: str | os.PathLike[str] | Iterable[bytes],
) -> Iterator[list[bytes] | Checkpoint | Unreadable]:
    """Like :func:`read_export`, but consecutive events come as one list (much faster)."""
    if isinstance(source, str | os.PathLike):
        try:
            handle = open(source, "rb")  # noqa: SIM115 - the generator closes it
        except OSError as exc:
            raise UnusableInput(f"cannot read {os.fspath(source)!s}: {exc}") from exc
        return _runs_from_file(handle)
    lines = iter(source)
    return _runs_of_line_lists(iter(lambda: list(islice(lines, _LINES_PER_LIST)), []))


_LINES_PER_LIST = 4096
_BLOCK_BYTES = 1 << 16  # measured: much larger blocks are slower (they leave the CPU cache)
_EVENT_LINE_END = _EVENT_SUFFIX + b"\n"
_BETWEEN_EVENTS = _EVENT_LINE_END + _EVENT_PREFIX


def _runs_from_file(handle: IO[bytes]) -> Iterator[list[bytes] | Checkpoint | Unreadable]:
    with handle:
        try:
            yield from _runs_of_blocks(_whole_line_blocks(handle))
        except OSError as exc:
            raise UnusableInput(f"cannot read {handle.name}: {exc}") from exc


def _whole_line_blocks(handle: IO[bytes]) -> Iterator[bytes]:
    """The file in blocks of about _BLOCK_BYTES that end at a line end (the last may not)."""
    rest = b""
    while data := handle.read(_BLOCK_BYTES):
        block = rest + data
        cut = block.rfind(b"\n") + 1
        rest = block[cut:]
        if cut:
            yield block[:cut]
    if rest:
        yield rest


def _runs_of_blocks(blocks: Iterable[bytes]) -> Iterator[list[bytes] | Checkpoint | Unreadable]:
    number = 0  # lines before this block
    for block in blocks:
        # A block of event lines only is PREFIX body SUFFIX\n PREFIX body … SUFFIX\n, and one
        # split cuts out every body. It is exactly that iff no piece holds a newline, that is iff
        # there are as many pieces as lines; otherwise (a checkpoint, junk) go line by line.
        if block.startswith(_EVENT_PREFIX) and block.endswith(_EVENT_LINE_END):
            bodies = block[len(_EVENT_PREFIX) : -len(_EVENT_LINE_END)].split(_BETWEEN_EVENTS)
            if len(bodies) == block.count(b"\n"):
                yield bodies
                number += len(bodies)
                continue
        lines = io.BytesIO(block).readlines()  # splits at b"\n" only, like file iteration
        yield from _runs_of_lines(lines, number)
        number += len(lines)


def _runs_of_line_lists(
    line_lists: Iterable[list[bytes]],
) -> Iterator[list[bytes] | Checkpoint | Unreadable]:
    number = 0
    for lines in line_lists:
        yield from _runs_of_lines(lines, number)
        number += len(lines)


def _runs_of_lines(lines: list[bytes], number: int) -> Iterator[list[bytes] | Checkpoint | Unreadable]:
    """Records of ``lines``, which follow line ``number``; runs of event lines as lists."""
    prefix, line_end = _EVENT_PREFIX, _EVENT_LINE_END
    body_start, body_stop = len(prefix), -len(line_end)
    # A comprehension over all lines: per-line Python statements would dominate the cost.
    bodies = [
        line[body_start:body_stop] if line.startswith(prefix) and line.endswith(line_end) else None
        for line in lines
    ]
    start = 0
    while start < len(bodies):
        try:
            stop = bodies.index(None, start)
        except ValueError:
            stop = len(bodies)
        if stop > start:
            yield cast(list[bytes], bodies[start:stop])
        if stop < len(bodies):
            record = _line_record(number + stop + 1, lines[stop])
            yield [record] if isinstance(record, bytes) else record
        start = stop + 1


def _line_record(number: int, line: bytes) -> bytes | Checkpoint | Unreadable:
    """Any line the fast path passed over: the last line without a newline, a checkpoint, junk."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.startswith(_EVENT_PREFIX) and line.endswith(_EVENT_SUFFIX):
        return line[len(_EVENT_PREFIX) : -len(_EVENT_SUFFIX)]
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):
        return Unreadable(number, f"line {number} is not UTF-8 JSON")
    if not (
        isinstance(record, dict)
        and record.keys() == {"record", "checkpoint"}
        and record["record"] == "checkpoint"
    ):
        return Unreadable(number, f"line {number} is not a canonical event or checkpoint record")
    try:
        if canonical_json(record) != line:
            return Unreadable(number, f"line {number} is not canonical JSON")
        return Checkpoint.from_dict(record["checkpoint"])
    except ValueError as exc:
        return Unreadable(number, f"line {number} is a malformed checkpoint: {exc}")


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Read a PEM Ed25519 public key; :class:`UnusableInput` if missing or not such a key."""
    try:
        with open(path, "rb") as handle:
            pem = handle.read()
    except OSError as exc:
        raise UnusableInput(f"cannot read public key {os.fspath(path)!s}: {exc}") from exc
    try:
        return public_key_from_pem(pem)
    except ValueError as exc:
        raise UnusableInput(f"{os.fspath(path)!s} is not an Ed25519 public key: {exc}") from exc


def verify_export(
    source: str | os.PathLike[str] | Iterable[bytes],
    public_key: Ed25519PublicKey,
    *,
    full: bool = False,
) -> VerifyResult:
    """Verify an export (path or lines) against ``public_key``; see :class:`LogVerifier`."""
    verifier = LogVerifier(public_key, full=full)
    for item in _read_runs(source):
        if isinstance(item, list):
            verifier.add_events(item)
        elif isinstance(item, Checkpoint):
            verifier.add_checkpoint(item)
        else:
            verifier.add_unreadable(item.reason)
    return verifier.result()
