"""Conversation lifecycle: open, message, assign, close, read. The one place that writes events.

Every function runs inside the caller's unit of work, flushes, and never commits. It returns an
`Outcome`: the events it stored and the bus notices to publish **after** the commit, so that
nothing is delivered that is not stored first (docs/architecture.md#data-flow-of-one-message).
Must not import FastAPI, Starlette or the bus.

This module keeps messages, closing, read markers and who may see a conversation, and gathers
the rest for its callers. That code lives in modules that import downwards only, each from
those listed before it: `outcome` (`Actor`, `Ack`, `Outcome`), `queue` (entering the queue or
going offline, escalation steps, assigning and offering, requeueing; docs/routing.md), then
`offers` (accept, decline, expiry, taking an offline conversation; docs/protocol.md#offer).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import attachments, labels, participants, repository, transfers
from app.chat import events as kinds
from app.chat.attachments import purge_unsent
from app.chat.errors import (
    AttachmentNotFound,
    ConversationClosed,
    ConversationNotFound,
    NotParticipant,
)
from app.chat.labels import relabel, set_tags
from app.chat.log import append_event
from app.chat.offers import (
    OfflineItem,
    accept_offer,
    decline_offer,
    expire_offers,
    offline_list,
    pending_offer_frames,
    take_offline,
)
from app.chat.outcome import Ack, Actor, Integration, Outcome, agent_ref, join_notice, signed
from app.chat.participants import barged_into
from app.chat.queue import (
    DEFAULT_OFFERS,
    PREVIEW_CHARS,
    ROUTING_BATCH,
    _withdrawn,
    advance_step,
    agent_left,
    assign_waiting,
    enter_queue,
    go_offline,
    hand_over,
    hold,
    lock_chats_of,
    offer_frame,
    requeue,
    requeue_agent_chats,
    take_back,
    try_assign,
)
from app.errors import Forbidden
from app.files.types import is_image
from app.reports import service as reports_service
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.routing.service import OfferPolicy
from app.store.models import (
    Agent,
    Attachment,
    Conversation,
    ConversationState,
    OfferState,
    Role,
    SenderType,
    Visitor,
)

__all__ = [
    "DEFAULT_OFFERS",
    "PREVIEW_CHARS",
    "ROUTING_BATCH",
    "Ack",
    "Actor",
    "ConversationHead",
    "Integration",
    "OfflineItem",
    "Outcome",
    "accept_offer",
    "advance_step",
    "agent_left",
    "agent_ref",
    "assign_waiting",
    "barged_into",
    "close",
    "decline_offer",
    "enter_queue",
    "expire_offers",
    "get",
    "go_offline",
    "hand_over",
    "heads",
    "hold",
    "is_live",
    "is_live_for",
    "join_notice",
    "load_owned",
    "lock_chats_of",
    "mark_read",
    "may_read",
    "may_write",
    "offer_frame",
    "offline_list",
    "pending_offer_frames",
    "purge_unsent",
    "readable_attachment",
    "relabel",
    "requeue",
    "requeue_agent_chats",
    "send_message",
    "set_tags",
    "take_back",
    "take_offline",
    "try_assign",
]


async def _load_owned(
    session: AsyncSession,
    actor: Actor,
    conversation_id: uuid.UUID,
    *,
    participant_ok: bool = False,
) -> Conversation:
    """The conversation, locked, if `actor` may write to it now. With `participant_ok`, a
    supervisor barged into it may too (messages and read markers; not close or transfer).

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
        if conversation.state is ConversationState.CLOSED and (
            conversation.agent_id == actor.id
            or (
                participant_ok
                and await participants.has_taken_part(session, conversation.id, actor.id)
            )
        ):
            raise ConversationClosed(
                "This conversation is closed.", conversation_id=str(conversation_id)
            )
        if participant_ok and await participants.is_present(session, conversation.id, actor.id):
            return conversation  # barged in: open, since closing ends every participation
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
    attachment_ids: Sequence[uuid.UUID] = (),
) -> Outcome:
    """Store a message. A visitor's first message opens a conversation and queues it.

    Resending the same `client_msg_id` stores nothing and acks the first `seq`. An agent must
    name the conversation and hold it; a visitor may omit it to mean their open one.
    `attachment_ids` are the sender's unsent uploads, bound to this message (`attachments.claim`).

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed, AttachmentNotFound.
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
        conversation = await _load_owned(session, actor, conversation_id, participant_ok=True)
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
        # A repeat contact: the visitor's previous conversation was not resolved on first
        # contact if this one opens within the window (docs/metrics.md#per-conversation).
        await reports_service.note_contact(session, visitor_id=actor.id, at=now)
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

    body: dict[str, Any] = {"text": text}
    if attachment_ids:
        # The message takes the next seq; its files are bound to it in this same transaction.
        files = await attachments.claim(
            session,
            actor=actor,
            ids=attachment_ids,
            conversation=conversation,
            seq=conversation.last_seq + 1,
            now=now,
        )
        body["attachments"] = [attachments.ref(f, image=is_image(f.content_type)) for f in files]
    message = append_event(
        session,
        conversation,
        kind=kinds.MESSAGE,
        now=now,
        body=body,
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


async def close(
    session: AsyncSession,
    *,
    actor: Actor | None,
    conversation_id: uuid.UUID,
    now: datetime,
    offers: OfferPolicy = DEFAULT_OFFERS,
    tags: Sequence[str] | None = None,
    disposition: str | None = None,
    integration: Integration | None = None,
) -> Outcome:
    """Close a conversation (by its visitor, its agent, or the system when `actor` is None).

    An agent may label it as they close it: `tags` replace its tags, and `disposition` records
    how it ended (one the deployment offers; required when the settings say so), as the
    agents-only events `conversation.tagged` and `conversation.disposition` written before
    `conversation.closed` (which the visitor sees, so it carries neither). With `actor` None,
    `integration` is another system closing it through the REST API: a system close signed
    with its key (`outcome.signed`), labelled by the same rules as an agent's.

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed, Forbidden (a visitor giving
        tags or a disposition), InvalidLabel, DispositionRequired.
    """
    # Who labels it as it closes (and may have to give a disposition): its agent, or an
    # integration; the system on its own (an erasure) and a visitor do not.
    labeller: Actor | Integration | None = None
    if actor is None:
        labeller = integration
    elif actor.is_agent:
        labeller = actor
    elif tags is not None or disposition is not None:
        raise Forbidden("Only agents give tags or a disposition.")
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
    if labeller is not None:
        # Labels are the team's business: agents-only events, not in `conversation.closed`.
        outcome.events.extend(
            await labels.label_on_close(
                session,
                by=labeller,
                conversation=conversation,
                tags=tags,
                disposition=disposition,
                now=now,
            )
        )
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
    await participants.end_all(session, conversation, now=now)
    conversation.next_step_at = None
    conversation.closed_at = now
    conversation.closed_by = by
    closing: dict[str, Any] = {"by": by.value}
    # The effort question is asked of the visitor after this chat (docs/metrics.md): the close
    # says so, which is what the widget shows and what the response rate counts. Not after an
    # erasure (the system closing on its own): nobody is left to ask.
    if (actor is not None or integration is not None) and (
        await routing_repository.routing_settings(session)
    ).effort_survey:
        closing["effort_asked"] = True
    outcome.events.append(
        append_event(
            session,
            conversation,
            kind=kinds.CLOSED,
            now=now,
            **signed(integration if actor is None else actor, closing),
        )
    )
    # Its figures for reports, in the close's own transaction (docs/metrics.md).
    await reports_service.record(session, conversation)
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
    conversation = await _load_owned(session, actor, conversation_id, participant_ok=True)
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
    an agent offered its pending transfer (they read it all before accepting), a supervisor
    who barged into it, and any active supervisor or admin (they may monitor any chat:
    docs/handoff.md#supervisor-oversight)."""
    if actor.kind is SenderType.VISITOR:
        return conversation.visitor_id == actor.id
    if conversation.agent_id == actor.id:
        return True
    if await repository.agent_has_joined(session, conversation.id, actor.id):
        return True
    if await transfers.is_receiver(session, conversation.id, actor.id):
        return True
    if await participants.has_taken_part(session, conversation.id, actor.id):
        return True
    agent = await session.get(Agent, actor.id)
    return agent is not None and agent.is_active and agent.role is not Role.AGENT


