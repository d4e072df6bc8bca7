"""Typed dependencies: the enclave context, sessions and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from enclave_api.context import Enclave
from enclave_api.errors import Forbidden, Unauthenticated
from enclave_api.roles import Role
from enclave_api.services.identity import (
    TOKEN_PREFIX,
    Principal,
    authenticate_cached,
    record_token_use,
    token_hash,
)

_bearer = HTTPBearer(auto_error=False, description="API token (`enclave token issue`)")


async def get_enclave(request: Request) -> Enclave:  # async: no thread hand-off for a lookup
    enclave: Enclave = request.app.state.enclave
    return enclave


EnclaveDep = Annotated[Enclave, Depends(get_enclave)]


def read_session(enclave: EnclaveDep) -> Iterator[Session]:
    with enclave.read() as session:
        yield session


# Writes open their transaction inside the route (``with enclave.write()``) so that the commit has
# happened, or failed, before the response is built.
ReadSession = Annotated[Session, Depends(read_session)]


# The dependencies below that only inspect the caller are ``async``: FastAPI would otherwise hand each
# to a worker thread and back (≈ 0.3 ms apiece on this machine).

#: The browser login cookie (set by the hub OAuth login, path = the service prefix, HttpOnly, Strict).
WEB_COOKIE = "enclave_web"
#: Changes made with the cookie need this header (a cross-site form cannot send it).
CSRF_HEADER, CSRF_VALUE = "X-Requested-With", "enclave"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def resolve_principal(request: Request, enclave: Enclave, bearer: str | None) -> Principal:
    """Authenticate a bearer token, or else the browser login cookie (web tokens only)."""
    token, from_cookie = _credential(request, bearer)
    return authenticate_request(request, enclave, token, from_cookie)


def _credential(request: Request, bearer: str | None) -> tuple[str, bool]:
    """The token presented and whether it came as the login cookie (CSRF-checked then)."""
    cookie = None if bearer is not None else request.cookies.get(WEB_COOKIE)
    token = bearer if bearer is not None else cookie
    if token is None:
        raise Unauthenticated("missing bearer token")
    if (
        cookie is not None
        and request.method not in SAFE_METHODS
        and request.headers.get(CSRF_HEADER) != CSRF_VALUE
    ):
        raise Forbidden(f"changes with a browser login need the header {CSRF_HEADER}: {CSRF_VALUE}")
    return token, cookie is not None


def _remembered(request: Request, enclave: Enclave, token: str, from_cookie: bool) -> Principal | None:
    """The principal of a token the cache knows, when nothing needs the database; else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    now = enclave.now()
    principal: Principal | None = enclave.auth_cache.get(token_hash(enclave.secrets.token_pepper, token), now)
    if principal is None or principal.token_use_due(now) or from_cookie != (principal.token_kind == "web"):  # noqa: S105
        return None
    request.state.principal = principal
    return principal


def authenticate_request(request: Request, enclave: Enclave, token: str, from_cookie: bool) -> Principal:
    """The principal of ``token`` (sent as the login cookie or not), recorded on the request.

    Browser logins (``web`` tokens) are accepted only as the cookie and other tokens never are, so a
    leaked API token cannot become a browser login nor a cookie be replayed as a bearer token.
    """
    now = enclave.now()
    address = request.client.host if request.client else None
    principal = authenticate_cached(enclave, token, now, address)
    if from_cookie != (principal.token_kind == "web"):  # noqa: S105 - a kind, not a secret
        raise Unauthenticated("browser logins work only as the login cookie, other tokens never do")
    if principal.token_use_due(now):
        record_token_use(enclave, principal)
        principal = replace(principal, token_last_used=now)
        enclave.auth_cache.update(token_hash(enclave.secrets.token_pepper, token), principal)
    request.state.principal = principal
    return principal


async def current_principal(
    request: Request,
    enclave: EnclaveDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller: from the token cache on the event loop, or else looked up in a worker thread."""
    if credentials is not None and credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    token, from_cookie = _credential(request, credentials.credentials if credentials else None)
    principal = _remembered(request, enclave, token, from_cookie)
    if principal is not None:
        return principal
    return await run_in_threadpool(authenticate_request, request, enclave, token, from_cookie)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


async def session_principal(principal: CurrentPrincipal) -> Principal:
    """The caller, who must use a notebook session's credential (from inside that session)."""
    if principal.token_kind != "session":  # noqa: S105 - a token kind, not a secret
        raise Forbidden("only from inside a notebook session (JupyterHub), never with an API token")
    return principal


#: For the ``x-session-only`` endpoints: records and egress submissions.
SessionPrincipal = Annotated[Principal, Depends(session_principal)]


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Router dependency: the caller must hold one of ``roles``."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not any(principal.has(role) for role in roles):
            raise Forbidden(f"this needs the role {' or '.join(roles)}")
        return principal

    return check


async def limit_queries(principal: CurrentPrincipal, enclave: EnclaveDep) -> None:
    """Route dependency: the caller's DP query rate (429 beyond it)."""
    enclave.limits.take_query(principal.id)


async def limit_egress(principal: CurrentPrincipal, enclave: EnclaveDep) -> None:
    """Route dependency: the caller's egress submission rate (429 beyond it)."""
    enclave.limits.take_egress(principal.id)
