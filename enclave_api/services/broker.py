"""The data broker: pseudonymised record reads for active grants (invariant 3).

Direct identifiers never leave in clear: each is dropped or replaced by a keyed HMAC that is stable
within a project (so researchers can link rows of one person) and unlinkable across projects.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.errors import Forbidden
from enclave_api.metadata import DatasetMetadata, OnRelease, Tier
from enclave_api.models import Dataset, Grant
from enclave_api.services.access import active_grant
from enclave_api.services.datasets import dataset_metadata, get_dataset, load_table
from enclave_api.services.identity import Principal

PSEUDONYM_PREFIX = "psn_"


def project_pseudonym_key(master: bytes, project_id: str) -> bytes:
    return hmac.new(master, b"enclave-pseudonym/v1:" + project_id.encode(), hashlib.sha256).digest()


def pseudonymise(values: pa.ChunkedArray, key: bytes, column: str) -> pa.Array:
    """Replace each value by ``psn_`` + 20 hex chars of HMAC(key, column ‖ value); nulls stay null.

    Works on the distinct values only, then maps them back, so cost follows cardinality.
    """
    encoded = pc.dictionary_encode(values.cast(pa.string())).combine_chunks()
    prefix = column.encode() + b"\x00"
    replaced = pa.array(
        [
            None
            if v is None
            else PSEUDONYM_PREFIX + hmac.new(key, prefix + v.encode(), hashlib.sha256).hexdigest()[:20]
            for v in encoded.dictionary.to_pylist()
        ],
        type=pa.string(),
    )
    return pc.take(replaced, encoded.indices)


def release_view(table: pa.Table, meta: DatasetMetadata, key: bytes) -> pa.Table:
    """The table as a session may see it: direct identifiers dropped or pseudonymised."""
    names, arrays = [], []
    for spec in meta.columns:
        action = spec.release_action
        if action is OnRelease.DROP:
            continue
        column = table.column(spec.name)
        names.append(spec.name)
        arrays.append(pseudonymise(column, key, spec.name) if action else column)
    return pa.Table.from_arrays(arrays, names=names)


@dataclass(frozen=True)
class RecordsRead:
    dataset: Dataset
    grant: Grant
    table: pa.Table


def read_records(ctx: Enclave, principal: Principal, dataset_id: str, grant_id: str | None) -> RecordsRead:
    """Authorise, decrypt and pseudonymise one read, and audit it before anything is returned.

    Decryption runs outside the write lock; the ``data.read`` event is then committed through group
    commit, re-checking the grant inside that transaction so that a revocation in between wins.
    """
    with ctx.read() as session:
        dataset = get_dataset(session, dataset_id)
        meta = dataset_metadata(dataset)
        if meta.tier is not Tier.ENCLAVE:
            raise Forbidden(f"dataset {dataset_id} is query-only: its records are never served")
        grant = active_grant(ctx, session, principal, dataset_id, grant_id)
        table = load_table(ctx, session, dataset)
    view = release_view(table, meta, project_pseudonym_key(ctx.secrets.pseudonym_key, grant.project_id))

    def audit(session: Session) -> None:
        current = active_grant(ctx, session, principal, dataset_id, grant.id)
        ctx.audit.append(
            session,
            "data.read",
            principal.id,
            {"dataset": dataset_id, "grant": current.id, "project": current.project_id},
            {
                "rows": view.num_rows,
                "columns": view.column_names,
                "format": "arrow-ipc-stream",
                "via": principal.token_kind,
            },
        )

    ctx.transact(audit)
    return RecordsRead(dataset, grant, view)


def to_ipc_stream(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table, max_chunksize=64 * 1024)
    return bytes(sink.getvalue().to_pybytes())
