"""The egress airlock: the only door out of the enclave for files.

A researcher submits files from inside a session. They go into an encrypted, content-addressed
quarantine, then through the automatic checks (:mod:`privacy.egress`: file type by content, PII with
the dataset deny-list, DP provenance, disclosure control) in an isolated worker process. A blocking
finding stops the request (``blocked``); otherwise custodians of every dataset involved review it,
each hospital with its configured number of independent approvals, never the requester. Once all
have approved, a manifest (file hashes, checks, reviewers) is signed and the requester alone can
download the files. Every state change writes its audit event in the same transaction.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from audit.canonical import canonical_json, rfc3339_utc
from audit.checkpoint import key_id
from enclave_api import workers
from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Forbidden, IntegrityFailure, Invalid, NotFound, TooLarge
from enclave_api.models import (
    Dataset,
    EgressFile,
    EgressRequest,
    EgressRequestDataset,
    EgressReview,
    Grant,
    ProjectMember,
    QuarantineBlob,
    Release,
)
from enclave_api.roles import Role, new_id
from enclave_api.services.datasets import dataset_metadata, load_table
from enclave_api.services.identity import Principal
from enclave_api.services.projects import get_visible_project
from enclave_api.services.releases import release_body, verify_release
from enclave_api.signing import sign_document, verify_document
from enclave_api.states import EgressStatus, check_transition
from enclave_api.storage.store import StoredBlob, quarantine_context
from privacy.egress import MANIFEST_SUFFIX, CheckContext, ReleaseEvidence, SubmittedFile, manifest_release_id
from privacy.files import FileRejected, Limits, validate_name

SIGNING_DOMAIN = b"enclave-egress/v1\n"
DECISIONS = ("approve", "reject", "changes_requested")
WITHDRAWABLE = frozenset(
    {EgressStatus.SUBMITTED, EgressStatus.BLOCKED, EgressStatus.IN_REVIEW, EgressStatus.CHANGES_REQUESTED}
)
MAX_TEXT = 5000
# Requests whose checks a crash interrupted (re-run by recovery).
INTERRUPTIBLE = (EgressStatus.SUBMITTED, EgressStatus.CHECKING)
# How long past the check timeout a request may stay in ``checking`` before another process re-runs it.
RECHECK_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


# ---------------------------------------------------------------------------------------------------
# Submission


def _validate_uploads(ctx: Enclave, uploads: Sequence[Upload], justification: str) -> None:
    settings = ctx.settings
    if not uploads:
        raise Invalid("an egress request needs at least one file", field="files")
    if len(uploads) > settings.egress_max_files:
        raise Invalid(f"at most {settings.egress_max_files} files per request", field="files")
    seen: set[str] = set()
    for upload in uploads:
        try:
            validate_name(upload.name)
        except FileRejected as exc:
            raise Invalid(f"file name {upload.name[:80]!r} refused: {exc}", field="files") from exc
        if upload.name in seen:
            raise Invalid(f"file name {upload.name!r} appears twice", field="files")
        seen.add(upload.name)
        if len(upload.data) > settings.egress_max_file_bytes:
            raise TooLarge(f"{upload.name}: files are limited to {settings.egress_max_file_bytes} bytes")
    if not justification.strip():
        raise Invalid("a justification is required", field="justification")
    if len(justification) > MAX_TEXT:
        raise Invalid(f"the justification is limited to {MAX_TEXT} characters", field="justification")


def _project_for(session: Session, principal: Principal, project_id: str | None) -> str:
    if project_id is not None:
        return get_visible_project(session, principal, project_id).id
    with_grants = sorted(
        set(
            session.scalars(
                select(ProjectMember.project_id)
                .join(Grant, Grant.project_id == ProjectMember.project_id)
                .where(ProjectMember.user_id == principal.id)
            )
        )
    )
    if len(with_grants) != 1:
        raise Invalid(
            "name the project (project_id): you hold grants in several or no projects", field="project_id"
        )
    return with_grants[0]


def _required_reviews(ctx: Enclave, dataset: Dataset) -> int:
    return dataset_metadata(dataset).egress_reviews or ctx.settings.egress_reviews


def _store_blobs(ctx: Enclave, uploads: Sequence[Upload]) -> dict[str, StoredBlob]:
    """Encrypt each distinct content into the quarantine (before the transaction that records it)."""
    with ctx.read() as session:
        digests = {hashlib.sha256(u.data).hexdigest() for u in uploads}
        present = set(
            session.scalars(select(QuarantineBlob.sha256).where(QuarantineBlob.sha256.in_(digests)))
        )
    stored: dict[str, StoredBlob] = {}
    for upload in uploads:
        sha = hashlib.sha256(upload.data).hexdigest()
        if sha not in present and sha not in stored:
            stored[sha] = ctx.quarantine.put(quarantine_context(sha), io.BytesIO(upload.data))
    return stored


def _record_blobs(session: Session, stored: Mapping[str, StoredBlob], now: Any) -> None:
    if not stored:
        return
    rows = [
        {
            "sha256": sha,
            "blob_name": blob.blob_name,
            "kek_id": blob.kek_id,
            "wrapped_key": blob.wrapped_key,
            "size": blob.plaintext_bytes,
            "created_at": now,
        }
        for sha, blob in stored.items()
    ]
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    # Concurrent submissions of the same content both store it; the first row wins, the other blob
    # file is an unreferenced duplicate of the same bytes.
    session.execute(dialect.insert(QuarantineBlob).values(rows).on_conflict_do_nothing())


def _add_files(session: Session, request: EgressRequest, uploads: Sequence[Upload]) -> list[dict[str, Any]]:
    listed = []
    for upload in uploads:
        sha = hashlib.sha256(upload.data).hexdigest()
        session.add(
            EgressFile(
                id=new_id("ef"),
                request_id=request.id,
                round=request.round,
                name=upload.name,
                sha256=sha,
                size=len(upload.data),
            )
        )
        listed.append({"name": upload.name, "sha256": sha, "size": len(upload.data)})
    return listed


def submit(
    ctx: Enclave, principal: Principal, uploads: Sequence[Upload], justification: str, project_id: str | None
) -> EgressRequest:
    """Quarantine the files, record the request (``submitted``), run the checks; return the result."""
    if not principal.has(Role.RESEARCHER):
        raise Forbidden("only researchers submit egress requests")
    _validate_uploads(ctx, uploads, justification)
    now = ctx.now()
    with ctx.read() as session:
        project = _project_for(session, principal, project_id)
        grants = list(session.scalars(select(Grant).where(Grant.project_id == project)))
        if not any(g.status_at(now) == "active" for g in grants):
            raise Forbidden(f"egress needs an active grant in project {project}")
        datasets = {
            d.id: d
            for d in session.scalars(select(Dataset).where(Dataset.id.in_({g.dataset_id for g in grants})))
        }
        links = [(d.id, d.custodian_org_id, _required_reviews(ctx, d)) for d in datasets.values()]
    stored = _store_blobs(ctx, uploads)

    def record(session: Session) -> EgressRequest:
        request = EgressRequest(
            id=new_id("eg"),
            requester_id=principal.id,
            project_id=project,
            justification=justification.strip(),
            status=EgressStatus.SUBMITTED,
            round=1,
            created_at=now,
            updated_at=now,
            worker=workers.current(),
        )
        session.add(request)
        for dataset_id, org_id, required in sorted(links):
            session.add(
                EgressRequestDataset(
                    request_id=request.id, dataset_id=dataset_id, org_id=org_id, reviews_required=required
                )
            )
        _record_blobs(session, stored, now)
        session.flush()
        files = _add_files(session, request, uploads)
        ctx.audit.append(
            session,
            "egress.submitted",
            principal.id,
            {"egress_request": request.id, "project": project},
            {"round": 1, "files": files, "datasets": sorted(datasets)},
        )
        return request

    with ctx.write() as session:
        request_id = record(session).id
    return run_checks(ctx, request_id)


def resubmit(
    ctx: Enclave, principal: Principal, request_id: str, uploads: Sequence[Upload], justification: str
) -> EgressRequest:
    """After ``changes_requested``: a new round with new files, checked and reviewed afresh."""
    _validate_uploads(ctx, uploads, justification)
    stored = _store_blobs(ctx, uploads)
    with ctx.write() as session:
        request = _locked(session, request_id)
        if request.requester_id != principal.id:
            raise NotFound(f"egress request {request_id} does not exist")
        check_transition(EgressStatus(request.status), EgressStatus.SUBMITTED, f"egress request {request_id}")
        now = ctx.now()
        request.status, request.round, request.updated_at = EgressStatus.SUBMITTED, request.round + 1, now
        request.justification, request.report = justification.strip(), None
        request.worker = workers.current()
        _record_blobs(session, stored, now)
        files = _add_files(session, request, uploads)
        ctx.audit.append(
            session,
            "egress.submitted",
            principal.id,
            {"egress_request": request.id, "project": request.project_id},
            {"round": request.round, "files": files, "datasets": _dataset_ids(session, request.id)},
        )
    return run_checks(ctx, request_id)


# ---------------------------------------------------------------------------------------------------
# Automatic checks


def _locked(session: Session, request_id: str) -> EgressRequest:
    request = session.scalars(
        select(EgressRequest).where(EgressRequest.id == request_id).with_for_update()
    ).one_or_none()
    if request is None:
        raise NotFound(f"egress request {request_id} does not exist")
    return request


def _dataset_ids(session: Session, request_id: str) -> list[str]:
    return sorted(
        session.scalars(
            select(EgressRequestDataset.dataset_id).where(EgressRequestDataset.request_id == request_id)
        )
    )


def _current_files(session: Session, request: EgressRequest) -> list[EgressFile]:
    return list(
        session.scalars(
            select(EgressFile)
            .where(EgressFile.request_id == request.id, EgressFile.round == request.round)
            .order_by(EgressFile.name)
        )
    )


def read_quarantined(ctx: Enclave, session: Session, sha256: str) -> bytes:
    """The plaintext of a quarantined file, authenticated and checked against its address."""
    blob = session.get(QuarantineBlob, sha256)
    if blob is None:
        raise IntegrityFailure(f"quarantined file {sha256} is missing")
    buffer = io.BytesIO()
    stored = StoredBlob(blob.blob_name, blob.kek_id, bytes(blob.wrapped_key), sha256, blob.size)
    ctx.quarantine.read(quarantine_context(sha256), stored, buffer)
    return buffer.getvalue()


def _requester_datasets(session: Session, requester_id: str) -> list[Dataset]:
    """Datasets of every grant (any status) of every project the requester belongs to."""
    projects = select(ProjectMember.project_id).where(ProjectMember.user_id == requester_id)
    dataset_ids = select(Grant.dataset_id).where(Grant.project_id.in_(projects))
    return list(session.scalars(select(Dataset).where(Dataset.id.in_(dataset_ids)).order_by(Dataset.id)))


def _identifier_kind(column: str) -> str:
    """The deny-list kind of a direct-identifier column (names get romanised variants)."""
    lowered = column.lower()
    for kind, hints in (
        ("name", ("name", "이름", "성명")),
        ("rrn", ("rrn", "resident", "주민")),
        ("phone", ("phone", "mobile", "tel", "전화")),
        ("mrn", ("mrn", "record", "chart")),
    ):
        if any(hint in lowered for hint in hints):
            return kind
    return column


def deny_values(ctx: Enclave, datasets: Sequence[Dataset]) -> dict[str, list[str]]:
    """Every direct-identifier value of ``datasets``, by kind (decrypted here, kept only in memory)."""
    values: dict[str, set[str]] = defaultdict(set)
    with ctx.read() as session:
        for dataset in datasets:
            meta = dataset_metadata(dataset)
            columns = [c.name for c in meta.columns if c.role == "direct_identifier"]
            if not columns:
                continue
            table = pl.DataFrame(load_table(ctx, session, dataset).select(columns))
            for column in columns:
                series = table.get_column(column).drop_nulls().cast(pl.String).unique()
                values[_identifier_kind(column)].update(series.to_list())
    return {kind: sorted(items) for kind, items in values.items()}


def _evidence(
    session: Session, public_key: Ed25519PublicKey, request: EgressRequest, files: Mapping[str, bytes]
) -> dict[str, ReleaseEvidence]:
    evidence = {}
    for name, data in files.items():
        if not name.endswith(MANIFEST_SUFFIX):
            continue
        parsed = manifest_release_id(data)
        if parsed is None:
            continue
        release_id, body, signature = parsed
        release = session.get(Release, release_id)
        if release is None or release.status != "released" or release.signature is None:
            evidence[release_id] = ReleaseEvidence(release_id, False, False, False, False)
            continue
        stored_body = release_body(release)
        result = release.result or {}
        evidence[release_id] = ReleaseEvidence(
            release_id,
            exists=True,
            signature_valid=verify_release(body, signature, public_key),
            matches_stored=signature == release.signature
            and canonical_json(body) == canonical_json(stored_body),
            owned_by_requester=release.requester_id == request.requester_id,
            columns=tuple(result.get("columns", ())),
            rows=tuple(tuple(row) for row in result.get("rows", ())),
        )
    return evidence


def run_checks(ctx: Enclave, request_id: str, only_if_abandoned: timedelta | None = None) -> EgressRequest:
    """``submitted``/``checking`` → ``checking`` → ``blocked`` | ``in_review``.

    Safe to run again after a crash: the files are read back from the quarantine. With
    ``only_if_abandoned`` (recovery), raise :class:`Conflict` unless the request is still waiting
    for checks whose process is gone or whose lease of that length ran out.
    """
    with ctx.write() as session:
        request = _locked(session, request_id)
        if only_if_abandoned is not None and not (
            request.status in INTERRUPTIBLE
            and workers.abandoned(request.worker, request.updated_at, ctx.now(), only_if_abandoned)
        ):
            raise Conflict(f"egress request {request_id} is no longer waiting for its checks")
        check_transition(EgressStatus(request.status), EgressStatus.CHECKING, f"egress request {request_id}")
        request.status, request.updated_at = EgressStatus.CHECKING, ctx.now()
        request.worker = workers.current()
        ctx.audit.append(
            session,
            "egress.checking",
            "system",
            {"egress_request": request.id, "project": request.project_id},
            {"round": request.round},
        )
    with ctx.read() as session:
        request = session.get_one(EgressRequest, request_id)
        round_ = request.round
        files = {f.name: read_quarantined(ctx, session, f.sha256) for f in _current_files(session, request)}
        releases = _evidence(session, ctx.secrets.signing_key.public_key(), request, files)
        datasets = _requester_datasets(session, request.requester_id)
        patterns = tuple(
            sorted(
                {
                    column.pattern
                    for dataset in datasets
                    for column in dataset_metadata(dataset).columns
                    if column.pattern is not None
                }
            )
        )
    deny_key = hashlib.sha256(json.dumps([(d.id, d.content_sha256) for d in datasets]).encode()).hexdigest()
    context = CheckContext(
        releases=releases,
        mrn_patterns=patterns,
        ner=ctx.settings.pii_ner,
        limits=Limits(max_file_bytes=ctx.settings.egress_max_file_bytes),
    )
    report = ctx.egress_checks.check(
        [SubmittedFile(name, data) for name, data in files.items()],
        context,
        deny_key,
        lambda: deny_values(ctx, datasets),
    )
    with ctx.write() as session:
        request = _locked(session, request_id)
        if request.status != EgressStatus.CHECKING or request.round != round_:
            return request  # withdrawn or superseded meanwhile: this report is stale
        target = EgressStatus.BLOCKED if report.blocked else EgressStatus.IN_REVIEW
        check_transition(EgressStatus(request.status), target, f"egress request {request_id}")
        request.status, request.updated_at, request.report = target, ctx.now(), report.to_dict()
        by_name = {f.name: f for f in report.files}
        for stored_file in _current_files(session, request):
            file_report = by_name.get(stored_file.name)
            if file_report is not None:
                stored_file.kind, stored_file.outcome = file_report.kind, file_report.outcome
        ctx.audit.append(
            session,
            "egress.checked",
            "system",
            {"egress_request": request.id, "project": request.project_id},
            {"round": request.round, "status": str(target), **report.summary()},
        )
    with ctx.read() as session:
        return session.get_one(EgressRequest, request_id)


def recover_interrupted(ctx: Enclave) -> int:
    """Check again the requests left in ``submitted`` or ``checking`` by a process that is gone, or
    for longer than the checks may take (their process elsewhere); return how many were re-run."""
    now = ctx.now()
    lease = timedelta(seconds=ctx.settings.egress_check_timeout_seconds + RECHECK_GRACE_SECONDS)
    with ctx.read() as session:
        stuck = [
            request_id
            for request_id, worker, updated in session.execute(
                select(EgressRequest.id, EgressRequest.worker, EgressRequest.updated_at).where(
                    EgressRequest.status.in_(INTERRUPTIBLE)
                )
            )
            if workers.abandoned(worker, updated, now, lease)
        ]
    rerun = 0
    for request_id in stuck:
        try:
            run_checks(ctx, request_id, only_if_abandoned=lease)
        except Conflict:  # finished, withdrawn or taken over by another process meanwhile
            continue
        rerun += 1
    return rerun


# ---------------------------------------------------------------------------------------------------
# Reviews and release


def _orgs_required(session: Session, request_id: str) -> dict[str, int]:
    required: dict[str, int] = {}
    for link in session.scalars(
        select(EgressRequestDataset).where(EgressRequestDataset.request_id == request_id)
    ):
        required[link.org_id] = max(required.get(link.org_id, 0), link.reviews_required)
    return required


def _round_reviews(session: Session, request: EgressRequest) -> list[EgressReview]:
    return list(
        session.scalars(
            select(EgressReview)
            .where(EgressReview.request_id == request.id, EgressReview.round == request.round)
            .order_by(EgressReview.created_at, EgressReview.id)
        )
    )


def approvals_missing(session: Session, request: EgressRequest) -> dict[str, int]:
    """Organisation → approvals still needed in the current round (empty when approved)."""
    approved: dict[str, set[str]] = defaultdict(set)
    for review in _round_reviews(session, request):
        if review.decision == "approve":
            approved[review.org_id].add(review.reviewer_id)
    return {
        org: need - len(approved[org])
        for org, need in _orgs_required(session, request.id).items()
        if len(approved[org]) < need
    }


def review(ctx: Enclave, principal: Principal, request_id: str, decision: str, comment: str) -> EgressRequest:
    """A custodian of an involved hospital (never the requester) reviews the current round."""
    if decision not in DECISIONS:
        raise Invalid(f"decision must be one of {', '.join(DECISIONS)}", field="decision")
    comment = comment.strip()
    if len(comment) > MAX_TEXT:
        raise Invalid(f"comments are limited to {MAX_TEXT} characters", field="comment")
    if decision != "approve" and not comment:
        raise Invalid("rejecting or requesting changes needs a comment", field="comment")
    with ctx.write() as session:
        request = _locked(session, request_id)
        if not _may_see(session, principal, request):
            raise NotFound(f"egress request {request_id} does not exist")
        if request.requester_id == principal.id:
            raise Forbidden("a requester cannot review their own egress request")
        if not (principal.has(Role.CUSTODIAN) and principal.org_id in _orgs_required(session, request.id)):
            raise Forbidden("only custodians of a dataset involved review this request")
        status = EgressStatus(request.status)
        if status is not EgressStatus.IN_REVIEW:
            raise Conflict(f"egress request {request_id} is {status}; only requests in review are reviewed")
        if any(r.reviewer_id == principal.id for r in _round_reviews(session, request)):
            raise Conflict(f"you already reviewed round {request.round} of egress request {request_id}")
        now = ctx.now()
        session.add(
            EgressReview(
                id=new_id("er"),
                request_id=request.id,
                round=request.round,
                reviewer_id=principal.id,
                org_id=principal.org_id,
                decision=decision,
                comment=comment,
                created_at=now,
            )
        )
        session.flush()
        target = {
            "reject": EgressStatus.REJECTED,
            "changes_requested": EgressStatus.CHANGES_REQUESTED,
        }.get(decision)
        if target is None and not approvals_missing(session, request):
            target = EgressStatus.APPROVED
        if target is not None:
            check_transition(status, target, f"egress request {request_id}")
            request.status = target
        request.updated_at = now
        subject = {"egress_request": request.id, "project": request.project_id}
        ctx.audit.append(
            session,
            "egress.reviewed",
            principal.id,
            subject,
            {"round": request.round, "decision": decision, "comment": comment, "status": request.status},
        )
        if target is EgressStatus.APPROVED:
            _release(ctx, session, request, subject)
    with ctx.read() as session:
        return session.get_one(EgressRequest, request_id)


def sign_manifest(body: dict[str, Any], key: Ed25519PrivateKey) -> str:
    return sign_document(SIGNING_DOMAIN, body, key)


def verify_manifest(body: dict[str, Any], signature: str, public_key: Ed25519PublicKey) -> bool:
    """True iff ``signature`` is the enclave's signature over exactly this egress manifest."""
    return verify_document(SIGNING_DOMAIN, body, signature, public_key)


