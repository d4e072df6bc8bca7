"""Test helper process: appends audited changes in a loop and prints each acknowledged index.

Usage: python -m tests.audit_appender DATA_DIR DATABASE_URL NAME COUNT
Each line printed is ``ack <index>`` after the transaction holding that event committed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from enclave_api.context import Enclave
from enclave_api.services import identity
from enclave_api.settings import Settings


def main() -> None:
    data_dir, url, name, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    enclave = Enclave.open(
        Settings(data_dir=Path(data_dir), database_url=url, log_json=False, audit_checkpoint_every=7),
        migrate=False,
    )
    for i in range(count):
        with enclave.write() as session:
            identity.create_org(enclave, session, name, f"{name}-{i}", "Org", "hospital")
            appended = enclave.audit.append(
                session, "project.member_added", name, {"project": "p", "user": name}
            )
        print(f"ack {appended.index}", flush=True)
    enclave.close()


if __name__ == "__main__":
    main()
