"""The enclave's runtime context: settings, database, secrets, audit log and dataset store.

Built once per process by :meth:`Enclave.open` (API app factory, CLI commands, tests); never at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from audit.schemas import SchemaRegistry
from audit.store import AuditLog
from enclave_api.db import Database
from enclave_api.migrate import upgrade
from enclave_api.secret_store import Secrets, load_secrets
from enclave_api.settings import Settings
from enclave_api.storage.store import EncryptedDatasetStore


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Enclave:
    settings: Settings
    db: Database
    secrets: Secrets
    audit: AuditLog
    store: EncryptedDatasetStore
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def open(cls, settings: Settings, migrate: bool = True) -> Enclave:
        """Load secrets (generating them in embedded mode), connect and migrate the database."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        secrets = load_secrets(settings)
        db = Database(settings.database_url_resolved())
        if migrate:
            upgrade(db.engine)
        return cls(
            settings=settings,
            db=db,
            secrets=secrets,
            audit=AuditLog(SchemaRegistry.load()),
            store=EncryptedDatasetStore(settings.store_dir, secrets.key_provider),
        )

    def now(self) -> datetime:
        return self.clock()

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction; audit events appended in it commit with the change."""
        with self.db.write() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.db.read() as session:
            yield session

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir

    def close(self) -> None:
        self.db.dispose()