def _release(ctx: Enclave, session: Session, request: EgressRequest, subject: dict[str, str]) -> None:
    """``approved`` → ``released``: sign the manifest that travels with the files."""
    now = ctx.now()
    report = request.report or {}
    file_reports = {f["name"]: f for f in report.get("files", [])}
    key = ctx.secrets.signing_key
    files = [
        {
            "name": f.name,
            "sha256": f.sha256,
            "size": f.size,
            "kind": f.kind,
            "dp_release": file_reports.get(f.name, {}).get("dp_release"),
        }
        for f in _current_files(session, request)
    ]
    reviews = [
        {"reviewer": r.reviewer_id, "org": r.org_id, "decision": r.decision, "at": rfc3339_utc(r.created_at)}
        for r in _round_reviews(session, request)
    ]
    body: dict[str, Any] = {
        "egress_request": request.id,
        "requester": request.requester_id,
        "project": request.project_id,
        "round": request.round,
        "datasets": _dataset_ids(session, request.id),
        "files": files,
        "checks": {"run": report.get("checks_run", []), "summary": report.get("summary", {})},
        "reviews": reviews,
        "released_at": rfc3339_utc(now),
        "key_id": key_id(key.public_key()),
    }
    signature = sign_manifest(body, key)
    check_transition(EgressStatus(request.status), EgressStatus.RELEASED, f"egress request {request.id}")
    request.status, request.manifest, request.manifest_signature = EgressStatus.RELEASED, body, signature
    request.released_at = request.updated_at = now
    ctx.audit.append(
        session,
        "egress.released",
        "system",
        subject,
        {
            "round": request.round,
            "files": [{"name": f["name"], "sha256": f["sha256"]} for f in files],
            "reviewers": sorted({r["reviewer"] for r in reviews}),
            "manifest_sha256": hashlib.sha256(canonical_json(body)).hexdigest(),
        },
    )


