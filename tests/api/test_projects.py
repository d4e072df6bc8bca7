"""Projects and their members: who may add whom, and what membership gives."""

from __future__ import annotations

from fastapi.testclient import TestClient

from enclave_api.context import Enclave
from enclave_api.roles import Role
from enclave_api.services import identity
from tests.conftest import bearer, session_token


def _researcher(enclave: Enclave, user_id: str) -> str:
    with enclave.write() as session:
        identity.create_user(enclave, session, "t", user_id, user_id, "aster-pharma", [Role.RESEARCHER])
        session.flush()
        return identity.issue_token(enclave, session, "t", user_id).token


def test_owner_adds_members_who_then_share_the_grants(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    colleague = _researcher(seeded_enclave, "jun.colleague")
    owner = bearer(tokens["researcher"])
    projects = seeded_client.get("/v1/projects", headers=owner).json()
    assert len(projects) == 1
    project = projects[0]["id"]
    assert seeded_client.get(f"/v1/projects/{project}", headers=bearer(colleague)).status_code == 404
    assert seeded_client.get("/v1/grants", headers=bearer(colleague)).json() == []

    url = f"/v1/projects/{project}/members"
    assert (
        seeded_client.post(url, json={"user_id": "jun.colleague"}, headers=bearer(colleague)).status_code
        == 404
    )
    assert (
        seeded_client.post(url, json={"user_id": "jiho.kim"}, headers=owner).status_code == 404
    )  # a custodian
    assert seeded_client.post(url, json={"user_id": "nobody"}, headers=owner).status_code == 404
    assert seeded_client.post(url, json={"user_id": "x" * 100}, headers=owner).status_code == 422
    assert seeded_client.post(url, json={"user_id": "jun.colleague"}, headers=owner).status_code == 204
    assert seeded_client.post(url, json={"user_id": "jun.colleague"}, headers=owner).status_code == 409

    assert seeded_client.get(f"/v1/projects/{project}", headers=bearer(colleague)).status_code == 200
    grants = seeded_client.get("/v1/grants", headers=bearer(colleague)).json()
    assert [g["dataset_id"] for g in grants] == ["wdbc"]
    in_session = bearer(session_token(seeded_enclave, "jun.colleague"))
    assert seeded_client.get("/v1/datasets/wdbc/records", headers=in_session).status_code == 200
    # A member who is not the owner cannot add others.
    third = _researcher(seeded_enclave, "third.person")
    assert (
        seeded_client.post(url, json={"user_id": "third.person"}, headers=bearer(colleague)).status_code
        == 403
    )
    assert seeded_client.get(f"/v1/projects/{project}", headers=bearer(third)).status_code == 404


def test_admin_sees_every_project(seeded_client: TestClient, tokens: dict[str, str]) -> None:
    assert len(seeded_client.get("/v1/projects", headers=bearer(tokens["admin"])).json()) == 1
    assert seeded_client.get("/v1/projects", headers=bearer(tokens["custodian"])).json() == []
