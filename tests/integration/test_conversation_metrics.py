"""Each closed conversation's figures (`conversation_metrics`), on SQLite and PostgreSQL: written
in the close's transaction, updated by a later rating and by the visitor's next contact, and
rebuilt identically from the logs by the migration's backfill."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.db import Database, alembic_config
from app.store.models import ConversationMetrics
from tests.conftest import Backend
from tests.integration.desk import Desk

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
# The migration that creates and backfills the table, and the one before it.
METRICS_REVISION = "f6d4b8c03e54"
BEFORE_METRICS = "e5c3a7b92d43"


@pytest_asyncio.fixture
async def desk(backend: Backend) -> AsyncIterator[Desk]:
    db = Database(backend.database_url, pool_size=5)
    try:
        yield Desk(db, START)
    finally:
        await db.dispose()


async def metrics(desk: Desk) -> dict[object, ConversationMetrics]:
    async with desk.db.read() as session:
        rows = (await session.scalars(select(ConversationMetrics))).all()
    return {row.conversation_id: row for row in rows}


def as_dict(row: ConversationMetrics) -> dict[str, object]:
    return {c.key: getattr(row, c.key) for c in ConversationMetrics.__table__.columns}


class TestRecorded:
    async def test_close_writes_the_figures(self, desk: Desk) -> None:
        """Opened at 0, accepted at 20 s, answered at 50 s, closed at 10 min: the row holds the
        log's figures in milliseconds, against the skill's 30 s target (missed)."""
        billing = await desk.skill("billing", target_seconds=30)
        ann = await desk.agent("Ann", billing)
        ada = await desk.visitor("Ada")
        chat = await desk.open(ada, 0, billing)
        await desk.accept(ann, chat, 20)
        await desk.say(ann, chat, 50)
        await desk.close(ann, chat, 600)
        row = (await metrics(desk))[chat]
        assert (row.queue_wait_ms, row.first_response_ms, row.handle_ms) == (
            20_000,
            50_000,
            580_000,
        )
        assert (row.skill_id, row.first_agent_id, row.last_agent_id) == (billing, ann.id, ann.id)
        assert row.sla_met is False
        assert row.sla_target_seconds == 30
        assert row.fcr_candidate
        assert row.next_contact_at is None
        assert row.csat is None

    async def test_rating_and_repeat_contact_update_it(self, desk: Desk) -> None:
        """A rating given an hour after the close sets CSAT; the visitor's next conversation,
        opened later, is noted on the earlier one only (not on itself)."""
        billing = await desk.skill("billing")
        ann = await desk.agent("Ann", billing)
        ada = await desk.visitor("Ada")
        first = await desk.open(ada, 0, billing)
        await desk.accept(ann, first, 5)
        await desk.say(ann, first, 10)
        await desk.close(ann, first, 100)
        await desk.rate(ada, first, 4, 3_700)
        second = await desk.open(ada, 7_200, billing)
        await desk.accept(ann, second, 7_210)
        await desk.close(ada, second, 7_300)
        rows = await metrics(desk)
        assert rows[first].csat == 4
        assert rows[first].next_contact_at == desk.at(7_200)
        assert rows[second].next_contact_at is None
        assert not rows[second].fcr_candidate  # never answered

    async def test_relabelled_after_the_close(self, desk: Desk) -> None:
        """Another system tagging a closed conversation (REST) updates its figures' tags, and an
        integration's close of a waiting chat is not an abandonment."""
        from app.chat import service as chat_service
        from app.chat.outcome import Integration

        crm = Integration(key_id=uuid.uuid4(), name="CRM")
        ann = await desk.agent("Ann")
        ada, bea = await desk.visitor("Ada"), await desk.visitor("Bea")
        chat = await desk.open(ada, 0, None)
        await desk.accept(ann, chat, 1)
        await desk.close(ann, chat, 2, tags=["billing"])
        waiting = await desk.open(bea, 3, None)

        async def relabel(session: AsyncSession) -> None:
            await chat_service.relabel(
                session,
                by=crm,
                conversation_id=chat,
                tags=["refund", "billing"],
                disposition=None,
                now=desk.at(60),
            )
            await chat_service.close(
                session, actor=None, integration=crm, conversation_id=waiting, now=desk.at(90)
            )

        await desk.unit(relabel)
        rows = await metrics(desk)
        assert rows[chat].tags == ["billing", "refund"]
        assert rows[waiting].abandoned is False
        assert rows[waiting].handled is False

    async def test_erasure_keeps_the_figures(self, desk: Desk) -> None:
        """Erasing a visitor redacts their conversations but not their figures: the closed one
        keeps its rating; the one waiting is closed by the system, an abandonment."""
        from app.privacy.erasure import erase_visitor
        from tests.integration.desk import OFFERS

        ann = await desk.agent("Ann")
        ada = await desk.visitor("Ada")
        chat = await desk.open(ada, 0, None)
        await desk.accept(ann, chat, 5)
        await desk.say(ann, chat, 8)
        await desk.close(ann, chat, 20)
        await desk.rate(ada, chat, 4, 30)
        before = as_dict((await metrics(desk))[chat])
        waiting = await desk.open(ada, 100, None)

        async def erase(session: AsyncSession) -> None:
            await erase_visitor(
                session, visitor_id=ada.id, requested_by="test", now=desk.at(200), offers=OFFERS
            )

        await desk.unit(erase)
        rows = await metrics(desk)
        assert as_dict(rows[chat]) == {**before, "next_contact_at": desk.at(100)}
        assert rows[waiting].abandoned is True
        assert rows[waiting].queue_wait_ms == 100_000

    async def test_backfill_rebuilds_the_same_rows(self, desk: Desk, backend: Backend) -> None:
        """Going down below the metrics migration and up again measures every closed
        conversation from its log: the rows equal those the closes wrote."""
        billing = await desk.skill("billing", target_seconds=45)
        ann = await desk.agent("Ann", billing)
        bob = await desk.agent("Bob")
        ada, bea = await desk.visitor("Ada"), await desk.visitor("Bea")
        one = await desk.open(ada, 0, billing)
        await desk.accept(ann, one, 30)
        await desk.say(ann, one, 40)
        await desk.transfer(ann, bob, one, 60, 90)
        await desk.say(bob, one, 95)
        await desk.close(bob, one, 300)
        await desk.rate(ada, one, 2, 400)
        two = await desk.open(bea, 10, billing)
        await desk.close(bea, two, 70)
        await desk.open(ada, 1_000, billing)  # open: no row, but noted on `one`
        written = {cid: as_dict(row) for cid, row in (await metrics(desk)).items()}
        assert set(written) == {one, two}
        assert written[one]["transfers"] == 1
        assert written[two]["abandoned"] is True

        await desk.db.dispose()
        cfg = alembic_config(backend.database_url)
        # Alembic runs its own event loop: in a thread, beside this test's.
        await asyncio.to_thread(command.downgrade, cfg, BEFORE_METRICS)
        await asyncio.to_thread(command.upgrade, cfg, "head")
        rebuilt = {cid: as_dict(row) for cid, row in (await metrics(desk)).items()}
        assert rebuilt == written

    async def test_retention_purge_keeps_the_figures(self, desk: Desk) -> None:
        """Deleting a conversation (a retention purge) leaves its figures: no foreign key."""
        from app.store.models import Conversation

        ann = await desk.agent("Ann")
        ada = await desk.visitor("Ada")
        chat = await desk.open(ada, 0, None)
        await desk.accept(ann, chat, 1)
        await desk.close(ann, chat, 2)
        async with desk.db.write() as session:
            await session.execute(delete(Conversation).where(Conversation.id == chat))
        assert chat in await metrics(desk)


async def test_revisions_are_the_ones_named_here() -> None:
    """The backfill test goes down to the revision before the metrics migration."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    revision = script.get_revision(METRICS_REVISION)
    assert revision is not None
    assert revision.down_revision == BEFORE_METRICS
