"""Portal pages for auditors (and admins), the same audience as the API's ``/v1/audit`` routes.

* ``/portal/audit/events`` — event search (type, actor, dataset, dates) with cursor paging, and each
  event with its canonical bytes and its inclusion proof against the newest signed checkpoint.
* ``/portal/audit/egress`` — the egress log: what left, checked how, reviewed by whom, signed.
* ``/portal/audit/integrity`` — the newest checkpoint verified, its consistency with the one before,
  a full verification on demand (what ``enclave audit verify`` runs), exports and the public key.
* ``/portal/audit/datasets`` — per dataset: access requests, grants, DP releases, reads, egress.

Nothing here changes the log. Proofs, verification and the JSONL export format come from
:mod:`audit`; the pages only fetch, call and show.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from audit import merkle
from audit.canonical import parse_rfc3339_utc, rfc3339_utc
from audit.checkpoint import key_id, public_key_to_pem, verify_checkpoint
from audit.store import (
    AuditCheckpoint,
    AuditEvent,
    DbNodeReader,
    all_checkpoints,
    latest_checkpoint,
    query_events,
    tree_size,
    verify_database,
)
from audit.verify import csv_lines, export_lines
from enclave_api.api.deps import EnclaveDep
from enclave_api.context import Enclave
from enclave_api.errors import IntegrityFailure, Invalid, NotFound
from enclave_api.portal import plots, read_auditor
from enclave_api.portal.web import PREFIX, PortalRoute, PortalUser, render, require_portal_role
from enclave_api.roles import Role
from enclave_api.services import datasets, egress
from enclave_api.services.identity import Principal
from enclave_api.states import EgressStatus

router = APIRouter(
    prefix=PREFIX + "/audit",
    route_class=PortalRoute,
    include_in_schema=False,
    dependencies=[Depends(require_portal_role(Role.AUDITOR, Role.ADMIN))],
)

#: File names of the downloads, as the offline verification command on the integrity page uses them.
EXPORT_JSONL = "enclave-audit.jsonl"
EXPORT_CSV = "enclave-audit.csv"
PUBLIC_KEY_PEM = "enclave-audit-public-key.pem"
VERIFY_COMMAND = f"enclave audit verify --export {EXPORT_JSONL} --public-key {PUBLIC_KEY_PEM}"
#: Events read per database transaction while an export streams (no transaction stays open long).
EXPORT_BATCH = 5_000
PAGE_SIZES = (25, 50, 100, 250)
EGRESS_PAGE = 20
#: Plots show at most this many weeks, up to the current one.
PLOT_WEEKS = 26

Limit = Annotated[int, Query(ge=1, le=1000)]
Text = Annotated[str, Query(max_length=64)]
Day = Annotated[str, Query(max_length=10, description="YYYY-MM-DD, UTC")]


# --- small helpers --------------------------------------------------------------------------------


def _day(value: str, name: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{name} must be a date as YYYY-MM-DD", field=name) from exc


def _start_of(day: date) -> str:
    return rfc3339_utc(datetime(day.year, day.month, day.day, tzinfo=UTC))


def _cursor(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise Invalid("cursor must be the cursor of a previous page", field="cursor")
    return int(value)


def _compact(value: dict[str, Any], limit: int = 200) -> str:
    """A subject or details object on one line (escaped by the template like any other text)."""
    if not value:
        return ""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(stamp: str) -> datetime | None:
    try:
        return parse_rfc3339_utc(stamp)
    except ValueError:  # a tampered row: show it raw rather than fail the page
        return None


def _event_row(row: AuditEvent) -> dict[str, Any]:
    try:
        event = json.loads(row.canonical)
        readable = isinstance(event, dict)
    except ValueError:
        event, readable = {}, False
    subject = event.get("subject") if readable and isinstance(event.get("subject"), dict) else {}
    details = event.get("details") if readable and isinstance(event.get("details"), dict) else {}
    return {
        "index": row.index,
        "timestamp": row.timestamp,
        "when": _when(row.timestamp),
        "type": row.type,
        "actor": row.actor,
        "dataset": row.dataset_id,
        "subject": _compact(subject),
        "details": _compact(details),
        "readable": readable,
    }


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly(
    stamps: Iterable[tuple[datetime, int]], series: Sequence[str], today: date
) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """Counts per week (Monday, UTC) for each series: ``stamps`` are (time, series position).

    The weeks run from the first stamp's (at most :data:`PLOT_WEEKS` back) to the current one.
    """
    found = list(stamps)
    last = _monday(today)
    first = min((_monday(when.date()) for when, _ in found), default=last)
    first = max(first, last - timedelta(weeks=PLOT_WEEKS - 1))
    weeks = (last - first).days // 7 + 1
    counts = [[0] * weeks for _ in series]
    for when, position in found:
        week = (_monday(when.date()) - first).days // 7
        if 0 <= week < weeks:
            counts[position][week] += 1
    labels = [(first + timedelta(weeks=i)).isoformat() for i in range(weeks)]
    return labels, list(zip(series, counts, strict=True))


def _public_key(enclave: Enclave) -> Any:
    return enclave.secrets.signing_key.public_key()


def _root(checkpoint: AuditCheckpoint) -> bytes | None:
    try:
        return bytes.fromhex(checkpoint.root_hash)
    except ValueError:
        return None


# --- event search ---------------------------------------------------------------------------------


@router.get("/events")
def events(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    type: Text = "",
    actor: Text = "",
    dataset: Text = "",
    since: Day = "",
    until: Day = "",
    order: Annotated[str, Query(pattern="^(newest|oldest)$")] = "newest",
    limit: Limit = 50,
    cursor: Annotated[str, Query(max_length=24)] = "",
) -> Response:
    """Search the log. Oldest first pages like ``GET /v1/audit/events`` (the cursor is the last index
    shown; the next page starts after it); newest first pages backwards from the cursor."""
    known = enclave.audit.schemas.types
    if type and type not in known:
        raise Invalid(f"unknown event type {type!r}", field="type")
    first_day, last_day = _day(since, "since"), _day(until, "until")
    start = _start_of(first_day) if first_day else None
    # "until" is a whole day, inclusive; the log's bound is exclusive: the start of the day after.
    end = _start_of(last_day + timedelta(days=1)) if last_day else None
    position = _cursor(cursor)
    with enclave.read() as session:
        if order == "oldest":
            rows = query_events(
                session,
                event_type=type or None,
                actor=actor or None,
                dataset=dataset or None,
                since=start,
                until=end,
                after_index=-1 if position is None else position,
                limit=limit,
            )
        else:
            rows = read_auditor.query_events_newest_first(
                session,
                event_type=type or None,
                actor=actor or None,
                dataset=dataset or None,
                since=start,
                until=end,
                before_index=position,
                limit=limit,
            )
        size = tree_size(session)
    query = {
        "type": type,
        "actor": actor,
        "dataset": dataset,
        "since": since,
        "until": until,
        "order": order,
        "limit": limit,
    }
    next_cursor = str(rows[-1].index) if len(rows) == limit else None
    return render(
        request,
        "auditor/events.html",
        user=user,
        rows=[_event_row(row) for row in rows],
        types=known,
        query=query,
        next_cursor=next_cursor,
        paged=bool(cursor),
        page_sizes=sorted({*PAGE_SIZES, limit}),
        log_size=size,
    )


@router.get("/events/{index}")
def event(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    index: Annotated[int, Path(ge=0, le=2**62)],
) -> Response:
    """One event: its exact stored bytes, and its inclusion proof against the newest checkpoint."""
    enclave.checkpoint_now()  # as ``enclave audit prove``: every event is then covered by one
    key = _public_key(enclave)
    with enclave.read() as session:
        row = read_auditor.event_at(session, index)
        if row is None:
            raise NotFound(f"the log has no event {index}")
        canonical, stored_leaf = bytes(row.canonical), bytes(row.leaf_hash)
        summary = _event_row(row)
        checkpoint = latest_checkpoint(session)
        proof: dict[str, Any] | None = None
        if checkpoint is not None and index < checkpoint.tree_size:
            root = _root(checkpoint)
            try:
                path = merkle.inclusion_proof(index, checkpoint.tree_size, DbNodeReader(session))
            except LookupError:  # nodes removed from the store
                path = None
            included = (
                path is not None
                and root is not None
                and merkle.verify_inclusion(stored_leaf, index, checkpoint.tree_size, path, root)
            )
            proof = {
                "checkpoint": checkpoint.to_checkpoint(),
                "path": [p.hex() for p in path] if path is not None else None,
                "included": included,
                "signed": verify_checkpoint(checkpoint.to_checkpoint(), key),
            }
    bytes_match = merkle.leaf_hash(canonical) == stored_leaf
    verified = bool(proof and proof["included"] and proof["signed"] and bytes_match)
    pretty: str | None
    try:
        pretty = json.dumps(json.loads(canonical), ensure_ascii=False, indent=2, sort_keys=True)
    except ValueError:
        pretty = None
    return render(
        request,
        "auditor/event.html",
        user=user,
        event=summary,
        canonical=canonical.decode("utf-8", errors="replace"),
        pretty=pretty,
        stored_leaf=stored_leaf.hex(),
        bytes_match=bytes_match,
        proof=proof,
        verified=verified,
    )


# --- egress log -----------------------------------------------------------------------------------


def _egress_entry(view: egress.RequestView, key: Any) -> dict[str, Any]:
    request = view.request
    report = request.report or {}
    manifest = None
    if request.manifest is not None and request.manifest_signature is not None:
        manifest = {
            "signature": request.manifest_signature,
            "key_id": request.manifest.get("key_id"),
            "verified": egress.verify_manifest(request.manifest, request.manifest_signature, key),
        }
    return {
        "request": request,
        "files": view.files,
        "datasets": view.datasets,
        "reviews": view.reviews,
        "checks_run": report.get("checks_run", []),
        "summary": report.get("summary"),
        "manifest": manifest,
    }


@router.get("/egress")
def egress_log(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    status: Annotated[str, Query(max_length=24)] = "",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    """Every egress request, newest first: files and hashes, checks, reviews, the signed manifest."""
    statuses = [str(s) for s in EgressStatus]
    if status and status not in statuses:
        raise Invalid(f"unknown status {status!r}", field="status")
    key = _public_key(enclave)
    with enclave.read() as session:
        everything = egress.list_requests(session, user)
        chosen = [r for r in reversed(everything) if not status or r.status == status]
        shown = chosen[(page - 1) * EGRESS_PAGE : page * EGRESS_PAGE]
        entries = [_egress_entry(egress.view(session, user, r.id), key) for r in shown]
        decisions = read_auditor.events_of_types(session, ["access_request.decided"])
    today = enclave.now().date()
    outcomes = []
    for item in everything:
        if item.status == EgressStatus.RELEASED and item.released_at is not None:
            outcomes.append((item.released_at, 0))
        elif item.status in (EgressStatus.REJECTED, EgressStatus.BLOCKED):
            outcomes.append((item.updated_at, 1))
    labels, series = weekly(outcomes, ["released", "rejected or blocked"], today)
    egress_plot = plots.bars("Egress requests per week", labels, series, "requests")
    access_stamps = []
    for decided in decisions:
        when = _when(decided.timestamp)
        verdict = decided.details.get("decision")
        if when is not None and verdict in ("approve", "deny"):
            access_stamps.append((when, 0 if verdict == "approve" else 1))
    labels, series = weekly(access_stamps, ["approved", "denied"], today)
    access_plot = plots.bars("Access requests decided per week", labels, series, "requests")
    return render(
        request,
        "auditor/egress.html",
        user=user,
        entries=entries,
        statuses=statuses,
        chosen_status=status,
        page=page,
        more=len(chosen) > page * EGRESS_PAGE,
        total=len(chosen),
        egress_plot=egress_plot,
        access_plot=access_plot,
    )


# --- integrity, verification, exports -------------------------------------------------------------


def _integrity_page(
    request: Request, enclave: Enclave, user: Principal, verification: dict[str, Any] | None = None
) -> Response:
    enclave.checkpoint_now()  # as ``GET /v1/audit/checkpoint``: the newest tree head, signed
    key = _public_key(enclave)
    latest: dict[str, Any] | None = None
    with enclave.read() as session:
        size = tree_size(session)
        stored = read_auditor.stored_event_count(session)
        checkpoint = latest_checkpoint(session)
        if checkpoint is not None:
            reader = DbNodeReader(session)
            root = _root(checkpoint)
            try:
                reproduced = root is not None and merkle.root_at(checkpoint.tree_size, reader) == root
            except LookupError:
                reproduced = False
            previous = read_auditor.checkpoint_before(session, checkpoint)
            consistent: bool | None = None
            if previous is not None:
                old_root = _root(previous)
                try:
                    path = merkle.consistency_proof(previous.tree_size, checkpoint.tree_size, reader)
                except LookupError:
                    path = None
                consistent = (
                    path is not None
                    and old_root is not None
                    and root is not None
                    and merkle.verify_consistency(
                        previous.tree_size, checkpoint.tree_size, old_root, root, path
                    )
                )
            latest = {
                "checkpoint": checkpoint.to_checkpoint(),
                "signed": verify_checkpoint(checkpoint.to_checkpoint(), key),
                "reproduced": reproduced,
                "previous": previous.to_checkpoint() if previous is not None else None,
                "consistent": consistent,
            }
    return render(
        request,
        "auditor/integrity.html",
        user=user,
        latest=latest,
        log_size=size,
        stored_events=stored,
        key_id=key_id(key),
        verification=verification,
        verify_command=VERIFY_COMMAND,
        export_jsonl=EXPORT_JSONL,
        public_key_pem=PUBLIC_KEY_PEM,
    )


@router.get("/integrity")
def integrity(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The newest signed checkpoint, checked; the log's size; exports and the key."""
    return _integrity_page(request, enclave, user)


