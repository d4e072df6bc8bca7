"""The custodian's main paths in Chromium, by clicking: access decisions, revocation, dataset
registration, egress reviews (two approvals → released; changes requested), payloads shown inert,
and another hospital's custodian refused."""

from __future__ import annotations

import base64
import io
import re
from datetime import timedelta
from pathlib import Path

import nbformat
from fastapi.testclient import TestClient
from PIL import Image, ImageDraw
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import select

from enclave_api.api.app import create_app
from enclave_api.client import EnclaveClient
from enclave_api.models import AccessRequest, Dataset, EgressRequest, Grant
from tests.conftest import audit_events, bearer, session_token
from tests.portal.support import SQLITE_ONLY, Live, login
from tests.portal.test_portal_custodian_authz import (
    REGISTRY,
    access_request,
    api_tokens,
    project_with_grant,
    submit_egress,
)

pytestmark = SQLITE_ONLY

PAYLOAD = "<img src=x onerror=alert(1)><script>alert(1)</script>"
#: A file name the airlock accepts (no '/'), still markup if a page failed to escape it.
PAYLOAD_NAME = "<img src=x onerror=alert(1)>.txt"


def _watch_dialogs(page: Page) -> list[str]:
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return dialogs


def _inert(page: Page, dialogs: list[str]) -> None:
    expect(page.locator("img[src=x]")).to_have_count(0)
    expect(page.locator("script")).to_have_count(0)
    assert dialogs == []


def _log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have logged out.")).to_be_visible()


# ---------------------------------------------------------------------------------------------------
# Access requests and grants


def test_custodian_approves_the_pending_request_with_a_lower_epsilon(page: Page, live: Live) -> None:
    with live.enclave.read() as session:
        pending = session.scalars(select(AccessRequest).where(AccessRequest.status == "pending")).one()
    login(page, live, "custodian2", "/portal/review/access")  # Dasom's custodian decides for its registry
    card = page.locator("section.custodian-request")
    expect(card).to_have_count(1)
    expect(card.get_by_role("heading")).to_have_text("HER2-positive outcomes across hospitals")
    expect(card).to_contain_text("Survival by HER2 status and treatment.")
    expect(card).to_contain_text("ε 2.0, δ 1e-06, for 60 days")
    expect(card).to_contain_text("Park Minji")
    expect(card).to_contain_text("First request to your hospital.")
    card.get_by_role("link", name="Review and decide").click()

    # More than requested: the service refuses, the page says why and keeps what was typed.
    page.get_by_label("Granted ε").fill("5")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("alert")).to_contain_text("may lower the requested epsilon, not raise it")
    expect(page.get_by_label("Granted ε")).to_have_value("5")
    with live.enclave.read() as session:
        assert session.get_one(AccessRequest, pending.id).status == "pending"

    page.get_by_label("Granted ε").fill("1.5")
    page.get_by_label("Granted days").fill("30")
    page.get_by_label("Note to the researcher").fill("Approved with a smaller budget for a first analysis.")
    page.get_by_role("button", name="Approve").click()
    expect(page.get_by_role("status")).to_have_text("The request was approved and a grant created.")
    expect(page.locator("section.custodian-request")).to_have_count(0)
    expect(page.get_by_role("table")).to_contain_text("approved")

    with live.enclave.read() as session:
        decided = session.get_one(AccessRequest, pending.id)
        assert decided.status == "approved" and decided.decided_by == "seoyeon.lee"
        grant = session.get_one(Grant, decided.grant_id)
        assert grant.epsilon_total == 1.5
        assert grant.expires_at - grant.starts_at == timedelta(days=30)
    decision = audit_events(live.enclave, "access_request.decided")[-1]
    assert decision["actor"] == "seoyeon.lee"
    assert decision["details"] == {
        "decision": "approve",
        "reason": "Approved with a smaller budget for a first analysis.",
        "epsilon": 1.5,
        "delta": 1e-6,
        "days": 30,
    }
    created = audit_events(live.enclave, "grant.created")[-1]
    assert created["subject"]["grant"] == grant.id and created["details"]["epsilon_total"] == 1.5


