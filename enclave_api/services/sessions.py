"""Notebook sessions: the credential a sandboxed server holds, and when it stops working.

The hub (role ``hub``) opens a session when it spawns a researcher's server: the researcher must hold
at least one active grant, and the session gets its own token (kind ``session``) that works only from
the session's address and only while the session is open. Records and egress submissions need such a
token (``SessionPrincipal`` in the API), so they cannot be called from outside a session.

A session ends — its token revoked in the same transaction, the event audited — when the hub stops the
server, when a grant of the researcher's projects is revoked (:func:`end_for_grant`, called by the
revocation itself), when such a grant expires or the session reaches ``session_max_hours``
(:func:`end_finished`, run periodically), and when the enclave restarts. Ended sessions whose server
the hub has not yet stopped are handed to the session control plug-in (:func:`stop_pending_servers`)
until it confirms.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import ip_address

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Forbidden, Invalid, NotFound
from enclave_api.models import ApiToken, Grant, NotebookSession, Organisation, ProjectMember, User
from enclave_api.roles import Role, new_id
from enclave_api.services.identity import Principal, create_org, create_user, issue_token
from enclave_api.services.projects import member_project_ids

log = logging.getLogger("enclave.sessions")

SERVER_NAME = re.compile(r"^[A-Za-z0-9._~-]{0,255}$")
NO_GRANT = (
    "{user} holds no active data access grant, so no notebook session can start. Ask for access to a "
    "dataset for one of your projects (POST /v1/access-requests, or the portal); a custodian of the "
    "dataset's hospital approves it."
)


class EndReason(StrEnum):
    STOPPED = "stopped"  # the hub stopped the server (user, admin, idle culler)
    GRANT_REVOKED = "grant_revoked"
    GRANT_EXPIRED = "grant_expired"
    EXPIRED = "expired"  # session_max_hours reached
    SUPERSEDED = "superseded"  # the hub opened a new session for the same server
    ACCOUNT_DISABLED = "account_disabled"
    ENCLAVE_RESTARTED = "enclave_restarted"  # sessions do not survive the hub


@dataclass(frozen=True)
class StartedSession:
    record: NotebookSession
    token: str  # shown once, to the hub, which hands it to the sandbox
    grants: list[Grant]


def active_grants(ctx: Enclave, session: Session, user_id: str) -> list[Grant]:
    """Grants of the user's projects that are active now, soonest expiry first."""
    now = ctx.now()
    projects = member_project_ids(session, user_id)
    if not projects:
        return []
    query = (
        select(Grant)
        .where(
            Grant.project_id.in_(projects),
            Grant.revoked_at.is_(None),
            Grant.starts_at <= now,
            Grant.expires_at > now,
        )
        .order_by(Grant.expires_at, Grant.id)
    )
    return list(session.scalars(query))


def refusal(user: User, grants: list[Grant]) -> str | None:
    """Why ``user`` (holding ``grants``, active now) may not open a notebook session, or None.

    The one statement of the rule: the hub shows this text on its spawn page and :func:`start`
    refuses with it.
    """
    if user.disabled:
        return f"the account {user.id} is disabled"
    if Role.RESEARCHER not in user.roles:
        return f"{user.id} is not a researcher: notebook sessions are for approved researchers"
    if not grants:
        return NO_GRANT.format(user=user.id)
    return None


