"""The queue and routing: a conversation enters the queue or goes offline
(docs/routing.md#offline-messages), records the escalation steps in force
(docs/routing.md#escalation-steps), and is given, or offered, to the best free agent; a routing
pass over the queue; the `offer` frame (docs/protocol.md#offer); and chats taken back from an
agent who left, to the front of the queue. `chat.offers` builds on it.

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`
(docs/architecture.md#data-flow-of-one-message). Must not import FastAPI, Starlette or the bus.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import participants, repository, transfers
from app.chat.events import StoredEvent, iso
from app.chat.log import append_event
from app.chat.outcome import Outcome, agent_ref, join_notice
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.routing.policy import RoutingPolicy, step_in_force
from app.routing.service import OfferPolicy
from app.store.db import after_commit
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Offer,
    OfferState,
    Role,
    SenderType,
    Skill,
    Transfer,
    Visibility,
    Visitor,
)

# How many queued conversations one routing pass considers. A pass runs after every event that
# can free or add capacity, and on a timer, so a bounded pass keeps each transaction short.
ROUTING_BATCH = 50
# What an agent sees of the customer's words in an offer, before accepting.
PREVIEW_CHARS = 200
DEFAULT_OFFERS = OfferPolicy()


async def enter_queue(
    session: AsyncSession,
    conversation: Conversation,
    *,
    now: datetime,
    offers: OfferPolicy,
    reason: str,
) -> Outcome:
    """Queue a locked conversation (new, or offline until now) or, when nobody could take it,
    leave it offline and tell the visitor at once (docs/routing.md#offline-messages)."""
    outcome = Outcome(conversation_id=conversation.id)
    unavailable = await routing_service.availability(session, conversation.skill_id, now=now)
    if unavailable is not None:
        if conversation.state is not ConversationState.OFFLINE:
            outcome.events.append(go_offline(session, conversation, unavailable, now=now))
        return outcome
    conversation.state = ConversationState.QUEUED
    conversation.offline_reason = None
    conversation.waiting_since = now
    outcome.events.append(
        append_event(session, conversation, kind=kinds.QUEUED, now=now, body={"reason": reason})
    )
    policy, _ = await routing_repository.load_policy(session)
    outcome.events.extend(advance_step(session, conversation, policy, now=now))
    outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    return outcome


def go_offline(
    session: AsyncSession,
    conversation: Conversation,
    unavailable: routing_service.Unavailable,
    *,
    now: datetime,
) -> StoredEvent:
    """Nobody can take the conversation: it becomes a message agents pick up later."""
    conversation.state = ConversationState.OFFLINE
    conversation.offline_reason = unavailable.reason
    conversation.next_step_at = None
    return append_event(
        session,
        conversation,
        kind=kinds.OFFLINE,
        now=now,
        body={
            "reason": unavailable.reason,
            "opens_at": None if unavailable.opens_at is None else iso(unavailable.opens_at),
        },
    )


def advance_step(
    session: AsyncSession, conversation: Conversation, policy: RoutingPolicy, *, now: datetime
) -> list[StoredEvent]:
    """Record every escalation step that has come into force for a queued conversation since
    the last one recorded, in order, and schedule the next (docs/routing.md#escalation-steps)."""
    steps = policy.steps_for(conversation.skill_id)
    queued_at = conversation.queued_at or conversation.created_at
    index, _ = step_in_force(steps, now - queued_at)
    current = next(
        (
            i
            for i, step in enumerate(steps)
            if step.id is not None and step.id == conversation.step_id
        ),
        -1,
    )
    events = [
        append_event(
            session,
            conversation,
            kind=kinds.ROUTING_STEP,
            now=now,
            body={
                "step": steps[i].name,
                "index": i,
                "after_seconds": int(steps[i].after.total_seconds()),
                "min_proficiency": steps[i].min_proficiency,
                "related_skill_ids": sorted(steps[i].related_skills),
                "include_supervisors": steps[i].include_supervisors,
            },
            visibility=Visibility.AGENTS,
        )
        for i in range(current + 1, index + 1)
    ]
    conversation.step_id = steps[index].id if index >= 0 else None
    following = index + 1
    conversation.next_step_at = (
        queued_at + steps[following].after if following < len(steps) else None
    )
    return events


async def try_assign(
    session: AsyncSession, conversation: Conversation, *, now: datetime, offers: OfferPolicy
) -> Outcome:
    """Give a queued, locked conversation to the best free agent, or offer it to them."""
    claim = await routing_service.claim_agent(session, conversation, now=now)
    if claim is None:
        return Outcome()
    chosen = claim.agents if not offers.auto_accept else claim.agents[:1]
    if conversation.waiting_since is not None:
        latency = (now - conversation.waiting_since).total_seconds()
        after_commit(session, lambda m: m.assignment_latency.observe(max(latency, 0.0)))
    # Why this agent: stored with the chat, so "why did this chat go to Bob?" has an answer.
    decided = append_event(
        session,
        conversation,
        kind=kinds.ROUTING_DECIDED,
        now=now,
        body={
            **routing_service.explain(claim.decision),
            "chosen": str(chosen[0].id),
            "offered_to": [str(agent.id) for agent in chosen],
        },
        visibility=Visibility.AGENTS,
    )
    if offers.auto_accept:
        outcome = await _assign(session, conversation, claim.agent, now=now, offer_id=None)
    else:
        outcome = Outcome()
        for agent in chosen:
            outcome.merge(await _offer(session, conversation, agent, now=now, ttl=offers.timeout))
    outcome.events.insert(0, decided)
    return outcome


def hold(conversation: Conversation, agent: Agent, *, now: datetime) -> None:
    """The conversation is `agent`'s from `now` (by routing, a take or a transfer)."""
    conversation.state = ConversationState.ASSIGNED
    conversation.agent_id = agent.id
    conversation.assigned_at = now
    conversation.assignment_epoch += 1
    conversation.next_step_at = None
    conversation.offline_reason = None
    # The watchdog's clock for this agent starts when the chat reaches them.
    if conversation.awaiting_reply_since is not None:
        conversation.awaiting_reply_since = now
    conversation.watchdog_level = 0
    agent.last_assigned_at = now


async def _assign(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    *,
    now: datetime,
    offer_id: uuid.UUID | None,
) -> Outcome:
    # A chat cold-transferred to this queue: the transfer completes with this assignment, and
    # the visitor is told the new agent has the conversation so far.
    cold = await transfers.settle_cold(session, conversation, agent.id, now=now)
    previous = (
        None
        if cold is None or cold.from_agent_id is None
        else await session.get(Agent, cold.from_agent_id)
    )
    return await hand_over(
        session, conversation, agent, now=now, offer_id=offer_id, transfer=cold, from_agent=previous
    )


async def hand_over(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    *,
    now: datetime,
    offer_id: uuid.UUID | None = None,
    transfer: Transfer | None = None,
    from_agent: Agent | None = None,
    by: Agent | None = None,
) -> Outcome:
    """`agent` holds the locked conversation from `now` (`hold()`): `conversation.assigned`,
    `agent.joined` and the `join` notice that makes their sockets follow it. With `transfer`
    (the one that brought the chat here, from `from_agent`), the visitor is told the new agent
    has the conversation so far, and from which team; with `by`, the supervisor who reassigned
    it. Routing, a take, a transfer's move and a reassignment all end with this, so the
    events' bodies are the same whatever moved the chat. A supervisor barged into the chat
    who comes to hold it is a participant no more (docs/handoff.md#supervisor-oversight)."""
    if agent.role is not Role.AGENT:
        # Only supervisors and admins barge in; routing's many assignments skip the update.
        await participants.end_for(session, conversation, agent.id, now=now)
    if conversation.state is ConversationState.QUEUED and conversation.waiting_since is not None:
        waited = (now - conversation.waiting_since).total_seconds()
        after_commit(session, lambda m: m.queue_wait.observe(max(waited, 0.0)))
    hold(conversation, agent, now=now)
    ref = agent_ref(agent)
    body: dict[str, Any] = {"agent": ref, "epoch": conversation.assignment_epoch}
    if offer_id is not None:
        body["offer_id"] = str(offer_id)
    if by is not None:
        body["by"] = {"id": str(by.id), "name": by.name}
    joined: dict[str, Any] = {"agent": ref}
    if transfer is not None:
        body["transfer_id"] = str(transfer.id)
        joined["transfer"] = {
            "id": str(transfer.id),
            "kind": transfer.kind.value,
            "has_context": True,
            "from": None
            if from_agent is None
            else {"id": str(from_agent.id), "name": from_agent.name},
        }
        skill = (
            None
            if conversation.skill_id is None
            else await session.get(Skill, conversation.skill_id)
        )
        joined["skill"] = None if skill is None else {"id": skill.id, "name": skill.name}
    outcome = Outcome()
    outcome.events.append(
        append_event(session, conversation, kind=kinds.ASSIGNED, now=now, body=body)
    )
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.AGENT_JOINED,
            now=now,
            body=joined,
            sender_type=SenderType.SYSTEM,
            sender_id=agent.id,
            sender_name=agent.name,
        )
    )
    outcome.notices.append((f"agent:{agent.id}", join_notice(conversation.id)))
    return outcome