def test_custodian_denies_a_request_with_a_reason_and_payloads_stay_text(page: Page, live: Live) -> None:
    _, request_id = access_request(live.enclave, "dasom_registry", purpose=PAYLOAD, title=PAYLOAD)
    dialogs = _watch_dialogs(page)
    login(page, live, "custodian2", "/portal/review/access")
    card = page.locator("section.custodian-request", has=page.get_by_role("heading", name=PAYLOAD))
    expect(card.get_by_role("heading")).to_have_text(PAYLOAD)
    expect(card.get_by_text(PAYLOAD, exact=True)).to_have_count(2)  # title heading and purpose
    _inert(page, dialogs)
    card.get_by_role("link", name="Review and decide").click()
    expect(page.get_by_text(PAYLOAD, exact=True).first).to_be_visible()
    _inert(page, dialogs)

    page.get_by_label("Reason for the denial").fill("The purpose does not name an analysis. " + PAYLOAD)
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("status")).to_have_text(
        "The request was denied; the researcher sees your reason."
    )
    recent = page.get_by_role("table", name="The last")
    expect(recent).to_contain_text("The purpose does not name an analysis. " + PAYLOAD)
    _inert(page, dialogs)

    with live.enclave.read() as session:
        denied = session.get_one(AccessRequest, request_id)
        assert denied.status == "denied" and denied.grant_id is None
        assert denied.decision_reason == "The purpose does not name an analysis. " + PAYLOAD
    event = audit_events(live.enclave, "access_request.decided")[-1]
    assert event["subject"]["access_request"] == request_id
    assert event["details"] == {"decision": "deny", "reason": denied.decision_reason}


def test_custodian_sees_budget_burn_down_and_revokes_a_grant(page: Page, live: Live) -> None:
    client = TestClient(create_app(enclave=live.enclave))
    query = {"dataset_id": "wdbc", "epsilon": 0.5, "query": {"aggregates": [{"fn": "count", "as": "n"}]}}
    released = client.post("/v1/queries", json=query, headers=bearer(api_tokens(live.enclave)["researcher"]))
    assert released.status_code == 200, released.text
    with live.enclave.read() as session:
        grant_id = session.scalars(select(Grant.id).where(Grant.dataset_id == "wdbc")).one()

    login(page, live, "custodian", "/portal/review/grants")
    expect(page.get_by_role("img", name="Access requests decided per week")).to_be_visible()
    section = page.locator("section.custodian-grant", has_text=grant_id)
    expect(section).to_contain_text("ε 2.5 of 3.0")
    expect(section.get_by_role("img", name=f"Privacy budget spent on grant {grant_id}")).to_be_visible()
    expect(section.get_by_role("img", name=f"Privacy budget spent on grant {grant_id}")).to_contain_text(
        "0.5 of 3 ε spent (1 release)"
    )
    section.get_by_role("link", name=f"Revoke grant {grant_id}").click()

    page.get_by_label("Reason for revoking").fill("The project ended early.")
    page.get_by_role("button", name="Revoke grant").click()
    expect(page.get_by_role("status")).to_contain_text("The grant was revoked.")
    section = page.locator("section.custodian-grant", has_text=grant_id)
    expect(section).to_contain_text("revoked")
    expect(section.get_by_role("link", name=f"Revoke grant {grant_id}")).to_have_count(0)

    with live.enclave.read() as session:
        grant = session.get_one(Grant, grant_id)
        assert grant.revoked_at is not None and grant.revoked_by == "jiho.kim"
        assert grant.revoke_reason == "The project ended early."
    event = audit_events(live.enclave, "grant.revoked")[-1]
    assert event["subject"]["grant"] == grant_id and event["details"]["reason"] == "The project ended early."


# ---------------------------------------------------------------------------------------------------
# Datasets

SMALL_CSV = b"code,age,stage\nA1,54,II\nA2,61,I\nA3,47,III\n"
METADATA = """\
id: portal_cohort
title: Portal test cohort (synthetic)
custodian_org: hanbit-cancer-center
tier: {tier}
columns:
  - {{name: code, type: str, role: direct_identifier}}
  - {{name: age, type: int, role: quasi_identifier, bounds: [18, 100]}}
  - {{name: {third}, type: category, role: attribute, categories: ["0", "I", "II", "III", "IV"]}}
"""


def test_custodian_registers_a_dataset_after_fixing_its_metadata(page: Page, live: Live) -> None:
    login(page, live, "custodian", "/portal/review/datasets")
    page.get_by_role("link", name="Register a dataset").click()

    def send(metadata: str) -> None:
        page.get_by_label("Data file (CSV or Parquet)").set_input_files(
            {"name": "cohort.csv", "mimeType": "text/csv", "buffer": SMALL_CSV}
        )
        page.get_by_label("Metadata (YAML or JSON)").fill(metadata)
        page.get_by_role("button", name="Register dataset").click()

    bad_tier = METADATA.format(tier="public", third="stage")
    send(bad_tier)
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("The dataset was not registered.")
    expect(alert).to_contain_text("Field: tier")
    expect(alert).to_contain_text("metadata invalid at tier")
    expect(page.get_by_label("Metadata (YAML or JSON)")).to_have_value(bad_tier)

    send(METADATA.format(tier="query_only", third="grade"))  # the file has 'stage', not 'grade'
    expect(page.get_by_role("alert")).to_contain_text("Field: grade")
    expect(page.get_by_role("alert")).to_contain_text("column grade is declared in the metadata but missing")
    with live.enclave.read() as session:
        assert session.get(Dataset, "portal_cohort") is None

    send(METADATA.format(tier="query_only", third="stage"))
    expect(page.get_by_role("status")).to_have_text("The dataset was encrypted and registered.")
    card = page.locator(
        "section.custodian-dataset", has=page.get_by_role("heading", name="Portal test cohort")
    )
    expect(card).to_contain_text("portal_cohort")
    expect(card).to_contain_text("query_only")
    with live.enclave.read() as session:
        dataset = session.get_one(Dataset, "portal_cohort")
        assert dataset.row_count == 3 and dataset.custodian_org_id == "hanbit-cancer-center"
    event = audit_events(live.enclave, "dataset.registered")[-1]
    assert event["actor"] == "jiho.kim" and event["subject"]["dataset"] == "portal_cohort"
    assert event["details"]["rows"] == 3