def session_user(session: Session, user_id: str) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def start(
    ctx: Enclave, session: Session, actor: Principal, user_id: str, server: str, address: str | None
) -> StartedSession:
    """Open a session for ``user_id``'s server ``server`` at ``address``; the hub calls this at spawn.

    Refused (403, with a reason meant for the researcher) for disabled accounts, non-researchers and
    researchers without an active grant. An open session of the same server is ended first.
    """
    if not SERVER_NAME.match(server):
        raise Invalid("server names are letters, digits and . _ ~ - (at most 255)", field="server")
    if address is not None:
        try:
            address = str(ip_address(address))
        except ValueError as exc:
            raise Invalid("address must be an IP address", field="address") from exc
    user = session_user(session, user_id)
    grants = active_grants(ctx, session, user_id)
    reason = refusal(user, grants)
    if reason is not None:
        raise Forbidden(reason)
    for previous in open_sessions(session, user_ids=[user_id], server=server):
        # The hub is starting this very server again: the old one is gone, never stop the new one.
        end(ctx, session, actor.id, previous, EndReason.SUPERSEDED, server_stopped=True)
    now = ctx.now()
    expires_at = min(min(g.expires_at for g in grants), now + timedelta(hours=ctx.settings.session_max_hours))
    session_id = new_id("ns")
    issued = issue_token(
        ctx, session, actor.id, user_id, name=f"session {session_id}", kind="session", expires_at=expires_at
    )
    record = NotebookSession(
        id=session_id,
        user_id=user_id,
        token_id=issued.record.id,
        server=server,
        address=address,
        grant_ids=[g.id for g in grants],
        started_at=now,
        expires_at=expires_at,
        ended_at=None,
        server_stopped=False,
    )
    session.add(record)
    ctx.audit.append(
        session,
        "session.started",
        actor.id,
        {"session": session_id, "user": user_id, "token": issued.record.id},
        {
            "server": server,
            "address": address,
            "grants": record.grant_ids,
            "expires_at": expires_at.isoformat(),
        },
    )
    return StartedSession(record, issued.token, grants)


def open_sessions(
    session: Session, user_ids: list[str] | None = None, server: str | None = None
) -> list[NotebookSession]:
    query = select(NotebookSession).where(NotebookSession.ended_at.is_(None))
    if user_ids is not None:
        query = query.where(NotebookSession.user_id.in_(user_ids))
    if server is not None:
        query = query.where(NotebookSession.server == server)
    return list(session.scalars(query.order_by(NotebookSession.started_at).with_for_update()))


def get(session: Session, session_id: str) -> NotebookSession:
    record = session.get(NotebookSession, session_id)
    if record is None:
        raise NotFound(f"session {session_id} does not exist")
    return record


def end(
    ctx: Enclave,
    session: Session,
    actor_id: str,
    record: NotebookSession,
    reason: EndReason,
    grant_id: str | None = None,
    server_stopped: bool = False,
) -> NotebookSession:
    """End ``record`` (idempotent): revoke its token and audit why. ``server_stopped`` when the caller
    is the hub stopping the server itself; otherwise the server is queued for :func:`stop_pending_servers`.
    """
    if server_stopped:
        record.server_stopped = True
    if record.ended_at is not None:
        return record
    now = ctx.now()
    record.ended_at, record.end_reason = now, str(reason)
    token = session.get(ApiToken, record.token_id)
    if token is not None and token.revoked_at is None:
        token.revoked_at = now
        ctx.auth_cache.bar(token.id)
    ctx.audit.append(
        session,
        "session.ended",
        actor_id,
        {"session": record.id, "user": record.user_id},
        {"reason": str(reason), "grant": grant_id},
    )
    return record


def end_for_grant(
    ctx: Enclave, session: Session, actor_id: str, grant: Grant, reason: EndReason
) -> list[NotebookSession]:
    """End every open session of the members of ``grant``'s project (their sandboxes may hold its records)."""
    members = list(
        session.scalars(select(ProjectMember.user_id).where(ProjectMember.project_id == grant.project_id))
    )
    if not members:
        return []
    return [
        end(ctx, session, actor_id, s, reason, grant.id) for s in open_sessions(session, user_ids=members)
    ]