@router.post("/integrity/verify")
def verify_now(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """Recompute the whole log as ``enclave audit verify`` does (same function), and say how it went."""
    started = time.perf_counter()
    try:
        with enclave.read() as session:
            result = verify_database(session, _public_key(enclave), enclave.sink)
    except ValueError as exc:  # the checkpoint sink's file is unreadable
        verification: dict[str, Any] = {"unusable": str(exc)}
    else:
        verification = {"result": result}
    verification["seconds"] = time.perf_counter() - started
    return _integrity_page(request, enclave, user, verification)


def _export_snapshot(enclave: Enclave) -> tuple[int, list[Any]]:
    with enclave.read() as session:
        try:
            return read_auditor.stored_event_count(session), all_checkpoints(session, enclave.sink)
        except ValueError as exc:
            raise IntegrityFailure(f"the published checkpoints cannot be read: {exc}") from exc


def _stored_events(enclave: Enclave, stop: int) -> Iterator[bytes]:
    """The events below ``stop``, read a batch per short transaction while the response streams."""
    for start in range(0, stop, EXPORT_BATCH):
        session: Session
        with enclave.read() as session:
            batch = read_auditor.event_bytes(session, start, min(start + EXPORT_BATCH, stop))
        yield from batch


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}


@router.get("/export.jsonl")
def export_jsonl(enclave: EnclaveDep, user: PortalUser) -> Response:
    """The whole log as ``enclave audit export --format jsonl`` writes it (verifiable offline)."""
    stop, checkpoints = _export_snapshot(enclave)
    lines = export_lines(_stored_events(enclave, stop), checkpoints)
    return StreamingResponse(lines, media_type="application/x-ndjson", headers=_attachment(EXPORT_JSONL))


