"""The team at a glance: who is online with what load, what waits for which skill, and how each
queue stands against its first-reply target; for supervisors, every agent's chats, the
escalated chats and the queue itself.

Read-only and set-based: a fixed handful of queries whatever the size of the team or the queue
(the supervisor view polls this every 2 s). Must not decide anything: routing is
`routing.service`; the service level is judged by the pure `routing.sla`. Lists are capped
(`LIST_LIMIT`) while the counts are not. Reference: docs/api.md#team,
docs/api.md#supervisor-overview.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.routing import sla
from app.routing.repository import agent_snapshot
from app.store.models import (
    Agent,
    AgentSkill,
    AgentStatus,
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Skill,
    UTCDateTime,
    Visitor,
)

# The escalated and queued lists stop here: a supervisor acts on the head of each, and a poll
# every 2 s must stay cheap when a queue backs up. Counts (`waiting`) are never capped.
LIST_LIMIT = 200
# Event kinds (`chat.events`; chat is not imported from routing).
_MESSAGE = "message"
_OPENED = "conversation.opened"
_OFFLINE = "conversation.offline"


@dataclass(frozen=True, slots=True)
class AgentSkillLevel:
    skill_id: int
    slug: str
    proficiency: int


@dataclass(frozen=True, slots=True)
class HeldChat:
    id: uuid.UUID
    visitor_name: str | None
    assigned_at: datetime | None
    awaiting_reply_since: datetime | None
    escalated: bool
    # Against its skill's target while it awaits its first agent reply; None once answered
    # (or when it arrived offline: no target applies).
    sla: sla.ChatSla | None = None


@dataclass(slots=True)
class AgentLine:
    agent: Agent
    load: int
    connected: bool
    skills: list[AgentSkillLevel] = field(default_factory=list)
    chats: list[HeldChat] = field(default_factory=list)

    @property
    def online(self) -> bool:
        """Online and reachable: status `online` with a socket open."""
        return self.connected and self.agent.status is AgentStatus.ONLINE

    @property
    def available(self) -> bool:
        """Could be given a chat now: online, connected, below capacity."""
        return self.online and self.load < self.agent.capacity


@dataclass(frozen=True, slots=True)
class SkillLine:
    """One queue: a skill's, or (`skill` None) that of the chats needing no skill."""

    skill: Skill | None
    waiting: int
    longest_wait: timedelta | None
    target: sla.SlaTarget
    sla_state: sla.SlaState
    agents_online: int
    agents_available: int


@dataclass(frozen=True, slots=True)
class EscalatedLine:
    id: uuid.UUID
    visitor_name: str | None
    agent_id: uuid.UUID | None
    agent_name: str | None
    escalated_at: datetime
    reason: str | None
    state: ConversationState


@dataclass(frozen=True, slots=True)
class QueuedLine:
    id: uuid.UUID
    visitor_name: str | None
    skill_slug: str | None
    queued_at: datetime
    priority: int
    escalated: bool
    sla: sla.ChatSla | None = None


@dataclass(frozen=True, slots=True)
class Team:
    agents: list[AgentLine]
    skills: list[SkillLine]


@dataclass(frozen=True, slots=True)
class Overview:
    agents: list[AgentLine]
    skills: list[SkillLine]
    escalated: list[EscalatedLine]
    queued: list[QueuedLine]


def _since_queued() -> ColumnElement[datetime]:
    # A chat put back in the queue keeps `queued_at` (its place in line and its first-reply
    # clock); one that never queued (taken while offline) counts from its opening.
    return func.coalesce(Conversation.queued_at, Conversation.created_at, type_=UTCDateTime)


async def team(session: AsyncSession, *, now: datetime) -> Team:
    """Active agents by name (load, status, connection, skills) and every skill's queue.

    Four queries: agents with load and connection, their skills, the skills, the waiting
    counts.
    """
    agents = await _agents(session)
    skills = list(await session.scalars(select(Skill).order_by(Skill.slug)))
    waiting = await _waiting(session)
    return Team(agents=agents, skills=_skill_lines(skills, agents, waiting, {}, now=now))


