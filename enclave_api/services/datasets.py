"""Dataset registration, the catalog, decryption for the broker, and KEK rotation."""

from __future__ import annotations

import io
import logging
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Conflict, Forbidden, Invalid, NotFound
from enclave_api.metadata import DatasetMetadata, conform_table, out_of_bounds, read_table
from enclave_api.models import DataKey, Dataset, Organisation, QuarantineBlob
from enclave_api.roles import Role
from enclave_api.services.identity import Principal
from enclave_api.storage.store import StoredBlob, quarantine_context

log = logging.getLogger(__name__)


def _check_may_register(principal: Principal, meta: DatasetMetadata) -> None:
    if principal.has(Role.ADMIN):
        return
    if principal.has(Role.CUSTODIAN) and principal.org_id == meta.custodian_org:
        return
    raise Forbidden("only a custodian of the dataset's organisation (or an admin) may register it")


def register_dataset(
    ctx: Enclave,
    principal: Principal,
    meta: DatasetMetadata,
    data: bytes | pa.Table,
    filename: str = "data.parquet",
) -> Dataset:
    """Validate ``data`` against ``meta``, encrypt it and register it, all or nothing.

    The ciphertext is written first; if the database transaction fails it is discarded, so a failed
    registration leaves no dataset row, no data key and no blob behind.
    """
    _check_may_register(principal, meta)
    table = conform_table(data, meta) if isinstance(data, pa.Table) else read_table(data, filename, meta)
    with ctx.read() as session:
        if session.get(Organisation, meta.custodian_org) is None:
            raise Invalid(f"organisation {meta.custodian_org} does not exist", field="custodian_org")
        if session.get(Dataset, meta.id) is not None:
            raise Conflict(f"dataset {meta.id} is already registered")
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    buffer.seek(0)
    blob = ctx.store.put(meta.id, buffer)
    try:
        with ctx.write() as session:
            if session.get(Dataset, meta.id) is not None:
                raise Conflict(f"dataset {meta.id} is already registered")
            dataset = Dataset(
                id=meta.id,
                title=meta.title,
                description=meta.description,
                custodian_org_id=meta.custodian_org,
                tier=meta.tier,
                max_rows_per_person=meta.max_rows_per_person,
                metadata_doc=meta.model_dump(mode="json"),
                row_count=table.num_rows,
                content_sha256=blob.content_sha256,
                blob_name=blob.blob_name,
                created_by=principal.id,
                created_at=ctx.now(),
            )
            session.add(dataset)
            session.flush()
            session.add(
                DataKey(
                    dataset_id=meta.id,
                    kek_id=blob.kek_id,
                    wrapped_key=blob.wrapped_key,
                    created_at=ctx.now(),
                )
            )
            ctx.audit.append(
                session,
                "dataset.registered",
                principal.id,
                {"dataset": meta.id, "org": meta.custodian_org},
                {
                    "rows": table.num_rows,
                    "columns": len(meta.columns),
                    "tier": str(meta.tier),
                    "content_sha256": blob.content_sha256,
                    "kek_id": blob.kek_id,
                    "out_of_bounds": out_of_bounds(table, meta),
                },
            )
    except BaseException:
        ctx.store.discard(blob.blob_name)
        raise
    return dataset


def dataset_metadata(dataset: Dataset) -> DatasetMetadata:
    return DatasetMetadata.model_validate(dataset.metadata_doc)


def catalog(session: Session) -> list[Dataset]:
    return list(session.scalars(select(Dataset).order_by(Dataset.id)))


def get_dataset(session: Session, dataset_id: str) -> Dataset:
    dataset = session.get(Dataset, dataset_id)
    if dataset is None:
        raise NotFound(f"dataset {dataset_id} does not exist")
    return dataset


def decrypt_into(ctx: Enclave, session: Session, dataset: Dataset, dst: BinaryIO) -> None:
    """Write a dataset's plaintext Parquet into ``dst`` (authenticated; tampering raises
    IntegrityFailure, never garbage)."""
    key = session.get(DataKey, dataset.id)
    if key is None:
        raise NotFound(f"dataset {dataset.id} has no data key")
    ctx.store.read(
        dataset.id,
        StoredBlob(dataset.blob_name, key.kek_id, bytes(key.wrapped_key), dataset.content_sha256, 0),
        dst,
    )


def load_table(ctx: Enclave, session: Session, dataset: Dataset) -> pa.Table:
    """Decrypt a dataset into memory (see :func:`decrypt_into`)."""
    buffer = io.BytesIO()
    decrypt_into(ctx, session, dataset, buffer)
    buffer.seek(0)
    return pq.read_table(buffer)


def rotate_kek(ctx: Enclave, actor: str) -> tuple[str, int]:
    """Create a new KEK and re-wrap every data key under it (data stays as it is).

    Order keeps every step recoverable: the new key is added to the keyring first, keys are re-wrapped
    in one audited transaction, and only after it commits are the old KEKs retired.
    """
    provider = ctx.secrets.key_provider
    old_ids = {provider.current_kek_id}
    new_id = provider.rotate()
    with ctx.write() as session:
        keys = list(session.scalars(select(DataKey).with_for_update()))
        for key in keys:
            old_ids.add(key.kek_id)
            data_key = provider.unwrap(key.kek_id, bytes(key.wrapped_key), key.dataset_id)
            key.kek_id, key.wrapped_key = provider.wrap(data_key, key.dataset_id)
            key.rewrapped_at = ctx.now()
        # Egress files in quarantine are envelope-encrypted the same way.
        blobs = list(session.scalars(select(QuarantineBlob).with_for_update()))
        for blob in blobs:
            old_ids.add(blob.kek_id)
            context = quarantine_context(blob.sha256)
            data_key = provider.unwrap(blob.kek_id, bytes(blob.wrapped_key), context)
            blob.kek_id, blob.wrapped_key = provider.wrap(data_key, context)
        ctx.audit.append(
            session,
            "keys.rotated",
            actor,
            {"kek": new_id},
            {"rewrapped": len(keys) + len(blobs), "retired": sorted(old_ids - {new_id})},
        )
    with ctx.read() as session:
        in_use = set(session.scalars(select(DataKey.kek_id).distinct()))
        in_use |= set(session.scalars(select(QuarantineBlob.kek_id).distinct()))
    # A key still referenced (e.g. wrapped by another process that had not yet seen the new KEK)
    # is kept; the next rotation retires it.
    provider.retire(old_ids - in_use - {new_id})
    return new_id, len(keys)
