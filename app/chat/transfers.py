"""The pending transfer of a conversation, as the chat lifecycle needs it: find it, and end it
when the chat closes or its agent leaves. Starting, accepting and declining transfers is
`app.handoff.service` (docs/handoff.md); this module sits below it so that `chat.service`
can end a transfer without importing the layer above.

Runs inside the caller's unit of work; the caller holds the conversation's row.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat.events import StoredEvent
from app.chat.log import append_event
from app.store.models import Conversation, Transfer, TransferKind, TransferState, Visibility


async def pending_of(
    session: AsyncSession, conversation_id: uuid.UUID, *, lock: bool = True
) -> Transfer | None:
    """The conversation's pending transfer, if any (there is at most one)."""
    query = select(Transfer).where(
        Transfer.conversation_id == conversation_id, Transfer.state == TransferState.PENDING
    )
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query.limit(1))


async def pending_for_receiver(session: AsyncSession, agent_id: uuid.UUID) -> list[Transfer]:
    """Pending transfers offered to this agent, oldest first."""
    rows = await session.scalars(
        select(Transfer)
        .where(Transfer.state == TransferState.PENDING)
        .order_by(Transfer.created_at, Transfer.id)
    )
    # Receivers are a short JSON list; pending transfers are few at any moment.
    return [t for t in rows if str(agent_id) in t.receivers]


async def is_receiver(
    session: AsyncSession, conversation_id: uuid.UUID, agent_id: uuid.UUID
) -> bool:
    """Whether the agent is offered this conversation's pending transfer."""
    pending = await pending_of(session, conversation_id, lock=False)
    me = str(agent_id)
    return pending is not None and me in pending.receivers and me not in pending.declined_by


def withdrawn(agent_id: str, transfer: Transfer, reason: str) -> tuple[str, dict[str, Any]]:
    """The notice that takes a transfer offer off a receiver's screen."""
    return (
        f"agent:{agent_id}",
        {
            "t": "frame",
            "frame": {
                "type": "transfer_withdrawn",
                "transfer_id": str(transfer.id),
                "conversation_id": str(transfer.conversation_id),
                "reason": reason,
            },
        },
    )


def result(
    transfer: Transfer, *, by: dict[str, Any] | None, reason: str | None
) -> tuple[str, dict[str, Any]] | None:
    """The notice telling the requesting agent how their transfer ended."""
    if transfer.from_agent_id is None:
        return None
    return (
        f"agent:{transfer.from_agent_id}",
        {
            "t": "frame",
            "frame": {
                "type": "transfer_result",
                "transfer_id": str(transfer.id),
                "conversation_id": str(transfer.conversation_id),
                "state": transfer.state.value,
                "by": by,
                "reason": reason,
            },
        },
    )


STATE_KINDS = {
    TransferState.DECLINED: kinds.TRANSFER_DECLINED,
    TransferState.EXPIRED: kinds.TRANSFER_EXPIRED,
    TransferState.CANCELLED: kinds.TRANSFER_CANCELLED,
}


def end(
    session: AsyncSession,
    conversation: Conversation,
    transfer: Transfer,
    *,
    state: TransferState,
    reason: str,
    now: datetime,
    by: dict[str, Any] | None = None,
    withdraw_reason: str | None = None,
) -> tuple[list[StoredEvent], list[tuple[str, dict[str, Any]]]]:
    """End a pending transfer without a move (declined, expired or cancelled): the chat stays
    where it is, the receivers' offers are withdrawn and the requester is told why.
    """
    transfer.state = state
    transfer.decided_at = now
    transfer.reason = reason[:500]  # the column's size: a reason never fails the transaction
    body: dict[str, Any] = {"transfer_id": str(transfer.id), "reason": reason}
    if by is not None:
        body["agent"] = by
    event = append_event(
        session,
        conversation,
        kind=STATE_KINDS[state],
        now=now,
        body=body,
        visibility=Visibility.AGENTS,
    )
    notices = [
        withdrawn(agent_id, transfer, withdraw_reason or state.value)
        for agent_id in transfer.receivers
        if agent_id not in transfer.declined_by
    ]
    told = result(transfer, by=by, reason=reason)
    if told is not None:
        notices.append(told)
    return [event], notices


async def end_pending(
    session: AsyncSession, conversation: Conversation, *, reason: str, now: datetime
) -> tuple[list[StoredEvent], list[tuple[str, dict[str, Any]]]]:
    """Cancel the chat's pending warm transfer or escalation (the chat closed, or its agent
    left)."""
    pending = await pending_of(session, conversation.id)
    if pending is None:
        return [], []
    return end(
        session,
        conversation,
        pending,
        state=TransferState.CANCELLED,
        reason=reason,
        now=now,
        withdraw_reason="conversation_closed"
        if conversation.state.value == "closed"
        else "agent_left",
    )


async def drop_receiver(
    session: AsyncSession, agent_id: uuid.UUID, *, now: datetime
) -> tuple[list[StoredEvent], list[tuple[str, dict[str, Any]]]]:
    """An agent who went away can no longer accept: their transfer offers end as if they had
    declined (the requester is told when nobody is left)."""
    events: list[StoredEvent] = []
    notices: list[tuple[str, dict[str, Any]]] = []
    me = str(agent_id)
    for seen in await pending_for_receiver(session, agent_id):
        conversation = await session.scalar(
            select(Conversation)
            .where(Conversation.id == seen.conversation_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        transfer = await pending_of(session, seen.conversation_id)
        if conversation is None or transfer is None or transfer.id != seen.id:
            continue
        if me in transfer.declined_by:
            continue
        transfer.declined_by = [*transfer.declined_by, me]
        if transfer.to_agent_id == agent_id:
            transfer.to_agent_id = None  # their reserved slot is free again
        notices.append(withdrawn(me, transfer, "agent_left"))
        if all(r in transfer.declined_by for r in transfer.receivers):
            ended, told = end(
                session,
                conversation,
                transfer,
                state=TransferState.EXPIRED,
                reason="The receiver went offline.",
                now=now,
                withdraw_reason="agent_left",
            )
            events.extend(ended)
            notices.extend(n for n in told if n[0] != f"agent:{me}")
    return events, notices


async def settle_cold(
    session: AsyncSession, conversation: Conversation, agent_id: uuid.UUID, *, now: datetime
) -> Transfer | None:
    """A chat cold-transferred to a queue reached an agent: record who took it; the
    "repeated themselves" check reads from here. Returns that cold transfer, if any.

    A cold transfer is done (`accepted`) when it is made: it is never pending, so nothing can
    cancel it; it waits here only for the agent who takes the chat next."""
    if conversation.transfer_count == 0:
        return None
    cold = await session.scalar(
        select(Transfer)
        .where(
            Transfer.conversation_id == conversation.id,
            Transfer.kind == TransferKind.COLD,
            Transfer.state == TransferState.ACCEPTED,
            Transfer.accepted_by.is_(None),
        )
        .order_by(Transfer.created_at.desc())
        .limit(1)
    )
    if cold is None:
        return None
    cold.accepted_by = agent_id
    cold.skill_id = conversation.skill_id
    cold.moved_seq = conversation.last_seq
    return cold
