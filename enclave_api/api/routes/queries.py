"""DP queries (``POST /v1/queries``) and stored releases (``GET /v1/releases/{id}``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession, limit_queries, require_role
from enclave_api.roles import Role
from enclave_api.services import releases as service
from privacy.dp import QueryRequest

router = APIRouter(tags=["queries"])


class Budget(BaseModel):
    epsilon_remaining: float
    delta_remaining: float


class QueryResponse(BaseModel):
    release_id: str
    columns: list[str]
    rows: list[list[Any]]
    epsilon: float
    delta: float
    accuracy: dict[str, float]
    signature: str
    budget: Budget


class ReleasePublic(BaseModel):
    release: dict[str, Any]
    signature: str
    key_id: str


@router.post(
    "/v1/queries",
    response_model=QueryResponse,
    dependencies=[Depends(require_role(Role.RESEARCHER)), Depends(limit_queries)],
)
def query(body: QueryRequest, principal: CurrentPrincipal, enclave: EnclaveDep) -> QueryResponse:
    outcome = service.run_dp_query(enclave, principal, body)
    release = outcome.release
    return QueryResponse(
        release_id=release.id,
        columns=outcome.body["columns"],
        rows=outcome.body["rows"],
        epsilon=release.epsilon,
        delta=release.delta,
        accuracy=outcome.body["accuracy"],
        signature=release.signature or "",
        budget=Budget(epsilon_remaining=outcome.epsilon_remaining, delta_remaining=outcome.delta_remaining),
    )


@router.get("/v1/releases/{release_id}", response_model=ReleasePublic)
def get_release(release_id: str, principal: CurrentPrincipal, session: ReadSession) -> ReleasePublic:
    release = service.get_release(session, principal, release_id)
    return ReleasePublic(
        release=service.release_body(release), signature=release.signature or "", key_id=release.key_id or ""
    )