def end_finished(ctx: Enclave, session: Session, actor_id: str = "enclave") -> list[NotebookSession]:
    """End open sessions that reached their expiry, or during which a grant of the user's projects
    stopped being active (expired or revoked), or whose account was disabled."""
    now = ctx.now()
    ended: list[NotebookSession] = []
    for record in open_sessions(session):
        user = session.get(User, record.user_id)
        if user is None or user.disabled:
            ended.append(end(ctx, session, actor_id, record, EndReason.ACCOUNT_DISABLED))
            continue
        finished = _grant_finished_during(session, record, now)
        if finished is not None:
            reason = EndReason.GRANT_REVOKED if finished.revoked_at is not None else EndReason.GRANT_EXPIRED
            ended.append(end(ctx, session, actor_id, record, reason, finished.id))
        elif now >= record.expires_at:
            ended.append(end(ctx, session, actor_id, record, EndReason.EXPIRED))
    return ended


def _grant_finished_during(session: Session, record: NotebookSession, now: datetime) -> Grant | None:
    projects = member_project_ids(session, record.user_id)
    if not projects:
        return None
    # Active at some point of the session (not expired before it began) and no longer active now.
    query = select(Grant).where(
        Grant.project_id.in_(projects),
        Grant.expires_at > record.started_at,
        or_(
            Grant.revoked_at > record.started_at,
            and_(Grant.revoked_at.is_(None), Grant.expires_at <= now),
        ),
    )
    return session.scalars(query.order_by(Grant.id).limit(1)).first()


def end_all(ctx: Enclave, session: Session, reason: EndReason) -> list[NotebookSession]:
    """End every open session (the hub and its sandboxes are gone: their servers count as stopped)."""
    return [end(ctx, session, "enclave", s, reason, server_stopped=True) for s in open_sessions(session)]


def pending_servers(session: Session) -> list[NotebookSession]:
    query = select(NotebookSession).where(
        NotebookSession.ended_at.is_not(None), NotebookSession.server_stopped.is_(False)
    )
    return list(session.scalars(query.order_by(NotebookSession.ended_at)))


def stop_pending_servers(ctx: Enclave) -> int:
    """Ask the session control plug-in to stop the servers of ended sessions; return how many it
    confirmed. Safe to call concurrently and repeatedly: a confirmed stop is recorded, the rest retried."""
    with ctx.read() as session:
        pending = [(s.id, s.user_id, s.server) for s in pending_servers(session)]
    confirmed = 0
    for session_id, user_id, server in pending:
        if not ctx.session_control.stop_server(user_id, server):
            continue

        def mark(session: Session, session_id: str = session_id) -> None:
            record = session.get(NotebookSession, session_id)
            if record is not None:
                record.server_stopped = True

        ctx.transact(mark)
        confirmed += 1
    return confirmed


def reap(ctx: Enclave) -> list[str]:
    """End finished sessions and stop their servers; the ids of the sessions ended (periodic task)."""
    ended = ctx.transact(lambda session: [s.id for s in end_finished(ctx, session)])
    stop_pending_servers(ctx)
    return ended


HUB_ACCOUNT = "jupyterhub"
OPERATOR_ORG = "enclave-operator"


def issue_hub_credential(ctx: Enclave, session: Session, days: int = 30) -> str:
    """A fresh token for the hub's service account (created on first use); earlier ones are revoked.

    ``enclave up`` calls this at every start and hands the token to the hub process only.
    """
    if session.get(Organisation, OPERATOR_ORG) is None:
        create_org(ctx, session, "enclave", OPERATOR_ORG, "Enclave operator", "operator")
    if session.get(User, HUB_ACCOUNT) is None:
        create_user(ctx, session, "enclave", HUB_ACCOUNT, "JupyterHub", OPERATOR_ORG, [Role.HUB])
        session.flush()
    now = ctx.now()
    stale = select(ApiToken).where(
        ApiToken.user_id == HUB_ACCOUNT, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now
    )
    for token in session.scalars(stale):
        token.revoked_at = now
        ctx.auth_cache.bar(token.id)  # never served from the token cache again
        ctx.audit.append(session, "token.revoked", "enclave", {"user": HUB_ACCOUNT, "token": token.id})
    return issue_token(ctx, session, "enclave", HUB_ACCOUNT, name="hub", days=days).token
