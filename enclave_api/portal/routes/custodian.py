"""Portal pages for data custodians: access decisions, grants, datasets and egress reviews.

Pages list what the services list for the logged-in custodian (their hospital's access requests,
grants, datasets and egress requests); every change goes through the service that authorises and
audits it (``access.decide``, ``access.revoke_grant``, ``datasets.register_dataset``, ``egress.review``).
A custodian of another hospital gets what the API gives: 404 for what they may not see, 403 for a
decision they may not take. Invalid input is shown on the page it came from, with the form kept.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, File, Form, Query, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from enclave_api.api.deps import EnclaveDep
from enclave_api.api.routes.datasets import read_dataset_file
from enclave_api.context import Enclave
from enclave_api.errors import Conflict, EnclaveError, IntegrityFailure, Invalid, NotFound, TooLarge
from enclave_api.metadata import parse_metadata
from enclave_api.models import AccessRequest, Dataset, EgressRequest, Grant
from enclave_api.portal import plots
from enclave_api.portal import read_custodian as facts
from enclave_api.portal.render_files import RenderedFile, render_file, severity_class
from enclave_api.portal.web import PREFIX, PortalRoute, quoted, redirect, render, require_portal_role
from enclave_api.roles import Role
from enclave_api.services import access, egress, sessions
from enclave_api.services import datasets as catalog
from enclave_api.services.identity import Principal
from enclave_api.states import AccessRequestStatus, EgressStatus
from privacy.egress import MANIFEST_SUFFIX
from privacy.files import Limits

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)

#: Deciding access requests and reviewing egress are for custodians only (as in the API); grants and
#: datasets may also be managed by an admin.
Custodian = Annotated[Principal, Depends(require_portal_role(Role.CUSTODIAN))]
CustodianOrAdmin = Annotated[Principal, Depends(require_portal_role(Role.CUSTODIAN, Role.ADMIN))]

NOTICES = {
    "approved": "The request was approved and a grant created.",
    "denied": "The request was denied; the researcher sees your reason.",
    "revoked": "The grant was revoked. Notebook sessions that used it are being ended.",
    "registered": "The dataset was encrypted and registered.",
    "review_recorded": "Your approval was recorded. More approvals are needed before the files are released.",
    "released": "Approved: all required approvals are in, and the files were released to the requester.",
    "changes_requested": "Changes were requested; the requester can submit a new round.",
    "rejected": "The request was rejected.",
}
SEVERITY_ORDER = {"block": 0, "review": 1, "info": 2}
EXAMPLE_METADATA = """\
id: example_cohort
title: Example cohort (synthetic)
description: What the data is, where it comes from, what one row is.
custodian_org: {org}
tier: query_only          # or: enclave (pseudonymised records visible in sessions)
max_rows_per_person: 1
egress_reviews: 1         # independent approvals an egress request needs
columns:
  - {{name: patient_id, type: str, role: direct_identifier}}
  - {{name: age, type: int, role: quasi_identifier, bounds: [18, 100]}}
  - {{name: stage, type: category, role: attribute, categories: ["0", "I", "II", "III", "IV"]}}
  - {{name: tumor_size_mm, type: float, role: sensitive, bounds: [0, 150]}}