@router.get("/export.csv")
def export_csv(enclave: EnclaveDep, user: PortalUser) -> Response:
    """Every event as CSV, the columns of ``enclave audit export --format csv`` (for spreadsheets)."""
    stop, _checkpoints = _export_snapshot(enclave)
    lines = csv_lines(_stored_events(enclave, stop))
    return StreamingResponse(lines, media_type="text/csv; charset=utf-8", headers=_attachment(EXPORT_CSV))


@router.get("/public-key.pem")
def public_key(enclave: EnclaveDep, user: PortalUser) -> Response:
    """The Ed25519 key that signs checkpoints (as ``GET /v1/audit/public-key``), to verify offline."""
    key = _public_key(enclave)
    return Response(
        public_key_to_pem(key),
        media_type="application/x-pem-file",
        headers={**_attachment(PUBLIC_KEY_PEM), "X-Key-Id": key_id(key)},
    )


# --- per-dataset access history -------------------------------------------------------------------


@router.get("/datasets")
def dataset_list(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """Every dataset, with how many logged events name it."""
    with enclave.read() as session:
        found = datasets.catalog(session)
        counts = read_auditor.event_counts_by_dataset(session)
    return render(request, "auditor/datasets.html", user=user, datasets=found, counts=counts)


ACCESS_TYPES = ("access_request.created", "access_request.decided", "access_request.withdrawn")
BUDGET_TYPES = ("budget.reserved", "budget.refunded")
ACTIVITY = ("query.released", "data.read", "access_request.decided")


def _access_requests(events: Sequence[read_auditor.LoggedEvent]) -> list[dict[str, Any]]:
    """One row per access request, from its created / decided / withdrawn events."""
    rows: dict[str, dict[str, Any]] = {}
    for item in events:
        ident = str(item.subject.get("access_request", ""))
        row = rows.setdefault(
            ident,
            {
                "id": ident,
                "project": item.subject.get("project"),
                "created": None,
                "decided": None,
                "withdrawn": None,
            },
        )
        if item.type == "access_request.created":
            row["created"] = item
        elif item.type == "access_request.decided":
            row["decided"] = item
        else:
            row["withdrawn"] = item
    return list(rows.values())


def _logged_spend(events: Sequence[read_auditor.LoggedEvent]) -> dict[str, float]:
    """ε each grant spent according to the log: reservations minus refunds."""
    spent: dict[str, float] = {}
    for item in events:
        grant = str(item.subject.get("grant", ""))
        epsilon = item.details.get("epsilon")
        if isinstance(epsilon, int | float):
            sign = 1 if item.type == "budget.reserved" else -1
            spent[grant] = spent.get(grant, 0.0) + sign * float(epsilon)
    return spent


@router.get("/datasets/{dataset_id}")
def dataset_history(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    dataset_id: Annotated[str, Path(max_length=64)],
    cursor: Annotated[str, Query(max_length=24)] = "",
    limit: Limit = 50,
) -> Response:
    """Who asked for, got, queried, read and exported from one dataset, and when."""
    position = _cursor(cursor)
    now = enclave.now()
    with enclave.read() as session:
        dataset = datasets.get_dataset(session, dataset_id)
        access_rows = _access_requests(read_auditor.events_of_types(session, ACCESS_TYPES, dataset.id))
        spent = _logged_spend(read_auditor.events_of_types(session, BUDGET_TYPES, dataset.id))
        grants = [
            {"grant": g, "status": g.status_at(now), "logged_spend": spent.get(g.id, 0.0)}
            for g in read_auditor.dataset_grants(session, dataset.id)
        ]
        releases = read_auditor.dataset_releases(session, dataset.id)
        involved = read_auditor.egress_request_ids(session, dataset.id)
        egress_requests = [r for r in reversed(egress.list_requests(session, user)) if r.id in involved]
        activity = read_auditor.event_times(session, ACTIVITY, dataset.id)
        timeline = read_auditor.query_events_newest_first(
            session, dataset=dataset.id, before_index=position, limit=limit
        )
    stamps = []
    for kind, stamp in activity:
        when = _when(stamp)
        if when is not None:
            stamps.append((when, ACTIVITY.index(kind)))
    labels, series = weekly(stamps, ["DP releases", "record reads", "access decisions"], now.date())
    plot = plots.bars(f"Access to {dataset.id} per week", labels, series, "events")
    return render(
        request,
        "auditor/dataset.html",
        user=user,
        dataset=dataset,
        access_rows=access_rows,
        grants=grants,
        releases=releases,
        reads=sum(kind == "data.read" for kind, _ in activity),
        egress_requests=egress_requests,
        timeline=[_event_row(row) for row in timeline],
        next_cursor=str(timeline[-1].index) if len(timeline) == limit else None,
        paged=bool(cursor),
        limit=limit,
        plot=plot,
    )