async def overview(session: AsyncSession, *, now: datetime) -> Overview:
    """The supervisor view: `team()` plus the service level of each queue, every agent's
    chats, the open escalated chats (oldest escalation first) and the queue in routing
    order (highest priority first, then longest waiting); each queued or held chat awaiting its
    first agent reply with where it stands against its own target (`sla.chat()`). Eight
    queries."""
    agents = await _agents(session)
    skills = list(await session.scalars(select(Skill).order_by(Skill.slug)))
    waiting = await _waiting(session)
    unanswered = await _unanswered_since(session)
    lines = _skill_lines(skills, agents, waiting, unanswered, now=now)
    targets = {skill.id: skill.sla_first_response_seconds for skill in skills}
    await _attach_chats(session, agents, targets, now=now)
    return Overview(
        agents=agents,
        skills=lines,
        escalated=await _escalated(session),
        queued=await _queued(session, targets, now=now),
    )


async def _agents(session: AsyncSession) -> list[AgentLine]:
    lines = {
        agent.id: AgentLine(agent=agent, load=load, connected=connected)
        for agent, load, connected in await agent_snapshot(session)
    }
    if lines:
        rows = await session.execute(
            select(AgentSkill.agent_id, Skill.id, Skill.slug, AgentSkill.proficiency)
            .join(Skill, Skill.id == AgentSkill.skill_id)
            .join(Agent, Agent.id == AgentSkill.agent_id)
            .where(Agent.is_active.is_(True))
            .order_by(Skill.slug)
        )
        for agent_id, skill_id, slug, level in rows.all():
            if agent_id in lines:  # activated between the two reads: shown from the next poll
                lines[agent_id].skills.append(AgentSkillLevel(skill_id, slug, level))
    return sorted(lines.values(), key=lambda line: (line.agent.name.casefold(), line.agent.id))


async def _waiting(session: AsyncSession) -> dict[int | None, tuple[int, datetime]]:
    """Per skill (None: no skill): queued chats, and when the longest-waiting one queued."""
    rows = await session.execute(
        select(Conversation.skill_id, func.count(), func.min(_since_queued()))
        .where(Conversation.state == ConversationState.QUEUED)
        .group_by(Conversation.skill_id)
    )
    return {skill_id: (int(count), since) for skill_id, count, since in rows.all()}


async def _unanswered_since(session: AsyncSession) -> dict[int | None, datetime]:
    """Per skill: since when the longest-waiting assigned chat with no agent reply yet waits
    (its first-reply clock still runs)."""
    agent_replied = exists().where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == _MESSAGE,
        ConversationEvent.sender_type == SenderType.AGENT,
    )
    rows = await session.execute(
        select(Conversation.skill_id, func.min(_since_queued()))
        .where(Conversation.state == ConversationState.ASSIGNED, ~agent_replied)
        .group_by(Conversation.skill_id)
    )
    return {skill_id: since for skill_id, since in rows.all()}  # noqa: C416 - typed pairs


def _skill_lines(
    skills: list[Skill],
    agents: list[AgentLine],
    waiting: dict[int | None, tuple[int, datetime]],
    unanswered: dict[int | None, datetime],
    *,
    now: datetime,
) -> list[SkillLine]:
    online: dict[int, int] = defaultdict(int)
    available: dict[int, int] = defaultdict(int)
    for line in agents:
        for level in line.skills:
            online[level.skill_id] += line.online
            available[level.skill_id] += line.available

    def build(skill: Skill | None, target: sla.SlaTarget, n_online: int, n_free: int) -> SkillLine:
        key = None if skill is None else skill.id
        count, queued_since = waiting.get(key, (0, None))
        clocks = [t for t in (queued_since, unanswered.get(key)) if t is not None]
        oldest = min(clocks) if clocks else None
        return SkillLine(
            skill=skill,
            waiting=count,
            longest_wait=None if queued_since is None else max(now - queued_since, timedelta()),
            target=target,
            sla_state=sla.state(None if oldest is None else now - oldest, target),
            agents_online=n_online,
            agents_available=n_free,
        )

    lines = [
        build(
            skill,
            sla.SlaTarget(skill.sla_first_response_seconds, skill.sla_target_percent),
            online[skill.id],
            available[skill.id],
        )
        for skill in skills
    ]
    if None in waiting or None in unanswered:
        # Any agent may take a chat that needs no skill.
        lines.append(
            build(
                None,
                sla.SlaTarget(),
                sum(line.online for line in agents),
                sum(line.available for line in agents),
            )
        )
    return lines


# The first event of a conversation, its `conversation.opened`.
_Opened = aliased(ConversationEvent, name="opened")


