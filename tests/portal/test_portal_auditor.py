"""The auditor's path through the portal in Chromium: search the log and page through it, prove an
event, verify the whole log (and see tampering named), export and verify offline with the real CLI,
read the egress log and a dataset's access history — with stored HTML/JS payloads shown as text."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Dialog, Page, expect
from sqlalchemy import update

from audit import merkle
from audit.canonical import canonical_json
from audit.store import AuditEvent
from enclave_api.api.app import create_app
from tests.conftest import audit_events, bearer, session_token
from tests.portal.support import SQLITE_ONLY, Live, field, login

pytestmark = SQLITE_ONLY

PAYLOAD = "<img src=x onerror=alert(1)><script>alert(1)</script>"
ENCLAVE_CLI = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "enclave"
REGISTRY = "hanbit_registry"  # two independent Hanbit reviews release an egress request


@pytest.fixture
def api(live: Live) -> Iterator[TestClient]:
    """The API of the live enclave, for the other roles' steps that make something to audit."""
    with TestClient(create_app(enclave=live.enclave)) as client:
        yield client


@pytest.fixture
def dialogs(page: Page) -> list[Dialog]:
    """Every JavaScript dialog the page opened (a payload that ran would open one)."""
    opened: list[Dialog] = []

    def record(dialog: Dialog) -> None:
        opened.append(dialog)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def _tokens(live: Live) -> dict[str, str]:
    doc: dict[str, str] = json.loads((live.enclave.data_dir / "demo-tokens.json").read_text())
    return doc


def _failed_logins(api: TestClient, usernames: list[str]) -> None:
    """Wrong passwords through the portal's login form: each writes an ``auth.login_failed`` event."""
    for username in usernames:
        form = api.get("/portal/login")
        sent = api.post(
            "/portal/login",
            data={"username": username, "password": "wrong", "nonce": field(form.text, "nonce")},
        )
        assert sent.status_code == 401


def _indices(page: Page) -> list[int]:
    cells = page.locator("table.audit-events tbody tr td:first-child").all_inner_texts()
    return [int(text) for text in cells]


def _assert_inert(page: Page, dialogs: list[Dialog]) -> None:
    expect(page.get_by_text(PAYLOAD).first).to_be_visible()
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []


def test_auditor_searches_pages_and_proves_an_event(
    page: Page, live: Live, api: TestClient, dialogs: list[Dialog]
) -> None:
    _failed_logins(api, [f"probe{i}" for i in range(26)] + [PAYLOAD])
    login(page, live, "auditor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit events").click()
    page.get_by_label("Event type").select_option("auth.login_failed")
    page.get_by_label("Actor").fill("anonymous")
    page.get_by_label("Per page").select_option("25")
    page.get_by_role("button", name="Search").click()

    rows = page.locator("table.audit-events tbody tr")
    expect(rows).to_have_count(25)
    first = _indices(page)
    assert first == sorted(first, reverse=True)  # newest first
    assert set(page.locator("table.audit-events tbody tr td:nth-child(3)").all_inner_texts()) == {
        "auth.login_failed"
    }
    assert set(page.locator("table.audit-events tbody tr td:nth-child(4)").all_inner_texts()) == {"anonymous"}
    # The newest failed login carried the payload: shown as text, nothing of it runs.
    _assert_inert(page, dialogs)

    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(2)
    second = _indices(page)
    assert max(second) < min(first)
    expect(page.get_by_text("End of the results.")).to_be_visible()
    expected = [e["index"] for e in audit_events(live.enclave, "auth.login_failed")]
    assert sorted(first + second) == expected

    # Oldest first, as the API pages.
    page.get_by_label("Order").select_option("oldest")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(25)
    assert _indices(page) == expected[:25]

    # Open an event: its bytes, its leaf and the inclusion proof against the newest checkpoint.
    target = expected[3]
    page.get_by_role("link", name=f"Event {target}", exact=True).click()
    expect(page.get_by_role("heading", name=f"Audit event {target}")).to_be_visible()
    expect(page.get_by_text("Verified", exact=True)).to_be_visible()
    expect(page.get_by_text("This event is in the signed log")).to_be_visible()
    stored = next(e for e in audit_events(live.enclave, "auth.login_failed") if e["index"] == target)
    expect(page.locator("pre.canonical")).to_have_text(canonical_json(stored).decode())
    steps = page.locator("table.proof tbody tr")
    assert steps.count() >= 5  # a log of 50+ events: a path of at least ⌈log2⌉ - 1 hashes


