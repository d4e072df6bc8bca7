"""Organisations, users, passwords and API tokens.

Tokens look like ``enc_<random>``; only HMAC-SHA256(pepper, token) is stored, so a database leak does
not reveal usable tokens. Passwords are hashed with Argon2id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Invalid, NotFound, Unauthenticated
from enclave_api.models import ApiToken, NotebookSession, Organisation, User, UserRole
from enclave_api.roles import Role

TOKEN_PREFIX = "enc_"  # noqa: S105 - a prefix, not a secret
ORG_KINDS = ("hospital", "pharma", "oversight", "operator")
_USER_ID = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
_ORG_ID = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 12:
        raise Invalid("passwords need at least 12 characters", field="password")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def token_hash(pepper: bytes, token: str) -> str:
    return hmac.new(pepper, token.encode(), hashlib.sha256).hexdigest()


def create_org(ctx: Enclave, session: Session, actor: str, org_id: str, name: str, kind: str) -> Organisation:
    if not _ORG_ID.match(org_id):
        raise Invalid("organisation ids are lowercase letters, digits and '-'", field="id")
    if kind not in ORG_KINDS:
        raise Invalid(f"organisation kind must be one of {', '.join(ORG_KINDS)}", field="kind")
    if session.get(Organisation, org_id) is not None:
        raise Conflict(f"organisation {org_id} already exists")
    org = Organisation(id=org_id, name=name, kind=kind, created_at=ctx.now())
    session.add(org)
    ctx.audit.append(session, "org.created", actor, {"org": org_id}, {"name": name, "kind": kind})
    return org


def create_user(
    ctx: Enclave,
    session: Session,
    actor: str,
    user_id: str,
    name: str,
    org_id: str,
    roles: list[Role],
    password: str | None = None,
) -> User:
    if not _USER_ID.match(user_id):
        raise Invalid("user ids are lowercase letters, digits, '.', '_' and '-'", field="id")
    if not roles:
        raise Invalid("a user needs at least one role", field="roles")
    if session.get(Organisation, org_id) is None:
        raise NotFound(f"organisation {org_id} does not exist")
    if session.get(User, user_id) is not None:
        raise Conflict(f"user {user_id} already exists")
    user = User(
        id=user_id,
        name=name,
        org_id=org_id,
        password_hash=hash_password(password) if password else None,
        created_at=ctx.now(),
        role_rows=[UserRole(role=str(r)) for r in sorted(set(roles))],
    )
    session.add(user)
    ctx.audit.append(
        session,
        "user.created",
        actor,
        {"user": user_id, "org": org_id},
        {"roles": sorted(str(r) for r in set(roles)), "password_set": password is not None},
    )
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.id)))


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once, never stored
    record: ApiToken


def issue_token(
    ctx: Enclave,
    session: Session,
    actor: str,
    user_id: str,
    name: str = "api",
    days: int | None = None,
    kind: str = "api",
    expires_at: datetime | None = None,
) -> IssuedToken:
    """A new token for ``user_id``, valid ``days`` (or until ``expires_at``, for session tokens)."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise NotFound(f"user {user_id} does not exist or is disabled")
    days = ctx.settings.token_ttl_days if days is None else days
    if not 0 < days <= 365:
        raise Invalid("token lifetime must be between 1 and 365 days", field="days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = ctx.now()
    if expires_at is None:
        expires_at = now + timedelta(days=days)
    record = ApiToken(
        id=f"tok-{secrets.token_hex(6)}",
        user_id=user_id,
        token_hash=token_hash(ctx.secrets.token_pepper, token),
        name=name,
        kind=kind,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(record)
    ctx.audit.append(
        session,
        "token.issued",
        actor,
        {"user": user_id, "token": record.id},
        {"name": name, "kind": kind, "expires_at": record.expires_at.isoformat()},
    )
    return IssuedToken(token, record)


def revoke_token(ctx: Enclave, session: Session, actor: str, token_id: str) -> ApiToken:
    record = session.get(ApiToken, token_id)
    if record is None:
        raise NotFound(f"token {token_id} does not exist")
    if record.revoked_at is not None:
        raise Conflict(f"token {token_id} is already revoked")
    record.revoked_at = ctx.now()
    ctx.auth_cache.bar(token_id)  # before the commit: no request of this process can use it after
    ctx.audit.append(session, "token.revoked", actor, {"user": record.user_id, "token": token_id})
    return record


@dataclass(frozen=True)
class LoginOutcome:
    """A password login: the user when it succeeded, else why not (for the audit log only)."""

    user: User | None
    failure: str | None = None
    #: For ``throttled``: seconds until attempts resume.
    retry_after: float = 0.0


_dummy_hash: list[str] = []


def login(
    ctx: Enclave,
    session: Session,
    username: str,
    password: str,
    via: str = "hub",
    address: str | None = None,
) -> LoginOutcome:
    """Check a password and audit the attempt (``auth.login`` or ``auth.login_failed``) in ``session``.

    Unknown users cost the same Argon2 verification as known ones, so timing does not tell them apart.
    After too many failures for this username from ``address`` (or from ``address`` at all) attempts
    are refused unchecked (``throttled``, :attr:`LoginOutcome.retry_after`) until the window passes.
    The caller commits the audit event before it answers, also for a failure.
    """
    wait = ctx.limits.login_wait(username, address)
    if wait:
        ctx.audit.append(
            session,
            "auth.login_failed",
            "anonymous",
            {"username": username[:64]},
            {"via": via, "reason": "throttled"},
        )
        return LoginOutcome(None, "throttled", retry_after=wait)
    user = session.get(User, username) if _USER_ID.match(username) else None
    failure: str | None = None
    if user is None or not user.password_hash:
        if not _dummy_hash:
            _dummy_hash.append(_hasher.hash(secrets.token_urlsafe(16)))
        verify_password(_dummy_hash[0], password)
        failure = "unknown_user" if user is None else "no_password"
    elif not verify_password(user.password_hash, password):
        failure = "bad_password"
    elif user.disabled:
        failure = "disabled"
    if failure is not None:
        ctx.audit.append(
            session,
            "auth.login_failed",
            "anonymous",
            {"username": username[:64]},
            {"via": via, "reason": failure},
        )
        ctx.limits.login_failed(username, address)
        return LoginOutcome(None, failure)
    assert user is not None  # noqa: S101 - narrowed above
    ctx.limits.login_succeeded(username, address)
    ctx.audit.append(session, "auth.login", user.id, {"user": user.id}, {"via": via})
    return LoginOutcome(user)


def web_login(ctx: Enclave, session: Session, user_id: str) -> str:
    """A browser login for ``user_id``, whom the hub vouched for (OAuth). Audited as ``auth.login``."""
    token = web_token(ctx, session, user_id)
    ctx.audit.append(session, "auth.login", user_id, {"user": user_id}, {"via": "hub_oauth"})
    return token


def web_token(ctx: Enclave, session: Session, user_id: str) -> str:
    """A ``web`` token for an authenticated ``user_id``: it lives ``web_login_hours`` and is only
    accepted from the login cookie (the caller audits how the user logged in)."""
    user = session.get(User, user_id)
    if user is None or user.disabled:
        raise Unauthenticated(f"{user_id} is not an active enclave account")
    expires_at = ctx.now() + timedelta(hours=ctx.settings.web_login_hours)
    issued = issue_token(
        ctx, session, user_id, user_id, name="browser login", kind="web", expires_at=expires_at
    )
    return issued.token


TOKEN_USE_INTERVAL = timedelta(hours=1)


def record_token_use(ctx: Enclave, principal: Principal) -> None:
    """Audit that a token was used, at most once per token per ``TOKEN_USE_INTERVAL`` (the
    conditional update makes concurrent first uses record one event)."""
    now = ctx.now()

    def mark(session: Session) -> None:
        touched = session.execute(
            update(ApiToken)
            .where(
                ApiToken.id == principal.token_id,
                or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_USE_INTERVAL),
            )
            .values(last_used_at=now)
            .execution_options(synchronize_session=False)
        )
        if touched.rowcount == 1:  # type: ignore[attr-defined]
            ctx.audit.append(
                session,
                "auth.token_used",
                principal.id,
                {"user": principal.id, "token": principal.token_id},
                {"kind": principal.token_kind},
            )

    ctx.transact(mark)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller: a snapshot of the user, independent of any DB session."""

    id: str
    name: str
    org_id: str
    roles: tuple[str, ...]
    token_id: str
    token_kind: str
    token_last_used: datetime | None = None

    def has(self, role: Role) -> bool:
        return str(role) in self.roles

    @classmethod
    def of(
        cls, user: User, token_id: str, token_kind: str, token_last_used: datetime | None = None
    ) -> Principal:
        return cls(user.id, user.name, user.org_id, tuple(user.roles), token_id, token_kind, token_last_used)

    def token_use_due(self, now: datetime) -> bool:
        return self.token_last_used is None or now - self.token_last_used >= TOKEN_USE_INTERVAL

    @classmethod
    def local(cls, user: User) -> Principal:
        """An operator acting for ``user`` from the command line (no token involved)."""
        return cls.of(user, token_id="local", token_kind="api")  # noqa: S106 - labels


def authenticate(
    ctx: Enclave, session: Session, token: str, now: datetime, address: str | None = None
) -> Principal:
    """Resolve a bearer token; unknown, expired, revoked or disabled → :class:`Unauthenticated`.

    A notebook session's token (kind ``session``) also needs its session open and the call to come
    from the session's own ``address``; it carries only the researcher role, whatever else its user holds.
    """
    return _authenticate(ctx, session, token, now, address)[0]


def authenticate_cached(ctx: Enclave, token: str, now: datetime, address: str | None = None) -> Principal:
    """:func:`authenticate`, answered from ``ctx.auth_cache`` when the token was resolved moments
    ago (API and browser tokens only; see ``enclave_api.authcache``)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid token")
    hashed = token_hash(ctx.secrets.token_pepper, token)
    cached: Principal | None = ctx.auth_cache.get(hashed, now)
    if cached is not None:
        return cached
    with ctx.read() as session:
        principal, expires_at = _authenticate(ctx, session, token, now, address)
    if principal.token_kind != "session":  # noqa: S105 - a kind, not a secret
        ctx.auth_cache.put(hashed, principal, principal.token_id, expires_at)
    return principal


def _authenticate(
    ctx: Enclave, session: Session, token: str, now: datetime, address: str | None
) -> tuple[Principal, datetime]:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise Unauthenticated("invalid token")
    record = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == token_hash(ctx.secrets.token_pepper, token))
    ).one_or_none()
    if record is None:
        raise Unauthenticated("invalid token")
    if record.kind == "session":
        _check_session_credential(ctx, session, record.id, address)
    if record.revoked_at is not None:
        raise Unauthenticated("token has been revoked")
    if now >= record.expires_at:
        raise Unauthenticated("token has expired")
    user = session.get(User, record.user_id)
    if user is None or user.disabled:
        raise Unauthenticated("account is disabled")
    principal = Principal.of(
        user, token_id=record.id, token_kind=record.kind, token_last_used=record.last_used_at
    )
    if record.kind == "session":
        principal = replace(principal, roles=tuple(r for r in principal.roles if r == Role.RESEARCHER))
    return principal, record.expires_at


