"""Managing webhook endpoints and their deliveries: what the admin REST API calls.

Services flush and never commit; the request owns the transaction. Every change to an endpoint
also updates this process's cache of subscriptions at once (`subscriptions.py`); other nodes
see it at their next refresh. docs/api.md#webhooks.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from app.webhooks import repository, subscriptions
from app.webhooks.errors import WebhookDeliveryNotFound, WebhookDisabled, WebhookNotFound
from app.webhooks.events import ping_event, redact_payload
from app.webhooks.signing import SECRET_PREFIX

# 256 random bits, as Stripe's and GitHub's secrets.
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def _noted(session: AsyncSession, endpoint: WebhookEndpoint | None, endpoint_id: uuid.UUID) -> None:
    """Tell this process's outbox at once (rolled back with the request only at the next
    refresh: a row queued meanwhile for a phantom endpoint is never sent)."""
    cache = subscriptions.of_session(session)
    if cache is not None:
        active = endpoint is not None and endpoint.active
        cache.put(endpoint_id, endpoint.events if active and endpoint is not None else None)


async def get_endpoint_or_raise(session: AsyncSession, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    row = await session.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise WebhookNotFound("No webhook endpoint has this id.", webhook_id=str(endpoint_id))
    return row


async def list_endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    return await repository.endpoints(session)


async def create_endpoint(
    session: AsyncSession,
    *,
    url: str,
    events: Sequence[str],
    description: str,
    active: bool,
    created_by: uuid.UUID | None,
    now: datetime,
) -> WebhookEndpoint:
    """A new endpoint with a new secret. `url` and `events` were checked by the caller."""
    row = WebhookEndpoint(
        id=uuid.uuid4(),
        url=url,
        events=sorted(set(events)),
        description=description,
        secret=new_secret(),
        active=active,
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    _noted(session, row, row.id)
    return row


async def update_endpoint(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    url: str | None = None,
    events: Sequence[str] | None = None,
    description: str | None = None,
    active: bool | None = None,
    now: datetime,
) -> WebhookEndpoint:
    """Change what is given (None: unchanged)."""
    if url is not None:
        endpoint.url = url
    if events is not None:
        endpoint.events = sorted(set(events))
    if description is not None:
        endpoint.description = description
    if active is not None:
        endpoint.active = active
    endpoint.updated_at = now
    await session.flush()
    _noted(session, endpoint, endpoint.id)
    return endpoint


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its whole delivery log; pending deliveries are never sent."""
    endpoint_id = endpoint.id
    await repository.delete_endpoint(session, endpoint)
    await session.flush()
    _noted(session, None, endpoint_id)


async def rotate_secret(
    session: AsyncSession, endpoint: WebhookEndpoint, *, now: datetime
) -> WebhookEndpoint:
    """A new secret, in force for every request sent from the commit on (no overlap)."""
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    await session.flush()
    return endpoint


async def deliveries(
    session: AsyncSession,
    endpoint: WebhookEndpoint,
    *,
    status: WebhookDeliveryStatus | None,
    before: int | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    return await repository.deliveries(
        session, endpoint_id=endpoint.id, status=status, before=before, limit=limit
    )


async def retry_delivery(
    session: AsyncSession, endpoint: WebhookEndpoint, delivery_id: int, *, now: datetime
) -> WebhookDelivery:
    """Queue a delivery to be sent at once, whatever its status. Its attempts keep counting:
    a failed delivery retried gets one attempt more and is failed again if that fails."""
    row = await repository.delivery(session, endpoint_id=endpoint.id, delivery_id=delivery_id)
    if row is None:
        raise WebhookDeliveryNotFound(
            "This endpoint has no delivery with this id.", delivery_id=delivery_id
        )
    row.status = WebhookDeliveryStatus.PENDING
    row.next_attempt_at = now
    row.delivered_at = None
    await session.flush()
    return row


async def send_test(
    session: AsyncSession, endpoint: WebhookEndpoint, *, now: datetime
) -> WebhookDelivery:
    """Queue a `webhook.test` ping for the endpoint, sent like any other delivery."""
    if not endpoint.active:
        raise WebhookDisabled(
            "This endpoint is disabled: nothing is sent to it until it is enabled again.",
            webhook_id=str(endpoint.id),
        )
    event = ping_event(event_id="evt_" + uuid.uuid4().hex, now=now, endpoint_id=endpoint.id)
    row = WebhookDelivery(
        endpoint_id=endpoint.id,
        event_id=event.id,
        event_type=event.type,
        conversation_id=None,
        seq=None,
        payload=event.payload(),
        status=WebhookDeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def redact_deliveries(session: AsyncSession, *, conversation_id: uuid.UUID) -> int:
    """Remove the words from the stored payloads of one conversation's deliveries, sent or not
    (`events.redact_payload`), in the caller's transaction; returns how many changed.

    Deliveries still pending are then sent redacted, with their ids and order unchanged, when
    their turn comes. One already claimed by a dispatcher (sending now, with the payload it
    read) may go out once more as it was; its retries go redacted. docs/api.md#privacy.
    """
    changed = 0
    for row in await repository.deliveries_of_conversation(session, conversation_id):
        payload = redact_payload(row.payload)
        if payload != row.payload:
            row.payload = payload  # a new object: the JSON column sees the change
            changed += 1
    if changed:
        await session.flush()
    return changed
