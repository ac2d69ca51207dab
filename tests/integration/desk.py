"""A scripted help desk for report tests: skills, agents online, visitors, and the chat service
driven at chosen times (the clock is the `now` each call takes), with routing offers that
agents accept when the script says so. Every step is one unit of work through the real
services, as a frame or request would run it."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import hash_password
from app.chat import events as kinds
from app.chat import service as chat_service
from app.chat.log import append_event
from app.chat.service import Actor
from app.handoff import service as handoff_service
from app.handoff.transfers import Target
from app.reports import service as reports_service
from app.routing import presence
from app.routing.service import OfferPolicy
from app.store.db import Database
from app.store.models import (
    Agent,
    AgentSkill,
    AgentStatus,
    Conversation,
    Offer,
    OfferState,
    SenderType,
    Skill,
    Visitor,
)

T = TypeVar("T")
# Offers wait for the script's `accept`: long enough never to expire on their own.
OFFERS = OfferPolicy(auto_accept=False, timeout=timedelta(hours=12))
TRANSFER_TTL = timedelta(hours=1)


class Desk:
    def __init__(self, db: Database, start: datetime) -> None:
        self.db = db
        self.start = start

    async def unit(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        async with self.db.write() as session:
            return await work(session)

    async def skill(
        self,
        slug: str,
        *,
        target_seconds: int = 60,
        percent: int = 80,
        hours: dict[str, Any] | None = None,
    ) -> int:
        async def work(session: AsyncSession) -> int:
            row = Skill(
                slug=slug,
                name=slug.title(),
                sla_first_response_seconds=target_seconds,
                sla_target_percent=percent,
                business_hours=hours,
            )
            session.add(row)
            await session.flush()
            return row.id

        return await self.unit(work)

    async def agent(self, name: str, *skill_ids: int, capacity: int = 4) -> Actor:
        """An agent online since before the day starts, with these skills."""

        async def work(session: AsyncSession) -> Actor:
            agent = Agent(
                name=name,
                email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
                password_hash=hash_password("irrelevant-here"),
                capacity=capacity,
                status=AgentStatus.OFFLINE,
            )
            session.add(agent)
            await session.flush()
            session.add_all(
                AgentSkill(agent_id=agent.id, skill_id=s, proficiency=3) for s in skill_ids
            )
            await presence.connect(
                session, agent=agent, node="test-node", now=self.start - timedelta(hours=1)
            )
            return Actor(SenderType.AGENT, agent.id, name)

        return await self.unit(work)

    async def visitor(self, name: str) -> Actor:
        async def work(session: AsyncSession) -> Actor:
            row = Visitor(token_hash=uuid.uuid4().hex, name=name, attributes={})
            session.add(row)
            await session.flush()
            return Actor(SenderType.VISITOR, row.id, name)

        return await self.unit(work)

    def at(self, seconds: float) -> datetime:
        return self.start + timedelta(seconds=seconds)

    async def open(self, who: Actor, at: float, skill_id: int | None) -> uuid.UUID:
        """The visitor's first message at `at` seconds into the day opens a conversation."""

        async def work(session: AsyncSession) -> uuid.UUID:
            outcome = await chat_service.send_message(
                session,
                actor=who,
                conversation_id=None,
                client_msg_id=uuid.uuid4().hex,
                text="Hello, I need help",
                now=self.at(at),
                skill_id=skill_id,
                offers=OFFERS,
            )
            assert outcome.conversation_id is not None
            return outcome.conversation_id

        return await self.unit(work)

    async def say(self, who: Actor, conversation_id: uuid.UUID, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await chat_service.send_message(
                session,
                actor=who,
                conversation_id=conversation_id,
                client_msg_id=uuid.uuid4().hex,
                text="A message",
                now=self.at(at),
                offers=OFFERS,
            )

        await self.unit(work)

    async def accept(self, who: Actor, conversation_id: uuid.UUID, at: float) -> None:
        """`who` accepts the routing offer of the conversation they hold."""

        async def work(session: AsyncSession) -> None:
            offer_id = await session.scalar(
                select(Offer.id).where(
                    Offer.conversation_id == conversation_id,
                    Offer.agent_id == who.id,
                    Offer.state == OfferState.PENDING,
                )
            )
            assert offer_id is not None, "no pending offer for that agent"
            await chat_service.accept_offer(session, actor=who, offer_id=offer_id, now=self.at(at))

        await self.unit(work)

    async def take_offline(self, who: Actor, conversation_id: uuid.UUID, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await chat_service.take_offline(
                session, actor=who, conversation_id=conversation_id, now=self.at(at)
            )

        await self.unit(work)

    async def transfer(
        self, source: Actor, to: Actor, conversation_id: uuid.UUID, at: float, accepted: float
    ) -> None:
        """A warm transfer from `source` to `to`, requested at `at`, accepted at `accepted`."""

        async def request(session: AsyncSession) -> uuid.UUID:
            _, started = await handoff_service.request_transfer(
                session,
                actor=source,
                conversation_id=conversation_id,
                target=Target(agent_id=to.id),
                cold=False,
                note="Over to you",
                now=self.at(at),
                ttl=TRANSFER_TTL,
                offers=OFFERS,
            )
            assert started.transfer_id is not None
            return started.transfer_id

        transfer_id = await self.unit(request)

        async def accept(session: AsyncSession) -> None:
            await handoff_service.accept(
                session, actor=to, transfer_id=transfer_id, now=self.at(accepted), ttl=TRANSFER_TTL
            )

        await self.unit(accept)

    async def close(
        self, who: Actor, conversation_id: uuid.UUID, at: float, tags: list[str] | None = None
    ) -> None:
        async def work(session: AsyncSession) -> None:
            await chat_service.close(
                session,
                actor=who,
                conversation_id=conversation_id,
                now=self.at(at),
                offers=OFFERS,
                tags=tags,
            )

        await self.unit(work)

    async def rate(self, who: Actor, conversation_id: uuid.UUID, score: int, at: float) -> None:
        """The visitor's rating, as `POST /api/v1/visitor/conversations/{id}/rating` stores it."""

        async def work(session: AsyncSession) -> None:
            conversation = await session.get(Conversation, conversation_id, with_for_update=True)
            assert conversation is not None
            conversation.rating = score
            conversation.rated_at = self.at(at)
            append_event(
                session,
                conversation,
                kind=kinds.RATED,
                now=self.at(at),
                body={"score": score, "comment": None},
                sender_type=SenderType.VISITOR,
                sender_id=who.id,
                sender_name=who.name,
            )
            await reports_service.record(session, conversation)

        await self.unit(work)
