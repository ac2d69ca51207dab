"""Invariants of the store under concurrency, on SQLite and PostgreSQL: no agent above capacity,
one owner per chat, one event per client_msg_id, dense seq, one open conversation per visitor."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import hash_password
from app.bus.memory import MemoryBus
from app.chat import service as chat_service
from app.chat import upkeep
from app.chat.service import ROUTING_BATCH, Actor, Outcome
from app.config import Settings
from app.realtime.hub import Hub
from app.routing import presence
from app.routing.service import OfferPolicy
from app.store.db import Database
from app.store.models import (
    Agent,
    AgentSkill,
    AgentStatus,
    Conversation,
    ConversationEvent,
    ConversationState,
    Offer,
    OfferState,
    SenderType,
    Skill,
    Visitor,
)
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def hub(backend: Backend) -> AsyncIterator[Hub]:
    db = Database(backend.database_url, pool_size=20)
    bus = MemoryBus()
    settings = Settings(database_url=backend.database_url)
    try:
        yield Hub(settings=settings, db=db, bus=bus, node="test-node", clock=lambda: NOW)
    finally:
        await db.dispose()


async def online_agent(hub: Hub, *, capacity: int, name: str = "Agent") -> uuid.UUID:
    async with hub.db.write() as session:
        agent = Agent(
            name=name,
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            password_hash=hash_password("irrelevant-here"),
            capacity=capacity,
            status=AgentStatus.OFFLINE,
        )
        session.add(agent)
        await session.flush()
        await presence.connect(session, agent=agent, node=hub.node, now=NOW)
        return agent.id


async def skilled_but_full(hub: Hub, *skill_ids: int) -> uuid.UUID:
    """An online agent with these skills, filled by a chat of the first: chats for them wait
    in the queue rather than going offline. Call before any other agent of those skills."""
    agent_id = await online_agent(hub, capacity=1, name="Full")
    async with hub.db.write() as session:
        session.add_all(
            AgentSkill(agent_id=agent_id, skill_id=skill_id, proficiency=3)
            for skill_id in skill_ids
        )
    filler = await visitor(hub)

    async def fill(session: AsyncSession) -> Outcome:
        return await chat_service.send_message(
            session,
            actor=filler,
            conversation_id=None,
            client_msg_id="fill",
            text="filler",
            now=NOW - timedelta(hours=1),
            skill_id=skill_ids[0],
        )

    outcome = await hub.unit(fill)
    async with hub.db.read() as session:
        owner = await session.scalar(
            select(Conversation.agent_id).where(Conversation.id == outcome.conversation_id)
        )
    assert owner == agent_id
    return agent_id


async def visitor(hub: Hub) -> Actor:
    async with hub.db.write() as session:
        row = Visitor(token_hash=uuid.uuid4().hex, name="V", attributes={})
        session.add(row)
        await session.flush()
        return Actor(SenderType.VISITOR, row.id, "V")


async def send(
    hub: Hub, actor: Actor, text: str, client_msg_id: str, now: datetime = NOW
) -> Outcome:
    async def work(session: object) -> Outcome:
        return await chat_service.send_message(
            session,  # type: ignore[arg-type] # the hub hands an AsyncSession
            actor=actor,
            conversation_id=None,
            client_msg_id=client_msg_id,
            text=text,
            now=now,
        )

    return await hub.unit(work)


class TestCapacity:
    async def test_concurrent_chats_never_exceed_capacity(self, hub: Hub) -> None:
        """Twelve visitors write at once to two agents of capacity 2 and 3: exactly five chats
        are assigned, none beyond an agent's capacity, the rest wait in the queue."""
        small = await online_agent(hub, capacity=2, name="Small")
        large = await online_agent(hub, capacity=3, name="Large")
        visitors = [await visitor(hub) for _ in range(12)]
        await asyncio.gather(*(send(hub, v, "hello", "m1") for v in visitors))

        async with hub.db.read() as session:
            rows = (await session.execute(select(Conversation.agent_id, Conversation.state))).all()
        load: dict[uuid.UUID | None, int] = {}
        for agent_id, state in rows:
            if state is ConversationState.ASSIGNED:
                load[agent_id] = load.get(agent_id, 0) + 1
        assert load == {small: 2, large: 3}
        assert sum(1 for _, s in rows if s is ConversationState.QUEUED) == 7

    async def test_chats_arriving_together_spread_over_free_agents(self, hub: Hub) -> None:
        """Six chats at once, six idle agents of capacity 4: one chat each (lowest load ratio
        first), not several on whichever agent every router saw as least loaded."""
        agents = [await online_agent(hub, capacity=4, name=f"A{i}") for i in range(6)]
        visitors = [await visitor(hub) for _ in range(6)]
        await asyncio.gather(*(send(hub, v, "hello", "m1") for v in visitors))
        async with hub.db.read() as session:
            owners = (
                await session.scalars(
                    select(Conversation.agent_id).where(
                        Conversation.state == ConversationState.ASSIGNED
                    )
                )
            ).all()
        assert sorted(map(str, owners)) == sorted(map(str, agents))

    async def test_queue_drains_in_order_when_capacity_frees(self, hub: Hub) -> None:
        """When an agent closes a chat, the longest-waiting queued chat is assigned next."""
        agent_id = await online_agent(hub, capacity=1)
        first, second, third = [await visitor(hub) for _ in range(3)]
        opened = await send(hub, first, "one", "m")
        await send(hub, second, "two", "m", now=NOW + timedelta(seconds=1))
        await send(hub, third, "three", "m", now=NOW + timedelta(seconds=2))
        agent = Actor(SenderType.AGENT, agent_id, "Agent")
        assert opened.conversation_id is not None

        async def close(session: object) -> Outcome:
            return await chat_service.close(
                session,  # type: ignore[arg-type] # the hub hands an AsyncSession
                actor=agent,
                conversation_id=opened.conversation_id,  # type: ignore[arg-type] # checked above
                now=NOW,
            )

        await hub.unit(close)
        async with hub.db.read() as session:
            owner = await session.scalar(
                select(Conversation.visitor_id).where(
                    Conversation.state == ConversationState.ASSIGNED
                )
            )
        assert owner == second.id


