"""The hub's side of the API: password logins, user look-ups and notebook sessions.

Only the hub's service account (role ``hub``) logs users in and opens or ends sessions; admins and
auditors may list sessions, and admins may end one (its server is then stopped through the hub).
"""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession, require_role
from enclave_api.api.routes.access import grant_public
from enclave_api.api.schemas import (
    HubLogin,
    HubUserPublic,
    SessionCreate,
    SessionEnd,
    SessionPublic,
    SessionStarted,
)
from enclave_api.context import Enclave
from enclave_api.errors import LoginFailed
from enclave_api.limits import TooManyRequests
from enclave_api.models import NotebookSession, User
from enclave_api.roles import Role
from enclave_api.services import identity
from enclave_api.services import sessions as service

hub_router = APIRouter(prefix="/v1/hub", tags=["hub"], dependencies=[Depends(require_role(Role.HUB))])
sessions_router = APIRouter(prefix="/v1/sessions", tags=["sessions"])


def hub_user(enclave: Enclave, session: Session, user: User) -> HubUserPublic:
    now = enclave.now()
    grants = service.active_grants(enclave, session, user.id) if not user.disabled else []
    return HubUserPublic(
        id=user.id,
        name=user.name,
        roles=list(user.roles),
        org=user.org_id,
        disabled=user.disabled,
        grants=[grant_public(g, now) for g in grants],
        session_refused=service.refusal(user, grants),
    )


def session_public(record: NotebookSession, token: str | None = None) -> SessionPublic:
    fields = {
        "id": record.id,
        "user": record.user_id,
        "server": record.server,
        "address": record.address,
        "grants": list(record.grant_ids),
        "started_at": record.started_at,
        "expires_at": record.expires_at,
        "ended_at": record.ended_at,
        "end_reason": record.end_reason,
    }
    return SessionStarted(**fields, token=token) if token is not None else SessionPublic(**fields)


@hub_router.post("/login", response_model=HubUserPublic)
def login(body: HubLogin, request: Request, enclave: EnclaveDep) -> HubUserPublic:
    """Check a user's password (the hub's login form); 401 for any failure, 429 while failed logins
    are throttled, audited either way."""
    address = request.client.host if request.client else None
    with enclave.write() as session:
        outcome = identity.login(enclave, session, body.username, body.password, address=address)
        public = hub_user(enclave, session, outcome.user) if outcome.user is not None else None
    if outcome.failure == "throttled":
        raise TooManyRequests("too many failed logins; try again later", outcome.retry_after)
    if public is None:
        raise LoginFailed("invalid username or password")
    return public


@hub_router.get("/users/{user_id}", response_model=HubUserPublic)
def get_user(user_id: str, enclave: EnclaveDep, session: ReadSession) -> HubUserPublic:
    """A user's account state and active grants (the hub refreshes logins and shows the spawn page)."""
    return hub_user(enclave, session, service.session_user(session, user_id))


@sessions_router.post(
    "",
    response_model=SessionStarted,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_role(Role.HUB))],
)
def start(body: SessionCreate, principal: CurrentPrincipal, enclave: EnclaveDep) -> SessionPublic:
    """Open a session for a server the hub is spawning; 403 says why a user may not have one."""
    with enclave.write() as session:
        started = service.start(enclave, session, principal, body.user, body.server, body.address)
    return session_public(started.record, started.token)


@sessions_router.get(
    "",
    response_model=list[SessionPublic],
    dependencies=[Depends(require_role(Role.HUB, Role.ADMIN, Role.AUDITOR))],
)
def list_sessions(
    session: ReadSession,
    open_only: bool = Query(False, alias="open", description="Only sessions that have not ended"),
    user: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=1000),
) -> list[SessionPublic]:
    query = select(NotebookSession)
    if open_only:
        query = query.where(NotebookSession.ended_at.is_(None))
    if user is not None:
        query = query.where(NotebookSession.user_id == user)
    rows = session.scalars(query.order_by(NotebookSession.started_at.desc()).limit(limit))
    return [session_public(r) for r in rows]


@sessions_router.post(
    "/{session_id}/end",
    response_model=SessionPublic,
    dependencies=[Depends(require_role(Role.HUB, Role.ADMIN))],
)
def end(
    session_id: str,
    principal: CurrentPrincipal,
    enclave: EnclaveDep,
    background: BackgroundTasks,
    body: SessionEnd | None = None,
) -> SessionPublic:
    """End a session: its credential stops working at once. From the hub this records that the server
    stopped; from an admin the server is then stopped through the hub."""
    from_hub = principal.has(Role.HUB)
    with enclave.write() as session:
        record = service.end(
            enclave,
            session,
            principal.id,
            service.get(session, session_id),
            service.EndReason.STOPPED,
            server_stopped=from_hub,
        )
        public = session_public(record)
    if not from_hub:
        background.add_task(service.stop_pending_servers, enclave)
    return public
