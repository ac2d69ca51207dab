"""Conversation lifecycle: open, message, assign, close, read. The one place that writes events.

Every function runs inside the caller's unit of work, flushes, and never commits. It returns an
`Outcome`: the events it stored and the bus notices to publish **after** the commit, so that
nothing is delivered that is not stored first (docs/architecture.md#data-flow-of-one-message).
Must not import FastAPI, Starlette or the bus.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository, transfers
from app.chat.errors import (
    AtCapacity,
    ConversationClosed,
    ConversationNotFound,
    NotOffline,
    NotParticipant,
    OfferNotFound,
    OfferNotPending,
)
from app.chat.events import StoredEvent, iso
from app.chat.log import append_event
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.routing.policy import RoutingPolicy, step_in_force
from app.routing.service import OfferPolicy
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Offer,
    OfferState,
    Role,
    SenderType,
    Skill,
    Visibility,
    Visitor,
)

# How many queued conversations one routing pass considers. A pass runs after every event that
# can free or add capacity, and on a timer, so a bounded pass keeps each transaction short.
ROUTING_BATCH = 50
# What an agent sees of the customer's words in an offer, before accepting.
PREVIEW_CHARS = 200
DEFAULT_OFFERS = OfferPolicy()


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a visitor or an agent (system actions have no actor)."""

    kind: SenderType
    id: uuid.UUID
    name: str | None

    @property
    def is_agent(self) -> bool:
        return self.kind is SenderType.AGENT


@dataclass(frozen=True, slots=True)
class Ack:
    conversation_id: uuid.UUID
    seq: int
    client_msg_id: str
    duplicate: bool


@dataclass(slots=True)
class Outcome:
    """What a unit of work stored, and what to announce once it is committed."""

    events: list[StoredEvent] = field(default_factory=list)
    # (channel, payload) pairs that are not conversation events: "join this conversation".
    notices: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ack: Ack | None = None
    conversation_id: uuid.UUID | None = None

    def merge(self, other: Outcome) -> None:
        self.events.extend(other.events)
        self.notices.extend(other.notices)


def join_notice(conversation_id: uuid.UUID) -> dict[str, Any]:
    return {"t": "join", "conversation_id": str(conversation_id)}


def agent_ref(agent: Agent) -> dict[str, Any]:
    return {"id": str(agent.id), "name": agent.name, "avatar_url": agent.avatar_url}


