"""Start the machine's PostgreSQL cluster for tests and benchmarks, and make throwaway databases."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

PG_ROLE = "enclave_test"
PG_PASSWORD = "enclave-test-only-password"


class PostgresUnavailable(RuntimeError):
    pass


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=False, capture_output=True, text=True)


def start_local_postgres() -> str:
    """Start the Debian PostgreSQL cluster (pg_ctlcluster), create the test role; return an admin URL."""
    clusters = _run("pg_lsclusters", "--no-header")
    if clusters.returncode != 0:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (pg_lsclusters missing); `make test` installs it"
        )
    line = next((ln.split() for ln in clusters.stdout.splitlines() if ln.strip()), None)
    if line is None:
        raise PostgresUnavailable("no PostgreSQL cluster exists on this machine")
    version, name, port, status = line[0], line[1], line[2], line[3]
    if status != "online":
        started = _run("pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start")
        if started.returncode != 0:
            raise PostgresUnavailable(f"could not start PostgreSQL: {started.stderr}")
    sql = (
        f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PG_ROLE}') THEN "
        f"CREATE ROLE {PG_ROLE} LOGIN CREATEDB PASSWORD '{PG_PASSWORD}'; END IF; END $$; "
        # DROP DATABASE ... WITH (FORCE) terminates leftover backends of the test databases.
        f"GRANT pg_signal_backend TO {PG_ROLE};"
    )
    made = _run("runuser", "-u", "postgres", "--", "psql", "-p", port, "-qAtc", sql)
    if made.returncode != 0:
        raise PostgresUnavailable(f"could not create the test role: {made.stderr}")
    return f"postgresql://{PG_ROLE}:{PG_PASSWORD}@127.0.0.1:{port}/postgres"


def pg_url(admin_url: str, database: str) -> str:
    return admin_url.rsplit("/", 1)[0] + "/" + database


def pg_create(admin_url: str, database: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        clause = f" TEMPLATE {template}" if template else ""
        conn.execute(f"CREATE DATABASE {database}{clause}")  # type: ignore[arg-type]
    return pg_url(admin_url, database)


def pg_drop(admin_url: str, database: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")  # type: ignore[arg-type]


@contextmanager
def scratch_database(prefix: str) -> Iterator[str | None]:
    """A new, empty database on the local PostgreSQL for the block (dropped after it), or None with
    the reason printed when PostgreSQL cannot be started here (benchmarks report the other backend)."""
    try:
        admin = start_local_postgres()
    except PostgresUnavailable as exc:
        print(f"{prefix} [postgresql] not measured: {exc}", flush=True)
        yield None
        return
    name = f"enclave_bench_{uuid.uuid4().hex[:8]}"
    url = pg_create(admin, name)
    try:
        yield url
    finally:
        pg_drop(admin, name)