def agent_left(
    session: AsyncSession,
    conversation: Conversation,
    *,
    agent: Agent | None,
    agent_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> StoredEvent:
    """The `agent.left` event: `agent_id` (`agent`, when the row still exists) no longer holds
    the locked conversation, for `reason` (re-queued, or transferred to someone else)."""
    return append_event(
        session,
        conversation,
        kind=kinds.AGENT_LEFT,
        now=now,
        body={
            "agent": agent_ref(agent) if agent else {"id": str(agent_id)},
            "reason": reason,
        },
        sender_id=agent_id,
        sender_name=agent.name if agent else None,
    )


async def _offer(
    session: AsyncSession,
    conversation: Conversation,
    agent: Agent,
    *,
    now: datetime,
    ttl: timedelta,
) -> Outcome:
    offer = Offer(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        agent_id=agent.id,
        state=OfferState.PENDING,
        created_at=now,
        expires_at=now + ttl,
    )
    session.add(offer)
    outcome = Outcome()
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.OFFERED,
            now=now,
            body={
                "offer_id": str(offer.id),
                "agent": agent_ref(agent),
                "expires_at": iso(offer.expires_at),
            },
            visibility=Visibility.AGENTS,
        )
    )
    await session.flush()
    frame = await offer_frame(session, offer, conversation)
    outcome.notices.append((f"agent:{agent.id}", {"t": "offer", "offer": frame}))
    return outcome


