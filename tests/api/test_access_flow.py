"""Projects, access requests, custodian decisions, grants, revocation and the data broker."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api.context import Enclave
from tests.conftest import audit_events, bearer, session_token

REQUEST = {
    "purpose": "Survival by stage across hospitals.",
    "epsilon": 2.0,
    "delta": 1e-7,
    "days": 30,
    "dua_accepted": True,
}


def _project(client: TestClient, token: str) -> str:
    response = client.post(
        "/v1/projects", json={"title": "Stage and survival", "purpose": "Outcomes research"},
        headers=bearer(token),
    )  # fmt: skip
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _request(client: TestClient, token: str, project: str, dataset: str, **over: Any) -> Any:
    body = REQUEST | {"project_id": project, "dataset_id": dataset} | over
    return client.post("/v1/access-requests", json=body, headers=bearer(token))


def _audit_count(enclave: Enclave, event_type: str) -> int:
    with enclave.read() as session:
        return int(session.scalar(select(func.count()).where(AuditEvent.type == event_type)) or 0)


@pytest.fixture
def tokens(seeded_enclave: Enclave, tokens: dict[str, str]) -> dict[str, str]:
    """The demo tokens, the researcher's being a notebook session's credential (records need one)."""
    return tokens | {
        "researcher": session_token(seeded_enclave, "minji.park"),
        "researcher_api": tokens["researcher"],
    }


def _read_records(client: TestClient, token: str, dataset: str, **params: str) -> Any:
    return client.get(f"/v1/datasets/{dataset}/records", headers=bearer(token), params=params)


def test_request_approve_grant_read_walk(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    """The README walk: request → approve (less ε, shorter) → grant → pseudonymised records."""
    project = _project(seeded_client, tokens["researcher"])
    created = _request(seeded_client, tokens["researcher"], project, "dasom_registry")
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    assert created.json()["status"] == "pending"

    # The custodian of the dataset's hospital sees it in the queue; another hospital's does not.
    queue = seeded_client.get("/v1/access-requests", headers=bearer(tokens["custodian2"])).json()
    assert request_id in [r["id"] for r in queue]
    other = seeded_client.get("/v1/access-requests", headers=bearer(tokens["custodian"])).json()
    assert request_id not in [r["id"] for r in other]

    decided = seeded_client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "approve", "reason": "fine", "epsilon": 1.5, "days": 10},
        headers=bearer(tokens["custodian2"]),
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved"
    grant_id = decided.json()["grant_id"]

    grants = seeded_client.get("/v1/grants", headers=bearer(tokens["researcher"])).json()
    grant = next(g for g in grants if g["id"] == grant_id)
    assert grant["status"] == "active"
    assert (grant["epsilon_total"], grant["epsilon_spent"]) == (1.5, 0.0)
    assert grant["delta_total"] == pytest.approx(1e-7)
    span = seeded_enclave.now() + timedelta(days=10)
    assert abs(_iso_seconds(grant["expires_at"]) - span.timestamp()) < 120

    reads_before = _audit_count(seeded_enclave, "data.read")
    response = _read_records(seeded_client, tokens["researcher"], "dasom_registry")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
    assert table.num_rows == 400
    # Direct identifiers: names, RRNs and phones dropped; MRNs pseudonymised.
    assert {"patient_name", "rrn", "phone"}.isdisjoint(table.column_names)
    mrns = table.column("mrn").to_pylist()
    assert all(m.startswith("psn_") for m in mrns)
    assert len(set(mrns)) == 400
    assert {"stage", "survival_months", "age_at_diagnosis"} <= set(table.column_names)
    assert _audit_count(seeded_enclave, "data.read") == reads_before + 1

    # Pseudonyms are stable within a project.
    again = pa.ipc.open_stream(
        io.BytesIO(_read_records(seeded_client, tokens["researcher"], "dasom_registry").content)
    ).read_all()
    assert again.column("mrn").to_pylist() == mrns


def _iso_seconds(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_pseudonyms_differ_between_projects(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    mrn_sets = []
    for _ in range(2):
        grant_id = _approved_grant(seeded_client, tokens, "mirae_registry", "custodian3")
        response = _read_records(seeded_client, tokens["researcher"], "mirae_registry", grant_id=grant_id)
        assert response.status_code == 200, response.text
        table = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
        mrn_sets.append(set(table.column("mrn").to_pylist()))
    assert mrn_sets[0].isdisjoint(mrn_sets[1])


def test_several_active_grants_need_grant_id(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    for _ in range(2):
        _approved_grant(seeded_client, tokens, "mirae_registry", "custodian3")
    response = _read_records(seeded_client, tokens["researcher"], "mirae_registry")
    assert response.status_code == 422
    assert response.json()["field"] == "grant_id"


def test_other_hospitals_custodian_cannot_decide(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    project = _project(seeded_client, tokens["researcher"])
    request_id = _request(seeded_client, tokens["researcher"], project, "dasom_registry").json()["id"]
    before = _audit_count(seeded_enclave, "access_request.decided")
    response = seeded_client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "approve", "reason": "not mine"},
        headers=bearer(tokens["custodian"]),
    )
    assert response.status_code == 404  # another hospital's request is not confirmed to exist
    for role in ("researcher", "auditor", "admin"):
        response = seeded_client.post(
            f"/v1/access-requests/{request_id}/decision",
            json={"decision": "approve", "reason": "x"},
            headers=bearer(tokens[role]),
        )
        assert response.status_code == 403, role
    assert _audit_count(seeded_enclave, "access_request.decided") == before
    status = seeded_client.get(
        f"/v1/access-requests/{request_id}", headers=bearer(tokens["researcher"])
    ).json()["status"]
    assert status == "pending"


def test_deciding_twice_is_a_conflict(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    project = _project(seeded_client, tokens["researcher"])
    request_id = _request(seeded_client, tokens["researcher"], project, "dasom_registry").json()["id"]
    url = f"/v1/access-requests/{request_id}/decision"
    first = seeded_client.post(
        url,
        json={"decision": "deny", "reason": "purpose too broad"},
        headers=bearer(tokens["custodian2"]),
    )
    assert first.status_code == 200 and first.json()["status"] == "denied"
    second = seeded_client.post(
        url,
        json={"decision": "approve", "reason": "changed my mind"},
        headers=bearer(tokens["custodian2"]),
    )
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"decision": "deny"}, "reason"),
        ({"decision": "deny", "reason": "   "}, "reason"),
        ({"decision": "approve", "epsilon": 5.0}, "epsilon"),  # raising ε
        ({"decision": "approve", "days": 31}, "days"),  # extending
        ({"decision": "approve", "epsilon": 0}, "epsilon"),
        ({"decision": "maybe", "reason": "x"}, "decision"),
        ({"decision": "approve", "surprise": 1}, "surprise"),
    ],
)
def test_invalid_decisions_are_422_and_change_nothing(
    seeded_client: TestClient, tokens: dict[str, str], body: dict[str, Any], field: str
) -> None:
    project = _project(seeded_client, tokens["researcher"])
    request_id = _request(seeded_client, tokens["researcher"], project, "dasom_registry").json()["id"]
    response = seeded_client.post(
        f"/v1/access-requests/{request_id}/decision",
        json=body,
        headers=bearer(tokens["custodian2"]),
    )
    assert response.status_code == 422, response.text
    assert field in response.text
    current = seeded_client.get(f"/v1/access-requests/{request_id}", headers=bearer(tokens["researcher"]))
    assert current.json()["status"] == "pending"


@pytest.mark.parametrize(
    "over",
    [
        {"epsilon": 0},
        {"epsilon": -1},
        {"epsilon": 1e9},
        {"epsilon": "lots"},
        {"delta": 0.5},
        {"delta": -1e-9},
        {"days": 0},
        {"days": 100_000},
        {"dua_accepted": False},
        {"purpose": ""},
        {"unexpected": "field"},
    ],
)
def test_invalid_access_requests_are_422(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str], over: dict[str, Any]
) -> None:
    project = _project(seeded_client, tokens["researcher"])
    before = _audit_count(seeded_enclave, "access_request.created")
    response = _request(seeded_client, tokens["researcher"], project, "dasom_registry", **over)
    assert response.status_code == 422, response.text
    assert response.json()["status"] == 422
    assert _audit_count(seeded_enclave, "access_request.created") == before


def test_malformed_json_is_422(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    response = seeded_client.post(
        "/v1/projects",
        content=b'{"title": "unterminated',
        headers=bearer(tokens["researcher"]) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


def test_oversized_json_body_is_413(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    big = {"title": "x", "purpose": "y" * (2 * 1024 * 1024)}
    response = seeded_client.post("/v1/projects", json=big, headers=bearer(tokens["researcher"]))
    assert response.status_code == 413
    assert response.json()["title"] == "Payload too large"


def test_requests_for_unknown_or_foreign_projects_are_404(
    seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    assert _request(seeded_client, tokens["researcher"], "p-doesnotexist", "wdbc").status_code == 404
    assert (
        _request(
            seeded_client,
            tokens["researcher"],
            _project(seeded_client, tokens["researcher"]),
            "nope",
        ).status_code
        == 404
    )


def test_duplicate_pending_request_is_a_conflict(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    project = _project(seeded_client, tokens["researcher"])
    assert _request(seeded_client, tokens["researcher"], project, "dasom_registry").status_code == 201
    assert _request(seeded_client, tokens["researcher"], project, "dasom_registry").status_code == 409


def test_only_researchers_request_access(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    response = seeded_client.post(
        "/v1/projects", json={"title": "t", "purpose": "p"}, headers=bearer(tokens["custodian"])
    )
    assert response.status_code == 403


def _approved_grant(
    client: TestClient, tokens: dict[str, str], dataset: str, custodian: str, epsilon: float = 2.0
) -> str:
    """A fresh project of the demo researcher with an approved grant on ``dataset``."""
    project = _project(client, tokens["researcher"])
    request_id = _request(client, tokens["researcher"], project, dataset, epsilon=epsilon).json()["id"]
    decided = client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens[custodian]),
    )
    return str(decided.json()["grant_id"])


def test_revoked_grant_is_inert(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    grant_id = _approved_grant(seeded_client, tokens, "dasom_registry", "custodian2")
    assert _read_records(seeded_client, tokens["researcher"], "dasom_registry").status_code == 200
    # Another hospital's custodian is not told the grant exists; the researcher may not revoke it.
    for role, status in (("custodian", 404), ("researcher", 403)):
        assert (
            seeded_client.post(f"/v1/grants/{grant_id}/revoke", headers=bearer(tokens[role])).status_code
            == status
        )
    revoked = seeded_client.post(
        f"/v1/grants/{grant_id}/revoke",
        json={"reason": "DUA breach"},
        headers=bearer(tokens["custodian2"]),
    )
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
    again = seeded_client.post(f"/v1/grants/{grant_id}/revoke", headers=bearer(tokens["admin"]))
    assert again.status_code == 409
    # The researcher's notebook session ended with the grant: its credential no longer works.
    response = _read_records(seeded_client, tokens["researcher"], "dasom_registry")
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]
    ended = audit_events(seeded_enclave, "session.ended")
    assert [(e["details"]["reason"], e["details"]["grant"]) for e in ended] == [("grant_revoked", grant_id)]
    # A new session may start (the wdbc grant is still active) but cannot read the revoked grant's data.
    fresh = session_token(seeded_enclave, "minji.park")
    assert _read_records(seeded_client, fresh, "dasom_registry").status_code == 403
    assert _audit_count(seeded_enclave, "grant.revoked") == 1


def test_admin_may_revoke(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    grant_id = _approved_grant(seeded_client, tokens, "mirae_registry", "custodian3")
    response = seeded_client.post(f"/v1/grants/{grant_id}/revoke", headers=bearer(tokens["admin"]))
    assert response.status_code == 200


def test_expired_grant_is_inert(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    grant_id = _approved_grant(seeded_client, tokens, "dasom_registry", "custodian2")
    later = seeded_enclave.now() + timedelta(days=31)
    seeded_enclave.clock = lambda: later
    # The session credential expired with the grant; the grant itself is inert.
    assert _read_records(seeded_client, tokens["researcher"], "dasom_registry").status_code == 401
    grants = seeded_client.get("/v1/grants", headers=bearer(tokens["researcher_api"])).json()
    assert next(g for g in grants if g["id"] == grant_id)["status"] == "expired"


def test_records_need_a_grant(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    # The demo project holds a grant on wdbc but none on the registries.
    assert _read_records(seeded_client, tokens["researcher"], "hanbit_registry").status_code == 403
    assert _read_records(seeded_client, tokens["custodian"], "wdbc").status_code == 403
    assert _read_records(seeded_client, tokens["researcher_api"], "wdbc").status_code == 403  # no session
    assert _read_records(seeded_client, tokens["researcher"], "wdbc").status_code == 200
    assert _read_records(seeded_client, tokens["researcher"], "nope").status_code == 404


def test_researchers_see_only_their_projects_grants(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    from enclave_api.roles import Role
    from enclave_api.services import identity

    with seeded_enclave.write() as session:
        identity.create_user(
            seeded_enclave,
            session,
            "t",
            "other.researcher",
            "Other",
            "aster-pharma",
            [Role.RESEARCHER],
        )
        session.flush()
        token = identity.issue_token(seeded_enclave, session, "t", "other.researcher").token
    assert seeded_client.get("/v1/grants", headers=bearer(token)).json() == []
    assert seeded_client.get("/v1/access-requests", headers=bearer(token)).json() == []
    assert _read_records(seeded_client, token, "wdbc").status_code == 403
    assert len(seeded_client.get("/v1/grants", headers=bearer(tokens["researcher"])).json()) == 1


def test_revocation_during_a_read_wins(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A grant revoked while the dataset is being decrypted: nothing is served, nothing audited."""
    from enclave_api.services import access, broker
    from enclave_api.services.identity import Principal

    grant_id = _approved_grant(seeded_client, tokens, "dasom_registry", "custodian2")
    original = broker.load_table

    def load_then_revoke(*args: Any) -> Any:
        table = original(*args)
        from enclave_api.models import User

        with seeded_enclave.write() as session:
            custodian = session.get(User, "seoyeon.lee")
            assert custodian is not None
            access.revoke_grant(seeded_enclave, session, Principal.local(custodian), grant_id, "mid-read")
        return table

    monkeypatch.setattr(broker, "load_table", load_then_revoke)
    before = _audit_count(seeded_enclave, "data.read")
    response = _read_records(seeded_client, tokens["researcher"], "dasom_registry")
    assert response.status_code == 403
    assert _audit_count(seeded_enclave, "data.read") == before


def test_withdraw_pending_request(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    project = _project(seeded_client, tokens["researcher"])
    request_id = _request(seeded_client, tokens["researcher"], project, "dasom_registry").json()["id"]
    assert (
        seeded_client.post(
            f"/v1/access-requests/{request_id}/withdraw", headers=bearer(tokens["custodian2"])
        ).status_code
        == 403
    )
    withdrawn = seeded_client.post(
        f"/v1/access-requests/{request_id}/withdraw", headers=bearer(tokens["researcher"])
    )
    assert withdrawn.status_code == 200 and withdrawn.json()["status"] == "withdrawn"
    decided = seeded_client.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "approve", "reason": "late"},
        headers=bearer(tokens["custodian2"]),
    )
    assert decided.status_code == 409
    assert _request(seeded_client, tokens["researcher"], project, "dasom_registry").status_code == 201