# ---------------------------------------------------------------------------------------------------
# Egress


def _figure(text: str) -> bytes:
    image = Image.new("RGB", (480, 120), "white")
    ImageDraw.Draw(image).text((10, 50), text, fill="black")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def _notebook(figure: bytes) -> bytes:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Survival by stage\n<b>bold?</b> counts are DP releases."),
        nbformat.v4.new_code_cell(
            "summary.plot()",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        "text/plain": "<Figure size 640x480>",
                        "text/html": "<table><tr><td>html output</td></tr></table>",
                        "image/png": base64.b64encode(figure).decode(),
                    },
                )
            ],
        ),
    ]
    return nbformat.writes(nb).encode()


def test_two_hanbit_custodians_approve_an_egress_request_and_it_is_released(
    page: Page, live: Live, tmp_path: Path
) -> None:
    project = project_with_grant(live.enclave)
    api = TestClient(create_app(enclave=live.enclave))
    researcher = EnclaveClient("http://testserver", session_token(live.enclave, "minji.park"), http=api)
    release = researcher.query(REGISTRY).group_by("stage").count("n").run(epsilon=1.0)
    table, manifest = researcher.export(release, tmp_path / "stage_counts.csv")
    (tmp_path / "km_curve.png").write_bytes(_figure("Kaplan-Meier survival by stage"))
    (tmp_path / "analysis.ipynb").write_bytes(_notebook(_figure("figure in a notebook")))
    (tmp_path / "small_counts.csv").write_text("grade,n\nlow,3\nhigh,40\n")
    submitted = researcher.submit_egress(
        [
            table,
            manifest,
            tmp_path / "km_curve.png",
            tmp_path / "analysis.ipynb",
            tmp_path / "small_counts.csv",
        ],
        "Survival figures for the consortium report.",
        project_id=project,
    )
    assert submitted["status"] == "in_review", submitted["checks"]
    request_id = submitted["id"]

    login(page, live, "custodian", "/portal/review/egress")
    row = page.get_by_role("row", name=request_id)
    expect(row).to_contain_text("2 (2 from your hospital)")
    expect(row).to_contain_text("needed")
    row.get_by_role("link", name=request_id).click()

    # Everything on one page: the summary, the DP badge, the files in place with their findings.
    expect(page.get_by_role("heading", name=f"Egress request {request_id}")).to_be_visible()
    expect(page.get_by_text("Survival figures for the consortium report.")).to_be_visible()
    expect(page.locator(".check-counts")).to_contain_text("1 file with verified DP provenance")
    dp_file = page.locator(
        "section.egress-file", has=page.get_by_role("heading", name="stage_counts.csv", exact=True)
    )
    expect(dp_file.get_by_text(f"DP provenance verified: release {release.release_id}")).to_be_visible()
    expect(dp_file.get_by_role("table")).to_contain_text("stage")
    small = page.locator("section.egress-file", has=page.get_by_role("heading", name="small_counts.csv"))
    flagged = small.locator("td.finding")
    expect(flagged).to_have_count(1)
    expect(flagged).to_contain_text("3")
    expect(small.locator("ul.findings")).to_contain_text("sdc:threshold")
    expect(small.locator("ul.findings")).to_contain_text("row 1")
    figure = page.locator("section.egress-file", has=page.get_by_role("heading", name="km_curve.png"))
    expect(figure.locator("img.egress-image")).to_have_attribute(
        "src", re.compile(r"^data:image/png;base64,")
    )
    notebook = page.locator("section.egress-file", has=page.get_by_role("heading", name="analysis.ipynb"))
    expect(notebook.locator(".notebook-cell")).to_have_count(2)
    expect(notebook.locator("pre.output-source")).to_have_text("<table><tr><td>html output</td></tr></table>")
    expect(notebook.locator("table", has_text="html output")).to_have_count(0)
    expect(notebook.locator("b")).to_have_count(0)
    expect(notebook.locator("img.egress-image")).to_have_count(1)
    expect(page.get_by_role("table", name="DP releases of the requester")).to_contain_text(release.release_id)

    page.get_by_role("radio", name="Approve").check()
    page.get_by_label("Comment").fill("Counts are DP; the figure shows no small groups.")
    page.get_by_role("button", name="Submit review").click()
    expect(page.get_by_role("status")).to_contain_text("Your approval was recorded.")
    expect(page.locator("#decide")).to_contain_text("You already reviewed round 1")
    with live.enclave.read() as session:
        assert session.get_one(EgressRequest, request_id).status == "in_review"

    _log_out(page)
    login(page, live, "custodian1b", "/portal/review/egress")
    page.get_by_role("row", name=request_id).get_by_role("link", name=request_id).click()
    expect(page.locator("#decide")).not_to_contain_text("You already reviewed")
    page.get_by_role("radio", name="Approve").check()
    page.get_by_role("button", name="Submit review").click()
    expect(page.get_by_role("status")).to_contain_text("the files were released to the requester")
    expect(page.get_by_role("heading", name=f"Egress request {request_id}")).to_contain_text("released")

    with live.enclave.read() as session:
        assert session.get_one(EgressRequest, request_id).status == "released"
    reviews = [
        e
        for e in audit_events(live.enclave, "egress.reviewed")
        if e["subject"]["egress_request"] == request_id
    ]
    assert [(e["actor"], e["details"]["decision"]) for e in reviews] == [
        ("jiho.kim", "approve"),
        ("eunji.song", "approve"),
    ]
    assert [e["subject"]["egress_request"] for e in audit_events(live.enclave, "egress.released")] == [
        request_id
    ]
    # Every look at the quarantined files is in the log, before the bytes were read.
    viewers = {e["actor"] for e in audit_events(live.enclave, "egress.viewed")}
    assert viewers == {"jiho.kim", "eunji.song"}


