"""Access requests, custodian decisions and grants (REMS-style entitlements with a privacy budget).

Each request names one dataset, so a study spanning several hospitals files one request per dataset
and each hospital's custodian decides for its own data. Grants are inert once revoked or expired.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Forbidden, Invalid, NotFound
from enclave_api.models import AccessRequest, Dataset, Grant
from enclave_api.roles import Role, new_id
from enclave_api.services import sessions
from enclave_api.services.datasets import get_dataset
from enclave_api.services.identity import Principal
from enclave_api.services.projects import get_visible_project, is_member, member_project_ids
from enclave_api.states import AccessRequestStatus, check_transition


def _check_budget(ctx: Enclave, epsilon: float, delta: float, days: int) -> None:
    settings = ctx.settings
    if not (math.isfinite(epsilon) and 0 < epsilon <= settings.max_epsilon):
        raise Invalid(f"epsilon must be in (0, {settings.max_epsilon}]", field="epsilon")
    if not (math.isfinite(delta) and 0 <= delta <= settings.max_delta):
        raise Invalid(f"delta must be in [0, {settings.max_delta}]", field="delta")
    if not 1 <= days <= settings.max_grant_days:
        raise Invalid(f"days must be between 1 and {settings.max_grant_days}", field="days")


def create_request(
    ctx: Enclave,
    session: Session,
    principal: Principal,
    project_id: str,
    dataset_id: str,
    purpose: str,
    epsilon: float,
    delta: float,
    days: int,
    dua_accepted: bool,
) -> AccessRequest:
    if not principal.has(Role.RESEARCHER):
        raise Forbidden("only researchers request access")
    get_visible_project(session, principal, project_id)
    get_dataset(session, dataset_id)
    if dua_accepted is not True:
        raise Invalid("the data use agreement must be accepted", field="dua_accepted")
    if not purpose.strip():
        raise Invalid("a purpose is required", field="purpose")
    _check_budget(ctx, epsilon, delta, days)
    pending = session.scalars(
        select(AccessRequest.id).where(
            AccessRequest.project_id == project_id,
            AccessRequest.dataset_id == dataset_id,
            AccessRequest.status == AccessRequestStatus.PENDING,
        )
    ).first()
    if pending is not None:
        raise Conflict(f"request {pending} for this project and dataset is still pending")
    now = ctx.now()
    request = AccessRequest(
        id=new_id("ar"),
        project_id=project_id,
        dataset_id=dataset_id,
        requester_id=principal.id,
        purpose=purpose,
        epsilon=epsilon,
        delta=delta,
        days=days,
        dua_accepted_at=now,
        status=AccessRequestStatus.PENDING,
        created_at=now,
    )
    session.add(request)
    ctx.audit.append(
        session,
        "access_request.created",
        principal.id,
        {"access_request": request.id, "project": project_id, "dataset": dataset_id},
        {"epsilon": epsilon, "delta": delta, "days": days, "dua_accepted": True},
    )
    return request


def _visible(
    session: Session, principal: Principal, project_column: Any, dataset_column: Any
) -> ColumnElement[bool] | None:
    """Rows a caller may list: researchers their projects', custodians their org's datasets',
    admins everything (``true()``); ``None`` when the caller may see none."""
    if principal.has(Role.ADMIN):
        return true()
    clauses = []
    if principal.has(Role.RESEARCHER):
        clauses.append(project_column.in_(member_project_ids(session, principal.id)))
    if principal.has(Role.CUSTODIAN):
        clauses.append(
            dataset_column.in_(select(Dataset.id).where(Dataset.custodian_org_id == principal.org_id))
        )
    return or_(*clauses) if clauses else None


def list_requests(session: Session, principal: Principal) -> list[AccessRequest]:
    """Researchers see their projects' requests; custodians their org's; admins all."""
    visible = _visible(session, principal, AccessRequest.project_id, AccessRequest.dataset_id)
    if visible is None:
        return []
    query = select(AccessRequest).where(visible).order_by(AccessRequest.created_at, AccessRequest.id)
    return list(session.scalars(query))


def _may_see_request(session: Session, principal: Principal, request: AccessRequest) -> bool:
    if principal.has(Role.ADMIN):
        return True
    if principal.has(Role.RESEARCHER) and is_member(session, principal.id, request.project_id):
        return True
    dataset = session.get(Dataset, request.dataset_id)
    return bool(principal.has(Role.CUSTODIAN) and dataset and dataset.custodian_org_id == principal.org_id)


def get_request(session: Session, principal: Principal, request_id: str) -> AccessRequest:
    request = session.get(AccessRequest, request_id)
    if request is None or not _may_see_request(session, principal, request):
        raise NotFound(f"access request {request_id} does not exist")
    return request


def decide(
    ctx: Enclave,
    session: Session,
    principal: Principal,
    request_id: str,
    decision: str,
    reason: str | None,
    epsilon: float | None = None,
    days: int | None = None,
) -> AccessRequest:
    """A custodian of the dataset's organisation approves (possibly less) or denies with a reason."""
    request = session.scalars(
        select(AccessRequest).where(AccessRequest.id == request_id).with_for_update()
    ).one_or_none()
    # What the caller may not see does not exist for them: no 403 that would confirm it does.
    if request is None or not _may_see_request(session, principal, request):
        raise NotFound(f"access request {request_id} does not exist")
    dataset = get_dataset(session, request.dataset_id)
    if not (principal.has(Role.CUSTODIAN) and principal.org_id == dataset.custodian_org_id):
        raise Forbidden("only a custodian of the dataset's organisation decides this request")
    if decision not in ("approve", "deny"):
        raise Invalid("decision must be 'approve' or 'deny'", field="decision")
    target = AccessRequestStatus.APPROVED if decision == "approve" else AccessRequestStatus.DENIED
    check_transition(AccessRequestStatus(request.status), target, f"access request {request_id}")
    reason = (reason or "").strip() or None
    if target is AccessRequestStatus.DENIED:
        if reason is None:
            raise Invalid("a denial needs a reason", field="reason")
        if epsilon is not None or days is not None:
            raise Invalid("epsilon and days only apply to approvals", field="decision")
    granted_epsilon = request.epsilon if epsilon is None else epsilon
    granted_days = request.days if days is None else days
    if target is AccessRequestStatus.APPROVED:
        _check_budget(ctx, granted_epsilon, request.delta, granted_days)
        if granted_epsilon > request.epsilon:
            raise Invalid("a custodian may lower the requested epsilon, not raise it", field="epsilon")
        if granted_days > request.days:
            raise Invalid("a custodian may shorten the requested duration, not extend it", field="days")
    now = ctx.now()
    request.status = target
    request.decided_by = principal.id
    request.decided_at = now
    request.decision_reason = reason
    subject = {"access_request": request.id, "project": request.project_id, "dataset": dataset.id}
    details: dict[str, object] = {"decision": decision, "reason": reason}
    if target is AccessRequestStatus.APPROVED:
        grant = Grant(
            id=new_id("g"),
            access_request_id=request.id,
            project_id=request.project_id,
            dataset_id=dataset.id,
            epsilon_total=granted_epsilon,
            delta_total=request.delta,
            epsilon_spent=0.0,
            delta_spent=0.0,
            starts_at=now,
            expires_at=now + timedelta(days=granted_days),
            created_at=now,
        )
        session.add(grant)
        request.grant_id = grant.id
        details |= {"epsilon": granted_epsilon, "delta": request.delta, "days": granted_days}
        session.flush()
        ctx.audit.append(session, "access_request.decided", principal.id, subject, details)
        ctx.audit.append(
            session,
            "grant.created",
            principal.id,
            {"grant": grant.id, "project": request.project_id, "dataset": dataset.id},
            {
                "epsilon_total": granted_epsilon,
                "delta_total": request.delta,
                "expires_at": grant.expires_at.isoformat(),
            },
        )
    else:
        ctx.audit.append(session, "access_request.decided", principal.id, subject, details)
    return request


