"""Keeping each closed conversation's figures (`conversation_metrics`) up to date.

Owns the writes of `conversation_metrics`: `record()` measures a closed conversation from its
log (the pure `reports.measures`) and stores the row, called in the transaction that closes it
(`chat.service.close`) and again when later events change its figures (a rating, labels);
`note_contact()` stores, on the visitor's previous conversation, that they came back (which
decides first-contact resolution). Flushes, never commits. Must not import FastAPI, Starlette
or the bus. Definitions: docs/metrics.md#per-conversation.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.reports.measures import Event, arrival_skill, measure
from app.routing.sla import DEFAULT_TARGET_SECONDS
from app.store.models import (
    Conversation,
    ConversationEvent,
    ConversationMetrics,
    ConversationState,
    Skill,
)


async def record(session: AsyncSession, conversation: Conversation) -> ConversationMetrics:
    """Measure a closed conversation from its stored log and store its figures, replacing any
    earlier ones (keeping the visitor's next contact, and the SLA target judged at the close).

    The caller holds the conversation's row (the close, a rating) and has appended its events;
    they are flushed here before the log is read.
    """
    await session.flush()
    rows = await session.scalars(
        select(ConversationEvent)
        .where(ConversationEvent.conversation_id == conversation.id)
        .order_by(ConversationEvent.seq)
    )
    events = [
        Event(
            seq=row.seq,
            kind=row.kind,
            sender_type=row.sender_type.value,
            sender_id=row.sender_id,
            visibility=row.visibility.value,
            at=row.created_at,
            body=row.body,
        )
        for row in rows
    ]
    stored = await session.get(ConversationMetrics, conversation.id)
    if stored is not None:
        target = stored.sla_target_seconds
    else:
        skill_id = arrival_skill(events)
        seconds = None
        if skill_id is not None:
            seconds = await session.scalar(
                select(Skill.sla_first_response_seconds).where(Skill.id == skill_id)
            )
        target = DEFAULT_TARGET_SECONDS if seconds is None else seconds
    figures = measure(events, sla_target_seconds=target)
    row = stored or ConversationMetrics(conversation_id=conversation.id, next_contact_at=None)
    row.opened_at = figures.opened_at
    row.closed_at = figures.closed_at
    row.skill_id = figures.skill_id
    row.first_agent_id = figures.first_agent_id
    row.last_agent_id = figures.last_agent_id
    row.closed_by = figures.closed_by
    row.offline = figures.offline
    row.handled = figures.handled
    row.answered = figures.answered
    row.abandoned = figures.abandoned
    row.queue_wait_ms = figures.queue_wait_ms
    row.first_response_ms = figures.first_response_ms
    row.handle_ms = figures.handle_ms
    row.transfers = figures.transfers
    row.escalations = figures.escalations
    row.fcr_candidate = figures.fcr_candidate
    row.sla_met = figures.sla_met
    row.sla_target_seconds = target
    row.csat = figures.csat
    row.effort_asked = figures.effort_asked
    row.effort = figures.effort
    row.tags = list(figures.tags)
    row.disposition = figures.disposition
    if stored is None:
        session.add(row)
    await session.flush()
    return row


async def note_contact(session: AsyncSession, *, visitor_id: uuid.UUID, at: datetime) -> None:
    """The visitor opened a new conversation at `at`: note it on their previous (closed)
    conversation's figures, unless noted already.

    Only the latest closed conversation needs it: each earlier one was noted when the one after
    it opened (a visitor has at most one conversation that is not closed).
    """
    previous = await session.scalar(
        select(Conversation.id)
        .where(
            Conversation.visitor_id == visitor_id,
            Conversation.state == ConversationState.CLOSED,
            Conversation.closed_at <= at,
        )
        .order_by(Conversation.closed_at.desc(), Conversation.id.desc())
        .limit(1)
    )
    if previous is None:
        return
    await session.execute(
        update(ConversationMetrics)
        .where(
            ConversationMetrics.conversation_id == previous,
            ConversationMetrics.next_contact_at.is_(None),
        )
        .values(next_contact_at=at)
        .execution_options(synchronize_session=False)
    )
