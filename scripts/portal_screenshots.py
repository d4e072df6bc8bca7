"""Take the README's portal screenshots (docs/screenshots/) from a fresh demo world in Debian's Chromium.

    .venv/bin/python scripts/portal_screenshots.py [OUT_DIR]

Seeds a small demo world in a temporary directory, serves it on loopback, makes a few DP releases
and an egress request as the demo researcher (through the API, as a notebook session would), then
logs in as each role and saves the main pages.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from playwright.sync_api import Page, sync_playwright

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.demo.seed import seed_demo
from enclave_api.services import sessions
from enclave_api.services.identity import Principal
from enclave_api.settings import Settings

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
SHOTS = {
    "researcher": [("catalog", "/portal/catalog?q=her2"), ("grants", "/portal/grants")],
    "custodian": [("access-queue", "/portal/review/access"), ("egress-queue", "/portal/review/egress")],
    "auditor": [("integrity", "/portal/audit/integrity"), ("events", "/portal/audit/events")],
}


def _serve(enclave: Enclave) -> tuple[str, uvicorn.Server]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(enclave=enclave), port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server


def _activity(enclave: Enclave, base: str) -> str:
    """Two DP releases and an egress request in review, made with a notebook session's credential."""
    hub = Principal("hub", "JupyterHub", "enclave-operator", ("hub",), "local", "api")
    with enclave.write() as session:
        token = sessions.start(enclave, session, hub, "minji.park", "", None).token
    headers = {"Authorization": f"Bearer {token}"}
    for epsilon in (0.5, 0.25):
        query = {"group_by": ["diagnosis"], "aggregates": [{"fn": "count", "as": "n"}]}
        body = {"dataset_id": "wdbc", "epsilon": epsilon, "query": query}
        httpx.post(f"{base}/v1/queries", json=body, headers=headers, timeout=60).raise_for_status()
    table = b"diagnosis,n,mean_radius\nmalignant,212,18.3\nbenign,364,11.9\n"
    submitted = httpx.post(
        f"{base}/v1/egress-requests",
        files=[("files", ("radius_by_diagnosis.csv", table))],
        data={"justification": "Mean radius by diagnosis for the consortium report."},
        headers=headers,
        timeout=120,
    )
    submitted.raise_for_status()
    return str(submitted.json()["id"])


def _login(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/portal/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/portal/")


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        enclave = Enclave.open(Settings(data_dir=data_dir, database_url=f"sqlite:///{data_dir}/enclave.db"))
        seed_demo(enclave, "screenshots", patients=400)
        base, server = _serve(enclave)
        request_id = _activity(enclave, base)
        logins = json.loads((data_dir / "demo-logins.json").read_text())
        shots = SHOTS | {
            "custodian": [*SHOTS["custodian"], ("egress-review", f"/portal/review/egress/{request_id}")]
        }
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for role, pages in shots.items():
                context = browser.new_context(viewport={"width": 1280, "height": 860})
                page = context.new_page()
                _login(page, base, logins[role]["username"], logins[role]["password"])
                for name, path in pages:
                    page.goto(base + path)
                    page.screenshot(path=str(out / f"{role}-{name}.png"))
                    print(out / f"{role}-{name}.png")
                context.close()
            browser.close()
        server.should_exit = True
        enclave.close()


if __name__ == "__main__":
    main()
