"""Notebook sessions: the hub's login and session endpoints, session credentials, and how sessions end.

The hub is a real service account (role ``hub``) calling the real API; the only fake is the session
control plug-in (:class:`RecordingControl`, a subclass of the real one), standing in for JupyterHub's
REST API so that the tests can see which servers the enclave asks it to stop.
"""

from __future__ import annotations

import io
import json
import time
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api.api.problems import DenialRecorder
from enclave_api.context import Enclave
from enclave_api.hub.control import SessionControl
from enclave_api.models import Grant, NotebookSession, Organisation, User
from enclave_api.roles import Role
from enclave_api.services import access, identity, projects, sessions
from enclave_api.services.identity import Principal
from tests.conftest import audit_events, bearer, session_token

HUB_USER = "jupyterhub"
SANDBOX = "10.200.0.2"  # the address of a sandbox as the API sees it
NO_GRANT_USER = "no.grant"
LOGIN_REFUSED = "invalid username or password"


class RecordingControl(SessionControl):
    """Remembers every server the enclave asks to stop; answers ``confirms`` (False: not yet)."""

    def __init__(self, confirms: bool = True) -> None:
        self.confirms = confirms
        self.calls: list[tuple[str, str]] = []

    def stop_server(self, user_id: str, server: str) -> bool:
        self.calls.append((user_id, server))
        return self.confirms


@pytest.fixture
def control(seeded_enclave: Enclave) -> RecordingControl:
    recording = RecordingControl()
    seeded_enclave.session_control = recording
    return recording


@pytest.fixture
def hub_token(seeded_enclave: Enclave) -> str:
    """The API token of the hub's service account, in the demo's operator organisation."""
    with seeded_enclave.write() as session:
        org = session.get(Organisation, "enclave-operator")
        assert org is not None and org.kind == "operator"
        identity.create_user(
            seeded_enclave, session, "test", HUB_USER, "JupyterHub", org.id, [Role.HUB]
        )  # fmt: skip
        session.flush()
        return identity.issue_token(seeded_enclave, session, "test", HUB_USER, name="hub").token


@pytest.fixture
def logins(seeded_enclave: Enclave) -> dict[str, dict[str, str]]:
    doc: dict[str, dict[str, str]] = json.loads((seeded_enclave.data_dir / "demo-logins.json").read_text())
    return doc


def _add_user(
    enclave: Enclave, user_id: str, org: str, roles: list[Role], password: str | None = None
) -> str:
    """A new user (optionally in the demo project, when a researcher) and its API token."""
    with enclave.write() as session:
        identity.create_user(enclave, session, "test", user_id, user_id, org, roles, password)
        session.flush()
        return identity.issue_token(enclave, session, "test", user_id).token


def _join_demo_project(enclave: Enclave, user_id: str) -> None:
    """Make ``user_id`` a member of the demo project, which holds the active grant on wdbc."""
    with enclave.write() as session:
        owner = session.get(User, "minji.park")
        assert owner is not None
        project_id = _wdbc_grant(enclave).project_id
        projects.add_member(enclave, session, Principal.local(owner), project_id, user_id)


def _one_day_grant(client: TestClient, tokens: dict[str, str]) -> str:
    """A new project of the demo researcher with a one-day grant on dasom_registry."""
    project = client.post(
        "/v1/projects", json={"title": "Short study", "purpose": "One day only"},
        headers=bearer(tokens["researcher"]),
    ).json()["id"]  # fmt: skip
    request = client.post(
        "/v1/access-requests",
        json={"project_id": project, "dataset_id": "dasom_registry", "purpose": "Pilot", "epsilon": 1.0,
              "delta": 0, "days": 1, "dua_accepted": True},
        headers=bearer(tokens["researcher"]),
    ).json()["id"]  # fmt: skip
    decided = client.post(
        f"/v1/access-requests/{request}/decision",
        json={"decision": "approve", "reason": "ok"},
        headers=bearer(tokens["custodian2"]),
    )
    assert decided.status_code == 200, decided.text
    short_id = decided.json()["grant_id"]
    return str(short_id)


def _wdbc_grant(enclave: Enclave) -> Grant:
    with enclave.read() as session:
        return session.scalars(select(Grant).where(Grant.dataset_id == "wdbc")).one()


def _disable(enclave: Enclave, user_id: str) -> None:
    with enclave.write() as session:
        user = session.get(User, user_id)
        assert user is not None
        user.disabled = True


def _start(
    client: TestClient, hub_token: str, user: str = "minji.park", server: str = "", **extra: Any
) -> Response:
    return client.post(
        "/v1/sessions", json={"user": user, "server": server} | extra, headers=bearer(hub_token)
    )


