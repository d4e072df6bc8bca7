"""Read-only queries behind the auditor's portal pages that no service or audit function offers.

Plain SQLAlchemy over the audit store and the product tables; nothing here writes. Auditors see
every audit event (as ``GET /v1/audit/events`` shows them); the per-dataset view adds the grants,
DP releases and egress requests those events refer to. Hashing, verification and the export
formats stay in :mod:`audit`; these functions only fetch rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from audit.store import AuditCheckpoint, AuditEvent, filter_events
from enclave_api.models import EgressRequestDataset, Grant, Release


def query_events_newest_first(
    session: Session,
    *,
    event_type: str | None = None,
    actor: str | None = None,
    dataset: str | None = None,
    since: str | None = None,
    until: str | None = None,
    before_index: int | None = None,
    limit: int = 100,
) -> list[AuditEvent]:
    """Like :func:`audit.store.query_events`, in reverse index order: events before ``before_index``
    (the cursor of the previous page), newest first. ``since``/``until`` are RFC 3339 UTC strings
    (inclusive/exclusive)."""
    query = select(AuditEvent)
    if before_index is not None:
        query = query.where(AuditEvent.index < before_index)
    query = filter_events(
        query, event_type=event_type, actor=actor, dataset=dataset, since=since, until=until
    )
    return list(session.scalars(query.order_by(AuditEvent.index.desc()).limit(limit)))


def event_at(session: Session, index: int) -> AuditEvent | None:
    """The stored event with this index, or None."""
    return session.get(AuditEvent, index)


def checkpoint_before(session: Session, latest: AuditCheckpoint) -> AuditCheckpoint | None:
    """The newest stored checkpoint of a smaller tree than ``latest`` (to check consistency)."""
    return session.scalars(
        select(AuditCheckpoint)
        .where(AuditCheckpoint.tree_size < latest.tree_size)
        .order_by(AuditCheckpoint.tree_size.desc(), AuditCheckpoint.id.desc())
        .limit(1)
    ).first()


def stored_event_count(session: Session) -> int:
    """One past the highest stored event index: how far an export reads (the head row may lie)."""
    highest = session.scalar(select(func.max(AuditEvent.index)))
    return 0 if highest is None else int(highest) + 1


def event_bytes(session: Session, start: int, stop: int) -> list[bytes]:
    """The stored canonical bytes of the events with ``start <= index < stop``, in index order."""
    rows = session.execute(
        select(AuditEvent.canonical)
        .where(AuditEvent.index >= start, AuditEvent.index < stop)
        .order_by(AuditEvent.index)
    )
    return [bytes(canonical) for (canonical,) in rows]


@dataclass(frozen=True)
class LoggedEvent:
    """An event as decoded from its stored canonical bytes."""

    index: int
    timestamp: str
    type: str
    actor: str
    subject: dict[str, Any]
    details: dict[str, Any]


def _decoded(rows: Iterable[AuditEvent]) -> list[LoggedEvent]:
    found = []
    for row in rows:
        event = json.loads(row.canonical)
        found.append(
            LoggedEvent(
                index=row.index,
                timestamp=row.timestamp,
                type=row.type,
                actor=row.actor,
                subject=dict(event.get("subject") or {}),
                details=dict(event.get("details") or {}),
            )
        )
    return found


def events_of_types(session: Session, types: Sequence[str], dataset: str | None = None) -> list[LoggedEvent]:
    """Every event of the given types (of one dataset, if given), oldest first, decoded."""
    query = select(AuditEvent).where(AuditEvent.type.in_(types))
    if dataset is not None:
        query = query.where(AuditEvent.dataset_id == dataset)
    return _decoded(session.scalars(query.order_by(AuditEvent.index)))


def event_times(session: Session, types: Sequence[str], dataset: str) -> list[tuple[str, str]]:
    """(type, timestamp) of every event of ``types`` about ``dataset``, oldest first (for plots)."""
    rows = session.execute(
        select(AuditEvent.type, AuditEvent.timestamp)
        .where(AuditEvent.type.in_(types), AuditEvent.dataset_id == dataset)
        .order_by(AuditEvent.index)
    )
    return [(str(kind), str(when)) for kind, when in rows]


def dataset_grants(session: Session, dataset_id: str) -> list[Grant]:
    """Every grant on the dataset, oldest first (the budget ledger's view of what was spent)."""
    return list(
        session.scalars(
            select(Grant).where(Grant.dataset_id == dataset_id).order_by(Grant.created_at, Grant.id)
        )
    )


def dataset_releases(session: Session, dataset_id: str) -> list[Release]:
    """The dataset's released DP query results, oldest first (auditors may see every release)."""
    return list(
        session.scalars(
            select(Release)
            .where(Release.dataset_id == dataset_id, Release.status == "released")
            .order_by(Release.released_at, Release.id)
        )
    )


def egress_request_ids(session: Session, dataset_id: str) -> set[str]:
    """Ids of the egress requests whose custodians include the dataset's."""
    return set(
        session.scalars(
            select(EgressRequestDataset.request_id).where(EgressRequestDataset.dataset_id == dataset_id)
        )
    )


def event_counts_by_dataset(session: Session) -> dict[str, int]:
    """How many logged events name each dataset."""
    rows = session.execute(
        select(AuditEvent.dataset_id, func.count())
        .where(AuditEvent.dataset_id.is_not(None))
        .group_by(AuditEvent.dataset_id)
    )
    return {str(dataset): int(count) for dataset, count in rows}
