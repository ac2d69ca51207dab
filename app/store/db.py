"""Engines, sessions and units of work for PostgreSQL (asyncpg) and SQLite (aiosqlite).

Owns connection setup and the schema-version check. Must not hold queries or business rules.
A unit of work is one `async with db.write() as session:` block: it commits on a clean exit and
rolls back on an exception; services inside it only flush. Reference: docs/operations.md.

Also times units of work and statements, and runs what `after_commit()` queued once a unit of
work has committed (the metrics of what it stored: docs/metrics.md#prometheus-metrics).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.errors import WarmlineError
from app.metrics import Metrics

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# How long a SQLite writer waits for the file lock before failing. Writes are short (one frame),
# so 15 s only runs out when something is badly wrong.
SQLITE_BUSY_TIMEOUT_MS = 15_000
# `session.info` keys: what to count once the unit of work commits; when a statement started.
_ON_COMMIT: Final = "warmline.on_commit"
_STARTED: Final = "warmline.statement_started"


class SchemaOutdated(WarmlineError):
    code = "schema_outdated"
    status_code = 503


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at Warmline's migrations and the given database."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option(
        "file_template",
        "%%(year)d-%%(month).2d-%%(day).2d-%%(hour).2d%%(minute).2d_%%(slug)s",
    )
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def _sqlite_setup(engine: AsyncEngine, *, immediate: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy so that BEGIN is ours to choose.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives process crashes
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # Writers take the write lock up front: a deferred transaction that later upgrades to a
        # write fails with SQLITE_BUSY instead of waiting, which would surface as spurious errors.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def after_commit(session: AsyncSession, note: Callable[[Metrics], None]) -> None:
    """Call `note` with the process's metrics once `session`'s unit of work (`Database.write()`)
    has committed; never if it rolls back. For counting what was stored, exactly once."""
    session.info.setdefault(_ON_COMMIT, []).append(note)


def _time_statements(engine: AsyncEngine, metrics: Metrics) -> None:
    """Observe each statement's round trip (a few microseconds of bookkeeping per statement)."""

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before(conn: Connection, *_args: Any) -> None:
        conn.info[_STARTED] = time.perf_counter()

    @event.listens_for(engine.sync_engine, "after_cursor_execute")
    def _after(conn: Connection, *_args: Any) -> None:
        started = conn.info.pop(_STARTED, None)
        if started is not None:
            metrics.db_statement.observe(time.perf_counter() - started)


class Database:
    """The process's engines. `write()` for units of work, `read()` for snapshots and replays.

    Args:
        metrics: the app's instruments; a private set when omitted (tools, tests).
    """

    def __init__(
        self,
        url: str,
        *,
        process: str = "warmline",
        pool_size: int = 10,
        metrics: Metrics | None = None,
    ) -> None:
        self.url = url
        self.metrics = metrics or Metrics()
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            self.engine = create_async_engine(url, connect_args={"timeout": 15})
            _sqlite_setup(self.engine, immediate=True)
            # Readers must not take the write lock, or every replay would queue behind writers.
            self.read_engine = create_async_engine(url, connect_args={"timeout": 15})
            _sqlite_setup(self.read_engine, immediate=False)
        else:
            self.engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_pre_ping=True,
                connect_args={"server_settings": {"application_name": process[:63]}},
            )
            self.read_engine = self.engine
        _time_statements(self.engine, self.metrics)
        if self.read_engine is not self.engine:
            _time_statements(self.read_engine, self.metrics)
        self._write = async_sessionmaker(self.engine, expire_on_commit=False)
        self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits on a clean exit, rolls back if the block raises. Then
        runs what `after_commit()` queued, if it committed."""
        started = time.perf_counter()
        try:
            async with self._write.begin() as session:
                yield session
        finally:
            self.metrics.db_transaction.labels("write").observe(time.perf_counter() - started)
        for note in session.info.pop(_ON_COMMIT, ()):
            note(self.metrics)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session for reads. Closing it rolls back anything written and detaches the loaded
        objects without expiring them, so they stay readable after the block."""
        started = time.perf_counter()
        try:
            async with self._read() as session:
                yield session
        finally:
            self.metrics.db_transaction.labels("read").observe(time.perf_counter() - started)

    async def ping(self) -> None:
        """Raise if the database does not answer a trivial query."""
        async with self.read_engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def check_schema(self) -> None:
        """Raise `SchemaOutdated` unless the database is at the newest migration."""
        head = ScriptDirectory.from_config(alembic_config(self.url)).get_current_head()
        async with self.read_engine.connect() as conn:
            current = await conn.run_sync(
                lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
            )
        if current != head:
            state = "has no Warmline schema" if current is None else f"is at revision {current}"
            msg = (
                f"The database {state}, but this Warmline needs revision {head}. "
                "Run `warmline migrate` (with the same WARMLINE_DATABASE_URL) and start again."
            )
            raise SchemaOutdated(msg)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