def withdraw(ctx: Enclave, principal: Principal, request_id: str) -> EgressRequest:
    with ctx.write() as session:
        request = _locked(session, request_id)
        if request.requester_id != principal.id:
            raise NotFound(f"egress request {request_id} does not exist")
        status = EgressStatus(request.status)
        if status not in WITHDRAWABLE:
            raise Conflict(f"egress request {request_id} is {status}; it cannot be withdrawn")
        check_transition(status, EgressStatus.WITHDRAWN, f"egress request {request_id}")
        request.status, request.updated_at = EgressStatus.WITHDRAWN, ctx.now()
        ctx.audit.append(
            session,
            "egress.withdrawn",
            principal.id,
            {"egress_request": request.id, "project": request.project_id},
            {"round": request.round},
        )
    with ctx.read() as session:
        return session.get_one(EgressRequest, request_id)


# ---------------------------------------------------------------------------------------------------
# Reading


def _visible(session: Session, principal: Principal) -> ColumnElement[bool] | None:
    if principal.has(Role.ADMIN) or principal.has(Role.AUDITOR):
        return true()
    clauses: list[ColumnElement[bool]] = []
    if principal.has(Role.RESEARCHER):
        clauses.append(EgressRequest.requester_id == principal.id)
    if principal.has(Role.CUSTODIAN):
        involved = select(EgressRequestDataset.request_id).where(
            EgressRequestDataset.org_id == principal.org_id
        )
        clauses.append(EgressRequest.id.in_(involved))
    return or_(*clauses) if clauses else None


