"""Migrations run both ways on both dialects, match the models, and have one head."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app.store.db import alembic_config
from app.store.models import Base
from tests.conftest import Backend

pytestmark = [pytest.mark.integration]

# Indexes a migration creates on one dialect only, which the models cannot state for both:
# PostgreSQL's full-text index on the events' text (migration 2026-12-04-0502).
MIGRATION_ONLY_INDEXES = frozenset({"ix_conversation_events_text_search"})


def _migration_only(diff: object) -> bool:
    return (
        isinstance(diff, tuple)
        and diff[0] == "remove_index"
        and getattr(diff[1], "name", None) in MIGRATION_ONLY_INDEXES
    )


def _diff(url: str) -> list[object]:
    import asyncio

    async def run() -> list[object]:
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:

                def compare(sync_conn: Connection) -> list[object]:
                    context = MigrationContext.configure(sync_conn, opts={"compare_type": True})
                    diffs = compare_metadata(context, Base.metadata)
                    return [d for d in diffs if not _migration_only(d)]

                return await conn.run_sync(compare)
        finally:
            await engine.dispose()

    return asyncio.run(run())


class TestMigrations:
    def test_single_head(self) -> None:
        """The migration history has exactly one head (no unmerged branches)."""
        heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
        assert len(heads) == 1

    def test_up_down_up_without_drift(self, backend: Backend) -> None:
        """upgrade head → downgrade base → upgrade head works, and the migrated schema matches
        the ORM models exactly (autogenerate finds nothing to add)."""
        cfg = alembic_config(backend.database_url)
        command.downgrade(cfg, "base")
        command.upgrade(cfg, "head")
        assert _diff(backend.database_url) == []