async def _load_owned(
    session: AsyncSession, actor: Actor, conversation_id: uuid.UUID
) -> Conversation:
    """The conversation, locked, if `actor` may write to it now.

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    conversation = await repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if actor.kind is SenderType.VISITOR:
        if conversation.visitor_id != actor.id:
            # Same answer as for a conversation that does not exist: ids are not probeable.
            raise ConversationNotFound(
                "No such conversation.", conversation_id=str(conversation_id)
            )
    elif conversation.agent_id != actor.id or conversation.state is not ConversationState.ASSIGNED:
        if conversation.state is ConversationState.CLOSED and conversation.agent_id == actor.id:
            raise ConversationClosed(
                "This conversation is closed.", conversation_id=str(conversation_id)
            )
        raise NotParticipant(
            "You are not assigned to this conversation.", conversation_id=str(conversation_id)
        )
    if conversation.state is ConversationState.CLOSED:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation_id)
        )
    return conversation


load_owned = _load_owned


async def send_message(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID | None,
    client_msg_id: str,
    text: str,
    now: datetime,
    skill_id: int | None = None,
    page_url: str | None = None,
    offers: OfferPolicy = DEFAULT_OFFERS,
) -> Outcome:
    """Store a message. A visitor's first message opens a conversation and queues it.

    Resending the same `client_msg_id` stores nothing and acks the first `seq`. An agent must
    name the conversation and hold it; a visitor may omit it to mean their open one.

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    outcome = Outcome()
    opened = False
    conversation: Conversation | None
    if conversation_id is not None:
        # A resend of a message already stored is acked as a duplicate even if the
        # conversation has since closed or moved on: the sender's own event answers for it.
        earlier = await repository.find_by_client_msg_id(
            session, conversation_id, actor.kind, actor.id, client_msg_id
        )
        if earlier is not None:
            outcome.ack = Ack(conversation_id, earlier.seq, client_msg_id, duplicate=True)
            outcome.conversation_id = conversation_id
            return outcome
        conversation = await _load_owned(session, actor, conversation_id)
    elif actor.kind is SenderType.VISITOR:
        conversation = await repository.open_of_visitor(session, actor.id, lock=True)
    else:
        raise NotParticipant("An agent's message must name its conversation_id.")

    if conversation is not None:
        earlier = await repository.find_by_client_msg_id(
            session, conversation.id, actor.kind, actor.id, client_msg_id
        )
        if earlier is not None:
            outcome.ack = Ack(conversation.id, earlier.seq, client_msg_id, duplicate=True)
            outcome.conversation_id = conversation.id
            return outcome
    else:
        required = await routing_service.required_skill(
            session, topic_skill_id=skill_id, page_url=page_url, first_message=text
        )
        # Priority comes only from what a signed identity token vouched for (auth.identity).
        opener = await session.get(Visitor, actor.id)
        priority = 0 if opener is None else opener.priority
        conversation = Conversation(
            id=uuid.uuid4(),
            visitor_id=actor.id,
            state=ConversationState.QUEUED,
            watchdog_level=0,
            skill_id=required.skill_id,
            priority=priority,
            page_url=page_url,
            last_seq=0,
            visitor_read_seq=0,
            agent_read_seq=0,
            assignment_epoch=0,
            created_at=now,
            queued_at=now,
            waiting_since=now,
        )
        session.add(conversation)
        opened = True
        # The partial unique index on (visitor_id) WHERE state <> 'closed' fails this flush if
        # another tab of the same visitor opened one meanwhile; the frame handler retries.
        await session.flush()
        outcome.events.append(
            append_event(
                session,
                conversation,
                kind=kinds.OPENED,
                now=now,
                body={
                    "visitor": {
                        "id": str(actor.id),
                        "name": actor.name,
                        "verified": opener is not None and opener.verified_at is not None,
                    },
                    "priority": priority,
                    "page_url": page_url,
                    # Why the chat needs this skill: "topic", "page", "message" or "none".
                    "skill": {
                        "id": required.skill_id,
                        "source": required.source,
                        "matched": list(required.matched),
                    },
                },
            )
        )
        outcome.notices.append((f"visitor:{actor.id}", join_notice(conversation.id)))

    message = append_event(
        session,
        conversation,
        kind=kinds.MESSAGE,
        now=now,
        body={"text": text},
        sender_type=actor.kind,
        sender_id=actor.id,
        sender_name=actor.name,
        client_msg_id=client_msg_id,
    )
    outcome.events.append(message)
    outcome.ack = Ack(conversation.id, message.seq, client_msg_id, duplicate=False)
    outcome.conversation_id = conversation.id
    if actor.is_agent:
        # Answered: the watchdog stands down until the customer writes again.
        conversation.awaiting_reply_since = None
        conversation.watchdog_level = 0
    elif conversation.awaiting_reply_since is None:
        conversation.awaiting_reply_since = now
    if opened:
        outcome.merge(
            await enter_queue(session, conversation, now=now, offers=offers, reason="new")
        )
    elif (
        conversation.state is ConversationState.OFFLINE
        and not actor.is_agent
        and await routing_service.availability(session, conversation.skill_id, now=now) is None
    ):
        # The visitor writes again to a message left for later: someone can take it now, so
        # it joins the queue where it would have been.
        outcome.merge(
            await enter_queue(
                session, conversation, now=now, offers=offers, reason="agents_available"
            )
        )
    await session.flush()
    return outcome


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
    outcome = Outcome()
    hold(conversation, agent, now=now)
    ref = agent_ref(agent)
    body: dict[str, Any] = {"agent": ref, "epoch": conversation.assignment_epoch}
    if offer_id is not None:
        body["offer_id"] = str(offer_id)
    # A chat cold-transferred to this queue: the transfer completes with this assignment, and
    # the visitor is told the new agent has the conversation so far.
    cold = await transfers.settle_cold(session, conversation, agent.id, now=now)
    joined: dict[str, Any] = {"agent": ref}
    if cold is not None:
        body["transfer_id"] = str(cold.id)
        previous = (
            None if cold.from_agent_id is None else await session.get(Agent, cold.from_agent_id)
        )
        joined["transfer"] = {
            "id": str(cold.id),
            "kind": cold.kind.value,
            "has_context": True,
            "from": None if previous is None else {"id": str(previous.id), "name": previous.name},
        }
        skill = (
            None
            if conversation.skill_id is None
            else await session.get(Skill, conversation.skill_id)
        )
        joined["skill"] = None if skill is None else {"id": skill.id, "name": skill.name}
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