def test_the_whole_log_verifies_and_tampering_is_named(page: Page, live: Live, dialogs: list[Dialog]) -> None:
    login(page, live, "auditor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Integrity").click()
    facts = page.locator("dl.facts").first
    expect(facts).to_contain_text("Signature verified with the enclave's public key")
    expect(facts.locator("dd").nth(5)).to_have_text("yes")
    page.get_by_role("button", name="Verify the whole log now").click()
    expect(page.get_by_text("Intact", exact=True)).to_be_visible()

    # Someone with database access rewrites event 12 (and its leaf hash, to hide it).
    with live.enclave.read() as session:
        row = session.get_one(AuditEvent, 12)
        event: dict[str, Any] = json.loads(row.canonical)
    event["actor"] = "somebody-else"
    forged = canonical_json(event)
    with live.enclave.db.write() as session:
        session.execute(
            update(AuditEvent)
            .where(AuditEvent.index == 12)
            .values(canonical=forged, leaf_hash=merkle.leaf_hash(forged))
        )

    page.get_by_role("button", name="Verify the whole log now").click()
    expect(page.get_by_text("Tampered", exact=True)).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("First bad event: index 12.")
    page.get_by_role("link", name="index 12").click()
    expect(page.get_by_role("heading", name="Audit event 12")).to_be_visible()
    expect(page.get_by_text("Not verified", exact=True)).to_be_visible()
    expect(page.get_by_text("The inclusion proof does not lead to the checkpoint's root")).to_be_visible()
    assert dialogs == []


