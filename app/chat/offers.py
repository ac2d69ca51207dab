"""An agent takes a chat they were shown. They answer an offer: accept it (the chat is theirs; in
broadcast mode the others' offers are withdrawn), decline it (it goes to the next agent), or let
it expire; the `offer` frames of their pending offers are sent again after a reconnect
(docs/protocol.md#offer). Or they take an offline conversation, a message left for later, from
the list of those they may take (docs/routing.md#offline-messages).

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`
(docs/architecture.md#data-flow-of-one-message). The conversation's row is locked before the
offer's. Must not import FastAPI, Starlette or the bus.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository
from app.chat.errors import (
    AtCapacity,
    ConversationNotFound,
    NotOffline,
    NotParticipant,
    OfferNotFound,
    OfferNotPending,
)
from app.chat.log import append_event
from app.chat.outcome import Actor, Outcome
from app.chat.queue import (
    DEFAULT_OFFERS,
    PREVIEW_CHARS,
    _assign,
    _withdrawn,
    offer_frame,
    try_assign,
)
from app.routing import repository as routing_repository
from app.routing.service import OfferPolicy
from app.store.models import (
    Agent,
    Conversation,
    ConversationState,
    Offer,
    OfferState,
    Role,
    Visibility,
    Visitor,
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