async def _lock_own_offer(
    session: AsyncSession, actor: Actor, offer_id: uuid.UUID, now: datetime
) -> tuple[Offer, Conversation]:
    # The conversation is locked before the offer: in broadcast mode, two agents accepting
    # at once queue on the conversation instead of each holding an offer the other's accept
    # must cancel (a deadlock).
    seen = await routing_repository.get_offer(session, offer_id)
    if seen is None or not actor.is_agent or seen.agent_id != actor.id:
        raise OfferNotFound("No such offer of yours.", offer_id=str(offer_id))
    conversation = await repository.get_for_update(session, seen.conversation_id)
    offer = await routing_repository.lock_offer(session, offer_id)
    if conversation is None or offer is None:
        raise OfferNotFound("No such offer of yours.", offer_id=str(offer_id))
    if offer.state is OfferState.PENDING and offer.expires_at <= now:
        raise OfferNotPending("This offer has expired.", offer_id=str(offer_id), state="expired")
    if offer.state is not OfferState.PENDING:
        raise OfferNotPending(
            f"This offer is {offer.state.value}.", offer_id=str(offer_id), state=offer.state.value
        )
    return offer, conversation


async def accept_offer(
    session: AsyncSession, *, actor: Actor, offer_id: uuid.UUID, now: datetime
) -> Outcome:
    """The agent takes the offered chat: it is assigned to them and they join it.

    Raises:
        OfferNotFound: not an offer of this agent.
        OfferNotPending: expired, declined, cancelled or accepted already.
    """
    offer, conversation = await _lock_own_offer(session, actor, offer_id, now)
    agent = await session.get(Agent, actor.id)
    assert agent is not None  # noqa: S101 - the offer's agent row is kept by its foreign key
    if not agent.is_active:
        # Deactivated while the offer was out (their socket may still be open).
        raise OfferNotFound("No such offer of yours.", offer_id=str(offer_id))
    offer.state = OfferState.ACCEPTED
    offer.decided_at = now
    outcome = await _assign(session, conversation, agent, now=now, offer_id=offer.id)
    outcome.conversation_id = conversation.id
    # Broadcast: the first to accept wins; the others' offers are withdrawn in this same
    # transaction, so no second agent can accept.
    for other in await routing_repository.pending_offers_of(session, conversation.id):
        other.state = OfferState.CANCELLED
        other.decided_at = now
        outcome.notices.append(_withdrawn(other, "taken"))
    await session.flush()
    return outcome


async def decline_offer(
    session: AsyncSession,
    *,
    actor: Actor,
    offer_id: uuid.UUID,
    reason: str | None,
    now: datetime,
    offers: OfferPolicy = DEFAULT_OFFERS,
) -> Outcome:
    """The agent turns the chat down; it goes to the next agent, never back to them.

    Raises:
        OfferNotFound, OfferNotPending.
    """
    offer, conversation = await _lock_own_offer(session, actor, offer_id, now)
    offer.state = OfferState.DECLINED
    offer.decided_at = now
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.OFFER_DECLINED,
            now=now,
            body={
                "offer_id": str(offer.id),
                "agent": {"id": str(actor.id), "name": actor.name},
                "reason": reason,
            },
            visibility=Visibility.AGENTS,
        )
    )
    outcome.notices.append(_withdrawn(offer, "declined"))
    await session.flush()
    # In broadcast mode others may still hold offers of this chat: it is theirs to take.
    if not await routing_repository.pending_offers_of(session, conversation.id):
        outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    return outcome


async def expire_offers(
    session: AsyncSession, *, now: datetime, offers: OfferPolicy = DEFAULT_OFFERS, limit: int = 100
) -> Outcome:
    """Expire every pending offer past its time; each chat goes to its next agent."""
    outcome = Outcome()
    for offer in await routing_repository.due_offers(session, now=now, limit=limit):
        conversation = await repository.get_for_update(session, offer.conversation_id)
        offer.state = OfferState.EXPIRED
        offer.decided_at = now
        outcome.notices.append(_withdrawn(offer, "expired"))
        if conversation is None:
            continue
        agent = await session.get(Agent, offer.agent_id)
        outcome.events.append(
            append_event(
                session,
                conversation,
                kind=kinds.OFFER_EXPIRED,
                now=now,
                body={
                    "offer_id": str(offer.id),
                    "agent": {
                        "id": str(offer.agent_id),
                        "name": None if agent is None else agent.name,
                    },
                },
                visibility=Visibility.AGENTS,
            )
        )
        await session.flush()
        if conversation.state is ConversationState.QUEUED and not (
            await routing_repository.pending_offers_of(session, conversation.id)
        ):
            outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    await session.flush()
    return outcome


