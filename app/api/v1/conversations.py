"""`/api/v1/conversations/…`: why a chat went to whom (docs/api.md#routing-explanation), the
messages left for later (docs/api.md#offline-conversations), and what an agent sees beside a
chat (docs/api.md#conversation-context).

The routing explanation answers from the conversation's stored `routing.decided` events (who
was chosen, the rule that chose them, everyone passed over and why) and, for a chat still
waiting, what the planner would decide right now. The context is read by `chat.context`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from app.api.deps import CurrentAgent, NowDep, SessionDep
from app.api.errors import responses
from app.chat import context as chat_context
from app.chat import events as kinds
from app.chat import service as chat_service
from app.chat.errors import ConversationNotFound
from app.chat.events import iso
from app.chat.service import Actor
from app.routing import service as routing_service
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    Role,
    SenderType,
)

router = APIRouter(prefix="/conversations", tags=["conversations"])


class RoutingDecision(BaseModel):
    seq: int
    at: datetime
    chosen: str | None
    offered_to: list[str] = Field(
        description="Every agent who was offered the chat by this decision (several in "
        "broadcast mode)."
    )
    rule: str
    step: str
    considered: list[str]
    passed_over: list[dict[str, Any]]


class RoutingExplanation(BaseModel):
    conversation_id: uuid.UUID
    state: str
    skill: dict[str, Any] | None = Field(
        description="The required skill and why (topic, page, message or none)."
    )
    decisions: list[RoutingDecision] = Field(description="Every routing decision, oldest first.")
    offers: list[dict[str, Any]] = Field(description="Offer outcomes: offered, declined, expired.")
    steps: list[dict[str, Any]] = Field(
        description="Escalation steps that came into force while it waited, in order."
    )
    waiting_now: dict[str, Any] | None = Field(
        description="For a queued chat: what the planner decides at this moment, and why."
    )


class OfflineConversation(BaseModel):
    id: uuid.UUID
    visitor: dict[str, Any] = Field(description="id, name and email as the visitor gave them.")
    skill_id: int | None
    reason: str | None = Field(description='"outside_hours" or "no_agents".')
    left_at: datetime = Field(description="When the visitor was told nobody could answer.")
    preview: str | None = Field(description="The visitor's latest words, cut to 200 characters.")
    last_seq: int


@router.get(
    "/offline",
    summary="Messages left for later",
    description="Conversations that arrived when nobody could take them (outside business "
    "hours, nobody online for their skill), oldest first. An agent takes one with the `take` "
    "frame of `/ws/v1/agent`. Agents see those of their skills and those without a skill; "
    "supervisors and admins see all.",
    responses=responses(401, 403, 422, 503),
)
async def offline_conversations(
    agent: CurrentAgent,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[OfflineConversation]:
    rows = await chat_service.offline_list(session, agent=agent, limit=limit)
    return [
        OfflineConversation(
            id=row.conversation.id,
            visitor={
                "id": str(row.conversation.visitor_id),
                "name": row.visitor_name,
                "email": row.visitor_email,
            },
            skill_id=row.conversation.skill_id,
            reason=row.conversation.offline_reason,
            left_at=row.conversation.queued_at or row.conversation.created_at,
            preview=row.preview,
            last_seq=row.conversation.last_seq,
        )
        for row in rows
    ]


async def readable_conversation(
    session: SessionDep, conversation_id: uuid.UUID, agent: Agent
) -> Conversation:
    """The conversation, if `agent` may read it: supervisors and admins any, an agent one they
    hold or held or are offered the transfer of. The same 404 otherwise, so ids of other
    agents' chats are not probeable."""
    conversation = await chat_service.get(session, conversation_id)
    if conversation is None or (
        agent.role is Role.AGENT
        and not await chat_service.may_read(
            session, actor=Actor(SenderType.AGENT, agent.id, agent.name), conversation=conversation
        )
    ):
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    return conversation


@router.get(
    "/{conversation_id}/routing",
    summary="Why a conversation went to whom",
    description="Supervisors and admins may ask about any conversation; an agent about the "
    "conversations they hold or held.",
    responses=responses(401, 403, 404, 422, 503),
)
async def routing_explanation(
    conversation_id: uuid.UUID, agent: CurrentAgent, session: SessionDep, now: NowDep
) -> RoutingExplanation:
    conversation = await readable_conversation(session, conversation_id, agent)
    rows = (
        await session.scalars(
            select(ConversationEvent)
            .where(
                ConversationEvent.conversation_id == conversation_id,
                ConversationEvent.kind.in_(
                    [
                        kinds.OPENED,
                        kinds.ROUTING_DECIDED,
                        kinds.OFFERED,
                        kinds.OFFER_DECLINED,
                        kinds.OFFER_EXPIRED,
                        kinds.ROUTING_STEP,
                    ]
                ),
            )
            .order_by(ConversationEvent.seq)
        )
    ).all()
    skill = next((r.body.get("skill") or None for r in rows if r.kind == kinds.OPENED), None)
    decisions = [
        RoutingDecision(
            seq=r.seq,
            at=r.created_at,
            chosen=r.body.get("chosen"),
            offered_to=list(
                r.body.get("offered_to") or ([r.body["chosen"]] if r.body.get("chosen") else [])
            ),
            rule=r.body.get("rule", ""),
            step=r.body.get("step", "default"),
            considered=list(r.body.get("considered", [])),
            passed_over=list(r.body.get("passed_over", [])),
        )
        for r in rows
        if r.kind == kinds.ROUTING_DECIDED
    ]
    offers = [
        {
            "seq": r.seq,
            "kind": r.kind,
            "at": iso(r.created_at),
            **r.body,
        }
        for r in rows
        if r.kind in (kinds.OFFERED, kinds.OFFER_DECLINED, kinds.OFFER_EXPIRED)
    ]
    steps = [
        {"seq": r.seq, "at": iso(r.created_at), **r.body}
        for r in rows
        if r.kind == kinds.ROUTING_STEP
    ]
    waiting_now = None
    if conversation.state is ConversationState.QUEUED:
        waiting_now = routing_service.explain(
            await routing_service.decide(session, conversation, now=now)
        )
    return RoutingExplanation(
        conversation_id=conversation.id,
        state=conversation.state.value,
        skill=skill,
        decisions=decisions,
        offers=offers,
        steps=steps,
        waiting_now=waiting_now,
    )


