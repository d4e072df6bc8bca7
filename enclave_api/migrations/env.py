"""Alembic environment: the enclave's and the audit store's tables."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from audit.store import AuditBase
from enclave_api.db import normalise_url
from enclave_api.models import Base

config = context.config
target_metadata = [Base.metadata, AuditBase.metadata]


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL configured for migrations")
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        context.configure(connection=conn, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


run()
