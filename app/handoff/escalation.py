"""Escalation to supervisors (docs/handoff.md#escalation): asked for by the agent, by the
customer's own words or by the rules (docs/handoff.md#by-rules), and supervisors taking an
escalated chat (docs/handoff.md#taking-an-escalated-chat). `requests` and `answers` import
`_after_move` from here, the transfer-count rule checked once a chat has moved; this module
imports only `transfers` and `summaries` of its siblings.

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol, cast

from sqlalchemy import BindParameter, Executable, and_, bindparam, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat import transfers
from app.chat.errors import AlreadyTaken, ConversationNotFound, NotParticipant
from app.chat.log import append_event
from app.chat.service import Actor, Outcome
from app.handoff.rules import (
    HANDLE,
    SENTIMENT,
    TRANSFERS,
    WAIT,
    ChatFacts,
    EscalationPolicy,
    asks_for_manager,
    escalation_due,
)
from app.handoff.summaries import (
    SCORES,
    FoundRepeat,
    _scorer,
    _summary_event,
    build,
    find_repeat,
    record_repeat,
    stored_settings,
)
from app.handoff.transfers import (
    OPEN,
    SUPERVISOR_ROLES,
    Started,
    Target,
    _move,
    _online_supervisors,
    _open_transfer,
    _requested,
)
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Transfer,
    TransferKind,
    TransferState,
    Visibility,
)

# -- escalation -------------------------------------------------------------------------------


async def escalation_policy(session: AsyncSession) -> EscalationPolicy:
    """The stored escalation settings, at most `summaries.SETTINGS_TTL_SECONDS` old."""
    return (await stored_settings(session)).policy


async def escalate(
    session: AsyncSession,
    conversation: Conversation,
    *,
    by: str,
    reason: str,
    now: datetime,
    ttl: timedelta,
    agent: Agent | None = None,
    rule: str | None = None,
    phrase: str | None = None,
) -> tuple[Outcome, Started]:
    """Mark a locked, open conversation escalated and offer it to the online supervisors.

    `by` is "agent", "visitor" or "rule". A pending warm transfer gives way to the escalation.
    With no supervisor online the chat is still marked: it is first in their list
    (`GET /v1/escalations`) when they come.
    """
    outcome = Outcome(conversation_id=conversation.id)
    pending = await transfers.pending_of(session, conversation.id)
    if pending is not None and pending.kind is TransferKind.ESCALATION:
        # Already offered to the supervisors: nothing more to do.
        return outcome, Started(pending.id, conversation.id, "escalation", (), pending.expires_at)
    if pending is not None:
        events, notices = transfers.end(
            session,
            conversation,
            pending,
            state=TransferState.CANCELLED,
            reason="The chat was escalated to the supervisors.",
            now=now,
            withdraw_reason="cancelled",
        )
        outcome.events.extend(events)
        outcome.notices.extend(notices)
    first = conversation.escalated_at is None
    if first:
        conversation.escalated_at = now
        conversation.escalation_reason = reason[:500]
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.ESCALATED,
            now=now,
            body={
                "by": by,
                "reason": reason,
                "rule": rule,
                "phrase": phrase,
                "agent": None if agent is None else {"id": str(agent.id), "name": agent.name},
            },
            sender_type=SenderType.AGENT if agent is not None else SenderType.SYSTEM,
            sender_id=None if agent is None else agent.id,
            sender_name=None if agent is None else agent.name,
            visibility=Visibility.AGENTS,
        )
    )
    holder = (
        None if conversation.agent_id is None else await session.get(Agent, conversation.agent_id)
    )
    exclude = {conversation.agent_id} if conversation.agent_id is not None else set()
    receivers = await _online_supervisors(session, exclude)
    if not receivers:
        await session.flush()
        return outcome, Started(None, conversation.id, "escalation", (), None)
    opened, started = await _open_transfer(
        session,
        conversation,
        kind=TransferKind.ESCALATION,
        from_agent=holder if conversation.state is ConversationState.ASSIGNED else None,
        receivers=receivers,
        target=Target(supervisors=True),
        to={"supervisors": True},
        to_agent_id=None,
        to_skill_id=None,
        note=None,
        reason=reason,
        now=now,
        ttl=ttl,
    )
    outcome.merge(opened)
    return outcome, started


async def escalate_by_agent(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    reason: str | None,
    now: datetime,
    ttl: timedelta,
) -> tuple[Outcome, Started]:
    """The holding agent's one action: "this needs a supervisor".

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    conversation = await chat_service.load_owned(session, actor, conversation_id)
    me = await session.get(Agent, actor.id)
    text = (reason or "").strip() or f"Escalated by {actor.name}."
    return await escalate(
        session, conversation, by="agent", reason=text, now=now, ttl=ttl, agent=me
    )


