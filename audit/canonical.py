"""Canonical JSON and the audit event envelope (DESIGN.md §4.5).

The canonical bytes of an event are what gets hashed into the Merkle tree, so they must be a pure
function of the event's content: sorted keys, no insignificant whitespace, UTF-8, and no NaN or
Infinity (they are not JSON and would not round-trip).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from audit.merkle import leaf_hash

ZERO_HASH = "0" * 64
"""``prev_hash`` of the first event (index 0)."""

EVENT_FIELDS = frozenset({"index", "timestamp", "type", "actor", "subject", "details", "prev_hash"})
"""The keys of every event object, no more and no fewer."""

# One shared encoder: json.dumps with keyword arguments builds a new encoder on every call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, sort_keys=True, separators=(",", ":"))
# The C encoder behind it, built once: ``JSONEncoder.encode`` makes a new one per call (a third of
# the cost of encoding an audit event). No circular-reference bookkeeping: it would be shared between
# threads; a cycle still fails, by recursion depth, and is reported as a ValueError.
_make_c_encoder = getattr(json.encoder, "c_make_encoder", None)  # None without the C accelerator
_C_ENCODE = (
    # (markers, default, encoder, indent, key separator, item separator, sort_keys, skipkeys, allow_nan)
    _make_c_encoder(
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
    if _make_c_encoder is not None
    else None
)
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def canonical_json(obj: object) -> bytes:
    """Serialise ``obj`` to canonical JSON bytes.

    Keys are sorted, separators are ``,`` and ``:`` with no whitespace, non-ASCII text is written
    as UTF-8 rather than escaped. Raises ``ValueError`` for NaN/Infinity or unencodable text (lone
    surrogates) and ``TypeError`` for values JSON cannot represent.
    """
    return canonical_text(obj).encode("utf-8")


def canonical_text(obj: object) -> str:
    """:func:`canonical_json` before UTF-8 encoding.

    Strict UTF-8 decoding is injective, so ``data.decode() == canonical_text(v)`` holds exactly
    when ``data == canonical_json(v)``; checkers compare strs and skip the encoding step.
    """
    if _C_ENCODE is None:  # an interpreter without the C accelerator
        return _ENCODER.encode(obj)
    try:
        return "".join(_C_ENCODE(obj, 0))
    except RecursionError:
        raise ValueError("value is circular or nested too deeply for canonical JSON") from None


def rfc3339_utc(dt: datetime) -> str:
    """Format an aware datetime as UTC RFC 3339 with microseconds, e.g. ``…T15:06:01.123456Z``.

    Raises ``ValueError`` for a naive datetime: guessing its zone would make timestamps lie.
    """
    if dt.tzinfo is UTC:  # the usual case (every append): only swap "+00:00" for "Z"
        return dt.isoformat(timespec="microseconds")[:-6] + "Z"
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("timestamp must be timezone-aware")
    utc = dt.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


_second: tuple[int, str] = (-1, "")  # the last whole second formatted by rfc3339_utc_now


def rfc3339_utc_now() -> str:
    """The system clock now, as :func:`rfc3339_utc` formats it, about three times faster.

    Every audit append stamps its event; formatting the date and time of day once per second and
    only the microseconds per call saves most of the work.
    """
    global _second
    micros = time.time_ns() // 1000
    seconds, fraction = divmod(micros, 1_000_000)
    cached, prefix = _second
    if cached != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, prefix)  # one assignment: threads see the old or the new pair
    return f"{prefix}.{fraction:06d}Z"


def looks_like_rfc3339_utc(value: object) -> bool:
    """True if ``value`` has the shape :func:`rfc3339_utc` writes (the date itself is not checked)."""
    return isinstance(value, str) and _RFC3339_UTC.fullmatch(value) is not None


def parse_rfc3339_utc(text: str) -> datetime:
    """Parse exactly the format :func:`rfc3339_utc` writes; raise ``ValueError`` on anything else."""
    if not looks_like_rfc3339_utc(text):
        raise ValueError(f"not a UTC RFC 3339 timestamp with microseconds: {text!r}")
    return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)


def is_hex_hash(value: object) -> bool:
    """True if ``value`` is a SHA-256 digest as 64 lowercase hex characters."""
    return isinstance(value, str) and _HEX64.fullmatch(value) is not None


def event_body(
    index: int,
    timestamp: datetime,
    type: str,
    actor: str,
    subject: Mapping[str, Any],
    details: Mapping[str, Any],
    prev_hash: str,
) -> dict[str, Any]:
    """Build the event object whose canonical JSON is hashed as leaf ``index``.

    Raises ``ValueError`` if a field has the wrong shape (``prev_hash`` must be a lowercase hex
    SHA-256, the timestamp timezone-aware). The content of ``subject`` and ``details`` is checked
    against the event type's schema elsewhere.
    """
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise ValueError(f"index must be a non-negative integer, not {index!r}")
    if not isinstance(type, str) or not type:
        raise ValueError("type must be a non-empty string")
    if not isinstance(actor, str) or not actor:
        raise ValueError("actor must be a non-empty string")
    if not is_hex_hash(prev_hash):
        raise ValueError("prev_hash must be 64 lowercase hex characters")
    return {
        "index": index,
        "timestamp": rfc3339_utc(timestamp),
        "type": type,
        "actor": actor,
        "subject": dict(subject),
        "details": dict(details),
        "prev_hash": prev_hash,
    }


def event_leaf_hash(canonical: bytes) -> bytes:
    """The Merkle leaf hash of an event: SHA-256(0x00 ‖ canonical bytes)."""
    return leaf_hash(canonical)
