"""A transfer as every handoff uses it: agents' warm transfers, escalations and supervisors'
takes (docs/handoff.md#warm-transfer). Where it goes (`Target`), what the requester is told
(`Started`), opening a pending transfer with its summary and offering it to its receivers
(docs/handoff.md#what-the-receiver-sees), and moving the chat to whoever takes it.

Every function runs inside the caller's unit of work and never commits; what it stores and
the notices to publish after the commit go into an `Outcome`, like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat import transfers
from app.chat.events import StoredEvent, iso
from app.chat.log import append_event
from app.chat.service import Outcome, agent_ref, join_notice
from app.handoff.summaries import _summary_event, build
from app.routing import repository as routing_repository
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    OfferState,
    Role,
    SenderType,
    Skill,
    Transfer,
    TransferKind,
    TransferState,
    Visibility,
    Visitor,
)

SUPERVISOR_ROLES = (Role.SUPERVISOR, Role.ADMIN)
OPEN = (ConversationState.QUEUED, ConversationState.ASSIGNED, ConversationState.OFFLINE)


@dataclass(frozen=True, slots=True)
class Target:
    """Where a transfer goes: exactly one of a named agent, a skill (by slug), or supervisors.
    A cold transfer with no target goes back to the chat's own skill queue."""

    agent_id: uuid.UUID | None = None
    skill: str | None = None
    supervisors: bool = False


@dataclass(frozen=True, slots=True)
class Started:
    """What the requesting agent is told a transfer or escalation started as."""

    transfer_id: uuid.UUID | None
    conversation_id: uuid.UUID
    mode: str  # "warm", "cold" or "escalation"
    receivers: tuple[dict[str, Any], ...]
    expires_at: datetime | None

    def frame(self) -> dict[str, Any]:
        return {
            "type": "transfer_started",
            "transfer_id": None if self.transfer_id is None else str(self.transfer_id),
            "conversation_id": str(self.conversation_id),
            "mode": self.mode,
            "receivers": list(self.receivers),
            "expires_at": None if self.expires_at is None else iso(self.expires_at),
        }


# -- offering a transfer ----------------------------------------------------------------------


async def _online_supervisors(session: AsyncSession, exclude: set[uuid.UUID]) -> list[Agent]:
    ids = [a for a in await routing_repository.online_supervisors(session) if a not in exclude]
    if not ids:
        return []
    rows = await session.scalars(select(Agent).where(Agent.id.in_(ids)).order_by(Agent.name))
    return list(rows)


def _offer_frame(
    transfer: Transfer,
    conversation: Conversation,
    *,
    from_agent: Agent | None,
    visitor: Visitor | None,
    skill: Skill | None,
    summary: dict[str, Any],
) -> dict[str, Any]:
    return {
        "type": "transfer_offer",
        "transfer_id": str(transfer.id),
        "conversation_id": str(conversation.id),
        "mode": transfer.kind.value,
        "from_agent": None
        if from_agent is None
        else {"id": str(from_agent.id), "name": from_agent.name},
        "note": transfer.note,
        "reason": transfer.reason,
        "expires_at": None if transfer.expires_at is None else iso(transfer.expires_at),
        "visitor": {
            "id": str(conversation.visitor_id),
            "name": None if visitor is None else visitor.name,
        },
        "skill": None if skill is None else {"id": skill.id, "name": skill.name},
        "escalated": conversation.escalated_at is not None,
        "summary": summary,
    }


async def offer_frame(
    session: AsyncSession, transfer: Transfer, conversation: Conversation
) -> dict[str, Any]:
    """The `transfer_offer` frame a receiver gets (docs/protocol.md#transfer_offer)."""
    from_agent = (
        None if transfer.from_agent_id is None else await session.get(Agent, transfer.from_agent_id)
    )
    skill = (
        None if conversation.skill_id is None else await session.get(Skill, conversation.skill_id)
    )
    return _offer_frame(
        transfer,
        conversation,
        from_agent=from_agent,
        visitor=await session.get(Visitor, conversation.visitor_id),
        skill=skill,
        summary=await chat_repository.latest_summary(session, conversation.id),
    )


def _requested(
    session: AsyncSession,
    conversation: Conversation,
    transfer: Transfer,
    *,
    from_agent: Agent | None,
    to: dict[str, Any],
    now: datetime,
    taken_by: Agent | None = None,
) -> StoredEvent:
    """The `transfer.requested` event of a transfer just made."""
    body: dict[str, Any] = {
        "transfer_id": str(transfer.id),
        "kind": transfer.kind.value,
        "from_agent": None
        if from_agent is None
        else {"id": str(from_agent.id), "name": from_agent.name},
        "to": to,
        "note": transfer.note,
        "reason": transfer.reason,
        "receivers": list(transfer.receivers),
        "expires_at": None if transfer.expires_at is None else iso(transfer.expires_at),
    }
    actor = taken_by or from_agent
    if taken_by is not None:
        body["taken_by"] = {"id": str(taken_by.id), "name": taken_by.name}
    return append_event(
        session,
        conversation,
        kind=kinds.TRANSFER_REQUESTED,
        now=now,
        body=body,
        sender_type=SenderType.SYSTEM if actor is None else SenderType.AGENT,
        sender_id=None if actor is None else actor.id,
        sender_name=None if actor is None else actor.name,
        visibility=Visibility.AGENTS,
    )


