"""Portal pages for the researcher role."""

from __future__ import annotations

from fastapi import APIRouter

from enclave_api.portal.web import PREFIX, PortalRoute

router = APIRouter(prefix=PREFIX, route_class=PortalRoute, include_in_schema=False)
