"""DP queries through the API: the budget ledger, signed releases, refunds and the notebook client."""

from __future__ import annotations

import csv
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api import workers
from enclave_api.client import EnclaveAPIError, EnclaveClient
from enclave_api.context import Enclave
from enclave_api.limits import AbuseLimits
from enclave_api.models import Grant, Release
from enclave_api.services.releases import verify_release
from tests.api.test_access_flow import _approved_grant
from tests.conftest import audit_events, bearer, dead_worker, session_token

COUNT_BY_STAGE = {"group_by": ["stage"], "aggregates": [{"fn": "count", "as": "n"}]}


def _grant(
    client: TestClient, tokens: dict[str, str], dataset: str, custodian: str, epsilon: float = 2.0
) -> str:
    return _approved_grant(client, tokens, dataset, custodian, epsilon=epsilon)


def _query(
    client: TestClient, token: str, dataset: str, epsilon: float, query: dict[str, Any], **extra: Any
) -> Any:
    body = {"dataset_id": dataset, "epsilon": epsilon, "query": query} | extra
    return client.post("/v1/queries", json=body, headers=bearer(token))


def _audit(enclave: Enclave, event_type: str) -> int:
    with enclave.read() as session:
        return int(session.scalar(select(func.count()).where(AuditEvent.type == event_type)) or 0)


