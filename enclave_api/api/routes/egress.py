"""The egress airlock: submit outputs, see the automatic checks, review, download once released."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile, status
from starlette.concurrency import run_in_threadpool

from enclave_api.api.deps import (
    CurrentPrincipal,
    EnclaveDep,
    ReadSession,
    SessionPrincipal,
    limit_egress,
    require_role,
)
from enclave_api.api.schemas import (
    EgressDatasetPublic,
    EgressFilePublic,
    EgressRequestPublic,
    EgressRequestSummary,
    EgressReviewCreate,
    EgressReviewPublic,
)
from enclave_api.errors import TooLarge
from enclave_api.models import EgressRequest
from enclave_api.roles import Role
from enclave_api.services import egress as service
from enclave_api.services.identity import Principal
from enclave_api.states import EgressStatus

router = APIRouter(prefix="/v1/egress-requests", tags=["egress"])

Files = Annotated[list[UploadFile], File(description="The output files (each within the size limit)")]
Justification = Annotated[str, Form(max_length=5000, description="Why these outputs must leave")]


def public(view: service.RequestView) -> EgressRequestPublic:
    request, report = view.request, view.request.report or {}
    return EgressRequestPublic(
        id=request.id,
        status=request.status,
        requester=request.requester_id,
        project_id=request.project_id,
        justification=request.justification,
        round=request.round,
        files=[
            EgressFilePublic(name=f.name, sha256=f.sha256, size=f.size, kind=f.kind, outcome=f.outcome)
            for f in view.files
        ],
        checks=report.get("files", []),
        summary=report.get("summary"),
        datasets=[
            EgressDatasetPublic(dataset_id=d.dataset_id, org=d.org_id, reviews_required=d.reviews_required)
            for d in view.datasets
        ],
        reviews=[
            EgressReviewPublic(
                reviewer=r.reviewer_id,
                org=r.org_id,
                decision=r.decision,
                comment=r.comment,
                round=r.round,
                created_at=r.created_at,
            )
            for r in view.reviews
        ],
        approvals_missing=view.missing,
        history=view.history,
        created_at=request.created_at,
        updated_at=request.updated_at,
        released_at=request.released_at,
    )


def summary(request: EgressRequest) -> EgressRequestSummary:
    return EgressRequestSummary(
        id=request.id,
        status=request.status,
        requester=request.requester_id,
        project_id=request.project_id,
        round=request.round,
        created_at=request.created_at,
        updated_at=request.updated_at,
        released_at=request.released_at,
    )


async def _uploads(files: list[UploadFile], limit: int) -> list[service.Upload]:
    uploads = []
    for upload in files:
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise TooLarge(f"{upload.filename}: files are limited to {limit} bytes")
        uploads.append(service.Upload(upload.filename or "", data))
    return uploads


def _view(enclave: EnclaveDep, principal: Principal, request_id: str) -> EgressRequestPublic:
    with enclave.read() as session:
        return public(service.view(session, principal, request_id))


@router.post(
    "",
    response_model=EgressRequestPublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={"x-session-only": True},
    dependencies=[Depends(limit_egress)],
)
async def submit(
    principal: SessionPrincipal,
    enclave: EnclaveDep,
    files: Files,
    justification: Justification,
    project_id: Annotated[str | None, Form(max_length=64)] = None,
) -> EgressRequestPublic:
    """Quarantine the files and run the automatic checks; the answer says ``blocked`` or ``in_review``."""
    uploads = await _uploads(files, enclave.settings.egress_max_file_bytes)
    request = await run_in_threadpool(service.submit, enclave, principal, uploads, justification, project_id)
    return await run_in_threadpool(_view, enclave, principal, request.id)


@router.get("", response_model=list[EgressRequestSummary])
def list_requests(
    principal: CurrentPrincipal, session: ReadSession, status: EgressStatus | None = Query(None)
) -> list[EgressRequestSummary]:
    return [summary(r) for r in service.list_requests(session, principal, status)]


@router.get("/{request_id}", response_model=EgressRequestPublic)
def get_request(request_id: str, principal: CurrentPrincipal, session: ReadSession) -> EgressRequestPublic:
    return public(service.view(session, principal, request_id))


@router.post(
    "/{request_id}/reviews",
    response_model=EgressRequestPublic,
    dependencies=[Depends(require_role(Role.CUSTODIAN))],
)
def review(
    request_id: str, body: EgressReviewCreate, principal: CurrentPrincipal, enclave: EnclaveDep
) -> EgressRequestPublic:
    request = service.review(enclave, principal, request_id, body.decision, body.comment)
    return _view(enclave, principal, request.id)


@router.post(
    "/{request_id}/resubmit",
    response_model=EgressRequestPublic,
    openapi_extra={"x-session-only": True},
    dependencies=[Depends(limit_egress)],
)
async def resubmit(
    request_id: str,
    principal: SessionPrincipal,
    enclave: EnclaveDep,
    files: Files,
    justification: Justification,
) -> EgressRequestPublic:
    """After ``changes_requested``: new files, a new round of checks and reviews."""
    uploads = await _uploads(files, enclave.settings.egress_max_file_bytes)
    request = await run_in_threadpool(
        service.resubmit, enclave, principal, request_id, uploads, justification
    )
    return await run_in_threadpool(_view, enclave, principal, request.id)


@router.post(
    "/{request_id}/withdraw",
    response_model=EgressRequestPublic,
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)
def withdraw(request_id: str, principal: CurrentPrincipal, enclave: EnclaveDep) -> EgressRequestPublic:
    request = service.withdraw(enclave, principal, request_id)
    return _view(enclave, principal, request.id)


@router.get("/{request_id}/manifest")
def manifest(request_id: str, principal: CurrentPrincipal, session: ReadSession) -> dict[str, Any]:
    """The signed release manifest (file hashes, checks, reviewers) of a released request."""
    return service.signed_manifest(session, principal, request_id)


@router.get(
    "/{request_id}/files/{name}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The released bytes"}},
    dependencies=[Depends(require_role(Role.RESEARCHER))],
)
def download(request_id: str, name: str, principal: CurrentPrincipal, enclave: EnclaveDep) -> Response:
    stored, data = service.download(enclave, principal, request_id, name)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
            "X-Content-SHA256": stored.sha256,
            "Cache-Control": "no-store",
        },
    )
