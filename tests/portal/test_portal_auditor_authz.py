"""The auditor's portal pages over HTTP, on SQLite and PostgreSQL: who may see them, CSRF, exports.

The browser paths are in ``test_portal_auditor.py``; here are the requests a browser would not send
(other roles, bearer tokens, forms without their token) and the exports compared byte for byte
with what ``enclave audit export`` writes for the same database.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from audit.checkpoint import public_key_from_pem
from audit.verify import verify_export
from enclave_api.context import Enclave
from tests.conftest import audit_events, bearer
from tests.portal.support import client_login

PAGES = (
    "/portal/audit/events",
    "/portal/audit/events?type=auth.login&order=oldest&limit=5",
    "/portal/audit/events/0",
    "/portal/audit/egress",
    "/portal/audit/integrity",
    "/portal/audit/datasets",
    "/portal/audit/datasets/wdbc",
)
DOWNLOADS = ("/portal/audit/export.jsonl", "/portal/audit/export.csv", "/portal/audit/public-key.pem")


def _logins(enclave: Enclave) -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = json.loads((enclave.data_dir / "demo-logins.json").read_text())
    return doc


@pytest.mark.parametrize("role", ["researcher", "custodian"])
def test_other_roles_get_403_on_every_auditor_page_and_export(
    portal_client: TestClient, seeded_enclave: Enclave, role: str
) -> None:
    csrf = client_login(portal_client, _logins(seeded_enclave), role)
    for path in (*PAGES, *DOWNLOADS):
        response = portal_client.get(path, follow_redirects=False)
        assert response.status_code == 403, path
        assert "this page is for the role auditor or admin" in response.text, path
        assert "content-disposition" not in response.headers, path
    refused = portal_client.post(
        "/portal/audit/integrity/verify", data={"csrf": csrf}, follow_redirects=False
    )
    assert refused.status_code == 403
    denied = {e["details"]["path"] for e in audit_events(seeded_enclave, "access.denied")}
    assert {"/portal/audit/export.jsonl", "/portal/audit/integrity/verify", "/portal/audit/events"} <= denied


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_auditors_and_admins_see_every_page(
    portal_client: TestClient, seeded_enclave: Enclave, role: str
) -> None:
    client_login(portal_client, _logins(seeded_enclave), role)
    for path in (*PAGES, *DOWNLOADS):
        response = portal_client.get(path)
        assert response.status_code == 200, (path, response.text[:500])
    assert "<script" not in portal_client.get("/portal/audit/events").text.lower()


def test_exports_need_the_login_cookie_not_a_bearer_token(
    portal_client: TestClient, tokens: dict[str, str]
) -> None:
    for path in (*DOWNLOADS, "/portal/audit/events"):
        response = portal_client.get(path, headers=bearer(tokens["auditor"]), follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/portal/login"), path
        assert "content-disposition" not in response.headers
    # An API token put into the cookie is not a browser login either.
    portal_client.cookies.set("enclave_web", tokens["auditor"])
    response = portal_client.get("/portal/audit/export.jsonl", follow_redirects=False)
    assert response.status_code == 303


def test_verifying_needs_the_forms_token(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    csrf = client_login(portal_client, _logins(seeded_enclave), "auditor")
    assert portal_client.post("/portal/audit/integrity/verify", follow_redirects=False).status_code == 403
    forged = portal_client.post("/portal/audit/integrity/verify", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    cross_site = portal_client.post(
        "/portal/audit/integrity/verify", data={"csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert cross_site.status_code == 403
    done = portal_client.post("/portal/audit/integrity/verify", data={"csrf": csrf})
    assert done.status_code == 200
    assert "Intact" in done.text


def test_bad_filters_are_clear_422_pages(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    client_login(portal_client, _logins(seeded_enclave), "auditor")
    for query in ("type=no.such_type", "since=yesterday", "cursor=abc", "limit=0", "order=sideways"):
        response = portal_client.get(f"/portal/audit/events?{query}")
        assert response.status_code == 422, query
    assert portal_client.get("/portal/audit/egress?status=lost").status_code == 422
    assert portal_client.get("/portal/audit/events/999999").status_code == 404
    assert portal_client.get("/portal/audit/datasets/no-such-dataset").status_code == 404


def test_exports_are_the_clis_exports_byte_for_byte(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    client_login(portal_client, _logins(seeded_enclave), "auditor")
    jsonl = portal_client.get("/portal/audit/export.jsonl")
    csv = portal_client.get("/portal/audit/export.csv")
    pem = portal_client.get("/portal/audit/public-key.pem")
    assert jsonl.headers["content-disposition"] == 'attachment; filename="enclave-audit.jsonl"'
    assert csv.headers["content-type"].startswith("text/csv")
    key = public_key_from_pem(pem.content)
    assert verify_export(jsonl.content.splitlines(keepends=True), key).ok

    def cli(fmt: str) -> bytes:
        env = os.environ | {"ENCLAVE_LOG_JSON": "false"}
        done = subprocess.run(
            [
                sys.executable, "-m", "enclave_api", "audit", "export", "--format", fmt,
                "--data-dir", str(seeded_enclave.data_dir),
                "--database-url", seeded_enclave.settings.database_url_resolved(),
            ],
            capture_output=True, env=env, timeout=300, check=True,
        )  # fmt: skip
        return done.stdout

    assert cli("jsonl") == jsonl.content
    assert cli("csv") == csv.content
    assert (seeded_enclave.data_dir / "audit-public-key.pem").read_bytes() == pem.content