# --- context -----------------------------------------------------------------------------------


class Ref(BaseModel):
    id: uuid.UUID
    name: str


class SkillRef(BaseModel):
    id: int
    slug: str
    name: str


class Participant(BaseModel):
    id: uuid.UUID
    name: str
    joined_at: datetime


class Escalation(BaseModel):
    at: datetime
    reason: str | None


class ContextVisitor(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None
    external_id: str | None = Field(description="Their id on the host site, when verified.")
    verified: bool = Field(description="A valid identity token signed by the host site vouched.")
    attributes: dict[str, Any] = Field(
        description="Free-form facts the widget sent (pre-chat answers, plan, locale, ...)."
    )
    created_at: datetime
    last_seen_at: datetime


class ContextSummary(BaseModel):
    text: str | None = Field(description="The summary as an agent reads it.")
    data: dict[str, Any] | None = Field(description="The structured summary (docs/handoff.md).")
    seq: int = Field(description="The seq of its `handoff.summary` event.")


class EarlierConversation(BaseModel):
    id: uuid.UUID
    created_at: datetime
    closed_at: datetime | None
    agent_name: str | None = Field(description="Who held it last; null if nobody did.")
    preview: str | None = Field(description="The visitor's first message, cut to 200 characters.")
    rating: int | None
    disposition: str | None
    tags: list[str]


class ConversationContextOut(BaseModel):
    id: uuid.UUID
    state: ConversationState
    created_at: datetime
    queued_at: datetime | None
    assigned_at: datetime | None
    closed_at: datetime | None
    page_url: str | None
    skill: SkillRef | None
    priority: int
    agent: Ref | None = Field(description="Who holds it (or last held it, once closed).")
    participants: list[Participant] = Field(
        description="Supervisors who barged in and are present now, first to join first."
    )
    tags: list[str]
    disposition: str | None
    escalated: Escalation | None
    transfer_count: int
    visitor: ContextVisitor
    summary: ContextSummary | None = Field(
        description="The latest context summary (written at each transfer and escalation)."
    )
    earlier: list[EarlierConversation] = Field(
        description="The visitor's 10 most recent other conversations, newest first."
    )


@router.get(
    "/{conversation_id}/context",
    summary="What an agent sees beside a chat",
    description="The conversation, its visitor (with the pre-chat answers), its latest "
    "context summary, the supervisors present and the visitor's earlier conversations. "
    "Supervisors and admins may ask about any conversation; an agent about those they hold or "
    "held, or are offered the transfer of.",
    responses=responses(401, 403, 404, 422, 503),
)
async def conversation_context(
    conversation_id: uuid.UUID, agent: CurrentAgent, session: SessionDep
) -> ConversationContextOut:
    found = await chat_context.load(
        session, await readable_conversation(session, conversation_id, agent)
    )
    conversation, visitor, skill = found.conversation, found.visitor, found.skill
    if visitor is None:  # deleted since the conversation was read (its chats go with it)
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    return ConversationContextOut(
        id=conversation.id,
        state=conversation.state,
        created_at=conversation.created_at,
        queued_at=conversation.queued_at,
        assigned_at=conversation.assigned_at,
        closed_at=conversation.closed_at,
        page_url=conversation.page_url,
        skill=None if skill is None else SkillRef(id=skill.id, slug=skill.slug, name=skill.name),
        priority=conversation.priority,
        agent=None
        if conversation.agent_id is None or found.agent_name is None
        else Ref(id=conversation.agent_id, name=found.agent_name),
        participants=[
            Participant(id=p.agent_id, name=p.name, joined_at=p.joined_at)
            for p in found.participants
        ],
        tags=list(conversation.tags or ()),
        disposition=conversation.disposition,
        escalated=None
        if conversation.escalated_at is None
        else Escalation(at=conversation.escalated_at, reason=conversation.escalation_reason),
        transfer_count=conversation.transfer_count,
        visitor=ContextVisitor(
            id=visitor.id,
            name=visitor.name,
            email=visitor.email,
            external_id=visitor.external_id,
            verified=visitor.verified_at is not None,
            attributes=dict(visitor.attributes or {}),
            created_at=visitor.created_at,
            last_seen_at=visitor.last_seen_at,
        ),
        summary=None
        if found.summary is None
        else ContextSummary(
            text=found.summary.text, data=found.summary.data, seq=found.summary.seq
        ),
        earlier=[
            EarlierConversation(
                id=e.conversation.id,
                created_at=e.conversation.created_at,
                closed_at=e.conversation.closed_at,
                agent_name=e.agent_name,
                preview=e.preview,
                rating=e.conversation.rating,
                disposition=e.conversation.disposition,
                tags=list(e.conversation.tags or ()),
            )
            for e in found.earlier
        ],
    )
