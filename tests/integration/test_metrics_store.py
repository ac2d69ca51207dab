"""What the store adds to the metrics, on both databases: units of work count what they stored
only once committed, and the cluster gauges read an empty installation as zeros."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.metrics import Metrics
from app.routing import gauges
from app.store.db import Database, after_commit
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


class Boom(Exception):
    pass


async def failing_unit(db: Database) -> None:
    async with db.write() as session:
        after_commit(session, lambda m: m.offers_made.inc())
        raise Boom


def offers_made(metrics: Metrics) -> float | None:
    return metrics.registry.get_sample_value("warmline_offers_made_total")


class TestAfterCommit:
    async def test_notes_run_after_a_commit_and_never_after_a_rollback(
        self, backend: Backend
    ) -> None:
        """A unit of work that raises counts nothing; one that commits counts once. Both are
        timed, as are their statements."""
        metrics = Metrics()
        db = Database(backend.database_url, metrics=metrics)
        try:
            with pytest.raises(Boom):
                await failing_unit(db)
            assert offers_made(metrics) == 0
            async with db.write() as session:
                after_commit(session, lambda m: m.offers_made.inc())
                after_commit(session, lambda m: m.offers_made.inc())
                assert offers_made(metrics) == 0  # not before the commit
            assert offers_made(metrics) == 2
            figures = await gauges.read(db, now=datetime.now(UTC))
        finally:
            await db.dispose()
        writes = metrics.registry.get_sample_value(
            "warmline_db_transaction_seconds_count", {"mode": "write"}
        )
        assert writes == 2
        statements = metrics.registry.get_sample_value("warmline_db_statement_seconds_count")
        assert statements is not None
        assert statements >= 3  # the gauges' three reads at least
        assert figures.up
        assert [(q.skill, q.depth, q.oldest_wait_seconds) for q in figures.queues] == [("", 0, 0.0)]
        assert figures.conversations == {"queued": 0, "assigned": 0, "offline": 0}
        assert figures.agents == {"online": 0, "away": 0, "offline": 0}