def _may_see(session: Session, principal: Principal, request: EgressRequest) -> bool:
    visible = _visible(session, principal)
    if visible is None:
        return False
    return session.scalar(select(EgressRequest.id).where(EgressRequest.id == request.id, visible)) is not None


def list_requests(session: Session, principal: Principal, status: str | None = None) -> list[EgressRequest]:
    """The owner's requests; custodians' involving their hospital; auditors' and admins' all."""
    visible = _visible(session, principal)
    if visible is None:
        return []
    query = select(EgressRequest).where(visible)
    if status is not None:
        query = query.where(EgressRequest.status == status)
    return list(session.scalars(query.order_by(EgressRequest.created_at, EgressRequest.id)))


def get_request(session: Session, principal: Principal, request_id: str) -> EgressRequest:
    request = session.get(EgressRequest, request_id)
    if request is None or not _may_see(session, principal, request):
        raise NotFound(f"egress request {request_id} does not exist")
    return request


@dataclass(frozen=True)
class RequestView:
    """Everything a page or client shows about one request (current round)."""

    request: EgressRequest
    files: list[EgressFile]
    datasets: list[EgressRequestDataset]
    reviews: list[EgressReview]
    missing: dict[str, int]
    history: dict[str, list[dict[str, Any]]] | None


def view(session: Session, principal: Principal, request_id: str) -> RequestView:
    request = get_request(session, principal, request_id)
    datasets = list(
        session.scalars(
            select(EgressRequestDataset)
            .where(EgressRequestDataset.request_id == request.id)
            .order_by(EgressRequestDataset.dataset_id)
        )
    )
    reviewer = request.requester_id != principal.id
    return RequestView(
        request=request,
        files=_current_files(session, request),
        datasets=datasets,
        reviews=_round_reviews(session, request),
        missing=approvals_missing(session, request) if request.status == EgressStatus.IN_REVIEW else {},
        history=requester_history(session, request, [d.dataset_id for d in datasets]) if reviewer else None,
    )


