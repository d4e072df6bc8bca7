"""Authentication: bearer tokens, their expiry and revocation; /v1/me; problem responses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from enclave_api.context import Enclave
from enclave_api.services import identity
from tests.conftest import bearer


def test_healthz_needs_no_token(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("role", "user", "org", "roles"),
    [
        ("researcher", "minji.park", "aster-pharma", ["researcher"]),
        ("custodian", "jiho.kim", "hanbit-cancer-center", ["custodian"]),
        ("custodian2", "seoyeon.lee", "dasom-university-hospital", ["custodian"]),
        ("auditor", "auditor.han", "data-oversight-board", ["auditor"]),
        ("admin", "admin", "enclave-operator", ["admin"]),
    ],
)
def test_me_identifies_each_demo_role(
    seeded_client: TestClient,
    tokens: dict[str, str],
    role: str,
    user: str,
    org: str,
    roles: list[str],
) -> None:
    response = seeded_client.get("/v1/me", headers=bearer(tokens[role]))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["org"], body["roles"]) == (user, org, roles)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer enc_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer " + "enc_" + "x" * 500},
    ],
)
def test_missing_or_unknown_token_is_401_problem(seeded_client: TestClient, headers: dict[str, str]) -> None:
    response = seeded_client.get("/v1/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401 and body["title"] and body["detail"]


def test_expired_token_is_refused(seeded_enclave: Enclave, seeded_client: TestClient) -> None:
    with seeded_enclave.write() as session:
        issued = identity.issue_token(seeded_enclave, session, "test", "minji.park", days=1)
    assert seeded_client.get("/v1/me", headers=bearer(issued.token)).status_code == 200
    later = seeded_enclave.now() + timedelta(days=1, seconds=1)
    seeded_enclave.clock = lambda: later
    response = seeded_client.get("/v1/me", headers=bearer(issued.token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_revoked_token_is_refused(seeded_enclave: Enclave, seeded_client: TestClient) -> None:
    with seeded_enclave.write() as session:
        issued = identity.issue_token(seeded_enclave, session, "test", "minji.park")
    with seeded_enclave.write() as session:
        identity.revoke_token(seeded_enclave, session, "test", issued.record.id)
    response = seeded_client.get("/v1/me", headers=bearer(issued.token))
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_tokens_are_stored_only_as_peppered_hashes(seeded_enclave: Enclave) -> None:
    with seeded_enclave.write() as session:
        issued = identity.issue_token(seeded_enclave, session, "test", "minji.park")
    stored = issued.record.token_hash
    assert issued.token not in stored
    assert stored == identity.token_hash(seeded_enclave.secrets.token_pepper, issued.token)
    assert stored != identity.token_hash(b"another pepper", issued.token)


def test_passwords_are_argon2_hashed_and_verified() -> None:
    stored = identity.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert identity.verify_password(stored, "correct horse battery staple")
    assert not identity.verify_password(stored, "wrong horse battery staple")
    assert not identity.verify_password(None, "anything at all")


def test_token_use_is_audited_at_most_hourly(
    seeded_enclave: Enclave, seeded_client: TestClient, tokens: dict[str, str]
) -> None:
    from sqlalchemy import select

    from audit.store import AuditEvent

    def uses() -> list[str]:
        with seeded_enclave.read() as session:
            rows = session.scalars(select(AuditEvent.actor).where(AuditEvent.type == "auth.token_used"))
            return list(rows)

    for _ in range(3):
        assert seeded_client.get("/v1/me", headers=bearer(tokens["researcher"])).status_code == 200
    assert uses() == ["minji.park"]
    later = seeded_enclave.now() + timedelta(hours=1, minutes=1)
    seeded_enclave.clock = lambda: later
    seeded_client.get("/v1/me", headers=bearer(tokens["researcher"]))
    assert uses() == ["minji.park", "minji.park"]
    seeded_client.get("/v1/me", headers={"Authorization": "Bearer enc_forged"})
    assert len(uses()) == 2
