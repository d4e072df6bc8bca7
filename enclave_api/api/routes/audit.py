"""Audit log for auditors: events with filters and cursor paging, checkpoints, proofs, public key.

Nothing here writes or deletes events: the log changes only through the services' own appends.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from audit import merkle
from audit.canonical import rfc3339_utc
from audit.checkpoint import key_id, public_key_to_pem
from audit.store import DbNodeReader, checkpoint_at, latest_checkpoint, query_events, tree_size
from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession, require_role
from enclave_api.errors import Invalid, NotFound
from enclave_api.roles import Role

router = APIRouter(prefix="/v1/audit", tags=["audit"])
auditors = [Depends(require_role(Role.AUDITOR, Role.ADMIN))]


class EventPage(BaseModel):
    events: list[dict[str, Any]]
    next_cursor: str | None


class CheckpointPublic(BaseModel):
    tree_size: int
    root_hash: str
    timestamp: str
    key_id: str
    signature: str


class InclusionProof(BaseModel):
    index: int
    tree_size: int
    leaf_hash: str
    root_hash: str | None
    path: list[str]


class ConsistencyProof(BaseModel):
    first: int
    second: int
    path: list[str]


def _utc(value: datetime | None, name: str) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        raise Invalid(f"{name} needs a time zone (e.g. 2026-01-01T00:00:00Z)", field=name)
    return rfc3339_utc(value)


@router.get("/events", response_model=EventPage, dependencies=auditors)
def events(
    session: ReadSession,
    type: str | None = Query(None, max_length=64, description="Event type, e.g. data.read"),
    actor: str | None = Query(None, max_length=64),
    dataset: str | None = Query(None, max_length=64),
    since: datetime | None = Query(None, description="Inclusive, RFC 3339 with zone"),
    until: datetime | None = Query(None, description="Exclusive, RFC 3339 with zone"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=24, description="next_cursor of the previous page"),
) -> EventPage:
    after = -1
    if cursor is not None:
        if not cursor.isdigit():
            raise Invalid("cursor must be the next_cursor of a previous page", field="cursor")
        after = int(cursor)
    rows = query_events(
        session,
        event_type=type,
        actor=actor,
        dataset=dataset,
        since=_utc(since, "since"),
        until=_utc(until, "until"),
        after_index=after,
        limit=limit,
    )
    page = [json.loads(row.canonical) | {"leaf_hash": bytes(row.leaf_hash).hex()} for row in rows]
    return EventPage(events=page, next_cursor=str(rows[-1].index) if len(rows) == limit else None)


@router.get("/checkpoint", response_model=CheckpointPublic)
def checkpoint(principal: CurrentPrincipal, enclave: EnclaveDep) -> CheckpointPublic:
    """The newest signed tree head (signed now if the log grew since the last one)."""
    enclave.checkpoint_now()
    with enclave.read() as session:
        latest = latest_checkpoint(session)
        if latest is None:
            raise NotFound("the audit log is empty")
        return CheckpointPublic(**latest.to_checkpoint().to_dict())


@router.get("/public-key", response_class=Response)
def public_key(principal: CurrentPrincipal, enclave: EnclaveDep) -> Response:
    """The Ed25519 key that signs checkpoints (PEM), for offline verification."""
    key = enclave.secrets.signing_key.public_key()
    return Response(
        public_key_to_pem(key), media_type="application/x-pem-file", headers={"X-Key-Id": key_id(key)}
    )


@router.get("/proofs/inclusion", response_model=InclusionProof, dependencies=auditors)
def inclusion(
    session: ReadSession,
    index: int = Query(ge=0),
    tree_size_: int | None = Query(None, alias="tree_size", ge=1, description="Default: latest checkpoint"),
) -> InclusionProof:
    size = tree_size_
    if size is None:
        latest = latest_checkpoint(session)
        if latest is None:
            raise NotFound("no checkpoint has been signed yet")
        size = latest.tree_size
    if size > tree_size(session):
        raise Invalid("tree_size is larger than the log", field="tree_size")
    if index >= size:
        raise Invalid("index must be smaller than tree_size", field="index")
    reader = DbNodeReader(session)
    path = merkle.inclusion_proof(index, size, reader)
    leaf = reader.get_nodes([(0, index)])[(0, index)]
    signed = checkpoint_at(session, size)
    return InclusionProof(
        index=index,
        tree_size=size,
        leaf_hash=leaf.hex(),
        root_hash=signed.root_hash if signed else None,
        path=[p.hex() for p in path],
    )


@router.get("/proofs/consistency", response_model=ConsistencyProof, dependencies=auditors)
def consistency(
    session: ReadSession, first: int = Query(ge=1), second: int = Query(ge=1)
) -> ConsistencyProof:
    if not first <= second <= tree_size(session):
        raise Invalid("need 1 ≤ first ≤ second ≤ the log's size", field="second")
    path = merkle.consistency_proof(first, second, DbNodeReader(session))
    return ConsistencyProof(first=first, second=second, path=[p.hex() for p in path])
