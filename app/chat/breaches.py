"""The live SLA breach detector: conversations whose first agent reply missed their target.

Run by every node (`realtime.sla_watch`, task `routing.watch_sla`) in one short unit of work a
round. Finds the conversations not yet marked whose customer's first reply came, or is still
coming, later than the target of the skill they arrived needing (`routing.sla.breached()`, the
rule `reports.measures` applies at the close), and for each, in one transaction: marks
`conversations.sla_breached_at` by a conditional UPDATE (so that of several nodes only one
records it) and appends the staff-only `sla.breached` event, whose webhook delivery
(`conversation.sla_breached`) the outbox queues in the same transaction. Writes events, flushes,
never commits; returns the `Outcome` to publish after the commit. Definitions:
docs/metrics.md#sla-breaches.

The first-reply clock starts at the customer's first message, which is what opens a
conversation (`chat.service.send_message`: the conversation's `created_at` and that message's
time are one `now`), so the scan reads `created_at` from an index rather than the log.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, select, text, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat.log import append_event
from app.chat.outcome import Outcome
from app.routing import sla
from app.store.models import (
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Skill,
    Visibility,
)

# How many breaches one round records; the next round (a second later) takes the rest.
BATCH = 100
# A conversation that closed unanswered past its target, or was answered late, between two
# rounds is still recorded if it closed within this long: ten minutes covers every node being
# down for a restart. Past it, the closing figures (`conversation_metrics.sla_met`) are the
# only record.
CLOSED_LOOKBACK = timedelta(minutes=10)
# The partial index ix_conversations_sla_watch is used only when the query states its
# predicate with literals (a bound parameter cannot prove it on PostgreSQL).
_OPEN_STATES = text("conversations.state IN ('queued', 'assigned')")
_IDS_PER_QUERY = 500


@dataclass(frozen=True, slots=True)
class _Candidate:
    id: uuid.UUID
    asked: datetime
    replied_at: datetime | None
    closed_at: datetime | None


def _first_reply() -> ColumnElement[datetime]:
    # Any message by an agent is a reply to the customer: notes and whispers are other kinds.
    return (
        select(func.min(ConversationEvent.created_at))
        .where(
            ConversationEvent.conversation_id == Conversation.id,
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.AGENT,
        )
        .correlate(Conversation)
        .scalar_subquery()
    )


def _replied_before(moment: datetime) -> ColumnElement[bool]:
    return exists().where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == kinds.MESSAGE,
        ConversationEvent.sender_type == SenderType.AGENT,
        ConversationEvent.created_at < moment,
    )


def _arrived_offline() -> ColumnElement[bool]:
    # A conversation goes offline only when it arrives (`chat.queue.enter_queue`); reports do
    # not judge those against a target (`Measures.sla_met` None), nor does the detector.
    return exists().where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == kinds.OFFLINE,
    )


async def _targets(session: AsyncSession) -> dict[int, int]:
    rows = await session.execute(select(Skill.id, Skill.sla_first_response_seconds))
    return {skill_id: seconds for skill_id, seconds in rows.all()}  # noqa: C416 - typed pairs


async def _candidates(session: AsyncSession, *, now: datetime, shortest: int) -> list[_Candidate]:
    """Unmarked conversations old enough to have missed the shortest target: the open ones
    (the partial index), and the ones that closed within `CLOSED_LOOKBACK`."""
    reply = _first_reply()
    columns = (Conversation.id, Conversation.created_at, reply, Conversation.closed_at)
    cutoff = now - timedelta(seconds=shortest)
    open_rows = await session.execute(
        select(*columns).where(
            Conversation.sla_breached_at.is_(None),
            _OPEN_STATES,
            Conversation.created_at < cutoff,
            ~_arrived_offline(),
            # Answered long ago and not marked: answered in time (a late reply is recorded by
            # the round after it), so not worth sending back; most open chats are these. (One
            # probe of the reply index, where `reply >= …` would compute the reply twice.)
            ~_replied_before(now - CLOSED_LOOKBACK),
        )
    )
    closed_rows = await session.execute(
        select(*columns).where(
            Conversation.closed_at >= now - CLOSED_LOOKBACK,
            Conversation.state == ConversationState.CLOSED,
            Conversation.sla_breached_at.is_(None),
            Conversation.created_at < cutoff,
            ~_arrived_offline(),
        )
    )
    return [
        _Candidate(cid, asked, replied_at, closed_at)
        for cid, asked, replied_at, closed_at in [*open_rows.all(), *closed_rows.all()]
    ]


def _skill_of(body: dict[str, Any]) -> int | None:
    # `conversation.opened` names the skill it arrived needing; reports judge against that one
    # even after a transfer to another skill (`reports.measures.arrival_skill`).
    skill = body.get("skill")
    if isinstance(skill, dict):
        value = skill.get("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


async def _arrival_skills(
    session: AsyncSession, ids: list[uuid.UUID]
) -> dict[uuid.UUID, int | None]:
    skills: dict[uuid.UUID, int | None] = {}
    # In chunks: the first round after an upgrade may find every chat then waiting, more ids
    # than one statement may bind on SQLite.
    for start in range(0, len(ids), _IDS_PER_QUERY):
        rows = await session.execute(
            select(ConversationEvent.conversation_id, ConversationEvent.body).where(
                ConversationEvent.conversation_id.in_(ids[start : start + _IDS_PER_QUERY]),
                ConversationEvent.seq == 1,
                ConversationEvent.kind == kinds.OPENED,
            )
        )
        skills.update((cid, _skill_of(body)) for cid, body in rows.all())
    return skills


def _wait(candidate: _Candidate, now: datetime) -> timedelta:
    return sla.first_reply_wait(
        asked=candidate.asked,
        replied_at=candidate.replied_at,
        closed_at=candidate.closed_at,
        now=now,
    )


async def watch(session: AsyncSession, *, now: datetime, limit: int = BATCH) -> Outcome:
    """Record every breach that has happened and is not recorded yet (at most `limit`).

    Safe on several nodes at once: a conversation is locked (`SKIP LOCKED`: one busy elsewhere
    waits for the next round), judged again from what is committed then, and marked by an
    UPDATE that only an unmarked row matches; its event is appended only when that UPDATE
    changed the row.
    """
    outcome = Outcome()
    targets = await _targets(session)
    shortest = min([sla.DEFAULT_TARGET_SECONDS, *targets.values()])
    found = [
        c
        for c in await _candidates(session, now=now, shortest=shortest)
        if sla.breached(_wait(c, now), shortest)
    ]
    skills = await _arrival_skills(session, [c.id for c in found])
    due = [
        (c, skills.get(c.id))
        for c in found
        if sla.breached(_wait(c, now), sla.target_seconds(skills.get(c.id), targets))
    ]
    slugs: dict[int, str] | None = None
    for candidate, skill_id in sorted(due, key=lambda d: d[0].asked)[:limit]:
        conversation = await session.scalar(
            select(Conversation)
            .where(Conversation.id == candidate.id, Conversation.sla_breached_at.is_(None))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        if conversation is None:
            continue  # another node holds it, or marked it meanwhile
        # Judged again under the lock: a reply or a close may have committed since the scan.
        replied_at = await session.scalar(
            select(func.min(ConversationEvent.created_at)).where(
                ConversationEvent.conversation_id == conversation.id,
                ConversationEvent.kind == kinds.MESSAGE,
                ConversationEvent.sender_type == SenderType.AGENT,
            )
        )
        target = sla.target_seconds(skill_id, targets)
        waited = sla.first_reply_wait(
            asked=conversation.created_at,
            replied_at=replied_at,
            closed_at=conversation.closed_at,
            now=now,
        )
        if not sla.breached(waited, target):
            continue
        marked: CursorResult[Any] = await session.execute(  # type: ignore[assignment]  # DML
            update(Conversation)
            .where(Conversation.id == conversation.id, Conversation.sla_breached_at.is_(None))
            .values(sla_breached_at=now)
            .execution_options(synchronize_session=False)
        )
        if marked.rowcount != 1:
            continue
        if slugs is None:
            rows = await session.execute(select(Skill.id, Skill.slug))
            slugs = {skill: slug for skill, slug in rows.all()}  # noqa: C416 - typed pairs
        slug = None if skill_id is None else slugs.get(skill_id)
        outcome.events.append(
            append_event(
                session,
                conversation,
                kind=kinds.SLA_BREACHED,
                now=now,
                body={
                    "target_seconds": target,
                    # Whole seconds, rounded down: the first-response time of a late reply, or
                    # the wait so far (to the close, if it closed unanswered).
                    "waited_seconds": int(waited.total_seconds()),
                    "answered": replied_at is not None,
                    "skill": (
                        None if skill_id is None or slug is None else {"id": skill_id, "slug": slug}
                    ),
                },
                visibility=Visibility.AGENTS,
            )
        )
    await session.flush()
    return outcome
