"""Group commit: concurrent units of work share one write transaction and one fsync.

SQLite has a single writer, so each durable commit costs a lock hand-over and an fsync. Under load
the committer batches the units queued by concurrent threads: one of their threads (the leader) runs
the batch in a single transaction, taking in the units queued while it runs (up to ``max_batch``:
callers woken by the previous commit arrive during this one), audit events are buffered and written
with one statement per table, pending ORM changes are flushed together, then everything commits at
once. If any unit fails, the batch is rerun with each unit inside its own SAVEPOINT: a unit that
raises is rolled back alone and its caller gets the exception. A caller returns only after its unit
has committed (and the checkpoints its batch signed are published), so an acknowledged write is
durable. With no contention a batch is just one unit.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from sqlalchemy.orm import Session

from audit.checkpoint import Checkpoint
from audit.store import pending_checkpoints

if TYPE_CHECKING:
    from enclave_api.context import Enclave

T = TypeVar("T")


class _Unit(Generic[T]):
    """One caller's work and its outcome.

    The caller sleeps on ``signal``, a lock it does not hold, released when its unit has been
    processed or when the caller is made leader. A bare lock is the cheapest wake-up between threads
    (an ``Event`` adds a condition variable and a second lock on both sides).
    """

    __slots__ = ("error", "lead", "signal", "value", "work")

    def __init__(self, work: Callable[[Session], T]) -> None:
        self.work = work
        self.signal = threading.Lock()
        self.signal.acquire()
        self.lead = False  # set when this caller runs batches itself (it no longer waits)
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
        self._publishing = threading.Lock()
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
            if not self._leading:
                self._leading = unit.lead = True
        if not unit.lead:
            unit.signal.acquire()  # processed, or promoted: then our unit is still queued
        while unit.lead:
            self._lead_once(unit)
        if unit.error is not None:
            raise unit.error
        return unit.value  # type: ignore[no-any-return]

    def _lead_once(self, own: _Unit[Any]) -> None:
        """Run the next batch as leader, then tell its callers.

        Leadership passes to the first queued caller once ``own`` is processed (so no caller serves
        forever), and also while this thread publishes checkpoints: that is an fsync of its own, and
        the next transaction can run meanwhile. Callers hear of their unit only once every checkpoint
        signed up to their batch is published, and checkpoints are published in signing order.
        """
        with self._lock:
            batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
        checkpoints = self._run_batch(batch)
        finished = any(unit is own for unit in batch)
        hand_over = finished or bool(checkpoints)
        with self._publishing:  # taken before leadership passes: later batches wait for this one
            if hand_over:
                own.lead = False
                with self._lock:
                    if self._queue:
                        successor = self._queue[0]
                        successor.lead = True
                        successor.signal.release()
                    else:
                        self._leading = False
            try:
                self.enclave.publish(checkpoints)
            except BaseException as exc:  # committed, but the callers must hear that publishing failed
                self._fail(batch, exc)
        for unit in batch:
            if unit is not own:
                unit.signal.release()
        if hand_over and not finished:
            own.signal.acquire()  # wait like any caller: processed, or made leader again

    def _run_batch(self, batch: list[_Unit[Any]]) -> list[Checkpoint]:
        """Run and commit ``batch``, leaving each unit's outcome on it; return the signed checkpoints."""
        checkpoints: list[Checkpoint] = []
        try:
            checkpoints = self._commit(batch, isolate=False)
        except _UnitFailed:
            # Optimistic path failed: rerun with a SAVEPOINT per unit so only the failing units
            # are undone (their callers get their own exception), then commit the rest.
            for unit in batch:
                unit.value, unit.error = None, None
            try:
                checkpoints = self._commit(batch, isolate=True)
            except BaseException as exc:
                self._fail(batch, exc)
        except BaseException as exc:  # the shared commit failed: every unit failed
            self._fail(batch, exc)
        self.batches += 1
        self.units += len(batch)
        return checkpoints

    @staticmethod
    def _fail(batch: list[_Unit[Any]], exc: BaseException) -> None:
        for unit in batch:
            unit.error = unit.error or exc

    def _absorb(self, batch: list[_Unit[Any]]) -> None:
        """Move units queued meanwhile into the running ``batch`` (up to ``max_batch``)."""
        with self._lock:
            room = min(self.max_batch - len(batch), len(self._queue))
            batch += [self._queue.popleft() for _ in range(room)]

    def _commit(self, batch: list[_Unit[Any]], isolate: bool) -> list[Checkpoint]:
        enclave = self.enclave
        with enclave.db.write() as session:
            audit_batch = enclave.audit.batch(session)
            if isolate:
                for unit in batch:
                    mark = audit_batch.mark()
                    try:
                        with session.begin_nested():  # leaving it flushes: the unit's own failure
                            unit.value = unit.work(session)
                    except BaseException as exc:  # only this unit is undone
                        audit_batch.rollback_to(mark)
                        unit.error = exc
            else:
                try:
                    done = 0
                    while done < len(batch):  # absorbs units queued while this batch runs
                        for unit in batch[done:]:
                            unit.value = unit.work(session)
                        done = len(batch)
                        self._absorb(batch)
                    # One flush for every unit's pending ORM changes; a constraint one of them breaks
                    # surfaces here, and the isolated rerun finds out whose it is.
                    session.flush()
                except BaseException as exc:
                    raise _UnitFailed from exc
            audit_batch.flush()
        return pending_checkpoints(session)


class _UnitFailed(Exception):
    """A unit raised in an optimistic (savepoint-free) batch: the batch is retried isolated."""