def _started(client: TestClient, hub_token: str, **kwargs: Any) -> dict[str, Any]:
    response = _start(client, hub_token, **kwargs)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def _count(enclave: Enclave, event_type: str) -> int:
    with enclave.read() as session:
        return int(session.scalar(select(func.count()).where(AuditEvent.type == event_type)) or 0)


def _record(enclave: Enclave, session_id: str) -> NotebookSession:
    with enclave.read() as session:
        record = session.get(NotebookSession, session_id)
        assert record is not None
        return record


def _me(client: TestClient, token: str) -> Response:
    return client.get("/v1/me", headers=bearer(token))


def _records(client: TestClient, token: str, dataset: str = "wdbc") -> Response:
    return client.get(f"/v1/datasets/{dataset}/records", headers=bearer(token))


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _freeze(enclave: Enclave) -> datetime:
    now = enclave.now()
    enclave.clock = lambda: now
    return now


# ------------------------------------------------------------------------------- the hub's account


def test_only_the_hub_account_uses_the_hub_endpoints(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str], hub_token: str
) -> None:
    login = {"username": "minji.park", "password": "irrelevant-password"}
    session_credential = session_token(seeded_enclave, "minji.park")
    started_before = _count(seeded_enclave, "session.started")
    for name, token in (*((r, tokens[r]) for r in ("researcher", "admin", "auditor", "custodian")),
                        ("session", session_credential)):  # fmt: skip
        calls = [
            seeded_client.post("/v1/hub/login", json=login, headers=bearer(token)),
            seeded_client.get("/v1/hub/users/minji.park", headers=bearer(token)),
            _start(seeded_client, token),
        ]
        assert [c.status_code for c in calls] == [403, 403, 403], name
        assert calls[0].json()["detail"] == "this needs the role hub"
    anonymous = seeded_client.post("/v1/hub/login", json=login)
    assert anonymous.status_code == 401
    # Refused logins were never attempted, refused starts opened nothing.
    assert _count(seeded_enclave, "auth.login_failed") == 0
    assert _count(seeded_enclave, "session.started") == started_before
    me = _me(seeded_client, hub_token).json()
    assert (me["id"], me["roles"], me["org"]) == (HUB_USER, ["hub"], "enclave-operator")
    assert seeded_client.get("/v1/hub/users/minji.park", headers=bearer(hub_token)).status_code == 200


# ------------------------------------------------------------------------------------------ login


def test_hub_login_with_the_right_password(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, logins: dict[str, dict[str, str]]
) -> None:
    response = seeded_client.post("/v1/hub/login", json=logins["researcher"], headers=bearer(hub_token))
    assert response.status_code == 200, response.text
    body = response.json()
    grant = _wdbc_grant(seeded_enclave)
    assert (body["id"], body["name"], body["roles"], body["org"], body["disabled"]) == (
        "minji.park", "Park Minji", ["researcher"], "aster-pharma", False,
    )  # fmt: skip
    assert [(g["id"], g["dataset_id"], g["status"]) for g in body["grants"]] == [(grant.id, "wdbc", "active")]
    assert _time(body["grants"][0]["expires_at"]) == grant.expires_at
    # A custodian logs in too (the portal); no grants of its own.
    custodian = seeded_client.post("/v1/hub/login", json=logins["custodian"], headers=bearer(hub_token))
    assert custodian.status_code == 200
    assert (custodian.json()["id"], custodian.json()["roles"], custodian.json()["grants"]) == (
        "jiho.kim", ["custodian"], [],
    )  # fmt: skip
    events = audit_events(seeded_enclave, "auth.login")
    assert [(e["actor"], e["subject"], e["details"]) for e in events] == [
        ("minji.park", {"user": "minji.park"}, {"via": "hub"}),
        ("jiho.kim", {"user": "jiho.kim"}, {"via": "hub"}),
    ]
    assert audit_events(seeded_enclave, "auth.login_failed") == []


