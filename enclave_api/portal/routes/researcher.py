"""Portal pages for researchers, and the catalog that every logged-in user may browse.

* ``/portal/catalog`` (the data map) and ``/portal/catalog/{id}``: public metadata only, never records.
* ``/portal/projects``, ``/portal/requests``, ``/portal/grants``, ``/portal/egress``: the researcher's
  own projects, access requests, grants (remaining budget, burn-down, DP releases) and egress
  requests (checks, reviews, downloads once released).

Changes go through the services, which authorise them and write the audit event in the same
transaction; lists come from the services' list functions, narrowed to the researcher's own
projects and requests (never wider than the API's ``/v1`` answers).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import timedelta
from itertools import groupby
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from enclave_api.api.deps import EnclaveDep
from enclave_api.errors import Conflict, Invalid, NotFound
from enclave_api.models import Grant, Project
from enclave_api.portal import plots
from enclave_api.portal import read_researcher as read
from enclave_api.portal.web import (
    PREFIX,
    PortalRoute,
    PortalUser,
    quoted,
    redirect,
    render,
    require_portal_role,
)
from enclave_api.roles import Role
from enclave_api.services import access, datasets, egress, projects
from enclave_api.services.identity import Principal
from enclave_api.states import AccessRequestStatus, EgressStatus

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)

#: Pages and forms for researchers only (the catalog needs just a login).
RESEARCHER = [Depends(require_portal_role(Role.RESEARCHER))]

#: The API's limits for the same fields (``ProjectCreate``, ``AccessRequestCreate``).
MAX_TITLE, MAX_TEXT = 300, 5000
#: Form fields are read up to this size; longer input is refused with a message, not a crash.
FORM_TEXT = Annotated[str, Form(max_length=20_000)]
FORM_VALUE = Annotated[str, Form(max_length=64)]

NOTICES = {
    "project_created": "Project created. Request access to datasets for it from the catalog.",
    "requested": "Access request sent. The dataset's hospital custodians will decide on it.",
    "request_withdrawn": "The access request was withdrawn.",
    "egress_withdrawn": "The egress request was withdrawn. Its files stay in quarantine.",
}

#: What a researcher does next, per egress status (contract 4.6).
EGRESS_NEXT = {
    "draft": "The request has not been submitted yet.",
    "submitted": "The automatic checks are about to run. Reload this page in a moment.",
    "checking": "The automatic checks are running. Reload this page in a moment.",
    "blocked": (
        "An automatic check failed hard (see the findings below), so no custodian can approve this "
        "request. Fix the outputs in your notebook and submit a new request; withdraw this one."
    ),
    "in_review": "The automatic checks passed. The hospitals' custodians are reviewing the files.",
    "changes_requested": (
        "A custodian asked for changes (see the comments below). Make them in your notebook and "
        "resubmit from your notebook session: files can only be submitted from inside the enclave."
    ),
    "approved": "Approved; the signed release is being prepared. Reload this page in a moment.",
    "released": (
        "Released. Download the files and the signed manifest below; each download is recorded in "
        "the audit log."
    ),
    "rejected": "A custodian rejected the request. Its files will not leave the enclave.",
    "withdrawn": "You withdrew this request. Its files will not leave the enclave.",
}


# ---------------------------------------------------------------------------------------------------
# Catalog (every logged-in user)


def _catalog(session: Session) -> list[read.CatalogEntry]:
    names = read.organisation_names(session)
    return [read.catalog_entry(d, names) for d in datasets.catalog(session)]


@router.get("/catalog")
def catalog(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    q: Annotated[str, Query(max_length=200)] = "",
    hospital: Annotated[str, Query(max_length=64)] = "",
    tier: Annotated[str, Query(max_length=16)] = "",
    column: Annotated[str, Query(max_length=128)] = "",
) -> Response:
    """The data map: datasets of every hospital, searchable by text, column, hospital and tier."""
    with enclave.read() as session:
        entries = _catalog(session)
    hospitals = sorted({(e.org_id, e.org_name) for e in entries}, key=lambda h: h[1].casefold())
    results = read.search_catalog(entries, q, hospital, tier, column)
    groups = [(name, list(items)) for name, items in groupby(results, key=lambda e: e.org_name)]
    return render(
        request,
        "researcher/catalog.html",
        user=user,
        groups=groups,
        found=len(results),
        total=len(entries),
        hospitals=hospitals,
        tiers=read.TIER_EXPLAINED,
        filters={"q": q, "hospital": hospital, "tier": tier, "column": column},
        shown=read.SUMMARY_COLUMNS,
    )


@router.get("/catalog/{dataset_id}")
def dataset_page(dataset_id: str, request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """One dataset's public metadata, its tier in plain words, and the researcher's grants on it."""
    now = enclave.now()
    with enclave.read() as session:
        dataset = datasets.get_dataset(session, dataset_id)
        entry = read.catalog_entry(dataset, read.organisation_names(session))
        is_researcher = user.has(Role.RESEARCHER)
        own = _own_projects(session, user) if is_researcher else {}
        grants = [g for g in _own_grants(session, user, own) if g.dataset_id == dataset.id]
        pending = [
            r
            for r in access.list_requests(session, user)
            if r.project_id in own and r.dataset_id == dataset.id and r.status == AccessRequestStatus.PENDING
        ]
    return render(
        request,
        "researcher/dataset.html",
        user=user,
        entry=entry,
        tier_text=read.TIER_EXPLAINED.get(entry.tier, entry.tier),
        role_text=read.ROLE_EXPLAINED,
        is_researcher=is_researcher,
        grants=grants,
        pending=pending,
        projects=own,
        now=now,
    )


# ---------------------------------------------------------------------------------------------------
# Projects


def _own_projects(session: Session, user: Principal) -> dict[str, Project]:
    """The projects the user is a member of (what ``GET /v1/projects`` lists for a researcher)."""
    member_of = set(projects.member_project_ids(session, user.id))
    return {p.id: p for p in projects.list_projects(session, user) if p.id in member_of}


def _own_grants(session: Session, user: Principal, own: Mapping[str, Project]) -> list[Grant]:
    return [g for g in access.list_grants(session, user) if g.project_id in own]


def _projects_page(
    request: Request,
    enclave: EnclaveDep,
    user: Principal,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> Response:
    with enclave.read() as session:
        own = list(_own_projects(session, user).values())
    return render(
        request,
        "researcher/projects.html",
        status=status,
        user=user,
        projects=own,
        form=form,
        errors=errors,
        max_title=MAX_TITLE,
        max_text=MAX_TEXT,
    )


@router.get("/projects", dependencies=RESEARCHER)
def projects_page(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The researcher's projects and a form to start one."""
    return _projects_page(request, enclave, user, {"title": "", "purpose": ""}, {})


