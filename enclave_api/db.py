"""Database engine and transactions.

SQLite (WAL, embedded default) and PostgreSQL are both first-class. Write transactions on SQLite start
with ``BEGIN IMMEDIATE`` so that concurrent writers queue on the busy timeout instead of failing on a
lock upgrade; on PostgreSQL writers serialise on row locks taken by the services (the audit head, the
budget ledger).

SQLAlchemy's recipe for ``BEGIN IMMEDIATE`` is an engine "begin" listener, but any engine event
listener makes every statement run SQLAlchemy's event hooks, about a tenth of the CPU of a
group-committed write; here the dialect issues BEGIN itself, and writers get an engine of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import PoolProxiedConnection

SQLITE_BUSY_TIMEOUT_MS = 30_000


class EnclaveSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite that begins each transaction with ``BEGIN <sqlite_begin>`` (DEFERRED or IMMEDIATE)."""

    supports_statement_cache = True

    def __init__(self, sqlite_begin: str = "DEFERRED", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.begin_statement = f"BEGIN {sqlite_begin}"

    def do_begin(self, dbapi_connection: PoolProxiedConnection) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(self.begin_statement)
        cursor.close()


registry.register("sqlite.enclave", __name__, "EnclaveSQLiteDialect")


def _is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (SQLAlchemy would pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


#: Pooled connections per engine (and as many more under bursts); the API bounds the requests in
#: flight by them (``api.app._requests_in_flight``).
POOL_SIZE, POOL_OVERFLOW = 10, 10


def make_engine(url: str, sqlite_begin: str = "DEFERRED", **kwargs: Any) -> Engine:
    """Create the engine for ``url`` with the pragmas and pooling each backend needs.

    On SQLite its transactions begin with ``BEGIN <sqlite_begin>``.
    """
    url = normalise_url(url)
    kwargs = {"pool_size": POOL_SIZE, "max_overflow": POOL_OVERFLOW} | kwargs
    if not _is_sqlite(url):
        # No ping before each checkout (it doubled the round trips of a read: p99 under load
        # 528 → 191 ms). A connection the server dropped fails its request once; SQLAlchemy then
        # discards every pooled connection of that age, and none outlives an hour.
        return create_engine(url, pool_recycle=3600, future=True, **kwargs)
    enclave_url = make_url(url).set(drivername="sqlite+enclave")
    engine = create_engine(enclave_url, sqlite_begin=sqlite_begin, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The dialect issues BEGIN itself (pysqlite's own is deferred-only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    return engine


class Database:
    """Owns the engines (on SQLite, one for writers) and hands out read and write transactions."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = normalise_url(url)
        self.engine = make_engine(self.url, **engine_kwargs)
        self.is_sqlite = _is_sqlite(self.url)
        self._write_engine = (
            make_engine(self.url, sqlite_begin="IMMEDIATE", **engine_kwargs)
            if self.is_sqlite
            else self.engine
        )
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self._write_engine, expire_on_commit=False)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only transaction; closing the session ends it without expiring loaded objects."""
        with self._read() as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """A write transaction: committed if the block succeeds, rolled back otherwise."""
        with self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
        self._write_engine.dispose()