def test_hub_login_failures_look_alike_and_are_audited(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, logins: dict[str, dict[str, str]]
) -> None:
    _add_user(seeded_enclave, "no.password", "aster-pharma", [Role.RESEARCHER])
    _disable(seeded_enclave, "auditor.han")
    denied_before = _count(seeded_enclave, "access.denied")
    attempts = [
        ({"username": "minji.park", "password": logins["researcher"]["password"] + "x"}, "bad_password"),
        ({"username": "nobody.here", "password": "some-password-123"}, "unknown_user"),
        ({"username": "Not An Account!", "password": "some-password-123"}, "unknown_user"),
        (logins["auditor"], "disabled"),  # the right password of a disabled account
        ({"username": "no.password", "password": "some-password-123"}, "no_password"),
        ({"username": "a" * 150, "password": "some-password-123"}, "unknown_user"),
    ]
    for body, _reason in attempts:
        response = seeded_client.post("/v1/hub/login", json=body, headers=bearer(hub_token))
        assert response.status_code == 401, body
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["detail"] == LOGIN_REFUSED, body
        assert response.json()["title"] == "Unauthenticated"
    failed = audit_events(seeded_enclave, "auth.login_failed")
    assert [(e["actor"], e["subject"]["username"], e["details"]) for e in failed] == [
        ("anonymous", body["username"][:64], {"via": "hub", "reason": reason}) for body, reason in attempts
    ]
    assert audit_events(seeded_enclave, "auth.login") == []
    # Already audited as failed logins: not a second time as refused calls.
    assert _count(seeded_enclave, "access.denied") == denied_before


@pytest.mark.parametrize(
    "content",
    [
        b'{"username": "minji.park"}',  # no password
        b'{"password": "some-password-123"}',  # no username
        b'{"username": "minji.park", "password": "some-password-123", "remember": true}',
        json.dumps({"username": "m" * 10_000, "password": "some-password-123"}).encode(),
        b'{"username": 123, "password": "some-password-123"}',
        b'{"username": "minji.park", "password": ["some-password-123"]}',
        b'{"username": "", "password": "some-password-123"}',
        b'["minji.park", "some-password-123"]',
        b'{"username": "minji.park", "password": "unterminated',
        b"",
    ],
)
def test_malformed_logins_are_422_and_not_audited(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, content: bytes
) -> None:
    response = seeded_client.post(
        "/v1/hub/login",
        content=content,
        headers=bearer(hub_token) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == 422
    assert _count(seeded_enclave, "auth.login") == 0
    assert _count(seeded_enclave, "auth.login_failed") == 0


def test_hub_looks_up_users(seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str) -> None:
    minji = seeded_client.get("/v1/hub/users/minji.park", headers=bearer(hub_token))
    assert minji.status_code == 200
    assert [g["id"] for g in minji.json()["grants"]] == [_wdbc_grant(seeded_enclave).id]
    assert minji.json()["session_refused"] is None
    # The spawn page shows the enclave's own reason (the rule that POST /v1/sessions applies).
    custodian = seeded_client.get("/v1/hub/users/jiho.kim", headers=bearer(hub_token)).json()
    assert "not a researcher" in custodian["session_refused"]
    assert seeded_client.get("/v1/hub/users/nobody.here", headers=bearer(hub_token)).status_code == 404
    _disable(seeded_enclave, "minji.park")
    disabled = seeded_client.get("/v1/hub/users/minji.park", headers=bearer(hub_token)).json()
    assert (disabled["disabled"], disabled["grants"]) == (True, [])
    assert disabled["session_refused"] == "the account minji.park is disabled"


# ------------------------------------------------------------------------------- starting sessions


def test_researcher_with_a_grant_starts_a_session(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str
) -> None:
    now = _freeze(seeded_enclave)
    grant = _wdbc_grant(seeded_enclave)
    body = _started(seeded_client, hub_token, server="analysis", address=SANDBOX)
    assert body["token"].startswith("enc_")
    assert (body["user"], body["server"], body["address"], body["grants"]) == (
        "minji.park", "analysis", SANDBOX, [grant.id],
    )  # fmt: skip
    assert (body["ended_at"], body["end_reason"]) == (None, None)
    expires = _time(body["expires_at"])
    assert expires <= grant.expires_at
    assert expires == now + timedelta(hours=seeded_enclave.settings.session_max_hours)
    [event] = audit_events(seeded_enclave, "session.started")
    record = _record(seeded_enclave, body["id"])
    assert event["actor"] == HUB_USER
    assert event["subject"] == {"session": body["id"], "user": "minji.park", "token": record.token_id}
    assert event["details"] == {
        "server": "analysis",
        "address": SANDBOX,
        "grants": [grant.id],
        "expires_at": expires.isoformat(),
    }
    issued = [
        e for e in audit_events(seeded_enclave, "token.issued") if e["subject"]["token"] == record.token_id
    ]
    assert [e["details"]["kind"] for e in issued] == ["session"]
    # The token is shown once: the listing never carries it.
    listed = seeded_client.get("/v1/sessions", headers=bearer(hub_token)).json()
    assert [s["id"] for s in listed] == [body["id"]]
    assert "token" not in listed[0]


def test_session_ends_no_later_than_the_soonest_grant(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, tokens: dict[str, str]
) -> None:
    seeded_enclave.settings.session_max_hours = 168
    short_id = _one_day_grant(seeded_client, tokens)
    with seeded_enclave.read() as session:
        short = session.get(Grant, short_id)
        assert short is not None
    body = _started(seeded_client, hub_token)
    assert sorted(body["grants"]) == sorted([short_id, _wdbc_grant(seeded_enclave).id])
    assert _time(body["expires_at"]) == short.expires_at  # one day, not the 168 h allowed
    assert _time(body["expires_at"]) < _wdbc_grant(seeded_enclave).expires_at


def test_sessions_are_refused_with_a_reason(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str
) -> None:
    _add_user(seeded_enclave, NO_GRANT_USER, "aster-pharma", [Role.RESEARCHER])
    no_grant = _start(seeded_client, hub_token, user=NO_GRANT_USER)
    assert no_grant.status_code == 403
    detail = no_grant.json()["detail"]
    assert detail.startswith(f"{NO_GRANT_USER} holds no active data access grant")
    assert "/v1/access-requests" in detail and "custodian" in detail
    custodian = _start(seeded_client, hub_token, user="jiho.kim")
    assert custodian.status_code == 403
    assert "not a researcher" in custodian.json()["detail"]
    assert _start(seeded_client, hub_token, user="nobody.here").status_code == 404
    for address in ("not-an-ip", "10.200.0.256", "10.200.0.2/24", "x" * 46):
        response = _start(seeded_client, hub_token, address=address)
        assert response.status_code == 422, address
    assert _start(seeded_client, hub_token, address="not-an-ip").json()["field"] == "address"
    for server in ("a/b", "with space", "x" * 256):
        assert _start(seeded_client, hub_token, server=server).status_code == 422, server
    _disable(seeded_enclave, "minji.park")
    disabled = _start(seeded_client, hub_token)
    assert disabled.status_code == 403
    assert "disabled" in disabled.json()["detail"]
    assert audit_events(seeded_enclave, "session.started") == []
    with seeded_enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(NotebookSession)) == 0


