"""Logging in and out of the portal.

With JupyterHub attached, "Log in with JupyterHub" runs the hub's OAuth flow (one login for notebooks
and the portal); the enclave's own password form works either way. Both end in the same browser
login: a ``web`` token in an HttpOnly, SameSite=Strict cookie scoped to the portal's mount.
"""

from __future__ import annotations

import hmac
import math
import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from enclave_api.api.deps import WEB_COOKIE, EnclaveDep
from enclave_api.portal.web import (
    PREFIX,
    PortalRoute,
    PortalUser,
    cookie_path,
    redirect,
    render,
    safe_next,
    url,
)
from enclave_api.services import identity

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)

#: Login-form CSRF: a random value in a cookie that the form must repeat (no login exists yet).
LOGIN_COOKIE = "enclave_portal_login"

REASONS = {
    "login": "Please log in to continue.",
    "expired": "Your login has expired. Please log in again.",
    "logged_out": "You have logged out.",
}


def _login_form(request: Request, next_path: str, message: str | None, status: int = 200) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status=status,
        next_path=safe_next(next_path),
        nonce=nonce,
        message=message,
        hub_login=url(request, "/login", next=safe_next(next_path)),
    )
    response.set_cookie(
        LOGIN_COOKIE,
        nonce,
        max_age=1800,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_page(
    request: Request,
    next: Annotated[str, Query(max_length=500)] = PREFIX + "/",
    reason: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """The login form (and, with the hub attached, the hub's login)."""
    return _login_form(request, next, REASONS.get(reason))


@router.post("/login")
async def login(
    request: Request,
    enclave: EnclaveDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=256)],
    nonce: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=500)] = PREFIX + "/",
) -> Response:
    """Check the password (audited either way) and set the browser login cookie."""
    expected = request.cookies.get(LOGIN_COOKIE)
    if expected is None or not hmac.compare_digest(expected, nonce):
        return _login_form(request, next, "The login form expired. Please try again.", status=403)

    address = request.client.host if request.client else None

    def check() -> identity.LoginOutcome | str:
        with enclave.write() as session:
            outcome = identity.login(enclave, session, username, password, via="portal", address=address)
            if outcome.user is None:
                return outcome
            return identity.web_token(enclave, session, outcome.user.id)

    token = await run_in_threadpool(check)
    if isinstance(token, identity.LoginOutcome):
        if token.failure == "throttled":
            minutes = max(1, math.ceil(token.retry_after / 60))
            message = f"Too many failed logins. Please try again in {minutes} minute{'s' * (minutes > 1)}."
            response = _login_form(request, next, message, status=429)
            response.headers["Retry-After"] = str(math.ceil(token.retry_after))
            return response
        return _login_form(request, next, "Invalid username or password.", status=401)
    response = redirect(request, safe_next(next))
    response.set_cookie(
        WEB_COOKIE,
        token,
        max_age=int(enclave.settings.web_login_hours * 3600),
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=cookie_path(request))
    return response


@router.post("/logout")
def logout(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """End the browser login: its token is revoked (audited), the cookie removed."""
    with enclave.write() as session:
        identity.revoke_token(enclave, session, user.id, user.token_id)
    response = redirect(request, f"{PREFIX}/login", reason="logged_out")
    response.delete_cookie(WEB_COOKIE, path=cookie_path(request))
    return response