async def take_offline(
    session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID, now: datetime
) -> Outcome:
    """An agent picks up an offline conversation (a message left for later): it is theirs.

    Raises:
        ConversationNotFound: no such conversation, or not an agent asking.
        NotOffline: the conversation is not offline (queued, assigned or closed).
        AtCapacity: the agent has no free slot.
    """
    conversation = await repository.get_for_update(session, conversation_id)
    if conversation is None or not actor.is_agent:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if conversation.state is not ConversationState.OFFLINE:
        raise NotOffline(
            f"This conversation is {conversation.state.value}, not offline.",
            conversation_id=str(conversation_id),
            state=conversation.state.value,
        )
    locked = await routing_repository.lock_agent_load(session, actor.id)
    if locked is None or not locked[0].is_active:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    agent, load = locked
    if agent.role is Role.AGENT and conversation.skill_id is not None:
        skills = (await routing_repository.proficiencies(session, [agent.id]))[agent.id]
        if conversation.skill_id not in skills:
            raise NotParticipant(
                "This offline conversation needs a skill you do not have; a supervisor can "
                "take it or transfer it.",
                conversation_id=str(conversation_id),
                skill_id=conversation.skill_id,
            )
    if load >= agent.capacity:
        raise AtCapacity(
            f"You are at capacity ({load} of {agent.capacity}); close a chat first.",
            load=load,
            capacity=agent.capacity,
        )
    outcome = await _assign(session, conversation, agent, now=now, offer_id=None)
    outcome.conversation_id = conversation.id
    await session.flush()
    return outcome


@dataclass(frozen=True, slots=True)
class OfflineItem:
    conversation: Conversation
    visitor_name: str | None
    visitor_email: str | None
    preview: str | None


async def offline_list(session: AsyncSession, *, agent: Agent, limit: int) -> list[OfflineItem]:
    """Offline conversations this agent may take, oldest first: those of their skills and
    those without a skill; supervisors and admins see every one."""
    skills: set[int] | None = None
    if agent.role is Role.AGENT:
        skills = set((await routing_repository.proficiencies(session, [agent.id]))[agent.id])
    items = []
    for conversation in await repository.offline(session, skills=skills, limit=limit):
        visitor = await session.get(Visitor, conversation.visitor_id)
        preview = await repository.last_visitor_text(session, conversation.id)
        items.append(
            OfflineItem(
                conversation=conversation,
                visitor_name=None if visitor is None else visitor.name,
                visitor_email=None if visitor is None else visitor.email,
                preview=None if preview is None else preview[:PREVIEW_CHARS],
            )
        )
    return items


async def pending_offer_frames(session: AsyncSession, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """The `offer` frames of the agent's pending offers (sent again after a reconnect)."""
    frames = []
    for offer in await routing_repository.pending_offers_for_agent(session, agent_id):
        conversation = await repository.get(session, offer.conversation_id)
        if conversation is not None:
            frames.append(await offer_frame(session, offer, conversation))
    return frames


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


async def close(
    session: AsyncSession,
    *,
    actor: Actor | None,
    conversation_id: uuid.UUID,
    now: datetime,
    offers: OfferPolicy = DEFAULT_OFFERS,
) -> Outcome:
    """Close a conversation (by its visitor, its agent, or the system when `actor` is None).

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    if actor is None:
        conversation = await repository.get_for_update(session, conversation_id)
        if conversation is None:
            raise ConversationNotFound("No such conversation.")
        if conversation.state is ConversationState.CLOSED:
            raise ConversationClosed("This conversation is closed.")
    else:
        conversation = await _load_owned(session, actor, conversation_id)
    by = SenderType.SYSTEM if actor is None else actor.kind
    outcome = Outcome(conversation_id=conversation.id)
    for pending in await routing_repository.pending_offers_of(session, conversation.id):
        pending.state = OfferState.CANCELLED
        pending.decided_at = now
        outcome.notices.append(_withdrawn(pending, "conversation_closed"))
    conversation.state = ConversationState.CLOSED
    events, notices = await transfers.end_pending(
        session, conversation, reason="The conversation was closed.", now=now
    )
    outcome.events.extend(events)
    outcome.notices.extend(notices)
    conversation.next_step_at = None
    conversation.closed_at = now
    conversation.closed_by = by
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.CLOSED,
            now=now,
            body={"by": by.value},
            sender_type=by,
            sender_id=None if actor is None else actor.id,
            sender_name=None if actor is None else actor.name,
        )
    )
    await session.flush()
    # The agent's capacity is free again: route what waits.
    outcome.merge(await assign_waiting(session, now=now, offers=offers))
    return outcome


async def mark_read(
    session: AsyncSession, *, actor: Actor, conversation_id: uuid.UUID, seq: int
) -> tuple[uuid.UUID, int] | None:
    """Move the actor's read marker forward to `seq` (clamped to the log's end).

    Returns the conversation and new marker, or None when it did not move (already read).

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed.
    """
    conversation = await _load_owned(session, actor, conversation_id)
    seq = min(seq, conversation.last_seq)
    if actor.kind is SenderType.VISITOR:
        if seq <= conversation.visitor_read_seq:
            return None
        conversation.visitor_read_seq = seq
    else:
        if seq <= conversation.agent_read_seq:
            return None
        conversation.agent_read_seq = seq
    await session.flush()
    return conversation.id, seq


async def may_read(session: AsyncSession, *, actor: Actor, conversation: Conversation) -> bool:
    """Whether `actor` may replay this conversation's log: its visitor, an agent who held it,
    or an agent offered its pending transfer (they read it all before accepting)."""
    if actor.kind is SenderType.VISITOR:
        return conversation.visitor_id == actor.id
    if conversation.agent_id == actor.id:
        return True
    if await repository.agent_has_joined(session, conversation.id, actor.id):
        return True
    return await transfers.is_receiver(session, conversation.id, actor.id)


async def is_live(session: AsyncSession, *, actor: Actor, conversation: Conversation) -> bool:
    """`is_live_for`, and also true for an agent offered the chat's pending transfer."""
    if is_live_for(actor, conversation):
        return True
    if not actor.is_agent or conversation.state is ConversationState.CLOSED:
        return False
    return await transfers.is_receiver(session, conversation.id, actor.id)