def test_addresses_are_stored_in_canonical_form(seeded_client: TestClient, hub_token: str) -> None:
    body = _started(seeded_client, hub_token, address="FD00:0:0::0A")
    assert body["address"] == "fd00::a"


def test_a_new_session_of_the_same_server_supersedes_the_old(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str
) -> None:
    first = _started(seeded_client, hub_token)
    assert _me(seeded_client, first["token"]).status_code == 200
    second = _started(seeded_client, hub_token)
    refused = _me(seeded_client, first["token"])
    assert refused.status_code == 401
    assert "session has ended" in refused.json()["detail"]
    assert _me(seeded_client, second["token"]).status_code == 200
    ended = audit_events(seeded_enclave, "session.ended")
    assert [(e["actor"], e["subject"]["session"], e["details"]) for e in ended] == [
        (HUB_USER, first["id"], {"reason": "superseded", "grant": None})
    ]
    # Another server of the same user is a session of its own.
    other = _started(seeded_client, hub_token, server="lab")
    listed = seeded_client.get("/v1/sessions?open=true", headers=bearer(hub_token)).json()
    assert {s["id"] for s in listed} == {second["id"], other["id"]}
    assert _me(seeded_client, second["token"]).status_code == 200


def test_superseding_does_not_stop_the_new_server(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, control: RecordingControl
) -> None:
    """The superseded session's server is the one the hub is starting again under the same name:
    asking the hub to stop (user, server) afterwards would stop the new, legitimate server."""
    _started(seeded_client, hub_token)
    second = _started(seeded_client, hub_token)
    assert sessions.reap(seeded_enclave) == []
    assert control.calls == []
    assert _me(seeded_client, second["token"]).status_code == 200


# ----------------------------------------------------------------------- what a session token is


def test_session_token_works_only_from_its_sandbox(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str
) -> None:
    token = _started(seeded_client, hub_token, address=SANDBOX)["token"]
    outside = _records(seeded_client, token)
    assert outside.status_code == 401
    assert "only from inside its own notebook session" in outside.json()["detail"]
    neighbour = TestClient(seeded_client.app, client=("10.200.0.3", 50000))
    assert _records(neighbour, token).status_code == 401
    inside = TestClient(seeded_client.app, client=(SANDBOX, 50000))
    response = _records(inside, token)
    assert response.status_code == 200, response.text
    assert response.headers["x-enclave-grant"] == _wdbc_grant(seeded_enclave).id
    table = pa.ipc.open_stream(io.BytesIO(response.content)).read_all()
    assert table.num_rows == 569  # WDBC
    reads = audit_events(seeded_enclave, "data.read")
    assert reads[-1]["actor"] == "minji.park"
    denied = [e for e in audit_events(seeded_enclave, "access.denied") if e["details"]["status"] == 401]
    assert [(e["details"]["address"], e["subject"]["user"]) for e in denied] == [
        ("testclient", None),
        ("10.200.0.3", None),
    ]


