"""Routing queries: candidate agents with their load, queued conversations, atomic claims.

An agent's load is their assigned chats plus their pending offers: an offered slot is taken
until the offer is accepted, declined or expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.routing.intake import SkillRule
from app.store.models import (
    Agent,
    AgentConnection,
    AgentSkill,
    AgentStatus,
    Conversation,
    ConversationState,
    Offer,
    OfferState,
    Skill,
)


def _load_of(agent_id: InstrumentedAttribute[uuid.UUID] | uuid.UUID) -> ColumnElement[int]:
    """Assigned chats plus pending offers of an agent (correlated when given `Agent.id`)."""
    # An alias, so that inside a query over conversations this never correlates to the outer
    # conversation row.
    held = aliased(Conversation)
    chats = (
        select(func.count())
        .select_from(held)
        .where(held.agent_id == agent_id, held.state == ConversationState.ASSIGNED)
        .scalar_subquery()
    )
    offers = (
        select(func.count())
        .where(Offer.agent_id == agent_id, Offer.state == OfferState.PENDING)
        .scalar_subquery()
    )
    return chats + offers


def _connected() -> ColumnElement[bool]:
    return exists().where(AgentConnection.agent_id == Agent.id)


def _passed_over(conversation_id: uuid.UUID) -> ColumnElement[bool]:
    """The agent declined this chat or let an offer of it expire: never offered it again."""
    return exists().where(
        Offer.conversation_id == conversation_id,
        Offer.agent_id == Agent.id,
        Offer.state.in_([OfferState.DECLINED, OfferState.EXPIRED]),
    )


async def candidate_rows(
    session: AsyncSession, *, skill_id: int | None, conversation_id: uuid.UUID | None = None
) -> list[tuple[Agent, int, bool]]:
    """Online, active, connected agents (with the skill, when one is required, and not passed
    over for this conversation): agent, load, connected."""
    query = select(Agent, _load_of(Agent.id), _connected()).where(
        Agent.is_active.is_(True), Agent.status == AgentStatus.ONLINE, _connected()
    )
    if skill_id is not None:
        query = query.where(
            exists().where(AgentSkill.agent_id == Agent.id, AgentSkill.skill_id == skill_id)
        )
    if conversation_id is not None:
        query = query.where(~_passed_over(conversation_id))
    rows = (await session.execute(query)).all()
    return [(agent, int(n), bool(c)) for agent, n, c in rows]


async def proficiencies(
    session: AsyncSession, agent_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[int, int]]:
    result: dict[uuid.UUID, dict[int, int]] = {a: {} for a in agent_ids}
    if not agent_ids:
        return result
    rows = await session.execute(
        select(AgentSkill.agent_id, AgentSkill.skill_id, AgentSkill.proficiency).where(
            AgentSkill.agent_id.in_(agent_ids)
        )
    )
    for agent_id, skill_id, level in rows:
        result[agent_id][skill_id] = level
    return result


async def lock_agent_load(session: AsyncSession, agent_id: uuid.UUID) -> tuple[Agent, int] | None:
    """Lock the agent's row and count their load under the lock.

    Waits for a router that holds the row: skipping it instead would leave chats queued while
    the agent has room (measured: 3 of 5 free slots filled when 12 chats arrived at once). On
    PostgreSQL the count runs after the lock is taken (READ COMMITTED takes a fresh snapshot
    per statement), so it sees every assignment and offer committed before. Two routers that
    each hold one full agent and wait for the other's can deadlock; PostgreSQL aborts one and
    the unit of work retries it. On SQLite the whole write transaction is exclusive (BEGIN
    IMMEDIATE). Returns None if the agent no longer exists.
    """
    agent = await session.scalar(
        select(Agent)
        .where(Agent.id == agent_id)
        .with_for_update()
        # Re-read the row under the lock: the candidate query's copy may predate a status change.
        .execution_options(populate_existing=True)
    )
    if agent is None:
        return None
    load = await session.scalar(select(_load_of(agent_id)))
    return agent, int(load or 0)


def _free_agent() -> ColumnElement[bool]:
    """An online, connected, active agent with room for one more chat (correlated to Agent)."""
    return and_(
        Agent.is_active.is_(True),
        Agent.status == AgentStatus.ONLINE,
        _connected(),
        _load_of(Agent.id) < Agent.capacity,
    )


async def lock_queued(session: AsyncSession, *, limit: int) -> list[Conversation]:
    """Queued conversations without a pending offer that a free agent could take, in queue
    order, locked; rows another router holds are skipped.

    Chats whose skill no free agent has are left out here, so that fifty of them cannot hide
    the chats behind them from every routing pass."""
    # Nested two levels deep, these must name what they correlate to: by default a subquery
    # only correlates to the query right around it (agents), not to conversations.
    passed_over = (
        exists()
        .where(
            Offer.conversation_id == Conversation.id,
            Offer.agent_id == Agent.id,
            Offer.state.in_([OfferState.DECLINED, OfferState.EXPIRED]),
        )
        .correlate(Conversation, Agent)
    )
    has_skill = (
        exists()
        .where(AgentSkill.agent_id == Agent.id, AgentSkill.skill_id == Conversation.skill_id)
        .correlate(Conversation, Agent)
    )
    # Some free agent who may take this very chat: has its skill (or it needs none) and has
    # not declined it or let an offer of it expire.
    someone_for_it = (
        select(Agent.id)
        .where(
            _free_agent(),
            ~passed_over,
            or_(Conversation.skill_id.is_(None), has_skill),
        )
        .correlate(Conversation)
        .exists()
    )
    offered = exists().where(
        Offer.conversation_id == Conversation.id, Offer.state == OfferState.PENDING
    )
    return list(
        (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.state == ConversationState.QUEUED,
                    ~offered,
                    someone_for_it,
                )
                .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def pending_offer_of(session: AsyncSession, conversation_id: uuid.UUID) -> Offer | None:
    return await session.scalar(
        select(Offer).where(
            Offer.conversation_id == conversation_id, Offer.state == OfferState.PENDING
        )
    )


async def lock_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer | None:
    return await session.scalar(
        select(Offer)
        .where(Offer.id == offer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def due_offers(session: AsyncSession, *, now: datetime, limit: int) -> list[Offer]:
    """Pending offers past their expiry, locked; rows another node is expiring are skipped."""
    return list(
        (
            await session.scalars(
                select(Offer)
                .where(Offer.state == OfferState.PENDING, Offer.expires_at <= now)
                .order_by(Offer.expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def pending_offers_for_agent(session: AsyncSession, agent_id: uuid.UUID) -> list[Offer]:
    return list(
        (
            await session.scalars(
                select(Offer)
                .where(Offer.agent_id == agent_id, Offer.state == OfferState.PENDING)
                .order_by(Offer.created_at)
            )
        ).all()
    )


async def skill_rules(session: AsyncSession) -> list[SkillRule]:
    """Every skill's recognition rules (a handful of rows: skills are a team's topics)."""
    rows = (await session.scalars(select(Skill).order_by(Skill.slug))).all()
    return [
        SkillRule(
            skill_id=skill.id,
            slug=skill.slug,
            keywords=tuple(skill.keywords or ()),
            page_patterns=tuple(skill.page_patterns or ()),
        )
        for skill in rows
    ]


async def queued_heads(session: AsyncSession) -> list[Conversation]:
    """Every queued conversation (for positions; the queue is short next to the log)."""
    return list(
        (
            await session.scalars(
                select(Conversation).where(Conversation.state == ConversationState.QUEUED)
            )
        ).all()
    )


async def recently_closed(
    session: AsyncSession, *, since: datetime
) -> list[tuple[int | None, datetime, datetime]]:
    """(skill, assigned_at, closed_at) of chats closed since `since` that an agent handled."""
    rows = await session.execute(
        select(Conversation.skill_id, Conversation.assigned_at, Conversation.closed_at).where(
            Conversation.state == ConversationState.CLOSED,
            Conversation.closed_at >= since,
            Conversation.assigned_at.is_not(None),
        )
    )
    return [(skill, assigned, closed) for skill, assigned, closed in rows if assigned and closed]


async def agent_snapshot(session: AsyncSession) -> list[tuple[Agent, int, bool]]:
    """Every active agent with their load and whether a socket of theirs is open: the planner
    sees them all, so that it can say why each one was passed over."""
    rows = (
        await session.execute(
            select(Agent, _load_of(Agent.id), _connected()).where(Agent.is_active.is_(True))
        )
    ).all()
    return [(agent, int(n), bool(c)) for agent, n, c in rows]


async def offer_history(
    session: AsyncSession, conversation_id: uuid.UUID
) -> tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]:
    """(agents passed over for this chat: declined or expired; agents holding an offer now)."""
    rows = (
        await session.execute(
            select(Offer.agent_id, Offer.state).where(Offer.conversation_id == conversation_id)
        )
    ).all()
    excluded = frozenset(a for a, s in rows if s in (OfferState.DECLINED, OfferState.EXPIRED))
    pending = frozenset(a for a, s in rows if s is OfferState.PENDING)
    return excluded, pending


async def last_agent_of_visitor(
    session: AsyncSession, visitor_id: uuid.UUID, *, before: uuid.UUID
) -> uuid.UUID | None:
    """The agent who last handled one of this visitor's earlier, closed conversations."""
    return await session.scalar(
        select(Conversation.agent_id)
        .where(
            Conversation.visitor_id == visitor_id,
            Conversation.id != before,
            Conversation.state == ConversationState.CLOSED,
            Conversation.agent_id.is_not(None),
        )
        .order_by(Conversation.closed_at.desc())
        .limit(1)
    )