def _first_reply_clock() -> tuple[Any, ...]:
    """Columns for `_chat_sla()`: the first message, the breach mark, whether an agent has
    replied, whether it arrived offline, and its `conversation.opened` body (the skill it
    arrived needing, which reports judge it against); the caller outer-joins `_Opened`."""
    replied = exists().where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == _MESSAGE,
        ConversationEvent.sender_type == SenderType.AGENT,
    )
    offline = exists().where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind == _OFFLINE,
    )
    return (
        Conversation.created_at,
        Conversation.sla_breached_at,
        replied.label("replied"),
        offline.label("offline"),
        _Opened.body,
    )


def _opened_join() -> ColumnElement[bool]:
    return and_(
        _Opened.conversation_id == Conversation.id, _Opened.seq == 1, _Opened.kind == _OPENED
    )


def _arrival_skill(body: Mapping[str, Any] | None) -> int | None:
    skill = None if body is None else body.get("skill")
    if isinstance(skill, Mapping):
        value = skill.get("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _chat_sla(
    clock: tuple[Any, ...], targets: Mapping[int, int], *, now: datetime
) -> sla.ChatSla | None:
    """Where a chat stands against its target, from the `_first_reply_clock()` columns; None
    once an agent replied, or when it arrived offline (reports do not judge those)."""
    asked, breached_at, replied, offline, opened = clock
    if replied or offline:
        return None
    target = sla.target_seconds(_arrival_skill(opened), targets)
    return sla.chat(asked, target, now=now, breached_at=breached_at)


async def _attach_chats(
    session: AsyncSession,
    agents: list[AgentLine],
    targets: Mapping[int, int],
    *,
    now: datetime,
) -> None:
    """Every assigned chat, each under its agent, oldest assignment first."""
    by_id = {line.agent.id: line for line in agents}
    rows = await session.execute(
        select(
            Conversation.id,
            Conversation.agent_id,
            Visitor.name,
            Conversation.assigned_at,
            Conversation.awaiting_reply_since,
            Conversation.escalated_at,
            *_first_reply_clock(),
        )
        .join(Visitor, Visitor.id == Conversation.visitor_id)
        .outerjoin(_Opened, _opened_join())
        .where(Conversation.state == ConversationState.ASSIGNED)
        .order_by(Conversation.assigned_at, Conversation.id)
    )
    for row in rows.all():
        chat_id, agent_id, visitor_name, assigned_at, awaiting, escalated_at = row[:6]
        line = None if agent_id is None else by_id.get(agent_id)
        if line is not None:  # a deactivated agent's chats are re-queued by housekeeping
            line.chats.append(
                HeldChat(
                    chat_id,
                    visitor_name,
                    assigned_at,
                    awaiting,
                    escalated_at is not None,
                    _chat_sla(tuple(row[6:]), targets, now=now),
                )
            )


async def _escalated(session: AsyncSession) -> list[EscalatedLine]:
    holder = and_(
        Agent.id == Conversation.agent_id, Conversation.state == ConversationState.ASSIGNED
    )
    rows = await session.execute(
        select(
            Conversation.id,
            Visitor.name,
            Agent.id,
            Agent.name,
            Conversation.escalated_at,
            Conversation.escalation_reason,
            Conversation.state,
        )
        .join(Visitor, Visitor.id == Conversation.visitor_id)
        .outerjoin(Agent, holder)
        .where(
            Conversation.state != ConversationState.CLOSED,
            Conversation.escalated_at.is_not(None),
        )
        .order_by(Conversation.escalated_at, Conversation.id)
        .limit(LIST_LIMIT)
    )
    return [
        EscalatedLine(chat_id, visitor_name, agent_id, agent_name, at, reason, state)
        for chat_id, visitor_name, agent_id, agent_name, at, reason, state in rows.all()
        if at is not None  # the query selects only these
    ]


async def _queued(
    session: AsyncSession, targets: Mapping[int, int], *, now: datetime
) -> list[QueuedLine]:
    since = _since_queued()
    rows = await session.execute(
        select(
            Conversation.id,
            Visitor.name,
            Skill.slug,
            since,
            Conversation.priority,
            Conversation.escalated_at,
            *_first_reply_clock(),
        )
        .join(Visitor, Visitor.id == Conversation.visitor_id)
        .outerjoin(Skill, Skill.id == Conversation.skill_id)
        .outerjoin(_Opened, _opened_join())
        .where(Conversation.state == ConversationState.QUEUED)
        .order_by(Conversation.priority.desc(), since, Conversation.id)
        .limit(LIST_LIMIT)
    )
    return [
        QueuedLine(
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5] is not None,
            _chat_sla(tuple(row[6:]), targets, now=now),
        )
        for row in rows.all()
    ]