def test_session_token_carries_only_the_researcher_role(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str
) -> None:
    api_token = _add_user(
        seeded_enclave, "dual.role", "hanbit-cancer-center", [Role.RESEARCHER, Role.CUSTODIAN]
    )
    _join_demo_project(seeded_enclave, "dual.role")
    assert sorted(_me(seeded_client, api_token).json()["roles"]) == ["custodian", "researcher"]
    token = _started(seeded_client, hub_token, user="dual.role")["token"]
    assert _me(seeded_client, token).json()["roles"] == ["researcher"]
    # With its API token this user could revoke the wdbc grant (custodian of its hospital); from a
    # session it cannot.
    grant = _wdbc_grant(seeded_enclave)
    revoke = seeded_client.post(f"/v1/grants/{grant.id}/revoke", headers=bearer(token))
    assert revoke.status_code == 403
    assert _wdbc_grant(seeded_enclave).revoked_at is None
    assert _records(seeded_client, token).status_code == 200


def test_api_tokens_cannot_read_records_or_submit_egress(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str]
) -> None:
    with seeded_enclave.read() as session:
        token_id = identity.authenticate(
            seeded_enclave, session, tokens["researcher"], seeded_enclave.now()
        ).token_id  # fmt: skip
    response = _records(seeded_client, tokens["researcher"])
    assert response.status_code == 403
    assert "only from inside a notebook session" in response.json()["detail"]
    egress = seeded_client.post(
        "/v1/egress-requests",
        files={"files": ("table.csv", b"stage,n\nI,12\n", "text/csv")},
        data={"justification": "Aggregate table for the paper."},
        headers=bearer(tokens["researcher"]),
    )
    assert egress.status_code == 403
    egress_detail = egress.json()["detail"]
    assert egress_detail == response.json()["detail"]
    # One event per endpoint tried: the auditor sees both what was read and what was sent.
    denied = audit_events(seeded_enclave, "access.denied")
    assert [(e["actor"], e["subject"]) for e in denied] == [
        ("minji.park", {"user": "minji.park", "token": token_id})
    ] * 2
    assert [e["details"] for e in denied] == [
        {
            "status": 403,
            "method": method,
            "path": path,
            "reason": response.json()["detail"],
            "address": "testclient",
            "token_kind": "api",
            "repeats": 1,
        }
        for method, path in (("GET", "/v1/datasets/wdbc/records"), ("POST", "/v1/egress-requests"))
    ]
    assert _count(seeded_enclave, "data.read") == 0


# ----------------------------------------------------------------------------------- ending sessions


def test_hub_ends_a_session(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, control: RecordingControl
) -> None:
    started = _started(seeded_client, hub_token)
    url = f"/v1/sessions/{started['id']}/end"
    response = seeded_client.post(url, json={}, headers=bearer(hub_token))
    assert response.status_code == 200, response.text
    assert (response.json()["end_reason"], response.json()["ended_at"] is not None) == ("stopped", True)
    refused = _me(seeded_client, started["token"])
    assert refused.status_code == 401
    assert "session has ended" in refused.json()["detail"]
    again = seeded_client.post(url, headers=bearer(hub_token))
    assert again.status_code == 200
    assert again.json()["ended_at"] == response.json()["ended_at"]
    ended = audit_events(seeded_enclave, "session.ended")
    assert [(e["actor"], e["subject"], e["details"]) for e in ended] == [
        (HUB_USER, {"session": started["id"], "user": "minji.park"}, {"reason": "stopped", "grant": None})
    ]
    # The hub stopped the server itself: nothing is left to stop.
    assert control.calls == []
    assert _record(seeded_enclave, started["id"]).server_stopped is True
    assert sessions.stop_pending_servers(seeded_enclave) == 0
    assert seeded_client.post("/v1/sessions/ns-unknown/end", headers=bearer(hub_token)).status_code == 404
    assert seeded_client.post(url, json={"reason": "bored"}, headers=bearer(hub_token)).status_code == 422


