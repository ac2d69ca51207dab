"""Conversation queries: locked loads for units of work, log reads for replay."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationParticipant,
    ConversationState,
    SenderType,
    Visibility,
    Visitor,
)


async def get_for_update(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation | None:
    """The conversation, its row locked until the unit of work ends (it serialises `seq`)."""
    return await session.scalar(
        select(Conversation)
        .where(Conversation.id == conversation_id)
        .with_for_update()
        # A copy loaded earlier in this unit of work may predate another node's change.
        .execution_options(populate_existing=True)
    )


async def get(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation | None:
    return await session.get(Conversation, conversation_id)


async def open_of_visitor(
    session: AsyncSession, visitor_id: uuid.UUID, *, lock: bool
) -> Conversation | None:
    query = select(Conversation).where(
        Conversation.visitor_id == visitor_id, Conversation.state != ConversationState.CLOSED
    )
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def assigned_to(
    session: AsyncSession, agent_id: uuid.UUID, *, lock: bool
) -> list[Conversation]:
    query = (
        select(Conversation)
        .where(Conversation.agent_id == agent_id, Conversation.state == ConversationState.ASSIGNED)
        .order_by(Conversation.assigned_at, Conversation.id)
    )
    if lock:
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def find_by_client_msg_id(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    sender_type: SenderType,
    sender_id: uuid.UUID,
    client_msg_id: str,
) -> ConversationEvent | None:
    return await session.scalar(
        select(ConversationEvent).where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.sender_type == sender_type,
            ConversationEvent.sender_id == sender_id,
            ConversationEvent.client_msg_id == client_msg_id,
        )
    )


async def agent_has_joined(
    session: AsyncSession, conversation_id: uuid.UUID, agent_id: uuid.UUID
) -> bool:
    """Whether the agent ever held the conversation (their `agent.joined` is in its log)."""
    found = await session.scalar(
        select(ConversationEvent.id)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.kind == kinds.AGENT_JOINED,
            ConversationEvent.sender_id == agent_id,
        )
        .limit(1)
    )
    return found is not None


async def events_between(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    *,
    after_seq: int,
    up_to_seq: int | None = None,
    include_internal: bool,
    limit: int,
) -> Sequence[ConversationEvent]:
    query = select(ConversationEvent).where(
        ConversationEvent.conversation_id == conversation_id, ConversationEvent.seq > after_seq
    )
    if up_to_seq is not None:
        query = query.where(ConversationEvent.seq <= up_to_seq)
    if not include_internal:
        query = query.where(ConversationEvent.visibility == Visibility.ALL)
    return (await session.scalars(query.order_by(ConversationEvent.seq).limit(limit))).all()


async def names(
    session: AsyncSession, *, visitor_id: uuid.UUID, agent_id: uuid.UUID | None
) -> tuple[Visitor | None, Agent | None]:
    visitor = await session.get(Visitor, visitor_id)
    agent = None if agent_id is None else await session.get(Agent, agent_id)
    return visitor, agent


async def heads(
    session: AsyncSession,
    *,
    conversation_ids: set[uuid.UUID],
    agent_ids: set[uuid.UUID],
    visitor_ids: set[uuid.UUID],
) -> Sequence[Conversation]:
    clauses: list[ColumnElement[bool]] = []
    if conversation_ids:
        clauses.append(Conversation.id.in_(conversation_ids))
    if agent_ids:
        clauses.append(
            Conversation.agent_id.in_(agent_ids)
            & (Conversation.state == ConversationState.ASSIGNED)
        )
        # Chats these agents barged into (supervisors): they follow those too.
        clauses.append(
            Conversation.id.in_(
                select(ConversationParticipant.conversation_id).where(
                    ConversationParticipant.agent_id.in_(agent_ids),
                    ConversationParticipant.left_at.is_(None),
                )
            )
            & (Conversation.state != ConversationState.CLOSED)
        )
    if visitor_ids:
        clauses.append(
            Conversation.visitor_id.in_(visitor_ids)
            & (Conversation.state != ConversationState.CLOSED)
        )
    if not clauses:
        return []
    return (await session.scalars(select(Conversation).where(or_(*clauses)))).all()


async def last_visitor_text(session: AsyncSession, conversation_id: uuid.UUID) -> str | None:
    body = await session.scalar(
        select(ConversationEvent.body)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.VISITOR,
        )
        .order_by(ConversationEvent.seq.desc())
        .limit(1)
    )
    if body is None:
        return None
    text = body.get("text")
    text = text if isinstance(text, str) else ""
    # A message of files alone is previewed by their names (an offer should not look empty).
    names = [str(f.get("name")) for f in body.get("attachments") or [] if isinstance(f, dict)]
    if names:
        text = " ".join([text, *(f"[file: {name}]" for name in names)]).strip()
    return text or None


async def offline(
    session: AsyncSession, *, skills: set[int] | None, limit: int
) -> list[Conversation]:
    """Offline conversations (messages left for later), oldest first; with `skills`, only
    those needing one of them or none."""
    query = select(Conversation).where(Conversation.state == ConversationState.OFFLINE)
    if skills is not None:
        query = query.where(
            or_(Conversation.skill_id.is_(None), Conversation.skill_id.in_(sorted(skills)))
        )
    return list(
        (
            await session.scalars(
                query.order_by(Conversation.queued_at, Conversation.id).limit(limit)
            )
        ).all()
    )


async def latest_summary(session: AsyncSession, conversation_id: uuid.UUID) -> dict[str, Any]:
    """The conversation's latest context summary as `{text, data}`, or an empty dict."""
    body = await session.scalar(
        select(ConversationEvent.body)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.kind == kinds.SUMMARY,
        )
        .order_by(ConversationEvent.seq.desc())
        .limit(1)
    )
    if not body:
        return {}
    return {"text": body.get("text"), "data": body.get("summary")}
