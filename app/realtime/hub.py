"""The node's hub: its sockets, units of work for frames, publishing, and its timers.

Owns the set of open connections of this process, the per-frame unit of work (with retries for
races another process can cause), publishing outcomes after commit, and the node's background
loops (presence refresh, dead-node sweep, grace-period re-queue, routing pass). Must not
decide anything about conversations itself: that is `chat` and `routing`.
Reference: docs/architecture.md#realtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

import structlog
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from app.bus.base import Bus, BusUnavailable, Listening
from app.chat import events as kinds
from app.chat import service as chat_service
from app.chat import upkeep
from app.chat.events import StoredEvent
from app.chat.service import Outcome
from app.config import Settings
from app.errors import InvalidData, ServiceUnavailable, WarmlineError
from app.files import FileStore
from app.handoff import service as handoff_service
from app.handoff import summarizer
from app.privacy import retention
from app.routing import presence
from app.routing import service as routing_service
from app.routing.estimate import WaitEstimate
from app.routing.service import OfferPolicy
from app.store.db import Database
from app.webhooks.dispatcher import Dispatcher

if TYPE_CHECKING:
    from app.realtime.connection import Connection

log = logging.getLogger(__name__)
T = TypeVar("T")

# A unit of work that lost a race (a unique key taken by another tab or node, a deadlock or a
# serialization failure on PostgreSQL) is run again; three tries make a persistent failure real.
UNIT_OF_WORK_TRIES = 3
# Presence rows not refreshed for this many heartbeat intervals belong to a dead node.
STALE_CONNECTION_INTERVALS = 4
# Events after which queued visitors' positions and estimates may have changed.
QUEUE_MOVES = frozenset(
    {kinds.QUEUED, kinds.ASSIGNED, kinds.CLOSED, kinds.AGENT_LEFT, kinds.OFFER_DECLINED}
)
QUEUE_CHANNEL = "queue:all"
# Queue updates are coalesced over this many seconds: a burst of assignments costs one
# recomputation per node, and visitors see one update instead of a flicker.
QUEUE_PUSH_DELAY = 0.3
# How often due offers are expired, due escalation steps recorded and unanswered customers
# looked for: these last tens of seconds or more, so a second of lateness is invisible, and
# each query is one index range scan.
TIMER_PERIOD = 1.0
# Abandoned uploads are a day old before they go; looking every ten minutes keeps the sweep
# negligible and the leftovers bounded.
PURGE_PERIOD = 600.0
# Delay before a crashed background loop is started again.
LOOP_RESTART_DELAY = 1.0


@dataclass(frozen=True, slots=True)
class PresenceEntry:
    agent_id: uuid.UUID
    registered_at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def default_node_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Hub:
    """Everything realtime that is per process rather than per socket."""

    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        bus: Bus,
        node: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        files: FileStore | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.bus = bus
        # Where attachments' bytes live; None in tests of the hub alone (nothing to purge).
        self.files = files
        self.clock = clock
        self.node = node or settings.node_name or default_node_name()
        self.offers = OfferPolicy(
            auto_accept=settings.offer_auto_accept,
            timeout=timedelta(seconds=settings.offer_timeout),
        )
        self.transfer_ttl = timedelta(seconds=settings.transfer_timeout)
        # The deployment's sentiment scorer (WARMLINE_SENTIMENT_SCORER), or the lexicon one.
        self.scorer = handoff_service.load_scorer(settings.sentiment_scorer)
        # The deployment's external summarizer (WARMLINE_SUMMARIZER), if any, and its calls
        # in flight (a transfer never waits for them).
        self.summarizer = summarizer.load(settings.summarizer)
        self._extras: set[asyncio.Task[None]] = set()
        self.connections: set[Connection] = set()
        # Agent sockets of this node, by presence connection id; registered before the row
        # commits and removed when the socket ends.
        self.presence: dict[uuid.UUID, PresenceEntry] = {}
        self._queue_dirty = asyncio.Event()
        # Webhooks: the outbox's cache of subscriptions, and the sender (docs/api.md#webhooks).
        self.webhooks = Dispatcher(settings=settings, db=db, unit=self.unit, clock=clock)
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        bus.on_reconnect(self._catch_up_everyone)

    async def unit(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run `work` in one write transaction, retrying races; commit on success.

        `work` must be safe to run again from scratch (every frame handler is idempotent).

        Raises:
            WarmlineError: what `work` raised, unchanged (the transaction is rolled back).
            ServiceUnavailable: the database cannot be reached.
        """
        for attempt in range(1, UNIT_OF_WORK_TRIES + 1):
            try:
                async with self.db.write() as session:
                    handoff_service.use_scorer(session, self.scorer)
                    return await work(session)
            except IntegrityError:
                if attempt == UNIT_OF_WORK_TRIES:
                    raise
                log.info("unit of work lost a race; retrying (attempt %d)", attempt)
            except DataError as exc:
                # The database refused a value (PostgreSQL rejects NUL in text): the input's
                # fault, not an outage; retrying would never help.
                raise InvalidData("The database refused a value in this request.") from exc
            except (OperationalError, DBAPIError, OSError, PoolTimeout) as exc:
                if _is_data_error(exc):
                    raise InvalidData("The database refused a value in this request.") from exc
                if _is_retryable_race(exc) and attempt < UNIT_OF_WORK_TRIES:
                    log.info("unit of work hit a lock conflict; retrying (attempt %d)", attempt)
                    await asyncio.sleep(0.01 * attempt)
                    continue
                log.warning("database unavailable: %s", exc)
                raise ServiceUnavailable(
                    "The chat service cannot reach its database; try again shortly."
                ) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def read(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        try:
            async with self.db.read() as session:
                handoff_service.use_scorer(session, self.scorer)
                return await work(session)
        except (OperationalError, DBAPIError, OSError, PoolTimeout) as exc:
            log.warning("database unavailable: %s", exc)
            raise ServiceUnavailable(
                "The chat service cannot reach its database; try again shortly."
            ) from exc

    async def publish(self, outcome: Outcome) -> None:
        """Announce a committed outcome. A bus failure loses only notices, never events: every
        node's next `reconcile()` (one housekeeping tick) delivers from the store what the
        notices would have."""
        messages: list[tuple[str, dict[str, object]]] = [
            (f"conv:{event.conversation_id}", {"t": "event", "event": event.wire()})
            for event in outcome.events
        ]
        messages.extend(outcome.notices)
        if any(event.kind in QUEUE_MOVES for event in outcome.events):
            messages.append((QUEUE_CHANNEL, {"t": "queue_moved"}))
        if not isinstance(self.summarizer, summarizer.NoSummarizer):
            for event in outcome.events:
                if event.kind == kinds.SUMMARY:
                    task = asyncio.create_task(self._extra(event), name="handoff.summarizer")
                    self._extras.add(task)
                    task.add_done_callback(self._extras.discard)
        for i, (channel, payload) in enumerate(messages):
            if not await self._publish(channel, payload):
                # The bus is failing: do not hold the frame handler for each remaining notice.
                log.warning(
                    "bus unavailable: %d more notices left to reconciliation", len(messages) - i - 1
                )
                return

    async def _extra(self, stored: StoredEvent) -> None:
        """Ask the external summarizer for prose beside a summary just stored, and store it.

        Bounded by `summarizer.EXTRA_TIMEOUT`; whatever goes wrong is logged and dropped: the
        deterministic summary is already there."""
        with structlog.contextvars.bound_contextvars(conversation_id=str(stored.conversation_id)):
            await self._extra_of(stored)

    async def _extra_of(self, stored: StoredEvent) -> None:
        transfer_id = stored.body.get("transfer_id")
        try:
            found = await self.read(
                lambda s: handoff_service.for_extra(
                    s, stored.conversation_id, now=stored.created_at
                )
            )
            if found is None:
                return
            text = await asyncio.wait_for(
                self.summarizer.extra(*found), timeout=summarizer.EXTRA_TIMEOUT
            )
            if not text or not text.strip():
                return
            by = summarizer.name_of(self.summarizer)
            now = self.clock()

            async def work(session: AsyncSession) -> Outcome:
                event = await handoff_service.add_extra(
                    session,
                    stored.conversation_id,
                    transfer_id=transfer_id,
                    text=summarizer.clip(text),
                    by=by,
                    now=now,
                )
                return Outcome(events=[] if event is None else [event])

            await self.publish(await self.unit(work))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a deployment's plug-in may raise anything
            log.warning("external summarizer failed (%r); the summary stands alone", exc)

    async def _publish(self, channel: str, payload: dict[str, object]) -> bool:
        try:
            await self.bus.publish(channel, payload)
        except BusUnavailable as exc:
            log.warning(
                "bus unavailable, notice on %s dropped (stored; reconciled): %s", channel, exc
            )
            return False
        return True

    async def publish_ephemeral(self, channel: str, payload: dict[str, object]) -> None:
        await self._publish(channel, payload)  # typing and read notices are not worth a retry

    def agent_sockets(self) -> dict[uuid.UUID, uuid.UUID]:
        """Presence connection id -> agent id, for every agent socket open on this node."""
        return {connection_id: entry.agent_id for connection_id, entry in self.presence.items()}

    def restorable_sockets(self, now: datetime) -> set[uuid.UUID]:
        """Agent sockets old enough that a missing row means another node swept it (a socket
        still in its hello may simply not have committed its row yet)."""
        settle = timedelta(seconds=self.settings.heartbeat_interval)
        return {cid for cid, entry in self.presence.items() if now - entry.registered_at >= settle}

    async def reconcile(self) -> None:
        """Make every socket match the store: follow conversations it is part of but does not
        follow (a lost join notice), and catch up where the log is ahead of what it was sent
        (a lost event notice). Bounds the damage of any bus failure to one tick's delay."""
        connections = [c for c in tuple(self.connections) if c.actor is not None]
        if not connections:
            return
        followed = {cid for c in connections for cid in c.following}
        agents = {c.actor.id for c in connections if c.actor is not None and c.actor.is_agent}
        visitors = {c.actor.id for c in connections if c.actor is not None and not c.actor.is_agent}

        async def snapshot(session: AsyncSession) -> list[chat_service.ConversationHead]:
            return await chat_service.heads(
                session, conversation_ids=followed, agent_ids=agents, visitor_ids=visitors
            )

        try:
            heads = await self.read(snapshot)
        except ServiceUnavailable:
            return
        for connection in connections:
            connection.reconcile(heads)

    async def _catch_up_everyone(self) -> None:
        for connection in tuple(self.connections):
            connection.catch_up_all()

    # -- background loops ---------------------------------------------------------------

    def queue_moved(self) -> None:
        """Ask for the queued visitors on this node to be told their position again."""
        self._queue_dirty.set()

    async def _queue_loop(self) -> None:
        listening: Listening | None = None
        try:
            while True:
                if listening is None:
                    try:
                        listening = await self.bus.listen(
                            QUEUE_CHANNEL, lambda _c, _p: self.queue_moved()
                        )
                    except BusUnavailable:
                        # Without the bus this node still updates its visitors at every
                        # housekeeping round; other nodes' moves reach them then.
                        log.warning("queue updates from other nodes paused: bus unavailable")
                await self._queue_dirty.wait()
                await asyncio.sleep(QUEUE_PUSH_DELAY)
                self._queue_dirty.clear()
                await self.push_queue()
        finally:
            if listening is not None:
                await listening.close()

    async def push_queue(self) -> None:
        """Send each queued visitor on this node their position and estimated wait, if changed."""
        visitors = [
            c for c in tuple(self.connections) if c.actor is not None and not c.actor.is_agent
        ]
        if not visitors:
            return
        now = self.clock()

        async def snapshot(
            session: AsyncSession,
        ) -> dict[uuid.UUID, tuple[int, WaitEstimate | None]]:
            return await routing_service.queue_snapshot(session, now=now)

        try:
            positions = await self.read(snapshot)
        except ServiceUnavailable:
            return
        for connection in visitors:
            connection.queue_update(positions)

    def start(self) -> None:
        self._tasks.append(
            asyncio.create_task(self._supervise("realtime.queue_positions", self._queue_loop))
        )
        self._tasks.append(
            asyncio.create_task(self._supervise("realtime.presence", self._presence_loop))
        )
        # Runs even with auto-accept: offers left pending from before a switch to auto-accept
        # must still expire, or they would hold their agents' slots and their chats forever.
        self._tasks.append(asyncio.create_task(self._supervise("routing.timers", self._timer_loop)))
        if self.files is not None:
            self._tasks.append(
                asyncio.create_task(self._supervise("files.purge_unsent", self._purge_loop))
            )
        # Every node: it keeps the outbox's cache of subscriptions fresh, and sends deliveries
        # unless WARMLINE_WEBHOOK_DISPATCH=false.
        self._tasks.append(
            asyncio.create_task(self._supervise("webhooks.deliver", self.webhooks.run))
        )
        self._tasks.append(
            asyncio.create_task(self._supervise("privacy.retention", self._retention_loop))
        )

    async def stop(self) -> None:
        self._stopping = True
        for task in (*self._tasks, *self._extras):
            task.cancel()
        for task in tuple(self._extras):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await asyncio.gather(
            *(c.shutdown() for c in tuple(self.connections)), return_exceptions=True
        )

    async def _supervise(self, name: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` forever; a crash is logged as an incident and the loop restarted."""
        while not self._stopping:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("background loop %s crashed; restarting", name)
                await asyncio.sleep(LOOP_RESTART_DELAY)

    async def _presence_loop(self) -> None:
        interval = self.settings.heartbeat_interval
        while True:
            # Jitter spreads the nodes' sweeps so they do not contend for the same rows.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto
            await self.tick()

    async def _timer_loop(self) -> None:
        while True:
            await asyncio.sleep(TIMER_PERIOD)
            await self.timers()

    async def _purge_loop(self) -> None:
        while True:
            await asyncio.sleep(PURGE_PERIOD * random.uniform(0.9, 1.1))  # noqa: S311 - not crypto
            await self.purge_unsent()

    async def _retention_loop(self) -> None:
        interval = self.settings.retention_interval
        while True:
            # Jittered, so the nodes of a deployment do not all start their run together.
            await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - not crypto
            await self.apply_retention()

    async def apply_retention(self) -> None:
        """One run of the retention policy (app/privacy/retention.py), a transaction per batch,
        each batch's `conversation.redacted` events published after its commit."""
        await retention.run(
            self.unit,
            self.files,
            clock=self.clock,
            node=self.node,
            trigger="schedule",
            publish=self.publish,
        )

    async def purge_unsent(self) -> int:
        """Delete uploads nobody sent within a day: the rows first (claimed with SKIP LOCKED, so
        each node takes its own), then, once that has committed, their bytes. A crash in
        between leaves bytes without a row, never a row without bytes. Returns how many went."""
        if self.files is None:
            return 0
        now = self.clock()

        async def work(session: AsyncSession) -> list[str]:
            return await chat_service.purge_unsent(session, now=now)

        try:
            keys = await self.unit(work)
        except ServiceUnavailable:
            return 0
        for key in keys:
            try:
                await self.files.delete(key)
            except ServiceUnavailable:
                log.warning(
                    "an unsent upload's file could not be deleted from %s", self.files.where
                )
        if keys:
            log.info("purged %d unsent uploads", len(keys))
        return len(keys)

    async def timers(self) -> None:
        """Offers and transfers past their time, escalation steps that came due, unanswered
        customers, and chats past the escalation rules' time limits."""
        await self.expire_offers()
        now = self.clock()
        ttl = self.transfer_ttl

        async def expire_transfers(session: AsyncSession) -> Outcome:
            return await handoff_service.expire_due(session, now=now)

        async def escalation_rules(session: AsyncSession) -> Outcome:
            return await handoff_service.watch_rules(session, now=now, ttl=ttl)

        async def steps(session: AsyncSession) -> Outcome:
            return await upkeep.advance_steps(session, now=now, offers=self.offers)

        async def unanswered(session: AsyncSession) -> Outcome:
            return await upkeep.watch_unanswered(session, now=now, offers=self.offers)

        for work in (expire_transfers, steps, unanswered, escalation_rules):
            try:
                outcome = await self.unit(work)
            except ServiceUnavailable:
                return
            except WarmlineError:
                # One job's failure (a bug, or a value the database refused) must not stop the
                # others: each is independent and runs again next second.
                log.exception("timer job %s failed", work.__name__)
                continue
            await self.publish(outcome)

    async def expire_offers(self) -> None:
        """Expire due offers and pass their chats on (every node runs this; rows are claimed
        with SKIP LOCKED, so each offer expires once)."""
        now = self.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await chat_service.expire_offers(session, now=now, offers=self.offers)

        try:
            outcome = await self.unit(work)
        except ServiceUnavailable:
            return
        await self.publish(outcome)

    async def tick(self) -> None:
        """One round of the node's housekeeping (also called directly by tests)."""
        now = self.clock()
        stale_after = timedelta(
            seconds=self.settings.heartbeat_interval * STALE_CONNECTION_INTERVALS
        )
        grace = timedelta(seconds=self.settings.agent_grace_period)

        async def housekeeping(session: AsyncSession) -> Outcome:
            await presence.touch(
                session,
                node=self.node,
                now=now,
                sockets=lambda: (self.agent_sockets(), self.restorable_sockets(now)),
            )
            await presence.sweep_stale(session, now=now, stale_after=stale_after)
            outcome = Outcome()
            for agent_id in await presence.agents_past_grace(session, now=now, grace=grace):
                with structlog.contextvars.bound_contextvars(agent_id=str(agent_id)):
                    log.info(
                        "agent %s exceeded the grace period; re-queueing their chats", agent_id
                    )
                    outcome.merge(
                        await chat_service.requeue_agent_chats(
                            session, agent_id=agent_id, reason="agent_disconnected", now=now
                        )
                    )
            outcome.merge(await upkeep.requeue_from_inactive(session, now=now, offers=self.offers))
            outcome.merge(await chat_service.assign_waiting(session, now=now, offers=self.offers))
            return outcome

        try:
            outcome = await self.unit(housekeeping)
        except ServiceUnavailable:
            return
        await self.publish(outcome)
        await self.reconcile()
        self.queue_moved()  # estimates age with time and capacity even when nothing moved


def _is_data_error(exc: BaseException) -> bool:
    """A value the database refused (SQLSTATE class 22: too long, out of range, bad text),
    which asyncpg reports as a plain DBAPIError: the input's fault, never an outage."""
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def _is_retryable_race(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        marker in text
        for marker in ("deadlock detected", "could not serialize", "database is locked")
    )
