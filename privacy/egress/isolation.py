"""Run the egress checks in a separate, resource-limited process.

The checks parse untrusted files (CSV, Parquet, notebooks, images through Pillow and tesseract). A
parser that crashes, hangs or balloons must block the request, never release it and never take the
API down: so the API hands the files to a long-lived worker process over a pipe, waits at most the
configured time, and turns a dead or late worker into a blocking finding (and a fresh worker).

The worker keeps the dataset deny-lists it has built (keyed by a fingerprint of the datasets) so that
the identifier values cross the pipe once, not with every request.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from privacy.egress.report import CheckReport, FileReport
from privacy.findings import Check, Finding, Severity

if TYPE_CHECKING:
    from privacy.egress.context import CheckContext, SubmittedFile

#: Address space of the worker (bounds what a decompression bomb that slipped past the limits can take).
WORKER_MEMORY_BYTES = 4 << 30
DENY_LISTS_KEPT = 4


def limit_resources(memory_bytes: int) -> None:
    """Applied in the worker: bounded address space, no core dumps (they would hold outputs)."""
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def serve(conn: Connection, memory_bytes: int) -> None:
    """The worker's loop: ``(files, context, deny_key, deny_values)`` in, a report dict (or ``None``,
    meaning "send the deny-list values for this key") out."""
    # Imported here: the API process itself never loads the scanners, only this worker does.
    from privacy.egress.runner import run_checks
    from privacy.pii import DenyList, PiiScanner

    limit_resources(memory_bytes)
    deny_lists: OrderedDict[str, DenyList] = OrderedDict()
    while True:
        try:
            files, context, deny_key, deny_values = conn.recv()
        except EOFError:
            return
        if deny_key not in deny_lists:
            if deny_values is None:
                conn.send(None)
                continue
            deny_lists[deny_key] = DenyList.build(deny_values)
            while len(deny_lists) > DENY_LISTS_KEPT:
                deny_lists.popitem(last=False)
        deny_lists.move_to_end(deny_key)
        scanner = PiiScanner(
            deny_list=deny_lists[deny_key], mrn_patterns=context.mrn_patterns, ner=context.ner
        )
        conn.send(run_checks(files, context, scanner).to_dict())


class CheckWorker:
    """The API's handle on the worker process; thread-safe, one check at a time.

    Subclasses may replace :attr:`target` (the function the worker process runs) — tests use that to
    stand in a worker that crashes or hangs.
    """

    target: Callable[[Connection, int], None] = staticmethod(serve)

    def __init__(self, timeout: float, memory_bytes: int = WORKER_MEMORY_BYTES) -> None:
        self.timeout = timeout
        self.memory_bytes = memory_bytes
        self._lock = threading.Lock()
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn: Connection | None = None

    def _start(self) -> Connection:
        if self._conn is not None and self._process is not None and self._process.is_alive():
            return self._conn
        self._stop()
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        process = context.Process(target=type(self).target, args=(child, self.memory_bytes), daemon=True)
        process.start()
        child.close()
        self._process, self._conn = process, parent
        return parent

    def _stop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.kill()
            self._process.join(timeout=5)
        self._process = self._conn = None

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _call(self, conn: Connection, message: tuple[Any, ...]) -> Any:
        conn.send(message)
        if not conn.poll(self.timeout):
            raise TimeoutError
        return conn.recv()

    def check(
        self,
        files: Sequence[SubmittedFile],
        context: CheckContext,
        deny_key: str,
        deny_values: Callable[[], Mapping[str, Sequence[str]]],
    ) -> CheckReport:
        """Run :func:`run_checks` in the worker; a crash or timeout yields a report that blocks every file."""
        with self._lock:
            try:
                conn = self._start()
                result = self._call(conn, (list(files), context, deny_key, None))
                if result is None:
                    values = {kind: list(items) for kind, items in deny_values().items()}
                    result = self._call(conn, (list(files), context, deny_key, values))
            except TimeoutError:
                self._stop()
                return _failed(
                    files, "scanner_timeout", f"the checks did not finish within {self.timeout:g} s"
                )
            except (EOFError, OSError, BrokenPipeError) as exc:
                code = self._process.exitcode if self._process is not None else None
                self._stop()
                detail = f" (exit code {code})" if code is not None else ""
                return _failed(files, "scanner_crashed", f"the checks crashed{detail}: {type(exc).__name__}")
            except Exception as exc:  # deny by default: whatever went wrong, nothing passes unchecked
                self._stop()
                return _failed(files, "scanner_error", f"the checks could not run: {type(exc).__name__}")
        return CheckReport.from_dict(result)


def _failed(files: Sequence[SubmittedFile], rule: str, message: str) -> CheckReport:
    return CheckReport(
        files=tuple(
            FileReport(f.name, None, (Finding(Check.FILE, rule, Severity.BLOCK, f.name, "file", message),))
            for f in files
        )
    )
