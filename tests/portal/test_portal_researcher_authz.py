"""The researcher's portal pages over HTTP, on SQLite and PostgreSQL: who may see and do what.

Another researcher sees none of minji.park's projects, requests, grants or egress requests (404 as
in the API), a withdrawal without the form's CSRF token changes nothing, custodians get 403 on the
researcher-only pages but may browse the catalog, and downloads are attachments the browser never
renders.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.models import AccessRequest, EgressRequest, Grant, Project
from enclave_api.roles import Role
from enclave_api.services import identity
from tests.conftest import audit_events, bearer, session_token
from tests.portal.support import client_login, field

PROJECT_TITLE = "HER2-positive outcomes across hospitals"
OTHER = {"username": "sora.jung", "password": "another-researcher-pw-1"}

RESEARCHER_PAGES = [
    "/portal/projects",
    "/portal/projects/{project}",
    "/portal/requests",
    "/portal/requests/new",
    "/portal/requests/{pending}/withdraw",
    "/portal/grants",
    "/portal/egress",
]


def _logins(enclave: Enclave) -> dict[str, dict[str, str]]:
    logins: dict[str, dict[str, str]] = json.loads((enclave.data_dir / "demo-logins.json").read_text())
    return logins | {"other": OTHER}


def _demo_state(enclave: Enclave) -> dict[str, str]:
    """Ids of the seeded project, its pending access request and its grant."""
    with enclave.read() as session:
        project = session.scalars(select(Project).where(Project.title == PROJECT_TITLE)).one()
        pending = session.scalars(
            select(AccessRequest).where(
                AccessRequest.project_id == project.id, AccessRequest.status == "pending"
            )
        ).one()
        grant = session.scalars(select(Grant).where(Grant.project_id == project.id)).one()
        return {"project": project.id, "pending": pending.id, "grant": grant.id}


def _add_other_researcher(enclave: Enclave) -> None:
    """A second researcher of the same pharma company, not a member of minji.park's project."""
    with enclave.write() as session:
        identity.create_user(
            enclave, session, "test-setup", OTHER["username"], "Jung Sora", "aster-pharma",
            [Role.RESEARCHER], OTHER["password"],
        )  # fmt: skip


