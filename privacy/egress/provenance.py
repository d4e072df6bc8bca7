"""DP provenance: a table exported with its release manifest must carry exactly the signed numbers.

The enclave signs every DP release (Ed25519 over canonical JSON). The notebook client's export writes
the release as CSV plus ``<file>.release.json``. Here a submitted table is compared, cell by cell and
textually, with the release the enclave itself stored; the caller has already established that the
manifest's signature is valid, that it matches the stored release and whose release it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import polars as pl

from privacy.findings import Check, Finding, Severity

MANIFEST_SUFFIX = ".release.json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReleaseEvidence:
    """What the enclave knows about a release named by a manifest."""

    release_id: str
    exists: bool
    signature_valid: bool  # the manifest's signature verifies under the enclave's key
    matches_stored: bool  # the manifest's body and signature are the stored release's
    owned_by_requester: bool
    columns: tuple[str, ...] = ()
    rows: tuple[tuple[Any, ...], ...] = ()


def manifest_release_id(data: bytes) -> tuple[str, dict[str, Any], str] | None:
    """``(release_id, body, signature)`` of a release manifest, or ``None`` if ``data`` is not one."""
    if len(data) > MAX_MANIFEST_BYTES:
        return None
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    body, signature = doc.get("release"), doc.get("signature")
    if not isinstance(body, dict) or not isinstance(signature, str):
        return None
    release_id = body.get("release_id")
    return (release_id, body, signature) if isinstance(release_id, str) else None


def cell_text(value: Any) -> str:
    """How the client's CSV export writes a release value (``csv.writer`` semantics)."""
    return "" if value is None else str(value)


def check_against_release(table: pl.DataFrame, evidence: ReleaseEvidence, *, file: str) -> list[Finding]:
    """Findings (blocking) for every way ``table`` or its release fails DP provenance; [] if it holds."""

    def fail(rule: str, location: str, message: str) -> Finding:
        return Finding(Check.DP_PROVENANCE, rule, Severity.BLOCK, file, location, message)

    rid = evidence.release_id
    if not evidence.exists:
        return [fail("unknown_release", "manifest", f"release {rid} does not exist in this enclave")]
    if not evidence.signature_valid:
        return [fail("bad_signature", "manifest", f"the manifest's signature over release {rid} is invalid")]
    if not evidence.matches_stored:
        return [fail("manifest_altered", "manifest", f"the manifest differs from the stored release {rid}")]
    if not evidence.owned_by_requester:
        return [fail("foreign_release", "manifest", f"release {rid} belongs to another researcher")]
    if tuple(table.columns) != evidence.columns:
        return [
            fail(
                "numbers_differ",
                "header",
                f"columns {list(table.columns)} are not the release's {list(evidence.columns)}",
            )
        ]
    if table.height != len(evidence.rows):
        return [
            fail("numbers_differ", "rows", f"{table.height} rows, but release {rid} has {len(evidence.rows)}")
        ]
    for index, (written, released) in enumerate(zip(table.iter_rows(), evidence.rows, strict=True)):
        for column, got, expected in zip(table.columns, written, released, strict=True):
            if (got or "") != cell_text(expected):
                return [
                    fail(
                        "numbers_differ",
                        f"row {index + 1}, column {column!r}",
                        f"value {got!r} differs from the signed release ({cell_text(expected)!r})",
                    )
                ]
    return []
