"""Attachment records: who uploaded a file, which message carries it, and who may read it.

A file is uploaded first (the bytes go to the file store, then `record_upload` writes the row),
and sent second: a `message` frame names up to `MAX_PER_MESSAGE` uploads, and `claim` binds them
to that message in the same transaction that stores it, so a message and its files are stored
together or not at all. Until then only the uploader sees an upload; unsent uploads are purged
after `UNSENT_TTL`. Must not import FastAPI or the file store (callers delete the bytes).
Reference: docs/api.md#attachments, docs/protocol.md#message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.errors import AttachmentNotFound, TooManyUploads
from app.chat.outcome import Actor
from app.store.models import Attachment, Conversation

# A message with more files than this is more likely a mistake than a conversation.
MAX_PER_MESSAGE = 10
# Uploads a sender may hold unsent at once: enough for a message's worth plus retries, few
# enough that an anonymous visitor cannot park gigabytes on the server.
MAX_UNSENT = 20
# An upload nobody sent within a day was abandoned (the tab closed mid-message).
UNSENT_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file already in the store, about to be recorded."""

    id: uuid.UUID
    filename: str
    content_type: str
    size: int
    sha256: str
    storage_key: str


def ref(attachment: Attachment, *, image: bool) -> dict[str, Any]:
    """How a message event names one of its files (docs/protocol.md#message)."""
    return {
        "id": str(attachment.id),
        "name": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "image": image,
    }


async def unsent_count(session: AsyncSession, *, actor: Actor) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(Attachment)
        .where(Attachment.uploader_id == actor.id, Attachment.conversation_id.is_(None))
    )
    return int(count or 0)


async def check_quota(session: AsyncSession, *, actor: Actor) -> None:
    """Raises:
    TooManyUploads: the sender already holds `MAX_UNSENT` unsent uploads.
    """
    if await unsent_count(session, actor=actor) >= MAX_UNSENT:
        raise TooManyUploads(
            f"You have {MAX_UNSENT} files uploaded but not sent; send or wait before adding more."
        )


async def record_upload(
    session: AsyncSession, *, actor: Actor, upload: Upload, now: datetime
) -> Attachment:
    """Record a stored upload as its uploader's, unsent.

    Raises:
        TooManyUploads: checked again here, since uploads run in parallel.
    """
    await check_quota(session, actor=actor)
    attachment = Attachment(
        id=upload.id,
        uploader_type=actor.kind,
        uploader_id=actor.id,
        filename=upload.filename,
        content_type=upload.content_type,
        size=upload.size,
        sha256=upload.sha256,
        storage_key=upload.storage_key,
        created_at=now,
    )
    session.add(attachment)
    await session.flush()
    return attachment


async def claim(
    session: AsyncSession,
    *,
    actor: Actor,
    ids: Sequence[uuid.UUID],
    conversation: Conversation,
    seq: int,
    now: datetime,
) -> list[Attachment]:
    """Bind the sender's unsent uploads `ids` to the message `seq` of `conversation`, in order.

    Raises:
        AttachmentNotFound: an id is not an unsent upload of this sender (someone else's, already
            sent with another message, purged, or never uploaded). Nothing is bound then.
    """
    if not ids:
        return []
    rows = {
        a.id: a
        for a in await session.scalars(
            select(Attachment).where(Attachment.id.in_(ids)).with_for_update()
        )
    }
    found: list[Attachment] = []
    for attachment_id in ids:
        attachment = rows.get(attachment_id)
        if (
            attachment is None
            or attachment.uploader_id != actor.id
            or attachment.uploader_type is not actor.kind
            or attachment.conversation_id is not None
        ):
            raise AttachmentNotFound(
                "No unsent upload of yours has this id; upload the file again.",
                attachment_id=str(attachment_id),
            )
        found.append(attachment)
    for attachment in found:
        attachment.conversation_id = conversation.id
        attachment.seq = seq
        attachment.sent_at = now
    return found


async def get(session: AsyncSession, attachment_id: uuid.UUID) -> Attachment | None:
    return await session.get(Attachment, attachment_id)


async def purge_unsent(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[str]:
    """Delete the records of uploads nobody sent within `UNSENT_TTL`; returns their storage keys
    for the caller to delete from the file store once this unit has committed."""
    rows = list(
        await session.scalars(
            select(Attachment)
            .where(Attachment.conversation_id.is_(None), Attachment.created_at < now - UNSENT_TTL)
            .order_by(Attachment.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        await session.delete(row)
    await session.flush()
    return [row.storage_key for row in rows]