def _submitted_egress(enclave: Enclave, project: str) -> str:
    """An egress request of minji.park, submitted from a notebook session; after the checks, in review."""
    api = TestClient(create_app(enclave=enclave))
    submitted = api.post(
        "/v1/egress-requests",
        files=[("files", ("model_summary.txt", b"The classifier reached an AUC of 0.93.\n"))],
        data={"justification": "Model quality for the report.", "project_id": project},
        headers=bearer(session_token(enclave, "minji.park")),
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "in_review", submitted.text
    return str(submitted.json()["id"])


def _released_egress(enclave: Enclave, project: str) -> str:
    """An egress request of minji.park, released by a custodian of the dataset's hospital."""
    request_id = _submitted_egress(enclave, project)
    api = TestClient(create_app(enclave=enclave))
    tokens: dict[str, str] = json.loads((enclave.data_dir / "demo-tokens.json").read_text())
    review = api.post(
        f"/v1/egress-requests/{request_id}/reviews",
        json={"decision": "approve", "comment": "Aggregate only."},
        headers=bearer(tokens["custodian"]),
    )
    assert review.status_code == 200 and review.json()["status"] == "released", review.text
    return request_id


def test_every_researcher_page_shows_the_researchers_own_things(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    state = _demo_state(seeded_enclave)
    client_login(portal_client, _logins(seeded_enclave), "researcher")
    expected = {
        "/portal/catalog?q=her2": "her2_status",
        "/portal/catalog/wdbc": "Request access",
        "/portal/projects": PROJECT_TITLE,
        f"/portal/projects/{state['project']}": "Park Minji",
        "/portal/requests": state["pending"],
        "/portal/requests/new?dataset=wdbc": '<option value="wdbc" selected>',
        f"/portal/requests/{state['pending']}/withdraw": "Withdraw request",
        "/portal/grants": state["grant"],
        "/portal/egress": "You have not submitted any outputs yet",
    }
    for path, text in expected.items():
        page = portal_client.get(path)
        assert page.status_code == 200, (path, page.text)
        assert text in page.text, path
        assert "<script" not in page.text.lower()


def test_another_researcher_sees_none_of_minjis_things(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    state = _demo_state(seeded_enclave)
    egress_id = _released_egress(seeded_enclave, state["project"])
    _add_other_researcher(seeded_enclave)
    logins = _logins(seeded_enclave)

    # minji herself sees her request and downloads its file as an attachment.
    minji = TestClient(create_app(enclave=seeded_enclave), base_url="http://127.0.0.1")
    client_login(minji, logins, "researcher")
    assert egress_id in minji.get("/portal/egress").text
    assert minji.get(f"/portal/egress/{egress_id}").status_code == 200
    got = minji.get(f"/portal/egress/{egress_id}/files/model_summary.txt")
    assert got.status_code == 200
    assert got.content == b"The classifier reached an AUC of 0.93.\n"
    assert got.headers["content-disposition"].startswith('attachment; filename="model_summary.txt"')
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["content-type"] == "application/octet-stream"
    assert minji.get(f"/portal/egress/{egress_id}/manifest").status_code == 200
    downloads = len(audit_events(seeded_enclave, "egress.downloaded"))
    assert downloads == 1

    csrf = client_login(portal_client, logins, "other")
    for path in (
        f"/portal/projects/{state['project']}",
        f"/portal/requests/{state['pending']}/withdraw",
        f"/portal/egress/{egress_id}",
        f"/portal/egress/{egress_id}/files/model_summary.txt",
        f"/portal/egress/{egress_id}/manifest",
    ):
        page = portal_client.get(path)
        assert page.status_code == 404, path
        assert "AUC" not in page.text
    for path in ("/portal/projects", "/portal/requests", "/portal/grants", "/portal/egress"):
        page = portal_client.get(path)
        assert page.status_code == 200, path
        for secret in (PROJECT_TITLE, state["pending"], state["grant"], egress_id):
            assert secret not in page.text, (path, secret)
    for path in (f"/portal/requests/{state['pending']}/withdraw", f"/portal/egress/{egress_id}/withdraw"):
        sent = portal_client.post(path, data={"csrf": csrf}, follow_redirects=False)
        assert sent.status_code == 404, path
    # A project of their own cannot be used to request on minji's behalf either.
    form = portal_client.post(
        "/portal/requests/new",
        data={
            "csrf": csrf,
            "project_id": state["project"],
            "dataset_id": "wdbc",
            "purpose": "Piggyback",
            "epsilon": "1",
            "delta": "0",
            "days": "5",
            "dua_accepted": "yes",
        },
    )
    assert form.status_code == 404
    assert "does not exist" in form.text
    with seeded_enclave.read() as session:
        assert session.get_one(AccessRequest, state["pending"]).status == "pending"
        assert session.scalar(select(func.count()).where(AccessRequest.requester_id == "sora.jung")) == 0
    assert len(audit_events(seeded_enclave, "egress.downloaded")) == downloads
    assert not audit_events(seeded_enclave, "access_request.withdrawn")


def test_a_withdrawal_needs_the_forms_csrf_token(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    state = _demo_state(seeded_enclave)
    csrf = client_login(portal_client, _logins(seeded_enclave), "researcher")
    path = f"/portal/requests/{state['pending']}/withdraw"
    confirm = portal_client.get(path)
    assert field(confirm.text, "csrf") == csrf
    attempts: list[dict[str, Any]] = [
        {},
        {"data": {"csrf": "0" * 64}},
        {"data": {"csrf": csrf}, "headers": {"Origin": "https://evil.example"}},
    ]
    for attempt in attempts:
        refused = portal_client.post(path, follow_redirects=False, **attempt)
        assert refused.status_code == 403, attempt
    with seeded_enclave.read() as session:
        assert session.get_one(AccessRequest, state["pending"]).status == "pending"
    assert not audit_events(seeded_enclave, "access_request.withdrawn")
    denied = audit_events(seeded_enclave, "access.denied")
    # Refusals are audited (repeats of one route are folded by the denial recorder).
    assert any(e["details"]["status"] == 403 and e["details"]["path"].endswith("/withdraw") for e in denied)

    done = portal_client.post(path, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert done.headers["location"] == "/portal/requests?notice=request_withdrawn"
    with seeded_enclave.read() as session:
        assert session.get_one(AccessRequest, state["pending"]).status == "withdrawn"
    assert audit_events(seeded_enclave, "access_request.withdrawn")[-1]["actor"] == "minji.park"


def test_an_egress_request_is_withdrawn_only_with_the_forms_token(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    request_id = _submitted_egress(seeded_enclave, _demo_state(seeded_enclave)["project"])
    csrf = client_login(portal_client, _logins(seeded_enclave), "researcher")
    page = portal_client.get(f"/portal/egress/{request_id}")
    assert "Withdraw this request" in page.text and "Download" not in page.text
    path = f"/portal/egress/{request_id}/withdraw"
    assert portal_client.get(path).status_code == 200
    assert portal_client.post(path, follow_redirects=False).status_code == 403
    assert _egress_status(seeded_enclave, request_id) == "in_review"
    done = portal_client.post(path, data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert _egress_status(seeded_enclave, request_id) == "withdrawn"
    assert audit_events(seeded_enclave, "egress.withdrawn")[-1]["subject"]["egress_request"] == request_id
    again = portal_client.post(path, data={"csrf": csrf}, follow_redirects=False)
    assert again.status_code == 409
    assert "Withdraw this request" not in portal_client.get(f"/portal/egress/{request_id}").text


def _egress_status(enclave: Enclave, request_id: str) -> str:
    with enclave.read() as session:
        return session.get_one(EgressRequest, request_id).status


@pytest.mark.parametrize("role", ["custodian", "auditor"])
def test_other_roles_get_403_on_researcher_pages_but_browse_the_catalog(
    portal_client: TestClient, seeded_enclave: Enclave, role: str
) -> None:
    state = _demo_state(seeded_enclave)
    csrf = client_login(portal_client, _logins(seeded_enclave), role)
    for template in RESEARCHER_PAGES:
        path = template.format(**state)
        page = portal_client.get(path)
        assert page.status_code == 403, path
        assert "researcher" in page.text
    created = portal_client.post(
        "/portal/projects",
        data={"csrf": csrf, "title": "Not mine", "purpose": "Nope"},
        follow_redirects=False,
    )
    assert created.status_code == 403
    with seeded_enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(Project)) == 1
    catalog = portal_client.get("/portal/catalog", params={"hospital": "dasom-university-hospital"})
    assert catalog.status_code == 200
    assert "Dasom University Hospital breast cancer registry (synthetic)" in catalog.text
    assert "Wisconsin Diagnostic Breast Cancer" not in catalog.text
    dataset = portal_client.get("/portal/catalog/dasom_registry")
    assert dataset.status_code == 200
    assert "her2_status" in dataset.text and "Request access" not in dataset.text
    assert portal_client.get("/portal/catalog/no_such_dataset").status_code == 404
    denied = audit_events(seeded_enclave, "access.denied")
    assert any(e["actor"] == _logins(seeded_enclave)[role]["username"] for e in denied)


@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("epsilon", "abc", "must be a number"),
        ("epsilon", "nan", "must be a finite number"),
        ("epsilon", "inf", "must be a finite number"),
        ("epsilon", "-1", "epsilon"),
        ("delta", "1e-3", "delta"),
        ("days", "2.5", "whole number of days"),
        ("days", "0", "days"),
        ("dua_accepted", "", "agreement"),
    ],
)
def test_a_bad_access_request_form_is_refused_with_its_values_kept(
    portal_client: TestClient, seeded_enclave: Enclave, field_name: str, value: str, message: str
) -> None:
    csrf = client_login(portal_client, _logins(seeded_enclave), "researcher")
    state = _demo_state(seeded_enclave)
    form = {
        "csrf": csrf,
        "project_id": state["project"],
        "dataset_id": "mirae_registry",
        "purpose": "Stage distribution <b>kept</b>",
        "epsilon": "1",
        "delta": "1e-7",
        "days": "30",
        "dua_accepted": "yes",
    } | {field_name: value}
    with seeded_enclave.read() as session:
        before = session.scalar(select(func.count()).select_from(AccessRequest))
    answer = portal_client.post("/portal/requests/new", data=form)
    assert answer.status_code == 422, answer.text[:500]
    assert message.lower() in answer.text.lower()
    assert "Stage distribution &lt;b&gt;kept&lt;/b&gt;" in answer.text  # kept, and inert
    with seeded_enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(AccessRequest)) == before
