"""The transactional outbox: webhook deliveries written in the transaction of their event.

`record()` is called by `chat.log.append_event` (the one writer of conversation events) for
every event. When the event is a webhook event and active endpoints subscribe to its type, it
adds one `webhook_deliveries` row per endpoint to the same session: the commit that stores the
event queues its deliveries, a rollback leaves neither. No I/O here (rows are flushed with the
event); the subscribers come from the process's cache (`subscriptions.py`).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import WebhookDelivery, WebhookDeliveryStatus
from app.webhooks import subscriptions
from app.webhooks.events import MAPPED_KINDS, StoredFacts, webhook_event


def record(session: AsyncSession, facts: StoredFacts) -> int:
    """Queue the deliveries of one stored event; returns how many rows were added."""
    if facts.kind not in MAPPED_KINDS:
        return 0
    subs = subscriptions.of_session(session)
    if not subs:
        return 0
    event = webhook_event(facts)
    if event is None:
        return 0
    endpoints = subs.subscribers(event.type)
    if not endpoints:
        return 0
    payload = event.payload()
    session.add_all(
        WebhookDelivery(
            endpoint_id=endpoint_id,
            event_id=event.id,
            event_type=event.type,
            conversation_id=event.conversation_id,
            seq=event.seq,
            payload=payload,
            status=WebhookDeliveryStatus.PENDING,
            attempts=0,
            next_attempt_at=event.created_at,
            created_at=event.created_at,
        )
        for endpoint_id in endpoints
    )
    return len(endpoints)
