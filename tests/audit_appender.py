"""Test helper process: appends audited changes in a loop and prints each acknowledged index.

Usage: python -m tests.audit_appender DATA_DIR DATABASE_URL NAME COUNT [THREADS]
Each line printed is ``ack <index>`` after the transaction holding that event committed. Without
THREADS, one transaction per change (``Enclave.write``); with it, that many threads each make COUNT
changes through group commit (``Enclave.transact``).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.orm import Session

from enclave_api.context import Enclave
from enclave_api.services import identity
from enclave_api.settings import Settings


def _change(enclave: Enclave, name: str, org: str) -> Callable[[Session], int]:
    def work(session: Session) -> int:
        identity.create_org(enclave, session, name, org, "Org", "hospital")
        appended = enclave.audit.append(session, "project.member_added", name, {"project": "p", "user": name})
        return appended.index

    return work


def main() -> None:
    data_dir, url, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    enclave = Enclave.open(
        Settings(data_dir=Path(data_dir), database_url=url, log_json=False, audit_checkpoint_every=7),
        migrate=False,
    )
    printing = threading.Lock()

    def ack(index: int) -> None:
        with printing:
            sys.stdout.write(f"ack {index}\n")
            sys.stdout.flush()

    def grouped(thread: int) -> None:
        for i in range(count):
            ack(enclave.transact(_change(enclave, name, f"{name}-{thread}-{i}")))

    if threads:
        workers = [threading.Thread(target=grouped, args=(t,)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    else:
        for i in range(count):
            with enclave.write() as session:
                index = _change(enclave, name, f"{name}-{i}")(session)
            ack(index)
    enclave.close()


if __name__ == "__main__":
    main()