def requester_history(
    session: Session, request: EgressRequest, dataset_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """The requester's earlier outputs, for reviewers to spot differencing between releases."""
    earlier = session.scalars(
        select(EgressRequest)
        .where(
            EgressRequest.requester_id == request.requester_id,
            EgressRequest.id != request.id,
            EgressRequest.status.in_([EgressStatus.RELEASED, EgressStatus.APPROVED, EgressStatus.IN_REVIEW]),
        )
        .order_by(EgressRequest.created_at)
    )
    egress = []
    for other in earlier:
        names = [f.name for f in _current_files(session, other)]
        egress.append(
            {
                "id": other.id,
                "status": other.status,
                "released_at": rfc3339_utc(other.released_at) if other.released_at else None,
                "files": names,
            }
        )
    releases = session.scalars(
        select(Release)
        .where(
            Release.requester_id == request.requester_id,
            Release.status == "released",
            Release.dataset_id.in_(dataset_ids),
        )
        .order_by(Release.released_at)
    )
    dp = [
        {
            "release_id": r.id,
            "dataset_id": r.dataset_id,
            "epsilon": r.epsilon,
            "delta": r.delta,
            "query": r.query,
            "released_at": rfc3339_utc(r.released_at) if r.released_at else None,
        }
        for r in releases
    ]
    return {"egress": egress, "dp_releases": dp}


def download(ctx: Enclave, principal: Principal, request_id: str, name: str) -> tuple[EgressFile, bytes]:
    """A released file's bytes, for its requester only; the download is audited."""
    with ctx.write() as session:
        request = session.get(EgressRequest, request_id)
        if request is None or request.requester_id != principal.id:
            raise NotFound(f"egress request {request_id} does not exist")
        if request.status != EgressStatus.RELEASED:
            raise Conflict(f"egress request {request_id} is {request.status}; files leave only once released")
        stored = next((f for f in _current_files(session, request) if f.name == name), None)
        if stored is None:
            raise NotFound(f"egress request {request_id} has no file {name!r}")
        data = read_quarantined(ctx, session, stored.sha256)
        ctx.audit.append(
            session,
            "egress.downloaded",
            principal.id,
            {"egress_request": request.id, "project": request.project_id},
            {"name": stored.name, "sha256": stored.sha256},
        )
        return stored, data


def record_viewed(ctx: Enclave, principal: Principal, request_id: str) -> None:
    """Before the quarantined files of a request are shown to ``principal``: check that they may see
    the request and audit the look (``egress.viewed``), so every read of quarantined bytes is logged."""
    with ctx.write() as session:
        request = get_request(session, principal, request_id)
        ctx.audit.append(
            session,
            "egress.viewed",
            principal.id,
            {"egress_request": request.id, "project": request.project_id},
            {"round": request.round, "files": len(_current_files(session, request))},
        )


def signed_manifest(session: Session, principal: Principal, request_id: str) -> dict[str, Any]:
    request = get_request(session, principal, request_id)
    if request.status != EgressStatus.RELEASED or request.manifest is None:
        raise Conflict(f"egress request {request_id} is {request.status}; it has no release manifest yet")
    return {
        "manifest": request.manifest,
        "signature": request.manifest_signature,
        "key_id": request.manifest["key_id"],
    }
