"""Group commit: concurrent units of work share one write transaction and one fsync.

SQLite has a single writer, so each durable commit costs a lock hand-over and an fsync. Under load
the committer batches the units queued by concurrent threads: one thread (the leader) runs the
batch in a single transaction, each unit inside its own SAVEPOINT (a unit that raises is rolled back
alone and its caller gets the exception), audit events are buffered and written with one statement
per table, then everything commits together. A caller returns only after its unit has committed,
so an acknowledged write is durable. With no contention a batch is just one unit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.orm import Session

from audit.store import pending_checkpoints

if TYPE_CHECKING:
    from enclave_api.context import Enclave

T = TypeVar("T")


class _Unit(Generic[T]):
    __slots__ = ("done", "error", "lead", "value", "work")

    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.done = threading.Event()
        self.lead = False  # set when this waiter must take over as leader
        self.value: Any = None
        self.error: BaseException | None = None


class GroupCommitter:
    """Runs ``work(session)`` callables from many threads in shared, durable transactions."""

    def __init__(self, enclave: Enclave, max_batch: int = 512) -> None:
        self.enclave = enclave
        self.max_batch = max_batch
        self._lock = threading.Lock()
        self._queue: deque[_Unit[Any]] = deque()
        self._leading = False
        self.batches = 0  # observability: how many transactions ran
        self.units = 0

    def run(self, work: Callable[[Session], T]) -> T:
        """Run ``work`` in a write transaction; return once it has committed (or raise).

        ``work`` may run more than once (a failing neighbour makes the batch rerun isolated), so it
        must only act through the session it is given and return plain values.
        """
        unit: _Unit[T] = _Unit(work)
        with self._lock:
            self._queue.append(unit)
            lead = not self._leading
            if lead:
                self._leading = True
        if not lead:
            unit.done.wait()
            lead = unit.lead  # promoted: our unit is still queued at the front
        if lead:
            self._lead_until(unit)
        if unit.error is not None:
            raise unit.error
        return unit.value  # type: ignore[no-any-return]

    def _lead_until(self, own: _Unit[Any]) -> None:
        """Run batches until ``own`` has been processed, then pass leadership on."""
        while True:
            with self._lock:
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
            self._run_batch(batch)
            if any(unit is own for unit in batch):
                with self._lock:
                    if self._queue:  # wake the next waiter as leader, so no caller serves forever
                        successor = self._queue[0]
                        successor.lead = True
                        successor.done.set()
                    else:
                        self._leading = False
                return

    def _run_batch(self, batch: list[_Unit[Any]]) -> None:
        try:
            self._commit(batch, isolate=False)
        except _UnitFailed:
            # Optimistic path failed: rerun with a SAVEPOINT per unit so only the failing units
            # are undone (their callers get their own exception), then commit the rest.
            for unit in batch:
                unit.value, unit.error = None, None
            try:
                self._commit(batch, isolate=True)
            except BaseException as exc:
                self._fail(batch, exc)
        except BaseException as exc:  # the shared commit failed: every unit failed
            self._fail(batch, exc)
        self.batches += 1
        self.units += len(batch)
        for unit in batch:
            unit.done.set()

    @staticmethod
    def _fail(batch: list[_Unit[Any]], exc: BaseException) -> None:
        for unit in batch:
            unit.error = unit.error or exc

    def _commit(self, batch: list[_Unit[Any]], isolate: bool) -> None:
        enclave = self.enclave
        with enclave.db.write() as session:
            audit_batch = enclave.audit.batch(session)
            for unit in batch:
                if not isolate:
                    try:
                        unit.value = unit.work(session)
                    except BaseException as exc:
                        raise _UnitFailed from exc
                    continue
                mark = audit_batch.mark()
                try:
                    with session.begin_nested():
                        unit.value = unit.work(session)
                except BaseException as exc:  # the unit's own failure: only it is undone
                    audit_batch.rollback_to(mark)
                    unit.error = exc
            audit_batch.flush()
        enclave.publish(pending_checkpoints(session))


class _UnitFailed(Exception):
    """A unit raised in an optimistic (savepoint-free) batch: the batch is retried isolated."""