# -- supervisors ------------------------------------------------------------------------------


async def supervisor_take(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    """A supervisor takes an escalated open chat from the queue or from its agent.

    Raises:
        ConversationNotFound, NotParticipant (not a supervisor, or not escalated).
    """
    me = await session.get(Agent, actor.id)
    if me is None or not me.is_active or me.role not in SUPERVISOR_ROLES:
        raise NotParticipant("Only supervisors take escalated chats.")
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None or conversation.state not in OPEN:
        raise ConversationNotFound(
            "No such open conversation.", conversation_id=str(conversation_id)
        )
    if conversation.escalated_at is None:
        raise NotParticipant(
            "This chat is not escalated; ask its agent to transfer it.",
            conversation_id=str(conversation_id),
        )
    if conversation.agent_id == me.id and conversation.state is ConversationState.ASSIGNED:
        raise NotParticipant("You already hold this chat.", conversation_id=str(conversation_id))
    holder = (
        await session.get(Agent, conversation.agent_id)
        if conversation.state is ConversationState.ASSIGNED and conversation.agent_id
        else None
    )
    if holder is not None and holder.role in SUPERVISOR_ROLES:
        # Another supervisor took it first (two takes at once, or a take after an accept):
        # the second is told, not handed the chat over their colleague's head.
        raise AlreadyTaken(
            f"{holder.name} has this chat already.",
            conversation_id=str(conversation_id),
            agent={"id": str(holder.id), "name": holder.name},
        )
    outcome = Outcome(conversation_id=conversation.id)
    pending = await transfers.pending_of(session, conversation.id)
    if (
        pending is not None
        and str(me.id) in pending.receivers
        and str(me.id) not in pending.declined_by
    ):
        transfer = pending
    else:
        if pending is not None:
            events, notices = transfers.end(
                session, conversation, pending, state=TransferState.CANCELLED,
                reason=f"{me.name} took the chat.", now=now, withdraw_reason="taken",
            )  # fmt: skip
            outcome.events.extend(events)
            outcome.notices.extend(notices)
        holder = (
            await session.get(Agent, conversation.agent_id)
            if conversation.state is ConversationState.ASSIGNED and conversation.agent_id
            else None
        )
        transfer = Transfer(
            id=uuid.uuid4(),
            conversation_id=conversation.id,
            kind=TransferKind.ESCALATION,
            state=TransferState.PENDING,
            from_agent_id=None if holder is None else holder.id,
            to_supervisors=True,
            reason=conversation.escalation_reason,
            receivers=[str(me.id)],
            declined_by=[],
            created_at=now,
        )
        session.add(transfer)
        outcome.events.append(
            _requested(
                session,
                conversation,
                transfer,
                from_agent=holder,
                to={"supervisors": True},
                now=now,
                taken_by=me,
            )
        )
        summary = await build(session, conversation, now=now, note=None)
        outcome.events.append(
            _summary_event(session, conversation, summary, transfer_id=transfer.id, now=now)
        )
    outcome.merge(await _move(session, conversation, transfer, me, now=now))
    for agent_id in transfer.receivers:
        if agent_id != str(me.id) and agent_id not in transfer.declined_by:
            outcome.notices.append(transfers.withdrawn(agent_id, transfer, "taken"))
    told = transfers.result(
        transfer, by={"id": str(me.id), "name": me.name}, reason="taken by a supervisor"
    )
    if told is not None:
        outcome.notices.append(told)
    await session.flush()
    return outcome


# -- the rules: after a move, after a customer's message, and on a timer ----------------------


def _only(policy: EscalationPolicy, *rules: str) -> EscalationPolicy:
    """The policy with every rule but `rules` switched off: a rule checked here must not be
    hidden by another that holds too but is checked elsewhere."""
    return replace(
        policy,
        wait_seconds=policy.wait_seconds if WAIT in rules else None,
        handle_seconds=policy.handle_seconds if HANDLE in rules else None,
        max_transfers=policy.max_transfers if TRANSFERS in rules else None,
        sentiment_below=policy.sentiment_below if SENTIMENT in rules else None,
    )


class _ChatRow(Protocol):
    """What the rules read of a conversation: its row, or those columns of it."""

    state: ConversationState
    waiting_since: datetime | None
    queued_at: datetime | None
    created_at: datetime
    assigned_at: datetime | None
    transfer_count: int
    escalated_at: datetime | None


def _facts(conversation: _ChatRow, scores: Sequence[float]) -> ChatFacts:
    return ChatFacts(
        state=conversation.state.value,
        queued_at=conversation.waiting_since or conversation.queued_at or conversation.created_at,
        assigned_at=conversation.assigned_at,
        transfer_count=conversation.transfer_count,
        escalated=conversation.escalated_at is not None,
        customer_scores=tuple(scores),
    )


async def _after_move(
    session: AsyncSession, conversation: Conversation, *, now: datetime, ttl: timedelta
) -> Outcome:
    """The transfer-count rule, checked when a chat has moved."""
    policy = _only(await escalation_policy(session), TRANSFERS)
    trigger = escalation_due(_facts(conversation, ()), policy, now)
    if trigger is None:
        return Outcome()
    outcome, _ = await escalate(
        session, conversation, by="rule", reason=trigger.reason, rule=trigger.rule, now=now,
        ttl=ttl,
    )  # fmt: skip
    return outcome


_CHAT_COLUMNS = (
    Conversation.state,
    Conversation.waiting_since,
    Conversation.queued_at,
    Conversation.created_at,
    Conversation.assigned_at,
    Conversation.transfer_count,
    Conversation.escalated_at,
)


@functools.lru_cache(maxsize=32)
def _unlocked_read(window: int) -> Executable:
    """The statement of `_read_unlocked()`, built once per window size (building it costs
    about as much CPU as running it)."""
    chat: BindParameter[uuid.UUID] = bindparam("conversation_id")
    if window < 1:
        return select(*_CHAT_COLUMNS).where(Conversation.id == chat)
    said = (
        select(ConversationEvent.seq, ConversationEvent.body)
        .where(
            ConversationEvent.conversation_id == chat,
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.VISITOR,
        )
        .order_by(ConversationEvent.seq.desc())
        .limit(window)
        .subquery()
    )
    # One row per message (the conversation's columns repeated), or one with no message.
    return (
        select(*_CHAT_COLUMNS, said.c.seq, said.c.body)
        .select_from(Conversation)
        .outerjoin(said, true())
        .where(Conversation.id == chat)
    )


async def _read_unlocked(
    session: AsyncSession, conversation_id: uuid.UUID, *, window: int
) -> tuple[_ChatRow, list[tuple[int, str]]] | None:
    """The conversation's columns the rules read and, with `window` > 0, the customer's last
    `window` messages as (seq, text), oldest first: one statement, no lock."""
    rows = (
        await session.execute(_unlocked_read(window), {"conversation_id": conversation_id})
    ).all()
    if not rows:
        return None
    if window < 1:
        return cast(_ChatRow, rows[0]), []
    messages = sorted(
        (row.seq, str((row.body or {}).get("text", ""))) for row in rows if row.seq is not None
    )
    return cast(_ChatRow, rows[0]), messages


async def after_customer_message(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    text: str,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    """What a customer's new message may set off: an escalation (they asked for a manager,
    or their mood fell below the threshold) and the "repeated themselves" check after a
    transfer. Runs in a unit of work of its own, after the one that stored the message.

    Decided on an unlocked read (the policy from the process's cache, the conversation, the
    customer's last messages with their scores from `summaries.SCORES`); the conversation's
    row is locked only when something is to be stored, and the decision is checked again
    under the lock: a chat closed or escalated meanwhile gets nothing, and the rule is
    evaluated on the row as locked."""
    policy = await escalation_policy(session)
    window = 0 if policy.sentiment_below is None else policy.sentiment_window
    read = await _read_unlocked(session, conversation_id, window=window)
    if read is None or read[0].state is ConversationState.CLOSED:
        return Outcome()
    seen, said = read
    repeat: FoundRepeat | None = None
    if seen.transfer_count > 0:
        catalogue = (await stored_settings(session)).catalogue
        repeat = await find_repeat(session, conversation_id, catalogue=catalogue)
    phrase: str | None = None
    scores: list[float] = []
    sentiment = False
    if seen.escalated_at is None:
        phrase = asks_for_manager(text, policy.phrases)
        if phrase is None and policy.sentiment_below is not None:
            scores = SCORES.scores(_scorer(session), conversation_id, said)
            sentiment = (
                escalation_due(_facts(seen, scores), _only(policy, SENTIMENT), now) is not None
            )
    if repeat is None and phrase is None and not sentiment:
        return Outcome()
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None or conversation.state is ConversationState.CLOSED:
        return Outcome()
    outcome = Outcome(conversation_id=conversation.id)
    if repeat is not None:
        outcome.merge(await record_repeat(session, conversation, repeat, now=now))
    if conversation.escalated_at is not None:
        return outcome
    if phrase is not None:
        escalated, _ = await escalate(
            session, conversation, by="visitor", reason=f"The customer asked for {phrase!r}.",
            phrase=phrase, now=now, ttl=ttl,
        )  # fmt: skip
        outcome.merge(escalated)
        return outcome
    if not sentiment:
        return outcome
    trigger = escalation_due(_facts(conversation, scores), _only(policy, SENTIMENT), now)
    if trigger is not None:
        escalated, _ = await escalate(
            session, conversation, by="rule", reason=trigger.reason, rule=trigger.rule, now=now,
            ttl=ttl,
        )  # fmt: skip
        outcome.merge(escalated)
    return outcome


async def watch_rules(
    session: AsyncSession, *, now: datetime, ttl: timedelta, limit: int = 50
) -> Outcome:
    """Escalate chats that waited in the queue, or stayed with one agent, past the limits."""
    policy = await escalation_policy(session)
    clauses = []
    if policy.wait_seconds is not None:
        clauses.append(
            and_(
                Conversation.state == ConversationState.QUEUED,
                Conversation.waiting_since <= now - timedelta(seconds=policy.wait_seconds),
            )
        )
    if policy.handle_seconds is not None:
        clauses.append(
            and_(
                Conversation.state == ConversationState.ASSIGNED,
                Conversation.assigned_at <= now - timedelta(seconds=policy.handle_seconds),
            )
        )
    if not clauses:
        return Outcome()
    # Locked here, skipping rows another node or a frame handler holds: they are looked at
    # again within a second.
    due = await session.scalars(
        select(Conversation)
        .where(Conversation.escalated_at.is_(None), or_(*clauses))
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    outcome = Outcome()
    for conversation in list(due):
        if conversation.escalated_at is not None:
            continue
        trigger = escalation_due(_facts(conversation, ()), _only(policy, WAIT, HANDLE), now)
        if trigger is None:
            continue
        escalated, _ = await escalate(
            session, conversation, by="rule", reason=trigger.reason, rule=trigger.rule, now=now,
            ttl=ttl,
        )  # fmt: skip
        outcome.merge(escalated)
    await session.flush()
    return outcome
