"""``GET /v1/me``: who the token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from enclave_api.api.deps import CurrentPrincipal
from enclave_api.api.schemas import MePublic

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/me", response_model=MePublic)
def me(principal: CurrentPrincipal) -> MePublic:
    return MePublic(id=principal.id, name=principal.name, roles=list(principal.roles), org=principal.org_id)
