"""Helpers for the portal tests: the live server's handle, logins, and form fields."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page

from enclave_api.context import Enclave

CHROMIUM = "/usr/bin/chromium"
#: Chromium must not try to reach Google's services from a closed network (it retries at length).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
]
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Live:
    """The portal served on loopback for a browser."""

    base: str
    enclave: Enclave
    logins: dict[str, dict[str, str]]

    def url(self, path: str) -> str:
        return self.base + path


def login(page: Page, live: Live, role: str, next_path: str = "/portal/") -> None:
    """Log in as the demo user of ``role`` through the login form and land on ``next_path``."""
    credentials = live.logins[role]
    page.goto(live.url(f"/portal/login?next={next_path}"))
    page.get_by_label("Username").fill(credentials["username"])
    page.get_by_label("Password").fill(credentials["password"])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(live.url(next_path) + "*")


def client_login(client: TestClient, logins: dict[str, dict[str, str]], role: str) -> str:
    """Log a TestClient in through the form; returns the CSRF token of its pages."""
    form = client.get("/portal/login")
    nonce = field(form.text, "nonce")
    credentials = logins[role]
    done = client.post(
        "/portal/login",
        data={"username": credentials["username"], "password": credentials["password"], "nonce": nonce},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    home = client.get("/portal/")
    assert home.status_code == 200, home.text
    return field(home.text, "csrf")


def field(html: str, name: str) -> str:
    """The value of the (first) form field ``name`` in a page."""
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]
