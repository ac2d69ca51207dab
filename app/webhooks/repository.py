"""Queries of webhook endpoints and deliveries (docs/api.md#webhooks)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.store.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint


async def active_subscriptions(session: AsyncSession) -> dict[uuid.UUID, list[str]]:
    """Every active endpoint and its event types: what the outbox's cache holds."""
    rows = await session.execute(
        select(WebhookEndpoint.id, WebhookEndpoint.events).where(WebhookEndpoint.active)
    )
    return {eid: list(types) for eid, types in rows.tuples()}


async def endpoints(session: AsyncSession) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.created_at, WebhookEndpoint.id)
    return (await session.scalars(query)).all()


async def delete_endpoint(session: AsyncSession, endpoint: WebhookEndpoint) -> None:
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    await session.delete(endpoint)


async def deliveries(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID,
    status: WebhookDeliveryStatus | None,
    before: int | None,
    limit: int,
) -> Sequence[WebhookDelivery]:
    """An endpoint's log, newest first, `limit` rows with ids below `before`."""
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.id < before)
    query = query.order_by(WebhookDelivery.id.desc()).limit(limit)
    return (await session.scalars(query)).all()


async def delivery(
    session: AsyncSession, *, endpoint_id: uuid.UUID, delivery_id: int
) -> WebhookDelivery | None:
    return await session.scalar(
        select(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id
        )
    )


async def deliveries_of_conversation(
    session: AsyncSession, conversation_id: uuid.UUID
) -> Sequence[WebhookDelivery]:
    """Every delivery of one conversation's events, to every endpoint, whatever its status."""
    query = select(WebhookDelivery).where(WebhookDelivery.conversation_id == conversation_id)
    return (await session.scalars(query.order_by(WebhookDelivery.id))).all()


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this node took to send, with what sending needs."""

    id: int
    endpoint_id: uuid.UUID
    url: str
    secret: str
    event_id: str
    event_type: str
    conversation_id: uuid.UUID | None
    seq: int | None
    payload: dict[str, object]
    attempts: int


async def claim_due(
    session: AsyncSession, *, now: datetime, limit: int, lease: timedelta
) -> list[Claimed]:
    """Lock up to `limit` due pending deliveries of active endpoints, oldest first.

    `FOR UPDATE SKIP LOCKED` (PostgreSQL; SQLite has one writer at a time): two nodes never take
    the same row. A row is held back while an earlier event of its conversation for the same
    endpoint waits for a retry or is being sent by another node (its `next_attempt_at`, the
    lease, is in the future), so an endpoint gets a conversation's events in order in the
    normal case. Each row's `next_attempt_at` becomes its lease: `lease` per row of its
    conversation in this batch (they are sent one after the other), after which another node
    may send it again if this one died meanwhile.
    """
    earlier = aliased(WebhookDelivery)
    held_back = exists().where(
        earlier.endpoint_id == WebhookDelivery.endpoint_id,
        earlier.conversation_id == WebhookDelivery.conversation_id,
        earlier.status == WebhookDeliveryStatus.PENDING,
        earlier.seq < WebhookDelivery.seq,
        earlier.next_attempt_at > now,
    )
    query = (
        select(WebhookDelivery, WebhookEndpoint.url, WebhookEndpoint.secret)
        .join(
            WebhookEndpoint,
            and_(WebhookEndpoint.id == WebhookDelivery.endpoint_id, WebhookEndpoint.active),
        )
        .where(
            WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            ~held_back,
        )
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    rows = (await session.execute(query)).tuples().all()
    batch: dict[tuple[uuid.UUID, uuid.UUID | None], int] = {}
    for row, _url, _secret in rows:
        key = (row.endpoint_id, row.conversation_id or uuid.uuid4())
        batch[key] = batch.get(key, 0) + 1
        row.next_attempt_at = now + lease * (batch[key] + 1)
    return [
        Claimed(
            id=row.id,
            endpoint_id=row.endpoint_id,
            url=url,
            secret=secret,
            event_id=row.event_id,
            event_type=row.event_type,
            conversation_id=row.conversation_id,
            seq=row.seq,
            payload=dict(row.payload),
            attempts=row.attempts,
        )
        for row, url, secret in rows
    ]
