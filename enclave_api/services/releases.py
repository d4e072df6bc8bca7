"""DP queries with a budget ledger that cannot be overspent, and signed releases.

A query is validated first (no budget is touched by invalid input), then its (ε, δ) cost is
reserved with one conditional ``UPDATE`` that only succeeds if the grant is active and the budget
suffices — atomic on SQLite and PostgreSQL alike, so concurrent queries can never overspend. Only
then is the DP engine run (noise drawn). The result is signed (Ed25519 over canonical JSON) and
stored with its audit event. If the engine refuses before producing any noisy value, the
reservation is refunded; any other failure keeps the budget spent.
"""

from __future__ import annotations

import hashlib
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from audit.canonical import canonical_json, rfc3339_utc
from audit.checkpoint import key_id
from enclave_api import workers
from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Invalid, NotFound
from enclave_api.models import Dataset, Grant, Release
from enclave_api.roles import Role, new_id
from enclave_api.services.access import active_grant
from enclave_api.services.datasets import dataset_metadata, decrypt_into, get_dataset, load_table
from enclave_api.services.identity import Principal
from enclave_api.services.projects import is_member
from enclave_api.signing import sign_document, verify_document
from privacy.dp import PrivacyCheckError, QueryError, QueryRequest, QueryResult, run_query, validate_against

SIGNING_DOMAIN = b"enclave-release/v1\n"
# Floating-point sums of spends may exceed a total by rounding alone; never by more than this.
RELATIVE_SLACK = 1e-9


def release_body(release: Release) -> dict[str, Any]:
    """The signed content of a release (what egress checks numbers against)."""
    result = release.result or {}
    return {
        "release_id": release.id,
        "dataset_id": release.dataset_id,
        "grant_id": release.grant_id,
        "project_id": release.project_id,
        "requester": release.requester_id,
        "query": release.query,
        "epsilon": release.epsilon,
        "delta": release.delta,
        "columns": result.get("columns", []),
        "rows": result.get("rows", []),
        "accuracy": result.get("accuracy", {}),
        "mechanism": result.get("mechanism", ""),
        "released_at": rfc3339_utc(release.released_at) if release.released_at else None,
        "key_id": release.key_id,
    }


