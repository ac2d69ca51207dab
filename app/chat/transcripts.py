"""Conversations and their transcripts as other systems read them (docs/api.md#conversations-api):
the filtered list in keyset pages, one conversation's metadata and timings, its stored events,
batches of closed conversations for the export, and the plain-text transcript.

Keyset pagination only (never offsets): a page continues after the `(sort key, id)` of the last
row of the previous one, so rows inserted meanwhile neither repeat nor hide rows. A conversation
not closed yet sorts as if it closes in the future: last by `closed_at`, first by `-closed_at`.

Read-only; must not decide who may read what (the caller passes `held_by` and `internal`, from
`app/api/access.py` and `chat.service.may_read`), nor know URLs or wire encodings of cursors.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, exists, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import search
from app.errors import NotFound
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Skill,
    Visibility,
    Visitor,
)

SORTS = ("created_at", "-created_at", "closed_at", "-closed_at")
# What `q` searches: what the visitor and the agents said to each other, and, for callers who
# may read them, what agents said among themselves.
SEARCHED_KINDS = (kinds.MESSAGE,)
SEARCHED_INTERNAL_KINDS = (kinds.MESSAGE, kinds.NOTE, kinds.WHISPER, kinds.TRANSFER_CHAT)


class CsatNotFound(NotFound):
    """The conversation has not been rated (docs/api.md#get-apiv1conversationsidcsat)."""

    code = "csat_not_found"


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page starts: after the row with this sort key (`None`: not closed yet) and id."""

    sort: str
    key: datetime | None
    id: uuid.UUID


@dataclass(frozen=True, slots=True)
class Filters:
    """The list's filters; empty fields filter nothing. `*_after` bounds are inclusive,
    `*_before` bounds exclusive."""

    states: tuple[ConversationState, ...] = ()
    agent_id: uuid.UUID | None = None
    skill_id: int | None = None
    tags: tuple[str, ...] = ()
    visitor_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    closed_after: datetime | None = None
    closed_before: datetime | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    id: uuid.UUID
    name: str | None


@dataclass(frozen=True, slots=True)
class ConversationInfo:
    """A conversation with what its metadata shows: its visitor, skill, holder, everyone who
    held it (first joined first) and how many messages it has."""

    conversation: Conversation
    visitor: Visitor | None
    skill: Skill | None
    agent: Person | None
    held_by: list[Person] = field(default_factory=list)
    message_count: int = 0


@dataclass(frozen=True, slots=True)
class Timings:
    """Seconds from entering the queue to the first assignment, and from the visitor's first
    message to the first agent message; `None` when it has not happened."""

    queue_wait_seconds: float | None
    first_response_seconds: float | None


def held(agent_id: uuid.UUID) -> ColumnElement[bool]:
    """The conversation is held by the agent now, or was: their `agent.joined` is in its log
    (the rule of `chat.service.may_read` for agents who held it)."""
    joined = select(ConversationEvent.id).where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == kinds.AGENT_JOINED,
        ConversationEvent.sender_id == agent_id,
    )
    return or_(Conversation.agent_id == agent_id, exists(joined))


def _order(sort: str) -> list[Any]:
    """The sort, then the id in the same direction. A conversation not closed yet sorts as if it
    closes in the future: last by `closed_at`, first by `-closed_at`. That is PostgreSQL's own
    order of NULLs, so its btree indexes serve both directions (SQLite is told explicitly)."""
    if sort.endswith("created_at"):  # never NULL
        column = Conversation.created_at
        if sort.startswith("-"):
            return [column.desc(), Conversation.id.desc()]
        return [column.asc(), Conversation.id.asc()]
    closed = Conversation.closed_at
    if sort.startswith("-"):
        return [closed.desc().nulls_first(), Conversation.id.desc()]
    return [closed.asc().nulls_last(), Conversation.id.asc()]


def _after(at: Keyset) -> ColumnElement[bool]:
    """Rows after `at` in the order of `_order(at.sort)`."""
    descending = at.sort.startswith("-")
    column = Conversation.created_at if at.sort.endswith("created_at") else Conversation.closed_at
    later_id = Conversation.id < at.id if descending else Conversation.id > at.id
    if at.key is None:  # among the conversations not closed yet
        among_open = column.is_(None) & later_id
        # Descending, the closed ones all come after the open ones; ascending, none do.
        return or_(among_open, column.is_not(None)) if descending else among_open
    pair = tuple_(column, Conversation.id)
    later = pair < tuple_(at.key, at.id) if descending else pair > tuple_(at.key, at.id)
    if column is Conversation.closed_at and not descending:
        return or_(later, column.is_(None))  # ascending, the open ones come after every close
    return later


def _filtered(
    query: Select[Any], filters: Filters, *, dialect: str, held_by: uuid.UUID | None, internal: bool
) -> Select[Any]:
    if held_by is not None:
        query = query.where(held(held_by))
    if filters.states:
        query = query.where(Conversation.state.in_(filters.states))
    if filters.agent_id is not None:
        query = query.where(held(filters.agent_id))
    if filters.skill_id is not None:
        query = query.where(Conversation.skill_id == filters.skill_id)
    for i, tag in enumerate(filters.tags):
        query = query.where(search.has_tag(dialect, tag, i))
    if filters.visitor_id is not None:
        query = query.where(Conversation.visitor_id == filters.visitor_id)
    if filters.created_after is not None:
        query = query.where(Conversation.created_at >= filters.created_after)
    if filters.created_before is not None:
        query = query.where(Conversation.created_at < filters.created_before)
    if filters.closed_after is not None:
        query = query.where(Conversation.closed_at >= filters.closed_after)
    if filters.closed_before is not None:
        query = query.where(Conversation.closed_at < filters.closed_before)
    if filters.q:
        searched = SEARCHED_INTERNAL_KINDS if internal else SEARCHED_KINDS
        query = query.where(
            search.conversation_mentions(dialect, filters.q, kinds=searched, internal=internal)
        )
    return query


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def page(
    session: AsyncSession,
    *,
    filters: Filters,
    sort: str,
    after: Keyset | None,
    limit: int,
    held_by: uuid.UUID | None,
    internal: bool,
) -> tuple[list[ConversationInfo], bool]:
    """One page of the list and whether more follow.

    Args:
        held_by: only conversations this agent holds or held (an agent's own list).
        internal: `q` may match internal notes, whispers and the transfer channel too.
    """
    query = _filtered(
        select(Conversation), filters, dialect=_dialect(session), held_by=held_by, internal=internal
    )
    if after is not None:
        query = query.where(_after(after))
    rows = list((await session.scalars(query.order_by(*_order(sort)).limit(limit + 1))).all())
    return await describe(session, rows[:limit]), len(rows) > limit


def keyset_of(conversation: Conversation, sort: str) -> Keyset:
    key = conversation.created_at if sort.endswith("created_at") else conversation.closed_at
    return Keyset(sort=sort, key=key, id=conversation.id)


async def describe(
    session: AsyncSession, conversations: Sequence[Conversation]
) -> list[ConversationInfo]:
    """The metadata of `conversations`, in their order, in five set-based reads whatever
    their number."""
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    visitors = {
        v.id: v
        for v in await session.scalars(
            select(Visitor).where(Visitor.id.in_({c.visitor_id for c in conversations}))
        )
    }
    skill_ids = {c.skill_id for c in conversations if c.skill_id is not None}
    skills = (
        {s.id: s for s in await session.scalars(select(Skill).where(Skill.id.in_(skill_ids)))}
        if skill_ids
        else {}
    )
    joined = await session.execute(
        select(
            ConversationEvent.conversation_id,
            ConversationEvent.sender_id,
            ConversationEvent.sender_name,
        )
        .where(
            ConversationEvent.conversation_id.in_(ids),
            ConversationEvent.kind == kinds.AGENT_JOINED,
        )
        .order_by(ConversationEvent.conversation_id, ConversationEvent.seq)
    )
    held_ids: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    names_then: dict[uuid.UUID, str | None] = {}
    for conversation_id, agent_id, name in joined:
        if agent_id is not None and agent_id not in held_ids[conversation_id]:
            held_ids[conversation_id].append(agent_id)
            names_then[agent_id] = name
    agent_ids = {a for ids_ in held_ids.values() for a in ids_}
    agent_ids |= {c.agent_id for c in conversations if c.agent_id is not None}
    names = (
        dict(
            (await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(agent_ids))))
            .tuples()
            .all()
        )
        if agent_ids
        else {}
    )
    counts = dict(
        (
            await session.execute(
                select(ConversationEvent.conversation_id, func.count())
                .where(
                    ConversationEvent.conversation_id.in_(ids),
                    ConversationEvent.kind == kinds.MESSAGE,
                )
                .group_by(ConversationEvent.conversation_id)
            )
        )
        .tuples()
        .all()
    )

    def person(agent_id: uuid.UUID) -> Person:
        # The agent's name now; their name when they joined if the agent row is gone.
        return Person(agent_id, names.get(agent_id, names_then.get(agent_id)))

    return [
        ConversationInfo(
            conversation=c,
            visitor=visitors.get(c.visitor_id),
            skill=None if c.skill_id is None else skills.get(c.skill_id),
            agent=None if c.agent_id is None else person(c.agent_id),
            held_by=[person(a) for a in held_ids.get(c.id, [])],
            message_count=int(counts.get(c.id, 0)),
        )
        for c in conversations
    ]


async def timings(session: AsyncSession, conversation: Conversation) -> Timings:
    """The conversation's queue wait and first response, from its log (one read)."""
    firsts = (
        await session.execute(
            select(
                ConversationEvent.kind,
                ConversationEvent.sender_type,
                func.min(ConversationEvent.created_at),
            )
            .where(
                ConversationEvent.conversation_id == conversation.id,
                ConversationEvent.kind.in_((kinds.ASSIGNED, kinds.MESSAGE)),
            )
            .group_by(ConversationEvent.kind, ConversationEvent.sender_type)
        )
    ).all()
    first: dict[tuple[str, SenderType], datetime] = {
        (kind, sender): _utc(at) for kind, sender, at in firsts
    }
    assigned = first.get((kinds.ASSIGNED, SenderType.SYSTEM))
    asked = first.get((kinds.MESSAGE, SenderType.VISITOR))
    answered = first.get((kinds.MESSAGE, SenderType.AGENT))
    wait = (
        (assigned - conversation.queued_at).total_seconds()
        if assigned is not None and conversation.queued_at is not None
        else None
    )
    response = (
        (answered - asked).total_seconds()
        if answered is not None and asked is not None and answered >= asked
        else None
    )
    return Timings(queue_wait_seconds=wait, first_response_seconds=response)


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone; an aggregate may come back naive.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


async def events_of(
    session: AsyncSession, conversation_ids: Sequence[uuid.UUID], *, internal: bool
) -> dict[uuid.UUID, list[ConversationEvent]]:
    """Every stored event of the conversations, each in `seq` order; without `internal`, only
    those visible to the visitor."""
    query = select(ConversationEvent).where(ConversationEvent.conversation_id.in_(conversation_ids))
    if not internal:
        query = query.where(ConversationEvent.visibility == Visibility.ALL)
    out: dict[uuid.UUID, list[ConversationEvent]] = {cid: [] for cid in conversation_ids}
    for row in await session.scalars(
        query.order_by(ConversationEvent.conversation_id, ConversationEvent.seq)
    ):
        out[row.conversation_id].append(row)
    return out


async def closed_batch(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime | None,
    after: Keyset | None,
    limit: int,
    held_by: uuid.UUID | None,
) -> list[Conversation]:
    """Up to `limit` closed conversations with `since <= closed_at < until`, by `(closed_at,
    id)`, after `after` (the last row of the previous batch)."""
    query = select(Conversation).where(
        Conversation.state == ConversationState.CLOSED, Conversation.closed_at >= since
    )
    if until is not None:
        query = query.where(Conversation.closed_at < until)
    if held_by is not None:
        query = query.where(held(held_by))
    if after is not None:
        query = query.where(_after(after))
    return list((await session.scalars(query.order_by(*_order("closed_at")).limit(limit))).all())
