"""Warm and cold transfers, escalation to supervisors, and the context summary stored with
them (docs/handoff.md).

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat import transfers
from app.chat.errors import (
    AtCapacity,
    ConversationClosed,
    ConversationNotFound,
    NotParticipant,
    TransferNotFound,
    TransferNotPending,
    TransferPending,
    TransferTargetUnavailable,
)
from app.chat.events import StoredEvent, iso
from app.chat.log import append_event
from app.chat.service import Ack, Actor, Outcome, agent_ref, join_notice
from app.handoff.repeats import repeats_after_transfer
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
from app.handoff.sentiment import DEFAULT_SCORER, Scorer
from app.handoff.summary import (
    EarlierConversation,
    EventView,
    Summary,
    SummaryInput,
    VisitorView,
    build_summary,
)
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    Offer,
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

# Earlier conversations of the visitor linked from a summary.
EARLIER_LIMIT = 5
# Customer messages after a transfer checked for a restatement: a repeat that late is a new
# question, not the cost of a bad handoff.
REPEAT_WINDOW = 10
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


# -- the sentiment scorer ---------------------------------------------------------------------

_SCORER = "warmline.handoff.scorer"


def load_scorer(spec: str | None) -> Scorer:
    """The scorer named by "package.module:name" (an object with `score`, or a class making
    one), or the built-in lexicon scorer when `spec` is empty.

    Raises:
        ValueError: the spec names nothing importable, or nothing that scores.
    """
    if not spec:
        return DEFAULT_SCORER
    module_name, _, attribute = spec.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute or "scorer")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"WARMLINE_SENTIMENT_SCORER={spec!r} cannot be imported: {exc}") from exc
    scorer = found() if isinstance(found, type) else found
    if not callable(getattr(scorer, "score", None)):
        raise ValueError(f"WARMLINE_SENTIMENT_SCORER={spec!r} has no score(text) method.")
    return cast(Scorer, scorer)


def use_scorer(session: AsyncSession, scorer: Scorer) -> None:
    """Make `scorer` the one this unit of work rates customers' messages with."""
    session.info[_SCORER] = scorer


def _scorer(session: AsyncSession) -> Scorer:
    found: Scorer = session.info.get(_SCORER, DEFAULT_SCORER)
    return found


# -- the context summary ----------------------------------------------------------------------


def _view(row: ConversationEvent) -> EventView:
    return EventView(
        seq=row.seq,
        kind=row.kind,
        sender_type=row.sender_type.value,
        sender_id=None if row.sender_id is None else str(row.sender_id),
        sender_name=row.sender_name,
        visibility=row.visibility.value,
        body=row.body or {},
        created_at=row.created_at,
    )


async def _transcript(session: AsyncSession, conversation_id: uuid.UUID) -> list[EventView]:
    rows = await session.scalars(
        select(ConversationEvent)
        .where(ConversationEvent.conversation_id == conversation_id)
        .order_by(ConversationEvent.seq)
    )
    return [_view(row) for row in rows]


async def _earlier(session: AsyncSession, conversation: Conversation) -> list[EarlierConversation]:
    rows = await session.execute(
        select(Conversation, Skill.name, Agent.name)
        .outerjoin(Skill, Skill.id == Conversation.skill_id)
        .outerjoin(Agent, Agent.id == Conversation.agent_id)
        .where(
            Conversation.visitor_id == conversation.visitor_id,
            Conversation.id != conversation.id,
        )
        .order_by(Conversation.created_at.desc())
        .limit(EARLIER_LIMIT)
    )
    return [
        EarlierConversation(
            id=str(row.id),
            opened_at=row.created_at,
            closed_at=row.closed_at,
            skill_name=skill_name,
            agent_name=agent_name,
        )
        for row, skill_name, agent_name in rows
    ]


