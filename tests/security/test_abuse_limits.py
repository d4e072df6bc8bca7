"""Abuse limits: per-user rate limits on DP queries and egress submissions, failed-login throttling
(hub and portal), and the security headers every response carries."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from enclave_api.context import Enclave
from enclave_api.limits import AbuseLimits, SlidingWindow
from enclave_api.models import EgressRequest, Grant
from tests.conftest import audit_events, bearer
from tests.portal.support import field


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _hub(enclave: Enclave) -> dict[str, str]:
    """The hub service's credential: only the hub calls POST /v1/hub/login."""
    from enclave_api.services import sessions

    with enclave.write() as session:
        return bearer(sessions.issue_hub_credential(enclave, session))


def _limits(enclave: Enclave, clock: FakeClock | None = None, **limits: Any) -> AbuseLimits:
    settings = enclave.settings.model_copy(update=limits)
    enclave.limits = AbuseLimits(settings, clock or FakeClock())
    return enclave.limits


def test_a_sliding_window_allows_the_limit_then_waits_for_the_oldest_event() -> None:
    clock = FakeClock()
    window = SlidingWindow(limit=3, window=60.0, clock=clock)
    assert [window.take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now += 10
    assert window.take("u") == pytest.approx(50.0)  # refused: nothing recorded
    assert window.take("other") == 0.0  # per key
    clock.now += 50  # the first three are a window old
    assert [window.take("u") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.wait("u") == pytest.approx(60.0)


def test_queries_beyond_the_rate_get_429_and_cost_nothing(
    seeded_client: TestClient, seeded_enclave: Enclave, researcher_session: str
) -> None:
    _limits(seeded_enclave, rate_limit_queries_per_minute=3)
    body = {"dataset_id": "wdbc", "epsilon": 0.1, "query": {"aggregates": [{"fn": "count", "as": "n"}]}}
    answers = [
        seeded_client.post("/v1/queries", json=body, headers=bearer(researcher_session)) for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "at most 3 DP queries per minute" in refused.json()["detail"]
    with seeded_enclave.read() as session:
        spent = session.scalars(select(Grant.epsilon_spent).where(Grant.dataset_id == "wdbc")).one()
    assert spent == pytest.approx(0.3)  # the refused query reserved nothing


def test_egress_submissions_beyond_the_rate_get_429_and_store_nothing(
    seeded_client: TestClient, seeded_enclave: Enclave, researcher_session: str
) -> None:
    _limits(seeded_enclave, rate_limit_egress_per_hour=1)

    def submit() -> Any:
        return seeded_client.post(
            "/v1/egress-requests",
            files=[("files", ("summary.txt", b"mean radius 14.1 mm across the cohort"))],
            data={"justification": "Summary statistic for the paper."},
            headers=bearer(researcher_session),
        )

    assert submit().status_code == 201
    refused = submit()
    assert refused.status_code == 429
    assert "egress submissions per hour" in refused.json()["detail"]
    with seeded_enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(EgressRequest)) == 1


def test_failed_hub_logins_pause_logins_for_that_user_even_with_the_right_password(
    seeded_client: TestClient, seeded_enclave: Enclave
) -> None:
    clock = FakeClock()
    _limits(seeded_enclave, clock, login_max_failures=3, login_throttle_minutes=15)
    password = json.loads((seeded_enclave.data_dir / "demo-logins.json").read_text())["researcher"][
        "password"
    ]

    hub = _hub(seeded_enclave)

    def attempt(user: str, secret: str) -> Any:
        return seeded_client.post("/v1/hub/login", json={"username": user, "password": secret}, headers=hub)

    assert [attempt("minji.park", f"guess-{i}").status_code for i in range(3)] == [401, 401, 401]
    throttled = attempt("minji.park", password)
    assert throttled.status_code == 429
    assert int(throttled.headers["retry-after"]) == 15 * 60
    assert audit_events(seeded_enclave, "auth.login_failed")[-1]["details"]["reason"] == "throttled"
    assert attempt("jiho.kim", "wrong").status_code == 401  # other users are unaffected
    clock.now += 15 * 60
    assert attempt("minji.park", password).status_code == 200


def test_one_address_trying_many_usernames_is_paused(
    seeded_client: TestClient, seeded_enclave: Enclave
) -> None:
    _limits(seeded_enclave, login_max_failures=100, login_max_failures_per_address=5)
    hub = _hub(seeded_enclave)
    statuses = [
        seeded_client.post(
            "/v1/hub/login", json={"username": f"user{i}", "password": "x"}, headers=hub
        ).status_code
        for i in range(6)
    ]
    assert statuses == [401] * 5 + [429]


def test_a_successful_login_clears_the_failures(seeded_client: TestClient, seeded_enclave: Enclave) -> None:
    _limits(seeded_enclave, login_max_failures=3)
    hub = _hub(seeded_enclave)
    password = json.loads((seeded_enclave.data_dir / "demo-logins.json").read_text())["researcher"][
        "password"
    ]

    def attempt(secret: str) -> int:
        body = {"username": "minji.park", "password": secret}
        return seeded_client.post("/v1/hub/login", json=body, headers=hub).status_code

    assert [attempt("wrong"), attempt("wrong"), attempt(password)] == [401, 401, 200]
    assert [attempt("wrong"), attempt("wrong"), attempt(password)] == [401, 401, 200]


def test_the_portal_login_form_says_when_logins_are_paused(
    seeded_client: TestClient, seeded_enclave: Enclave
) -> None:
    _limits(seeded_enclave, login_max_failures=2)

    def attempt(password: str) -> Any:
        form = seeded_client.get("/portal/login")
        return seeded_client.post(
            "/portal/login",
            data={"username": "jiho.kim", "password": password, "nonce": field(form.text, "nonce")},
            follow_redirects=False,
        )

    assert [attempt("wrong").status_code for _ in range(2)] == [401, 401]
    paused = attempt("still wrong")
    assert paused.status_code == 429
    assert "Too many failed logins. Please try again in 15 minutes." in paused.text
    assert "enclave_web" not in paused.cookies


@pytest.mark.parametrize(
    ("method", "path", "role"),
    [
        ("GET", "/healthz", None),
        ("GET", "/v1/me", None),  # 401
        ("GET", "/v1/me", "researcher"),
        ("GET", "/v1/audit/events", "researcher"),  # 403
        ("GET", "/v1/datasets/nope", "researcher"),  # 404
        ("POST", "/v1/projects", "researcher"),  # 422
        ("GET", "/openapi.json", None),
        ("GET", "/metrics", None),
        ("GET", "/no/such/path", None),
        ("GET", "/portal/login", None),
    ],
)
def test_every_response_carries_the_security_headers(
    seeded_client: TestClient, tokens: dict[str, str], method: str, path: str, role: str | None
) -> None:
    headers = bearer(tokens[role]) if role else {}
    response = seeded_client.request(method, path, headers=headers, json={} if method == "POST" else None)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] in ("no-referrer", "same-origin")