async def is_live(session: AsyncSession, *, actor: Actor, conversation: Conversation) -> bool:
    """`may_write`, and also true for an agent offered the chat's pending transfer."""
    if await may_write(session, actor=actor, conversation=conversation):
        return True
    if not actor.is_agent or conversation.state is ConversationState.CLOSED:
        return False
    return await transfers.is_receiver(session, conversation.id, actor.id)


async def may_write(session: AsyncSession, *, actor: Actor, conversation: Conversation) -> bool:
    """`is_live_for`, and also true for a supervisor barged into the open chat: who may send
    `message`, `typing` and `read` to it (docs/protocol.md#barge)."""
    if is_live_for(actor, conversation):
        return True
    if not actor.is_agent or conversation.state is ConversationState.CLOSED:
        return False
    return await participants.is_present(session, conversation.id, actor.id)


async def readable_attachment(
    session: AsyncSession, *, actor: Actor, attachment_id: uuid.UUID, sees_all: bool = False
) -> Attachment:
    """The attachment if `actor` may download it: its uploader, or anyone who may read the
    conversation whose message carries it (`sees_all`: a supervisor or admin, any sent file).

    Raises:
        AttachmentNotFound: no such attachment, or not one for `actor` (the same answer, so
            that ids are not probeable).
    """
    attachment = await attachments.get(session, attachment_id)
    if attachment is not None:
        if attachment.uploader_id == actor.id and attachment.uploader_type is actor.kind:
            return attachment
        if attachment.conversation_id is not None:
            if sees_all:
                return attachment
            conversation = await repository.get(session, attachment.conversation_id)
            if conversation is not None and await may_read(
                session, actor=actor, conversation=conversation
            ):
                return attachment
    raise AttachmentNotFound("No such attachment.", attachment_id=str(attachment_id))