async def build(
    session: AsyncSession, conversation: Conversation, *, now: datetime, note: str | None
) -> Summary:
    """The context summary of a conversation as it stands (`handoff.summary.build_summary`
    over its whole log and its visitor's record)."""
    visitor = await session.get(Visitor, conversation.visitor_id)
    settings = await routing_repository.routing_settings(session)
    skill_name = (
        None
        if conversation.skill_id is None
        else await session.scalar(select(Skill.name).where(Skill.id == conversation.skill_id))
    )
    attributes = {} if visitor is None else dict(visitor.attributes or {})
    view = VisitorView(
        id=str(conversation.visitor_id),
        name=None if visitor is None else visitor.name,
        email=None if visitor is None else visitor.email,
        external_id=None if visitor is None else visitor.external_id,
        verified=visitor is not None and visitor.verified_at is not None,
        priority=0 if visitor is None else visitor.priority,
        attributes={k: v for k, v in attributes.items() if isinstance(v, str | int | float | bool)},
    )
    return build_summary(
        SummaryInput(
            events=await _transcript(session, conversation.id),
            visitor=view,
            now=now,
            skill_name=skill_name,
            earlier=await _earlier(session, conversation),
            transfer_note=note,
            catalogue=tuple(settings.product_catalogue or ()),
            scorer=_scorer(session),
        )
    )


def _summary_event(
    session: AsyncSession,
    conversation: Conversation,
    summary: Summary,
    *,
    transfer_id: uuid.UUID | None,
    now: datetime,
) -> StoredEvent:
    return append_event(
        session,
        conversation,
        kind=kinds.SUMMARY,
        now=now,
        body={
            "transfer_id": None if transfer_id is None else str(transfer_id),
            "text": summary.text(),
            "summary": summary.to_json(),
        },
        visibility=Visibility.AGENTS,
    )


# -- starting a transfer ----------------------------------------------------------------------


async def _skill(session: AsyncSession, slug: str) -> Skill:
    skill = await session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        raise TransferTargetUnavailable(f"There is no skill {slug!r}.", skill=slug)
    return skill


def _to(target: Target, agent: Agent | None, skill: Skill | None) -> dict[str, Any]:
    if target.supervisors:
        return {"supervisors": True}
    if agent is not None and target.agent_id is not None:
        return {"agent": {"id": str(agent.id), "name": agent.name}}
    if skill is not None:
        return {"skill": {"id": skill.id, "name": skill.name}}
    return {}


async def _declined_before(session: AsyncSession, conversation_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(Transfer.declined_by).where(Transfer.conversation_id == conversation_id)
    )
    return {uuid.UUID(agent_id) for declined in rows for agent_id in declined or ()}


async def _named_receiver(session: AsyncSession, actor: Actor, agent_id: uuid.UUID) -> Agent:
    if agent_id == actor.id:
        raise TransferTargetUnavailable("You cannot transfer a chat to yourself.")
    locked = await routing_repository.lock_agent_load(session, agent_id)
    if locked is None or not locked[0].is_active:
        raise TransferTargetUnavailable("There is no such agent.", agent_id=str(agent_id))
    agent, load = locked
    if agent.status.value != "online" or not await routing_repository.is_connected(
        session, agent.id
    ):
        raise TransferTargetUnavailable(
            f"{agent.name} is not online; choose someone who is.",
            agent_id=str(agent_id),
            status=agent.status.value,
        )
    if load >= agent.capacity and agent.role not in SUPERVISOR_ROLES:
        raise TransferTargetUnavailable(
            f"{agent.name} is at capacity ({load} of {agent.capacity}).",
            agent_id=str(agent_id),
            load=load,
            capacity=agent.capacity,
        )
    return agent


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


