"""`/api/v1/team` and `/api/v1/supervisor/overview`: the team at a glance
(docs/api.md#team, docs/api.md#supervisor-overview).

The team is for any agent (the transfer dialog: who is online, with what load and skills, and
what waits per skill). The overview is the supervisor view, polled every 2 s: each queue with
its service level, every agent's chats, the escalated chats and the queue. Read-only; the
queries and the service-level rule are `routing.oversight` and `routing.sla`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from app.api.deps import CurrentAgent, NowDep, SessionDep
from app.api.errors import responses
from app.api.v1.admin_agents import StaffAgent
from app.routing import oversight, sla
from app.routing.oversight import AgentLine, SkillLine
from app.store.models import AgentStatus, ConversationState, Role

router = APIRouter(tags=["team"])


class SkillLevel(BaseModel):
    slug: str
    proficiency: int = Field(description="1 (can handle it) to 5 (expert).")


class TeamAgent(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    status: AgentStatus = Field(description='"online", "away" or "offline", as the agent set it.')
    connected: bool = Field(description="A socket of theirs is open on some node.")
    load: int = Field(
        description="Assigned chats plus pending offers and warm transfers offered to them."
    )
    capacity: int
    skills: list[SkillLevel] = Field(description="By slug.")


class TeamSkill(BaseModel):
    id: int
    slug: str
    name: str
    waiting: int = Field(description="Chats of this skill in the queue.")
    longest_wait_seconds: int | None = Field(
        description="How long the longest-waiting of them has waited; null when none waits."
    )
    agents_online: int = Field(description="Agents with the skill, `online` and connected.")


class Team(BaseModel):
    agents: list[TeamAgent] = Field(description="Active agents, by name.")
    skills: list[TeamSkill] = Field(description="Every skill, by slug.")


class Sla(BaseModel):
    target_seconds: int = Field(description="The first agent reply should come within this.")
    target_percent: int = Field(description="For this share of chats.")
    state: Literal["ok", "at_risk", "breached"] = Field(
        description="From the longest wait for a first reply now running: `breached` past "
        "`target_seconds`, `at_risk` from 75 % of it."
    )


class OverviewSkill(BaseModel):
    id: int | None = Field(description="null for the chats that need no skill.")
    slug: str | None
    name: str
    waiting: int
    longest_wait_seconds: int | None
    sla: Sla
    agents_online: int
    agents_available: int = Field(description="Of those online, the ones below capacity.")


class ChatSla(BaseModel):
    state: Literal["ok", "at_risk", "breached"] = Field(
        description="From the wait since the customer's first message: `breached` once it "
        "exceeds `target_seconds` (whole milliseconds, as reports count them) or once the "
        "breach was recorded, `at_risk` from 75 % of it."
    )
    target_seconds: int = Field(
        description="The first-reply target of the skill the chat arrived needing (60 for "
        "chats that need no skill)."
    )
    due_at: datetime = Field(description="When the target runs out: the first message + target.")


def _chat_sla(value: sla.ChatSla | None) -> ChatSla | None:
    if value is None:
        return None
    return ChatSla(
        state=value.state.value, target_seconds=value.target_seconds, due_at=value.due_at
    )


_CHAT_SLA_DESCRIPTION = (
    "Against its own target while it awaits its first agent reply; null once an agent "
    "replied, and for a chat that arrived offline (docs/metrics.md#sla-breaches)."
)


class HeldChat(BaseModel):
    id: uuid.UUID
    visitor_name: str | None
    assigned_at: datetime | None
    awaiting_reply_since: datetime | None = Field(
        description="The customer's oldest message the agent has not answered; null when none."
    )
    escalated: bool
    sla: ChatSla | None = Field(description=_CHAT_SLA_DESCRIPTION)


class OverviewAgent(BaseModel):
    id: uuid.UUID
    name: str
    role: Role
    status: AgentStatus
    connected: bool
    load: int
    capacity: int
    chats: list[HeldChat] = Field(description="The chats they hold, oldest assignment first.")


class AgentRef(BaseModel):
    id: uuid.UUID
    name: str


class EscalatedChat(BaseModel):
    id: uuid.UUID
    visitor_name: str | None
    agent: AgentRef | None = Field(description="Who holds it; null while nobody does.")
    escalated_at: datetime
    reason: str | None
    state: ConversationState


class QueuedChat(BaseModel):
    id: uuid.UUID
    visitor_name: str | None
    skill_slug: str | None
    queued_at: datetime
    priority: int
    escalated: bool
    sla: ChatSla | None = Field(description=_CHAT_SLA_DESCRIPTION)


class Overview(BaseModel):
    generated_at: datetime
    skills: list[OverviewSkill]
    agents: list[OverviewAgent]
    escalated: list[EscalatedChat] = Field(description="Oldest escalation first; at most 200.")
    queued: list[QueuedChat] = Field(description="In routing order; at most 200.")


def _seconds(line: SkillLine) -> int | None:
    return None if line.longest_wait is None else int(line.longest_wait.total_seconds())


def _levels(line: AgentLine) -> list[SkillLevel]:
    return [SkillLevel(slug=s.slug, proficiency=s.proficiency) for s in line.skills]


@router.get(
    "/team",
    summary="The team and the queues",
    description="Active agents with their status, connection, load and skills, and each "
    "skill's queue: what a transfer dialog needs. Any agent.",
    responses=responses(401, 403, 503),
)
async def get_team(_agent: CurrentAgent, session: SessionDep, now: NowDep) -> Team:
    team = await oversight.team(session, now=now)
    return Team(
        agents=[
            TeamAgent(
                id=line.agent.id,
                name=line.agent.name,
                role=line.agent.role,
                status=line.agent.status,
                connected=line.connected,
                load=line.load,
                capacity=line.agent.capacity,
                skills=_levels(line),
            )
            for line in team.agents
        ],
        skills=[
            TeamSkill(
                id=line.skill.id,
                slug=line.skill.slug,
                name=line.skill.name,
                waiting=line.waiting,
                longest_wait_seconds=_seconds(line),
                agents_online=line.agents_online,
            )
            for line in team.skills
            if line.skill is not None
        ],
    )


@router.get(
    "/supervisor/overview",
    summary="The supervisor view",
    description="Each queue with its service level, every active agent with the chats they "
    "hold, the open escalated chats and the queue. Supervisors and admins.",
    responses=responses(401, 403, 503),
)
async def get_overview(_staff: StaffAgent, session: SessionDep, now: NowDep) -> Overview:
    view = await oversight.overview(session, now=now)
    return Overview(
        generated_at=now,
        skills=[
            OverviewSkill(
                id=None if line.skill is None else line.skill.id,
                slug=None if line.skill is None else line.skill.slug,
                name="No skill" if line.skill is None else line.skill.name,
                waiting=line.waiting,
                longest_wait_seconds=_seconds(line),
                sla=Sla(
                    target_seconds=line.target.seconds,
                    target_percent=line.target.percent,
                    state=line.sla_state.value,
                ),
                agents_online=line.agents_online,
                agents_available=line.agents_available,
            )
            for line in view.skills
        ],
        agents=[
            OverviewAgent(
                id=line.agent.id,
                name=line.agent.name,
                role=line.agent.role,
                status=line.agent.status,
                connected=line.connected,
                load=line.load,
                capacity=line.agent.capacity,
                chats=[
                    HeldChat(
                        id=chat.id,
                        visitor_name=chat.visitor_name,
                        assigned_at=chat.assigned_at,
                        awaiting_reply_since=chat.awaiting_reply_since,
                        escalated=chat.escalated,
                        sla=_chat_sla(chat.sla),
                    )
                    for chat in line.chats
                ],
            )
            for line in view.agents
        ],
        escalated=[
            EscalatedChat(
                id=chat.id,
                visitor_name=chat.visitor_name,
                agent=None
                if chat.agent_id is None or chat.agent_name is None
                else AgentRef(id=chat.agent_id, name=chat.agent_name),
                escalated_at=chat.escalated_at,
                reason=chat.reason,
                state=chat.state,
            )
            for chat in view.escalated
        ],
        queued=[
            QueuedChat(
                id=chat.id,
                visitor_name=chat.visitor_name,
                skill_slug=chat.skill_slug,
                queued_at=chat.queued_at,
                priority=chat.priority,
                escalated=chat.escalated,
                sla=_chat_sla(chat.sla),
            )
            for chat in view.queued
        ],
    )
