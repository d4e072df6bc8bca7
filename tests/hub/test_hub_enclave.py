"""The researcher's path end to end, against the real thing: the enclave API (uvicorn, demo world),
JupyterHub with the generated configuration (:mod:`enclave_api.hub.embedded`: enclave authenticator,
sandbox spawner, configurable-http-proxy, idle culler), a browser-like client and a real kernel.

login → spawn page lists the grants → spawn → records, DP query, export, egress submission from a
notebook kernel → the API-side escape attempts fail and are audited → revocation ends the session
(credential dead, server stopped, sandbox gone) and the spawn page says why no new one can start.
A second hub with a short idle timeout shows the culler stopping an idle server.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from enclave_api.context import Enclave
from enclave_api.hub import sandbox
from enclave_api.hub.embedded import HubLayout, find_proxy, unavailable_reason
from enclave_api.settings import Settings
from tests.api.test_datasets import CSV, META
from tests.conftest import audit_events
from tests.hub.browser import Browser
from tests.hub.support import RUNTIME, TEST_PREFIX, free_port
from tests.hub.world import World, enclave_world

pytestmark = pytest.mark.slow

RESEARCHER = "minji.park"


def _query_only_dataset(api: Any) -> None:
    """A query-only dataset the researcher holds a grant on (its records must never be served)."""
    meta = META | {"id": "qo_cohort", "tier": "query_only"}
    registered = api(
        "POST",
        "/v1/datasets",
        "custodian",
        files={"file": ("q.csv", CSV.encode(), "text/csv")},
        data={"metadata": json.dumps(meta)},
    )
    assert registered.status_code == 201, registered.text
    project = api("GET", "/v1/projects", "researcher").json()[0]["id"]
    request = api(
        "POST",
        "/v1/access-requests",
        "researcher",
        json={"project_id": project, "dataset_id": "qo_cohort", "purpose": "aggregate counts",
              "epsilon": 1, "delta": 0, "days": 5, "dua_accepted": True},
    )  # fmt: skip
    assert request.status_code == 201, request.text
    decided = api(
        "POST",
        f"/v1/access-requests/{request.json()['id']}/decision",
        "custodian",
        json={"decision": "approve", "reason": "ok"},
    )
    assert decided.status_code == 200, decided.text


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, host_checked: None, home_root: Path, places: sandbox.Places
) -> Iterator[World]:
    with enclave_world(tmp_path_factory.mktemp("e2e"), home_root) as the_world:
        yield the_world
    gc.collect()  # a socket leaked by this module warns here, not in some unrelated later test


@pytest.fixture(scope="module")
def researcher(world: World) -> Iterator[Browser]:
    """The researcher, logged in through the hub's form, with a running server and JupyterLab open."""
    _query_only_dataset(world.api)
    browser, _ = world.browser("researcher")
    page = browser.spawn_page()
    assert page.status_code == 200
    # The spawn page lists the grants the session will carry.
    assert "wdbc" in page.text and "qo_cohort" in page.text, page.text[:3000]
    try:
        browser.spawn()
    except AssertionError as exc:
        pytest.fail(f"{exc}\nhub log:\n{world.hub.log_tail(80)}")
    lab = browser.open_lab()
    assert lab.status_code == 200 and "JupyterLab" in lab.text
    yield browser
    browser.close()


def _session(world: World, user: str) -> dict[str, Any]:
    with world.enclave.read() as db:
        from sqlalchemy import select

        from enclave_api.models import NotebookSession

        record = db.scalars(
            select(NotebookSession)
            .where(NotebookSession.user_id == user, NotebookSession.ended_at.is_(None))
            .order_by(NotebookSession.started_at.desc())
        ).first()
        assert record is not None, f"{user} has no open session"
        return {"id": record.id, "address": record.address, "token_id": record.token_id}


RESEARCHER_PATH = """
import json
from enclave_api.client import connect

enclave = connect()
me = enclave.me()
grants = enclave.grants()
records = enclave.records("wdbc")
result = enclave.query("wdbc").group_by("diagnosis").count().run(epsilon=0.2)
csv_path, manifest_path = enclave.export(result, "counts_by_diagnosis.csv")
request = enclave.submit_egress([csv_path, manifest_path], justification="Counts by diagnosis for the paper.")
print(json.dumps({
    "me": me, "grants": sorted(g["dataset_id"] for g in grants), "rows": records.height,
    "columns": records.columns, "release": result.release_id, "egress": request["id"],
    "status": request["status"],
}))
"""