async def offer_frame(
    session: AsyncSession, offer: Offer, conversation: Conversation
) -> dict[str, Any]:
    """The `offer` frame an agent receives (docs/protocol.md#offer)."""
    visitor = await session.get(Visitor, conversation.visitor_id)
    preview = await repository.last_visitor_text(session, conversation.id)
    frame: dict[str, Any] = {
        "type": "offer",
        "offer_id": str(offer.id),
        "conversation_id": str(conversation.id),
        "expires_at": iso(offer.expires_at),
        "visitor": {
            "id": str(conversation.visitor_id),
            "name": None if visitor is None else visitor.name,
        },
        "skill_id": conversation.skill_id,
        "queued_at": None if conversation.queued_at is None else iso(conversation.queued_at),
        "preview": None if preview is None else preview[:PREVIEW_CHARS],
    }
    if conversation.transfer_count > 0:
        # Transferred before: the receiver sees its latest context summary with the offer.
        frame["summary"] = await repository.latest_summary(session, conversation.id)
    return frame


def _withdrawn(offer: Offer, reason: str) -> tuple[str, dict[str, Any]]:
    return (
        f"agent:{offer.agent_id}",
        {"t": "offer_withdrawn", "offer_id": str(offer.id), "reason": reason},
    )


async def assign_waiting(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = ROUTING_BATCH,
    offers: OfferPolicy = DEFAULT_OFFERS,
) -> Outcome:
    """One routing pass over the queue: assign (or offer) what can be, in queue order."""
    outcome = Outcome()
    for conversation in await routing_repository.lock_queued(session, limit=limit):
        outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    await session.flush()
    return outcome