"""


def _problem(exc: EnclaveError) -> dict[str, str]:
    """An error for the page: what is wrong, and which field (or column) when the service said."""
    return {"detail": exc.detail, "field": getattr(exc, "field", None) or ""}


# ---------------------------------------------------------------------------------------------------
# Access requests


@dataclass(frozen=True)
class RequesterHistory:
    """The requester's other requests and grants on this hospital's datasets (what the custodian may see)."""

    earlier: list[AccessRequest]
    outcomes: dict[str, int]
    grants: list[Grant]
    epsilon_granted: float
    epsilon_spent: float


def _history(
    item: AccessRequest, requests: Sequence[AccessRequest], grants: Sequence[Grant]
) -> RequesterHistory:
    theirs = [r for r in requests if r.requester_id == item.requester_id]
    earlier = [r for r in theirs if r.id != item.id]
    ids = {r.id for r in theirs}
    their_grants = [g for g in grants if g.access_request_id in ids]
    return RequesterHistory(
        earlier=earlier,
        outcomes=dict(Counter(r.status for r in earlier)),
        grants=their_grants,
        epsilon_granted=sum(g.epsilon_total for g in their_grants),
        epsilon_spent=sum(g.epsilon_spent for g in their_grants),
    )


@router.get("/review/access")
def access_queue(request: Request, enclave: EnclaveDep, user: Custodian) -> Response:
    """Pending access requests for the hospital's datasets, oldest first, with each requester's history."""
    with enclave.read() as session:
        requests = access.list_requests(session, user)
        grants = access.list_grants(session, user)
        pending = [r for r in requests if r.status == AccessRequestStatus.PENDING]
        decided = sorted(
            (r for r in requests if r.decided_at is not None and r.status != AccessRequestStatus.WITHDRAWN),
            key=lambda r: r.decided_at or r.created_at,
            reverse=True,
        )[:20]
        people = {r.requester_id for r in requests} | {r.decided_by for r in requests if r.decided_by}
        return render(
            request,
            "custodian/access_queue.html",
            user=user,
            notices=NOTICES,
            pending=pending,
            decided=decided,
            histories={r.id: _history(r, requests, grants) for r in pending},
            projects=facts.projects(session, {r.project_id for r in requests}),
            names=facts.user_names(session, people),
            datasets={d.id: d for d in catalog.catalog(session)},
            now=enclave.now(),
        )


def _access_request_page(
    request: Request,
    enclave: Enclave,
    user: Principal,
    request_id: str,
    *,
    status: int = 200,
    error: dict[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    with enclave.read() as session:
        item = access.get_request(session, user, request_id)
        requests = access.list_requests(session, user)
        grants = access.list_grants(session, user)
        people = {r.requester_id for r in requests} | {item.requester_id}
        if item.decided_by:
            people.add(item.decided_by)
        return render(
            request,
            "custodian/access_request.html",
            status=status,
            user=user,
            item=item,
            history=_history(item, requests, grants),
            project=facts.projects(session, {item.project_id}).get(item.project_id),
            names=facts.user_names(session, people),
            dataset=catalog.get_dataset(session, item.dataset_id),
            datasets={d.id: d for d in catalog.catalog(session)},
            error=error,
            form=form or {},
            now=enclave.now(),
        )


@router.get("/review/access/{request_id}")
def access_request(request: Request, enclave: EnclaveDep, user: Custodian, request_id: str) -> Response:
    """One request in full, with the approve (optionally less) and deny forms."""
    return _access_request_page(request, enclave, user, request_id)


def _optional_number(text: str, kind: type[float] | type[int], field: str, label: str) -> Any:
    text = text.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        wanted = "a whole number" if kind is int else "a number"
        raise Invalid(f"{label} must be {wanted}", field=field) from None


@router.post("/review/access/{request_id}/decision")
def decide(
    request: Request,
    enclave: EnclaveDep,
    user: Custodian,
    request_id: str,
    decision: Annotated[str, Form(max_length=16)],
    reason: Annotated[str, Form(max_length=5000)] = "",
    epsilon: Annotated[str, Form(max_length=40)] = "",
    days: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Approve (grant created, ε and days at most as requested) or deny with a reason (``access.decide``)."""
    form = {"decision": decision, "reason": reason, "epsilon": epsilon, "days": days}
    try:
        granted_epsilon = _optional_number(epsilon, float, "epsilon", "ε")
        granted_days = _optional_number(days, int, "days", "Days")
        with enclave.write() as session:
            access.decide(enclave, session, user, request_id, decision, reason, granted_epsilon, granted_days)
    except Invalid as exc:
        return _access_request_page(
            request, enclave, user, request_id, status=422, error=_problem(exc), form=form
        )
    return redirect(
        request, f"{PREFIX}/review/access", notice="approved" if decision == "approve" else "denied"
    )


# ---------------------------------------------------------------------------------------------------
# Grants


def _burn_down(grant: Grant, spent: list[tuple[datetime, float]]) -> Any:
    end = grant.revoked_at or grant.expires_at
    return plots.burn_down(
        f"Privacy budget spent on grant {grant.id}",
        plots.Series(f"grant {grant.id}", spent),
        grant.epsilon_total,
        grant.starts_at,
        end,
    )