def test_admin_ends_a_session_and_the_hub_stops_its_server(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    hub_token: str,
    tokens: dict[str, str],
    control: RecordingControl,
) -> None:
    started = _started(seeded_client, hub_token, server="lab", address=SANDBOX)
    for role in ("researcher", "custodian", "auditor"):
        assert seeded_client.post(
            f"/v1/sessions/{started['id']}/end", headers=bearer(tokens[role])
        ).status_code == 403, role  # fmt: skip
    assert control.calls == []
    response = seeded_client.post(f"/v1/sessions/{started['id']}/end", headers=bearer(tokens["admin"]))
    assert response.status_code == 200
    assert control.calls == [("minji.park", "lab")]
    assert _record(seeded_enclave, started["id"]).server_stopped is True
    inside = TestClient(seeded_client.app, client=(SANDBOX, 50000))
    assert _records(inside, started["token"]).status_code == 401
    [event] = audit_events(seeded_enclave, "session.ended")
    assert (event["actor"], event["details"]) == ("admin", {"reason": "stopped", "grant": None})


def test_who_may_list_sessions(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, tokens: dict[str, str]
) -> None:
    first = _started(seeded_client, hub_token, server="one")
    second = _started(seeded_client, hub_token, server="two")
    seeded_client.post(f"/v1/sessions/{first['id']}/end", headers=bearer(hub_token))
    for role in ("auditor", "admin"):
        listed = seeded_client.get("/v1/sessions", params={"open": "true"}, headers=bearer(tokens[role]))
        assert listed.status_code == 200, role
        assert [(s["id"], s["user"], s["ended_at"]) for s in listed.json()] == [
            (second["id"], "minji.park", None)
        ]
    everything = seeded_client.get("/v1/sessions", headers=bearer(tokens["auditor"])).json()
    assert {s["id"]: s["end_reason"] for s in everything} == {first["id"]: "stopped", second["id"]: None}
    for role in ("researcher", "custodian"):
        assert seeded_client.get("/v1/sessions", headers=bearer(tokens[role])).status_code == 403, role
    assert seeded_client.get("/v1/sessions", headers=bearer(second["token"])).status_code == 403


# ---------------------------------------------------------------------------------------- revocation


def test_revoking_a_grant_ends_every_members_session(
    seeded_client: TestClient,
    seeded_enclave: Enclave,
    hub_token: str,
    tokens: dict[str, str],
    control: RecordingControl,
) -> None:
    _add_user(seeded_enclave, "colleague", "aster-pharma", [Role.RESEARCHER])
    _join_demo_project(seeded_enclave, "colleague")
    grant = _wdbc_grant(seeded_enclave)
    mine = _started(seeded_client, hub_token, server="lab")
    theirs = _started(seeded_client, hub_token, user="colleague")
    response = seeded_client.post(
        f"/v1/grants/{grant.id}/revoke", json={"reason": "DUA breach"}, headers=bearer(tokens["custodian"])
    )
    assert response.status_code == 200, response.text
    for started in (mine, theirs):
        refused = _me(seeded_client, started["token"])
        assert refused.status_code == 401
        assert "session has ended" in refused.json()["detail"]
        assert _record(seeded_enclave, started["id"]).end_reason == "grant_revoked"
    ended = audit_events(seeded_enclave, "session.ended")
    summary = sorted(
        (e["actor"], e["subject"]["user"], e["details"]["reason"], e["details"]["grant"]) for e in ended
    )
    assert summary == [
        ("jiho.kim", "colleague", "grant_revoked", grant.id),
        ("jiho.kim", "minji.park", "grant_revoked", grant.id),
    ]
    # The revocation and the ends are one change: their events are consecutive in the log.
    [revoked] = audit_events(seeded_enclave, "grant.revoked")
    assert sorted(e["index"] for e in ended) == [revoked["index"] + 1, revoked["index"] + 2]
    assert sorted(control.calls) == [("colleague", ""), ("minji.park", "lab")]
    assert sessions.stop_pending_servers(seeded_enclave) == 0
    # Without another active grant no session starts again.
    assert _start(seeded_client, hub_token).status_code == 403


def test_revocation_and_session_ends_commit_together(seeded_enclave: Enclave) -> None:
    token = session_token(seeded_enclave, "minji.park")
    grant = _wdbc_grant(seeded_enclave)
    with seeded_enclave.read() as session:
        user = session.get(User, "jiho.kim")
        assert user is not None
        custodian = Principal.local(user)

    def revoke_then_abandon() -> None:
        with seeded_enclave.write() as session:
            access.revoke_grant(seeded_enclave, session, custodian, grant.id, "test")
            assert sessions.open_sessions(session) == []  # ended inside the revoking transaction
            raise RuntimeError("abandon the revocation")

    with pytest.raises(RuntimeError, match="abandon"):
        revoke_then_abandon()
    # Rolled back together: the grant is active, the session open, its credential works.
    assert _wdbc_grant(seeded_enclave).revoked_at is None
    with seeded_enclave.read() as session:
        assert len(sessions.open_sessions(session)) == 1
        assert identity.authenticate(seeded_enclave, session, token, seeded_enclave.now()).id == "minji.park"
    assert audit_events(seeded_enclave, "session.ended") == []