def test_payloads_are_inert_other_hospitals_are_refused_and_changes_can_be_requested(
    page: Page, live: Live
) -> None:
    files = {
        PAYLOAD_NAME: b"mean tumour size 14.1 mm\n",
        "notes.csv": b"group,n,note\nA,40,<script>alert(1)</script>\n",
    }
    submitted = submit_egress(live.enclave, files, PAYLOAD)
    assert submitted["status"] == "in_review", submitted["checks"]
    request_id = submitted["id"]
    dialogs = _watch_dialogs(page)

    # Dasom's custodian: not in their queue, and the page itself is refused; nothing changes.
    login(page, live, "custodian2", "/portal/review/egress?status=all")
    expect(page.get_by_role("link", name=request_id)).to_have_count(0)
    page.goto(live.url(f"/portal/review/egress/{request_id}"))
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("does not exist")
    expect(page.get_by_text(PAYLOAD)).to_have_count(0)
    with live.enclave.read() as session:
        assert session.get_one(EgressRequest, request_id).status == "in_review"
    _log_out(page)

    # Hanbit's custodian sees every payload as text.
    login(page, live, "custodian", "/portal/review/egress")
    page.get_by_role("row", name=request_id).get_by_role("link", name=request_id).click()
    expect(page.locator("dd.justification")).to_have_text(PAYLOAD)
    expect(page.get_by_role("heading", name=PAYLOAD_NAME, exact=True)).to_be_visible()
    notes = page.locator("section.egress-file", has=page.get_by_role("heading", name="notes.csv"))
    expect(notes.get_by_role("cell", name="<script>alert(1)</script>")).to_be_visible()
    _inert(page, dialogs)

    # Requesting changes needs a comment: the page says so and keeps the choice.
    page.get_by_role("radio", name="Request changes").check()
    page.get_by_role("button", name="Submit review").click()
    expect(page.get_by_role("alert")).to_contain_text("rejecting or requesting changes needs a comment")
    expect(page.get_by_role("radio", name="Request changes")).to_be_checked()
    page.get_by_label("Comment").fill("Please round the counts to 5 and drop the notes column.")
    page.get_by_role("button", name="Submit review").click()
    expect(page.get_by_role("status")).to_have_text(
        "Changes were requested; the requester can submit a new round."
    )
    _inert(page, dialogs)

    with live.enclave.read() as session:
        assert session.get_one(EgressRequest, request_id).status == "changes_requested"
    event = audit_events(live.enclave, "egress.reviewed")[-1]
    assert event["actor"] == "jiho.kim"
    assert event["details"]["decision"] == "changes_requested"
    assert event["details"]["status"] == "changes_requested"
