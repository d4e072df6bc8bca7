"""The researcher's path through the portal in Chromium, by clicking: find data in the catalog, start a
project, request access (and see a refused form keep its values), withdraw a request, watch a grant's
budget burn down after DP releases, and download a released egress file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import func, select

from enclave_api.api.app import create_app
from enclave_api.models import AccessRequest, Grant, Project
from enclave_api.services.egress import verify_manifest
from tests.conftest import audit_events, bearer, session_token
from tests.portal.support import SQLITE_ONLY, Live, login

pytestmark = SQLITE_ONLY

PROJECT_TITLE = "HER2-positive outcomes across hospitals"
PAYLOAD = "<img src=x onerror=alert(1)><script>alert(1)</script>"
COUNT = {"aggregates": [{"fn": "count", "as": "n"}]}


def _tokens(live: Live) -> dict[str, str]:
    tokens: dict[str, str] = json.loads((live.enclave.data_dir / "demo-tokens.json").read_text())
    return tokens


def _demo_project(live: Live) -> str:
    with live.enclave.read() as session:
        return session.scalars(select(Project.id).where(Project.title == PROJECT_TITLE)).one()


def _dialogs(page: Page) -> list[str]:
    seen: list[str] = []

    def record(dialog: Dialog) -> None:
        seen.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return seen


def test_researcher_searches_the_catalog_and_opens_a_dataset(page: Page, live: Live) -> None:
    login(page, live, "researcher", "/portal/catalog")
    expect(page.get_by_role("heading", name="Data catalog")).to_be_visible()
    expect(page.get_by_text("4 of 4 datasets shown.")).to_be_visible()

    # By a column name: the three registries have her2_status, WDBC does not.
    page.get_by_label("Column name", exact=True).fill("HER2")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("3 of 4 datasets shown.")).to_be_visible()
    for hospital in ("Hanbit Cancer Center", "Dasom University Hospital", "Mirae Oncology Institute"):
        expect(page.get_by_role("heading", name=hospital, exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Wisconsin Diagnostic Breast Cancer (WDBC)")).to_have_count(0)
    expect(page.get_by_text("Matching columns: her2_status")).to_have_count(3)

    # By hospital and tier.
    page.get_by_label("Column name", exact=True).fill("")
    page.get_by_label("Hospital", exact=True).select_option(label="Hanbit Cancer Center")
    page.get_by_label("Tier", exact=True).select_option(label="Enclave")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("2 of 4 datasets shown.")).to_be_visible()
    expect(page.get_by_role("heading", name="Dasom University Hospital")).to_have_count(0)
    page.get_by_label("Tier", exact=True).select_option(label="Query only")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("No dataset matches these filters.")).to_be_visible()

    # By text in a description, then open the dataset.
    page.get_by_role("link", name="Clear filters").click()
    page.get_by_label("Search text", exact=True).fill("fine-needle")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_text("1 of 4 datasets shown.")).to_be_visible()
    page.get_by_role("link", name="Wisconsin Diagnostic Breast Cancer (WDBC)").click()
    expect(page.get_by_role("heading", name="Wisconsin Diagnostic Breast Cancer (WDBC)")).to_be_visible()
    expect(page.get_by_text("Pseudonymised records inside your notebook session")).to_be_visible()
    diagnosis = page.get_by_role("row", name=re.compile(r"^diagnosis\b"))
    expect(diagnosis).to_contain_text("malignant, benign")
    expect(diagnosis).to_contain_text("Sensitive clinical attribute")
    expect(page.get_by_text(re.compile(r"ε 3\.0 of 3\.0 left"))).to_be_visible()  # the seeded grant

    # A registry: direct identifiers are explained, and the pending request is shown.
    page.goto(live.url("/portal/catalog/dasom_registry"))
    expect(page.get_by_role("row", name=re.compile(r"^rrn\b"))).to_contain_text("never reaches a notebook")
    expect(page.get_by_text("None of your grants covers this dataset.")).to_be_visible()
    expect(page.get_by_text(re.compile("is pending since"))).to_be_visible()


def test_researcher_starts_a_project_and_requests_access_from_a_dataset_page(page: Page, live: Live) -> None:
    login(page, live, "researcher", "/portal/projects")
    page.get_by_label("Title", exact=True).fill("Ki-67 and recurrence")
    page.get_by_label("Purpose", exact=True).fill("Does Ki-67 predict survival within stage II?")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name="Ki-67 and recurrence")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text(re.compile("Project created"))
    with live.enclave.read() as session:
        project = session.scalars(select(Project).where(Project.title == "Ki-67 and recurrence")).one()
        assert project.owner_id == "minji.park"
    assert audit_events(live.enclave, "project.created")[-1]["subject"]["project"] == project.id

    page.get_by_role("link", name="Catalog", exact=True).click()
    page.get_by_role("link", name="Mirae Oncology Institute breast cancer registry (synthetic)").click()
    page.get_by_role("link", name="Request access").click()
    expect(page.get_by_label("Dataset", exact=True)).to_have_value("mirae_registry")
    page.get_by_label("Project", exact=True).select_option(label="Ki-67 and recurrence")
    page.get_by_label("Purpose", exact=True).fill("Ki-67 against survival, stage II only.")
    page.get_by_label("Privacy budget ε (epsilon)", exact=True).fill("2")
    page.get_by_label("Duration in days", exact=True).fill("30")
    page.get_by_label("I accept the data use agreement", exact=True).check()
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("status")).to_have_text(re.compile("Access request sent"))
    with live.enclave.read() as session:
        request = session.scalars(select(AccessRequest).where(AccessRequest.project_id == project.id)).one()
    assert (request.dataset_id, request.status, request.epsilon, request.days) == (
        "mirae_registry",
        "pending",
        2.0,
        30,
    )
    row = page.locator(f"#request-{request.id}")
    expect(row).to_contain_text("Mirae Oncology Institute")
    expect(row).to_contain_text("pending")
    created = audit_events(live.enclave, "access_request.created")[-1]
    assert created["actor"] == "minji.park"
    assert created["subject"] == {
        "access_request": request.id,
        "project": project.id,
        "dataset": "mirae_registry",
    }


def test_a_refused_request_form_shows_the_error_and_keeps_the_values(page: Page, live: Live) -> None:
    cap = live.enclave.settings.max_epsilon
    with live.enclave.read() as session:
        before = session.scalar(select(func.count()).select_from(AccessRequest))
    login(page, live, "researcher", "/portal/requests/new?dataset=wdbc")
    page.get_by_label("Purpose", exact=True).fill("More budget, please.")
    page.get_by_label("Privacy budget ε (epsilon)", exact=True).fill(str(cap * 5))
    page.get_by_label("Duration in days", exact=True).fill("45")
    page.get_by_label("I accept the data use agreement", exact=True).check()
    page.get_by_role("button", name="Send request").click()

    expect(page.get_by_role("alert")).to_contain_text("The request was not sent")
    epsilon = page.get_by_label("Privacy budget ε (epsilon)", exact=True)
    expect(page.locator("#epsilon-error")).to_have_text(re.compile(rf"epsilon must be in \(0, {cap}\]"))
    expect(epsilon).to_have_attribute("aria-invalid", "true")
    expect(epsilon).to_have_value(str(cap * 5))
    expect(page.get_by_label("Purpose", exact=True)).to_have_value("More budget, please.")
    expect(page.get_by_label("Duration in days", exact=True)).to_have_value("45")
    expect(page.get_by_label("Dataset", exact=True)).to_have_value("wdbc")
    expect(page.get_by_label("I accept the data use agreement", exact=True)).to_be_checked()
    with live.enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(AccessRequest)) == before

    # Corrected, the same form goes through.
    epsilon.fill("1.5")
    page.get_by_role("button", name="Send request").click()
    expect(page.get_by_role("status")).to_have_text(re.compile("Access request sent"))
    assert audit_events(live.enclave, "access_request.created")[-1]["details"]["epsilon"] == 1.5


def test_researcher_withdraws_a_pending_request(page: Page, live: Live) -> None:
    login(page, live, "researcher", "/portal/requests")
    row = page.get_by_role("row").filter(has_text="Dasom University Hospital")
    expect(row).to_contain_text("pending")
    row.get_by_role("link", name=re.compile("^Withdraw")).click()
    expect(page.get_by_role("heading", name="Withdraw access request")).to_be_visible()
    page.get_by_role("button", name="Withdraw request").click()

    expect(page.get_by_role("status")).to_have_text("The access request was withdrawn.")
    expect(page.get_by_role("row").filter(has_text="Dasom University Hospital")).to_contain_text("withdrawn")
    with live.enclave.read() as session:
        request = session.scalars(
            select(AccessRequest).where(AccessRequest.dataset_id == "dasom_registry")
        ).one()
    assert request.status == "withdrawn"
    withdrawn = audit_events(live.enclave, "access_request.withdrawn")
    assert [(e["actor"], e["subject"]["access_request"]) for e in withdrawn] == [("minji.park", request.id)]


def test_grant_shows_the_remaining_budget_and_burn_down_after_two_releases(page: Page, live: Live) -> None:
    api = TestClient(create_app(enclave=live.enclave))
    notebook = session_token(live.enclave, "minji.park")
    releases = []
    for epsilon in (0.5, 0.25):
        response = api.post(
            "/v1/queries",
            json={"dataset_id": "wdbc", "epsilon": epsilon, "query": COUNT},
            headers=bearer(notebook),
        )
        assert response.status_code == 200, response.text
        releases.append(response.json()["release_id"])
    with live.enclave.read() as session:
        grant = session.scalars(select(Grant).where(Grant.dataset_id == "wdbc")).one()
    remaining = grant.epsilon_total - grant.epsilon_spent
    assert remaining == 2.25

    login(page, live, "researcher", "/portal/grants")
    section = page.locator(f"#grant-{grant.id}")
    expect(
        section.get_by_role("heading", name=re.compile("Wisconsin Diagnostic Breast Cancer"))
    ).to_contain_text("active")
    epsilon_row = section.get_by_role("row", name=re.compile("^ε"))
    expect(epsilon_row.get_by_role("cell").nth(2)).to_have_text(f"{remaining:g}")  # the DB's value
    expect(epsilon_row.get_by_role("cell").nth(1)).to_have_text(f"{grant.epsilon_spent:g}")
    plot = section.get_by_role("img", name=re.compile(r"0\.75 of 3 ε spent \(2 releases\)"))
    expect(plot).to_be_visible()
    expect(section.locator("figure.plot polyline")).to_have_count(1)
    expect(section.locator("figure.plot table tr")).to_have_count(3)  # header + one row per release
    for release_id in releases:
        expect(section.get_by_role("row", name=re.compile(release_id))).to_contain_text("count")
    section.get_by_text("Query from a notebook").click()
    expect(section.locator("pre")).to_contain_text("from enclave_api.client import connect")
    expect(section.locator("pre")).to_contain_text(f'grant_id="{grant.id}"')


def test_researcher_downloads_a_released_egress_file(page: Page, live: Live, tmp_path: Path) -> None:
    dialogs = _dialogs(page)
    api = TestClient(create_app(enclave=live.enclave))
    tokens = _tokens(live)
    project = _demo_project(live)
    # The Hanbit registry joins the project: its egress needs two independent Hanbit reviews.
    asked = api.post(
        "/v1/access-requests",
        json={"project_id": project, "dataset_id": "hanbit_registry", "purpose": "Survival by stage.",
              "epsilon": 2.0, "delta": 1e-6, "days": 30, "dua_accepted": True},
        headers=bearer(tokens["researcher"]),
    )  # fmt: skip
    assert asked.status_code == 201, asked.text
    decided = api.post(
        f"/v1/access-requests/{asked.json()['id']}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens["custodian"]),
    )
    assert decided.status_code == 200, decided.text
    summary = b"Stage II survival at five years: 91% (DP, epsilon 1).\n"
    odd_name = "<img src=x onerror=alert(1)>.txt"
    submitted = api.post(
        "/v1/egress-requests",
        files=[
            ("files", ("survival_summary.txt", summary)),
            ("files", (odd_name, b"Notes for the report.\n")),
        ],
        data={"justification": PAYLOAD, "project_id": project},
        headers=bearer(session_token(live.enclave, "minji.park")),
    )
    assert submitted.status_code == 201, submitted.text
    request_id = submitted.json()["id"]
    assert submitted.json()["status"] == "in_review", submitted.text

    login(page, live, "researcher", "/portal/egress")
    page.get_by_role("link", name=request_id).click()
    expect(page.get_by_role("heading", name=re.compile(request_id))).to_contain_text("in review")
    expect(page.get_by_text("Still needed: 2 approvals from Hanbit Cancer Center.")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("^Download"))).to_have_count(0)

    for custodian in ("custodian", "custodian1b"):
        review = api.post(
            f"/v1/egress-requests/{request_id}/reviews",
            json={"decision": "approve", "comment": f"Fine by {custodian}."},
            headers=bearer(tokens[custodian]),
        )
        assert review.status_code == 200, review.text
    assert review.json()["status"] == "released"

    page.reload()
    expect(page.get_by_role("heading", name=re.compile(request_id))).to_contain_text("released")
    expect(page.get_by_role("row", name=re.compile("Fine by custodian1b"))).to_contain_text(
        "Hanbit Cancer Center"
    )
    with page.expect_download() as info:
        page.get_by_role("link", name="Download survival_summary.txt").click()
    download = info.value
    assert download.suggested_filename == "survival_summary.txt"
    assert Path(download.path()).read_bytes() == summary
    downloaded = audit_events(live.enclave, "egress.downloaded")
    assert [(e["actor"], e["details"]["name"]) for e in downloaded] == [
        ("minji.park", "survival_summary.txt")
    ]

    # The file with a markup name is shown as text and saved under a harmless name.
    expect(page.get_by_text(odd_name, exact=True).first).to_be_visible()
    expect(page.get_by_text(PAYLOAD)).to_be_visible()  # the justification, inert
    with page.expect_download() as info:
        page.get_by_role("link", name=f"Download {odd_name}").click()
    assert info.value.suggested_filename == "img_src_x_onerror_alert_1_.txt"

    with page.expect_download() as info:
        page.get_by_role("link", name="Download the signed manifest").click()
    signed = json.loads(Path(info.value.path()).read_text())
    assert signed["manifest"]["egress_request"] == request_id
    assert verify_manifest(
        signed["manifest"], signed["signature"], live.enclave.secrets.signing_key.public_key()
    )
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("main script").count() == 0
    assert dialogs == []


def test_a_payload_in_a_project_is_shown_inert(page: Page, live: Live) -> None:
    dialogs = _dialogs(page)
    login(page, live, "researcher", "/portal/projects")
    page.get_by_label("Title", exact=True).fill(PAYLOAD)
    page.get_by_label("Purpose", exact=True).fill(f"Purpose {PAYLOAD}")
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("heading", name=PAYLOAD)).to_be_visible()
    expect(page.get_by_text(f"Purpose {PAYLOAD}")).to_be_visible()
    assert page.locator("img[src=x]").count() == 0
    page.get_by_role("link", name="Projects", exact=True).click()
    expect(page.get_by_role("link", name=PAYLOAD)).to_be_visible()
    page.goto(live.url("/portal/requests/new"))
    expect(page.get_by_label("Project", exact=True).locator("option", has_text=PAYLOAD)).to_have_count(1)
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("main script").count() == 0
    assert dialogs == []
    with live.enclave.read() as session:
        assert (
            session.scalars(select(Project.purpose).where(Project.title == PAYLOAD)).one()
            == f"Purpose {PAYLOAD}"
        )
