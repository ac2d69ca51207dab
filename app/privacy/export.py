"""Everything stored about one visitor, as one document (GDPR right of access).

What is in it: the visitor's identity and attributes; every conversation of theirs with its
states and timings, its rating, whether it was a message left while nobody could answer, and
every event the visitor could see (what they wrote, what agents wrote to them, who joined and
left, the close, the rating), bodies as stored; every file sent in those conversations or
uploaded by them, with where to download it; and the erasures already made. What is not:
agents-only events (internal notes, whispers, the transfer channel between agents, summaries,
routing decisions) and agents' labels, which are the team's working notes rather than what was
written to or by the visitor (docs/api.md#privacy explains the choice). Reads only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.events import iso
from app.privacy.erasure import erasures_of, get_visitor_or_raise
from app.store.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    Erasure,
    SenderType,
    Visibility,
    Visitor,
)

FORMAT = "warmline.visitor-export/1"
# Where an agent, supervisor or admin downloads a file (docs/api.md#attachments).
DOWNLOAD_PATH = "/api/v1/attachments/{id}"


def _at(value: datetime | None) -> str | None:
    return None if value is None else iso(value)


def erasure_json(row: Erasure) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "visitor_id": str(row.visitor_id),
        "requested_by": row.requested_by,
        "requested_at": iso(row.requested_at),
        "conversations": row.conversations,
        "conversations_closed": row.conversations_closed,
        "events_redacted": row.events_redacted,
        "attachments_deleted": row.attachments_deleted,
    }


def _visitor(row: Visitor) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "email": row.email,
        "attributes": dict(row.attributes or {}),
        "external_id": row.external_id,
        "verified_at": _at(row.verified_at),
        "priority": row.priority,
        "created_at": iso(row.created_at),
        "last_seen_at": iso(row.last_seen_at),
        "erased_at": _at(row.erased_at),
    }


def _event(row: ConversationEvent) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": iso(row.created_at),
        "kind": row.kind,
        "sender": {
            "type": row.sender_type.value,
            "id": None if row.sender_id is None else str(row.sender_id),
            "name": row.sender_name,
        },
        "body": dict(row.body or {}),
    }


def _conversation(row: Conversation, events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "state": row.state.value,
        "created_at": iso(row.created_at),
        "queued_at": _at(row.queued_at),
        "assigned_at": _at(row.assigned_at),
        "closed_at": _at(row.closed_at),
        "closed_by": None if row.closed_by is None else row.closed_by.value,
        "page_url": row.page_url,
        "left_offline": row.offline_reason is not None,
        "offline_reason": row.offline_reason,
        "rating": None
        if row.rating is None
        else {"score": row.rating, "comment": row.rating_comment, "rated_at": _at(row.rated_at)},
        "redacted_at": _at(row.redacted_at),
        "events": events,
    }


def _attachment(row: Attachment) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": row.uploader_type.value,
        "conversation_id": None if row.conversation_id is None else str(row.conversation_id),
        "seq": row.seq,
        "created_at": iso(row.created_at),
        "sent_at": _at(row.sent_at),
        "download_url": DOWNLOAD_PATH.format(id=row.id),
    }


async def export_visitor(
    session: AsyncSession, *, visitor_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """The visitor's export document (its shape: docs/api.md#privacy).

    Raises:
        VisitorNotFound: no visitor has this id.
    """
    visitor = await get_visitor_or_raise(session, visitor_id)
    conversations = list(
        await session.scalars(
            select(Conversation)
            .where(Conversation.visitor_id == visitor.id)
            .order_by(Conversation.created_at, Conversation.id)
        )
    )
    ids = [c.id for c in conversations]
    by_conversation: dict[uuid.UUID, list[dict[str, Any]]] = {cid: [] for cid in ids}
    files: list[Attachment] = []
    if ids:
        for row in await session.scalars(
            select(ConversationEvent)
            .where(
                ConversationEvent.conversation_id.in_(ids),
                ConversationEvent.visibility == Visibility.ALL,
            )
            .order_by(ConversationEvent.conversation_id, ConversationEvent.seq)
        ):
            by_conversation[row.conversation_id].append(_event(row))
        files.extend(
            await session.scalars(
                select(Attachment)
                .where(Attachment.conversation_id.in_(ids))
                .order_by(Attachment.created_at, Attachment.id)
            )
        )
    files.extend(
        await session.scalars(
            select(Attachment)
            .where(
                Attachment.uploader_type == SenderType.VISITOR,
                Attachment.uploader_id == visitor.id,
                Attachment.conversation_id.is_(None),
            )
            .order_by(Attachment.created_at, Attachment.id)
        )
    )
    return {
        "format": FORMAT,
        "exported_at": iso(now),
        "visitor": _visitor(visitor),
        "conversations": [_conversation(c, by_conversation[c.id]) for c in conversations],
        "attachments": [_attachment(f) for f in files],
        "erasures": [erasure_json(e) for e in await erasures_of(session, visitor.id)],
    }
