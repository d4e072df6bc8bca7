"""The custodian's portal pages over HTTP, on SQLite and PostgreSQL: what a custodian of another
hospital, another role or a form without its CSRF token gets — refused, and nothing changed.

Helpers (also used by the browser tests): ``api_tokens``, ``project_with_grant`` and ``submit_egress``
create state through the API as tests/api/test_egress.py does (egress needs a notebook session's
credential).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import nbformat
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.models import AccessRequest, EgressRequest, EgressReview, Grant
from enclave_api.portal.render_files import MAX_ROWS, render_file
from privacy.files import Limits
from tests.conftest import audit_events, bearer, session_token
from tests.portal.support import client_login, field

REGISTRY = "hanbit_registry"  # Hanbit's registry: its egress requests need two approvals


def api_tokens(enclave: Enclave) -> dict[str, str]:
    doc: dict[str, str] = json.loads((enclave.data_dir / "demo-tokens.json").read_text())
    return doc


def logins(enclave: Enclave) -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = json.loads((enclave.data_dir / "demo-logins.json").read_text())
    return doc


def access_request(
    enclave: Enclave, dataset: str, purpose: str = "Survival by stage.", title: str = "Portal study"
) -> tuple[str, str]:
    """A new project of the demo researcher with a pending access request on ``dataset``:
    (project id, request id)."""
    client, tokens = TestClient(create_app(enclave=enclave)), api_tokens(enclave)
    project = client.post(
        "/v1/projects",
        json={"title": title, "purpose": "Outcomes by stage."},
        headers=bearer(tokens["researcher"]),
    )
    assert project.status_code == 201, project.text
    request = client.post(
        "/v1/access-requests",
        json={
            "project_id": project.json()["id"],
            "dataset_id": dataset,
            "purpose": purpose,
            "epsilon": 3.0,
            "delta": 1e-6,
            "days": 30,
            "dua_accepted": True,
        },
        headers=bearer(tokens["researcher"]),
    )
    assert request.status_code == 201, request.text
    return str(project.json()["id"]), str(request.json()["id"])


def project_with_grant(enclave: Enclave, dataset: str = REGISTRY, custodian: str = "custodian") -> str:
    """A new project of the demo researcher holding an approved grant on ``dataset``; its id."""
    project, request = access_request(enclave, dataset)
    client, tokens = TestClient(create_app(enclave=enclave)), api_tokens(enclave)
    decided = client.post(
        f"/v1/access-requests/{request}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens[custodian]),
    )
    assert decided.status_code == 200, decided.text
    return project


def submit_egress(
    enclave: Enclave, files: dict[str, bytes], justification: str, project: str | None = None
) -> dict[str, Any]:
    """Submit ``files`` from a notebook session of the demo researcher (checks run); the request."""
    project = project or project_with_grant(enclave)
    client = TestClient(create_app(enclave=enclave))
    response = client.post(
        "/v1/egress-requests",
        files=[("files", (name, content)) for name, content in files.items()],
        data={"justification": justification, "project_id": project},
        headers=bearer(session_token(enclave, "minji.park")),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _count(enclave: Enclave, model: Any) -> int:
    with enclave.read() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _events(enclave: Enclave) -> int:
    return _count(enclave, AuditEvent)


def _status(enclave: Enclave, model: Any, ident: str) -> Any:
    with enclave.read() as session:
        return session.get_one(model, ident)


def test_another_hospitals_custodian_cannot_see_or_decide_an_access_request(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    _, request_id = access_request(seeded_enclave, "dasom_registry")  # decided by Dasom's custodian
    csrf = client_login(portal_client, logins(seeded_enclave), "custodian")  # Hanbit
    queue = portal_client.get("/portal/review/access")
    assert queue.status_code == 200
    assert request_id not in queue.text
    assert portal_client.get(f"/portal/review/access/{request_id}").status_code == 404
    decided = portal_client.post(
        f"/portal/review/access/{request_id}/decision",
        data={"csrf": csrf, "decision": "approve"},
        follow_redirects=False,
    )
    assert decided.status_code == 404  # as POST /v1/access-requests/{id}/decision answers
    assert "does not exist" in decided.text
    assert _status(seeded_enclave, AccessRequest, request_id).status == "pending"
    assert len(audit_events(seeded_enclave, "grant.created")) == 1  # the seeded one only
    assert len(audit_events(seeded_enclave, "access_request.decided")) == 1  # the seeded decision only


def test_another_hospitals_custodian_cannot_revoke_a_grant(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    with seeded_enclave.read() as session:
        grant_id = session.scalars(select(Grant.id).where(Grant.dataset_id == "wdbc")).one()  # Hanbit's
    csrf = client_login(portal_client, logins(seeded_enclave), "custodian2")
    assert grant_id not in portal_client.get("/portal/review/grants").text
    assert portal_client.get(f"/portal/review/grants/{grant_id}/revoke").status_code == 404
    revoked = portal_client.post(
        f"/portal/review/grants/{grant_id}/revoke",
        data={"csrf": csrf, "reason": "not mine to revoke"},
        follow_redirects=False,
    )
    assert revoked.status_code == 404  # as POST /v1/grants/{id}/revoke answers
    assert _status(seeded_enclave, Grant, grant_id).revoked_at is None
    assert audit_events(seeded_enclave, "grant.revoked") == []


def test_another_hospitals_custodian_cannot_see_or_review_an_egress_request(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    submitted = submit_egress(seeded_enclave, {"summary.txt": b"mean tumour size 14.1 mm"}, "For the report.")
    assert submitted["status"] == "in_review"
    csrf = client_login(portal_client, logins(seeded_enclave), "custodian2")
    assert submitted["id"] not in portal_client.get("/portal/review/egress", params={"status": "all"}).text
    assert portal_client.get(f"/portal/review/egress/{submitted['id']}").status_code == 404
    reviewed = portal_client.post(
        f"/portal/review/egress/{submitted['id']}/review",
        data={"csrf": csrf, "decision": "approve", "comment": ""},
        follow_redirects=False,
    )
    assert reviewed.status_code == 404  # as POST /v1/egress-requests/{id}/reviews answers
    assert _status(seeded_enclave, EgressRequest, submitted["id"]).status == "in_review"
    assert _count(seeded_enclave, EgressReview) == 0
    assert audit_events(seeded_enclave, "egress.reviewed") == []


def test_decisions_without_the_csrf_token_change_nothing(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    _, request_id = access_request(seeded_enclave, "dasom_registry")
    with seeded_enclave.read() as session:
        grant_id = session.scalars(select(Grant.id).where(Grant.dataset_id == "wdbc")).one()
    csrf = client_login(portal_client, logins(seeded_enclave), "custodian2")
    before = _events(seeded_enclave)
    posts = [
        (f"/portal/review/access/{request_id}/decision", {"decision": "approve"}, {}),
        (
            f"/portal/review/access/{request_id}/decision",
            {"decision": "deny", "reason": "x", "csrf": "0" * 64},
            {},
        ),
        (
            f"/portal/review/access/{request_id}/decision",
            {"decision": "approve", "csrf": csrf},
            {"Origin": "https://evil.example"},
        ),
    ]
    for path, data, headers in posts:
        sent = portal_client.post(path, data=data, headers=headers, follow_redirects=False)
        assert sent.status_code == 403, (data, sent.text)
        assert "security token" in sent.text or "another site" in sent.text
    assert _status(seeded_enclave, AccessRequest, request_id).status == "pending"
    # Only the refusals were recorded (access.denied), nothing else.
    with seeded_enclave.read() as session:
        types = list(session.scalars(select(AuditEvent.type).where(AuditEvent.index >= before)))
    assert set(types) == {"access.denied"}

    # The same for a revocation (by the grant's own hospital) and for a registration.
    hanbit = TestClient(create_app(enclave=seeded_enclave), base_url="http://127.0.0.1")
    client_login(hanbit, logins(seeded_enclave), "custodian")
    refused = hanbit.post(
        f"/portal/review/grants/{grant_id}/revoke", data={"reason": "x"}, follow_redirects=False
    )
    assert refused.status_code == 403
    assert _status(seeded_enclave, Grant, grant_id).revoked_at is None
    upload = hanbit.post(
        "/portal/review/datasets/new",
        files={"file": ("d.csv", b"a\n1\n")},
        data={"metadata": "id: d"},
        follow_redirects=False,
    )
    assert upload.status_code == 403


def test_custodian_pages_are_for_custodians(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    client_login(portal_client, logins(seeded_enclave), "researcher")
    for path in (
        "/portal/review/access",
        "/portal/review/egress",
        "/portal/review/grants",
        "/portal/review/datasets",
    ):
        page = portal_client.get(path)
        assert page.status_code == 403, path
        assert "custodian" in page.text


def test_an_approval_above_the_request_is_shown_with_the_form_kept(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    _, request_id = access_request(seeded_enclave, "dasom_registry")
    csrf = client_login(portal_client, logins(seeded_enclave), "custodian2")
    sent = portal_client.post(
        f"/portal/review/access/{request_id}/decision",
        data={"csrf": csrf, "decision": "approve", "epsilon": "9", "days": "10", "reason": "kept"},
    )
    assert sent.status_code == 422
    assert "may lower the requested epsilon, not raise it" in sent.text
    assert field(sent.text, "epsilon") == "9" and field(sent.text, "days") == "10"
    assert _status(seeded_enclave, AccessRequest, request_id).status == "pending"
    not_a_number = portal_client.post(
        f"/portal/review/access/{request_id}/decision",
        data={"csrf": csrf, "decision": "approve", "epsilon": "lots"},
    )
    assert not_a_number.status_code == 422
    assert "ε must be a number" in not_a_number.text


# ---------------------------------------------------------------------------------------------------
# How files are prepared for the review page (pure: no database, run once)


def _finding(location: str, severity: str = "review") -> dict[str, str]:
    return {"severity": severity, "location": location, "check": "sdc", "rule": "threshold"}


def test_table_findings_mark_the_cells_they_name() -> None:
    data = b"stage,n,n_2\nI,3,x\nII,40,y\n"
    findings = [
        _finding("table, row 1 (stage='I'), column 'n'"),
        _finding("table, row 2, column 3", "block"),  # by position (a header that is an identifier)
        _finding("table, header of column 1"),
        _finding("file", "block"),  # about the whole file: listed, not placed
        _finding("table, row 2, column 'stage'", "info"),  # informational: not highlighted
    ]
    shown = render_file("counts.csv", data, "csv", findings, Limits())
    assert shown.view == "table" and shown.table is not None
    assert [c.css for c in shown.table.header] == ["finding", "", ""]
    assert [c.css for c in shown.table.rows[0].cells] == ["", "finding", ""]
    assert [c.css for c in shown.table.rows[1].cells] == ["", "", "finding blocking"]


def test_big_tables_are_cut_but_flagged_rows_are_always_shown() -> None:
    rows = "".join(f"{i},{i}\n" for i in range(1, MAX_ROWS + 101))
    data = ("id,n\n" + rows).encode()
    last = MAX_ROWS + 100
    shown = render_file(
        "big.csv", data, "csv", [_finding(f"table, row {last}, column 'n'", "block")], Limits()
    )
    assert shown.table is not None
    assert shown.table.total_rows == last
    assert [r.number for r in shown.table.rows[-2:]] == [MAX_ROWS, last]
    assert shown.table.rows[-1].gap_before == 99
    assert shown.table.rows[-1].cells[1].css == "finding blocking"
    assert shown.table.hidden_rows == 99


def test_markup_and_invisible_characters_are_shown_as_text() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("<img src=x onerror=alert(1)>"),
        nbformat.v4.new_code_cell(
            "x",
            outputs=[
                nbformat.v4.new_output(
                    "display_data",
                    data={
                        "text/html": "<script>alert(1)</script>",
                        "image/png": base64.b64encode(b"<svg onload=alert(1)>").decode(),
                    },
                ),
                nbformat.v4.new_output("stream", name="stdout", text="\x1b[31mred\x1b[0m total"),
            ],
        ),
    ]
    shown = render_file(
        "nb.ipynb", nbformat.writes(notebook).encode(), "notebook", [_finding("cell 2 output 1")], Limits()
    )
    assert shown.view == "notebook"
    first, second = shown.cells
    assert first.source == "<img src=x onerror=alert(1)>" and first.css == ""
    assert second.css == "finding"
    by_label = {o.label: o for o in second.outputs}
    assert by_label["text/html (shown as source, not rendered)"].text == "<script>alert(1)</script>"
    assert by_label["image/png"].view == "text" and by_label["image/png"].image == ""  # not a PNG
    assert by_label["stdout"].text == "red total"

    text = render_file(
        "note.txt", "safe\nabc\u202edef\n".encode(), "text", [_finding("line 2, column 4", "block")], Limits()
    )
    assert [(line.text, line.css) for line in text.lines] == [
        ("safe", ""),
        ("abc⟨U+202E⟩def", "finding blocking"),
    ]
    html = render_file("page.html", b"<p onclick=x>hi</p>", "html", [], Limits())
    assert (
        html.view == "lines" and html.lines[0].text == "<p onclick=x>hi</p>" and "never rendered" in html.note
    )


def test_files_the_checks_did_not_read_are_never_opened() -> None:
    refused = render_file("data.csv", b"a,b\n1,2\n", None, [_finding("file", "block")], Limits())
    assert refused.view == "unavailable" and "not opened" in refused.problem
    changed = render_file("data.csv", b"PK\x03\x04" + b"\x00" * 40, "csv", [], Limits())
    assert changed.view == "unavailable" and "ZIP archive" in changed.problem