def test_exports_download_and_verify_offline_with_the_cli(page: Page, live: Live, tmp_path: Path) -> None:
    login(page, live, "auditor", next_path="/portal/audit/integrity")
    command = page.locator("pre.command").inner_text().strip()
    assert (
        command
        == "enclave audit verify --export enclave-audit.jsonl --public-key enclave-audit-public-key.pem"
    )
    with page.expect_download() as got:
        page.get_by_role("link", name="Download the log (JSONL, verifiable)").click()
    download = got.value
    assert download.suggested_filename == "enclave-audit.jsonl"
    download.save_as(tmp_path / download.suggested_filename)
    with page.expect_download() as got:
        page.get_by_role("link", name="Download the public key (PEM)").click()
    got.value.save_as(tmp_path / got.value.suggested_filename)
    with page.expect_download() as got:
        page.get_by_role("link", name="Download events as CSV").click()
    csv_file = tmp_path / "events.csv"
    got.value.save_as(csv_file)
    assert csv_file.read_text(encoding="utf-8").startswith(
        "index,timestamp,type,actor,subject,details,prev_hash"
    )

    # The command the page shows, run as shown, in the download folder.
    args = command.split()
    verified = subprocess.run(
        [str(ENCLAVE_CLI), *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
    # The offline check is real: one changed byte in the export is found.
    lines = (tmp_path / "enclave-audit.jsonl").read_bytes().splitlines(keepends=True)
    assert lines[4].startswith(b'{"event":{') and b'"index":4,' in lines[4]
    lines[4] = lines[4].replace(b'"index":4,', b'"index":40,')
    (tmp_path / "enclave-audit.jsonl").write_bytes(b"".join(lines))
    tampered = subprocess.run(
        [str(ENCLAVE_CLI), *args[1:]], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert tampered.returncode == 1, tampered.stdout + tampered.stderr
    assert "TAMPERED at index 4" in tampered.stdout


def _released_egress(api: TestClient, live: Live) -> str:
    """A researcher's egress request on the Hanbit registry, released after two Hanbit reviews."""
    tokens = _tokens(live)
    researcher = {"Authorization": f"Bearer {session_token(live.enclave, 'minji.park')}"}
    project = api.post(
        "/v1/projects", json={"title": "Egress study", "purpose": "Outcomes"}, headers=researcher
    ).json()["id"]
    request = api.post(
        "/v1/access-requests",
        json={
            "project_id": project,
            "dataset_id": REGISTRY,
            "purpose": "Survival by stage.",
            "epsilon": 3.0,
            "delta": 1e-6,
            "days": 30,
            "dua_accepted": True,
        },
        headers=researcher,
    ).json()["id"]
    decided = api.post(
        f"/v1/access-requests/{request}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens["custodian"]),
    )
    assert decided.status_code == 200, decided.text
    submitted = api.post(
        "/v1/egress-requests",
        files=[("files", ("survival_summary.txt", b"median survival 61 months"))],
        data={"justification": f"Consortium report {PAYLOAD}", "project_id": project},
        headers=researcher,
    )
    assert submitted.status_code == 201, submitted.text
    assert submitted.json()["status"] == "in_review", submitted.text
    egress_id = str(submitted.json()["id"])
    for role, comment in (("custodian", f"Checked {PAYLOAD}"), ("custodian1b", "Fine.")):
        reviewed = api.post(
            f"/v1/egress-requests/{egress_id}/reviews",
            json={"decision": "approve", "comment": comment},
            headers=bearer(tokens[role]),
        )
        assert reviewed.status_code == 200, reviewed.text
    assert reviewed.json()["status"] == "released"
    return egress_id


def test_the_egress_log_shows_who_released_what(
    page: Page, live: Live, api: TestClient, dialogs: list[Dialog]
) -> None:
    egress_id = _released_egress(api, live)
    login(page, live, "auditor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Egress log").click()
    entry = page.get_by_role("article", name=f"Egress request {egress_id} released")
    expect(entry).to_be_visible()
    expect(entry).to_contain_text("minji.park")
    expect(entry).to_contain_text("survival_summary.txt")
    released = audit_events(live.enclave, "egress.released")[-1]
    expect(entry).to_contain_text(released["details"]["files"][0]["sha256"])
    reviews = entry.get_by_role("table", name=f"Reviews of request {egress_id} (round 1)")
    expect(reviews.locator("tbody tr")).to_have_count(2)
    expect(reviews).to_contain_text("jiho.kim")
    expect(reviews).to_contain_text("eunji.song")
    assert set(released["details"]["reviewers"]) == {"jiho.kim", "eunji.song"}
    expect(entry).to_contain_text("ran file, pii, sdc, dp_provenance")
    expect(entry).to_contain_text("outcome in review")
    expect(entry.get_by_text("verified", exact=True)).to_be_visible()  # the manifest's signature
    _assert_inert(page, dialogs)
    expect(entry.get_by_text(f"Checked {PAYLOAD}")).to_be_visible()
    # The plot counts the release in this week.
    plot = page.get_by_role("img", name="Egress requests per week")
    expect(plot).to_be_visible()
    expect(page.locator("figure.plot").first).to_contain_text("released: 1")

    page.get_by_label("Status").select_option("rejected")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("No egress requests with this status.")).to_be_visible()
    page.get_by_label("Status").select_option("released")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_role("article")).to_have_count(1)


def test_a_datasets_access_history_shows_grants_releases_reads_and_decisions(
    page: Page, live: Live, api: TestClient, dialogs: list[Dialog]
) -> None:
    tokens = _tokens(live)
    # A DP release and a record read on wdbc under the seeded grant, from a notebook session.
    researcher = {"Authorization": f"Bearer {session_token(live.enclave, 'minji.park')}"}
    query = {"dataset_id": "wdbc", "epsilon": 0.5, "query": {"aggregates": [{"fn": "count", "as": "n"}]}}
    released = api.post("/v1/queries", json=query, headers=researcher)
    assert released.status_code == 200, released.text
    release_id = released.json()["release_id"]
    assert api.get("/v1/datasets/wdbc/records", headers=researcher).status_code == 200
    # The other hospital's custodian denies the pending request with a reason carrying a payload.
    pending = api.get("/v1/access-requests", headers=bearer(tokens["custodian2"])).json()
    request_id = next(r["id"] for r in pending if r["status"] == "pending")
    denied = api.post(
        f"/v1/access-requests/{request_id}/decision",
        json={"decision": "deny", "reason": f"Not for this purpose {PAYLOAD}"},
        headers=bearer(tokens["custodian2"]),
    )
    assert denied.status_code == 200, denied.text

    login(page, live, "auditor")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Audit events").click()
    page.get_by_role("navigation", name="Audit").get_by_role("link", name="Dataset access").click()
    page.get_by_role("link", name="wdbc", exact=True).click()
    expect(page.get_by_role("heading", name="Access history of wdbc")).to_be_visible()
    grant = audit_events(live.enclave, "grant.created")[0]
    grants = page.get_by_role("table", name="Grants")
    row = grants.locator("tbody tr", has_text=grant["subject"]["grant"])
    expect(row).to_contain_text("active")
    cells = row.locator("td")
    expect(cells.nth(3)).to_have_text("3.0")  # ε total
    expect(cells.nth(4)).to_have_text("0.5")  # spent per the budget ledger
    expect(cells.nth(5)).to_have_text("0.5")  # spent per the audit log, the same
    releases = page.get_by_role("table", name="DP releases")
    expect(releases.locator("tbody tr", has_text=release_id)).to_contain_text("minji.park")
    expect(releases.locator("tbody tr", has_text=release_id)).to_contain_text("0.5")
    access = page.get_by_role("table", name="Access requests and decisions")
    expect(access).to_contain_text("Approved for the stated purpose.")
    expect(page.locator("dd", has_text="see them")).to_have_text("1 (see them)")
    expect(page.get_by_role("img", name="Access to wdbc per week")).to_be_visible()
    timeline = page.get_by_role("table", name="Every logged event about wdbc, newest first")
    expect(timeline.locator("tbody tr").first).to_contain_text("data.read")
    expect(timeline).to_contain_text("query.released")

    # The denied request on Dasom's registry, its reason shown as text.
    page.get_by_role("navigation", name="Audit").get_by_role("link", name="Dataset access").click()
    page.get_by_role("link", name="dasom_registry", exact=True).click()
    decisions = page.get_by_role("table", name="Access requests and decisions")
    expect(decisions.locator("tbody tr", has_text=request_id)).to_contain_text("deny")
    expect(decisions.locator("tbody tr", has_text=request_id)).to_contain_text("seoyeon.lee")
    _assert_inert(page, dialogs)