def is_live_for(actor: Actor, conversation: Conversation) -> bool:
    """Whether `actor` should keep receiving this conversation's events as they happen."""
    if conversation.state is ConversationState.CLOSED:
        return False
    if actor.kind is SenderType.VISITOR:
        return conversation.visitor_id == actor.id
    return conversation.agent_id == actor.id and conversation.state is ConversationState.ASSIGNED


@dataclass(frozen=True, slots=True)
class ConversationHead:
    """Where a conversation's log ends and who is part of it, for reconciling sockets."""

    id: uuid.UUID
    last_seq: int
    state: ConversationState
    visitor_id: uuid.UUID
    agent_id: uuid.UUID | None
    # Supervisors barged into it now.
    participants: frozenset[uuid.UUID] = frozenset()


async def heads(
    session: AsyncSession,
    *,
    conversation_ids: set[uuid.UUID],
    agent_ids: set[uuid.UUID],
    visitor_ids: set[uuid.UUID],
) -> list[ConversationHead]:
    """The followed conversations, plus the ones these agents hold or barged into and these
    visitors have open."""
    rows = await repository.heads(
        session, conversation_ids=conversation_ids, agent_ids=agent_ids, visitor_ids=visitor_ids
    )
    present = await participants.present_among(session, {c.id for c in rows}) if agent_ids else {}
    return [
        ConversationHead(
            c.id, c.last_seq, c.state, c.visitor_id, c.agent_id, present.get(c.id, frozenset())
        )
        for c in rows
    ]


async def get(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation | None:
    return await repository.get(session, conversation_id)
