"""Shared fixtures: real databases (SQLite file or PostgreSQL) and real Redis, one per test.

PostgreSQL tests get a fresh database cloned from a migrated template (`alembic upgrade head`
runs once per session on the template); SQLite tests get, in `tmp_path`, a copy of a file
migrated once per session. With WARMLINE_REQUIRE_SERVICES=1 (as in CI) a missing PostgreSQL or
Redis fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped] # asyncpg ships no type information
import pytest
from alembic import command

from app.store.db import alembic_config

PG_HOST = os.environ.get("WARMLINE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("WARMLINE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("WARMLINE_TEST_PG_USER", "postgres")
PG_ADMIN_DB = os.environ.get("WARMLINE_TEST_PG_DB", "test")
REDIS_URL = os.environ.get("WARMLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("WARMLINE_REQUIRE_SERVICES") == "1"
TEMPLATE_DB = f"warmline_tpl_{uuid.uuid4().hex[:10]}"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require(service: str, host: str, port: int) -> None:
    """Skip (or, with WARMLINE_REQUIRE_SERVICES=1, fail) when a service is not reachable."""
    if _reachable(host, port):
        return
    message = f"{service} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " and WARMLINE_REQUIRE_SERVICES=1")
    pytest.skip(message)


def pg_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def _pg_admin(*statements: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _redis_host_port() -> tuple[str, int]:
    rest = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = rest.rpartition(":")
    return host or "127.0.0.1", int(port or 6379)


@dataclass(frozen=True)
class Backend:
    """Where a test's Warmline keeps its data and fans out its events."""

    name: str
    database_url: str
    redis_url: str | None

    @property
    def is_postgres(self) -> bool:
        return self.database_url.startswith("postgresql")


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A PostgreSQL database migrated to head, cloned by every PostgreSQL test."""
    require("PostgreSQL", PG_HOST, PG_PORT)
    asyncio.run(_pg_admin(f'CREATE DATABASE "{TEMPLATE_DB}"'))
    try:
        command.upgrade(alembic_config(pg_url(TEMPLATE_DB)), "head")
        yield TEMPLATE_DB
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per test process; each test gets a copy of it, as
    PostgreSQL tests get a clone of their template (a migration costs ~0.4 s, a copy ~1 ms)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "warmline.db"
    command.upgrade(alembic_config(f"sqlite+aiosqlite:///{path}"), "head")
    assert not path.with_name(path.name + "-wal").exists(), "the template was left mid-write"
    return path


@pytest.fixture
def sqlite_backend(tmp_path: Path, sqlite_template: Path) -> Backend:
    target = tmp_path / "warmline.db"
    shutil.copyfile(sqlite_template, target)
    return Backend("sqlite", f"sqlite+aiosqlite:///{target}", None)


@pytest.fixture
def postgres_backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    template: str = request.getfixturevalue("pg_template")
    host, port = _redis_host_port()
    require("Redis", host, port)
    name = f"warmline_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield Backend("postgres", pg_url(name), REDIS_URL)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Every test using this runs twice: SQLite + in-process bus, PostgreSQL + Redis."""
    fixture = "sqlite_backend" if request.param == "sqlite" else "postgres_backend"
    result: Backend = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def unmigrated_sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


@pytest.fixture(autouse=True)
def _no_unobserved_task_errors(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Fail a test in which an asyncio task died with an exception nobody looked at: asyncio
    only logs those ("Task exception was never retrieved"), which would hide a broken path."""
    yield
    if request.node.get_closest_marker("asyncio") is None:
        return  # no event loop in this test: nothing to collect (and gc costs ~75 ms a test)
    gc.collect()  # a task's unretrieved exception is reported when the task is collected
    reported = [
        r.getMessage()
        for r in caplog.get_records("call") + caplog.get_records("teardown")
        if r.name == "asyncio" and r.levelno >= logging.ERROR
    ]
    assert not reported, f"unobserved asyncio errors: {reported}"


@dataclass(frozen=True)
class S3:
    """An S3 API on 127.0.0.1 (moto's server: the real protocol over HTTP) and a fresh bucket."""

    endpoint_url: str
    bucket: str
    # What a client needs in its environment: boto3's standard credential chain reads these.
    env: dict[str, str]


S3_ENV = {
    "AWS_ACCESS_KEY_ID": "warmline-test",
    "AWS_SECRET_ACCESS_KEY": "warmline-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    import boto3

    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    bucket = f"warmline-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    return S3(s3_endpoint, bucket, dict(S3_ENV))