def test_researcher_path_login_spawn_query_egress(world: World, researcher: Browser) -> None:
    report = json.loads(researcher.run(RESEARCHER_PATH).strip().splitlines()[-1])
    assert report["me"]["id"] == RESEARCHER and report["me"]["roles"] == ["researcher"]
    assert report["grants"] == ["qo_cohort", "wdbc"]
    assert report["rows"] == 569 and "diagnosis" in report["columns"]
    # The DP release with its signed manifest passes the automatic checks and waits for custodians.
    assert report["status"] == "in_review"
    egress = world.api("GET", f"/v1/egress-requests/{report['egress']}", "custodian")
    assert egress.status_code == 200 and egress.json()["status"] == "in_review"

    session = _session(world, RESEARCHER)
    started = [
        e for e in audit_events(world.enclave, "session.started") if e["subject"]["session"] == session["id"]
    ]
    assert len(started) == 1 and started[0]["details"]["address"] == session["address"]
    assert sorted(started[0]["details"]["grants"]) == sorted(
        g["id"] for g in world.api("GET", "/v1/grants", "researcher").json()
    )
    reads = [e for e in audit_events(world.enclave, "data.read") if e["actor"] == RESEARCHER]
    assert reads and reads[-1]["details"]["via"] == "session"
    logins = [e for e in audit_events(world.enclave, "auth.login") if e["subject"]["user"] == RESEARCHER]
    assert logins and logins[-1]["details"]["via"] == "hub"


ESCAPES = """
import json, os, httpx
url = os.environ["ENCLAVE_API_URL"]
own = os.environ["ENCLAVE_API_TOKEN"]
def status(token, method="GET", path="/v1/datasets/wdbc/records", **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, url + path, headers=headers, timeout=30, **kw).status_code
out = {
    "own_session": status(own),
    "no_credential": status(None),
    "researcher_api_token": status(TOKENS["researcher"]),
    "custodian_api_token": status(TOKENS["custodian"]),
    "other_session": status(OTHER_SESSION),
    "query_only": status(own, path="/v1/datasets/qo_cohort/records"),
    "no_grant": status(own, path="/v1/datasets/hanbit_registry/records"),
    "egress_with_api_token": status(
        TOKENS["researcher"], "POST", "/v1/egress-requests",
        files=[("files", ("a.txt", b"hello"))], data={"justification": "x"},
    ),
    "custodian_power_with_session": status(own, "POST", "/v1/grants/" + GRANT + "/revoke"),
    "hub_api_as_session": status(own, "POST", "/v1/sessions", json={"user": "minji.park"}),
}
print(json.dumps(out))
"""


def test_api_escape_attempts_from_the_session_fail_and_are_audited(world: World, researcher: Browser) -> None:
    # Another researcher's live session credential, bound to another session's address.
    from tests.conftest import session_token

    with world.enclave.write() as db:
        from enclave_api.models import User
        from enclave_api.roles import Role
        from enclave_api.services import identity, projects
        from enclave_api.services.identity import Principal

        identity.create_user(world.enclave, db, "t", "jun.other", "Jun", "aster-pharma", [Role.RESEARCHER])
        db.flush()
        owner = db.get(User, RESEARCHER)
        assert owner is not None
        project = world.api("GET", "/v1/projects", "researcher").json()[0]["id"]
        projects.add_member(world.enclave, db, Principal.local(owner), project, "jun.other")
    other = session_token(world.enclave, "jun.other", address="10.200.250.2")
    grant = next(
        g["id"] for g in world.api("GET", "/v1/grants", "researcher").json() if g["dataset_id"] == "wdbc"
    )
    code = f"TOKENS = {json.dumps(world.tokens)}\nOTHER_SESSION = {other!r}\nGRANT = {grant!r}\n" + ESCAPES
    before = len(audit_events(world.enclave, "access.denied"))
    outcome = json.loads(researcher.run(code).strip().splitlines()[-1])
    assert outcome == {
        "own_session": 200,
        "no_credential": 401,
        "researcher_api_token": 403,
        "custodian_api_token": 403,
        "other_session": 401,
        "query_only": 403,
        "no_grant": 403,
        "egress_with_api_token": 403,
        "custodian_power_with_session": 403,
        "hub_api_as_session": 403,
    }
    address = _session(world, RESEARCHER)["address"]
    denied = audit_events(world.enclave, "access.denied")[before:]
    seen = {(e["details"]["status"], e["details"]["path"], e["actor"]) for e in denied}
    assert all(e["details"]["address"] == address for e in denied)
    assert (401, "/v1/datasets/wdbc/records", "anonymous") in seen  # no credential / other session
    assert (403, "/v1/datasets/wdbc/records", RESEARCHER) in seen  # API token, not a session
    assert (403, "/v1/datasets/qo_cohort/records", RESEARCHER) in seen
    assert (403, "/v1/datasets/hanbit_registry/records", RESEARCHER) in seen
    assert (403, "/v1/egress-requests", RESEARCHER) in seen
    assert (403, f"/v1/grants/{grant}/revoke", RESEARCHER) in seen
    assert (403, "/v1/sessions", RESEARCHER) in seen


