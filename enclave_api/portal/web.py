"""What every portal page shares: templates, the logged-in user, CSRF, security headers, errors.

* :func:`render` renders a template (autoescaped; unknown variables are errors) with the page chrome.
* :data:`PortalUser` is the logged-in user (the browser login cookie, ``web`` tokens only). For any
  change it also checks the form's CSRF token, which is an HMAC of the login's token id under a key
  derived from the token pepper: a page of another site can neither read nor forge it.
* :class:`PortalRoute` turns domain errors into HTML pages with the right status (401 on a page →
  the login form), audits refusals like the API does, and sets the portal's headers: a
  Content-Security-Policy that allows no script at all, styles and images from the portal only.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute

from enclave_api.api.deps import SAFE_METHODS, WEB_COOKIE, EnclaveDep, authenticate_request
from enclave_api.api.problems import record_denial
from enclave_api.context import Enclave
from enclave_api.errors import EnclaveError, Forbidden, LoginFailed, Unauthenticated
from enclave_api.roles import Role
from enclave_api.services.identity import Principal

PREFIX = "/portal"
TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
CSRF_FIELD = "csrf"

#: No script may run; styles and images only from the portal (SVG plots are inline markup, images
#: of egress files are data: URLs); forms post only here; nothing may frame the portal.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: with no-referrer Chromium sends "Origin: null" on form posts.
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _when(value: datetime | None) -> str:
    """A timestamp as people read it (UTC, to the minute)."""
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _number(value: float | int | None, digits: int = 3) -> str:
    """A budget or statistic: short, without float noise (``0.300000004`` → ``0.3``)."""
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1e-3 and value else f"{round(value, digits):,}"


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_environment.filters["when"] = _when
_environment.filters["number"] = _number


def url(request: Request, path: str, **query: Any) -> str:
    """An absolute path to ``path`` under the portal's mount (the hub's service prefix, if any)."""
    root = str(request.scope.get("root_path", "")).rstrip("/")
    params = {k: v for k, v in query.items() if v is not None and v != ""}
    return root + path + (("?" + urlencode(params)) if params else "")


def cookie_path(request: Request) -> str:
    """The login cookie is scoped to the mount: the service prefix behind the hub, else ``/``."""
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def safe_next(target: str | None) -> str:
    """A post-login destination: only a portal path of this site (no open redirect)."""
    if (
        target
        and target.startswith(PREFIX + "/")
        and "//" not in target
        and "\\" not in target
        and all(ch.isprintable() for ch in target)
    ):
        return target
    return PREFIX + "/"


def csrf_token(enclave: Enclave, principal: Principal) -> str:
    """The form token of this login (stable for the login's lifetime, unguessable without the pepper)."""
    key = hashlib.sha256(b"enclave-portal-csrf/v1" + enclave.secrets.token_pepper).digest()
    return hmac.new(key, principal.token_id.encode(), hashlib.sha256).hexdigest()


def render(
    request: Request,
    template: str,
    *,
    status: int = 200,
    user: Principal | None = None,
    notices: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` with the page chrome (navigation for ``user``'s roles, CSRF token, notice)."""
    enclave: Enclave = request.app.state.enclave
    notice_key = request.query_params.get("notice", "")
    page = _environment.get_template(template).render(
        request=request,
        user=user,
        roles=set(user.roles) if user is not None else set(),
        csrf=csrf_token(enclave, user) if user is not None else "",
        csrf_field=CSRF_FIELD,
        url=lambda path, **query: url(request, path, **query),
        notice=(notices or {}).get(notice_key),
        hub=bool(enclave.settings.hub_api_url),
        **context,
    )
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)


def redirect(request: Request, path: str, **query: Any) -> RedirectResponse:
    """After a change: see the result page (303, so a reload does not post again)."""
    return RedirectResponse(url(request, path, **query), status_code=303, headers=PAGE_HEADERS)


async def _check_csrf(request: Request, enclave: Enclave, principal: Principal) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("this form was sent from another site")
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent, csrf_token(enclave, principal)):
        raise Forbidden("the form's security token is missing or stale; reload the page and try again")


async def portal_user(request: Request, enclave: EnclaveDep) -> Principal:
    """The logged-in user (login cookie). Changes also need the form's CSRF token."""
    token = request.cookies.get(WEB_COOKIE)
    if not token:
        raise Unauthenticated("please log in")
    principal = await run_in_threadpool(authenticate_request, request, enclave, token, True)
    if request.method not in SAFE_METHODS:
        await _check_csrf(request, enclave, principal)
    return principal


PortalUser = Annotated[Principal, Depends(portal_user)]


def require_portal_role(*roles: Role) -> Callable[[Principal], Principal]:
    """Router dependency: the logged-in user must hold one of ``roles``."""

    def check(principal: PortalUser) -> Principal:
        if not any(principal.has(role) for role in roles):
            raise Forbidden(f"this page is for the role {' or '.join(roles)}")
        return principal

    return check


def _login_redirect(request: Request, reason: str) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    response = RedirectResponse(
        url(request, f"{PREFIX}/login", next=safe_next(target), reason=reason),
        status_code=303,
        headers=PAGE_HEADERS,
    )
    if request.cookies.get(WEB_COOKIE):
        response.delete_cookie(WEB_COOKIE, path=cookie_path(request))
    return response


def error_page(request: Request, status: int, title: str, detail: str) -> HTMLResponse:
    user = getattr(request.state, "principal", None)
    return render(request, "error.html", status=status, user=user, title=title, detail=detail)


class PortalRoute(APIRoute):
    """Portal routes answer errors with pages, and a missing or expired login with the login form."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except Unauthenticated as exc:
                if request.method in SAFE_METHODS and not isinstance(exc, LoginFailed):
                    reason = "expired" if "expired" in exc.detail or "revoked" in exc.detail else "login"
                    return _login_redirect(request, reason)
                await run_in_threadpool(record_denial, request, exc, request.app.state.denials)
                return error_page(request, exc.status, exc.title, exc.detail)
            except EnclaveError as exc:
                if exc.status == 403:
                    await run_in_threadpool(record_denial, request, exc, request.app.state.denials)
                return error_page(request, exc.status, exc.title, exc.detail)
            except RequestValidationError as exc:
                problems = []
                for error in exc.errors():
                    where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
                    problems.append(f"{where}: {error.get('msg', 'invalid')}")
                return error_page(request, 422, "Invalid input", "; ".join(problems) or "invalid input")
            for name, value in PAGE_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return portal_handler


def quoted(value: str) -> str:
    """A path segment (ids are plain, but never trust that in a URL)."""
    return quote(value, safe="")