async def requeue_agent_chats(
    session: AsyncSession, *, agent_id: uuid.UUID, reason: str, now: datetime
) -> Outcome:
    """Take every chat away from an agent and put it back at the front of the queue; withdraw
    the offers they hold. The caller runs a routing pass afterwards.

    "Front" means the chat keeps its original `queued_at`, so it sorts before everyone who
    arrived after it; its history stays intact.
    """
    outcome = Outcome()
    # Lock order, as accepting an offer or a transfer takes it: the conversations first, in
    # one batch sorted by id, then their offers and transfers (below), then agents' rows. A
    # caller that locks this agent's row (deactivation) calls `lock_chats_of()` before that.
    await lock_chats_of(session, agent_id=agent_id)
    agent = await session.get(Agent, agent_id)
    policy, _ = await routing_repository.load_policy(session)
    # Offers they hold are withdrawn too, so that the caller's routing pass gives those chats
    # to someone else now rather than at expiry. An offer locked although we hold its
    # conversation is one the expiry loop is ending (it takes offers first): it is left to it.
    for offer in await session.scalars(
        select(Offer)
        .where(Offer.agent_id == agent_id, Offer.state == OfferState.PENDING)
        .order_by(Offer.id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ):
        offer.state = OfferState.CANCELLED
        offer.decided_at = now
        outcome.notices.append(_withdrawn(offer, reason))
    events, notices = await transfers.drop_receiver(session, agent_id, now=now)
    outcome.events.extend(events)
    outcome.notices.extend(notices)
    for conversation in await repository.assigned_to(session, agent_id, lock=True):
        outcome.merge(
            await take_back(
                session,
                conversation,
                policy,
                agent=agent,
                agent_id=agent_id,
                reason=reason,
                why=f"{agent.name if agent else 'The agent'} left.",
                now=now,
            )
        )
    await session.flush()
    return outcome


async def lock_chats_of(session: AsyncSession, *, agent_id: uuid.UUID) -> list[Conversation]:
    """Lock every conversation an agent's leaving touches, in one batch sorted by id: those
    they hold, those offered to them, and those whose pending transfer is offered to them.

    Accepting an offer or a transfer locks the conversation, then the offer or transfer, then
    the agent's row. Taking an agent's chats away must lock in that order too, or the two
    deadlock (and PostgreSQL aborts one side): a caller that locks the agent's row first, to
    deactivate them, calls this before it. Sorting by id keeps two such batches from locking
    the same conversations in opposite orders.
    """
    transferred = [
        t.conversation_id for t in await transfers.pending_for_receiver(session, agent_id)
    ]
    offered = select(Offer.conversation_id).where(
        Offer.agent_id == agent_id, Offer.state == OfferState.PENDING
    )
    rows = await session.scalars(
        select(Conversation)
        .where(
            or_(
                and_(
                    Conversation.agent_id == agent_id,
                    Conversation.state == ConversationState.ASSIGNED,
                ),
                Conversation.id.in_(offered),
                Conversation.id.in_(transferred),
            )
        )
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list(rows)


async def take_back(
    session: AsyncSession,
    conversation: Conversation,
    policy: RoutingPolicy,
    *,
    agent: Agent | None,
    agent_id: uuid.UUID,
    reason: str,
    why: str,
    now: datetime,
    passed_over: bool = False,
) -> Outcome:
    """Take a locked, assigned conversation from `agent_id` (an agent who left, or the
    watchdog's re-queue) back to the front of the queue: its pending transfer or escalation
    is cancelled (`why` is what its requester is told), then `requeue()` with `reason`.

    With `passed_over`, the agent is also recorded as having let an offer of it lapse (an
    `expired` offer row), so that routing does not give it straight back to them: it never
    offers a chat again to an agent who let it expire.
    """
    if passed_over:
        session.add(
            Offer(
                id=uuid.uuid4(),
                conversation_id=conversation.id,
                agent_id=agent_id,
                state=OfferState.EXPIRED,
                created_at=conversation.assigned_at or now,
                expires_at=now,
                decided_at=now,
            )
        )
    outcome = Outcome(conversation_id=conversation.id)
    events, notices = await transfers.end_pending(session, conversation, reason=why, now=now)
    outcome.events.extend(events)
    outcome.notices.extend(notices)
    outcome.merge(
        requeue(
            session, conversation, policy, agent=agent, agent_id=agent_id, reason=reason, now=now
        )
    )
    return outcome


def requeue(
    session: AsyncSession,
    conversation: Conversation,
    policy: RoutingPolicy,
    *,
    agent: Agent | None,
    agent_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> Outcome:
    """Take a locked, assigned conversation from its agent back to the front of the queue."""
    outcome = Outcome(conversation_id=conversation.id)
    conversation.state = ConversationState.QUEUED
    conversation.agent_id = None
    conversation.waiting_since = now
    outcome.events.append(
        agent_left(session, conversation, agent=agent, agent_id=agent_id, reason=reason, now=now)
    )
    outcome.events.append(
        append_event(session, conversation, kind=kinds.QUEUED, now=now, body={"reason": reason})
    )
    outcome.events.extend(advance_step(session, conversation, policy, now=now))
    return outcome
