"""Handoff queries for supervisors: the open escalated chats (docs/api.md#escalations). The
transfer report's queries are `handoff.report` and `handoff.pingpong`.

Read-only: nothing here locks a row or writes one, so the answer is a snapshot that may be a
moment old. Must not decide anything: starting, accepting and escalating are `handoff.service`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Skill,
    Transfer,
    TransferState,
    Visitor,
)


@dataclass(frozen=True, slots=True)
class EscalatedChat:
    """One row of the supervisors' list, with the names its JSON shows."""

    conversation: Conversation
    visitor_name: str | None
    holder_name: str | None  # None when nobody holds it (queued, offline) or the agent is gone
    skill_name: str | None
    pending: Transfer | None


async def escalation_position(
    session: AsyncSession, conversation_id: uuid.UUID
) -> tuple[datetime, uuid.UUID] | None:
    """Where a conversation sits in the escalated list: its `(escalated_at, id)` key, or None
    when it does not exist or was never escalated. A chat that closed since keeps its mark, so
    it remains a valid place to continue a list from."""
    escalated_at = await session.scalar(
        select(Conversation.escalated_at).where(Conversation.id == conversation_id)
    )
    return None if escalated_at is None else (escalated_at, conversation_id)


async def open_escalated(
    session: AsyncSession,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None = None,
) -> list[EscalatedChat]:
    """Open (not closed) escalated conversations, oldest escalation first (then by id), with
    the names to show and their pending transfer, if any.

    Args:
        limit: at most this many.
        after: continue after this `(escalated_at, id)` key (see `escalation_position`): a
            keyset, so a chat that closes or escalates between two pages neither shifts nor
            repeats the rows of the next one.
    """
    holder = and_(
        Agent.id == Conversation.agent_id, Conversation.state == ConversationState.ASSIGNED
    )
    query = (
        select(Conversation, Visitor.name, Agent.name, Skill.name)
        .outerjoin(Visitor, Visitor.id == Conversation.visitor_id)
        .outerjoin(Agent, holder)
        .outerjoin(Skill, Skill.id == Conversation.skill_id)
        .where(
            Conversation.state != ConversationState.CLOSED,
            Conversation.escalated_at.is_not(None),
        )
        .order_by(Conversation.escalated_at, Conversation.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(_after(after))
    rows = (await session.execute(query)).all()
    pending = await _pending_of([row[0].id for row in rows], session)
    return [
        EscalatedChat(
            conversation=conversation,
            visitor_name=visitor_name,
            holder_name=holder_name,
            skill_name=skill_name,
            pending=pending.get(conversation.id),
        )
        for conversation, visitor_name, holder_name, skill_name in rows
    ]


def _after(key: tuple[datetime, uuid.UUID]) -> ColumnElement[bool]:
    escalated_at, conversation_id = key  # (escalated_at, id) > key, in the list's order
    return or_(
        Conversation.escalated_at > escalated_at,
        and_(Conversation.escalated_at == escalated_at, Conversation.id > conversation_id),
    )


async def _pending_of(
    conversation_ids: Sequence[uuid.UUID], session: AsyncSession
) -> dict[uuid.UUID, Transfer]:
    """The pending transfer of each conversation. The service keeps at most one per chat; were
    there ever two, the older is the one being answered, so it is the one shown."""
    if not conversation_ids:
        return {}
    rows = await session.scalars(
        select(Transfer)
        .where(
            Transfer.conversation_id.in_(conversation_ids),
            Transfer.state == TransferState.PENDING,
        )
        .order_by(Transfer.created_at.desc(), Transfer.id.desc())
    )
    # Newest first, so the oldest per conversation is written last and wins.
    return {transfer.conversation_id: transfer for transfer in rows}