def test_revoking_the_grant_ends_the_session_and_the_server(
    world: World, researcher: Browser, places: sandbox.Places
) -> None:
    session = _session(world, RESEARCHER)
    token = researcher.run("import os; print(os.environ['ENCLAVE_API_TOKEN'])").strip()
    assert world.hub_api("GET", f"/users/{RESEARCHER}").json()["servers"][""]["ready"] is True
    grant = next(
        g["id"] for g in world.api("GET", "/v1/grants", "researcher").json() if g["dataset_id"] == "wdbc"
    )
    revoked = world.api("POST", f"/v1/grants/{grant}/revoke", "custodian", json={"reason": "DUA breach"})
    assert revoked.status_code == 200, revoked.text
    # At once: the session's credential is dead (whoever holds it, from wherever).
    assert (
        httpx.get(world.api_url + "/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    ended = [
        e for e in audit_events(world.enclave, "session.ended") if e["subject"]["session"] == session["id"]
    ]
    assert [(e["details"]["reason"], e["details"]["grant"]) for e in ended] == [("grant_revoked", grant)]
    # Soon: the server is stopped through the hub and nothing of the sandbox is left.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        servers = world.hub_api("GET", f"/users/{RESEARCHER}").json().get("servers", {})
        if not servers and not sandbox.leftover_resources(places):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"server still running after revocation: {servers}\n{world.hub.log_tail()}")
    # The query-only grant is still active, so a new session may start; without any grant it may not.
    world.api("POST", f"/v1/grants/{_qo_grant(world)}/revoke", "custodian").raise_for_status()
    page = researcher.spawn_page()
    assert "No notebook session is possible yet" in page.text and "no active data access grant" in page.text
    refused = researcher.post_spawn_form()
    assert refused.status_code == 403
    assert "no active data access grant" in refused.text
    assert not sandbox.leftover_resources(places)


def _qo_grant(world: World) -> str:
    return next(
        g["id"] for g in world.api("GET", "/v1/grants", "researcher").json() if g["dataset_id"] == "qo_cohort"
    )


def test_people_without_a_researcher_role_get_no_server(world: World) -> None:
    browser, _ = world.browser("custodian")
    try:
        page = browser.spawn_page()
        assert "notebook sessions are for approved researchers" in page.text
        assert browser.post_spawn_form().status_code == 403
    finally:
        browser.close()


def test_wrong_password_is_refused_and_audited(world: World) -> None:
    browser = Browser(world.hub_url)
    try:
        page = browser.login(RESEARCHER, "not-the-password-at-all")
        assert "Invalid username or password" in page.text
        assert "/hub/login" in str(page.url)
    finally:
        browser.close()
    failures = audit_events(world.enclave, "auth.login_failed")
    assert failures[-1]["subject"]["username"] == RESEARCHER
    assert failures[-1]["details"]["reason"] == "bad_password"


def test_idle_servers_are_culled(
    tmp_path: Path, host_checked: None, home_root: Path, places: sandbox.Places
) -> None:
    """A second hub whose culler stops servers idle for 20 s (checking every 5 s)."""
    with enclave_world(tmp_path, home_root, idle_timeout=20, cull_every=5) as world:
        browser, user = world.browser("researcher")
        try:
            browser.spawn()
            session = _session(world, user)
            assert world.hub_api("GET", f"/users/{user}").json()["servers"][""]["ready"] is True
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if not world.hub_api("GET", f"/users/{user}").json().get("servers"):
                    break
                time.sleep(1)
            else:
                pytest.fail(f"idle server not culled:\n{world.hub.log_tail()}")
            ended = [
                e
                for e in audit_events(world.enclave, "session.ended")
                if e["subject"]["session"] == session["id"]
            ]
            assert [e["details"]["reason"] for e in ended] == ["stopped"]
            assert not sandbox.leftover_resources(places)
        finally:
            browser.close()