def sign_release(body: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return sign_document(SIGNING_DOMAIN, body, key)


def verify_release(body: dict[str, Any], signature: str, public_key: Ed25519PublicKey) -> bool:
    """True iff ``signature`` is the enclave's signature over exactly ``body``."""
    return verify_document(SIGNING_DOMAIN, body, signature, public_key)


@dataclass(frozen=True)
class QueryOutcome:
    release: Release
    body: dict[str, Any]
    epsilon_remaining: float
    delta_remaining: float


class _PlainParquet:
    """A dataset's decrypted Parquet in an anonymous memory file (``memfd``): never on disk, and
    scanned lazily by the DP engine (OpenDP reads only the columns and row groups a plan needs,
    instead of copying a whole in-memory frame into every plan). Closed when no query uses it."""

    def __init__(self, ctx: Enclave, dataset: Dataset) -> None:
        fd = os.memfd_create(f"enclave-{dataset.id}", os.MFD_CLOEXEC)
        self._closer = weakref.finalize(self, os.close, fd)
        with ctx.read() as session, os.fdopen(os.dup(fd), "wb") as sink:
            decrypt_into(ctx, session, dataset, sink)
        self.path = f"/proc/self/fd/{fd}"

    def frame(self) -> pl.LazyFrame:
        """A scan of it; keep this object referenced while the scan runs."""
        return pl.scan_parquet(self.path)


@dataclass(frozen=True)
class _InMemory:
    table: pl.DataFrame

    def frame(self) -> pl.DataFrame:
        return self.table


class _TableCache:
    """A couple of decrypted datasets kept between queries (keyed by content hash), as memory
    files where the system has them, else as in-memory frames."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._tables: OrderedDict[tuple[str, str], _PlainParquet | _InMemory] = OrderedDict()

    def get(self, ctx: Enclave, dataset: Dataset) -> _PlainParquet | _InMemory:
        key = (dataset.id, dataset.content_sha256)
        with self._lock:
            table = self._tables.get(key)
            if table is not None:
                self._tables.move_to_end(key)
        if table is None:
            table = self._load(ctx, dataset)
            with self._lock:
                self._tables[key] = table
                while len(self._tables) > self.size:
                    self._tables.popitem(last=False)  # a query still scanning it keeps it open
        return table

    @staticmethod
    def _load(ctx: Enclave, dataset: Dataset) -> _PlainParquet | _InMemory:
        if hasattr(os, "memfd_create") and Path("/proc/self/fd").is_dir():
            return _PlainParquet(ctx, dataset)
        with ctx.read() as session:
            return _InMemory(pl.DataFrame(load_table(ctx, session, dataset)))


_cache = _TableCache()


def _remaining(grant: Grant) -> tuple[float, float]:
    return (
        max(0.0, grant.epsilon_total - grant.epsilon_spent),
        max(0.0, grant.delta_total - grant.delta_spent),
    )


def run_dp_query(ctx: Enclave, principal: Principal, request: QueryRequest) -> QueryOutcome:
    """Validate, reserve the budget, run the DP engine, sign and store the release (or refund)."""
    if request.delta > ctx.settings.max_query_delta:
        raise Invalid(f"delta must be at most {ctx.settings.max_query_delta:g} per query", field="delta")
    with ctx.read() as session:
        dataset = get_dataset(session, request.dataset_id)
        meta = dataset_metadata(dataset)
        try:
            validate_against(request, meta)
        except QueryError as exc:
            raise Invalid(str(exc), field=exc.field) from exc
        grant = active_grant(ctx, session, principal, request.dataset_id, request.grant_id)
    release_id = new_id("rel")
    epsilon, delta = float(request.epsilon), float(request.delta)

    def reserve(session: Session) -> tuple[float, float]:
        now = ctx.now()
        spent = session.execute(
            update(Grant)
            .where(
                Grant.id == grant.id,
                Grant.revoked_at.is_(None),
                Grant.expires_at > now,
                Grant.epsilon_spent + epsilon <= Grant.epsilon_total * (1 + RELATIVE_SLACK),
                Grant.delta_spent + delta <= Grant.delta_total * (1 + RELATIVE_SLACK),
            )
            .values(epsilon_spent=Grant.epsilon_spent + epsilon, delta_spent=Grant.delta_spent + delta)
            .execution_options(synchronize_session=False)
        )
        current = session.scalars(select(Grant).where(Grant.id == grant.id)).one()
        session.refresh(current)
        eps_left, delta_left = _remaining(current)
        if spent.rowcount != 1:  # type: ignore[attr-defined]
            if current.status_at(now) != "active":
                raise Conflict(f"grant {grant.id} is {current.status_at(now)}: it spends nothing")
            raise Conflict(
                f"privacy budget exhausted: this query costs ε={epsilon:g}, δ={delta:g}; "
                f"the grant has ε={eps_left:g}, δ={delta_left:g} left",
                epsilon_cost=epsilon,
                delta_cost=delta,
                epsilon_remaining=eps_left,
                delta_remaining=delta_left,
            )
        session.add(
            Release(
                id=release_id,
                grant_id=grant.id,
                dataset_id=dataset.id,
                project_id=grant.project_id,
                requester_id=principal.id,
                query=request.model_dump(mode="json", by_alias=True),
                epsilon=epsilon,
                delta=delta,
                status="reserved",
                created_at=now,
                worker=workers.current(),
            )
        )
        ctx.audit.append(
            session,
            "budget.reserved",
            principal.id,
            _subject(release_id, grant, dataset.id),
            {
                "epsilon": epsilon,
                "delta": delta,
                "epsilon_remaining": eps_left,
                "delta_remaining": delta_left,
            },
        )
        return eps_left, delta_left

    eps_left, delta_left = ctx.transact(reserve)
    reservation = _Reservation(ctx, principal, release_id, grant, dataset.id)
    try:
        table = _cache.get(ctx, dataset)  # referenced until the query ends
        result = run_query(table.frame(), meta, request)
    except QueryError as exc:  # refused before any noise was drawn: give the budget back
        refusal = str(exc)
        ctx.transact(lambda session: reservation.refund(session, refusal))
        raise Invalid(refusal, field=exc.field) from exc
    except PrivacyCheckError as exc:  # the map check failed at compile time: nothing was drawn
        refusal = str(exc)
        ctx.transact(lambda session: reservation.refund(session, refusal))
        raise
    except BaseException as exc:
        failure = repr(exc)
        ctx.transact(lambda session: reservation.fail(session, failure))
        raise
    release = ctx.transact(lambda session: reservation.store(session, result))
    return QueryOutcome(release, release_body(release), eps_left, delta_left)


def _subject(release_id: str, grant: Grant, dataset_id: str) -> dict[str, str]:
    return {"release": release_id, "grant": grant.id, "project": grant.project_id, "dataset": dataset_id}


@dataclass(frozen=True)
class _Reservation:
    """A reserved release and how it ends: stored (signed), refunded or failed — each audited."""

    ctx: Enclave
    principal: Principal
    release_id: str
    grant: Grant
    dataset_id: str

    def _reserved(self, session: Session) -> Release:
        release = session.get(Release, self.release_id)
        if release is None or release.status != "reserved":
            raise Conflict(f"release {self.release_id} is not reserved")
        return release

    def _audit(self, session: Session, event_type: str, details: dict[str, Any]) -> None:
        subject = _subject(self.release_id, self.grant, self.dataset_id)
        self.ctx.audit.append(session, event_type, self.principal.id, subject, details)

    def refund(self, session: Session, reason: str) -> None:
        release = self._reserved(session)
        session.execute(
            update(Grant)
            .where(Grant.id == self.grant.id)
            .values(
                epsilon_spent=Grant.epsilon_spent - release.epsilon,
                delta_spent=Grant.delta_spent - release.delta,
            )
            .execution_options(synchronize_session=False)
        )
        release.status = "refunded"
        details = {"epsilon": release.epsilon, "delta": release.delta, "reason": reason[:2000]}
        self._audit(session, "budget.refunded", details)

    def fail(self, session: Session, reason: str) -> None:
        release = self._reserved(session)
        release.status = "failed"
        self._audit(session, "query.failed", {"reason": reason[:2000]})

    def store(self, session: Session, result: QueryResult) -> Release:
        release = self._reserved(session)
        key = self.ctx.secrets.signing_key
        release.result = {
            "columns": list(result.columns),
            "rows": [list(row) for row in result.rows],
            "accuracy": dict(result.accuracy),
            "mechanism": result.mechanism,
        }
        release.released_at = self.ctx.now()
        release.key_id = key_id(key.public_key())
        body = release_body(release)
        release.signature = sign_release(body, key)
        release.status = "released"
        details = {
            "epsilon": release.epsilon,
            "delta": release.delta,
            "mechanism": result.mechanism,
            "cells": sum(len(row) for row in result.rows),
            "result_sha256": hashlib.sha256(canonical_json(body)).hexdigest(),
        }
        self._audit(session, "query.released", details)
        return release


def get_release(session: Session, principal: Principal, release_id: str) -> Release:
    """Members of the release's project, custodians of its dataset, auditors and admins; else 404."""
    release = session.get(Release, release_id)
    if release is None or release.status != "released":
        raise NotFound(f"release {release_id} does not exist")
    dataset = session.get(Dataset, release.dataset_id)
    allowed = (
        principal.has(Role.AUDITOR)
        or principal.has(Role.ADMIN)
        or (principal.has(Role.RESEARCHER) and is_member(session, principal.id, release.project_id))
        or (
            principal.has(Role.CUSTODIAN)
            and dataset is not None
            and dataset.custodian_org_id == principal.org_id
        )
    )
    if not allowed:
        raise NotFound(f"release {release_id} does not exist")
    return release


def recover_interrupted(ctx: Enclave) -> int:
    """Fail the reservations whose query will never finish: its process is gone (a crash), or it
    has run longer than ``query_lease_minutes``. The budget stays spent: noise may have been drawn.
    Returns how many were failed (each audited as ``query.failed``)."""
    now = ctx.now()
    lease = timedelta(minutes=ctx.settings.query_lease_minutes)
    with ctx.read() as session:
        reserved = list(
            session.execute(
                select(Release.id, Release.worker, Release.created_at).where(Release.status == "reserved")
            )
        )
    stale = [rid for rid, worker, created in reserved if workers.abandoned(worker, created, now, lease)]
    if not stale:
        return 0
    failed = 0
    with ctx.write() as session:
        for release in session.scalars(
            select(Release).where(Release.id.in_(stale), Release.status == "reserved").with_for_update()
        ):
            grant = session.get(Grant, release.grant_id)
            if grant is None:  # impossible with the foreign key; never hide a reservation silently
                raise LookupError(f"release {release.id} has no grant")
            release.status = "failed"
            reason = (
                f"interrupted: the process running it ({release.worker}) stopped"
                if workers.gone(release.worker)
                else f"interrupted: still unfinished after {ctx.settings.query_lease_minutes:g} minutes"
            )
            ctx.audit.append(
                session,
                "query.failed",
                "system",
                _subject(release.id, grant, release.dataset_id),
                {"reason": f"{reason}; the budget stays spent (noise may have been drawn)"},
            )
            failed += 1
    return failed
