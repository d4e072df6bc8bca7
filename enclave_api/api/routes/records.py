"""The data broker endpoint: pseudonymised records as an Arrow IPC stream.

Session only (``x-session-only``): the caller must use the credential of an open notebook session,
from that session's address, and hold an active grant on an ``enclave``-tier dataset.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Response

from enclave_api.api.deps import EnclaveDep, SessionPrincipal, require_role
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
    principal: SessionPrincipal,
    enclave: EnclaveDep,
    grant_id: str | None = Query(None, max_length=64),
) -> Response:
    read = read_records(enclave, principal, dataset_id, grant_id)
    return Response(
        to_ipc_stream(read.table),
        media_type=ARROW_STREAM,
        headers={"X-Enclave-Grant": read.grant.id, "Cache-Control": "no-store"},
    )
