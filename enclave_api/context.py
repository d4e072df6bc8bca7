"""The enclave's runtime context: settings, database, secrets, audit log and dataset store.

Built once per process by :meth:`Enclave.open` (API app factory, CLI commands, tests); never at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from audit.canonical import rfc3339_utc, rfc3339_utc_now
from audit.checkpoint import Checkpoint
from audit.schemas import SchemaRegistry
from audit.sink import SINKS, CheckpointSink, JsonlFileSink
from audit.store import AuditLog, pending_checkpoints
from enclave_api.authcache import AuthCache
from enclave_api.db import Database
from enclave_api.errors import ConfigurationError
from enclave_api.groupcommit import GroupCommitter
from enclave_api.hub.control import SessionControl, make_session_control
from enclave_api.limits import AbuseLimits
from enclave_api.migrate import upgrade
from enclave_api.secret_store import Secrets, load_secrets
from enclave_api.settings import Settings
from enclave_api.storage.store import EncryptedDatasetStore
from privacy.egress.isolation import CheckWorker

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Enclave:
    settings: Settings
    db: Database
    secrets: Secrets
    audit: AuditLog
    store: EncryptedDatasetStore
    sink: CheckpointSink
    clock: Callable[[], datetime] = field(default=utcnow)
    committer: GroupCommitter = field(init=False)
    #: Egress files, encrypted at rest and content-addressed, until released or forever if not.
    quarantine: EncryptedDatasetStore = field(init=False)
    #: The isolated worker process that runs the automatic egress checks (started on first use).
    egress_checks: CheckWorker = field(init=False)
    #: How servers of ended notebook sessions are stopped (the hub's REST API, or nothing).
    session_control: SessionControl = field(init=False)
    #: Rate limits on costly actions and failed-login throttling (this process's counts).
    limits: AbuseLimits = field(init=False)
    #: Recently authenticated API tokens (``enclave_api.authcache``).
    auth_cache: AuthCache[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.committer = GroupCommitter(self)
        self.limits = AbuseLimits(self.settings)
        self.auth_cache = AuthCache(self.settings.auth_cache_seconds)
        self.quarantine = EncryptedDatasetStore(self.settings.quarantine_dir, self.secrets.key_provider)
        self.egress_checks = CheckWorker(timeout=self.settings.egress_check_timeout_seconds)
        hub_token = self.settings.hub_api_token
        self.session_control = make_session_control(
            self.settings.hub_api_url,
            hub_token.get_secret_value() if hub_token else None,
            self.settings.session_control,
            self.settings.kubernetes_namespace,
            self.settings.kubernetes_in_cluster,
        )

    @classmethod
    def open(cls, settings: Settings, migrate: bool = True) -> Enclave:
        """Load secrets (generating them in embedded mode), connect and migrate the database."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secrets = load_secrets(settings)
        db = Database(settings.database_url_resolved())
        if migrate:
            upgrade(db.engine)
        enclave = cls(
            settings=settings,
            db=db,
            secrets=secrets,
            audit=AuditLog(SchemaRegistry.load(), secrets.signing_key, settings.audit_checkpoint_every),
            store=EncryptedDatasetStore(settings.store_dir, secrets.key_provider),
            sink=make_sink(settings),
        )
        enclave.audit.clock = enclave.now
        enclave.audit.timestamp = enclave.timestamp
        return enclave

    def now(self) -> datetime:
        return self.clock()

    def timestamp(self) -> str:
        """Now as an audit event timestamp; the system clock has a fast path (every append)."""
        if self.clock is utcnow:
            return rfc3339_utc_now()
        return rfc3339_utc(self.clock())

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction; audit events appended in it commit with the change.

        Checkpoints signed in the transaction are published to the sink after it commits.
        """
        with self.db.write() as session:
            yield session
        self.publish(pending_checkpoints(session))

    def transact(self, work: Callable[[Session], T]) -> T:
        """Run ``work(session)`` in a write transaction shared with concurrent callers (group
        commit); returns after the commit, raises what ``work`` raised (its changes undone)."""
        return self.committer.run(work)

    def publish(self, checkpoints: list[Checkpoint]) -> None:
        for checkpoint in checkpoints:
            self.sink.publish(checkpoint)

    def checkpoint_now(self) -> Checkpoint | None:
        """Sign and publish a checkpoint if the log grew since the last one."""
        with self.write() as session:
            return self.audit.checkpoint(session)

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.read() as session:
            yield session

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        """Checkpoint what is not yet covered (shutdown), then release the database."""
        try:
            self.checkpoint_now()
        finally:
            self.egress_checks.close()
            self.db.dispose()


def make_sink(settings: Settings) -> CheckpointSink:
    sink_cls = SINKS.get(settings.audit_sink)
    if sink_cls is None:
        raise ConfigurationError(f"unknown audit sink {settings.audit_sink!r}")
    if sink_cls is JsonlFileSink:
        return JsonlFileSink(settings.checkpoint_file)
    return sink_cls()
