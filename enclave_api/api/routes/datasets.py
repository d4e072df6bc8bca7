"""The catalog (metadata only) and dataset registration."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, File, Form, UploadFile, status
from starlette.concurrency import run_in_threadpool

from enclave_api.api.deps import CurrentPrincipal, EnclaveDep, ReadSession
from enclave_api.api.schemas import ColumnPublic, DatasetPublic
from enclave_api.errors import Invalid, TooLarge
from enclave_api.metadata import parse_metadata
from enclave_api.models import Dataset
from enclave_api.services import datasets as service

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


#: Registered datasets never change (a new version is a new registration), so their public view is
#: built once per (id, content, registration time) and served from here (bounded; the catalog read
#: is the most frequent request).
_PUBLIC_VIEWS: dict[tuple[str, str, datetime], DatasetPublic] = {}
_PUBLIC_VIEWS_MAX = 512


def dataset_public(dataset: Dataset) -> DatasetPublic:
    key = (dataset.id, dataset.content_sha256, dataset.created_at)
    view = _PUBLIC_VIEWS.get(key)
    if view is None:
        view = _build_public(dataset)
        if len(_PUBLIC_VIEWS) >= _PUBLIC_VIEWS_MAX:
            _PUBLIC_VIEWS.clear()
        _PUBLIC_VIEWS[key] = view
    return view


def _build_public(dataset: Dataset) -> DatasetPublic:
    meta = service.dataset_metadata(dataset).public()
    return DatasetPublic(
        id=dataset.id,
        title=dataset.title,
        custodian_org=dataset.custodian_org_id,
        tier=dataset.tier,
        description=dataset.description,
        max_rows_per_person=dataset.max_rows_per_person,
        row_count=dataset.row_count,
        columns=[ColumnPublic(**c) for c in meta["columns"]],
    )


@router.get("", response_model=list[DatasetPublic])
def list_datasets(principal: CurrentPrincipal, session: ReadSession) -> list[DatasetPublic]:
    return [dataset_public(d) for d in service.catalog(session)]


@router.get("/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, principal: CurrentPrincipal, session: ReadSession) -> DatasetPublic:
    return dataset_public(service.get_dataset(session, dataset_id))


@router.post("", response_model=DatasetPublic, status_code=status.HTTP_201_CREATED)
async def register_dataset(
    principal: CurrentPrincipal,
    enclave: EnclaveDep,
    file: Annotated[UploadFile, File(description="CSV or Parquet")],
    metadata: Annotated[str, Form(description="Dataset metadata, YAML or JSON (contract 4.4)")],
) -> DatasetPublic:
    data = await read_dataset_file(file, enclave.settings.max_request_bytes)
    meta = parse_metadata(metadata)
    # Validation, encryption and the DB transaction are blocking work: keep them off the event loop.
    dataset = await run_in_threadpool(
        service.register_dataset, enclave, principal, meta, data, file.filename or ""
    )
    return dataset_public(dataset)


async def read_dataset_file(file: UploadFile, limit: int) -> bytes:
    """An uploaded dataset file's bytes: refused when empty or larger than ``limit`` (API and portal)."""
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"dataset files are limited to {limit} bytes")
    if not data:
        raise Invalid("the dataset file is empty", field="file")
    return data
