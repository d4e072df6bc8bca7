"""Crash safety: the API process is killed with SIGKILL while it spends budgets, approves egress
requests, checks submissions and appends audit events — twice, on SQLite and on PostgreSQL.

Callers keep a ledger of what the server acknowledged (a 2xx answer). After each restart:

* no acknowledged write is lost: every acknowledged release is served with the signature it was
  answered with, every acknowledged approval is released with a valid manifest, every acknowledged
  submission and project exists with its files and audit events;
* no budget is double-spent: the grant's spent ε is exactly the sum of its releases that may have
  drawn noise (released or failed), never above the total, and after recovery the grant still affords
  exactly ``floor(remaining / cost)`` more queries, then refuses with 409;
* nothing is left in a transient state: no reservation stays ``reserved`` (the crashed process is
  provably gone, so recovery fails them at once, audited, budget kept spent) and no egress request
  stays ``submitted``/``checking`` (its checks are run again);
* the audit log is gap-free and ``enclave audit verify`` finds it intact, checkpoints included.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from audit.store import AuditEvent
from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.limits import AbuseLimits
from enclave_api.models import EgressFile, EgressRequest, Grant, Project, Release
from enclave_api.services.egress import read_quarantined, verify_manifest
from enclave_api.services.releases import release_body, verify_release
from tests.api.test_access_flow import _approved_grant
from tests.conftest import audit_events, bearer, session_token
from tests.liveserver import free_port

ROOT = Path(__file__).resolve().parents[2]
COST = 0.05
EPSILON_TOTAL = 6.0  # 120 queries: enough to be still spending when the second crash comes
QUERY = {"dataset_id": "wdbc", "epsilon": COST, "query": {"aggregates": [{"fn": "count", "as": "n"}]}}
APPROVALS_READY = 40
SERVER_ENV = {
    "ENCLAVE_LOG_JSON": "false",
    "ENCLAVE_PII_NER": "false",
    # The abuse limits are tested elsewhere; here one researcher drives all the load.
    "ENCLAVE_RATE_LIMIT_QUERIES_PER_MINUTE": "100000",
    "ENCLAVE_RATE_LIMIT_EGRESS_PER_HOUR": "100000",
    "ENCLAVE_AUDIT_CHECKPOINT_EVERY": "25",
    "ENCLAVE_RECOVERY_CHECK_SECONDS": "1",
}
STARTUP_S = 60.0
VERIFY = (sys.executable, "-m", "enclave_api", "audit", "verify")


# ---------------------------------------------------------------------------------------------------
# The server process


class Server:
    """``python -m enclave_api api`` on a free loopback port, killed or stopped on demand."""

    def __init__(self, data_dir: Path, database_url: str) -> None:
        self.data_dir, self.database_url = data_dir, database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / "crash-server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.process is None or self.process.poll() is not None, "already running"
        command = [sys.executable, "-m", "enclave_api", "api", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), "--database-url", self.database_url]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**os.environ, **SERVER_ENV},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its helpers (the egress check worker) share its group
            )
        deadline = time.monotonic() + STARTUP_S
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"the API exited ({self.process.returncode}): {self.tail()}")
                try:
                    if client.get("/healthz").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        raise AssertionError(f"the API was not healthy within {STARTUP_S:.0f} s: {self.tail()}")

    def kill(self) -> None:
        """SIGKILL the API process, as a crash would; then its orphaned helpers, as a supervisor would."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._kill_group()

    def stop(self) -> None:
        """A graceful stop (SIGTERM): the shutdown checkpoint is signed."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        finally:
            self._kill_group()

    def _kill_group(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


# ---------------------------------------------------------------------------------------------------
# What callers were told


@dataclass
class Ledger:
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → the answered body
    approvals: set[str] = field(default_factory=set)
    submissions: set[str] = field(default_factory=set)
    projects: set[str] = field(default_factory=set)
    refused: int = 0  # 409 on queries (budget exhausted)
    unanswered: int = 0  # transport errors: the crash cut them off
    errors: list[str] = field(default_factory=list)  # any other answer: the test fails on it
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class World:
    enclave: Enclave
    server: Server
    tokens: dict[str, str]
    grant_id: str
    project_id: str
    to_approve: list[str]

    @property
    def query(self) -> dict[str, Any]:
        return QUERY | {"grant_id": self.grant_id}


def _caller(
    world: World, stop: threading.Event, ledger: Ledger, step: Callable[[httpx.Client], None]
) -> threading.Thread:
    def loop() -> None:
        with httpx.Client(base_url=world.server.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    step(client)
                except httpx.TransportError:
                    with ledger.lock:
                        ledger.unanswered += 1
                    time.sleep(0.05)
                except AssertionError as exc:
                    with ledger.lock:
                        ledger.errors.append(str(exc))
                    return

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    return thread


def _load(world: World, ledger: Ledger, stop: threading.Event) -> list[threading.Thread]:
    researcher, custodian = bearer(world.tokens["researcher"]), bearer(world.tokens["custodian"])
    pending = iter(list(world.to_approve))
    pending_lock = threading.Lock()

    def query(client: httpx.Client) -> None:
        response = client.post("/v1/queries", json=world.query, headers=researcher)
        if response.status_code == 200:
            body = response.json()
            with ledger.lock:
                ledger.releases[body["release_id"]] = body
            time.sleep(0.02)
        elif response.status_code == 409:
            with ledger.lock:
                ledger.refused += 1
            time.sleep(0.05)
        else:
            raise AssertionError(f"query answered {response.status_code}: {response.text}")

    def approve(client: httpx.Client) -> None:
        with pending_lock:
            request_id = next(pending, None)
        if request_id is None:
            time.sleep(0.05)
            return
        response = client.post(
            f"/v1/egress-requests/{request_id}/reviews", json={"decision": "approve"}, headers=custodian
        )
        if response.status_code == 200:
            assert response.json()["status"] == "released", response.text
            with ledger.lock:
                ledger.approvals.add(request_id)
            time.sleep(0.1)  # a custodian's pace: some are left for the second crash
        elif response.status_code != 409:  # 409: approved just before an earlier crash cut the answer
            raise AssertionError(f"approval answered {response.status_code}: {response.text}")

    def submit(client: httpx.Client) -> None:
        _submit(world, ledger, client)

    def create_project(client: httpx.Client) -> None:
        response = client.post(
            "/v1/projects", json={"title": "Crash study", "purpose": "Audit appends"}, headers=researcher
        )
        if response.status_code not in (200, 201):
            raise AssertionError(f"project creation answered {response.status_code}: {response.text}")
        with ledger.lock:
            ledger.projects.add(response.json()["id"])

    steps = [query, query, query, approve, approve, submit, create_project]
    return [_caller(world, stop, ledger, step) for step in steps]


def _submit(world: World, ledger: Ledger, client: httpx.Client) -> None:
    response = client.post(
        "/v1/egress-requests",
        files=[("files", ("summary.txt", b"Mean tumour radius by diagnosis, see report."))],
        data={"justification": "Summary for the consortium report.", "project_id": world.project_id},
        headers=bearer(world.tokens["session"]),
    )
    if response.status_code not in (200, 201):
        raise AssertionError(f"submission answered {response.status_code}: {response.text}")
    with ledger.lock:
        ledger.submissions.add(response.json()["id"])


def _run_until_crash(world: World, ledger: Ledger, at_least: dict[str, int]) -> None:
    """Load the server until each stream has new acknowledged writes, then SIGKILL it mid-load."""
    with httpx.Client(base_url=world.server.url, timeout=120) as client:
        _submit(world, ledger, client)  # warm: the check worker loads its scanners once
    before = _counts(ledger)
    stop = threading.Event()
    threads = _load(world, ledger, stop)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not ledger.errors:
        now = _counts(ledger)
        if all(now[k] - before[k] >= n for k, n in at_least.items()):
            break
        time.sleep(0.02)
    else:
        stop.set()
        assert not ledger.errors, ledger.errors
        raise AssertionError(f"the load made too little progress: {_counts(ledger)} {world.server.tail()}")
    world.server.kill()  # requests are in flight: every caller thread is mid-request or about to be
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert not ledger.errors, ledger.errors


def _counts(ledger: Ledger) -> dict[str, int]:
    with ledger.lock:
        return {
            "releases": len(ledger.releases) + ledger.refused,
            "approvals": len(ledger.approvals),
            "submissions": len(ledger.submissions),
            "projects": len(ledger.projects),
        }


# ---------------------------------------------------------------------------------------------------
# What must hold after a restart


def _wait_for_recovery(enclave: Enclave) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with enclave.read() as session:
            reserved = session.scalar(select(func.count()).where(Release.status == "reserved"))
            transient = session.scalar(
                select(func.count()).where(EgressRequest.status.in_(("submitted", "checking")))
            )
        if not reserved and not transient:
            return
        time.sleep(0.2)
    raise AssertionError(f"still transient after recovery: {reserved} reserved, {transient} checking")


def _assert_nothing_lost(world: World, ledger: Ledger) -> None:
    enclave = world.enclave
    public_key = enclave.secrets.signing_key.public_key()
    released_events = {e["subject"]["release"] for e in audit_events(enclave, "query.released")}
    with enclave.read() as session:
        for release_id, answered in ledger.releases.items():
            release = session.get(Release, release_id)
            assert release is not None and release.status == "released", release_id
            assert release.signature == answered["signature"]
            assert verify_release(release_body(release), release.signature, public_key)
            assert release_id in released_events
        for request_id in ledger.approvals:
            request = session.get_one(EgressRequest, request_id)
            assert request.status == "released" and request.manifest and request.manifest_signature
            assert verify_manifest(request.manifest, request.manifest_signature, public_key)
        for request_id in ledger.submissions:
            request = session.get_one(EgressRequest, request_id)
            assert request.status in ("in_review", "blocked") and request.report, request.status
            for stored in session.scalars(select(EgressFile).where(EgressFile.request_id == request_id)):
                assert read_quarantined(enclave, session, stored.sha256)  # the bytes are intact
        assert ledger.projects <= set(session.scalars(select(Project.id)))
    submitted = {e["subject"]["egress_request"] for e in audit_events(enclave, "egress.submitted")}
    released = {e["subject"]["egress_request"] for e in audit_events(enclave, "egress.released")}
    created = {e["subject"].get("project") for e in audit_events(enclave, "project.created")}
    assert ledger.submissions <= submitted and ledger.approvals <= released and ledger.projects <= created


def _assert_ledger_exact(world: World) -> tuple[float, int]:
    """Spent = Σ releases that may have drawn noise; returns (spent, how many of them)."""
    with world.enclave.read() as session:
        grant = session.get_one(Grant, world.grant_id)
        of_grant = Release.grant_id == world.grant_id
        rows = list(session.execute(select(Release.id, Release.status, Release.epsilon).where(of_grant)))
    assert all(status in ("released", "failed") for _, status, _ in rows), rows
    spent = sum(epsilon for _, _, epsilon in rows)
    assert grant.epsilon_spent == pytest.approx(spent, abs=1e-9)
    assert grant.epsilon_spent <= EPSILON_TOTAL * (1 + 1e-9)
    reserved_events = {e["subject"]["release"] for e in audit_events(world.enclave, "budget.reserved")}
    failed_events = {e["subject"]["release"] for e in audit_events(world.enclave, "query.failed")}
    assert {rid for rid, _, _ in rows} <= reserved_events  # every spend was audited with it
    assert {rid for rid, status, _ in rows if status == "failed"} <= failed_events
    return spent, len(rows)


def _assert_log_verifies(world: World) -> str:
    with world.enclave.read() as session:
        indices = list(session.scalars(select(AuditEvent.index).order_by(AuditEvent.index)))
    assert indices == list(range(len(indices)))  # one gap-free sequence
    verify = subprocess.run(
        [*VERIFY, "--data-dir", str(world.server.data_dir), "--database-url", world.server.database_url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.startswith("intact:")
    return verify.stdout


# ---------------------------------------------------------------------------------------------------
# The world and the test


@pytest.fixture
def crash_world(seeded_enclave: Enclave) -> Iterator[World]:
    settings = seeded_enclave.settings.model_copy(update={"rate_limit_egress_per_hour": 1000})
    seeded_enclave.limits = AbuseLimits(settings)  # the world is built by one researcher
    client = TestClient(create_app(enclave=seeded_enclave))
    tokens: dict[str, str] = json.loads((seeded_enclave.data_dir / "demo-tokens.json").read_text())
    setup_session = session_token(seeded_enclave, "minji.park")  # bound to the TestClient
    grant_id = _approved_grant(client, tokens, "wdbc", "custodian", epsilon=EPSILON_TOTAL)
    with seeded_enclave.read() as session:
        project_id = session.get_one(Grant, grant_id).project_id
    to_approve = []
    for n in range(APPROVALS_READY):
        response = client.post(
            "/v1/egress-requests",
            files=[("files", (f"table-{n}.txt", f"Aggregate figures, part {n}.".encode()))],
            data={"justification": "Figures for the consortium report.", "project_id": project_id},
            headers=bearer(setup_session),
        )
        assert response.json()["status"] == "in_review", response.text
        to_approve.append(response.json()["id"])
    tokens["session"] = session_token(seeded_enclave, "minji.park")  # a new session, for the live server
    server = Server(seeded_enclave.data_dir, str(seeded_enclave.settings.database_url))
    world = World(seeded_enclave, server, tokens, grant_id, project_id, to_approve)
    try:
        yield world
    finally:
        server.stop()
        seeded_enclave.egress_checks.close()  # the set-up's own check worker


def test_kill_9_mid_load_loses_nothing_spends_nothing_twice_and_leaves_nothing_transient(
    crash_world: World,
) -> None:
    world, ledger = crash_world, Ledger()
    world.server.start()
    for _crash in range(2):
        _run_until_crash(world, ledger, {"releases": 8, "approvals": 4, "submissions": 2, "projects": 10})
        world.server.start()  # recovery runs before serving and then in the background
        _wait_for_recovery(world.enclave)
        _assert_nothing_lost(world, ledger)
        _assert_ledger_exact(world)
    assert ledger.unanswered > 0  # the crashes did cut requests off mid-flight

    # No double spend: exactly what is left can still be spent, then 409.
    spent, _ = _assert_ledger_exact(world)
    affordable = math.floor((EPSILON_TOTAL - spent) / COST + 1e-6)
    with httpx.Client(base_url=world.server.url, timeout=30) as client:
        answers = [
            client.post(
                "/v1/queries", json=world.query, headers=bearer(world.tokens["researcher"])
            ).status_code
            for _ in range(affordable + 1)
        ]
        assert answers == [200] * affordable + [409]
        # An approval is never given twice (also one whose answer a crash cut off); the rest still can be.
        with world.enclave.read() as session:
            released = set(
                session.scalars(
                    select(EgressRequest.id).where(
                        EgressRequest.id.in_(world.to_approve), EgressRequest.status == "released"
                    )
                )
            )
        assert ledger.approvals <= released
        for request_id in world.to_approve:
            answer = client.post(
                f"/v1/egress-requests/{request_id}/reviews",
                json={"decision": "approve"},
                headers=bearer(world.tokens["custodian"]),
            )
            assert answer.status_code == (409 if request_id in released else 200), answer.text
    world.server.stop()
    _assert_ledger_exact(world)
    _assert_log_verifies(world)