@router.get("/review/grants")
def grants_page(request: Request, enclave: EnclaveDep, user: CustodianOrAdmin) -> Response:
    """Grants on the hospital's datasets: remaining budget, budget burn-down, revoke; decisions per week."""
    now = enclave.now()
    with enclave.read() as session:
        grants = access.list_grants(session, user)
        spending = facts.budget_spending(session, [g.id for g in grants])
        requests = access.list_requests(session, user)
        labels, series = facts.per_week(facts.access_decisions(requests), ("approved", "denied"), now)
        order = {"active": 0, "expired": 1, "revoked": 2}
        ordered = sorted(grants, key=lambda g: (order.get(g.status_at(now), 3), g.expires_at))
        return render(
            request,
            "custodian/grants.html",
            user=user,
            notices=NOTICES,
            grants=ordered,
            plots={g.id: _burn_down(g, spending[g.id]) for g in grants},
            releases={g.id: len(spending[g.id]) for g in grants},
            decisions_plot=plots.bars(
                "Access requests decided per week (last 12 weeks, weeks starting Monday)",
                labels,
                series,
                "requests",
            ),
            projects=facts.projects(session, {g.project_id for g in grants}),
            datasets={d.id: d for d in catalog.catalog(session)},
            now=now,
        )


def _revoke_page(
    request: Request,
    enclave: Enclave,
    user: Principal,
    grant_id: str,
    *,
    status: int = 200,
    error: dict[str, str] | None = None,
    reason: str = "",
) -> Response:
    with enclave.read() as session:
        grant = next((g for g in access.list_grants(session, user) if g.id == grant_id), None)
        if grant is None:
            raise NotFound(f"grant {grant_id} does not exist")
        return render(
            request,
            "custodian/revoke.html",
            status=status,
            user=user,
            grant=grant,
            project=facts.projects(session, {grant.project_id}).get(grant.project_id),
            dataset=catalog.get_dataset(session, grant.dataset_id),
            error=error,
            reason=reason,
            now=enclave.now(),
        )


@router.get("/review/grants/{grant_id}/revoke")
def revoke_form(request: Request, enclave: EnclaveDep, user: CustodianOrAdmin, grant_id: str) -> Response:
    """Confirm a revocation, with its reason."""
    return _revoke_page(request, enclave, user, grant_id)


