"""Erasing one visitor, and redacting one conversation (shared with the retention policy).

An erasure removes who the visitor is (name, email, attributes, external id, verification) and
revokes their token (its hash is replaced by the hash of a token nobody holds), closes their
open conversation as the system would, then redacts every conversation of theirs: the words in
each event (`redaction.redact_body`), the rating's comment, the page, free-text transfer notes
and escalation reasons, and every file sent in it or uploaded by them (rows here; the caller
deletes the bytes), and the copies of its words in the webhook delivery log (the stored
payloads, sent or still to send: pending ones go out redacted). Conversation rows, states,
timings, scores, tags and `seq`s stay, so counts and durations stay true. Each conversation
whose events or files changed gets one agents-only `conversation.redacted` event; an
`erasures` row records who asked and what went.

Must not commit, nor touch the file store: the caller owns the transaction and deletes the
returned storage keys (docs/api.md#privacy says in which order).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import VISITOR_TOKEN_PREFIX, new_token, token_hash
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat.events import StoredEvent
from app.chat.log import append_event
from app.chat.service import Outcome
from app.privacy.errors import VisitorNotFound
from app.privacy.redaction import REDACTED, redact_body
from app.routing.service import OfferPolicy
from app.store.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    ConversationState,
    Erasure,
    QualityReview,
    SenderType,
    Transfer,
    Visibility,
    Visitor,
)
from app.webhooks import service as webhook_service


@dataclass(slots=True)
class Redaction:
    """What redacting one conversation changed."""

    seqs: list[int] = field(default_factory=list)  # events whose body or sender name changed
    storage_keys: list[str] = field(default_factory=list)  # files to delete after the commit
    event: StoredEvent | None = None  # the `conversation.redacted` event, if anything changed
    # Webhook deliveries whose payload changed. Not a change of the conversation's own (no
    # event for it): a conversation redacted before payloads were has them redacted now.
    deliveries: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.seqs or self.storage_keys)


@dataclass(slots=True)
class Erased:
    record: Erasure
    storage_keys: list[str]
    outcome: Outcome  # the closes and `conversation.redacted` events, to publish after commit


def forget_identity(visitor: Visitor, *, now: datetime) -> None:
    """Remove who the visitor is and revoke their token (its hash becomes that of a token
    nobody holds); the row and its id stay, for the conversations that point to it."""
    visitor.token_hash = token_hash(new_token(VISITOR_TOKEN_PREFIX))
    visitor.name = None
    visitor.email = None
    visitor.attributes = {}
    visitor.external_id = None
    visitor.verified_at = None
    if visitor.erased_at is None:
        visitor.erased_at = now


async def redact_conversation(
    session: AsyncSession,
    conversation: Conversation,
    *,
    now: datetime,
    cause: dict[str, Any],
) -> Redaction:
    """Remove the words and files of one conversation whose row the caller holds locked.

    `cause` goes into the `conversation.redacted` body (`{"by": "erasure", "erasure_id": …}` or
    `{"by": "retention"}`). Nothing is written when nothing was left to remove.
    """
    result = Redaction()
    rows = await session.scalars(
        select(ConversationEvent)
        .where(ConversationEvent.conversation_id == conversation.id)
        .order_by(ConversationEvent.seq)
    )
    for row in rows:
        if row.kind == REDACTED:
            continue
        body = redact_body(row.kind, dict(row.body or {}))
        name_goes = row.sender_type is SenderType.VISITOR and row.sender_name is not None
        if body != (row.body or {}) or name_goes:
            row.body = body
            if name_goes:
                row.sender_name = None
            result.seqs.append(row.seq)
    files = list(
        await session.scalars(
            select(Attachment).where(Attachment.conversation_id == conversation.id)
        )
    )
    for attachment in files:
        result.storage_keys.append(attachment.storage_key)
        await session.delete(attachment)
    for transfer in await session.scalars(
        select(Transfer).where(
            Transfer.conversation_id == conversation.id,
            (Transfer.note.is_not(None)) | (Transfer.reason.is_not(None)),
        )
    ):
        transfer.note = None
        transfer.reason = None
    # Supervisors' review comments may quote what the customer said; the scores stay.
    for review in await session.scalars(
        select(QualityReview).where(QualityReview.conversation_id == conversation.id)
    ):
        scores = [{**score, "comment": None} for score in review.scores or []]
        if review.comment is not None or scores != review.scores:
            review.comment = None
            review.scores = scores
    result.deliveries = await webhook_service.redact_deliveries(
        session, conversation_id=conversation.id
    )
    conversation.page_url = None
    conversation.rating_comment = None
    if conversation.escalation_reason is not None:
        conversation.escalation_reason = ""
    if result.changed:
        conversation.redacted_at = now
        result.event = append_event(
            session,
            conversation,
            kind=REDACTED,
            now=now,
            body={
                **cause,
                "seqs": list(result.seqs),
                "attachments_deleted": len(result.storage_keys),
            },
            visibility=Visibility.AGENTS,
        )
    elif conversation.redacted_at is None:
        conversation.redacted_at = now
    await session.flush()
    return result


async def erase_visitor(
    session: AsyncSession,
    *,
    visitor_id: uuid.UUID,
    requested_by: str,
    now: datetime,
    offers: OfferPolicy,
) -> Erased:
    """Erase everything of one visitor but the figures (docs/api.md#privacy). Idempotent: a
    second erasure finds nothing left, changes nothing and is recorded with zero counts.

    Raises:
        VisitorNotFound: no visitor has this id.
    """
    visitor = await session.scalar(
        select(Visitor).where(Visitor.id == visitor_id).with_for_update()
    )
    if visitor is None:
        raise VisitorNotFound("No such visitor.", visitor_id=str(visitor_id))
    outcome = Outcome()
    record = Erasure(
        id=uuid.uuid4(),
        visitor_id=visitor.id,
        requested_by=requested_by,
        requested_at=now,
        conversations=0,
        conversations_closed=0,
        events_redacted=0,
        attachments_deleted=0,
    )
    # Revoked first: from this commit on the widget's token is refused, so the visitor cannot
    # open a new conversation under the identity being erased (sockets already open keep
    # theirs until they reconnect; docs/api.md#privacy).
    forget_identity(visitor, now=now)
    ids = list(
        await session.scalars(
            select(Conversation.id)
            .where(Conversation.visitor_id == visitor.id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    keys: list[str] = []
    for conversation_id in ids:
        conversation = await chat_repository.get_for_update(session, conversation_id)
        if conversation is None:
            continue
        if conversation.state is not ConversationState.CLOSED:
            # Closed as the system closes a chat: its agent sees it end, the queue moves on.
            outcome.merge(
                await chat_service.close(
                    session, actor=None, conversation_id=conversation.id, now=now, offers=offers
                )
            )
            record.conversations_closed += 1
        done = await redact_conversation(
            session,
            conversation,
            now=now,
            cause={"by": "erasure", "erasure_id": str(record.id)},
        )
        record.conversations += 1
        record.events_redacted += len(done.seqs)
        keys.extend(done.storage_keys)
        if done.event is not None:
            outcome.events.append(done.event)
    # Uploads of theirs that no message carried.
    for attachment in await session.scalars(
        select(Attachment).where(
            Attachment.uploader_type == SenderType.VISITOR,
            Attachment.uploader_id == visitor.id,
            Attachment.conversation_id.is_(None),
        )
    ):
        keys.append(attachment.storage_key)
        await session.delete(attachment)
    record.attachments_deleted = len(keys)
    session.add(record)
    await session.flush()
    return Erased(record=record, storage_keys=keys, outcome=outcome)


async def get_visitor_or_raise(session: AsyncSession, visitor_id: uuid.UUID) -> Visitor:
    """Raises:
    VisitorNotFound: no visitor has this id."""
    visitor = await session.get(Visitor, visitor_id)
    if visitor is None:
        raise VisitorNotFound("No such visitor.", visitor_id=str(visitor_id))
    return visitor


async def erasures_of(session: AsyncSession, visitor_id: uuid.UUID) -> list[Erasure]:
    return list(
        await session.scalars(
            select(Erasure)
            .where(Erasure.visitor_id == visitor_id)
            .order_by(Erasure.requested_at, Erasure.id)
        )
    )
