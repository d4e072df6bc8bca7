"""Portal login, logout, expiry, CSRF and the headers every page carries — in Chromium and over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page, expect

from enclave_api.context import Enclave
from tests.conftest import audit_events
from tests.portal.support import SQLITE_ONLY, Live, client_login, field, login

pytestmark = SQLITE_ONLY


@pytest.mark.parametrize(
    ("role", "sees", "does_not_see"),
    [
        ("researcher", "Research", "Your hospital's data"),
        ("custodian", "Your hospital's data", "Audit"),
        ("auditor", "Audit", "Research"),
    ],
)
def test_each_role_logs_in_and_out_through_the_form(
    page: Page, live: Live, role: str, sees: str, does_not_see: str
) -> None:
    login(page, live, role)
    expect(page.get_by_role("heading", name=sees, exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name=does_not_see, exact=True)).to_have_count(0)
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You have logged out.")).to_be_visible()
    page.goto(live.url("/portal/"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()


def test_a_wrong_password_is_refused_and_audited(page: Page, live: Live) -> None:
    page.goto(live.url("/portal/login"))
    page.get_by_label("Username").fill(live.logins["custodian"]["username"])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text("Invalid username or password.")).to_be_visible()
    failed = audit_events(live.enclave, "auth.login_failed")
    assert failed[-1]["details"] == {"via": "portal", "reason": "bad_password"}


def test_a_page_asked_for_before_login_is_shown_after_it(page: Page, live: Live) -> None:
    page.goto(live.url("/portal/catalog?q=her2"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    page.get_by_label("Username").fill(live.logins["researcher"]["username"])
    page.get_by_label("Password").fill(live.logins["researcher"]["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live.url("/portal/catalog?q=her2"))
    assert audit_events(live.enclave, "auth.login")[-1]["details"] == {"via": "portal"}


def test_a_login_expires(page: Page, live: Live) -> None:
    login(page, live, "researcher")
    real_clock = live.enclave.clock
    hours = live.enclave.settings.web_login_hours
    live.enclave.clock = lambda: real_clock() + timedelta(hours=hours, minutes=1)
    try:
        page.goto(live.url("/portal/"))
        expect(page.get_by_text("Your login has expired. Please log in again.")).to_be_visible()
    finally:
        live.enclave.clock = real_clock


def test_the_login_cookie_is_httponly_and_strict(page: Page, live: Live) -> None:
    login(page, live, "auditor")
    cookie = next(c for c in page.context.cookies() if c["name"] == "enclave_web")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == ""  # no script can read it


def test_after_login_only_portal_paths_are_followed(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    logins = _logins(seeded_enclave)
    form = portal_client.get("/portal/login", params={"next": "https://evil.example/steal"})
    assert field(form.text, "next") == "/portal/"
    for target in ("//evil.example/", "/portal//evil.example", "/v1/me", "/portal/\\evil"):
        form = portal_client.get("/portal/login", params={"next": target})
        assert field(form.text, "next") == "/portal/", target
    sent = portal_client.post(
        "/portal/login",
        data={
            **logins["researcher"],
            "nonce": field(form.text, "nonce"),
            "next": "https://evil.example/",
        },
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert sent.headers["location"] == "/portal/"


def test_forms_without_the_csrf_token_are_refused(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    csrf = client_login(portal_client, _logins(seeded_enclave), "researcher")
    missing = portal_client.post("/portal/logout", follow_redirects=False)
    assert missing.status_code == 403
    assert "security token" in missing.text
    forged = portal_client.post("/portal/logout", data={"csrf": "0" * 64}, follow_redirects=False)
    assert forged.status_code == 403
    cross_site = portal_client.post(
        "/portal/logout",
        data={"csrf": csrf},
        headers={"Origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    assert portal_client.get("/portal/").status_code == 200  # still logged in: nothing happened
    denied = audit_events(seeded_enclave, "access.denied")
    assert any(e["details"]["path"] == "/portal/logout" and e["details"]["status"] == 403 for e in denied)
    done = portal_client.post("/portal/logout", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    assert portal_client.get("/portal/", follow_redirects=False).status_code == 303  # to the login form


def test_a_login_post_without_its_form_is_refused(portal_client: TestClient, seeded_enclave: Enclave) -> None:
    credentials = _logins(seeded_enclave)["researcher"]
    sent = portal_client.post(
        "/portal/login", data={**credentials, "nonce": "forged"}, follow_redirects=False
    )
    assert sent.status_code == 403
    assert "enclave_web" not in sent.cookies


def test_an_api_token_is_not_a_browser_login(portal_client: TestClient, tokens: dict[str, str]) -> None:
    portal_client.cookies.set("enclave_web", tokens["researcher"])
    page = portal_client.get("/portal/", follow_redirects=False)
    assert page.status_code == 303
    assert "/portal/login" in page.headers["location"]


def test_pages_carry_a_strict_policy_and_no_script(
    portal_client: TestClient, seeded_enclave: Enclave
) -> None:
    client_login(portal_client, _logins(seeded_enclave), "custodian")
    for path in ("/portal/", "/portal/login", "/portal/no-such-page"):
        page = portal_client.get(path)
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text.lower()
    missing = portal_client.get("/portal/no-such-page")
    assert missing.status_code == 404
    assert "no such page" in missing.text


def test_unknown_static_files_are_not_served(portal_client: TestClient) -> None:
    assert portal_client.get("/portal/static/portal.css").status_code == 200
    for name in ("..%2Fweb.py", "web.py", "%2e%2e%2f%2e%2e%2fsettings.py", "..%5Cweb.py"):
        response = portal_client.get(f"/portal/static/{name}", follow_redirects=False)
        # Either no such file, or (a path normalised out of /static) the login form first.
        assert response.status_code in (303, 404), name
        assert "import" not in response.text, name


def _logins(enclave: Enclave) -> dict[str, dict[str, str]]:
    import json

    doc: dict[str, dict[str, str]] = json.loads((enclave.data_dir / "demo-logins.json").read_text())
    return doc
