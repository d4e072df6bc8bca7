"""The data broker endpoint: pseudonymised records as an Arrow IPC stream.

Marked ``session_only``: the workspace layer restricts it to calls that carry a session credential;
until then it requires a researcher's token and an active grant.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, require_role
from enclave_api.roles import Role
from enclave_api.services.broker import read_records, to_ipc_stream

ARROW_STREAM = "application/vnd.apache.arrow.stream"

router = APIRouter(
    prefix="/v1/datasets",
    tags=["records"],
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)


@router.get(
    "/{dataset_id}/records",
    response_class=Response,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "Arrow IPC stream"}},
    openapi_extra={"x-session-only": True},
)
def records(
    dataset_id: str,
    principal: CurrentPrincipal,
    enclave: EnclaveDep,
    grant_id: str | None = Query(None, max_length=64),
) -> Response:
    read = read_records(enclave, principal, dataset_id, grant_id)
    return Response(
        to_ipc_stream(read.table),
        media_type=ARROW_STREAM,
        headers={"X-Enclave-Grant": read.grant.id, "Cache-Control": "no-store"},
    )