def test_query_spends_budget_and_returns_a_signed_release(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    response = _query(seeded_client, tokens["researcher"], "dasom_registry", 0.5, COUNT_BY_STAGE)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["stage", "n"]
    assert [row[0] for row in body["rows"]] == ["0", "I", "II", "III", "IV"]
    assert abs(sum(row[1] for row in body["rows"]) - 400) < 5 * 5 * body["accuracy"]["n"]
    assert body["budget"]["epsilon_remaining"] == pytest.approx(1.5)
    grants = seeded_client.get("/v1/grants", headers=bearer(tokens["researcher"])).json()
    assert next(g for g in grants if g["id"] == grant_id)["epsilon_spent"] == pytest.approx(0.5)
    stored = seeded_client.get(
        f"/v1/releases/{body['release_id']}", headers=bearer(tokens["researcher"])
    ).json()
    assert stored["signature"] == body["signature"]
    assert stored["release"]["rows"] == body["rows"]
    key = seeded_enclave.secrets.signing_key.public_key()
    assert verify_release(stored["release"], stored["signature"], key)
    forged = stored["release"] | {"rows": [[r[0], r[1] + 1] for r in stored["release"]["rows"]]}
    assert not verify_release(forged, stored["signature"], key)
    assert _audit(seeded_enclave, "budget.reserved") == 1 and _audit(seeded_enclave, "query.released") == 1
    # Custodians of the dataset and auditors see it; another hospital's custodian does not.
    for role, status in (("custodian2", 200), ("auditor", 200), ("custodian", 404)):
        got = seeded_client.get(f"/v1/releases/{body['release_id']}", headers=bearer(tokens[role]))
        assert got.status_code == status, role


def test_budget_exhaustion_is_409_with_cost_and_remaining(
    seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    _grant(seeded_client, tokens, "dasom_registry", "custodian2", epsilon=1.0)
    assert (
        _query(seeded_client, tokens["researcher"], "dasom_registry", 0.75, COUNT_BY_STAGE).status_code == 200
    )
    refused = _query(seeded_client, tokens["researcher"], "dasom_registry", 0.5, COUNT_BY_STAGE)
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["epsilon_cost"] == 0.5 and problem["epsilon_remaining"] == pytest.approx(0.25)
    assert "0.5" in problem["detail"] and "0.25" in problem["detail"]


@pytest.mark.parametrize(
    ("query", "epsilon", "field"),
    [
        ({"aggregates": [{"fn": "count", "as": "n"}]}, 0, "epsilon"),
        ({"aggregates": [{"fn": "count", "as": "n"}]}, -1, "epsilon"),
        ({"aggregates": [{"fn": "mean", "column": "rrn", "as": "m"}]}, 0.1, "rrn"),
        ({"aggregates": [{"fn": "sum", "column": "nope", "as": "s"}]}, 0.1, "nope"),
        ({"aggregates": [{"fn": "count", "as": "n"}], "extra": 1}, 0.1, "extra"),
        ({"aggregates": []}, 0.1, "aggregates"),
    ],
)
def test_invalid_queries_are_422_and_spend_nothing(
    seeded_client: TestClient, tokens: dict[str, str], query: dict[str, Any], epsilon: float, field: str
) -> None:
    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    response = _query(seeded_client, tokens["researcher"], "dasom_registry", epsilon, query)
    assert response.status_code == 422, response.text
    assert field in response.text
    grants = seeded_client.get("/v1/grants", headers=bearer(tokens["researcher"])).json()
    assert next(g for g in grants if g["id"] == grant_id)["epsilon_spent"] == 0


def test_revoked_or_foreign_grants_spend_nothing(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    seeded_client.post(
        f"/v1/grants/{grant_id}/revoke", headers=bearer(tokens["custodian2"])
    ).raise_for_status()
    assert (
        _query(seeded_client, tokens["researcher"], "dasom_registry", 0.1, COUNT_BY_STAGE).status_code == 403
    )
    assert (
        _query(seeded_client, tokens["researcher"], "mirae_registry", 0.1, COUNT_BY_STAGE).status_code == 403
    )
    assert (
        _query(seeded_client, tokens["custodian2"], "dasom_registry", 0.1, COUNT_BY_STAGE).status_code == 403
    )


def test_200_concurrent_queries_release_exactly_what_the_budget_affords(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    """A grant that affords 10 queries: of 200 concurrent ones exactly 10 release and 190 get 409."""
    from concurrent.futures import ThreadPoolExecutor

    grant_id = _grant(seeded_client, tokens, "mirae_registry", "custodian3", epsilon=1.0)
    query = {"aggregates": [{"fn": "count", "as": "n"}]}
    # The budget is what is tested here, not the per-user rate limit (60 a minute by default).
    seeded_enclave.limits = AbuseLimits(
        seeded_enclave.settings.model_copy(update={"rate_limit_queries_per_minute": 1000})
    )

    def one(_: int) -> int:
        return int(_query(seeded_client, tokens["researcher"], "mirae_registry", 0.1, query).status_code)

    with ThreadPoolExecutor(max_workers=32) as pool:
        statuses = list(pool.map(one, range(200)))
    assert statuses.count(200) == 10
    assert statuses.count(409) == 190
    with seeded_enclave.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None
        assert grant.epsilon_spent == pytest.approx(1.0)
        assert grant.epsilon_spent <= grant.epsilon_total * (1 + 1e-9)
        released = session.scalar(
            select(func.count()).select_from(Release).where(Release.status == "released")
        )
    assert released == 10
    assert _audit(seeded_enclave, "query.released") == 10


@pytest.mark.parametrize(
    ("body_update", "field"),
    [
        ({"delta": 1e-5}, "delta"),  # above the per-query cap of 1e-6
        ({"epsilon": 0}, "epsilon"),
        ({"epsilon": float("inf")}, "epsilon"),
        ({"query": {"aggregates": [{"fn": "mean", "column": "stage", "as": "m"}]}}, "stage"),
        (
            {
                "query": {
                    "aggregates": [{"fn": "sum", "column": "tumor_size_mm", "bounds": [0, "x"], "as": "s"}]
                }
            },
            "bounds",
        ),
        (
            {
                "query": {
                    "aggregates": [{"fn": "sum", "column": "tumor_size_mm", "bounds": [5, 1], "as": "s"}]
                }
            },
            "bounds",
        ),
        (
            {"query": {"group_by": ["patient_name"], "aggregates": [{"fn": "count", "as": "n"}]}},
            "patient_name",
        ),
        (
            {"query": {"group_by": ["age_at_diagnosis"], "aggregates": [{"fn": "count", "as": "n"}]}},
            "age_at_diagnosis",
        ),
        (
            {
                "query": {
                    "filters": [{"column": "nope", "op": "==", "value": 1}],
                    "aggregates": [{"fn": "count", "as": "n"}],
                }
            },
            "nope",
        ),
    ],
)
def test_bad_queries_are_clear_422s_that_spend_nothing(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    tokens: dict[str, str],
    body_update: dict[str, Any],
    field: str,
) -> None:
    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    body = {"dataset_id": "dasom_registry", "epsilon": 0.1, "query": COUNT_BY_STAGE} | body_update
    raw = json.dumps(body, allow_nan=True).encode()  # lets inf through as the JSON token Infinity
    response = seeded_client.post(
        "/v1/queries",
        content=raw,
        headers=bearer(tokens["researcher"]) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    with seeded_enclave.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.epsilon_spent == 0


def test_zero_rows_and_empty_groups_still_answer(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    query = {
        "filters": [{"column": "age_at_diagnosis", "op": ">", "value": 200}],
        "group_by": ["stage"],
        "aggregates": [{"fn": "count", "as": "n"}],
    }
    response = _query(seeded_client, tokens["researcher"], "dasom_registry", 0.5, query)
    assert response.status_code == 200, response.text
    rows = response.json()["rows"]
    assert [r[0] for r in rows] == ["0", "I", "II", "III", "IV"]  # every public key, even empty
    assert all(abs(r[1]) < 5 * response.json()["accuracy"]["n"] for r in rows)


def test_client_builder_export_and_manifest(
    seeded_client: TestClient, tokens: dict[str, str], tmp_path: Path
) -> None:
    _grant(seeded_client, tokens, "hanbit_registry", "custodian")
    client = EnclaveClient("http://testserver", tokens["researcher"], http=seeded_client)
    result = (
        client.query("hanbit_registry")
        .where("age_at_diagnosis", ">=", 50)
        .group_by("stage")
        .count("n")
        .mean("tumor_size_mm", bounds=(0, 150), as_="mean_size")
        .run(epsilon=0.5)
    )
    assert result.frame.columns == ["stage", "n", "mean_size"]
    assert result.frame.height == 5
    assert result.budget["epsilon_remaining"] == pytest.approx(1.5)
    assert client.budget("hanbit_registry")[0]["epsilon_remaining"] == pytest.approx(1.5)
    csv_path, manifest_path = client.export(result, tmp_path / "stages.csv")
    with open(csv_path, encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    manifest = json.loads(manifest_path.read_text())
    assert rows[0] == manifest["release"]["columns"]
    assert [[str(v) for v in r] for r in manifest["release"]["rows"]] == rows[1:]
    assert manifest["release"]["release_id"] == result.release_id
    with pytest.raises(EnclaveAPIError) as info:
        client.query("hanbit_registry").count().run(epsilon=100.0)
    assert info.value.status == 409


def test_records_of_query_only_dataset_never_served_but_queries_work(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    from tests.api.test_datasets import CSV, META

    meta = META | {"id": "qo_dp", "tier": "query_only"}
    seeded_client.post(
        "/v1/datasets",
        files={"file": ("q.csv", CSV.encode(), "text/csv")},
        data={"metadata": json.dumps(meta)},
        headers=bearer(tokens["custodian"]),
    ).raise_for_status()
    _grant(seeded_client, tokens, "qo_dp", "custodian")
    assert (
        seeded_client.get(
            "/v1/datasets/qo_dp/records", headers=bearer(session_token(seeded_enclave, "minji.park"))
        ).status_code
        == 403
    )
    response = _query(
        seeded_client, tokens["researcher"], "qo_dp", 0.2, {"aggregates": [{"fn": "count", "as": "n"}]}
    )
    assert response.status_code == 200, response.text


def test_engine_refusal_refunds_and_other_failures_keep_the_budget_spent(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from enclave_api.services import releases
    from privacy.dp import QueryError

    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")

    def refuse(*_args: Any) -> Any:
        raise QueryError("privacy map exceeds the request", "query")

    monkeypatch.setattr(releases, "run_query", refuse)
    assert (
        _query(seeded_client, tokens["researcher"], "dasom_registry", 0.3, COUNT_BY_STAGE).status_code == 422
    )
    with seeded_enclave.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.epsilon_spent == pytest.approx(0.0)
    assert _audit(seeded_enclave, "budget.refunded") == 1

    def crash(*_args: Any) -> Any:
        raise RuntimeError("worker died after sampling")

    monkeypatch.setattr(releases, "run_query", crash)
    with pytest.raises(RuntimeError):
        _query(seeded_client, tokens["researcher"], "dasom_registry", 0.3, COUNT_BY_STAGE)
    with seeded_enclave.read() as session:
        grant = session.get(Grant, grant_id)
        assert grant is not None and grant.epsilon_spent == pytest.approx(0.3)
        statuses = sorted(session.scalars(select(Release.status)))
    assert statuses == ["failed", "refunded"]
    assert _audit(seeded_enclave, "query.failed") == 1


def test_a_crashed_query_is_failed_at_once_a_running_one_only_after_its_lease(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    from enclave_api.services.releases import recover_interrupted

    grant_id = _grant(seeded_client, tokens, "dasom_registry", "custodian2")
    released = _query(seeded_client, tokens["researcher"], "dasom_registry", 0.25, COUNT_BY_STAGE).json()
    reservations = {"rel_crashed": dead_worker(), "rel_running": workers.current(), "rel_far": "far/0/1/1"}
    with seeded_enclave.write() as session:  # of a crashed query, a running one, one elsewhere
        template = session.get_one(Release, released["release_id"])
        for rid, worker in reservations.items():
            session.add(
                Release(
                    id=rid,
                    grant_id=grant_id,
                    dataset_id=template.dataset_id,
                    project_id=template.project_id,
                    requester_id=template.requester_id,
                    query=template.query,
                    epsilon=0.25,
                    delta=0.0,
                    status="reserved",
                    created_at=seeded_enclave.now(),
                    worker=worker,
                )
            )
        session.get_one(Grant, grant_id).epsilon_spent += 0.75
    assert recover_interrupted(seeded_enclave) == 1
    with seeded_enclave.read() as session:
        statuses = {rid: status for rid, status in session.execute(select(Release.id, Release.status))}
    assert (
        statuses["rel_crashed"] == "failed" and statuses["rel_running"] == statuses["rel_far"] == "reserved"
    )
    failed = [e for e in audit_events(seeded_enclave, "query.failed")]
    assert [e["subject"]["release"] for e in failed] == ["rel_crashed"]
    assert "stopped" in failed[0]["details"]["reason"] and "stays spent" in failed[0]["details"]["reason"]
    with seeded_enclave.write() as session:  # past the lease, nothing is presumed to run any more
        for rid in ("rel_running", "rel_far"):
            lease = timedelta(minutes=seeded_enclave.settings.query_lease_minutes)
            session.get_one(Release, rid).created_at -= lease + timedelta(minutes=1)
    assert recover_interrupted(seeded_enclave) == 2
    with seeded_enclave.read() as session:
        assert session.scalar(select(func.count()).where(Release.status == "reserved")) == 0
        grant = session.get_one(Grant, grant_id)
    assert grant.epsilon_spent == pytest.approx(1.0)  # failed reservations keep the budget spent
    assert recover_interrupted(seeded_enclave) == 0


def test_datasets_are_scanned_from_memory_files_that_outlive_eviction_while_in_use(
    seeded_enclave: Enclave,
) -> None:
    import gc

    from enclave_api.services.datasets import get_dataset
    from enclave_api.services.releases import _TableCache

    cache = _TableCache(size=1)
    with seeded_enclave.read() as session:
        wdbc, registry = get_dataset(session, "wdbc"), get_dataset(session, "dasom_registry")
    held = cache.get(seeded_enclave, wdbc)
    path = getattr(held, "path", "")
    assert os.readlink(path).startswith("/memfd:enclave-wdbc")  # decrypted in memory, never on disk
    assert cache.get(seeded_enclave, wdbc) is held  # cached
    cache.get(seeded_enclave, registry)  # evicts wdbc while a query still holds it
    assert held.frame().select(pl.len()).collect().item() == 569
    del held
    gc.collect()
    # Closed once nothing uses it (its descriptor number may have been reused by another file since).
    assert not os.path.exists(path) or not os.readlink(path).startswith("/memfd:enclave-wdbc")
