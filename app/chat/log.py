"""Appending to a conversation's log: the one function that writes events (`seq` stays dense
because the caller holds the conversation's row). Each event that is a webhook event also
queues its deliveries here, in the same transaction (`webhooks.outbox`, docs/api.md#webhooks)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.events import StoredEvent
from app.store.db import after_commit
from app.store.models import Conversation, ConversationEvent, SenderType, Visibility
from app.webhooks import outbox
from app.webhooks.events import StoredFacts


def append_event(
    session: AsyncSession,
    conversation: Conversation,
    *,
    kind: str,
    now: datetime,
    body: dict[str, Any],
    sender_type: SenderType = SenderType.SYSTEM,
    sender_id: uuid.UUID | None = None,
    sender_name: str | None = None,
    client_msg_id: str | None = None,
    visibility: Visibility = Visibility.ALL,
) -> StoredEvent:
    """Append one event. The caller holds the conversation's row, so `seq` stays dense."""
    conversation.last_seq += 1
    row = ConversationEvent(
        conversation_id=conversation.id,
        seq=conversation.last_seq,
        kind=kind,
        sender_type=sender_type,
        sender_id=sender_id,
        sender_name=sender_name,
        client_msg_id=client_msg_id,
        visibility=visibility,
        body=body,
        created_at=now,
    )
    session.add(row)
    stored = StoredEvent.of(row)
    # Counted once committed (docs/metrics.md#prometheus-metrics); a rollback counts nothing.
    after_commit(session, lambda m: m.event_committed(kind, sender_type.value, stored.body))
    outbox.record(
        session,
        StoredFacts(
            conversation_id=stored.conversation_id,
            seq=stored.seq,
            kind=kind,
            sender_type=sender_type.value,
            sender_id=sender_id,
            sender_name=sender_name,
            visibility=visibility.value,
            body=stored.body,
            created_at=now,
        ),
    )
    return stored