class TestIdempotentAppend:
    async def test_two_tabs_sending_the_same_message_store_it_once(self, hub: Hub) -> None:
        """The same client_msg_id sent concurrently (two tabs, a retry racing the original)
        yields one conversation, one message event, and both acks carry its seq."""
        someone = await visitor(hub)
        results = await asyncio.gather(*(send(hub, someone, "hi", "same-id") for _ in range(5)))
        acks = {(r.ack.conversation_id, r.ack.seq) for r in results if r.ack is not None}
        assert len(acks) == 1
        assert sum(1 for r in results if r.ack is not None and not r.ack.duplicate) == 1
        async with hub.db.read() as session:
            conversations = await session.scalar(
                select(func.count())
                .select_from(Conversation)
                .where(Conversation.visitor_id == someone.id)
            )
            messages = await session.scalar(
                select(func.count())
                .select_from(ConversationEvent)
                .where(ConversationEvent.kind == "message")
            )
        assert (conversations, messages) == (1, 1)

    async def test_seq_is_dense_under_concurrent_writers(self, hub: Hub) -> None:
        """Concurrent messages into one conversation get seq 1..n with no gap or repeat."""
        someone = await visitor(hub)
        await send(hub, someone, "first", "0")
        await asyncio.gather(*(send(hub, someone, f"m{i}", str(i)) for i in range(1, 16)))
        async with hub.db.read() as session:
            seqs = list(
                (
                    await session.scalars(
                        select(ConversationEvent.seq).order_by(ConversationEvent.seq)
                    )
                ).all()
            )
        assert seqs == list(range(1, len(seqs) + 1))
        assert len(seqs) == 2 + 16  # opened + queued + 16 messages


