"""Durable audit appends per second, each with its business change, on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.bench_audit_append [--writers 200] [--per-writer 40] [--repeat 3]

Every unit of work writes one business row (an organisation) and appends its audit event in the same
transaction, and every commit is durable (SQLite WAL with synchronous=FULL, PostgreSQL with fsync;
a caller hears back only after its commit). Measured on both backends, then printed side by side:

* one transaction per unit (``Enclave.write``), one writer;
* group commit (``Enclave.transact``) with many concurrent writers, the row added through the ORM
  as the services add theirs (``session.add``; the batch flushes every unit's row at once);
* the same with the row inserted through SQLAlchemy Core (one statement per unit);
* the real service, ``identity.create_org``: it first looks the id up, and that query flushes the
  previous unit's row on its own, so the batch saves only the commits.

Group commit figures are the best of ``--repeat`` runs, with the slowest. Also prints the
inclusion-proof time from the database and the proof size against 32·⌈log2 n⌉, and checks that the
log written verifies.
"""

from __future__ import annotations

import argparse
import itertools
import math
import platform
import random
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy import Table, insert
from sqlalchemy.orm import Session

from audit import merkle
from audit.store import DbNodeReader, tree_size, verify_database
from enclave_api.context import Enclave
from enclave_api.models import Organisation
from enclave_api.services import identity
from enclave_api.settings import Settings

TARGET_SQLITE = 5_000  # appends/s with batching of concurrent writers (issue 3)
INSERT_ORG_CORE = insert(cast(Table, Organisation.__table__))  # Core, not the ORM's bulk insert
DETAILS = {"name": "Bench", "kind": "hospital"}

_names = itertools.count()


def _orm(enclave: Enclave) -> Callable[[Session], None]:
    name = f"orm-{next(_names)}"

    def work(session: Session) -> None:
        session.add(Organisation(id=name, name="Bench", kind="hospital", created_at=enclave.now()))
        enclave.audit.append(session, "org.created", "bench", {"org": name}, DETAILS)

    return work


def _core(enclave: Enclave) -> Callable[[Session], None]:
    name = f"core-{next(_names)}"

    def work(session: Session) -> None:
        row = {"id": name, "name": "Bench", "kind": "hospital", "created_at": enclave.now()}
        session.connection().execute(INSERT_ORG_CORE, row)
        enclave.audit.append(session, "org.created", "bench", {"org": name}, DETAILS)

    return work


def _service(enclave: Enclave) -> Callable[[Session], None]:
    name = f"svc-{next(_names)}"

    def work(session: Session) -> None:
        identity.create_org(enclave, session, "bench", name, "Bench", "hospital")

    return work


VARIANTS: dict[str, tuple[str, Callable[[Enclave], Callable[[Session], None]]]] = {
    "orm": ("ORM row, as the services write", _orm),
    "core": ("Core row (one INSERT per unit)", _core),
    "service": ("identity.create_org service", _service),
}


@dataclass
class Figures:
    """What one backend sustained: appends/s (and mean batch size) per way of committing."""

    sequential: float = 0.0
    grouped: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    proof_ms: float = 0.0
    proof_bytes: tuple[int, int] = (0, 0)
    verified: bool = False

    def best(self, variant: str) -> tuple[float, float, float]:
        """Best rate, its mean batch size, and the slowest rate of the repeats."""
        runs = self.grouped[variant]
        rate, batch = max(runs)
        return rate, batch, min(r for r, _b in runs)


def sequential(enclave: Enclave, count: int) -> float:
    began = time.perf_counter()
    for _ in range(count):
        with enclave.write() as session:
            _orm(enclave)(session)
    return count / (time.perf_counter() - began)


def grouped(
    enclave: Enclave, make: Callable[[Enclave], Callable[[Session], None]], writers: int, per_writer: int
) -> tuple[float, float]:
    """Appends/s and mean batch size with ``writers`` threads committing through group commit."""
    committer = enclave.committer
    start_batches, start_units = committer.batches, committer.units
    units = [[make(enclave) for _ in range(per_writer)] for _ in range(writers)]

    def writer(mine: list[Callable[[Session], None]]) -> None:
        for work in mine:
            enclave.transact(work)

    threads = [threading.Thread(target=writer, args=(mine,)) for mine in units]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    batches = committer.batches - start_batches
    return writers * per_writer / elapsed, (committer.units - start_units) / max(batches, 1)


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


