"""How a pending transfer ends (docs/handoff.md#how-it-ends): a receiver accepts or declines,
the requester cancels, or nobody answers in time; and the agents-only text written around it
(docs/handoff.md#internal-notes).

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat import transfers
from app.chat.errors import (
    AtCapacity,
    ConversationClosed,
    ConversationNotFound,
    NotParticipant,
    TransferNotFound,
    TransferNotPending,
)
from app.chat.log import append_event
from app.chat.service import Ack, Actor, Outcome
from app.errors import Forbidden
from app.handoff.escalation import _after_move
from app.handoff.transfers import OPEN, SUPERVISOR_ROLES, _move
from app.routing import repository as routing_repository
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    SenderType,
    Transfer,
    TransferKind,
    TransferState,
    Visibility,
)

# -- receivers' answers -----------------------------------------------------------------------


async def _lock_offered(
    session: AsyncSession, actor: Actor, transfer_id: uuid.UUID, now: datetime
) -> tuple[Transfer, Conversation]:
    seen = await session.get(Transfer, transfer_id)
    if seen is None or not actor.is_agent or str(actor.id) not in seen.receivers:
        raise TransferNotFound("No such transfer offered to you.", transfer_id=str(transfer_id))
    conversation = await chat_repository.get_for_update(session, seen.conversation_id)
    transfer = await session.scalar(
        select(Transfer)
        .where(Transfer.id == transfer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if conversation is None or transfer is None:
        raise TransferNotFound("No such transfer offered to you.", transfer_id=str(transfer_id))
    state = transfer.state.value
    if transfer.state is TransferState.PENDING and str(actor.id) in transfer.declined_by:
        state = "declined"
    elif (
        transfer.state is TransferState.PENDING
        and transfer.expires_at is not None
        and transfer.expires_at <= now
    ):
        state = "expired"
    if state != TransferState.PENDING.value:
        raise TransferNotPending(
            f"This transfer is {state}.", transfer_id=str(transfer_id), state=state
        )
    return transfer, conversation


async def accept(
    session: AsyncSession,
    *,
    actor: Actor,
    transfer_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    """A receiver takes the chat: it moves to them now.

    Raises:
        TransferNotFound, TransferNotPending, AtCapacity, ConversationClosed.
    """
    transfer, conversation = await _lock_offered(session, actor, transfer_id, now)
    if conversation.state not in OPEN:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation.id)
        )
    locked = await routing_repository.lock_agent_load(session, actor.id)
    if locked is None or not locked[0].is_active:
        raise TransferNotFound("No such transfer offered to you.", transfer_id=str(transfer_id))
    agent, load = locked
    reserved = 1 if transfer.to_agent_id == agent.id else 0  # their slot, held by the offer
    supervising = agent.role in SUPERVISOR_ROLES  # supervisors take what is handed to them
    if not supervising and load - reserved >= agent.capacity:
        raise AtCapacity(
            f"You are at capacity ({load - reserved} of {agent.capacity}); close a chat first.",
            load=load - reserved,
            capacity=agent.capacity,
        )
    outcome = await _move(session, conversation, transfer, agent, now=now)
    for agent_id in transfer.receivers:
        if agent_id != str(agent.id) and agent_id not in transfer.declined_by:
            outcome.notices.append(transfers.withdrawn(agent_id, transfer, "taken"))
    told = transfers.result(transfer, by={"id": str(agent.id), "name": agent.name}, reason=None)
    if told is not None:
        outcome.notices.append(told)
    await session.flush()
    outcome.merge(await _after_move(session, conversation, now=now, ttl=ttl))
    return outcome


async def decline(
    session: AsyncSession,
    *,
    actor: Actor,
    transfer_id: uuid.UUID,
    reason: str | None,
    now: datetime,
) -> Outcome:
    """A receiver turns the transfer down. When every receiver has, the chat stays with the
    requester, who is told why.

    Raises:
        TransferNotFound, TransferNotPending.
    """
    transfer, conversation = await _lock_offered(session, actor, transfer_id, now)
    transfer.declined_by = [*transfer.declined_by, str(actor.id)]
    outcome = Outcome(conversation_id=conversation.id)
    outcome.notices.append(transfers.withdrawn(str(actor.id), transfer, "declined"))
    if any(agent_id not in transfer.declined_by for agent_id in transfer.receivers):
        await session.flush()
        return outcome  # other supervisors still hold it
    text = (reason or "").strip() or f"{actor.name} declined."
    events, notices = transfers.end(
        session,
        conversation,
        transfer,
        state=TransferState.DECLINED,
        reason=text,
        now=now,
        by={"id": str(actor.id), "name": actor.name},
        withdraw_reason="declined",
    )
    outcome.events.extend(events)
    outcome.notices.extend(n for n in notices if n[0] != f"agent:{actor.id}")
    await session.flush()
    return outcome


async def cancel(
    session: AsyncSession, *, actor: Actor, transfer_id: uuid.UUID, now: datetime
) -> Outcome:
    """The requester takes their transfer back.

    Raises:
        TransferNotFound, TransferNotPending, Forbidden (an escalation).
    """
    seen = await session.get(Transfer, transfer_id)
    if seen is None or seen.from_agent_id != actor.id:
        raise TransferNotFound("No such transfer of yours.", transfer_id=str(transfer_id))
    if seen.kind is TransferKind.ESCALATION:
        raise Forbidden(
            "An escalation is for the supervisors to answer; it cannot be withdrawn.",
            transfer_id=str(transfer_id),
        )
    conversation = await chat_repository.get_for_update(session, seen.conversation_id)
    transfer = await transfers.pending_of(session, seen.conversation_id)
    if conversation is None or transfer is None or transfer.id != transfer_id:
        await session.refresh(seen)  # its state now, not as first read
        state = seen.state.value
        raise TransferNotPending(
            f"This transfer is {state}.", transfer_id=str(transfer_id), state=state
        )
    events, notices = transfers.end(
        session,
        conversation,
        transfer,
        state=TransferState.CANCELLED,
        reason=f"{actor.name} cancelled it.",
        now=now,
        by={"id": str(actor.id), "name": actor.name},
        withdraw_reason="cancelled",
    )
    outcome = Outcome(conversation_id=conversation.id, events=events)
    outcome.notices.extend(notices)
    await session.flush()
    return outcome


async def expire_due(session: AsyncSession, *, now: datetime, limit: int = 100) -> Outcome:
    """End every pending transfer past its time; each chat stays where it was."""
    outcome = Outcome()
    # Conversations first, as every path locks them, and those another node (or a frame
    # handler) holds right now are skipped: they are looked at again within a second.
    due = await session.scalars(
        select(Conversation)
        .where(
            Conversation.id.in_(
                select(Transfer.conversation_id).where(
                    Transfer.state == TransferState.PENDING, Transfer.expires_at <= now
                )
            )
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    for conversation in list(due):
        transfer = await transfers.pending_of(session, conversation.id)
        if transfer is None or transfer.expires_at is None or transfer.expires_at > now:
            continue
        waited = int((transfer.expires_at - transfer.created_at).total_seconds())
        names = await _names(
            session, [r for r in transfer.receivers if r not in transfer.declined_by]
        )
        events, notices = transfers.end(
            session,
            conversation,
            transfer,
            state=TransferState.EXPIRED,
            reason=f"No answer from {_who(names)} within {waited} s.",
            now=now,
            withdraw_reason="expired",
        )
        outcome.events.extend(events)
        outcome.notices.extend(notices)
    await session.flush()
    return outcome


NAMES_SHOWN = 3  # receivers named in an expiry's reason; more are counted


def _who(names: list[str]) -> str:
    """ "Sue", "Sue and Sam", "Sue, Sam and Lee", or "any of the 5 receivers"."""
    if not names:
        return "anybody"
    if len(names) > NAMES_SHOWN:
        return f"any of the {len(names)} receivers"
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


async def _names(session: AsyncSession, agent_ids: Sequence[str]) -> list[str]:
    if not agent_ids:
        return []
    rows = await session.scalars(
        select(Agent.name)
        .where(Agent.id.in_([uuid.UUID(a) for a in agent_ids]))
        .order_by(Agent.name)
    )
    return list(rows)


# -- agents-only text -------------------------------------------------------------------------


async def internal_message(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    client_msg_id: str,
    text: str,
    now: datetime,
) -> Outcome:
    """Agents-only text in the chat's log: the private talk of a pending transfer (requester
    and receivers), or an internal note (the holder, or a supervisor). Resends are acked once.

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    if not actor.is_agent:
        raise NotParticipant("Only agents write internal messages.")
    outcome = Outcome(conversation_id=conversation_id)
    earlier = await chat_repository.find_by_client_msg_id(
        session, conversation_id, actor.kind, actor.id, client_msg_id
    )
    if earlier is not None:
        outcome.ack = Ack(conversation_id, earlier.seq, client_msg_id, duplicate=True)
        return outcome
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if conversation.state is ConversationState.CLOSED:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation_id)
        )
    pending = await transfers.pending_of(session, conversation.id, lock=False)
    me = str(actor.id)
    in_transfer = pending is not None and (
        pending.from_agent_id == actor.id
        or (me in pending.receivers and me not in pending.declined_by)
    )
    holder = conversation.agent_id == actor.id and conversation.state is ConversationState.ASSIGNED
    if not in_transfer and not holder:
        agent = await session.get(Agent, actor.id)
        if agent is None or agent.role not in SUPERVISOR_ROLES:
            raise NotParticipant(
                "You are not part of this conversation.", conversation_id=str(conversation_id)
            )
    body: dict[str, Any] = {"text": text}
    if in_transfer and pending is not None:
        body["transfer_id"] = str(pending.id)
    event = append_event(
        session,
        conversation,
        kind=kinds.TRANSFER_CHAT if in_transfer else kinds.NOTE,
        now=now,
        body=body,
        sender_type=SenderType.AGENT,
        sender_id=actor.id,
        sender_name=actor.name,
        client_msg_id=client_msg_id,
        visibility=Visibility.AGENTS,
    )
    outcome.events.append(event)
    outcome.ack = Ack(conversation.id, event.seq, client_msg_id, duplicate=False)
    await session.flush()
    return outcome
