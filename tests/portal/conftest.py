"""Portal fixtures: a live API server and Debian's Chromium driven by Playwright.

Fixtures:

* ``live`` — the demo world (``seeded_enclave``) served by uvicorn on a free loopback port, in a
  thread: ``live.url(path)``, ``live.enclave``, ``live.logins`` (role → username/password).
* ``chromium`` — one headless Chromium (``/usr/bin/chromium``) per test run.
* ``page`` — a fresh browser context (no cookies) and page per test.
* ``portal_client`` — a Starlette TestClient on the same app, for requests a browser would not send.

Helpers (``tests/portal/support.py``): ``login(page, live, role)`` logs in through the portal's form,
``client_login(client, logins, role)`` does the same for a TestClient and returns the CSRF token.
Browser tests run on SQLite only (the pages call the same services that every API test runs on
SQLite and PostgreSQL): their modules set ``pytestmark = SQLITE_ONLY``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from tests.liveserver import serve
from tests.portal.support import CHROMIUM, CHROMIUM_ARGS, Live


@pytest.fixture
def live(seeded_enclave: Enclave) -> Iterator[Live]:
    logins = json.loads((seeded_enclave.data_dir / "demo-logins.json").read_text())
    with serve(create_app(enclave=seeded_enclave)) as base:
        yield Live(base, seeded_enclave, logins)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def portal_client(seeded_enclave: Enclave) -> TestClient:
    return TestClient(create_app(enclave=seeded_enclave), base_url="http://127.0.0.1")