def run_backend(label: str, url: str, data_dir: Path, args: argparse.Namespace) -> Figures:
    enclave = Enclave.open(Settings(data_dir=data_dir, database_url=url, log_json=False))
    figures = Figures()
    try:
        figures.sequential = sequential(enclave, args.sequential)
        print(f"audit append [{label}] one transaction per unit, 1 writer: {figures.sequential:,.0f}/s")
        for repeat in range(args.repeat):  # interleaved, so that a noisy moment hits every variant
            for variant, (text, make) in VARIANTS.items():
                per_writer = args.per_writer if variant != "service" else max(1, args.per_writer // 4)
                rate, batch = grouped(enclave, make, args.writers, per_writer)
                figures.grouped.setdefault(variant, []).append((rate, batch))
                print(
                    f"audit append [{label}] group commit, {args.writers} writers, {text}: "
                    f"{rate:,.0f}/s (mean batch {batch:.0f}; run {repeat + 1}/{args.repeat})"
                )
        per_proof, longest, bound = proofs(enclave)
        figures.proof_ms, figures.proof_bytes = per_proof * 1e3, (longest, bound)
        with enclave.read() as session:
            key = enclave.secrets.signing_key.public_key()
            figures.verified = verify_database(session, key, enclave.sink).ok
    finally:
        enclave.close()
    return figures


def interpreter() -> str:
    """The Python running the benchmark and whether it was built for speed (the figures are CPU
    bound: a build without profile-guided and link-time optimisation runs this code slower)."""
    config = str(sysconfig.get_config_var("CONFIG_ARGS") or "")
    built = " ".join(flag for flag in ("--enable-optimizations", "--with-lto") if flag in config)
    return f"Python {platform.python_version()}, built with {built or 'neither PGO nor LTO'}"


def report(results: dict[str, Figures], args: argparse.Namespace) -> None:
    """The figures of both backends side by side."""
    labels = list(results)
    print(f"\naudit append, durable, with its business row; best of {args.repeat} (slowest); {interpreter()}")
    print(f"{'':58}" + "".join(f"{label:>26}" for label in labels))
    sequential_cells = [f"{results[label].sequential:>24,.0f}/s" for label in labels]
    print(f"{'one transaction per unit, 1 writer':58}" + "".join(sequential_cells))
    for variant, (text, _make) in VARIANTS.items():
        cells = []
        for label in labels:
            rate, batch, slowest = results[label].best(variant)
            cells.append(f"{f'{rate:,.0f}/s ({slowest:,.0f}) b{batch:.0f}':>26}")
        print(f"{f'group commit, {args.writers} writers, {text}':58}" + "".join(cells))
    if "sqlite" in results:
        rate, _batch, _slowest = results["sqlite"].best("core")
        orm, _batch, _slowest = results["sqlite"].best("orm")
        print(
            f"vs target {TARGET_SQLITE:,}/s on SQLite with group commit: "
            f"Core row {rate / TARGET_SQLITE:.2f}, ORM row {orm / TARGET_SQLITE:.2f}"
        )
    for label in labels:
        figures = results[label]
        longest, bound = figures.proof_bytes
        print(
            f"audit proof [{label}] inclusion proof from the DB: {figures.proof_ms:.2f} ms (vs the 1 ms "
            f"target: {figures.proof_ms:.2f}x); size {longest} B vs 32·⌈log2 n⌉ = {bound} B; "
            f"log verifies: {'yes' if figures.verified else 'NO'}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writers", type=int, default=200)
    parser.add_argument("--per-writer", type=int, default=40)
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = run_backend("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "sqlite", args)
        from tests.pgserver import scratch_database

        with scratch_database("audit append") as pg_url:
            if pg_url is not None:
                results["postgresql"] = run_backend("postgresql", pg_url, Path(tmp) / "pg", args)
    report(results, args)


if __name__ == "__main__":
    main()