async def request_transfer(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    target: Target,
    cold: bool,
    note: str | None,
    now: datetime,
    ttl: timedelta,
    offers: routing_service.OfferPolicy,
) -> tuple[Outcome, Started]:
    """The holding agent hands the chat on: warm (offered to a named agent, the best agent of a
    skill, or the supervisors, while the chat stays with them) or cold (back to a skill queue
    at the front, summary attached).

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed, TransferPending,
        TransferTargetUnavailable.
    """
    conversation = await chat_service.load_owned(session, actor, conversation_id)
    if not actor.is_agent:
        raise NotParticipant("Only the agent holding a chat can transfer it.")
    pending = await transfers.pending_of(session, conversation.id)
    if pending is not None:
        raise TransferPending(
            "This chat already has a transfer pending; cancel it first.",
            transfer_id=str(pending.id),
        )
    me = await session.get(Agent, actor.id)
    assert me is not None  # noqa: S101 - the holder's row is kept by its foreign key
    if cold:
        return await _cold(session, conversation, me, target, note, now=now, ttl=ttl, offers=offers)
    exclude = {actor.id} | await _declined_before(session, conversation.id)
    named: Agent | None = None
    skill: Skill | None = None
    if target.agent_id is not None:
        named = await _named_receiver(session, actor, target.agent_id)
        receivers = [named]
    elif target.skill is not None:
        skill = await _skill(session, target.skill)
        chosen = await routing_service.choose_agent(
            session, conversation, skill_id=skill.id, exclude=frozenset(exclude), now=now
        )
        if chosen is None:
            raise TransferTargetUnavailable(
                f"No agent with the skill {skill.name} is free now; try a cold transfer to "
                "queue the chat for them.",
                skill=skill.slug,
            )
        receivers = [chosen]
    else:
        receivers = await _online_supervisors(session, {actor.id})
        if not receivers:
            raise TransferTargetUnavailable(
                "No supervisor is online; escalate the chat to mark it for them."
            )
    single = receivers[0] if not target.supervisors else None
    return await _open_transfer(
        session,
        conversation,
        kind=TransferKind.WARM,
        from_agent=me,
        receivers=receivers,
        target=target,
        to=_to(target, named, skill),
        to_agent_id=None if single is None else single.id,
        to_skill_id=None if skill is None else skill.id,
        note=note,
        reason=None,
        now=now,
        ttl=ttl,
    )


async def _cold(
    session: AsyncSession,
    conversation: Conversation,
    me: Agent,
    target: Target,
    note: str | None,
    *,
    now: datetime,
    ttl: timedelta,
    offers: routing_service.OfferPolicy,
) -> tuple[Outcome, Started]:
    if target.agent_id is not None or target.supervisors:
        raise TransferTargetUnavailable(
            "A cold transfer goes to a skill queue; to hand the chat to a person, transfer it warm."
        )
    skill = None if target.skill is None else await _skill(session, target.skill)
    skill_id = conversation.skill_id if skill is None else skill.id
    if skill is None and skill_id is not None:
        skill = await session.get(Skill, skill_id)
    transfer = Transfer(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        kind=TransferKind.COLD,
        # Done when made (the chat is in the queue, at the front): never pending.
        state=TransferState.ACCEPTED,
        decided_at=now,
        from_agent_id=me.id,
        to_skill_id=skill_id,
        note=note,
        receivers=[],
        declined_by=[],
        created_at=now,
        expires_at=None,
    )
    session.add(transfer)
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(
        _requested(
            session,
            conversation,
            transfer,
            from_agent=me,
            to={} if skill is None else {"skill": {"id": skill.id, "name": skill.name}},
            now=now,
        )
    )
    summary = await build(session, conversation, now=now, note=note)
    outcome.events.append(
        _summary_event(session, conversation, summary, transfer_id=transfer.id, now=now)
    )
    conversation.skill_id = skill_id
    conversation.transfer_count += 1
    policy, _ = await routing_repository.load_policy(session)
    # `requeue` keeps the chat's place: it goes back in at the front.
    outcome.merge(
        chat_service.requeue(
            session, conversation, policy, agent=me, agent_id=me.id, reason="transferred", now=now
        )
    )
    # Not offered straight back to the agent who let it go.
    session.add(
        Offer(
            id=uuid.uuid4(),
            conversation_id=conversation.id,
            agent_id=me.id,
            state=OfferState.DECLINED,
            created_at=now,
            expires_at=now,
            decided_at=now,
        )
    )
    await session.flush()
    outcome.merge(await chat_service.try_assign(session, conversation, now=now, offers=offers))
    outcome.merge(await _after_move(session, conversation, now=now, ttl=ttl))
    started = Started(transfer.id, conversation.id, "cold", (), None)
    return outcome, started


