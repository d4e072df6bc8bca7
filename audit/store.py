"""The append-only audit store inside the product database.

:meth:`AuditLog.append` runs inside the caller's transaction, so the event commits or rolls back with
the business change it records (invariant 5: no audit event, no change). Appenders serialise on the
single ``audit_head`` row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite write transactions are
``BEGIN IMMEDIATE``), which makes the index sequence gap-free under concurrent writers and processes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import (
    JSON,
    BigInteger,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    String,
    Table,
    insert,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from audit.canonical import ZERO_HASH, canonical_json, rfc3339_utc
from audit.checkpoint import Checkpoint, sign_checkpoint
from audit.merkle import Frontier, leaf_hash
from audit.schemas import SchemaRegistry
from audit.sink import CheckpointSink
from audit.verify import LogVerifier, VerifyResult

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class AuditBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON}  # noqa: RUF012 - SQLAlchemy API


class AuditEvent(AuditBase):
    """One event; ``canonical`` holds the exact bytes that were hashed into the tree."""

    __tablename__ = "audit_events"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    timestamp: Mapped[str] = mapped_column(String(40), index=True)
    type: Mapped[str] = mapped_column(String(64), index=True)
    actor: Mapped[str] = mapped_column(String(64), index=True)
    dataset_id: Mapped[str | None] = mapped_column(String(64), index=True)
    canonical: Mapped[bytes] = mapped_column(LargeBinary)
    leaf_hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditHead(AuditBase):
    """The single row every appender locks: tree size, last leaf hash and the Merkle frontier."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tree_size: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))
    frontier: Mapped[dict[str, Any]]


