"""The portal's front page (what needs the user's attention, by role), its stylesheet, and its 404."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from enclave_api.api.deps import EnclaveDep
from enclave_api.errors import NotFound
from enclave_api.portal.web import PREFIX, STATIC, PortalRoute, PortalUser, render
from enclave_api.roles import Role
from enclave_api.services import access, egress

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)
#: Included after every other portal router.
fallback = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)

#: The portal's only static files (served by name from a fixed list: no path ever reaches the disk).
STATIC_FILES = {"portal.css": "text/css; charset=utf-8"}


@router.get("/")
def home(request: Request, enclave: EnclaveDep, user: PortalUser) -> Response:
    """What needs the user's attention now, for each of their roles."""
    with enclave.read() as session:
        requests = access.list_requests(session, user)
        grants = access.list_grants(session, user)
        egress_requests = egress.list_requests(session, user)
        now = enclave.now()
        summary = {
            "pending_access": sum(r.status == "pending" for r in requests),
            "active_grants": sum(g.revoked_at is None and g.expires_at > now for g in grants),
            "egress_in_review": sum(e.status == "in_review" for e in egress_requests),
            "egress_changes": sum(e.status == "changes_requested" for e in egress_requests),
            "egress_released": sum(e.status == "released" for e in egress_requests),
        }
    return render(
        request,
        "home.html",
        user=user,
        summary=summary,
        is_researcher=user.has(Role.RESEARCHER),
        is_custodian=user.has(Role.CUSTODIAN),
        is_auditor=user.has(Role.AUDITOR) or user.has(Role.ADMIN),
    )


@router.get("/static/{name}")
def static(name: str) -> Response:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound("no such file")
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"Cache-Control": "max-age=3600, private"}
    )


@fallback.get("/{rest:path}")
def not_found(rest: str, user: PortalUser) -> Response:
    """Any other portal path: a page that says so (after the login, like every page)."""
    raise NotFound("there is no such page in the portal")
