"""Request and response bodies (``XCreate`` in, ``XPublic`` out). Unknown fields are rejected."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Id = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MePublic(BaseModel):
    id: str
    name: str
    roles: list[str]
    org: str


class ColumnPublic(BaseModel):
    name: str
    type: str
    role: str
    description: str | None = None
    bounds: list[Any] | None = None
    categories: list[str] | None = None
    pattern: str | None = None


class DatasetPublic(BaseModel):
    id: str
    title: str
    custodian_org: str
    tier: str
    description: str
    max_rows_per_person: int
    row_count: int
    columns: list[ColumnPublic]


class ProjectCreate(Strict):
    title: Title
    purpose: Text


class ProjectPublic(BaseModel):
    id: str
    title: str
    purpose: str
    org: str
    owner: str
    created_at: datetime


class MemberAdd(Strict):
    user_id: Id


class AccessRequestCreate(Strict):
    project_id: Id
    dataset_id: Id
    purpose: Text
    epsilon: float = Field(gt=0, allow_inf_nan=False)
    delta: float = Field(0.0, ge=0, allow_inf_nan=False)
    days: int = Field(gt=0)
    dua_accepted: bool


class Decision(Strict):
    decision: Literal["approve", "deny"]
    reason: Annotated[str, StringConstraints(max_length=5000)] | None = None
    epsilon: float | None = Field(None, gt=0, allow_inf_nan=False)
    days: int | None = Field(None, gt=0)


class AccessRequestPublic(BaseModel):
    id: str
    project_id: str
    dataset_id: str
    requester: str
    purpose: str
    epsilon: float
    delta: float
    days: int
    status: str
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    grant_id: str | None
    created_at: datetime


class RevokeBody(Strict):
    reason: Annotated[str, StringConstraints(max_length=5000)] | None = None


class GrantPublic(BaseModel):
    id: str
    project_id: str
    dataset_id: str
    status: str
    epsilon_total: float
    epsilon_spent: float
    delta_total: float
    delta_spent: float
    starts_at: datetime
    expires_at: datetime
    revoked_at: datetime | None


class Health(BaseModel):
    status: str


class EgressFilePublic(BaseModel):
    name: str
    sha256: str
    size: int
    kind: str | None
    outcome: str | None


class EgressDatasetPublic(BaseModel):
    dataset_id: str
    org: str
    reviews_required: int


class EgressReviewCreate(Strict):
    decision: Literal["approve", "reject", "changes_requested"]
    comment: Annotated[str, StringConstraints(max_length=5000)] = ""


class EgressReviewPublic(BaseModel):
    reviewer: str
    org: str
    decision: str
    comment: str
    round: int
    created_at: datetime


class EgressRequestPublic(BaseModel):
    id: str
    status: str
    requester: str
    project_id: str
    justification: str
    round: int
    files: list[EgressFilePublic]
    checks: list[dict[str, Any]] = Field(description="Per file: kind, outcome, findings (current round)")
    summary: dict[str, Any] | None
    datasets: list[EgressDatasetPublic]
    reviews: list[EgressReviewPublic]
    approvals_missing: dict[str, int] = Field(description="Organisation → approvals still needed")
    history: dict[str, list[dict[str, Any]]] | None = Field(
        None, description="For reviewers: the requester's earlier egress requests and DP releases"
    )
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None


class EgressRequestSummary(BaseModel):
    id: str
    status: str
    requester: str
    project_id: str
    round: int
    created_at: datetime
    updated_at: datetime
    released_at: datetime | None


class HubLogin(Strict):
    username: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class HubUserPublic(BaseModel):
    """What the hub needs to know of a user: identity, roles, and the grants a session would carry."""

    id: str
    name: str
    roles: list[str]
    org: str
    disabled: bool
    grants: list[GrantPublic]
    session_refused: str | None = Field(
        description="Why no notebook session may start for this user now (None: one may)"
    )


class SessionCreate(Strict):
    user: Id
    server: Annotated[str, StringConstraints(max_length=255)] = ""
    address: Annotated[str, StringConstraints(max_length=45)] | None = None


class SessionPublic(BaseModel):
    id: str
    user: str
    server: str
    address: str | None
    grants: list[str]
    started_at: datetime
    expires_at: datetime
    ended_at: datetime | None
    end_reason: str | None


class SessionStarted(SessionPublic):
    token: str = Field(description="The session's credential: shown once, handed to the sandbox only")


class SessionEnd(Strict):
    reason: Literal["stopped"] = "stopped"
