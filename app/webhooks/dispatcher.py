"""Sending queued webhook deliveries: the `webhooks.deliver` loop every node runs.

Each round, in one short transaction, the node claims due deliveries (`FOR UPDATE SKIP LOCKED`
on PostgreSQL; SQLite has a single writer) and moves each one's `next_attempt_at` forward as a
lease; then, outside any transaction, it POSTs them, a conversation's deliveries to one
endpoint one after the other in `seq` order, and records each result in a transaction of its
own. A node that dies mid-send leaves the lease to run out: another node (or this one,
restarted) sends the delivery again. So delivery is at least once. docs/api.md#webhooks.

Must not decide what is a webhook (`events.py`) nor hold a database transaction across a
network call.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import httpx
import orjson
import structlog
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import __version__
from app.config import Settings
from app.errors import ServiceUnavailable
from app.store.db import Database, after_commit
from app.store.models import WebhookDelivery, WebhookDeliveryStatus
from app.webhooks import repository, schedule, signing, subscriptions, urls
from app.webhooks.repository import Claimed

log = logging.getLogger(__name__)
T = TypeVar("T")


class UnitOfWork(Protocol):
    """The hub's `unit`: one write transaction, races retried, outages as ServiceUnavailable."""

    def __call__(self, work: Callable[[AsyncSession], Awaitable[T]], /) -> Awaitable[T]: ...


# Deliveries due are looked for every second: webhooks are not a realtime channel, and the
# claim is one range scan of a small partial index (skipped while no endpoint is active).
POLL_PERIOD = 1.0
# Rows claimed per round, and requests in flight at once per node: enough for a busy site
# (a hundred events a second) without one slow endpoint holding every slot.
CLAIM_LIMIT = 100
MAX_IN_FLIGHT = 16
# Beyond the request timeout, the time a node may take to record a result before another node
# may send the same delivery again.
LEASE_MARGIN = timedelta(seconds=20)
# What is kept of an error answer's body in the log.
ERROR_EXCERPT_CHARS = 200
USER_AGENT = f"Warmline-Webhooks/{__version__}"


@dataclass(frozen=True, slots=True)
class Result:
    ok: bool
    status_code: int | None
    error: str | None


