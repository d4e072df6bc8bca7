"""Browser login through JupyterHub (one login for notebooks and the enclave's web pages).

Reached through the hub's proxy at ``/services/enclave-api/...`` (the prefix is stripped by
``ServicePrefixMiddleware``): ``/login`` starts the hub's OAuth flow, ``/oauth_callback`` finishes it
and sets the login cookie (a ``web`` token: HttpOnly, SameSite=Strict, scoped to the service path),
``/`` says who is logged in (or starts the login), ``/logout`` ends the browser login.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response

from enclave_api.api.deps import WEB_COOKIE, EnclaveDep, resolve_principal
from enclave_api.context import Enclave
from enclave_api.errors import EnclaveError, Forbidden, NotFound, Unauthenticated
from enclave_api.hub.oauth import HubOAuthError, authorize_url, identify
from enclave_api.portal.web import safe_next
from enclave_api.services import identity

STATE_COOKIE = "enclave_oauth_state"
NEXT_COOKIE = "enclave_oauth_next"

router = APIRouter(tags=["login"], include_in_schema=False)


def _hub_client(enclave: Enclave) -> tuple[str, str]:
    settings = enclave.settings
    if not settings.hub_api_url or settings.hub_api_token is None:
        raise NotFound("browser login goes through JupyterHub, which is not attached to this API")
    return settings.hub_api_url, settings.hub_api_token.get_secret_value()


def _redirect_uri(enclave: Enclave) -> str:
    return f"{enclave.settings.hub_service_prefix.rstrip('/')}/oauth_callback"


@router.get("/login")
def login(request: Request, enclave: EnclaveDep, next: str | None = Query(None, max_length=500)) -> Response:
    """Send the browser to the hub's OAuth authorize endpoint (the hub logs the user in if needed).

    ``next``: a portal page to return to after the login (anything else is ignored).
    """
    _hub_client(enclave)
    state = secrets.token_urlsafe(24)
    prefix = enclave.settings.hub_service_prefix.rstrip("/")
    target = authorize_url("/hub", enclave.settings.hub_oauth_client_id, _redirect_uri(enclave), state)
    response = RedirectResponse(target, status_code=302)
    secure = request.url.scheme == "https"
    response.set_cookie(
        STATE_COOKIE, state, max_age=600, path=prefix, httponly=True, samesite="lax", secure=secure
    )
    if next is not None:
        response.set_cookie(
            NEXT_COOKIE,
            safe_next(next),
            max_age=600,
            path=prefix,
            httponly=True,
            samesite="lax",
            secure=secure,
        )
    return response


@router.get("/oauth_callback")
async def oauth_callback(
    request: Request,
    enclave: EnclaveDep,
    code: str = Query(min_length=1, max_length=512),
    state: str = Query(min_length=1, max_length=512),
) -> Response:
    """Finish the hub's OAuth flow: the hub says who the user is; the browser gets its login cookie."""
    api_url, secret = _hub_client(enclave)
    expected = request.cookies.get(STATE_COOKIE)
    if expected is None or not hmac.compare_digest(expected, state):
        raise Forbidden("the login expired or did not start here; open the login page again")
    try:
        user_id = await run_in_threadpool(
            identify, api_url, enclave.settings.hub_oauth_client_id, secret, code, _redirect_uri(enclave)
        )
    except HubOAuthError as exc:
        raise Unauthenticated(f"the hub did not confirm the login: {exc}") from exc

    def issue() -> str:
        with enclave.write() as session:
            return identity.web_login(enclave, session, user_id)

    token = await run_in_threadpool(issue)
    prefix = enclave.settings.hub_service_prefix.rstrip("/")
    back = request.cookies.get(NEXT_COOKIE)
    response = RedirectResponse(prefix + (safe_next(back) if back else "/"), status_code=302)
    response.set_cookie(
        WEB_COOKIE,
        token,
        max_age=int(enclave.settings.web_login_hours * 3600),
        path=prefix,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(STATE_COOKIE, path=prefix)
    response.delete_cookie(NEXT_COOKIE, path=prefix)
    return response


@router.get("/")
def landing(request: Request, enclave: EnclaveDep) -> Response:
    """Who is logged in, with where the API is; without a login, start one."""
    prefix = enclave.settings.hub_service_prefix.rstrip("/")
    try:
        principal = resolve_principal(request, enclave, None)
    except EnclaveError:
        if request.cookies.get(WEB_COOKIE) is None and request.scope.get("root_path", "") == prefix:
            return RedirectResponse(f"{prefix}/login", status_code=302)
        raise
    body = {
        "id": principal.id,
        "name": principal.name,
        "roles": list(principal.roles),
        "org": principal.org_id,
        "api": f"{request.scope.get('root_path', '')}/v1",
    }
    return JSONResponse(body)


@router.post("/logout")
def logout(request: Request, enclave: EnclaveDep) -> Response:
    """End the browser login (its token is revoked)."""
    principal = resolve_principal(request, enclave, None)
    with enclave.write() as session:
        identity.revoke_token(enclave, session, principal.id, principal.token_id)
    response = Response(status_code=204)
    response.delete_cookie(WEB_COOKIE, path=enclave.settings.hub_service_prefix.rstrip("/"))
    return response