def withdraw(ctx: Enclave, session: Session, principal: Principal, request_id: str) -> AccessRequest:
    """A member of the requesting project withdraws a pending request."""
    request = session.scalars(
        select(AccessRequest).where(AccessRequest.id == request_id).with_for_update()
    ).one_or_none()
    if request is None or not is_member(session, principal.id, request.project_id):
        raise NotFound(f"access request {request_id} does not exist")
    check_transition(
        AccessRequestStatus(request.status), AccessRequestStatus.WITHDRAWN, f"access request {request_id}"
    )
    request.status = AccessRequestStatus.WITHDRAWN
    request.decided_at = ctx.now()
    ctx.audit.append(
        session,
        "access_request.withdrawn",
        principal.id,
        {"access_request": request.id, "project": request.project_id, "dataset": request.dataset_id},
    )
    return request


def list_grants(session: Session, principal: Principal) -> list[Grant]:
    """Researchers see their projects' grants; custodians their org's datasets'; admins all."""
    visible = _visible(session, principal, Grant.project_id, Grant.dataset_id)
    if visible is None:
        return []
    return list(session.scalars(select(Grant).where(visible).order_by(Grant.created_at, Grant.id)))


def revoke_grant(
    ctx: Enclave, session: Session, principal: Principal, grant_id: str, reason: str | None
) -> Grant:
    grant = session.scalars(select(Grant).where(Grant.id == grant_id).with_for_update()).one_or_none()
    dataset = get_dataset(session, grant.dataset_id) if grant is not None else None
    custodian = bool(
        dataset and principal.has(Role.CUSTODIAN) and principal.org_id == dataset.custodian_org_id
    )
    member = bool(
        grant and principal.has(Role.RESEARCHER) and is_member(session, principal.id, grant.project_id)
    )
    if grant is None or not (custodian or member or principal.has(Role.ADMIN)):
        raise NotFound(f"grant {grant_id} does not exist")  # not confirmed to those who may not see it
    if not (custodian or principal.has(Role.ADMIN)):
        raise Forbidden("only a custodian of the dataset's organisation or an admin revokes grants")
    if grant.revoked_at is not None:
        raise Conflict(f"grant {grant_id} is already revoked")
    grant.revoked_at = ctx.now()
    grant.revoked_by = principal.id
    grant.revoke_reason = (reason or "").strip() or None
    ctx.audit.append(
        session,
        "grant.revoked",
        principal.id,
        {"grant": grant.id, "project": grant.project_id, "dataset": grant.dataset_id},
        {"reason": grant.revoke_reason, "was": grant.status_at(grant.revoked_at)},
    )
    # Sessions that may hold its records end with it (their servers are stopped after the commit).
    sessions.end_for_grant(ctx, session, principal.id, grant, sessions.EndReason.GRANT_REVOKED)
    return grant


def active_grant(
    ctx: Enclave, session: Session, principal: Principal, dataset_id: str, grant_id: str | None
) -> Grant:
    """The caller's active grant on ``dataset_id`` (``grant_id`` picks one when several exist).

    Revoked or expired grants never count: they are inert everywhere.
    """
    projects = member_project_ids(session, principal.id)
    now = ctx.now()
    query = select(Grant).where(
        Grant.dataset_id == dataset_id,
        Grant.project_id.in_(projects),
        Grant.revoked_at.is_(None),
        Grant.expires_at > now,
    )
    if grant_id is not None:
        query = query.where(Grant.id == grant_id)
    grants = list(session.scalars(query))
    if not grants:
        if grant_id is not None:
            raise Forbidden(f"grant {grant_id} is not an active grant of yours on {dataset_id}")
        raise Forbidden(f"you hold no active grant on dataset {dataset_id}")
    if len(grants) > 1:
        raise Invalid(
            "you hold several active grants on this dataset; say which one with grant_id",
            field="grant_id",
        )
    return grants[0]
