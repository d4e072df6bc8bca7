"""Group commit: concurrent units share transactions, failures stay with their own unit."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from audit.store import AuditEvent, verify_database
from enclave_api.context import Enclave
from enclave_api.errors import Conflict
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
