"""Tags and dispositions: how agents label a chat, and the outcome they record when closing it.

Tags are free labels ("refund", "vip"), normalised so that "Refund " and "refund" are one tag:
trimmed, inner whitespace collapsed, lower-cased; at most `MAX_TAGS` per chat, `MAX_TAG_CHARS`
each. A disposition is one of the codes the deployment offers (`RoutingSettings.dispositions`,
edited through the admin API); with `require_disposition`, an agent's close needs one (and so
does an integration's, closing through the REST API). Labels may change after the close through
the REST API (`relabel`): agents-only events appended after `conversation.closed`.
Reference: docs/protocol.md#tags, docs/protocol.md#close, docs/console.md#closing-a-chat,
docs/api.md#changing-conversations.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository
from app.chat.errors import ConversationClosed, ConversationNotFound, NotParticipant
from app.chat.events import StoredEvent
from app.chat.log import append_event
from app.chat.outcome import Actor, Integration, signed
from app.errors import Forbidden, WarmlineError
from app.reports import service as reports_service
from app.store.models import (
    DEFAULT_DISPOSITIONS,
    Agent,
    Conversation,
    ConversationParticipant,
    ConversationState,
    Role,
    RoutingSettings,
    Visibility,
)

MAX_TAGS = 20
MAX_TAG_CHARS = 32
SUPERVISING = (Role.SUPERVISOR, Role.ADMIN)


class InvalidLabel(WarmlineError):
    """A tag or disposition the server cannot store (rendered like `invalid_frame`)."""

    code = "invalid_frame"
    status_code = 422


class DispositionRequired(WarmlineError):
    code = "disposition_required"
    status_code = 422


def normalise_tags(tags: Sequence[str]) -> list[str]:
    """The tags as stored: trimmed, whitespace collapsed, lower-case, first occurrence kept.

    Raises:
        InvalidLabel: a blank or too long tag, or more than `MAX_TAGS` distinct tags.
    """
    out: list[str] = []
    for raw in tags:
        tag = " ".join(raw.split()).lower()
        if not tag:
            raise InvalidLabel("A tag cannot be blank.", limit=MAX_TAG_CHARS)
        if len(tag) > MAX_TAG_CHARS:
            raise InvalidLabel(
                f"A tag has at most {MAX_TAG_CHARS} characters.", tag=tag, limit=MAX_TAG_CHARS
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise InvalidLabel(f"A conversation has at most {MAX_TAGS} tags.", limit=MAX_TAGS)
    return out


async def offered_dispositions(session: AsyncSession) -> tuple[list[dict[str, str]], bool]:
    """The dispositions agents choose from, and whether closing needs one."""
    row = await session.get(RoutingSettings, 1)
    if row is None:  # a deployment whose settings row was never written: the defaults
        return [dict(d) for d in DEFAULT_DISPOSITIONS], False
    return [dict(d) for d in row.dispositions], row.require_disposition


async def check_disposition(session: AsyncSession, code: str | None) -> str | None:
    """`code` if the deployment offers it (None stays None unless one is required).

    Raises:
        InvalidLabel: a code that is not offered. DispositionRequired: none given, one required.
    """
    offered, required = await offered_dispositions(session)
    if code is None:
        if required:
            raise DispositionRequired(
                "Choose how this conversation ended (a disposition) to close it.",
                dispositions=[d["code"] for d in offered],
            )
        return None
    if code not in {d["code"] for d in offered}:
        raise InvalidLabel(
            "Unknown disposition.", disposition=code, dispositions=[d["code"] for d in offered]
        )
    return code


async def label_on_close(
    session: AsyncSession,
    *,
    by: Actor | Integration,
    conversation: Conversation,
    tags: Sequence[str] | None,
    disposition: str | None,
    now: datetime,
) -> list[StoredEvent]:
    """An agent (or an integration, through the REST API) closing a chat: store its tags and
    disposition (checked first, so a refused close changes nothing) and write the agents-only
    `conversation.tagged` (when the tags changed) and `conversation.disposition` events, before
    `conversation.closed`.

    Raises:
        InvalidLabel, DispositionRequired.
    """
    chosen = await check_disposition(session, disposition)
    wanted = None if tags is None else normalise_tags(tags)
    events: list[StoredEvent] = []
    if wanted is not None and set(wanted) != set(conversation.tags or []):
        events.append(_tagged(session, by, conversation, wanted, now))
    if chosen is not None:
        events.append(await _disposed(session, by, conversation, chosen, now))
    return events


async def _disposed(
    session: AsyncSession,
    by: Actor | Integration,
    conversation: Conversation,
    chosen: str,
    now: datetime,
) -> StoredEvent:
    offered, _ = await offered_dispositions(session)
    label = next((d["label"] for d in offered if d["code"] == chosen), chosen)
    conversation.disposition = chosen
    return append_event(
        session,
        conversation,
        kind=kinds.DISPOSITION,
        now=now,
        visibility=Visibility.AGENTS,
        **signed(by, {"disposition": chosen, "label": label}),
    )


def _tagged(
    session: AsyncSession,
    by: Actor | Integration,
    conversation: Conversation,
    wanted: list[str],
    now: datetime,
) -> StoredEvent:
    before = list(conversation.tags or [])
    conversation.tags = wanted
    body = {
        "tags": wanted,
        "added": [t for t in wanted if t not in before],
        "removed": [t for t in before if t not in wanted],
    }
    return append_event(
        session,
        conversation,
        kind=kinds.TAGGED,
        now=now,
        visibility=Visibility.AGENTS,
        **signed(by, body),
    )


async def may_label(session: AsyncSession, actor: Actor, conversation: Conversation) -> bool:
    """Who may change a chat's tags: the agent who holds it, a supervisor or admin (any chat),
    and a supervisor present in it after barging in."""
    if not actor.is_agent:
        return False
    if conversation.state is ConversationState.ASSIGNED and conversation.agent_id == actor.id:
        return True
    agent = await session.get(Agent, actor.id)
    if agent is None or not agent.is_active:
        return False
    if agent.role in SUPERVISING:
        return True
    present = await session.scalar(
        select(ConversationParticipant.id).where(
            ConversationParticipant.conversation_id == conversation.id,
            ConversationParticipant.agent_id == actor.id,
            ConversationParticipant.left_at.is_(None),
        )
    )
    return present is not None


async def set_tags(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    tags: Sequence[str],
    now: datetime,
) -> StoredEvent | None:
    """Replace a chat's tags; the agents-only `conversation.tagged` event, or None when the
    set did not change.

    Raises:
        Forbidden (a visitor), ConversationNotFound, NotParticipant, ConversationClosed,
        InvalidLabel.
    """
    if not actor.is_agent:
        raise Forbidden("Only agents tag conversations.")
    wanted = normalise_tags(tags)
    conversation = await repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if not await may_label(session, actor, conversation):
        raise NotParticipant(
            "You are not assigned to this conversation.", conversation_id=str(conversation_id)
        )
    if conversation.state is ConversationState.CLOSED:
        raise ConversationClosed(
            "This conversation is closed.", conversation_id=str(conversation_id)
        )
    if set(wanted) == set(conversation.tags or []):  # a set: a new order is no change
        return None
    return _tagged(session, actor, conversation, wanted, now)


async def relabel(
    session: AsyncSession,
    *,
    by: Actor | Integration,
    conversation_id: uuid.UUID,
    tags: Sequence[str] | None,
    disposition: str | None,
    now: datetime,
) -> list[StoredEvent]:
    """Change a conversation's tags, or a closed one's disposition, through the REST API
    (docs/api.md#changing-conversations); the agents-only events written, none when nothing
    changed.

    While the conversation is open, an agent needs what the `tags` frame needs (`may_label`).
    Once it is closed, labels may still change, appended after `conversation.closed` as
    `conversation.rated` is (a QA tool or a CRM labels after the fact): by an integration, a
    supervisor or an admin, not by a plain agent (the frames refuse a closed chat too). A
    disposition says how a conversation ended, so it is set here only on a closed one; an
    open one gets it with its close.

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed, InvalidLabel (a tag, an
        unknown disposition, or a disposition for an open conversation: `details.disposition`
        says which).
    """
    wanted = None if tags is None else normalise_tags(tags)
    conversation = await repository.get_for_update(session, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    closed = conversation.state is ConversationState.CLOSED
    if isinstance(by, Actor):
        if not closed and not await may_label(session, by, conversation):
            raise NotParticipant(
                "You are not assigned to this conversation.", conversation_id=str(conversation_id)
            )
        if closed and not await _supervises(session, by):
            if conversation.agent_id == by.id:
                raise ConversationClosed(
                    "This conversation is closed: only supervisors, admins and API keys "
                    "change its labels now.",
                    conversation_id=str(conversation_id),
                )
            raise NotParticipant(
                "You are not assigned to this conversation.", conversation_id=str(conversation_id)
            )
    chosen = None
    if disposition is not None:
        if not closed:
            raise InvalidLabel(
                "A disposition says how the conversation ended: give it when closing it.",
                disposition=disposition,
            )
        chosen = await check_disposition(session, disposition)
    events: list[StoredEvent] = []
    if wanted is not None and set(wanted) != set(conversation.tags or []):
        events.append(_tagged(session, by, conversation, wanted, now))
    if chosen is not None and chosen != conversation.disposition:
        events.append(await _disposed(session, by, conversation, chosen, now))
    if closed and events:
        # A closed conversation's figures carry its labels (docs/metrics.md#per-conversation).
        await reports_service.record(session, conversation)
    return events


async def _supervises(session: AsyncSession, actor: Actor) -> bool:
    agent = await session.get(Agent, actor.id)
    return agent is not None and agent.is_active and agent.role in SUPERVISING