def is_live_for(actor: Actor, conversation: Conversation) -> bool:
    """Whether `actor` should keep receiving this conversation's events as they happen."""
    if conversation.state is ConversationState.CLOSED:
        return False
    if actor.kind is SenderType.VISITOR:
        return conversation.visitor_id == actor.id
    return conversation.agent_id == actor.id and conversation.state is ConversationState.ASSIGNED


async def requeue_agent_chats(
    session: AsyncSession, *, agent_id: uuid.UUID, reason: str, now: datetime
) -> Outcome:
    """Take every chat away from an agent and put it back at the front of the queue; withdraw
    the offers they hold. The caller runs a routing pass afterwards.

    "Front" means the chat keeps its original `queued_at`, so it sorts before everyone who
    arrived after it; its history stays intact.
    """
    outcome = Outcome()
    agent = await session.get(Agent, agent_id)
    policy, _ = await routing_repository.load_policy(session)
    # Offers they hold are withdrawn too, so that the caller's routing pass gives those chats
    # to someone else now rather than at expiry.
    for pending in await routing_repository.pending_offers_for_agent(session, agent_id):
        offer = await routing_repository.lock_offer(session, pending.id)
        if offer is None or offer.state is not OfferState.PENDING:
            continue
        offer.state = OfferState.CANCELLED
        offer.decided_at = now
        outcome.notices.append(_withdrawn(offer, reason))
    events, notices = await transfers.drop_receiver(session, agent_id, now=now)
    outcome.events.extend(events)
    outcome.notices.extend(notices)
    for conversation in await repository.assigned_to(session, agent_id, lock=True):
        events, notices = await transfers.end_pending(
            session, conversation, reason=f"{agent.name if agent else 'The agent'} left.", now=now
        )
        outcome.events.extend(events)
        outcome.notices.extend(notices)
        outcome.merge(
            requeue(
                session,
                conversation,
                policy,
                agent=agent,
                agent_id=agent_id,
                reason=reason,
                now=now,
            )
        )
    await session.flush()
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
        append_event(
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
    )
    outcome.events.append(
        append_event(session, conversation, kind=kinds.QUEUED, now=now, body={"reason": reason})
    )
    outcome.events.extend(advance_step(session, conversation, policy, now=now))
    return outcome


@dataclass(frozen=True, slots=True)
class ConversationHead:
    """Where a conversation's log ends and who is part of it, for reconciling sockets."""

    id: uuid.UUID
    last_seq: int
    state: ConversationState
    visitor_id: uuid.UUID
    agent_id: uuid.UUID | None


async def heads(
    session: AsyncSession,
    *,
    conversation_ids: set[uuid.UUID],
    agent_ids: set[uuid.UUID],
    visitor_ids: set[uuid.UUID],
) -> list[ConversationHead]:
    """The followed conversations, plus the ones these agents hold and these visitors have open."""
    rows = await repository.heads(
        session, conversation_ids=conversation_ids, agent_ids=agent_ids, visitor_ids=visitor_ids
    )
    return [ConversationHead(c.id, c.last_seq, c.state, c.visitor_id, c.agent_id) for c in rows]


async def get(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation | None:
    return await repository.get(session, conversation_id)
