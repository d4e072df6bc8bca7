"""Catalog and registration: metadata validation, all-or-nothing registration, integrity."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api.context import Enclave
from enclave_api.models import DataKey, Dataset
from tests.conftest import bearer, session_token

META: dict[str, Any] = {
    "id": "mini_cohort",
    "title": "Mini cohort",
    "description": "A tiny test cohort",
    "custodian_org": "hanbit-cancer-center",
    "tier": "enclave",
    "max_rows_per_person": 1,
    "columns": [
        {"name": "mrn", "type": "str", "role": "direct_identifier", "on_release": "pseudonymise"},
        {"name": "name", "type": "str", "role": "direct_identifier"},
        {"name": "age", "type": "int", "role": "quasi_identifier", "bounds": [18, 100]},
        {
            "name": "stage",
            "type": "category",
            "role": "sensitive",
            "categories": ["I", "II", "III"],
        },
        {"name": "size_mm", "type": "float", "role": "sensitive", "bounds": [0, 150]},
        {"name": "diagnosed", "type": "date", "role": "quasi_identifier"},
    ],
}
CSV = (
    "mrn,name,age,stage,size_mm,diagnosed\n"
    "HB001,김민준,54,II,22.5,2020-03-01\n"
    "HB002,이서연,61,I,11.0,2021-07-15\n"
    "HB003,박지호,47,III,48.2,2019-11-30\n"
)


def _register(client: TestClient, token: str, data: bytes, filename: str, meta: dict[str, Any]) -> Any:
    return client.post(
        "/v1/datasets",
        files={"file": (filename, data, "application/octet-stream")},
        data={"metadata": json.dumps(meta)},
        headers=bearer(token),
    )


def _counts(enclave: Enclave) -> tuple[int, int, int, int]:
    with enclave.read() as session:
        datasets = session.scalar(select(func.count()).select_from(Dataset)) or 0
        keys = session.scalar(select(func.count()).select_from(DataKey)) or 0
        # Token-use events are about authentication, not about the change under test.
        events = (
            session.scalar(
                select(func.count()).select_from(AuditEvent).where(AuditEvent.type != "auth.token_used")
            )
            or 0
        )
    blobs = len(list(enclave.store.root.iterdir()))
    return datasets, keys, events, blobs


def test_catalog_shows_metadata_only(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    response = seeded_client.get("/v1/datasets", headers=bearer(tokens["researcher"]))
    assert response.status_code == 200
    catalog = {d["id"]: d for d in response.json()}
    assert set(catalog) == {"wdbc", "hanbit_registry", "dasom_registry", "mirae_registry"}
    registry = catalog["dasom_registry"]
    assert registry["custodian_org"] == "dasom-university-hospital"
    columns = {c["name"]: c for c in registry["columns"]}
    assert columns["rrn"]["role"] == "direct_identifier"
    assert columns["stage"]["categories"] == ["0", "I", "II", "III", "IV"]
    assert columns["age_at_diagnosis"]["bounds"] == [20, 95]
    # No record values anywhere in the catalog (e.g. no Korean names from the registries).
    assert not any("\uac00" <= ch <= "\ud7a3" for ch in response.text)


def test_register_csv_then_read_back(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    response = _register(seeded_client, tokens["custodian"], CSV.encode(), "mini.csv", META)
    assert response.status_code == 201, response.text
    assert response.json()["row_count"] == 3
    from enclave_api.services.datasets import get_dataset, load_table

    with seeded_enclave.read() as session:
        table = load_table(seeded_enclave, session, get_dataset(session, "mini_cohort"))
    assert table.column("name").to_pylist() == ["김민준", "이서연", "박지호"]
    assert table.schema.field("diagnosed").type == pa.date32()
    # Ciphertext on disk: no plaintext identifiers.
    blob = next(p for p in seeded_enclave.store.root.iterdir() if p.name.startswith("mini_cohort."))
    raw = blob.read_bytes()
    assert "김민준".encode() not in raw and b"HB001" not in raw
    assert oct(blob.stat().st_mode & 0o777) == "0o600"


def test_register_parquet(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    table = pa.table(
        {
            "mrn": ["A1", "A2"], "name": ["x", "y"], "age": [40, 50], "stage": ["I", "II"],
            "size_mm": [1.5, 2.0], "diagnosed": pa.array([18000, 18001], type=pa.date32()),
        }
    )  # fmt: skip
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    meta = META | {"id": "mini_parquet"}
    response = _register(seeded_client, tokens["custodian"], buffer.getvalue(), "m.parquet", meta)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("csv", "meta_change", "field"),
    [
        (CSV.replace("54,", "fifty,"), {}, "age"),  # wrong type
        (CSV.replace(",II,", ",V,"), {}, "stage"),  # outside categories
        (CSV.replace("size_mm", "size_cm"), {}, "size_cm"),  # undeclared column
        (
            CSV.replace(",diagnosed", "")
            .replace(",2020-03-01", "")
            .replace(",2021-07-15", "")
            .replace(",2019-11-30", ""),
            {},
            "diagnosed",
        ),
        (CSV.replace("2020-03-01", "2020-13-01"), {}, "diagnosed"),
        (
            CSV,
            {
                "columns": [
                    *META["columns"][:5],
                    {"name": "diagnosed", "type": "datetime", "role": "x"},
                ]
            },
            "diagnosed",
        ),
        (CSV, {"tier": "public"}, "tier"),
        (CSV, {"id": "Bad Id!"}, "id"),
        (CSV, {"unknown_key": 1}, "unknown_key"),
        ("mrn,name\n", {}, None),
    ],
)
def test_mismatch_is_422_naming_the_column_and_registers_nothing(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    tokens: dict[str, str],
    csv: str,
    meta_change: dict[str, Any],
    field: str | None,
) -> None:
    before = _counts(seeded_enclave)
    response = _register(seeded_client, tokens["custodian"], csv.encode(), "mini.csv", META | meta_change)
    assert response.status_code == 422, response.text
    body = response.json()
    if field is not None:
        assert field in body.get("field", "") or field in body["detail"], body
    assert _counts(seeded_enclave) == before


@pytest.mark.parametrize(
    ("filename", "data"),
    [("mini.xlsx", b"PK\x03\x04junk"), ("mini.parquet", b"not parquet at all"), ("mini.csv", b"")],
)
def test_unknown_or_unreadable_files_are_refused(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    tokens: dict[str, str],
    filename: str,
    data: bytes,
) -> None:
    before = _counts(seeded_enclave)
    response = _register(seeded_client, tokens["custodian"], data, filename, META)
    assert response.status_code == 422
    assert _counts(seeded_enclave) == before


def test_only_the_owning_custodian_registers(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    for role in ("custodian2", "researcher", "auditor"):
        response = _register(seeded_client, tokens[role], CSV.encode(), "mini.csv", META)
        assert response.status_code == 403, role
    assert _register(seeded_client, tokens["admin"], CSV.encode(), "mini.csv", META).status_code == 201


def test_duplicate_registration_is_a_conflict(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    assert _register(seeded_client, tokens["custodian"], CSV.encode(), "a.csv", META).status_code == 201
    assert _register(seeded_client, tokens["custodian"], CSV.encode(), "a.csv", META).status_code == 409


def test_tampered_ciphertext_is_an_integrity_error_not_data(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    blob = next(p for p in seeded_enclave.store.root.iterdir() if p.name.startswith("wdbc."))
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    blob.write_bytes(bytes(raw))
    headers = bearer(session_token(seeded_enclave, "minji.park"))
    response = seeded_client.get("/v1/datasets/wdbc/records", headers=headers)
    assert response.status_code == 500
    assert response.json()["title"] == "Integrity check failed"
    assert "authentication" in response.json()["detail"]


def test_query_only_records_are_never_served(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    meta = META | {"id": "qo_cohort", "tier": "query_only"}
    assert _register(seeded_client, tokens["custodian"], CSV.encode(), "q.csv", meta).status_code == 201
    project = seeded_client.post(
        "/v1/projects", json={"title": "t", "purpose": "p"}, headers=bearer(tokens["researcher"])
    ).json()["id"]
    request_id = seeded_client.post(
        "/v1/access-requests",
        json={"project_id": project, "dataset_id": "qo_cohort", "purpose": "p", "epsilon": 1,
              "delta": 0, "days": 5, "dua_accepted": True},
        headers=bearer(tokens["researcher"]),
    ).json()["id"]  # fmt: skip
    seeded_client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens["custodian"]),
    ).raise_for_status()
    headers = bearer(session_token(seeded_enclave, "minji.park"))
    response = seeded_client.get("/v1/datasets/qo_cohort/records", headers=headers)
    assert response.status_code == 403
    assert "query-only" in response.json()["detail"]


def test_metadata_alias_bombs_and_oversized_metadata_are_refused(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n"
        for i in range(12)
    )
    before = _counts(seeded_enclave)
    for metadata, needle in ((bomb, "aliases"), ("x: " + "y" * (300 * 1024), "larger")):
        response = seeded_client.post(
            "/v1/datasets",
            files={"file": ("mini.csv", CSV.encode(), "text/csv")},
            data={"metadata": metadata},
            headers=bearer(tokens["custodian"]),
        )
        assert response.status_code == 422, response.text
        assert needle in response.json()["detail"]
    assert _counts(seeded_enclave) == before