def _check_session_credential(ctx: Enclave, session: Session, token_id: str, address: str | None) -> None:
    notebook = session.scalars(
        select(NotebookSession).where(NotebookSession.token_id == token_id)
    ).one_or_none()
    if notebook is None or notebook.ended_at is not None:
        raise Unauthenticated("this notebook session has ended; restart your server in JupyterHub")
    bound = notebook.address
    if bound is None and address is not None:
        bound = _bind_session(ctx, notebook.id, notebook.user_id, token_id, address)
    if bound is not None and address != bound:
        raise Unauthenticated("a session credential works only from inside its own notebook session")


def _bind_session(ctx: Enclave, session_id: str, user_id: str, token_id: str, address: str) -> str | None:
    """Bind a session opened without an address (a Kubernetes pod learns its IP only after its
    credential is made) to its first caller's address; returns the address it is bound to (the
    conditional update makes concurrent first calls agree on one)."""

    def bind(session: Session) -> str | None:
        claimed = session.execute(
            update(NotebookSession)
            .where(NotebookSession.id == session_id, NotebookSession.address.is_(None))
            .values(address=address)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount == 1:  # type: ignore[attr-defined]
            ctx.audit.append(
                session,
                "session.bound",
                user_id,
                {"session": session_id, "user": user_id, "token": token_id},
                {"address": address[:45]},
            )
            return address
        return session.scalar(select(NotebookSession.address).where(NotebookSession.id == session_id))

    return ctx.transact(bind)