class TestQueueScan:
    async def test_chats_nobody_can_take_do_not_hide_the_rest(self, hub: Hub) -> None:
        """Sixty queued chats for a skill no online agent has do not stop a routing pass from
        reaching an older-than-new chat that a free agent can take."""
        async with hub.db.write() as session:
            billing = Skill(slug="billing", name="Billing")
            technical = Skill(slug="technical", name="Technical")
            session.add_all([billing, technical])
            await session.flush()
            billing_id, technical_id = billing.id, technical.id
        # Online for both skills but without a free slot: the chats queue, not go offline.
        await skilled_but_full(hub, technical_id, billing_id)
        for i in range(60):
            someone = await visitor(hub)

            async def open_technical(session: object, who: Actor = someone, i: int = i) -> Outcome:
                return await chat_service.send_message(
                    session,  # type: ignore[arg-type] # the hub hands an AsyncSession
                    actor=who,
                    conversation_id=None,
                    client_msg_id="t",
                    text="tech",
                    now=NOW + timedelta(seconds=i),
                    skill_id=technical_id,
                )

            await hub.unit(open_technical)
        waiting = await visitor(hub)

        async def open_billing(session: object) -> Outcome:
            return await chat_service.send_message(
                session,  # type: ignore[arg-type] # the hub hands an AsyncSession
                actor=waiting,
                conversation_id=None,
                client_msg_id="b",
                text="bill",
                now=NOW + timedelta(minutes=5),
                skill_id=billing_id,
            )

        await hub.unit(open_billing)  # nobody online yet: it waits behind the sixty
        agent_id = await online_agent(hub, capacity=2, name="Biller")
        async with hub.db.write() as session:
            session.add(AgentSkill(agent_id=agent_id, skill_id=billing_id, proficiency=3))

        async def route(session: object) -> Outcome:
            return await chat_service.assign_waiting(session, now=NOW + timedelta(minutes=6))  # type: ignore[arg-type] # the hub hands an AsyncSession

        await hub.unit(route)
        async with hub.db.read() as session:
            owner = await session.scalar(
                select(Conversation.agent_id).where(Conversation.visitor_id == waiting.id)
            )
        assert owner == agent_id

    async def test_chats_declined_by_every_free_agent_do_not_hide_the_rest(self, hub: Hub) -> None:
        """Fifty-odd chats that the only free agent of their skill has declined cannot stop a
        routing pass from reaching a later chat that another agent can take."""
        offers = OfferPolicy(auto_accept=False)
        async with hub.db.write() as session:
            billing = Skill(slug="billing", name="Billing")
            technical = Skill(slug="technical", name="Technical")
            session.add_all([billing, technical])
            await session.flush()
            billing_id, technical_id = billing.id, technical.id
        picky = await online_agent(hub, capacity=3, name="Picky")
        async with hub.db.write() as session:
            session.add(AgentSkill(agent_id=picky, skill_id=billing_id, proficiency=3))
        picky_actor = Actor(SenderType.AGENT, picky, "Picky")
        await skilled_but_full(hub, technical_id)
        for i in range(ROUTING_BATCH + 2):
            someone = await visitor(hub)

            async def open_and_decline(
                session: AsyncSession, who: Actor = someone, i: int = i
            ) -> None:
                await chat_service.send_message(
                    session,
                    actor=who,
                    conversation_id=None,
                    client_msg_id="b",
                    text="bill",
                    now=NOW + timedelta(seconds=i),
                    skill_id=billing_id,
                    offers=offers,
                )
                offer = await session.scalar(
                    select(Offer).where(Offer.agent_id == picky, Offer.state == OfferState.PENDING)
                )
                assert offer is not None
                await chat_service.decline_offer(
                    session,
                    actor=picky_actor,
                    offer_id=offer.id,
                    reason=None,
                    now=NOW + timedelta(seconds=i),
                    offers=offers,
                )

            await hub.unit(open_and_decline)
        late = await visitor(hub)

        async def open_technical(session: AsyncSession) -> Outcome:
            return await chat_service.send_message(
                session,
                actor=late,
                conversation_id=None,
                client_msg_id="t",
                text="tech",
                now=NOW + timedelta(minutes=5),
                skill_id=technical_id,
                offers=offers,
            )

        await hub.unit(open_technical)  # nobody for technical yet: it queues behind the rest
        techie = await online_agent(hub, capacity=2, name="Techie")
        async with hub.db.write() as session:
            session.add(AgentSkill(agent_id=techie, skill_id=technical_id, proficiency=3))

        async def route(session: AsyncSession) -> Outcome:
            return await chat_service.assign_waiting(
                session, now=NOW + timedelta(minutes=6), offers=offers
            )

        await hub.unit(route)
        async with hub.db.read() as session:
            offered_to = await session.scalar(
                select(Offer.agent_id)
                .join(Conversation, Conversation.id == Offer.conversation_id)
                .where(Conversation.visitor_id == late.id, Offer.state == OfferState.PENDING)
            )
        assert offered_to == techie


class TestNoStuckChats:
    async def test_chat_of_a_deactivated_agent_goes_to_someone_who_can_answer(
        self, hub: Hub
    ) -> None:
        """An agent deactivated behind routing's back (straight in the store) still holds a
        chat nobody could answer; housekeeping's sweep re-queues it to a colleague."""
        gone = await online_agent(hub, capacity=2, name="Gone")
        someone = await visitor(hub)
        outcome = await send(hub, someone, "hello", "m1")
        assert outcome.conversation_id is not None
        colleague = await online_agent(hub, capacity=2, name="Colleague")
        async with hub.db.write() as session:
            agent = await session.get(Agent, gone)
            assert agent is not None
            agent.is_active = False

        async def sweep(session: AsyncSession) -> Outcome:
            return await upkeep.requeue_from_inactive(session, now=NOW)

        await hub.unit(sweep)
        async with hub.db.read() as session:
            conversation = await session.get(Conversation, outcome.conversation_id)
            assert conversation is not None
            assert conversation.state is ConversationState.ASSIGNED
            assert conversation.agent_id == colleague
            kinds = (
                await session.scalars(
                    select(ConversationEvent.kind)
                    .where(ConversationEvent.conversation_id == conversation.id)
                    .order_by(ConversationEvent.seq)
                )
            ).all()
        assert "agent.left" in kinds
        assert kinds[-1] == "agent.joined"
