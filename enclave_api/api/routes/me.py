"""``GET /v1/me``: who the token belongs to."""

from __future__ import annotations

from fastapi import APIRouter

from enclave_api.api.deps import CurrentPrincipal
from enclave_api.api.schemas import MePublic

router = APIRouter(prefix="/v1", tags=["identity"])


@router.get("/me", response_model=MePublic)
def me(principal: CurrentPrincipal) -> MePublic:
    user = principal.user
    return MePublic(id=user.id, name=user.name, roles=user.roles, org=user.org_id)