def test_unconfirmed_stops_are_retried(
    seeded_client: TestClient, seeded_enclave: Enclave, hub_token: str, tokens: dict[str, str]
) -> None:
    hub_down = RecordingControl(confirms=False)
    seeded_enclave.session_control = hub_down
    started = _started(seeded_client, hub_token)
    grant = _wdbc_grant(seeded_enclave)
    response = seeded_client.post(f"/v1/grants/{grant.id}/revoke", headers=bearer(tokens["admin"]))
    assert response.status_code == 200
    assert hub_down.calls == [("minji.park", "")]
    # The credential is dead at once even though the server is not known to be stopped.
    assert _me(seeded_client, started["token"]).status_code == 401
    record = _record(seeded_enclave, started["id"])
    assert (record.end_reason, record.server_stopped) == ("grant_revoked", False)
    assert sessions.stop_pending_servers(seeded_enclave) == 0
    assert hub_down.calls == [("minji.park", "")] * 2
    hub_back = RecordingControl()
    seeded_enclave.session_control = hub_back
    assert sessions.stop_pending_servers(seeded_enclave) == 1
    assert hub_back.calls == [("minji.park", "")]
    assert _record(seeded_enclave, started["id"]).server_stopped is True
    assert sessions.stop_pending_servers(seeded_enclave) == 0
    assert hub_back.calls == [("minji.park", "")]
    assert len(audit_events(seeded_enclave, "session.ended")) == 1


# -------------------------------------------------------------------------------------------- expiry


def test_sessions_end_when_their_grant_expires(
    seeded_client: TestClient, seeded_enclave: Enclave, control: RecordingControl
) -> None:
    grant = _wdbc_grant(seeded_enclave)
    token = session_token(seeded_enclave, "minji.park")
    with seeded_enclave.read() as session:
        [record] = sessions.open_sessions(session)
    assert sessions.reap(seeded_enclave) == []  # nothing has finished yet
    seeded_enclave.clock = lambda: grant.expires_at + timedelta(seconds=1)
    assert sessions.reap(seeded_enclave) == [record.id]
    assert sessions.reap(seeded_enclave) == []
    assert _record(seeded_enclave, record.id).end_reason == "grant_expired"
    [event] = audit_events(seeded_enclave, "session.ended")
    assert (event["actor"], event["details"]) == ("enclave", {"reason": "grant_expired", "grant": grant.id})
    assert control.calls == [("minji.park", "")]
    response = _me(seeded_client, token)
    assert response.status_code == 401
    assert "session has ended" in response.json()["detail"]


def test_a_grant_revoked_before_the_session_does_not_end_it(
    seeded_client: TestClient, seeded_enclave: Enclave, tokens: dict[str, str], control: RecordingControl
) -> None:
    """Only grants that stop being active *during* a session end it: one revoked last week, whose
    original expiry passes while the researcher works under another, active grant, is not a reason."""
    seeded_enclave.settings.session_max_hours = 168
    revoked = _one_day_grant(seeded_client, tokens)
    response = seeded_client.post(f"/v1/grants/{revoked}/revoke", headers=bearer(tokens["custodian2"]))
    assert response.status_code == 200
    later = seeded_enclave.now() + timedelta(hours=1)
    seeded_enclave.clock = lambda: later
    token = session_token(seeded_enclave, "minji.park")  # the wdbc grant is still active
    two_days = later + timedelta(days=2)
    seeded_enclave.clock = lambda: two_days
    ended = sessions.reap(seeded_enclave)
    assert [e["details"] for e in audit_events(seeded_enclave, "session.ended")] == []
    assert ended == []
    assert control.calls == []
    assert _me(seeded_client, token).status_code == 200


