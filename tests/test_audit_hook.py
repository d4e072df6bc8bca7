"""Every state change and data read is audited in the same transaction (invariant 5)."""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from jsonschema import Draft202012Validator
from sqlalchemy import select

from audit.canonical import ZERO_HASH, canonical_json
from audit.merkle import leaf_hash
from audit.schemas import AuditSchemaError, SchemaRegistry, shipped_schemas
from audit.store import AuditBase, AuditEvent, AuditHead
from enclave_api.context import Enclave
from enclave_api.models import Base, Organisation
from enclave_api.services import identity


def _events(enclave: Enclave) -> list[dict[str, object]]:
    with enclave.read() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.index)).all()
        return [json.loads(row.canonical) for row in rows]


def test_seeding_audits_every_change(seeded_enclave: Enclave) -> None:
    counts = Counter(e["type"] for e in _events(seeded_enclave))
    assert counts["org.created"] == 6
    assert counts["user.created"] == 7  # incl. the second Hanbit custodian
    assert counts["token.issued"] == 7
    assert counts["dataset.registered"] == 4
    assert counts["project.created"] == 1
    assert counts["access_request.created"] == 2
    assert counts["access_request.decided"] == 1
    assert counts["grant.created"] == 1


def test_events_form_a_hash_chain_with_gap_free_indices(seeded_enclave: Enclave) -> None:
    with seeded_enclave.read() as session:
        rows = session.scalars(select(AuditEvent).order_by(AuditEvent.index)).all()
        head = session.get(AuditHead, 1)
        assert head is not None
        previous = ZERO_HASH
        for position, row in enumerate(rows):
            event = json.loads(row.canonical)
            assert event["index"] == row.index == position
            assert event["prev_hash"] == previous
            assert canonical_json(event) == bytes(row.canonical)
            assert leaf_hash(bytes(row.canonical)) == bytes(row.leaf_hash)
            previous = bytes(row.leaf_hash).hex()
        assert head.tree_size == len(rows)
        assert head.last_hash == previous


def test_event_failing_its_schema_rolls_back_the_change(fresh_enclave: Enclave) -> None:
    def bad_subject() -> None:
        with fresh_enclave.write() as session:
            session.add(Organisation(id="ghost-org", name="Ghost", kind="hospital"))
            fresh_enclave.audit.append(
                session, "org.created", "t", {"org": 42}, {"name": "Ghost", "kind": "hospital"}
            )

    def unknown_type() -> None:
        with fresh_enclave.write() as session:
            identity.create_org(fresh_enclave, session, "t", "ghost-two", "Ghost", "hospital")
            fresh_enclave.audit.append(session, "org.exploded", "t", {}, {})

    with pytest.raises(AuditSchemaError, match="invalid at subject/org"):
        bad_subject()
    with pytest.raises(AuditSchemaError, match="no audit schema"):
        unknown_type()
    with fresh_enclave.read() as session:
        assert session.get(Organisation, "ghost-org") is None
        assert session.get(Organisation, "ghost-two") is None
        assert session.scalars(select(AuditEvent)).first() is None


def test_events_are_stamped_by_the_enclave_clock(fresh_enclave: Enclave) -> None:
    """The system clock's fast path and a swapped-in clock (tests, replays) both stamp events."""
    before = datetime.now(UTC)
    with fresh_enclave.write() as session:
        identity.create_org(fresh_enclave, session, "t", "clock-now", "Now", "hospital")
    fixed = datetime(2031, 2, 3, 4, 5, 6, 789_000, tzinfo=UTC)
    fresh_enclave.clock = lambda: fixed
    with fresh_enclave.write() as session:
        identity.create_org(fresh_enclave, session, "t", "clock-fixed", "Fixed", "hospital")
    first, second = (event["timestamp"] for event in _events(fresh_enclave)[-2:])
    assert before <= datetime.fromisoformat(str(first)) <= datetime.now(UTC)
    assert second == "2031-02-03T04:05:06.789000Z"


def test_every_emitted_type_has_a_valid_schema() -> None:
    """Every event type the code appends (found in the source) has a Draft 2020-12 schema."""
    registry = SchemaRegistry.load()
    root = Path(__file__).resolve().parents[1]
    emitted: set[str] = set()
    for source in root.glob("enclave_api/**/*.py"):
        # Dotted names passed right after ``session,`` to ``audit.append(`` or a service's ``_audit(``.
        pattern = r"(?:audit\.append|_audit)\(\s*session,\s*\"([a-z_]+\.[a-z_]+)\""
        emitted |= set(re.findall(pattern, source.read_text()))
    assert {"egress.released", "query.released", "access_request.decided", "data.read"} <= emitted
    missing = emitted - set(registry.types)
    assert not missing, f"event types without a schema: {sorted(missing)}"
    for event_type, (_version, schema) in shipped_schemas().items():
        Draft202012Validator.check_schema(schema)
        assert schema["title"] == event_type


def test_concurrent_writers_produce_one_gap_free_sequence(fresh_enclave: Enclave) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(15):
                with fresh_enclave.write() as session:
                    identity.create_org(fresh_enclave, session, f"w{n}", f"org-{n}-{i}", "Org", "hospital")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    events = _events(fresh_enclave)
    assert [e["index"] for e in events] == list(range(90))
    with fresh_enclave.read() as session:
        assert session.query(Organisation).count() == 90


def test_migrations_match_the_models(fresh_enclave: Enclave) -> None:
    with fresh_enclave.db.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        diff = compare_metadata(context, [Base.metadata, AuditBase.metadata])
    assert diff == []