@router.post("/review/grants/{grant_id}/revoke")
def revoke(
    request: Request,
    enclave: EnclaveDep,
    user: CustodianOrAdmin,
    background: BackgroundTasks,
    grant_id: str,
    reason: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """End the grant (``access.revoke_grant``; its notebook sessions end with it)."""
    if not reason.strip():
        error = {"detail": "a revocation needs a reason", "field": "reason"}
        return _revoke_page(request, enclave, user, grant_id, status=422, error=error, reason=reason)
    with enclave.write() as session:
        access.revoke_grant(enclave, session, user, grant_id, reason)
    background.add_task(sessions.stop_pending_servers, enclave)
    return redirect(request, f"{PREFIX}/review/grants", notice="revoked")


# ---------------------------------------------------------------------------------------------------
# Datasets


def _own_datasets(session: Any, user: Principal) -> list[Dataset]:
    return [d for d in catalog.catalog(session) if user.has(Role.ADMIN) or d.custodian_org_id == user.org_id]


@router.get("/review/datasets")
def datasets_page(request: Request, enclave: EnclaveDep, user: CustodianOrAdmin) -> Response:
    """The hospital's datasets: rows, tier, columns with their roles and public bounds."""
    with enclave.read() as session:
        own = _own_datasets(session, user)
        return render(
            request,
            "custodian/datasets.html",
            user=user,
            notices=NOTICES,
            datasets=own,
            metadata={d.id: catalog.dataset_metadata(d) for d in own},
        )


def _dataset_form(
    request: Request,
    user: Principal,
    *,
    status: int = 200,
    error: dict[str, str] | None = None,
    metadata: str = "",
) -> Response:
    return render(
        request,
        "custodian/dataset_new.html",
        status=status,
        user=user,
        error=error,
        metadata=metadata,
        example=EXAMPLE_METADATA.format(org=user.org_id),
    )


@router.get("/review/datasets/new")
def dataset_form(request: Request, user: CustodianOrAdmin) -> Response:
    """The registration form: a CSV or Parquet file and its metadata (YAML or JSON)."""
    return _dataset_form(request, user)


@router.post("/review/datasets/new")
async def register_dataset(
    request: Request,
    enclave: EnclaveDep,
    user: CustodianOrAdmin,
    metadata: Annotated[str, Form()] = "",
    file: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Validate the metadata and the file against it, encrypt and register (as ``POST /v1/datasets``)."""
    try:
        if file is None or not file.filename:
            raise Invalid("choose the dataset file (CSV or Parquet)", field="file")
        data = await read_dataset_file(file, enclave.settings.max_request_bytes)
        meta = parse_metadata(metadata)
        await run_in_threadpool(catalog.register_dataset, enclave, user, meta, data, file.filename)
    except (Invalid, Conflict, TooLarge) as exc:
        return _dataset_form(request, user, status=exc.status, error=_problem(exc), metadata=metadata)
    return redirect(request, f"{PREFIX}/review/datasets", notice="registered")


# ---------------------------------------------------------------------------------------------------
# Egress


def _severity_counts(summary: Mapping[str, Any]) -> dict[str, int]:
    """``{"pii:block": 2, "sdc:review": 1}`` → ``{"block": 2, "review": 1}``."""
    counts: Counter[str] = Counter()
    for key, count in dict(summary.get("findings") or {}).items():
        counts[str(key).rsplit(":", 1)[-1]] += int(count)
    return dict(counts)


@router.get("/review/egress")
def egress_queue(
    request: Request,
    enclave: EnclaveDep,
    user: Custodian,
    status: Annotated[str, Query(max_length=24)] = EgressStatus.IN_REVIEW,
) -> Response:
    """Egress requests involving the hospital's datasets (in review by default), oldest first."""
    if status != "all" and status not in set(EgressStatus):
        raise Invalid(f"unknown status {status!r}", field="status")
    with enclave.read() as session:
        items = egress.list_requests(session, user, None if status == "all" else status)
        missing = {
            r.id: egress.approvals_missing(session, r) for r in items if r.status == EgressStatus.IN_REVIEW
        }
        everything = items if status == "all" else egress.list_requests(session, user)
        labels, series = facts.per_week(
            facts.egress_outcomes(everything), ("released", "changes requested", "rejected"), enclave.now()
        )
        return render(
            request,
            "custodian/egress_queue.html",
            user=user,
            items=items,
            missing=missing,
            reviewed=facts.reviewed_by(session, items, user.id),
            counts={r.id: _severity_counts((r.report or {}).get("summary") or {}) for r in items},
            names=facts.user_names(session, {r.requester_id for r in items}),
            projects=facts.projects(session, {r.project_id for r in items}),
            selected=status,
            statuses=["all", *(str(s) for s in EgressStatus if s is not EgressStatus.DRAFT)],
            outcomes_plot=plots.bars(
                "Egress requests decided per week (last 12 weeks, weeks starting Monday)",
                labels,
                series,
                "requests",
            ),
        )


@dataclass(frozen=True)
class FileSection:
    """One file of the current round as the review page shows it."""

    rendered: RenderedFile
    sha256: str
    outcome: str
    dp_release: str | None
    findings: list[dict[str, Any]]
    #: A DP release's signed manifest (checked automatically; shown folded).
    manifest: bool = False


def _files(enclave: Enclave, session: Any, view: egress.RequestView) -> list[FileSection]:
    report = view.request.report or {}
    reports = {str(f.get("name")): f for f in report.get("files", [])}
    limits = Limits(max_file_bytes=enclave.settings.egress_max_file_bytes)
    sections = []
    for stored in view.files:
        checked = reports.get(stored.name, {})
        findings = sorted(checked.get("findings", []), key=lambda f: SEVERITY_ORDER.get(f.get("severity"), 3))
        try:
            data = egress.read_quarantined(enclave, session, stored.sha256)
        except IntegrityFailure as exc:
            rendered = RenderedFile(
                stored.name, stored.size, stored.kind, problem=f"it cannot be shown: {exc.detail}"
            )
        else:
            rendered = render_file(stored.name, data, checked.get("kind"), findings, limits)
        sections.append(
            FileSection(
                rendered=rendered,
                sha256=stored.sha256,
                outcome=str(checked.get("outcome") or stored.outcome or "not checked"),
                dp_release=checked.get("dp_release"),
                findings=[f | {"css": severity_class(str(f.get("severity")))} for f in findings],
                manifest=stored.name.endswith(MANIFEST_SUFFIX),
            )
        )
    return sections


def _why_not_review(user: Principal, view: egress.RequestView) -> str:
    """Why the review form is not offered ('' when it is); the service enforces all of it again."""
    request = view.request
    if request.status != EgressStatus.IN_REVIEW:
        return f"This request is {request.status.replace('_', ' ')}; only requests in review are reviewed."
    if request.requester_id == user.id:
        return "You submitted this request; a requester never reviews their own request."
    if user.org_id not in {d.org_id for d in view.datasets}:
        return "Only custodians of a hospital whose data is involved review this request."
    if any(r.reviewer_id == user.id for r in view.reviews):
        return f"You already reviewed round {request.round} of this request."
    return ""


def _history_rows(history: Mapping[str, list[dict[str, Any]]] | None) -> dict[str, list[dict[str, Any]]]:
    if history is None:
        return {"egress": [], "dp_releases": []}
    releases = [
        r | {"query_text": json.dumps(r.get("query"), ensure_ascii=False, sort_keys=True)}
        for r in history.get("dp_releases", [])
    ]
    return {"egress": list(history.get("egress", [])), "dp_releases": releases}


def _egress_page(
    request: Request,
    enclave: Enclave,
    user: Principal,
    request_id: str,
    *,
    status: int = 200,
    error: dict[str, str] | None = None,
    form: Mapping[str, str] | None = None,
) -> Response:
    egress.record_viewed(enclave, user, request_id)  # audited before any quarantined byte is read
    with enclave.read() as session:
        view = egress.view(session, user, request_id)
        item: EgressRequest = view.request
        report = item.report or {}
        findings = [f for file in report.get("files", []) for f in file.get("findings", [])]
        rules = Counter((str(f.get("severity")), f"{f.get('check')}:{f.get('rule')}") for f in findings)
        files = _files(enclave, session, view)
        people = {item.requester_id} | {r.reviewer_id for r in view.reviews}
        return render(
            request,
            "custodian/egress_review.html",
            status=status,
            user=user,
            notices=NOTICES,
            item=item,
            view=view,
            files=files,
            severity_counts=Counter(str(f.get("severity")) for f in findings),
            rules=sorted(rules.items(), key=lambda kv: (SEVERITY_ORDER.get(kv[0][0], 3), kv[0][1])),
            checks_run=report.get("checks_run", []),
            report_notes=report.get("notes", []),
            dp_files=[f for f in files if f.dp_release],
            history=_history_rows(view.history),
            names=facts.user_names(session, people),
            project=facts.projects(session, {item.project_id}).get(item.project_id),
            datasets={d.id: d for d in catalog.catalog(session)},
            why_not=_why_not_review(user, view),
            error=error,
            form=form or {},
        )


@router.get("/review/egress/{request_id}")
def egress_review_page(request: Request, enclave: EnclaveDep, user: Custodian, request_id: str) -> Response:
    """Everything a reviewer needs on one page: request, check summary, files in place, history, form."""
    return _egress_page(request, enclave, user, request_id)


@router.post("/review/egress/{request_id}/review")
def review(
    request: Request,
    enclave: EnclaveDep,
    user: Custodian,
    request_id: str,
    decision: Annotated[str, Form(max_length=24)] = "",
    comment: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """Approve, request changes or reject the current round (``egress.review``)."""
    try:
        if not decision:
            raise Invalid("choose approve, request changes or reject", field="decision")
        result = egress.review(enclave, user, request_id, decision, comment)
    except Invalid as exc:
        form = {"decision": decision, "comment": comment}
        return _egress_page(request, enclave, user, request_id, status=422, error=_problem(exc), form=form)
    notice = {
        EgressStatus.IN_REVIEW: "review_recorded",
        EgressStatus.RELEASED: "released",
        EgressStatus.APPROVED: "released",
        EgressStatus.CHANGES_REQUESTED: "changes_requested",
        EgressStatus.REJECTED: "rejected",
    }.get(EgressStatus(result.status), "review_recorded")
    return redirect(request, f"{PREFIX}/review/egress/{quoted(request_id)}", notice=notice)