@router.post("/projects", dependencies=RESEARCHER)
def create_project(
    request: Request, enclave: EnclaveDep, user: PortalUser, title: FORM_TEXT = "", purpose: FORM_TEXT = ""
) -> Response:
    """Create a project (audited ``project.created``); mistakes come back on the form."""
    form = {"title": title, "purpose": purpose}
    errors = {}
    title, purpose = title.strip(), purpose.strip()
    if not title:
        errors["title"] = "A title is required."
    elif len(title) > MAX_TITLE:
        errors["title"] = f"The title is limited to {MAX_TITLE} characters."
    if not purpose:
        errors["purpose"] = "A purpose is required."
    elif len(purpose) > MAX_TEXT:
        errors["purpose"] = f"The purpose is limited to {MAX_TEXT} characters."
    if errors:
        return _projects_page(request, enclave, user, form, errors, status=422)
    with enclave.write() as session:
        project = projects.create_project(enclave, session, user, title, purpose)
    return redirect(request, f"{PREFIX}/projects/{quoted(project.id)}", notice="project_created")


@router.get("/projects/{project_id}", dependencies=RESEARCHER)
def project_page(project_id: str, request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """A project: its members, access requests and grants (404 for anyone not a member)."""
    now = enclave.now()
    with enclave.read() as session:
        project = projects.get_visible_project(session, user, project_id)
        members = read.project_members(session, project.id)
        requests = [r for r in access.list_requests(session, user) if r.project_id == project.id]
        grants = [g for g in access.list_grants(session, user) if g.project_id == project.id]
        catalog = {e.dataset_id: e for e in _catalog(session)}
    return render(
        request,
        "researcher/project.html",
        user=user,
        notices=NOTICES,
        project=project,
        members=members,
        requests=list(reversed(requests)),
        grants=grants,
        catalog=catalog,
        now=now,
    )


# ---------------------------------------------------------------------------------------------------
# Access requests


@router.get("/requests", dependencies=RESEARCHER)
def requests_page(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The access requests of the researcher's projects, newest first, with status and decision."""
    with enclave.read() as session:
        own = _own_projects(session, user)
        requests = [r for r in access.list_requests(session, user) if r.project_id in own]
        catalog = {e.dataset_id: e for e in _catalog(session)}
    return render(
        request,
        "researcher/requests.html",
        user=user,
        notices=NOTICES,
        requests=list(reversed(requests)),
        projects=own,
        catalog=catalog,
    )


def _request_form(
    request: Request,
    enclave: EnclaveDep,
    user: Principal,
    form: Mapping[str, str],
    errors: Mapping[str, str],
    status: int = 200,
) -> Response:
    with enclave.read() as session:
        own = list(_own_projects(session, user).values())
        entries = _catalog(session)
    settings = enclave.settings
    by_hospital = [
        (name, list(items))
        for name, items in groupby(
            sorted(entries, key=lambda e: (e.org_name.casefold(), e.title.casefold())),
            key=lambda e: e.org_name,
        )
    ]
    return render(
        request,
        "researcher/request_new.html",
        status=status,
        user=user,
        projects=own,
        by_hospital=by_hospital,
        form=form,
        errors=errors,
        max_epsilon=settings.max_epsilon,
        max_delta=settings.max_delta,
        max_days=settings.max_grant_days,
    )


@router.get("/requests/new", dependencies=RESEARCHER)
def new_request_page(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    dataset: Annotated[str, Query(max_length=64)] = "",
    project: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The access request form, pre-filled with a dataset (from its catalog page) or a project."""
    form = {
        "project_id": project,
        "dataset_id": dataset,
        "purpose": "",
        "epsilon": "1.0",
        "delta": "1e-06",
        "days": "90",
        "dua_accepted": "",
    }
    return _request_form(request, enclave, user, form, {})


def _parse_float(text: str, label: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise Invalid(f"{label} must be a number, e.g. 0.5.") from None
    if not math.isfinite(value):
        raise Invalid(f"{label} must be a finite number.")
    return value


def _parse_days(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise Invalid("The duration must be a whole number of days.") from None


def _error_field(exc: Invalid | Conflict | NotFound) -> str:
    """The form field a service refusal is about ("form" when it is about the whole request)."""
    if isinstance(exc, Invalid) and exc.field:
        return exc.field
    if isinstance(exc, NotFound):
        return "project_id" if exc.detail.startswith("project") else "dataset_id"
    return "form"


@router.post("/requests/new", dependencies=RESEARCHER)
def create_request(
    request: Request,
    enclave: EnclaveDep,
    user: PortalUser,
    project_id: FORM_VALUE = "",
    dataset_id: FORM_VALUE = "",
    purpose: FORM_TEXT = "",
    epsilon: FORM_VALUE = "",
    delta: FORM_VALUE = "",
    days: FORM_VALUE = "",
    dua_accepted: FORM_VALUE = "",
) -> Response:
    """File an access request (audited ``access_request.created``); the service's refusals (budget
    caps, a missing DUA acceptance, a request already pending) come back on the form, values kept."""
    form = {
        "project_id": project_id,
        "dataset_id": dataset_id,
        "purpose": purpose,
        "epsilon": epsilon,
        "delta": delta,
        "days": days,
        "dua_accepted": dua_accepted,
    }
    errors: dict[str, str] = {}
    try:
        epsilon_value = _parse_float(epsilon, "ε (epsilon)")
    except Invalid as exc:
        errors["epsilon"] = exc.detail
    try:
        delta_value = _parse_float(delta, "δ (delta)")
    except Invalid as exc:
        errors["delta"] = exc.detail
    try:
        days_value = _parse_days(days)
    except Invalid as exc:
        errors["days"] = exc.detail
    if not project_id:
        errors["project_id"] = "Choose one of your projects."
    if not dataset_id:
        errors["dataset_id"] = "Choose a dataset."
    if len(purpose.strip()) > MAX_TEXT:
        errors["purpose"] = f"The purpose is limited to {MAX_TEXT} characters."
    if errors:
        return _request_form(request, enclave, user, form, errors, status=422)
    try:
        with enclave.write() as session:
            access.create_request(
                enclave,
                session,
                user,
                project_id,
                dataset_id,
                purpose.strip(),
                epsilon_value,
                delta_value,
                days_value,
                dua_accepted == "yes",
            )
    except (Invalid, Conflict, NotFound) as exc:
        return _request_form(request, enclave, user, form, {_error_field(exc): exc.detail}, status=exc.status)
    return redirect(request, f"{PREFIX}/requests", notice="requested")


@router.get("/requests/{request_id}/withdraw", dependencies=RESEARCHER)
def withdraw_request_page(
    request_id: str, request: Request, enclave: EnclaveDep, user: PortalUser
) -> Response:
    """Confirm withdrawing a pending access request."""
    with enclave.read() as session:
        own = _own_projects(session, user)
        access_request = access.get_request(session, user, request_id)
        if access_request.project_id not in own:
            raise NotFound(f"access request {request_id} does not exist")
        catalog = {e.dataset_id: e for e in _catalog(session)}
    return render(
        request,
        "researcher/request_withdraw.html",
        user=user,
        access_request=access_request,
        project=own[access_request.project_id],
        entry=catalog.get(access_request.dataset_id),
    )


@router.post("/requests/{request_id}/withdraw", dependencies=RESEARCHER)
def withdraw_request(request_id: str, request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """Withdraw a pending access request (audited ``access_request.withdrawn``)."""
    with enclave.write() as session:
        access.withdraw(enclave, session, user, request_id)
    return redirect(request, f"{PREFIX}/requests", notice="request_withdrawn")


# ---------------------------------------------------------------------------------------------------
# Grants


@router.get("/grants", dependencies=RESEARCHER)
def grants_page(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The grants of the researcher's projects: budget left, a burn-down plot, the DP releases."""
    now = enclave.now()
    with enclave.read() as session:
        own = _own_projects(session, user)
        grants = _own_grants(session, user, own)
        releases = read.grant_releases(session, [g.id for g in grants])
        catalog = {e.dataset_id: e for e in _catalog(session)}
    views = []
    for grant in reversed(grants):
        entry = catalog.get(grant.dataset_id)
        title = entry.title if entry else grant.dataset_id
        # The grant's whole life on the time axis: how much was spent, and how much time is left.
        start = grant.starts_at
        end = max(grant.revoked_at or grant.expires_at, start + timedelta(minutes=1))
        plot = plots.burn_down(
            f"Privacy budget spent over time: {title} (grant {grant.id})",
            plots.Series("ε spent", read.cumulative_epsilon(releases[grant.id])),
            grant.epsilon_total,
            start,
            end,
        )
        views.append(
            {
                "grant": grant,
                "status": grant.status_at(now),
                "entry": entry,
                "project": own[grant.project_id],
                "epsilon_remaining": grant.epsilon_total - grant.epsilon_spent,
                "delta_remaining": grant.delta_total - grant.delta_spent,
                "plot": plot,
                "releases": [(r, read.describe_query(r.query)) for r in reversed(releases[grant.id])],
            }
        )
    return render(request, "researcher/grants.html", user=user, grants=views)


# ---------------------------------------------------------------------------------------------------
# Egress


def _own_egress(session: Session, user: Principal, request_id: str) -> egress.RequestView:
    """A request the user submitted (the researcher's pages never show others', even when visible)."""
    view = egress.view(session, user, request_id)
    if view.request.requester_id != user.id:
        raise NotFound(f"egress request {request_id} does not exist")
    return view


@router.get("/egress", dependencies=RESEARCHER)
def egress_page(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The researcher's egress requests, newest first."""
    with enclave.read() as session:
        mine = [r for r in egress.list_requests(session, user) if r.requester_id == user.id]
        own = _own_projects(session, user)
    return render(
        request, "researcher/egress_list.html", user=user, requests=list(reversed(mine)), projects=own
    )


@router.get("/egress/{request_id}", dependencies=RESEARCHER)
def egress_detail(request_id: str, request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """One egress request: files, automatic checks, reviews, what to do next, downloads once released."""
    with enclave.read() as session:
        view = _own_egress(session, user, request_id)
        names = read.organisation_names(session)
        project = _own_projects(session, user).get(view.request.project_id)
    report = view.request.report or {}
    base = f"{PREFIX}/egress/{quoted(request_id)}"
    return render(
        request,
        "researcher/egress.html",
        user=user,
        notices=NOTICES,
        view=view,
        project=project,
        org_names=names,
        checks={c["name"]: c for c in report.get("files", [])},
        findings=[
            finding
            for checked in report.get("files", [])
            for finding in checked.get("findings", [])
            if finding.get("severity") != "info"
        ],
        downloads={f.name: f"{base}/files/{quoted(f.name)}" for f in view.files},
        summary=report.get("summary"),
        checks_run=report.get("checks_run", []),
        next_step=EGRESS_NEXT.get(view.request.status, ""),
        released=view.request.status == EgressStatus.RELEASED,
        withdrawable=view.request.status in egress.WITHDRAWABLE,
    )


@router.get("/egress/{request_id}/withdraw", dependencies=RESEARCHER)
def withdraw_egress_page(
    request_id: str, request: Request, enclave: EnclaveDep, user: PortalUser
) -> Response:
    """Confirm withdrawing an egress request."""
    with enclave.read() as session:
        view = _own_egress(session, user, request_id)
    if view.request.status not in egress.WITHDRAWABLE:
        raise Conflict(f"egress request {request_id} is {view.request.status}; it cannot be withdrawn")
    return render(request, "researcher/egress_withdraw.html", user=user, view=view)


@router.post("/egress/{request_id}/withdraw", dependencies=RESEARCHER)
def withdraw_egress(request_id: str, request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """Withdraw an egress request (audited ``egress.withdrawn``); its files never leave."""
    egress.withdraw(enclave, user, request_id)
    return redirect(request, f"{PREFIX}/egress/{quoted(request_id)}", notice="egress_withdrawn")


def safe_filename(name: str) -> str:
    """``name`` with anything but letters, digits, ``.``, ``_`` and ``-`` replaced by ``_``."""
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in name)
    return re.sub(r"_+", "_", cleaned).strip("._")[:150] or "download"


def _attachment(data: bytes, name: str, media_type: str, sha256: str | None = None) -> Response:
    """Bytes the browser saves (never renders or sniffs), under a name safe for any file system."""
    safe = safe_filename(name)
    ascii_only = re.sub(r"_+", "_", safe.encode("ascii", "replace").decode().replace("?", "_"))
    headers = {
        "Content-Disposition": f"attachment; filename=\"{ascii_only}\"; filename*=UTF-8''{quote(safe)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }
    if sha256 is not None:
        headers["X-Content-SHA256"] = sha256
    return Response(data, media_type=media_type, headers=headers)


@router.get("/egress/{request_id}/files/{name}", dependencies=RESEARCHER)
def download(request_id: str, name: str, enclave: EnclaveDep, user: PortalUser) -> Response:
    """A released file, for its requester only (audited ``egress.downloaded`` by the service)."""
    stored, data = egress.download(enclave, user, request_id, name)
    return _attachment(data, stored.name, "application/octet-stream", stored.sha256)


@router.get("/egress/{request_id}/manifest", dependencies=RESEARCHER)
def manifest(request_id: str, enclave: EnclaveDep, user: PortalUser) -> Response:
    """The signed release manifest of a released request (file hashes, checks, reviewers)."""
    with enclave.read() as session:
        _own_egress(session, user, request_id)
        signed = egress.signed_manifest(session, user, request_id)
    body = json.dumps(signed, indent=2, ensure_ascii=False, sort_keys=True).encode()
    return _attachment(body, f"{request_id}.manifest.json", "application/json")
