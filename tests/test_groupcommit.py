"""Group commit: concurrent units share transactions, failures stay with their own unit."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from audit.checkpoint import Checkpoint
from audit.schemas import AuditSchemaError
from audit.sink import JsonlFileSink
from audit.store import AuditEvent, verify_database
from enclave_api.context import Enclave
from enclave_api.db import Database
from enclave_api.errors import Conflict
from enclave_api.groupcommit import GroupCommitter
from enclave_api.models import Organisation

INSERT_ORG = insert(Organisation)


def _create_org(enclave: Enclave, name: str, fail: bool = False) -> Any:
    def work(session: Session) -> str:
        row = {"id": name, "name": "O", "kind": "hospital", "created_at": enclave.now()}
        session.execute(INSERT_ORG, row)
        enclave.audit.append(session, "org.created", "t", {"org": name}, {"name": "O", "kind": "hospital"})
        if fail:
            raise Conflict(f"{name} refused")
        return name

    return work


def test_concurrent_units_commit_in_shared_batches(fresh_enclave: Enclave) -> None:
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        for i in range(20):
            try:
                work = _create_org(fresh_enclave, f"o-{n}-{i}", fail=i % 7 == 3)
                results.append(fresh_enclave.transact(work))
            except Conflict as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 12 * 17 and len(errors) == 12 * 3
    committer = fresh_enclave.committer
    assert committer.units == 240
    with fresh_enclave.read() as session:
        orgs = set(session.scalars(select(Organisation.id)))
        events = session.scalar(select(func.count()).select_from(AuditEvent))
        indices = list(session.scalars(select(AuditEvent.index).order_by(AuditEvent.index)))
    assert orgs == set(results), "failed units left nothing behind; every acknowledged unit is there"
    assert events == len(results)
    assert indices == list(range(len(results)))
    with fresh_enclave.read() as session:
        assert verify_database(session, fresh_enclave.secrets.signing_key.public_key(), fresh_enclave.sink).ok


def test_failing_unit_raises_its_own_error(fresh_enclave: Enclave) -> None:
    with pytest.raises(Conflict, match="x refused"):
        fresh_enclave.transact(_create_org(fresh_enclave, "x", fail=True))
    assert fresh_enclave.transact(_create_org(fresh_enclave, "y")) == "y"
    with fresh_enclave.read() as session:
        assert set(session.scalars(select(Organisation.id))) == {"y"}
        assert session.scalar(select(func.count()).select_from(AuditEvent)) == 1


def _added_org(enclave: Enclave, name: str) -> Callable[[Session], int]:
    """The services' way: ``session.add`` (flushed later) and the audit event."""

    def work(session: Session) -> int:
        session.add(Organisation(id=name, name="O", kind="hospital", created_at=enclave.now()))
        details = {"name": "O", "kind": "hospital"}
        return enclave.audit.append(session, "org.created", "t", {"org": name}, details).index

    return work


def _run_threads(targets: list[Callable[[], None]], timeout: float = 120) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a caller was never told its outcome"


def _in_one_batch(enclave: Enclave, works: list[Callable[[Session], Any]]) -> list[Any]:
    """Run ``works`` through group commit so that they all land in the same batch.

    A first unit holds the leader inside its transaction until every other unit is queued; the
    running batch then takes them all in. Returns each one's value or exception.
    """
    committer = enclave.committer
    holding = threading.Event()

    def hold(session: Session) -> None:
        if holding.is_set():
            return  # run again in an isolated rerun: everyone is in the batch already
        holding.set()
        deadline = time.monotonic() + 60
        while len(committer._queue) < len(works) and time.monotonic() < deadline:
            time.sleep(0.002)

    outcomes: list[Any] = [None] * len(works)

    def call(i: int) -> None:
        try:
            outcomes[i] = enclave.transact(works[i])
        except Exception as exc:
            outcomes[i] = exc

    holder = threading.Thread(target=enclave.transact, args=(hold,))
    holder.start()
    assert holding.wait(60)
    batches = committer.batches
    _run_threads([partial(call, i) for i in range(len(works))])
    holder.join(60)
    assert committer.batches - batches == 1, "the holder's batch took in every unit queued meanwhile"
    return outcomes


def test_units_queued_while_a_batch_runs_join_it_up_to_the_batch_limit(fresh_enclave: Enclave) -> None:
    """Callers arriving while a batch runs share its transaction (fewer commits and fsyncs), but a
    batch never grows past ``max_batch``: the rest run in the next one."""
    fresh_enclave.committer = committer = GroupCommitter(fresh_enclave, max_batch=4)
    release = threading.Event()
    queued = 6

    def hold(session: Session) -> None:
        assert release.wait(60)

    holder = threading.Thread(target=fresh_enclave.transact, args=(hold,))
    holder.start()
    deadline = time.monotonic() + 60
    while not committer._leading and time.monotonic() < deadline:
        time.sleep(0.002)
    acked: list[int] = []
    callers = [
        threading.Thread(
            target=lambda n=n: acked.append(fresh_enclave.transact(_added_org(fresh_enclave, f"q{n}")))
        )
        for n in range(queued)
    ]
    for caller in callers:
        caller.start()
    while len(committer._queue) < queued and time.monotonic() < deadline:
        time.sleep(0.002)
    release.set()
    for thread in [holder, *callers]:
        thread.join(60)
    assert sorted(acked) == list(range(queued))
    assert committer.batches == 2, "the holder's batch took 3 more units (4 in all), the next the last 3"
    assert committer.units == queued + 1


