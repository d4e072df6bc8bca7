"""Shared fixtures. Every database test runs twice: on SQLite and on a real PostgreSQL 15.

Fixtures:

* ``backend`` — ``"sqlite"`` or ``"postgresql"`` (parametrises everything that uses a database).
* ``pg_server`` — starts the installed PostgreSQL cluster once per run (``pg_ctlcluster``) and returns
  an admin connection URL; set ``ENCLAVE_TEST_PG_ADMIN_URL`` to use another server.
* ``fresh_enclave`` — an :class:`~enclave_api.context.Enclave` on an empty, migrated database with its
  own data directory (secrets generated as in the embedded default).
* ``seeded_enclave`` — the demo world (small registries), copied from a per-run template: SQLite file
  copy or PostgreSQL ``CREATE DATABASE … TEMPLATE``, plus a copy of the data directory.
* ``client`` / ``seeded_client`` — Starlette TestClient over ``create_app(enclave=...)``.
* ``tokens`` — role → bearer token of the seeded world (``demo-tokens.json``).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings

from enclave_api.api.app import create_app
from enclave_api.context import Enclave
from enclave_api.demo.seed import seed_demo
from enclave_api.settings import Settings
from tests.pgserver import PostgresUnavailable, start_local_postgres
from tests.pgserver import pg_create as _pg_create
from tests.pgserver import pg_drop as _pg_drop

SEED_PATIENTS = 400

# Timing is not what property tests check; a loaded 2-core CI machine must not turn them flaky.
hypothesis_settings.register_profile("enclave", deadline=None)
hypothesis_settings.load_profile("enclave")


@pytest.fixture(scope="session")
def pg_server() -> str:
    try:
        return os.environ.get("ENCLAVE_TEST_PG_ADMIN_URL") or start_local_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc))


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _settings(data_dir: Path, url: str) -> Settings:
    return Settings(data_dir=data_dir, database_url=url, log_json=False)


class _Template:
    """A seeded demo world per backend, built once and copied per test."""

    def __init__(self, root: Path, pg_admin: str | None) -> None:
        self.root, self.pg_admin = root, pg_admin
        self.built: dict[str, tuple[Path, str]] = {}
        self.created_dbs: list[str] = []

    def get(self, backend: str) -> tuple[Path, str]:
        if backend not in self.built:
            data_dir = self.root / f"template-{backend}"
            if backend == "sqlite":
                url = f"sqlite:///{data_dir / 'enclave.db'}"
            else:
                assert self.pg_admin is not None
                name = f"enclave_tpl_{uuid.uuid4().hex[:8]}"
                url = _pg_create(self.pg_admin, name)
                self.created_dbs.append(name)
            enclave = Enclave.open(_settings(data_dir, url))
            seed_demo(enclave, "test-setup", patients=SEED_PATIENTS)
            enclave.close()
            self.built[backend] = (data_dir, url)
        return self.built[backend]


@pytest.fixture(scope="session")
def _templates(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[_Template]:
    pg_admin = request.getfixturevalue("pg_server") if _wants_pg(request.session) else None
    templates = _Template(tmp_path_factory.mktemp("templates"), pg_admin)
    yield templates
    for name in templates.created_dbs:
        _pg_drop(pg_admin or "", name)


def _wants_pg(session: pytest.Session) -> bool:
    return any("postgresql" in item.nodeid for item in session.items)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the requested backend, dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'enclave.db'}"
        return
    admin = request.getfixturevalue("pg_server")
    name = f"enclave_t_{uuid.uuid4().hex[:10]}"
    url = _pg_create(admin, name)
    yield url
    _pg_drop(admin, name)


@pytest.fixture
def fresh_enclave(database_url: str, tmp_path: Path) -> Iterator[Enclave]:
    enclave = Enclave.open(_settings(tmp_path / "data", database_url))
    yield enclave
    enclave.close()


@pytest.fixture
def seeded_enclave(
    backend: str, tmp_path: Path, _templates: _Template, request: pytest.FixtureRequest
) -> Iterator[Enclave]:
    yield from seeded_copy(backend, tmp_path, _templates, request)


def seeded_copy(
    backend: str, tmp_path: Path, templates: _Template, request: pytest.FixtureRequest
) -> Iterator[Enclave]:
    """A copy of the seeded demo world, opened; closed and dropped when the generator finishes."""
    template_dir, template_url = templates.get(backend)
    data_dir = tmp_path / "data"
    shutil.copytree(template_dir, data_dir)
    if backend == "sqlite":
        url = f"sqlite:///{data_dir / 'enclave.db'}"
        name = None
    else:
        admin = request.getfixturevalue("pg_server")
        name = f"enclave_t_{uuid.uuid4().hex[:10]}"
        url = _pg_create(admin, name, template=template_url.rsplit("/", 1)[1])
    enclave = Enclave.open(_settings(data_dir, url))
    yield enclave
    enclave.close()
    if name:
        _pg_drop(request.getfixturevalue("pg_server"), name)


@pytest.fixture
def client(fresh_enclave: Enclave) -> TestClient:
    return TestClient(create_app(enclave=fresh_enclave))


@pytest.fixture
def seeded_client(seeded_enclave: Enclave) -> TestClient:
    return TestClient(create_app(enclave=seeded_enclave))


@pytest.fixture
def tokens(seeded_enclave: Enclave) -> dict[str, str]:
    doc: dict[str, str] = json.loads((seeded_enclave.data_dir / "demo-tokens.json").read_text())
    return doc


def bearer(token: str) -> dict[str, Any]:
    return {"Authorization": f"Bearer {token}"}


def session_token(enclave: Enclave, user_id: str, address: str | None = None) -> str:
    """The credential of a notebook session opened for ``user_id``, as the hub gets it at spawn.

    Without ``address`` the credential is not bound to a caller address (TestClient calls come from
    "testclient"); the hub always binds it to the sandbox's address.
    """
    from enclave_api.services import sessions
    from enclave_api.services.identity import Principal

    hub = Principal(
        id="hub", name="JupyterHub", org_id="operator", roles=("hub",), token_id="local", token_kind="api"
    )
    with enclave.write() as session:
        return sessions.start(enclave, session, hub, user_id, "", address).token


@pytest.fixture
def researcher_session(seeded_enclave: Enclave) -> str:
    """A notebook session's credential for the demo researcher (minji.park)."""
    return session_token(seeded_enclave, "minji.park")


def audit_events(enclave: Enclave, event_type: str) -> list[dict[str, Any]]:
    """The audit events of one type, decoded, oldest first."""
    from sqlalchemy import select

    from audit.store import AuditEvent

    with enclave.read() as session:
        rows = session.scalars(
            select(AuditEvent).where(AuditEvent.type == event_type).order_by(AuditEvent.index)
        )
        return [json.loads(row.canonical) for row in rows]


def dead_worker() -> str:
    """The worker identity (``enclave_api.workers``) of a process that ran here and has exited."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "from enclave_api import workers; print(workers.current())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()
