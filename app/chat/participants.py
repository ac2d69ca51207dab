"""Supervisors barged into a chat (docs/handoff.md#supervisor-oversight): who is present, their
joining and leaving, and the end of every participation when the chat closes or the
participant comes to hold it.

A participation is a `ConversationParticipant` row (`left_at` NULL while present; at most one
present row per supervisor and chat, backed by the partial unique index
`uq_conversation_participants_present`). It is stored, not kept per socket, so every node sees
it: each of the supervisor's sockets follows the chat, and a reconnect follows it again.
A participant does not hold the chat and it does not count against their capacity.

Runs inside the caller's unit of work; the caller holds the conversation's row (lock order:
the conversation first, as everywhere). Flushes, never commits. Must not import FastAPI,
Starlette or the bus.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat.errors import AlreadyParticipant, NotParticipant
from app.chat.events import StoredEvent
from app.chat.log import append_event
from app.chat.outcome import agent_ref
from app.store.models import (
    Agent,
    Conversation,
    ConversationParticipant,
    ConversationState,
    SenderType,
)


async def is_present(
    session: AsyncSession, conversation_id: uuid.UUID, agent_id: uuid.UUID
) -> bool:
    """Whether the agent is barged into the conversation now."""
    found = await session.scalar(
        select(ConversationParticipant.id)
        .where(
            ConversationParticipant.conversation_id == conversation_id,
            ConversationParticipant.agent_id == agent_id,
            ConversationParticipant.left_at.is_(None),
        )
        .limit(1)
    )
    return found is not None


async def has_taken_part(
    session: AsyncSession, conversation_id: uuid.UUID, agent_id: uuid.UUID
) -> bool:
    """Whether the agent ever barged into the conversation (present or since left)."""
    found = await session.scalar(
        select(ConversationParticipant.id)
        .where(
            ConversationParticipant.conversation_id == conversation_id,
            ConversationParticipant.agent_id == agent_id,
        )
        .limit(1)
    )
    return found is not None


async def barged_into(session: AsyncSession, agent_id: uuid.UUID) -> list[Conversation]:
    """The open conversations the agent is barged into now, oldest participation first."""
    rows = await session.scalars(
        select(Conversation)
        .join(
            ConversationParticipant,
            ConversationParticipant.conversation_id == Conversation.id,
        )
        .where(
            ConversationParticipant.agent_id == agent_id,
            ConversationParticipant.left_at.is_(None),
            Conversation.state != ConversationState.CLOSED,
        )
        .order_by(ConversationParticipant.joined_at, Conversation.id)
    )
    return list(rows)


async def present_among(
    session: AsyncSession, conversation_ids: set[uuid.UUID]
) -> dict[uuid.UUID, frozenset[uuid.UUID]]:
    """Who is barged into each of these conversations now (only those with someone)."""
    if not conversation_ids:
        return {}
    rows = await session.execute(
        select(ConversationParticipant.conversation_id, ConversationParticipant.agent_id).where(
            ConversationParticipant.conversation_id.in_(conversation_ids),
            ConversationParticipant.left_at.is_(None),
        )
    )
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for conversation_id, agent_id in rows:
        found.setdefault(conversation_id, set()).add(agent_id)
    return {cid: frozenset(agents) for cid, agents in found.items()}


async def join(
    session: AsyncSession, conversation: Conversation, agent: Agent, *, now: datetime
) -> StoredEvent:
    """`agent` barges into the locked, open conversation: a participation row and the
    `supervisor.joined` event (visibility all: the visitor is told someone joined).

    Raises:
        AlreadyParticipant: present already, or holding the chat.
    """
    if conversation.agent_id == agent.id and conversation.state is ConversationState.ASSIGNED:
        raise AlreadyParticipant(
            "You hold this chat already.", conversation_id=str(conversation.id)
        )
    if await is_present(session, conversation.id, agent.id):
        raise AlreadyParticipant(
            "You are in this chat already.", conversation_id=str(conversation.id)
        )
    session.add(
        ConversationParticipant(conversation_id=conversation.id, agent_id=agent.id, joined_at=now)
    )
    # The partial unique index fails this flush if a second tab barged in at the same moment;
    # the unit of work is retried and the retry answers `already_participant`.
    await session.flush()
    return append_event(
        session,
        conversation,
        kind=kinds.SUPERVISOR_JOINED,
        now=now,
        body={"agent": agent_ref(agent)},
        sender_type=SenderType.SYSTEM,
        sender_id=agent.id,
        sender_name=agent.name,
    )


async def leave(
    session: AsyncSession, conversation: Conversation, agent: Agent, *, now: datetime
) -> StoredEvent:
    """`agent` leaves the locked conversation they barged into: `supervisor.left`.

    Raises:
        NotParticipant: not present in it.
    """
    ended = await _end(session, conversation.id, agent_id=agent.id, now=now)
    if not ended:
        raise NotParticipant(
            "You are not in this chat (barge in first).", conversation_id=str(conversation.id)
        )
    return append_event(
        session,
        conversation,
        kind=kinds.SUPERVISOR_LEFT,
        now=now,
        body={"agent": agent_ref(agent), "reason": "left"},
        sender_type=SenderType.SYSTEM,
        sender_id=agent.id,
        sender_name=agent.name,
    )


async def end_all(session: AsyncSession, conversation: Conversation, *, now: datetime) -> None:
    """The chat closes: every participation ends with it, without events of their own
    (`conversation.closed` says it all)."""
    await _end(session, conversation.id, agent_id=None, now=now)


async def end_for(
    session: AsyncSession, conversation: Conversation, agent_id: uuid.UUID, *, now: datetime
) -> None:
    """The participant now holds the chat (a take-over, a reassignment, an accepted
    transfer): their participation ends silently; their `agent.joined` tells the story."""
    await _end(session, conversation.id, agent_id=agent_id, now=now)


async def _end(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    *,
    agent_id: uuid.UUID | None,
    now: datetime,
) -> bool:
    """Set `left_at` on present participations (of one agent, or all); whether any ended."""
    query = (
        update(ConversationParticipant)
        .where(
            ConversationParticipant.conversation_id == conversation_id,
            ConversationParticipant.left_at.is_(None),
        )
        .values(left_at=now)
        .execution_options(synchronize_session=False)
    )
    if agent_id is not None:
        query = query.where(ConversationParticipant.agent_id == agent_id)
    result = await session.execute(query)
    return bool(getattr(result, "rowcount", 0))