def test_orm_changes_flush_together_and_a_broken_constraint_stays_with_its_unit(
    fresh_enclave: Enclave,
) -> None:
    fresh_enclave.transact(_added_org(fresh_enclave, "taken"))
    names = ["a", "b", "taken", "c", "d"]
    outcomes = _in_one_batch(fresh_enclave, [_added_org(fresh_enclave, name) for name in names])
    others = outcomes[:2] + outcomes[3:]
    assert isinstance(outcomes[2], IntegrityError), "the duplicate surfaces at the batch's flush"
    assert not any(isinstance(o, Exception) for o in others), others
    assert sorted(others) == [1, 2, 3, 4]
    with fresh_enclave.read() as session:
        assert set(session.scalars(select(Organisation.id))) == {"taken", "a", "b", "c", "d"}
        events = list(session.scalars(select(AuditEvent).order_by(AuditEvent.index)))
    assert [e.index for e in events] == [0, 1, 2, 3, 4]
    assert sorted(e.canonical.count(b'"org":"taken"') for e in events) == [0, 0, 0, 0, 1]
    with fresh_enclave.read() as session:
        assert verify_database(session, fresh_enclave.secrets.signing_key.public_key(), fresh_enclave.sink).ok


def test_an_event_failing_its_schema_refuses_only_its_unit(fresh_enclave: Enclave) -> None:
    def bad(session: Session) -> None:
        session.add(Organisation(id="ghost", name="G", kind="hospital", created_at=fresh_enclave.now()))
        fresh_enclave.audit.append(
            session, "org.created", "t", {"org": 42}, {"name": "G", "kind": "hospital"}
        )

    outcomes = _in_one_batch(
        fresh_enclave, [_added_org(fresh_enclave, "x"), bad, _added_org(fresh_enclave, "y")]
    )
    assert isinstance(outcomes[1], AuditSchemaError) and "subject/org" in str(outcomes[1])
    with fresh_enclave.read() as session:
        assert set(session.scalars(select(Organisation.id))) == {"x", "y"}
        assert list(session.scalars(select(AuditEvent.index).order_by(AuditEvent.index))) == [0, 1]


def test_leader_serving_many_small_batches_tells_every_caller(fresh_enclave: Enclave) -> None:
    fresh_enclave.committer = GroupCommitter(fresh_enclave, max_batch=2)
    acked: list[int] = []

    def caller(n: int) -> None:
        for i in range(8):
            acked.append(fresh_enclave.transact(_added_org(fresh_enclave, f"s-{n}-{i}")))

    _run_threads([partial(caller, n) for n in range(12)])
    assert sorted(acked) == list(range(96))
    assert fresh_enclave.committer.batches >= 48
    with fresh_enclave.read() as session:
        assert session.scalar(select(func.count()).select_from(Organisation)) == 96


class _SlowRecordingSink(JsonlFileSink):
    """The file sink, slowed down so that the next batch commits while a checkpoint is published."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.published: list[int] = []

    def publish(self, checkpoint: Checkpoint) -> None:
        time.sleep(0.005)
        super().publish(checkpoint)
        self.published.append(checkpoint.tree_size)


def test_callers_hear_back_only_after_earlier_checkpoints_are_published(
    fresh_enclave: Enclave, tmp_path: Path
) -> None:
    sink = _SlowRecordingSink(tmp_path / "checkpoints.jsonl")
    fresh_enclave.sink = sink
    fresh_enclave.audit.checkpoint_every = 3
    late: list[tuple[int, list[int]]] = []

    def caller(n: int) -> None:
        for i in range(10):
            index = fresh_enclave.transact(_added_org(fresh_enclave, f"p-{n}-{i}"))
            due = list(range(3, index + 2, 3))  # every checkpoint signed up to this event
            seen = list(sink.published)
            if seen[: len(due)] != due:
                late.append((index, seen))

    _run_threads([partial(caller, n) for n in range(16)])
    assert not late, late[:3]
    assert sink.published == list(range(3, 161, 3)), "published once each, in signing order"
    with fresh_enclave.read() as session:
        assert verify_database(session, fresh_enclave.secrets.signing_key.public_key(), sink).ok


class _FlakySink(JsonlFileSink):
    broken = False

    def publish(self, checkpoint: Checkpoint) -> None:
        if self.broken:
            raise OSError("sink unavailable")
        super().publish(checkpoint)


def test_a_failed_publication_reaches_the_caller(fresh_enclave: Enclave, tmp_path: Path) -> None:
    sink = fresh_enclave.sink = _FlakySink(tmp_path / "checkpoints.jsonl")
    fresh_enclave.audit.checkpoint_every = 2
    assert fresh_enclave.transact(_added_org(fresh_enclave, "first")) == 0
    sink.broken = True
    with pytest.raises(OSError, match="sink unavailable"):
        fresh_enclave.transact(_added_org(fresh_enclave, "second"))
    sink.broken = False
    assert fresh_enclave.transact(_added_org(fresh_enclave, "third")) == 2, "the change was committed"


def test_sqlite_writers_take_the_write_lock_when_they_begin(tmp_path: Path) -> None:
    """Writers begin IMMEDIATE (so they queue instead of failing on a lock upgrade), readers DEFERRED."""
    database = Database(f"sqlite:///{tmp_path / 'locks.db'}")
    other = sqlite3.connect(tmp_path / "locks.db", timeout=0, isolation_level=None)
    try:
        with database.read() as session:
            session.connection()  # the transaction has begun, and has taken no lock yet
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
        with database.write() as session:
            session.connection()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        with database.write() as session:
            session.execute(text("CREATE TABLE t (x INTEGER)"))
            session.execute(text("INSERT INTO t VALUES (1)"))
            session.rollback()  # BEGIN really opened a transaction: this undoes both
        assert other.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)
    finally:
        other.close()
        database.dispose()
