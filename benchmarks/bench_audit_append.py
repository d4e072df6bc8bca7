"""Durable audit appends per second, each with its business change, on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.bench_audit_append [--writers 200] [--per-writer 40]

Each unit of work inserts one business row (an organisation) and appends its audit event, as every
service does. Two ways of committing are measured side by side: one transaction per unit
(``Enclave.write``) by a single writer, and group commit (``Enclave.transact``) with many concurrent
writers, the business row written through the ORM (as the services do) and through SQLAlchemy Core
(a light business write: what the audit log itself sustains). Every commit is durable (SQLite WAL
with synchronous=FULL; PostgreSQL fsync on). Also prints inclusion-proof time from the database and
proof size against 32·⌈log2 n⌉.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from audit import merkle
from audit.store import DbNodeReader, tree_size
from enclave_api.context import Enclave
from enclave_api.models import Organisation
from enclave_api.settings import Settings

TARGET_SQLITE = 5_000  # appends/s with batching of concurrent writers (issue 3)
INSERT_ORG = insert(Organisation)
INSERT_ORG_CORE = Organisation.__table__.insert()


def _unit(enclave: Enclave, name: str, core: bool = False) -> Callable[[Session], None]:
    def work(session: Session) -> None:
        row = {"id": name, "name": "Bench", "kind": "hospital", "created_at": enclave.now()}
        if core:
            session.connection().execute(INSERT_ORG_CORE, row)
        else:
            session.execute(INSERT_ORG, row)
        details = {"name": "Bench", "kind": "hospital"}
        enclave.audit.append(session, "org.created", "bench", {"org": name}, details)

    return work


def sequential(enclave: Enclave, count: int) -> float:
    began = time.perf_counter()
    for i in range(count):
        with enclave.write() as session:
            _unit(enclave, f"seq-{i}")(session)
    return count / (time.perf_counter() - began)


def grouped(enclave: Enclave, writers: int, per_writer: int, core: bool = False) -> tuple[float, float]:
    """Appends/s and mean batch size with ``writers`` threads committing through group commit."""
    start_batches, start_units = enclave.committer.batches, enclave.committer.units
    tag = "core" if core else "orm"

    def writer(n: int) -> None:
        for i in range(per_writer):
            enclave.transact(_unit(enclave, f"grp-{tag}-{n}-{i}", core))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    batches = enclave.committer.batches - start_batches
    units = enclave.committer.units - start_units
    return writers * per_writer / elapsed, units / max(batches, 1)


def proofs(enclave: Enclave, samples: int = 500) -> tuple[float, int, int]:
    with enclave.read() as session:
        size = tree_size(session)
        reader = DbNodeReader(session)
        rng = random.Random(7)
        indices = [rng.randrange(size) for _ in range(samples)]
        began = time.perf_counter()
        made = [merkle.inclusion_proof(i, size, reader) for i in indices]
        elapsed = (time.perf_counter() - began) / samples
    longest = max(32 * len(p) for p in made)
    return elapsed, longest, 32 * math.ceil(math.log2(size))


def run_backend(label: str, url: str, data_dir: Path, args: argparse.Namespace) -> None:
    enclave = Enclave.open(Settings(data_dir=data_dir, database_url=url, log_json=False))
    try:
        seq = sequential(enclave, args.sequential)
        print(f"audit append [{label}] one transaction per unit, 1 writer: {seq:,.0f} appends/s")
        for core in (False, True):
            rate, batch = grouped(enclave, args.writers, args.per_writer, core)
            write = "Core business write" if core else "ORM business write"
            print(
                f"audit append [{label}] group commit, {args.writers} writers, {write}: {rate:,.0f} "
                f"appends/s (mean batch {batch:.0f}); vs one-per-transaction x{rate / seq:.1f}"
                + (
                    f"; vs target {TARGET_SQLITE:,}/s: {rate / TARGET_SQLITE:.2f}"
                    if label == "sqlite"
                    else ""
                )
            )
        per_proof, longest, bound = proofs(enclave)
        print(
            f"audit proof [{label}] inclusion proof from the DB: {per_proof * 1e3:.2f} ms "
            f"(vs the 1 ms target: {per_proof * 1e3:.2f}x); size {longest} B vs 32·⌈log2 n⌉ = {bound} B"
        )
    finally:
        enclave.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--per-writer", type=int, default=40)
    parser.add_argument("--sequential", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        run_backend("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite", args)
        from tests.pgserver import PostgresUnavailable, pg_create, pg_drop, start_local_postgres

        try:
            admin = start_local_postgres()
        except PostgresUnavailable as exc:
            print(f"audit append [postgresql] not measured: {exc}")
            return
        name = f"enclave_bench_{uuid.uuid4().hex[:8]}"
        try:
            run_backend("postgresql", pg_create(admin, name), Path(tmp) / "pg", args)
        finally:
            pg_drop(admin, name)


if __name__ == "__main__":
    main()
