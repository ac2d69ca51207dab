"""Handoff queries for supervisors: the open escalated chats, and the accepted transfers of a
period grouped for the report (docs/api.md#escalations, docs/api.md#transfer-report).

Read-only: nothing here locks a row or writes one, so both answers are a snapshot that may be
a moment old. Must not decide anything: starting, accepting and escalating are
`handoff.service`. Shares and sorting are left to the caller; this module only counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Skill,
    Transfer,
    TransferKind,
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


@dataclass(frozen=True, slots=True)
class Tally:
    """Accepted transfers of one group, and how many of them made the customer repeat."""

    transfers: int
    with_repeat: int


@dataclass(frozen=True, slots=True)
class SkillTally:
    skill_id: int | None
    skill_name: str | None
    tally: Tally


@dataclass(frozen=True, slots=True)
class AgentTally:
    agent_id: uuid.UUID | None  # None: the receiving agent's row was deleted since
    agent_name: str | None
    tally: Tally


@dataclass(frozen=True, slots=True)
class TransferReport:
    total: Tally
    by_kind: dict[TransferKind, int]
    by_skill: list[SkillTally]
    by_agent: list[AgentTally]


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


def _accepted_between(since: datetime, until: datetime) -> ColumnElement[bool]:
    return and_(
        Transfer.state == TransferState.ACCEPTED,
        Transfer.decided_at >= since,
        Transfer.decided_at < until,
    )


# The skill a transfer is reported under: the skill it was sent to (warm to a skill, cold),
# else the one the chat needed when it moved. `Transfer.skill_id` alone is the chat's skill at
# the move, which for a warm transfer to another team is still the old team's skill.
_REPORT_SKILL = func.coalesce(Transfer.to_skill_id, Transfer.skill_id)


async def transfer_report(
    session: AsyncSession, *, since: datetime, until: datetime
) -> TransferReport:
    """Count the transfers accepted in `[since, until)` (by `decided_at`): all of them, per
    kind, per skill and per receiving agent (`accepted_by`), each with how many have a
    `repeat_seq` (the customer restated a fact after the move).

    Groups are returned in no particular order; every group total adds up to `total`.
    """
    in_range = _accepted_between(since, until)
    repeated = func.count(Transfer.repeat_seq)  # COUNT of a column skips its NULLs
    kinds = await session.execute(
        select(Transfer.kind, func.count(), repeated).where(in_range).group_by(Transfer.kind)
    )
    by_kind = dict.fromkeys(TransferKind, 0)
    transfers = with_repeat = 0
    for kind, count, repeats in kinds:
        by_kind[kind] = int(count)
        transfers += int(count)
        with_repeat += int(repeats)
    skill_key = _REPORT_SKILL.label("skill_id")
    skills = await session.execute(
        select(skill_key, Skill.name, func.count(), repeated)
        .outerjoin(Skill, Skill.id == _REPORT_SKILL)
        .where(in_range)
        .group_by(skill_key, Skill.name)
    )
    agents = await session.execute(
        select(Transfer.accepted_by, Agent.name, func.count(), repeated)
        .outerjoin(Agent, Agent.id == Transfer.accepted_by)
        .where(in_range)
        .group_by(Transfer.accepted_by, Agent.name)
    )
    return TransferReport(
        total=Tally(transfers, with_repeat),
        by_kind=by_kind,
        by_skill=[
            SkillTally(skill_id, name, Tally(int(count), int(repeats)))
            for skill_id, name, count, repeats in skills
        ],
        by_agent=[
            AgentTally(agent_id, name, Tally(int(count), int(repeats)))
            for agent_id, name, count, repeats in agents
        ],
    )
