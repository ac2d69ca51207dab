"""`/api/v1/conversations/{id}/routing`: why a chat went to whom (docs/api.md#routing-explanation).

Answers from the conversation's stored `routing.decided` events (who was chosen, the rule that
chose them, everyone passed over and why) and, for a chat still waiting, what the planner
would decide right now.
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
from app.chat import events as kinds
from app.chat import service as chat_service
from app.chat.errors import ConversationNotFound
from app.chat.events import iso
from app.chat.service import Actor
from app.routing import service as routing_service
from app.store.models import ConversationEvent, ConversationState, Role, SenderType

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
    responses=responses(401, 503),
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


@router.get(
    "/{conversation_id}/routing",
    summary="Why a conversation went to whom",
    description="Supervisors and admins may ask about any conversation; an agent about the "
    "conversations they hold or held.",
    responses=responses(401, 404, 503),
)
async def routing_explanation(
    conversation_id: uuid.UUID, agent: CurrentAgent, session: SessionDep, now: NowDep
) -> RoutingExplanation:
    conversation = await chat_service.get(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if agent.role is Role.AGENT and not await chat_service.may_read(
        session, actor=Actor(SenderType.AGENT, agent.id, agent.name), conversation=conversation
    ):
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
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