def test_enclave_up_runs_api_and_hub_and_stops_both(
    tmp_path: Path, host_checked: None, home_root: Path, places: sandbox.Places
) -> None:
    """`enclave up` (what `make up` runs): API and hub with sandboxed sessions; Ctrl-C stops both."""
    data_dir = tmp_path / "enclave"
    ports = {name: free_port() for name in ("port", "hub-port", "hub-api-port", "proxy-api-port")}
    args = [f"--{name}={port}" for name, port in ports.items()]
    command = [sys.executable, "-m", "enclave_api", "up", "--data-dir", str(data_dir), *args,
               f"--homes={home_root}", f"--runtime={RUNTIME}", f"--session-prefix={TEST_PREFIX}"]  # fmt: skip
    env = os.environ | {"ENCLAVE_LOG_JSON": "false", "ENCLAVE_HUB_PROXY": str(find_proxy())}
    up = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    hub_url = f"http://127.0.0.1:{ports['hub-port']}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert up.poll() is None, up.communicate()
            try:
                login = httpx.get(f"{hub_url}/hub/login", timeout=2)
                api = httpx.get(f"http://127.0.0.1:{ports['port']}/healthz", timeout=2)
                if login.status_code == 200 and api.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "enclave up did not bring up API and hub"
            time.sleep(0.3)
        assert "sign in with your enclave account" in login.text
        hub_pid = int((data_dir / "hub" / "jupyterhub.pid").read_text())
        proxy_pid = int((data_dir / "hub" / "proxy.pid").read_text())
        assert oct((data_dir / "hub" / "jupyterhub_config.py").stat().st_mode & 0o777) == "0o600"
        config = (data_dir / "hub" / "jupyterhub_config.py").read_text()
        assert "enc_" not in config and 'os.environ["ENCLAVE_HUB_SERVICE_TOKEN"]' in config  # no secrets
    finally:
        up.send_signal(signal.SIGINT)
        out, err = up.communicate(timeout=90)
    assert up.returncode == 0, err
    assert f"API: http://127.0.0.1:{ports['port']}" in out and f"Hub: {hub_url}" in out
    for pid in (hub_pid, proxy_pid):
        assert not Path(f"/proc/{pid}").exists(), f"process {pid} outlived enclave up"
    # The hub's credential was issued for this run (and is the only live one).
    enclave = Enclave.open(Settings(data_dir=data_dir, log_json=False))
    try:
        issued = [e for e in audit_events(enclave, "token.issued") if e["subject"]["user"] == "jupyterhub"]
        assert len(issued) == 1
    finally:
        enclave.close()


def test_no_hub_without_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    layout = HubLayout(state_dir=tmp_path, proxy_command=str(find_proxy()))
    reason = unavailable_reason(layout)
    assert reason is not None and "not running as root" in reason


SERVICE = "/services/enclave-api"


def test_one_hub_login_also_logs_the_browser_into_the_enclave_api(world: World) -> None:
    browser, user = world.browser("researcher")
    try:
        landing = browser.client.get(f"{SERVICE}/")  # → /login → hub OAuth → /oauth_callback → /
        assert landing.status_code == 200, landing.text[:2000]
        assert landing.url.path == f"{SERVICE}/"
        assert landing.json() | {"api": None} == {
            "id": user, "name": "Park Minji", "roles": ["researcher"], "org": "aster-pharma", "api": None,
        }  # fmt: skip
        cookie = next(c for c in browser.client.cookies.jar if c.name == "enclave_web")
        assert cookie.path == SERVICE and cookie.has_nonstandard_attr("HttpOnly")
        # The whole API is there, through the hub's proxy, with the browser login.
        grants = browser.client.get(f"{SERVICE}/v1/grants")
        assert grants.status_code == 200 and grants.json()
        # Changes need the anti-CSRF header; a cross-site form cannot send it.
        project = {"title": "From the browser", "purpose": "One login"}
        assert browser.client.post(f"{SERVICE}/v1/projects", json=project).status_code == 403
        created = browser.client.post(
            f"{SERVICE}/v1/projects", json=project, headers={"X-Requested-With": "enclave"}
        )
        assert created.status_code == 201, created.text
        # Records stay session-only, also for a logged-in browser.
        assert browser.client.get(f"{SERVICE}/v1/datasets/wdbc/records").status_code == 403
        # The login token works only as the cookie.
        as_bearer = httpx.get(world.api_url + "/v1/me", headers={"Authorization": f"Bearer {cookie.value}"})
        assert as_bearer.status_code == 401
        logins = [e for e in audit_events(world.enclave, "auth.login") if e["subject"]["user"] == user]
        assert logins[-1]["details"]["via"] == "hub_oauth"
        # Logging out revokes it.
        out = browser.client.post(f"{SERVICE}/logout", headers={"X-Requested-With": "enclave"})
        assert out.status_code == 204
        assert httpx.get(
            world.api_url + f"{SERVICE}/v1/me", cookies={"enclave_web": str(cookie.value)}
        ).status_code == 401  # fmt: skip
    finally:
        browser.close()


def test_a_forged_oauth_callback_is_refused(world: World) -> None:
    browser, _ = world.browser("auditor")
    try:
        forged = browser.client.get(f"{SERVICE}/oauth_callback", params={"code": "x", "state": "y"})
        assert forged.status_code == 403
        assert "login expired or did not start here" in forged.json()["detail"]
        assert not any(c.name == "enclave_web" for c in browser.client.cookies.jar)
    finally:
        browser.close()
