"""Supervisor oversight (docs/handoff.md#supervisor-oversight): reading any chat (the
permission check of `monitor`; the following itself is per socket, in `app.realtime`), a
private word to the agent holding a chat (`whisper`), barging in beside the agent and leaving
(`barge`, `leave`), taking over any open chat (`take`), and giving a chat to another agent
(`reassign`).

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored through `chat`, notices to publish after the commit), like
`chat.service`. The order of locks is the conversation's row, then its pending transfer and
offers, then agents' rows, as everywhere (docs/architecture.md#invariants). Imports `escalation`
(the escalated take), `transfers` and `summaries` of its siblings.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import participants, transfers
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat.errors import (
    AlreadyTaken,
    ConversationClosed,
    ConversationNotFound,
    NotAssigned,
    NotParticipant,
    TransferTargetUnavailable,
)
from app.chat.log import append_event
from app.chat.service import Ack, Actor, Outcome
from app.errors import Forbidden
from app.handoff.escalation import supervisor_take
from app.handoff.summaries import _summary_event, build
from app.handoff.transfers import SUPERVISOR_ROLES
from app.routing import repository as routing_repository
from app.store.models import (
    Agent,
    AgentStatus,
    Conversation,
    ConversationState,
    OfferState,
    SenderType,
    TransferState,
    Visibility,
)


async def _supervisor(session: AsyncSession, actor: Actor, doing: str) -> Agent:
    """The acting supervisor or admin.

    Raises:
        Forbidden: a visitor, an agent, or an account deactivated meanwhile.
    """
    me = await session.get(Agent, actor.id) if actor.is_agent else None
    if me is None or not me.is_active or me.role not in SUPERVISOR_ROLES:
        raise Forbidden(f"Only supervisors and admins {doing}.")
    return me


async def _lock_open(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation:
    """The conversation's row, locked, if it is not closed.

    Raises:
        ConversationNotFound, ConversationClosed.
    """
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if conversation.state is ConversationState.CLOSED:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation_id)
        )
    return conversation


async def _clear_the_way(
    session: AsyncSession, conversation: Conversation, *, reason: str, now: datetime
) -> Outcome:
    """Before a supervisor moves a locked chat: its pending transfer or escalation is
    cancelled (receivers withdrawn, reason `taken`; the requester told `reason`) and its
    pending routing offers withdrawn (reason `taken`)."""
    outcome = Outcome(conversation_id=conversation.id)
    pending = await transfers.pending_of(session, conversation.id)
    if pending is not None:
        events, notices = transfers.end(
            session, conversation, pending, state=TransferState.CANCELLED, reason=reason,
            now=now, withdraw_reason="taken",
        )  # fmt: skip
        outcome.events.extend(events)
        outcome.notices.extend(notices)
    for offer in await routing_repository.pending_offers_of(session, conversation.id):
        offer.state = OfferState.CANCELLED
        offer.decided_at = now
        outcome.notices.append(
            (
                f"agent:{offer.agent_id}",
                {"t": "offer_withdrawn", "offer_id": str(offer.id), "reason": "taken"},
            )
        )
    return outcome


async def _move_to(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    *,
    reason: str,
    now: datetime,
    by: Agent | None,
) -> Outcome:
    """The locked chat moves to `agent`: `agent.left` (`reason`) for the agent holding it,
    if any, then `conversation.assigned` and `agent.joined`, and their sockets follow it."""
    outcome = Outcome(conversation_id=conversation.id)
    if conversation.state is ConversationState.ASSIGNED and conversation.agent_id is not None:
        previous = await session.get(Agent, conversation.agent_id)
        outcome.events.append(
            chat_service.agent_left(
                session, conversation, agent=previous, agent_id=conversation.agent_id,
                reason=reason, now=now,
            )
        )  # fmt: skip
    # A chat cold-transferred to a queue and moved before routing gave it to anyone: the cold
    # transfer ends with this agent, as it would with routing's.
    cold = await transfers.settle_cold(session, conversation, agent.id, now=now)
    sender = (
        None
        if cold is None or cold.from_agent_id is None
        else await session.get(Agent, cold.from_agent_id)
    )
    outcome.merge(
        await chat_service.hand_over(
            session, conversation, agent, now=now, transfer=cold, from_agent=sender, by=by
        )
    )
    return outcome


# -- monitor ----------------------------------------------------------------------------------


async def check_monitor(session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID) -> None:
    """Whether `actor` may monitor the conversation: a supervisor or admin, an open chat.
    Monitoring stores nothing: the socket follows the chat (`app.realtime.oversight_frames`).

    Raises:
        Forbidden, ConversationNotFound, ConversationClosed.
    """
    await _supervisor(session, actor, "monitor chats")
    conversation = await chat_repository.get(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if conversation.state is ConversationState.CLOSED:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation_id)
        )


# -- whisper ----------------------------------------------------------------------------------


async def whisper(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    client_msg_id: str,
    text: str,
    now: datetime,
) -> Outcome:
    """A supervisor's private word to the agent holding the chat: the agents-only `whisper`
    event (`{"text", "to": {"id", "name"}}`). A resend is acked once, as for `message`.

    Raises:
        Forbidden, ConversationNotFound, ConversationClosed, NotAssigned (nobody holds it).
    """
    me = await _supervisor(session, actor, "whisper")
    outcome = Outcome(conversation_id=conversation_id)
    earlier = await chat_repository.find_by_client_msg_id(
        session, conversation_id, actor.kind, actor.id, client_msg_id
    )
    if earlier is not None:
        outcome.ack = Ack(conversation_id, earlier.seq, client_msg_id, duplicate=True)
        return outcome
    conversation = await _lock_open(session, conversation_id)
    holder = (
        await session.get(Agent, conversation.agent_id)
        if conversation.state is ConversationState.ASSIGNED and conversation.agent_id
        else None
    )
    if holder is None:
        raise NotAssigned(
            "Nobody holds this chat: there is no agent to whisper to.",
            conversation_id=str(conversation_id),
            state=conversation.state.value,
        )
    event = append_event(
        session,
        conversation,
        kind=kinds.WHISPER,
        now=now,
        body={"text": text, "to": {"id": str(holder.id), "name": holder.name}},
        sender_type=SenderType.AGENT,
        sender_id=me.id,
        sender_name=me.name,
        client_msg_id=client_msg_id,
        visibility=Visibility.AGENTS,
    )
    outcome.events.append(event)
    outcome.ack = Ack(conversation.id, event.seq, client_msg_id, duplicate=False)
    await session.flush()
    return outcome


# -- barge and leave --------------------------------------------------------------------------


async def barge(
    session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID, now: datetime
) -> Outcome:
    """A supervisor joins the open chat beside its agent (or while it waits): the
    `supervisor.joined` event, seen by the visitor, and every socket of theirs follows it.

    Raises:
        Forbidden, ConversationNotFound, ConversationClosed, AlreadyParticipant.
    """
    me = await _supervisor(session, actor, "barge into chats")
    conversation = await _lock_open(session, conversation_id)
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(await participants.join(session, conversation, me, now=now))
    outcome.notices.append((f"agent:{me.id}", chat_service.join_notice(conversation.id)))
    await session.flush()
    return outcome


async def leave(
    session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID, now: datetime
) -> Outcome:
    """A barged-in supervisor leaves: `supervisor.left`; their sockets stop following the
    chat when they receive it (unless they monitor it). Any agent present may leave, so that
    one whose role changed meanwhile is not stuck in the chat.

    Raises:
        Forbidden (a visitor), ConversationNotFound, ConversationClosed, NotParticipant.
    """
    me = await session.get(Agent, actor.id) if actor.is_agent else None
    if me is None:
        raise Forbidden("Only agents leave a chat they barged into.")
    conversation = await _lock_open(session, conversation_id)
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(await participants.leave(session, conversation, me, now=now))
    await session.flush()
    return outcome


# -- take -------------------------------------------------------------------------------------


async def take(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    """The `take` frame (docs/protocol.md#take): an offline chat by any agent within capacity
    (`chat.service.take_offline`), an escalated open chat by a supervisor (`supervisor_take`),
    and any other open chat by a supervisor (`take_over`). What else an agent asks for is
    refused as `take_offline` refuses it (`not_offline`).

    The choice is made on an unlocked read; each path locks the row and checks again.
    """
    seen = await chat_repository.get(session, conversation_id)
    if (
        seen is not None
        and seen.escalated_at is not None
        and seen.state is not ConversationState.OFFLINE
    ):
        return await supervisor_take(
            session, actor=actor, conversation_id=conversation_id, now=now, ttl=ttl
        )
    if seen is not None and seen.state in (ConversationState.QUEUED, ConversationState.ASSIGNED):
        me = await session.get(Agent, actor.id) if actor.is_agent else None
        if me is not None and me.is_active and me.role in SUPERVISOR_ROLES:
            return await take_over(session, actor=actor, conversation_id=conversation_id, now=now)
    return await chat_service.take_offline(
        session, actor=actor, conversation_id=conversation_id, now=now
    )


async def take_over(
    session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID, now: datetime
) -> Outcome:
    """A supervisor takes an open chat that was not escalated, from the queue or from its
    agent (who gets `agent.left`, reason `taken_over`, and their capacity back). Capacity,
    status and skills are not checked. Their own participation, if they barged in, ends.

    Raises:
        Forbidden, ConversationNotFound, ConversationClosed, NotParticipant (they hold it
        already), AlreadyTaken (another supervisor or admin holds it: two takes at once).
    """
    me = await _supervisor(session, actor, "take over chats")
    conversation = await _lock_open(session, conversation_id)
    holder = (
        await session.get(Agent, conversation.agent_id)
        if conversation.state is ConversationState.ASSIGNED and conversation.agent_id
        else None
    )
    if holder is not None and holder.id == me.id:
        raise NotParticipant("You already hold this chat.", conversation_id=str(conversation_id))
    if holder is not None and holder.role in SUPERVISOR_ROLES:
        # Of two supervisors taking the same chat, the second is told rather than taking it
        # over their colleague's head (`reassign` is the deliberate way).
        raise AlreadyTaken(
            f"{holder.name} has this chat already.",
            conversation_id=str(conversation_id),
            agent={"id": str(holder.id), "name": holder.name},
        )
    outcome = await _clear_the_way(
        session, conversation, reason=f"{me.name} took the chat over.", now=now
    )
    outcome.merge(await _move_to(session, conversation, me, reason="taken_over", now=now, by=None))
    await session.flush()
    return outcome


# -- reassign ---------------------------------------------------------------------------------


async def reassign(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    agent_id: uuid.UUID,
    now: datetime,
) -> Outcome:
    """A supervisor gives an open chat to a named agent: active, `online` or `away`, with a
    socket open on some node, and not its holder; capacity is not checked (the supervisor
    decides). A `handoff.summary` first, so the new holder has the context; then `agent.left`
    (reason `reassigned`) for the previous holder, and `conversation.assigned` (with `by`)
    and `agent.joined` for the new one, whose sockets follow the chat from seq 1.

    Raises:
        Forbidden, ConversationNotFound, ConversationClosed, TransferTargetUnavailable
        (`details.reason`: `unknown`, `inactive`, `not_connected` or `holder`).
    """
    me = await _supervisor(session, actor, "reassign chats")
    conversation = await _lock_open(session, conversation_id)
    if conversation.state is ConversationState.ASSIGNED and conversation.agent_id == agent_id:
        raise TransferTargetUnavailable(
            "That agent holds this chat already.", agent_id=str(agent_id), reason="holder"
        )
    outcome = await _clear_the_way(
        session, conversation, reason=f"{me.name} reassigned the chat.", now=now
    )
    # Lock order: the conversation (above), its transfer and offers, then the agent's row.
    locked = await routing_repository.lock_agent_load(session, agent_id)
    target = None if locked is None else locked[0]
    _check_target(target, agent_id)
    assert target is not None  # noqa: S101 - _check_target refused None
    if not await routing_repository.is_connected(session, target.id):
        raise TransferTargetUnavailable(
            f"{target.name} is not connected; choose someone who is.",
            agent_id=str(agent_id),
            reason="not_connected",
            status=target.status.value,
        )
    summary = await build(session, conversation, now=now, note=None)
    outcome.events.append(_summary_event(session, conversation, summary, transfer_id=None, now=now))
    outcome.merge(
        await _move_to(session, conversation, target, reason="reassigned", now=now, by=me)
    )
    await session.flush()
    return outcome


def _check_target(target: Agent | None, agent_id: uuid.UUID) -> None:
    """Raises TransferTargetUnavailable for an unknown, deactivated or offline agent."""
    details: dict[str, Any] = {"agent_id": str(agent_id)}
    if target is None:
        raise TransferTargetUnavailable("There is no such agent.", reason="unknown", **details)
    if not target.is_active:
        raise TransferTargetUnavailable(
            f"{target.name} is deactivated.", reason="inactive", **details
        )
    if target.status is AgentStatus.OFFLINE:
        raise TransferTargetUnavailable(
            f"{target.name} is offline; choose someone who is connected.",
            reason="not_connected",
            status=target.status.value,
            **details,
        )