def test_sessions_end_at_their_maximum_length(
    seeded_client: TestClient, seeded_enclave: Enclave, control: RecordingControl
) -> None:
    start = _freeze(seeded_enclave)
    seeded_enclave.settings.session_max_hours = 0.5
    token = session_token(seeded_enclave, "minji.park")
    seeded_enclave.clock = lambda: start + timedelta(minutes=29)
    assert sessions.reap(seeded_enclave) == []
    assert _me(seeded_client, token).status_code == 200
    seeded_enclave.clock = lambda: start + timedelta(minutes=30)
    # The credential expired with the session, even before the reaper ran.
    response = _me(seeded_client, token)
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    [ended] = sessions.reap(seeded_enclave)
    assert _record(seeded_enclave, ended).end_reason == "expired"
    [event] = audit_events(seeded_enclave, "session.ended")
    assert event["details"] == {"reason": "expired", "grant": None}
    assert control.calls == [("minji.park", "")]
    assert "session has ended" in _me(seeded_client, token).json()["detail"]


def test_sessions_end_when_the_account_is_disabled(
    seeded_enclave: Enclave, control: RecordingControl
) -> None:
    session_token(seeded_enclave, "minji.park")
    _disable(seeded_enclave, "minji.park")
    [ended] = sessions.reap(seeded_enclave)
    assert _record(seeded_enclave, ended).end_reason == "account_disabled"
    assert control.calls == [("minji.park", "")]


# ------------------------------------------------------------------------------ refused-call folding


def test_repeated_refusals_are_folded_into_one_event(
    seeded_client: TestClient, seeded_enclave: Enclave
) -> None:
    for _ in range(5):
        response = seeded_client.get("/v1/me", headers=bearer("enc_not-a-real-token"))
        assert response.status_code == 401
    denied = audit_events(seeded_enclave, "access.denied")
    assert [(e["actor"], e["subject"], e["details"]) for e in denied] == [
        (
            "anonymous",
            {"user": None, "token": None},
            {
                "status": 401,
                "method": "GET",
                "path": "/v1/me",
                "reason": "invalid token",
                "address": "testclient",
                "token_kind": None,
                "repeats": 1,
            },
        )
    ]
    # Probing many ids of one endpoint is one kind of refusal: the log cannot be flooded that way.
    for n in range(20):
        assert seeded_client.get(f"/v1/releases/rel-{n:012x}", headers=bearer("enc_x")).status_code == 401
    probes = [
        e for e in audit_events(seeded_enclave, "access.denied") if e["details"]["path"].startswith("/v1/rel")
    ]
    assert [e["details"]["path"] for e in probes] == ["/v1/releases/rel-000000000000"]
    # Another kind of refusal (another caller address) is its own event.
    elsewhere = TestClient(seeded_client.app, client=("192.0.2.7", 50000))
    assert elsewhere.get("/v1/me", headers=bearer("enc_not-a-real-token")).status_code == 401
    assert [e["details"]["address"] for e in audit_events(seeded_enclave, "access.denied")] == [
        "testclient",
        "testclient",
        "192.0.2.7",
    ]


def test_denial_recorder_folds_repeats_into_the_next_event() -> None:
    recorder = DenialRecorder(window=0.2)
    key = (401, "203.0.113.9", None, "invalid token")
    assert recorder.take(key) == 1
    assert [recorder.take(key) for _ in range(4)] == [0, 0, 0, 0]
    assert recorder.take((403, "203.0.113.9", "minji.park", "no")) == 1  # another kind
    time.sleep(0.3)
    assert recorder.take(key) == 5  # this call and the four folded ones
    assert recorder.take(key) == 0
    time.sleep(0.3)
    assert recorder.take(key) == 2
    time.sleep(0.3)
    assert recorder.take(key) == 1


def test_a_session_opened_without_an_address_is_bound_to_its_first_caller(
    seeded_enclave: Enclave, hub_token: str
) -> None:
    """A Kubernetes pod gets its IP after its credential: the first call made with it binds the
    session to that address, and the credential is useless from anywhere else from then on."""
    from enclave_api.api.app import create_app

    app = create_app(enclave=seeded_enclave)
    hub = TestClient(app, client=("10.60.0.2", 40000))
    body = _started(hub, hub_token)
    assert body["address"] is None
    pod = TestClient(app, client=("10.60.1.7", 40001))
    thief = TestClient(app, client=("10.60.9.9", 40002))
    assert pod.get("/v1/me", headers=bearer(body["token"])).status_code == 200
    assert thief.get("/v1/me", headers=bearer(body["token"])).status_code == 401
    assert pod.get("/v1/me", headers=bearer(body["token"])).status_code == 200
    bound = audit_events(seeded_enclave, "session.bound")
    assert [e["details"]["address"] for e in bound] == ["10.60.1.7"]
    with seeded_enclave.read() as session:
        record = session.get(NotebookSession, body["id"])
        assert record is not None and record.address == "10.60.1.7"