# -- escalation -------------------------------------------------------------------------------


async def escalation_policy(session: AsyncSession) -> EscalationPolicy:
    row = await routing_repository.routing_settings(session)
    return EscalationPolicy(
        phrases=tuple(row.escalation_phrases or ()),
        wait_seconds=row.escalate_wait_seconds,
        handle_seconds=row.escalate_handle_seconds,
        max_transfers=row.escalate_after_transfers,
        sentiment_below=row.escalate_sentiment_below,
        sentiment_window=row.escalate_sentiment_window,
    )


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
            append_event(
                session,
                conversation,
                kind=kinds.AGENT_LEFT,
                now=now,
                body={
                    "agent": agent_ref(previous_agent) if previous_agent else {"id": str(previous)},
                    "reason": "transferred",
                },
                sender_id=previous,
                sender_name=None if previous_agent is None else previous_agent.name,
            )
        )
    chat_service.hold(conversation, agent, now=now)
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.ASSIGNED,
            now=now,
            body={
                "agent": ref,
                "epoch": conversation.assignment_epoch,
                "transfer_id": str(transfer.id),
            },
        )
    )
    skill = (
        None if conversation.skill_id is None else await session.get(Skill, conversation.skill_id)
    )
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.AGENT_JOINED,
            now=now,
            body={
                "agent": ref,
                # What the visitor is told: who joined, that they have the conversation so
                # far, and from which team.
                "transfer": {
                    "id": str(transfer.id),
                    "kind": transfer.kind.value,
                    "has_context": True,
                    "from": None
                    if previous_agent is None
                    else {"id": str(previous_agent.id), "name": previous_agent.name},
                },
                "skill": None if skill is None else {"id": skill.id, "name": skill.name},
            },
            sender_type=SenderType.SYSTEM,
            sender_id=agent.id,
            sender_name=agent.name,
        )
    )
    outcome.notices.append((f"agent:{agent.id}", join_notice(conversation.id)))
    return outcome


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
        TransferNotFound, TransferNotPending.
    """
    seen = await session.get(Transfer, transfer_id)
    if seen is None or seen.from_agent_id != actor.id:
        raise TransferNotFound("No such transfer of yours.", transfer_id=str(transfer_id))
    if seen.kind is TransferKind.ESCALATION:
        raise TransferNotPending(
            "An escalation is for the supervisors to answer; it cannot be withdrawn.",
            transfer_id=str(transfer_id),
            state=seen.state.value,
        )
    conversation = await chat_repository.get_for_update(session, seen.conversation_id)
    transfer = await transfers.pending_of(session, seen.conversation_id)
    if conversation is None or transfer is None or transfer.id != transfer_id:
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
    due = await session.scalars(
        select(Transfer.id, Transfer.conversation_id)
        .where(Transfer.state == TransferState.PENDING, Transfer.expires_at <= now)
        .order_by(Transfer.expires_at)
        .limit(limit)
    )
    for transfer_id in list(due):
        seen = await session.get(Transfer, transfer_id)
        if seen is None:
            continue
        conversation = await chat_repository.get_for_update(session, seen.conversation_id)
        transfer = await transfers.pending_of(session, seen.conversation_id)
        if conversation is None or transfer is None or transfer.id != transfer_id:
            continue
        waited = (
            0
            if transfer.expires_at is None
            else int((transfer.expires_at - transfer.created_at).total_seconds())
        )
        names = await _names(
            session, [r for r in transfer.receivers if r not in transfer.declined_by]
        )
        who = ", ".join(names) or "nobody"
        events, notices = transfers.end(
            session,
            conversation,
            transfer,
            state=TransferState.EXPIRED,
            reason=f"No answer from {who} within {waited} s.",
            now=now,
            withdraw_reason="expired",
        )
        outcome.events.extend(events)
        outcome.notices.extend(notices)
    await session.flush()
    return outcome


async def _names(session: AsyncSession, agent_ids: Sequence[str]) -> list[str]:
    if not agent_ids:
        return []
    rows = await session.scalars(
        select(Agent.name)
        .where(Agent.id.in_([uuid.UUID(a) for a in agent_ids]))
        .order_by(Agent.name)
    )
    return list(rows)


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


# -- after a customer's message, and on a timer -----------------------------------------------


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


def _facts(conversation: Conversation, scores: Sequence[float]) -> ChatFacts:
    return ChatFacts(
        state=conversation.state.value,
        queued_at=conversation.waiting_since or conversation.queued_at or conversation.created_at,
        assigned_at=conversation.assigned_at,
        transfer_count=conversation.transfer_count,
        escalated=conversation.escalated_at is not None,
        customer_scores=tuple(scores),
    )


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
    transfer. Runs in the unit of work that stored the message."""
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None or conversation.state is ConversationState.CLOSED:
        return Outcome()
    outcome = Outcome(conversation_id=conversation.id)
    if conversation.transfer_count > 0:
        outcome.merge(await _check_repeat(session, conversation, now=now))
    if conversation.escalated_at is not None:
        return outcome
    policy = await escalation_policy(session)
    phrase = asks_for_manager(text, policy.phrases)
    if phrase is not None:
        escalated, _ = await escalate(
            session, conversation, by="visitor", reason=f"The customer asked for {phrase!r}.",
            phrase=phrase, now=now, ttl=ttl,
        )  # fmt: skip
        outcome.merge(escalated)
        return outcome
    if policy.sentiment_below is None:
        return outcome
    texts = await session.scalars(
        select(ConversationEvent.body)
        .where(
            ConversationEvent.conversation_id == conversation.id,
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.VISITOR,
        )
        .order_by(ConversationEvent.seq.desc())
        .limit(policy.sentiment_window)
    )
    scorer = _scorer(session)
    scores = [scorer.score(str(body.get("text", ""))) for body in reversed(list(texts))]
    trigger = escalation_due(_facts(conversation, scores), _only(policy, SENTIMENT), now)
    if trigger is not None:
        escalated, _ = await escalate(
            session, conversation, by="rule", reason=trigger.reason, rule=trigger.rule, now=now,
            ttl=ttl,
        )  # fmt: skip
        outcome.merge(escalated)
    return outcome


