"""Access requests, custodian decisions and grants."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, BackgroundTasks, Depends, status

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession, require_role
from enclave_api.api.schemas import (
    AccessRequestCreate,
    AccessRequestPublic,
    Decision,
    GrantPublic,
    RevokeBody,
)
from enclave_api.models import AccessRequest, Grant
from enclave_api.roles import Role
from enclave_api.services import access as service
from enclave_api.services import sessions

requests_router = APIRouter(prefix="/v1/access-requests", tags=["access"])
grants_router = APIRouter(prefix="/v1/grants", tags=["grants"])


def request_public(request: AccessRequest) -> AccessRequestPublic:
    return AccessRequestPublic(
        id=request.id,
        project_id=request.project_id,
        dataset_id=request.dataset_id,
        requester=request.requester_id,
        purpose=request.purpose,
        epsilon=request.epsilon,
        delta=request.delta,
        days=request.days,
        status=request.status,
        decided_by=request.decided_by,
        decided_at=request.decided_at,
        reason=request.decision_reason,
        grant_id=request.grant_id,
        created_at=request.created_at,
    )


def grant_public(grant: Grant, now: datetime) -> GrantPublic:
    return GrantPublic(
        id=grant.id,
        project_id=grant.project_id,
        dataset_id=grant.dataset_id,
        status=grant.status_at(now),
        epsilon_total=grant.epsilon_total,
        epsilon_spent=grant.epsilon_spent,
        delta_total=grant.delta_total,
        delta_spent=grant.delta_spent,
        starts_at=grant.starts_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
    )


@requests_router.post(
    "",
    response_model=AccessRequestPublic,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)
def create_request(
    body: AccessRequestCreate, principal: CurrentPrincipal, enclave: EnclaveDep
) -> AccessRequestPublic:
    with enclave.write() as session:
        request = service.create_request(
            enclave,
            session,
            principal,
            body.project_id,
            body.dataset_id,
            body.purpose,
            body.epsilon,
            body.delta,
            body.days,
            body.dua_accepted,
        )
    return request_public(request)


@requests_router.get("", response_model=list[AccessRequestPublic])
def list_requests(principal: CurrentPrincipal, session: ReadSession) -> list[AccessRequestPublic]:
    return [request_public(r) for r in service.list_requests(session, principal)]


@requests_router.get("/{request_id}", response_model=AccessRequestPublic)
def get_request(request_id: str, principal: CurrentPrincipal, session: ReadSession) -> AccessRequestPublic:
    return request_public(service.get_request(session, principal, request_id))


@requests_router.post(
    "/{request_id}/decision",
    response_model=AccessRequestPublic,
    dependencies=[Depends(require_role(Role.CUSTODIAN))],
)
def decide(
    request_id: str, body: Decision, principal: CurrentPrincipal, enclave: EnclaveDep
) -> AccessRequestPublic:
    with enclave.write() as session:
        request = service.decide(
            enclave,
            session,
            principal,
            request_id,
            body.decision,
            body.reason,
            body.epsilon,
            body.days,
        )
    return request_public(request)


@requests_router.post(
    "/{request_id}/withdraw",
    response_model=AccessRequestPublic,
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)
def withdraw(request_id: str, principal: CurrentPrincipal, enclave: EnclaveDep) -> AccessRequestPublic:
    with enclave.write() as session:
        request = service.withdraw(enclave, session, principal, request_id)
    return request_public(request)


@grants_router.get("", response_model=list[GrantPublic])
def list_grants(principal: CurrentPrincipal, session: ReadSession, enclave: EnclaveDep) -> list[GrantPublic]:
    now = enclave.now()
    return [grant_public(g, now) for g in service.list_grants(session, principal)]


@grants_router.post(
    "/{grant_id}/revoke",
    response_model=GrantPublic,
    dependencies=[Depends(require_role(Role.CUSTODIAN, Role.ADMIN))],
)
def revoke(
    grant_id: str,
    principal: CurrentPrincipal,
    enclave: EnclaveDep,
    background: BackgroundTasks,
    body: RevokeBody | None = None,
) -> GrantPublic:
    """Revoke a grant; sessions of its project's members end with it and their servers are stopped."""
    with enclave.write() as session:
        grant = service.revoke_grant(enclave, session, principal, grant_id, body.reason if body else None)
    background.add_task(sessions.stop_pending_servers, enclave)
    return grant_public(grant, enclave.now())