class AuditNode(AuditBase):
    """Perfect Merkle subtree hashes (level ≥ 1); with the leaves they make proofs O(log² n)."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class AuditCheckpoint(AuditBase):
    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tree_size: Mapped[int] = mapped_column(BigInteger, index=True)
    root_hash: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[str] = mapped_column(String(40))
    key_id: Mapped[str] = mapped_column(String(32))
    signature: Mapped[str] = mapped_column(String(128))

    def to_checkpoint(self) -> Checkpoint:
        return Checkpoint(
            tree_size=self.tree_size,
            root_hash=self.root_hash,
            timestamp=self.timestamp,
            key_id=self.key_id,
            signature=self.signature,
        )


HEAD_ID = 1


@dataclass(frozen=True, slots=True)
class AppendedEvent:
    index: int
    leaf_hash: bytes
    event: dict[str, Any]


class DbNodeReader:
    """Reads Merkle nodes for proofs from the store (level 0 = leaf hashes of events)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def get_nodes(self, keys: Collection[tuple[int, int]]) -> Mapping[tuple[int, int], bytes]:
        # Raw driver SQL: these statements vary in shape with every proof, and compiling them through
        # SQLAlchemy would cost more than the lookups themselves (a proof must take ≤ 1 ms).
        connection = self.session.connection()
        cursor = connection.connection.cursor()
        try:
            if connection.dialect.name == "postgresql":
                found = self._postgresql(cursor, keys)
            else:
                found = self._sqlite(cursor, keys)
        finally:
            cursor.close()
        missing = set(keys) - found.keys()
        if missing:
            raise LookupError(f"audit store is missing Merkle nodes {sorted(missing)[:3]}")
        return found

    @staticmethod
    def _postgresql(cursor: Any, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """One round trip, and one statement text whatever the keys (arrays, not IN lists): the
        driver prepares it after a few uses, so the server neither parses nor plans it again."""
        leaves = [index for level, index in keys if level == 0]
        nodes = [(level, index) for level, index in keys if level > 0]
        cursor.execute(_PG_NODES, (leaves, [lv for lv, _ in nodes], [ix for _, ix in nodes]))
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in cursor.fetchall()}

    @staticmethod
    def _sqlite(cursor: Any, keys: Collection[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """In-process: two statements cost nothing extra; IN lists let SQLite use the primary keys."""
        leaves = sorted({index for level, index in keys if level == 0})
        by_level: dict[int, list[int]] = {}
        for level, index in keys:
            if level > 0:
                by_level.setdefault(level, []).append(index)
        found: dict[tuple[int, int], bytes] = {}
        if leaves:
            cursor.execute(
                f'SELECT "index", leaf_hash FROM audit_events WHERE "index" IN ({", ".join("?" * len(leaves))})',  # noqa: S608, E501
                leaves,
            )
            found.update({(0, int(i)): bytes(h) for i, h in cursor.fetchall()})
        if by_level:
            clauses, params = [], []
            for level, indices in by_level.items():
                clauses.append(f"(level = ? AND idx IN ({', '.join('?' * len(indices))}))")
                params += [level, *indices]
            cursor.execute(
                f"SELECT level, idx, hash FROM audit_nodes WHERE {' OR '.join(clauses)}",  # noqa: S608
                params,
            )
            found.update({(int(lv), int(ix)): bytes(h) for lv, ix, h in cursor.fetchall()})
        return found


_PG_NODES = """
SELECT 0, e."index", e.leaf_hash FROM audit_events e WHERE e."index" = ANY(%s::bigint[])
UNION ALL
SELECT n.level, n.idx, n.hash FROM audit_nodes n
JOIN unnest(%s::integer[], %s::bigint[]) AS k(level, idx) ON n.level = k.level AND n.idx = k.idx
"""


PENDING_CHECKPOINTS = "audit.pending_checkpoints"


def pending_checkpoints(session: Session) -> list[Checkpoint]:
    """Checkpoints signed in ``session``'s transaction, to publish once it has committed."""
    found: list[Checkpoint] = session.info.pop(PENDING_CHECKPOINTS, [])
    return found


class AuditLog:
    """Appends schema-checked events in the caller's transaction and signs checkpoints.

    A checkpoint is signed inside the appending transaction whenever the tree size reaches a
    multiple of ``checkpoint_every``; :meth:`checkpoint` signs one on demand (timer, shutdown).
    """

    def __init__(
        self,
        schemas: SchemaRegistry,
        signing_key: Ed25519PrivateKey,
        checkpoint_every: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if checkpoint_every < 1:
            raise ValueError("checkpoint_every must be at least 1")
        self.schemas = schemas
        self.signing_key = signing_key
        self.checkpoint_every = checkpoint_every
        self.clock = clock
        # Event timestamps; whoever swaps in a faster source must keep it on the same clock.
        self.timestamp: Callable[[], str] = lambda: rfc3339_utc(self.clock())

    def append(
        self,
        session: Session,
        type: str,
        actor: str,
        subject: Mapping[str, Any] | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> AppendedEvent:
        """Append one event inside ``session``'s transaction; raise if it fails its schema.

        The caller's change and this event commit together or not at all. Inside a group commit
        (:meth:`batch`) the row writes are deferred to the batch's single flush.
        """
        subject = dict(subject) if subject else {}
        details = dict(details) if details else {}
        self.schemas.validate(type, subject, details)
        batch: AuditBatch | None = session.info.get(BATCH_KEY)
        if batch is not None:
            return batch.add(type, actor, subject, details)
        single = AuditBatch(self, session)
        appended = single.add(type, actor, subject, details)
        single.flush()
        return appended

    def batch(self, session: Session) -> AuditBatch:
        """Start deferring appends made in ``session`` (group commit); call ``flush`` before commit."""
        batch = AuditBatch(self, session)
        session.info[BATCH_KEY] = batch
        return batch

    def checkpoint(self, session: Session) -> Checkpoint | None:
        """Sign the current tree head unless the latest checkpoint already covers it."""
        batch = AuditBatch(self, session)
        last = latest_checkpoint(session)
        if last is not None and last.tree_size == batch.tree_size:
            return None
        cp = batch.sign()
        batch.flush()
        return cp


BATCH_KEY = "audit.batch"
_events = cast(Table, AuditEvent.__table__)
_nodes = cast(Table, AuditNode.__table__)
_checkpoints = cast(Table, AuditCheckpoint.__table__)
_head = cast(Table, AuditHead.__table__)
# The head is read and written once per transaction through the driver: SQLAlchemy's statement path
# (≈ 0.1 ms each, more than the statements themselves) showed in every group commit. SQLite write
# transactions hold the database lock already (BEGIN IMMEDIATE); PostgreSQL locks the row.
_HEAD_SQL = {
    "sqlite": (
        "SELECT tree_size, last_hash, frontier FROM audit_head WHERE id = ?",
        "UPDATE audit_head SET tree_size = ?, last_hash = ?, frontier = ? WHERE id = ?",
    ),
    "postgresql": (
        "SELECT tree_size, last_hash, frontier FROM audit_head WHERE id = %s FOR UPDATE",
        "UPDATE audit_head SET tree_size = %s, last_hash = %s, frontier = %s::json WHERE id = %s",
    ),
}


def _lock_head(session: Session) -> tuple[int, str, list[str]] | None:
    """The head row (size, last hash, frontier nodes), locked for this transaction."""
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        cursor.execute(_HEAD_SQL[connection.dialect.name][0], (HEAD_ID,))
        row = cursor.fetchone()
    finally:
        cursor.close()
    if row is None:
        return None
    size, last_hash, frontier = row
    if isinstance(frontier, str):  # SQLite returns JSON columns as text, psycopg parses them
        frontier = json.loads(frontier)
    return int(size), str(last_hash), list(frontier.get("nodes", []))


def _write_head(session: Session, size: int, last_hash: str, nodes: list[str]) -> None:
    connection = session.connection()
    cursor = connection.connection.cursor()
    try:
        frontier = json.dumps({"nodes": nodes})
        cursor.execute(_HEAD_SQL[connection.dialect.name][1], (size, last_hash, frontier, HEAD_ID))
    finally:
        cursor.close()


class AuditBatch:
    """Events appended under one lock of the head row, written with one statement per table.

    Holds the head (size, last hash, frontier) in memory while the transaction runs; ``mark`` and
    ``rollback_to`` drop the events of a unit of work whose savepoint was rolled back. Rows are
    kept as tuples in column order, ready for the driver's ``executemany``.
    """

    def __init__(self, log: AuditLog, session: Session) -> None:
        self.log, self.session = log, session
        head = _lock_head(session)
        if head is None:
            raise RuntimeError("audit store is not initialised (run the database migrations)")
        self.tree_size, self.last_hash, nodes = head
        self.frontier = Frontier.from_json(self.tree_size, nodes)
        self._start_size = self.tree_size
        self._events: list[tuple[Any, ...]] = []
        self._nodes: list[tuple[int, int, bytes]] = []
        self._checkpoints: list[Checkpoint] = []

    def add(self, type: str, actor: str, subject: dict[str, Any], details: dict[str, Any]) -> AppendedEvent:
        index = self.tree_size
        timestamp = self.log.timestamp()
        event = {
            "index": index,
            "timestamp": timestamp,
            "type": type,
            "actor": actor,
            "subject": subject,
            "details": details,
            "prev_hash": self.last_hash,
        }
        canonical = canonical_json(event)
        digest = leaf_hash(canonical)
        dataset = subject.get("dataset")
        dataset_id = dataset if isinstance(dataset, str) else None
        self._events.append((index, timestamp, type, actor, dataset_id, canonical, digest))
        self._nodes += self.frontier.append(digest)
        self.tree_size = index + 1
        self.last_hash = digest.hex()
        if self.tree_size % self.log.checkpoint_every == 0:
            self.sign()
        return AppendedEvent(index, digest, event)

    def sign(self) -> Checkpoint:
        cp = sign_checkpoint(self.log.signing_key, self.tree_size, self.frontier.root(), self.log.clock())
        self._checkpoints.append(cp)
        return cp

    def mark(self) -> tuple[int, int, int, str, list[str]]:
        return (
            len(self._events),
            len(self._nodes),
            len(self._checkpoints),
            self.last_hash,
            self.frontier.to_json(),
        )

    def rollback_to(self, mark: tuple[int, int, int, str, list[str]]) -> None:
        events, nodes, checkpoints, last_hash, frontier = mark
        del self._events[events:], self._nodes[nodes:], self._checkpoints[checkpoints:]
        self.tree_size = self._start_size + events
        self.last_hash = last_hash
        self.frontier = Frontier.from_json(self.tree_size, frontier)

    def flush(self) -> list[Checkpoint]:
        """Write the buffered rows and the new head; the caller's transaction commits them."""
        session = self.session
        if self._events:
            _insert_many(session, "audit_events", _EVENT_COLUMNS, self._events)
        if self._nodes:
            _insert_many(session, "audit_nodes", ("level", "idx", "hash"), self._nodes)
        if self._checkpoints:
            session.execute(insert(_checkpoints), [cp.to_dict() for cp in self._checkpoints])
            session.info.setdefault(PENDING_CHECKPOINTS, []).extend(self._checkpoints)
        if self.tree_size != self._start_size:
            _write_head(session, self.tree_size, self.last_hash, self.frontier.to_json())
        written = self._checkpoints
        self._events, self._nodes, self._checkpoints = [], [], []
        self._start_size = self.tree_size
        session.info.pop(BATCH_KEY, None)
        return written


_EVENT_COLUMNS = ("index", "timestamp", "type", "actor", "dataset_id", "canonical", "leaf_hash")


def _insert_many(session: Session, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """``executemany`` through the DB driver: the rows are plain values, and SQLAlchemy's per-row
    parameter processing would otherwise cost more than the rest of an append."""
    connection = session.connection()
    style = connection.dialect.paramstyle
    marks = ", ".join("?" if style == "qmark" else "%s" for _ in columns)
    names = ", ".join(f'"{c}"' for c in columns)
    cursor = connection.connection.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({marks})", rows)  # noqa: S608 - fixed identifiers
    finally:
        cursor.close()


def latest_checkpoint(session: Session) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).order_by(AuditCheckpoint.tree_size.desc(), AuditCheckpoint.id.desc()).limit(1)
    ).first()


def tree_size(session: Session) -> int:
    head = session.get(AuditHead, HEAD_ID)
    return head.tree_size if head is not None else 0


def initial_head_row() -> dict[str, Any]:
    """The row the migration inserts: an empty tree."""
    return {"id": HEAD_ID, "tree_size": 0, "last_hash": ZERO_HASH, "frontier": {"nodes": []}}


def query_events(
    session: Session,
    *,
    event_type: str | None = None,
    actor: str | None = None,
    dataset: str | None = None,
    since: str | None = None,
    until: str | None = None,
    after_index: int = -1,
    limit: int = 100,
) -> list[AuditEvent]:
    """Events matching every given filter, in index order, after ``after_index`` (cursor paging).

    ``since``/``until`` are RFC 3339 UTC strings in the log's own format (inclusive/exclusive).
    """
    query = filter_events(
        select(AuditEvent).where(AuditEvent.index > after_index),
        event_type=event_type,
        actor=actor,
        dataset=dataset,
        since=since,
        until=until,
    )
    return list(session.scalars(query.order_by(AuditEvent.index).limit(limit)))


def filter_events(
    query: Select[AuditEvent],
    *,
    event_type: str | None = None,
    actor: str | None = None,
    dataset: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Select[AuditEvent]:
    """``query`` narrowed to the events matching every given filter (``since`` inclusive, ``until``
    exclusive, RFC 3339 UTC strings in the log's own format)."""
    if event_type:
        query = query.where(AuditEvent.type == event_type)
    if actor:
        query = query.where(AuditEvent.actor == actor)
    if dataset:
        query = query.where(AuditEvent.dataset_id == dataset)
    if since:
        query = query.where(AuditEvent.timestamp >= since)
    if until:
        query = query.where(AuditEvent.timestamp < until)
    return query


def checkpoint_at(session: Session, size: int) -> AuditCheckpoint | None:
    return session.scalars(
        select(AuditCheckpoint).where(AuditCheckpoint.tree_size == size).order_by(AuditCheckpoint.id).limit(1)
    ).first()


def all_checkpoints(session: Session, sink: CheckpointSink | None = None) -> list[Checkpoint]:
    """Checkpoints from the DB and the external sink, deduplicated, ordered by tree size."""
    found = {
        (cp.tree_size, cp.root_hash, cp.signature): cp
        for cp in (
            row.to_checkpoint()
            for row in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.id))
        )
    }
    for cp in sink.read_all() if sink is not None else []:
        found.setdefault((cp.tree_size, cp.root_hash, cp.signature), cp)
    return sorted(found.values(), key=lambda cp: cp.tree_size)


def iter_event_bytes(session: Session, batch: int = 20_000) -> Iterator[list[tuple[int, bytes, bytes]]]:
    """Stored events as ``(index, canonical, leaf_hash)`` in index order, a batch at a time."""
    result = session.execute(
        select(AuditEvent.index, AuditEvent.canonical, AuditEvent.leaf_hash)
        .order_by(AuditEvent.index)
        .execution_options(yield_per=batch)
    )
    for part in result.partitions(batch):
        yield [(int(i), bytes(c), bytes(h)) for i, c, h in part]


def verify_database(
    session: Session,
    public_key: Ed25519PublicKey,
    sink: CheckpointSink | None = None,
    progress: Callable[[int], None] = lambda _n: None,
    full: bool = False,
) -> VerifyResult:
    """Recompute the whole stored log: chain, canonical form, Merkle roots of every checkpoint
    (from the DB and the sink), their signatures, the stored leaf hashes and the head row."""
    verifier = LogVerifier(public_key, full=full)
    for cp in all_checkpoints(session, sink):
        verifier.add_checkpoint(cp)
    seen = 0
    last_leaf = ZERO_HASH
    stored_leaf_mismatch: int | None = None
    for part in iter_event_bytes(session):
        for index, canonical, stored_leaf in part:
            if stored_leaf_mismatch is None and leaf_hash(canonical) != stored_leaf:
                stored_leaf_mismatch = index
            last_leaf = stored_leaf.hex()
        verifier.add_events(canonical for _i, canonical, _h in part)
        seen += len(part)
        progress(seen)
    result = verifier.result()
    if not result.ok:
        return result
    if stored_leaf_mismatch is not None:
        reason = "stored leaf hash does not match the event"
        return VerifyResult(False, result.events, result.checkpoints, stored_leaf_mismatch, reason)
    head = session.get(AuditHead, HEAD_ID)
    if head is None or head.tree_size != seen or head.last_hash != last_leaf:
        first_bad = min(seen, head.tree_size if head else 0)
        reason = "the log head does not match the stored events (events removed or added)"
        return VerifyResult(False, result.events, result.checkpoints, first_bad, reason)
    return result