async def _check_repeat(
    session: AsyncSession, conversation: Conversation, *, now: datetime
) -> Outcome:
    transfer = await session.scalar(
        select(Transfer)
        .where(
            Transfer.conversation_id == conversation.id,
            Transfer.state == TransferState.ACCEPTED,
            Transfer.moved_seq.is_not(None),
        )
        .order_by(Transfer.decided_at.desc())
        .limit(1)
    )
    if transfer is None or transfer.repeat_seq is not None or transfer.moved_seq is None:
        return Outcome()
    events = await _transcript(session, conversation.id)
    after = [
        e for e in events
        if e.seq > transfer.moved_seq and e.kind == kinds.MESSAGE and e.sender_type == "visitor"
    ]  # fmt: skip
    if len(after) > REPEAT_WINDOW:
        return Outcome()
    settings = await routing_repository.routing_settings(session)
    found = repeats_after_transfer(
        events, transfer.moved_seq, catalogue=tuple(settings.product_catalogue or ())
    )
    if not found:
        return Outcome()
    transfer.repeat_seq = found[0].seq
    event = append_event(
        session,
        conversation,
        kind=kinds.REPEAT,
        now=now,
        body={
            "transfer_id": str(transfer.id),
            "repeats": [
                {
                    "seq": r.seq,
                    "fact_kind": r.fact_kind,
                    "value": r.value,
                    "original_seqs": list(r.original_seqs),
                }
                for r in found
            ],
        },
        visibility=Visibility.AGENTS,
    )
    return Outcome(events=[event], conversation_id=conversation.id)


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
    due = await session.scalars(
        select(Conversation.id)
        .where(Conversation.escalated_at.is_(None), or_(*clauses))
        .order_by(Conversation.waiting_since)
        .limit(limit)
    )
    outcome = Outcome()
    for conversation_id in list(due):
        conversation = await chat_repository.get_for_update(session, conversation_id)
        if conversation is None or conversation.escalated_at is not None:
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