class Dispatcher:
    """One node's sender, and the keeper of its cache of subscriptions."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        unit: UnitOfWork,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.unit = unit
        self.clock = clock
        self.enabled = settings.webhook_dispatch
        self.timeout = settings.webhook_timeout
        self.retry_base = settings.webhook_retry_base
        self.allow_private = settings.webhook_allow_private
        self.lease = timedelta(seconds=self.timeout) + LEASE_MARGIN
        self.subscriptions = subscriptions.register(db.engine.sync_engine)
        self._slots = asyncio.Semaphore(MAX_IN_FLIGHT)

    async def load(self) -> None:
        """Read the active subscriptions into this process's cache (before serving, and then
        every `subscriptions.REFRESH_SECONDS`)."""
        async with self.db.read() as session:
            found = await repository.active_subscriptions(session)
        self.subscriptions.replace(found)

    async def run(self) -> None:
        """The loop: refresh the cache, send what is due, sleep a little; forever."""
        refreshed = time.monotonic()
        async with httpx.AsyncClient(
            timeout=self.timeout,
            follow_redirects=False,  # a redirect is a failure: it could lead anywhere
            headers={"User-Agent": USER_AGENT},
        ) as http:
            while True:
                if time.monotonic() - refreshed >= subscriptions.REFRESH_SECONDS:
                    try:
                        await self.load()
                    except Exception as exc:  # the database is down: keep the old view
                        log.warning("webhook subscriptions not refreshed: %r", exc)
                    refreshed = time.monotonic()
                sent = await self.deliver_due(http) if self.enabled else 0
                if sent < CLAIM_LIMIT:
                    await asyncio.sleep(POLL_PERIOD)

    async def deliver_due(self, http: httpx.AsyncClient) -> int:
        """Claim and send one batch; returns how many deliveries were attempted."""
        if not self.subscriptions:
            return 0  # no active endpoint on this node's view: nothing can be due
        now = self.clock()

        async def claim(session: AsyncSession) -> list[Claimed]:
            return await repository.claim_due(session, now=now, limit=CLAIM_LIMIT, lease=self.lease)

        try:
            claimed = await self.unit(claim)
        except ServiceUnavailable:
            return 0
        groups: dict[tuple[uuid.UUID, uuid.UUID], list[Claimed]] = {}
        for item in claimed:
            key = (item.endpoint_id, item.conversation_id or uuid.uuid4())
            groups.setdefault(key, []).append(item)
        await asyncio.gather(
            *(
                self._send_in_order(http, sorted(g, key=lambda c: c.seq or 0))
                for g in groups.values()
            )
        )
        return len(claimed)

    async def _send_in_order(self, http: httpx.AsyncClient, group: list[Claimed]) -> None:
        """A conversation's deliveries to one endpoint, in `seq` order; the first failure
        holds the rest back behind its retry."""
        for i, item in enumerate(group):
            # Log lines of this attempt (httpx's request line, a result not recorded) name it.
            with structlog.contextvars.bound_contextvars(
                webhook_delivery_id=item.id,
                webhook_endpoint_id=str(item.endpoint_id),
                conversation_id=None if item.conversation_id is None else str(item.conversation_id),
            ):
                async with self._slots:
                    result = await self.send(http, item)
                go_on = await self._record(item, result, held_back=[c.id for c in group[i + 1 :]])
            if not go_on:
                return

    async def send(self, http: httpx.AsyncClient, item: Claimed) -> Result:
        """One attempt: POST the payload, signed. 2xx is success; anything else fails."""
        body = orjson.dumps(item.payload)
        now = self.clock()
        headers = {
            "Content-Type": "application/json",
            "Warmline-Event-Id": item.event_id,
            "Warmline-Event-Type": item.event_type,
            "Warmline-Signature": signing.header(item.secret, body, int(now.timestamp())),
        }
        try:
            if not self.allow_private:
                await self._check_address(item.url)
            response = await http.post(item.url, content=body, headers=headers)
        except _Refused as exc:
            return Result(ok=False, status_code=None, error=str(exc))
        except httpx.TimeoutException:
            return Result(ok=False, status_code=None, error=f"timeout after {self.timeout:g} s")
        except httpx.HTTPError as exc:
            return Result(ok=False, status_code=None, error=f"{type(exc).__name__}: {exc}"[:500])
        if 200 <= response.status_code < 300:  # noqa: PLR2004 - the 2xx range
            return Result(ok=True, status_code=response.status_code, error=None)
        excerpt = response.text[:ERROR_EXCERPT_CHARS]
        return Result(
            ok=False,
            status_code=response.status_code,
            error=f"HTTP {response.status_code}" + (f": {excerpt}" if excerpt else ""),
        )

    async def _check_address(self, url: str) -> None:
        host = urls.host_of(url)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        except OSError as exc:
            raise _Refused(f"cannot resolve {host}: {exc}") from exc
        if any(urls.is_private_address(str(info[4][0])) for info in infos):
            raise _Refused(
                f"{host} resolves to a private address (WARMLINE_WEBHOOK_ALLOW_PRIVATE=false)"
            )

    async def _record(self, item: Claimed, result: Result, *, held_back: list[int]) -> bool:
        """Store an attempt's result; returns whether the conversation's next delivery may go
        now (this one delivered, or failed for good)."""
        now = self.clock()
        jitter = random.uniform(-1, 1)  # noqa: S311 - spreading retries, not a secret

        async def work(session: AsyncSession) -> bool:
            row = await session.get(WebhookDelivery, item.id, with_for_update=True)
            if row is None or row.status is not WebhookDeliveryStatus.PENDING:
                return False  # the endpoint was deleted meanwhile
            row.attempts += 1
            row.last_attempt_at = now
            row.last_status_code = result.status_code
            row.last_error = result.error
            if result.ok:
                row.status = WebhookDeliveryStatus.DELIVERED
                row.delivered_at = now
                row.next_attempt_at = None
                after_commit(session, lambda m: m.webhook_attempts.labels("delivered").inc())
                return True
            retry_at = schedule.next_attempt(
                attempts=row.attempts, now=now, base_seconds=self.retry_base, jitter=jitter
            )
            row.next_attempt_at = retry_at
            outcome = "failed" if retry_at is None else "retrying"
            after_commit(session, lambda m: m.webhook_attempts.labels(outcome).inc())
            if retry_at is None:
                row.status = WebhookDeliveryStatus.FAILED
            # The later events of the conversation wait behind this one (or, when it has
            # failed for good, go now).
            if held_back:
                await session.execute(
                    update(WebhookDelivery)
                    .where(
                        WebhookDelivery.id.in_(held_back),
                        WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
                    )
                    .values(next_attempt_at=retry_at or now)
                )
            return retry_at is None

        try:
            return await self.unit(work)
        except ServiceUnavailable:
            # Not recorded: the lease runs out and the delivery is sent again (at least once).
            log.warning("webhook delivery %s: result not recorded (database unavailable)", item.id)
            return False


class _Refused(Exception):
    """The endpoint's address is not one this server calls."""
