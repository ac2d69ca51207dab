"""The retention policy: closed conversations older than the set age are purged or anonymised.

The policy is one row (`retention_settings`), edited by admins; without it, or with
`closed_after_days` NULL, nothing is ever removed. A run (each node's hourly `privacy.retention`
loop, or an admin's request) takes the due conversations in batches of `BATCH_SIZE`, oldest
close first, each batch in one transaction whose rows are claimed with
`FOR UPDATE SKIP LOCKED`: nodes running at once share the work and never process a conversation
twice. `purge` deletes a conversation with its log, offers, transfers and files; `anonymise`
redacts it as an erasure does (`erasure.redact_conversation`) and keeps the row. Then visitors
not seen since the cutoff with nothing kept (no conversation left, or all anonymised) are
deleted (`purge`) or lose their identity and token (`anonymise`). Files' bytes are deleted once
their batch has committed. Every run that had a policy to apply is recorded
(`retention_runs`) and logged with its counts. Reference: docs/operations.md#retention.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, TypeVar

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.service import Outcome
from app.errors import ServiceUnavailable
from app.files import FileStore
from app.privacy.erasure import forget_identity, redact_conversation
from app.store.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    ConversationState,
    RetentionMode,
    RetentionRun,
    RetentionSettings,
    Visitor,
)

log = structlog.stdlib.get_logger(__name__)
T = TypeVar("T")

# Conversations per transaction: small enough that a batch's locks and its files' deletion are
# brief, large enough that a backlog of a year drains in minutes.
BATCH_SIZE = 100
# A run asked for over REST works inside its request's transaction, so it stops after this many
# batches; the scheduled runs take the rest.
REQUEST_MAX_BATCHES = 10


class UnitOfWork(Protocol):
    """Runs `work` in a transaction and commits it (the hub's `unit`), or in the caller's."""

    def __call__(self, work: Callable[[AsyncSession], Awaitable[T]]) -> Awaitable[T]: ...


@dataclass(frozen=True, slots=True)
class Policy:
    closed_after_days: int | None
    mode: RetentionMode
    updated_at: datetime | None
    updated_by: str | None


@dataclass(slots=True)
class Batch:
    conversations: int = 0
    events: int = 0
    attachments: int = 0
    storage_keys: list[str] = field(default_factory=list)
    outcome: Outcome = field(default_factory=Outcome)

    def __bool__(self) -> bool:
        """Whether the batch found anything to do (an empty one is not counted)."""
        return self.conversations > 0


async def get_policy(session: AsyncSession) -> Policy:
    row = await session.get(RetentionSettings, 1)
    if row is None:
        return Policy(None, RetentionMode.ANONYMISE, None, None)
    return Policy(row.closed_after_days, row.mode, row.updated_at, row.updated_by)


async def set_policy(
    session: AsyncSession,
    *,
    closed_after_days: int | None,
    mode: RetentionMode,
    by: str,
    now: datetime,
) -> Policy:
    row = await session.get(RetentionSettings, 1, with_for_update=True)
    if row is None:
        row = RetentionSettings(id=1)
        session.add(row)
    row.closed_after_days = closed_after_days
    row.mode = mode
    row.updated_at = now
    row.updated_by = by
    await session.flush()
    return Policy(row.closed_after_days, row.mode, row.updated_at, row.updated_by)


async def process_batch(
    session: AsyncSession,
    *,
    mode: RetentionMode,
    cutoff: datetime,
    now: datetime,
    limit: int = BATCH_SIZE,
) -> Batch:
    """Purge or anonymise up to `limit` conversations closed before `cutoff`; open ones are
    never touched. Rows another node holds are skipped (it is processing them)."""
    query = select(Conversation).where(
        Conversation.state == ConversationState.CLOSED, Conversation.closed_at < cutoff
    )
    if mode is RetentionMode.ANONYMISE:
        query = query.where(Conversation.redacted_at.is_(None))
    rows = list(
        await session.scalars(
            query.order_by(Conversation.closed_at, Conversation.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    batch = Batch(conversations=len(rows))
    if not rows:
        return batch
    if mode is RetentionMode.ANONYMISE:
        for conversation in rows:
            done = await redact_conversation(
                session, conversation, now=now, cause={"by": "retention"}
            )
            batch.events += len(done.seqs)
            batch.storage_keys.extend(done.storage_keys)
            if done.event is not None:
                batch.outcome.events.append(done.event)
        batch.attachments = len(batch.storage_keys)
        return batch
    ids = [c.id for c in rows]
    batch.events = int(
        await session.scalar(
            select(func.count())
            .select_from(ConversationEvent)
            .where(ConversationEvent.conversation_id.in_(ids))
        )
        or 0
    )
    batch.storage_keys = list(
        await session.scalars(
            select(Attachment.storage_key).where(Attachment.conversation_id.in_(ids))
        )
    )
    batch.attachments = len(batch.storage_keys)
    await session.execute(delete(Attachment).where(Attachment.conversation_id.in_(ids)))
    await session.execute(
        delete(ConversationEvent).where(ConversationEvent.conversation_id.in_(ids))
    )
    # Offers, transfers and participations go with the row (ON DELETE CASCADE, on SQLite too:
    # the store turns foreign keys on).
    await session.execute(
        delete(Conversation).where(Conversation.id.in_(ids)),
        execution_options={"synchronize_session": False},
    )
    for conversation in rows:
        session.expunge(conversation)
    return batch


async def process_visitors(
    session: AsyncSession,
    *,
    mode: RetentionMode,
    cutoff: datetime,
    now: datetime,
    limit: int = BATCH_SIZE,
) -> int:
    """Visitors not seen since `cutoff` whose every conversation is gone (`purge`: their row is
    deleted) or anonymised (`anonymise`: their identity is removed and their token revoked, as
    an erasure does). Visitors with an open or a kept conversation are left alone. Returns how
    many were processed."""
    conversations = select(Conversation.id).where(Conversation.visitor_id == Visitor.id)
    if mode is RetentionMode.ANONYMISE:
        conversations = conversations.where(Conversation.redacted_at.is_(None))
    query = select(Visitor).where(Visitor.last_seen_at < cutoff, ~conversations.exists())
    if mode is RetentionMode.ANONYMISE:
        query = query.where(Visitor.erased_at.is_(None))
    rows = list(
        await session.scalars(
            query.order_by(Visitor.last_seen_at, Visitor.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for visitor in rows:
        if mode is RetentionMode.ANONYMISE:
            forget_identity(visitor, now=now)
        else:
            await session.delete(visitor)
    await session.flush()
    return len(rows)


@dataclass(slots=True)
class _Progress:
    totals: Batch = field(default_factory=Batch)
    visitors: int = 0
    batches: int = 0
    error: str | None = None


async def run(
    unit: UnitOfWork,
    files: FileStore | None,
    *,
    clock: Callable[[], datetime],
    node: str,
    trigger: str,
    publish: Callable[[Outcome], Awaitable[None]] | None = None,
    max_batches: int | None = None,
) -> RetentionRun | None:
    """Apply the policy once: batch after batch until none is full (or `max_batches`).

    Returns the recorded run, or None when the policy keeps everything (nothing is recorded).
    A database outage ends the run early; what was done is recorded if the database is back,
    and the next run goes on from there.
    """
    try:
        policy = await unit(get_policy)
    except ServiceUnavailable:
        log.warning("privacy.retention skipped: database unavailable", node=node)
        return None
    if policy.closed_after_days is None:
        return None
    started = clock()
    began = time.monotonic()
    cutoff = started - timedelta(days=policy.closed_after_days)
    progress = _Progress()

    def more() -> bool:
        return progress.error is None and (max_batches is None or progress.batches < max_batches)

    while more():

        async def work(session: AsyncSession) -> Batch:
            return await process_batch(session, mode=policy.mode, cutoff=cutoff, now=clock())

        batch = await _attempt(unit, work, progress)
        if batch is None:
            break
        progress.totals.conversations += batch.conversations
        progress.totals.events += batch.events
        progress.totals.attachments += batch.attachments
        if files is not None:
            await _delete_files(files, batch.storage_keys)
        if publish is not None and batch.outcome.events:
            await publish(batch.outcome)
        if batch.conversations < BATCH_SIZE:
            break
    while more():

        async def forget(session: AsyncSession) -> int:
            return await process_visitors(session, mode=policy.mode, cutoff=cutoff, now=clock())

        done = await _attempt(unit, forget, progress)
        progress.visitors += done or 0
        if done is None or done < BATCH_SIZE:
            break
    record = RetentionRun(
        trigger=trigger,
        node=node,
        mode=policy.mode,
        closed_after_days=policy.closed_after_days,
        cutoff=cutoff,
        started_at=started,
        finished_at=clock(),
        batches=progress.batches,
        conversations=progress.totals.conversations,
        events=progress.totals.events,
        attachments=progress.totals.attachments,
        visitors=progress.visitors,
        error=progress.error,
    )
    return await _record(unit, record, duration_ms=round((time.monotonic() - began) * 1000))


async def _attempt(
    unit: UnitOfWork, work: Callable[[AsyncSession], Awaitable[T]], progress: _Progress
) -> T | None:
    """One batch in its unit of work; None (with the reason noted) if the database is gone."""
    try:
        result = await unit(work)
    except ServiceUnavailable as exc:
        progress.error = exc.message[:500]
        return None
    if result:
        progress.batches += 1
    return result


async def _record(
    unit: UnitOfWork, record: RetentionRun, *, duration_ms: int
) -> RetentionRun | None:
    fields = {
        "trigger": record.trigger,
        "node": record.node,
        "mode": record.mode.value,
        "closed_after_days": record.closed_after_days,
        "cutoff": record.cutoff.isoformat(),
        "batches": record.batches,
        "conversations": record.conversations,
        "events": record.events,
        "attachments": record.attachments,
        "visitors": record.visitors,
        "duration_ms": duration_ms,
        "error": record.error,
    }

    async def save(session: AsyncSession) -> RetentionRun:
        session.add(record)
        await session.flush()
        return record

    try:
        await unit(save)
    except ServiceUnavailable:
        log.warning("privacy.retention run not recorded: database unavailable", **fields)
        return None
    if record.error is None:
        log.info("privacy.retention run", **fields)
    else:
        log.warning("privacy.retention run ended early", **fields)
    return record


async def _delete_files(files: FileStore, keys: list[str]) -> None:
    for key in keys:
        try:
            await files.delete(key)
        except ServiceUnavailable:
            # The record is gone, so nobody can reach these bytes; an operator may sweep them.
            log.warning("privacy.retention could not delete a file", store=files.where)


async def runs(session: AsyncSession, *, limit: int) -> list[RetentionRun]:
    return list(
        await session.scalars(
            select(RetentionRun)
            .order_by(RetentionRun.started_at.desc(), RetentionRun.id.desc())
            .limit(limit)
        )
    )
