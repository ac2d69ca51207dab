"""What an agent sees beside a chat: the conversation, its visitor, its latest context summary,
who else is in it, and the visitor's earlier conversations.

Read-only, a handful of queries whatever the history's length (the earlier list is capped and
its previews come from one query). Must not check who may read the conversation: the caller
does (`chat.service.may_read`; supervisors and admins read any). Reference:
docs/api.md#conversation-context.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat.queue import PREVIEW_CHARS
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationParticipant,
    SenderType,
    Skill,
    Visitor,
)

# Enough history for an agent to see a pattern ("third time about this invoice") without
# turning the side panel into a report.
EARLIER_LIMIT = 10


@dataclass(frozen=True, slots=True)
class Participant:
    agent_id: uuid.UUID
    name: str
    joined_at: datetime


@dataclass(frozen=True, slots=True)
class LatestSummary:
    text: str | None
    data: dict[str, Any] | None
    seq: int


@dataclass(frozen=True, slots=True)
class Earlier:
    conversation: Conversation
    agent_name: str | None
    preview: str | None


@dataclass(frozen=True, slots=True)
class ConversationContext:
    conversation: Conversation
    visitor: Visitor | None
    skill: Skill | None
    agent_name: str | None
    participants: list[Participant]
    summary: LatestSummary | None
    earlier: list[Earlier]


async def load(session: AsyncSession, conversation: Conversation) -> ConversationContext:
    """Everything the context panel shows about `conversation` (already read by the caller)."""
    visitor = await session.get(Visitor, conversation.visitor_id)
    skill = (
        None if conversation.skill_id is None else await session.get(Skill, conversation.skill_id)
    )
    agent_name = None
    if conversation.agent_id is not None:
        agent_name = await session.scalar(
            select(Agent.name).where(Agent.id == conversation.agent_id)
        )
    return ConversationContext(
        conversation=conversation,
        visitor=visitor,
        skill=skill,
        agent_name=agent_name,
        participants=await _participants(session, conversation.id),
        summary=await _latest_summary(session, conversation.id),
        earlier=await _earlier(session, conversation, visitor),
    )


async def _participants(session: AsyncSession, conversation_id: uuid.UUID) -> list[Participant]:
    """Supervisors present in the chat now (barged in and not left), first to join first."""
    rows = await session.execute(
        select(ConversationParticipant.agent_id, Agent.name, ConversationParticipant.joined_at)
        .join(Agent, Agent.id == ConversationParticipant.agent_id)
        .where(
            ConversationParticipant.conversation_id == conversation_id,
            ConversationParticipant.left_at.is_(None),
        )
        .order_by(ConversationParticipant.joined_at, ConversationParticipant.id)
    )
    return [Participant(agent_id, name, joined_at) for agent_id, name, joined_at in rows.all()]


async def _latest_summary(
    session: AsyncSession, conversation_id: uuid.UUID
) -> LatestSummary | None:
    """The newest `handoff.summary` event (written at each transfer and escalation)."""
    found = (
        await session.execute(
            select(ConversationEvent.seq, ConversationEvent.body)
            .where(
                ConversationEvent.conversation_id == conversation_id,
                ConversationEvent.kind == kinds.SUMMARY,
            )
            .order_by(ConversationEvent.seq.desc())
            .limit(1)
        )
    ).first()
    if found is None:
        return None
    seq, body = found
    text = body.get("text")
    data = body.get("summary")
    return LatestSummary(
        text=text if isinstance(text, str) else None,
        data=data if isinstance(data, dict) else None,
        seq=seq,
    )


async def _earlier(
    session: AsyncSession, conversation: Conversation, visitor: Visitor | None
) -> list[Earlier]:
    """The visitor's other conversations, newest first, at most `EARLIER_LIMIT`. A verified
    visitor's include those of the same user on other devices (same `external_id`), as routing
    counts them for the returning-visitor preference."""
    same_person = Conversation.visitor_id == conversation.visitor_id
    if visitor is not None and visitor.external_id is not None:
        same_person = Conversation.visitor_id.in_(
            select(Visitor.id).where(Visitor.external_id == visitor.external_id)
        )
    rows = (
        await session.execute(
            select(Conversation, Agent.name)
            .outerjoin(Agent, Agent.id == Conversation.agent_id)
            .where(same_person, Conversation.id != conversation.id)
            .order_by(Conversation.created_at.desc(), Conversation.id.desc())
            .limit(EARLIER_LIMIT)
        )
    ).all()
    previews = await _first_visitor_words(session, [row[0].id for row in rows])
    return [
        Earlier(conversation=earlier, agent_name=agent_name, preview=previews.get(earlier.id))
        for earlier, agent_name in rows
    ]


async def _first_visitor_words(
    session: AsyncSession, conversation_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Each conversation's first visitor message (what they came about), cut to
    `PREVIEW_CHARS`; a message of files alone is previewed by their names."""
    if not conversation_ids:
        return {}
    first = (
        select(
            ConversationEvent.conversation_id.label("conversation_id"),
            func.min(ConversationEvent.seq).label("seq"),
        )
        .where(
            ConversationEvent.conversation_id.in_(conversation_ids),
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.VISITOR,
        )
        .group_by(ConversationEvent.conversation_id)
        .subquery()
    )
    rows = await session.execute(
        select(ConversationEvent.conversation_id, ConversationEvent.body).join(
            first,
            and_(
                ConversationEvent.conversation_id == first.c.conversation_id,
                ConversationEvent.seq == first.c.seq,
            ),
        )
    )
    previews: dict[uuid.UUID, str] = {}
    for conversation_id, body in rows.all():
        text = body.get("text")
        words = text if isinstance(text, str) else ""
        names = [str(f.get("name")) for f in body.get("attachments") or [] if isinstance(f, dict)]
        if names:
            words = " ".join([words, *(f"[file: {name}]" for name in names)]).strip()
        if words:
            previews[conversation_id] = words[:PREVIEW_CHARS]
    return previews