async def _open_transfer(
    session: AsyncSession,
    conversation: Conversation,
    *,
    kind: TransferKind,
    from_agent: Agent | None,
    receivers: Sequence[Agent],
    target: Target,
    to: dict[str, Any],
    to_agent_id: uuid.UUID | None,
    to_skill_id: int | None,
    note: str | None,
    reason: str | None,
    now: datetime,
    ttl: timedelta,
) -> tuple[Outcome, Started]:
    """Store a pending transfer with its summary and offer it to `receivers`."""
    transfer = Transfer(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        kind=kind,
        state=TransferState.PENDING,
        from_agent_id=None if from_agent is None else from_agent.id,
        to_agent_id=to_agent_id,
        to_skill_id=to_skill_id,
        to_supervisors=target.supervisors,
        note=note,
        reason=reason,
        receivers=[str(agent.id) for agent in receivers],
        declined_by=[],
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(transfer)
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(
        _requested(session, conversation, transfer, from_agent=from_agent, to=to, now=now)
    )
    summary = await build(session, conversation, now=now, note=note)
    stored = _summary_event(session, conversation, summary, transfer_id=transfer.id, now=now)
    outcome.events.append(stored)
    await session.flush()
    skill = (
        None if conversation.skill_id is None else await session.get(Skill, conversation.skill_id)
    )
    frame = _offer_frame(
        transfer,
        conversation,
        from_agent=from_agent,
        visitor=await session.get(Visitor, conversation.visitor_id),
        skill=skill,
        summary={"text": stored.body["text"], "data": stored.body["summary"]},
    )
    for agent in receivers:
        # The receiver reads the whole transcript before accepting: their sockets follow it.
        outcome.notices.append((f"agent:{agent.id}", join_notice(conversation.id)))
        outcome.notices.append((f"agent:{agent.id}", {"t": "frame", "frame": frame}))
    started = Started(
        transfer_id=transfer.id,
        conversation_id=conversation.id,
        mode=kind.value,
        receivers=tuple({"id": str(a.id), "name": a.name} for a in receivers),
        expires_at=transfer.expires_at,
    )
    return outcome, started


async def pending_offer_frames(session: AsyncSession, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """The `transfer_offer` frames still pending for an agent (sent again after a reconnect)."""
    frames = []
    for transfer in await transfers.pending_for_receiver(session, agent_id):
        if str(agent_id) in transfer.declined_by:
            continue
        conversation = await chat_repository.get(session, transfer.conversation_id)
        if conversation is not None:
            frames.append(await offer_frame(session, transfer, conversation))
    return frames


# -- moving the chat --------------------------------------------------------------------------


async def _move(
    session: AsyncSession,
    conversation: Conversation,
    transfer: Transfer,
    agent: Agent,
    *,
    now: datetime,
) -> Outcome:
    """The chat moves to `agent` in this transaction: the previous holder leaves, the new one
    joins and the visitor is told they have the context. Loads are counted from held chats,
    so both agents' capacity changes with this one commit."""
    outcome = Outcome(conversation_id=conversation.id)
    previous = conversation.agent_id
    previous_agent = None if previous is None else await session.get(Agent, previous)
    for offer in await routing_repository.pending_offers_of(session, conversation.id):
        offer.state = OfferState.CANCELLED
        offer.decided_at = now
        outcome.notices.append(
            (
                f"agent:{offer.agent_id}",
                {"t": "offer_withdrawn", "offer_id": str(offer.id), "reason": "taken"},
            )
        )
    # A chat cold-transferred and then taken by a supervisor before routing gave it to anyone:
    # the cold transfer ends with them.
    await transfers.settle_cold(session, conversation, agent.id, now=now)
    if transfer.to_skill_id is not None:
        # Transferred to another team: the chat needs their skill from now on.
        conversation.skill_id = transfer.to_skill_id
    transfer.state = TransferState.ACCEPTED
    transfer.decided_at = now
    transfer.accepted_by = agent.id
    transfer.skill_id = conversation.skill_id
    transfer.moved_seq = conversation.last_seq
    conversation.transfer_count += 1
    ref = agent_ref(agent)
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.TRANSFER_ACCEPTED,
            now=now,
            body={"transfer_id": str(transfer.id), "agent": {"id": ref["id"], "name": ref["name"]}},
            sender_type=SenderType.AGENT,
            sender_id=agent.id,
            sender_name=agent.name,
            visibility=Visibility.AGENTS,
        )
    )
    if previous is not None and conversation.state is ConversationState.ASSIGNED:
        outcome.events.append(
            chat_service.agent_left(
                session,
                conversation,
                agent=previous_agent,
                agent_id=previous,
                reason="transferred",
                now=now,
            )
        )
    outcome.merge(
        await chat_service.hand_over(
            session, conversation, agent, now=now, transfer=transfer, from_agent=previous_agent
        )
    )
    return outcome
