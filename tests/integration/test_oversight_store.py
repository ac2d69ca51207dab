"""Barge-in participations in the store, on SQLite and PostgreSQL (docs/handoff.md#supervisor-
oversight): one present participation per supervisor and chat even when two tabs barge at
once, the reconciliation's heads naming who is barged in (so a lost `join` notice is repaired
within a housekeeping round), and the close ending every participation."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import hash_password
from app.bus.memory import MemoryBus
from app.chat import service as chat_service
from app.chat.errors import AlreadyParticipant
from app.chat.service import Actor, Outcome
from app.config import Settings
from app.handoff import service as handoff_service
from app.realtime.hub import Hub
from app.store.db import Database
from app.store.models import (
    Agent,
    AgentStatus,
    ConversationEvent,
    ConversationParticipant,
    Role,
    SenderType,
    Visitor,
)
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def hub(backend: Backend) -> AsyncIterator[Hub]:
    db = Database(backend.database_url, pool_size=20)
    settings = Settings(database_url=backend.database_url)
    try:
        yield Hub(settings=settings, db=db, bus=MemoryBus(), node="test-node", clock=lambda: NOW)
    finally:
        await db.dispose()


async def supervisor(hub: Hub) -> Actor:
    async with hub.db.write() as session:
        agent = Agent(
            name="Sue",
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            role=Role.SUPERVISOR,
            password_hash=hash_password("irrelevant-here"),
            capacity=0,
            status=AgentStatus.OFFLINE,
        )
        session.add(agent)
        await session.flush()
        return Actor(SenderType.AGENT, agent.id, agent.name)


async def open_chat(hub: Hub) -> uuid.UUID:
    """A visitor's conversation (offline: nobody is online)."""
    async with hub.db.write() as session:
        row = Visitor(token_hash=uuid.uuid4().hex, name="V", attributes={})
        session.add(row)
        await session.flush()
        visitor = Actor(SenderType.VISITOR, row.id, "V")

    async def work(session: AsyncSession) -> Outcome:
        return await chat_service.send_message(
            session,
            actor=visitor,
            conversation_id=None,
            client_msg_id="m1",
            text="Hello?",
            now=NOW,
        )

    outcome = await hub.unit(work)
    assert outcome.conversation_id is not None
    return outcome.conversation_id


async def barge(hub: Hub, actor: Actor, cid: uuid.UUID) -> Outcome:
    async def work(session: AsyncSession) -> Outcome:
        return await handoff_service.barge(session, actor=actor, conversation_id=cid, now=NOW)

    return await hub.unit(work)


async def heads(hub: Hub, actor: Actor) -> list[chat_service.ConversationHead]:
    async def read(session: AsyncSession) -> list[chat_service.ConversationHead]:
        return await chat_service.heads(
            session, conversation_ids=set(), agent_ids={actor.id}, visitor_ids=set()
        )

    return await hub.read(read)


class TestParticipation:
    async def test_two_tabs_barging_at_once_make_one_participation(self, hub: Hub) -> None:
        """Two barges of one supervisor into one chat at the same moment: one succeeds, the
        other is told `already_participant`; one row, one `supervisor.joined`."""
        sue = await supervisor(hub)
        cid = await open_chat(hub)
        results = await asyncio.gather(
            barge(hub, sue, cid), barge(hub, sue, cid), return_exceptions=True
        )
        assert sum(isinstance(r, Outcome) for r in results) == 1
        assert sum(isinstance(r, AlreadyParticipant) for r in results) == 1
        async with hub.db.read() as session:
            rows = (
                await session.scalars(
                    select(ConversationParticipant).where(
                        ConversationParticipant.conversation_id == cid
                    )
                )
            ).all()
            joined = (
                await session.scalars(
                    select(ConversationEvent.seq).where(
                        ConversationEvent.conversation_id == cid,
                        ConversationEvent.kind == "supervisor.joined",
                    )
                )
            ).all()
        assert [(r.agent_id, r.left_at) for r in rows] == [(sue.id, None)]
        assert len(joined) == 1

    async def test_heads_name_who_is_barged_in_until_the_close(self, hub: Hub) -> None:
        """The reconciliation's heads include the chats a supervisor barged into, naming
        them as participant; closing the chat ends the participation, without an event."""
        sue = await supervisor(hub)
        cid = await open_chat(hub)
        assert [h.id for h in await heads(hub, sue)] == []
        await barge(hub, sue, cid)
        [head] = await heads(hub, sue)
        assert head.id == cid
        assert head.participants == frozenset({sue.id})

        async def close(session: AsyncSession) -> Outcome:
            return await chat_service.close(session, actor=None, conversation_id=cid, now=NOW)

        outcome = await hub.unit(close)
        assert [e.kind for e in outcome.events] == ["conversation.closed"]
        assert await heads(hub, sue) == []
        async with hub.db.read() as session:
            left = await session.scalar(
                select(ConversationParticipant.left_at).where(
                    ConversationParticipant.conversation_id == cid
                )
            )
        assert left == NOW
