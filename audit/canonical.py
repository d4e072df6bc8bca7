"""Canonical JSON and the audit event envelope (DESIGN.md §4.5).

The canonical bytes of an event are what gets hashed into the Merkle tree, so they must be a pure
function of the event's content: sorted keys, no insignificant whitespace, UTF-8, and no NaN or
Infinity (they are not JSON and would not round-trip).
"""

from __future__ import annotations

import json
import re
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
_HEX64 = re.compile(r"[0-9a-f]{64}")
_RFC3339_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z")


def canonical_json(obj: object) -> bytes:
    """Serialise ``obj`` to canonical JSON bytes.

    Keys are sorted, separators are ``,`` and ``:`` with no whitespace, non-ASCII text is written
    as UTF-8 rather than escaped. Raises ``ValueError`` for NaN/Infinity or unencodable text (lone
    surrogates) and ``TypeError`` for values JSON cannot represent.
    """
    return _ENCODER.encode(obj).encode("utf-8")


def canonical_text(obj: object) -> str:
    """:func:`canonical_json` before UTF-8 encoding.

    Strict UTF-8 decoding is injective, so ``data.decode() == canonical_text(v)`` holds exactly
    when ``data == canonical_json(v)``; checkers compare strs and skip the encoding step.
    """
    return _ENCODER.encode(obj)


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
