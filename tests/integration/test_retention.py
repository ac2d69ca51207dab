"""The retention policy run by the hub (`privacy.retention`): two nodes at once share the work
(every due conversation is processed once), open and recent conversations are never touched,
files go with their records, and each run is recorded (docs/operations.md#retention)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from app.bus.memory import MemoryBus
from app.config import Settings
from app.files import FileMissing, FileStore, open_store
from app.privacy import retention
from app.privacy.redaction import REDACTED
from app.realtime.hub import Hub
from app.store.db import Database
from app.store.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    ConversationState,
    RetentionMode,
    RetentionRun,
    SenderType,
    Visitor,
)
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
NOW = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
# More than two batches, so that two nodes running at once both find work.
OLD = retention.BATCH_SIZE * 2 + 30


@dataclass
class Nodes:
    a: Hub
    b: Hub
    files: FileStore
    keys: list[str]
    old: set[uuid.UUID]
    kept: set[uuid.UUID]


async def _seed(db: Database, files: FileStore) -> tuple[set[uuid.UUID], set[uuid.UUID], list[str]]:
    """OLD closed conversations 40 days old (the first five with a file), three closed last
    week, and two still open though opened a year ago."""
    old: set[uuid.UUID] = set()
    kept: set[uuid.UUID] = set()
    keys: list[str] = []
    async with db.write() as session:
        plan = [("old", 40, True)] * OLD + [("recent", 7, True)] * 3 + [("open", 365, False)] * 2
        for i, (kind, days, closed) in enumerate(plan):
            at = NOW - timedelta(days=days)
            visitor = Visitor(
                token_hash=uuid.uuid4().hex,
                name=f"v{i}",
                email=f"v{i}@example.com",
                attributes={"n": i},
                created_at=at,
                last_seen_at=at,
            )
            session.add(visitor)
            await session.flush()
            conversation = Conversation(
                visitor_id=visitor.id,
                state=ConversationState.CLOSED if closed else ConversationState.QUEUED,
                created_at=at,
                queued_at=at,
                closed_at=at if closed else None,
                last_seq=1,
            )
            session.add(conversation)
            await session.flush()
            session.add(
                ConversationEvent(
                    conversation_id=conversation.id,
                    seq=1,
                    kind="message",
                    sender_type=SenderType.VISITOR,
                    sender_id=visitor.id,
                    sender_name=f"v{i}",
                    body={"text": f"words of {i}"},
                    created_at=at,
                )
            )
            (old if kind == "old" else kept).add(conversation.id)
            if kind == "old" and i < 5:  # the first five carry a file
                key = f"k/{uuid.uuid4()}"
                source = files.scratch_dir() / uuid.uuid4().hex
                source.write_bytes(b"%PDF-1.4 test")
                await files.put(key, source, content_type="application/pdf")
                keys.append(key)
                session.add(
                    Attachment(
                        uploader_type=SenderType.VISITOR,
                        uploader_id=visitor.id,
                        conversation_id=conversation.id,
                        seq=1,
                        filename="a.pdf",
                        content_type="application/pdf",
                        size=13,
                        sha256="0" * 64,
                        storage_key=key,
                        created_at=at,
                        sent_at=at,
                    )
                )
    return old, kept, keys


@pytest_asyncio.fixture
async def nodes(backend: Backend, tmp_path: Path) -> AsyncIterator[Nodes]:
    files = open_store((tmp_path / "files").as_uri())
    dbs = [Database(backend.database_url), Database(backend.database_url)]
    hubs = [
        Hub(
            settings=Settings(database_url=backend.database_url),
            db=db,
            bus=MemoryBus(),
            node=f"node-{name}",
            clock=lambda: NOW,
            files=files,
        )
        for db, name in zip(dbs, "ab", strict=True)
    ]
    try:
        old, kept, keys = await _seed(dbs[0], files)
        yield Nodes(hubs[0], hubs[1], files, keys, old, kept)
    finally:
        for db in dbs:
            await db.dispose()


async def _policy(hub: Hub, days: int | None, mode: RetentionMode) -> None:
    async with hub.db.write() as session:
        await retention.set_policy(session, closed_after_days=days, mode=mode, by="test", now=NOW)


async def _runs(hub: Hub) -> list[RetentionRun]:
    async with hub.db.read() as session:
        return list(await session.scalars(select(RetentionRun).order_by(RetentionRun.id)))


async def _file_exists(files: FileStore, key: str) -> bool:
    try:
        async for _ in files.read(key):
            pass
    except FileMissing:
        return False
    return True


class TestScheduledRetention:
    async def test_without_a_policy_nothing_happens(self, nodes: Nodes) -> None:
        """No policy (or a null age) keeps everything, and no run is recorded."""
        await nodes.a.apply_retention()
        await _policy(nodes.a, None, RetentionMode.PURGE)
        await nodes.a.apply_retention()
        assert await _runs(nodes.a) == []
        async with nodes.a.db.read() as session:
            assert await session.scalar(select(func.count()).select_from(Conversation)) == (
                len(nodes.old) + len(nodes.kept)
            )

    async def test_two_nodes_purge_each_conversation_once(self, nodes: Nodes) -> None:
        """Two nodes purging at once delete every due conversation between them, each once,
        with its log and files; recent and open conversations stay; both runs are recorded."""
        await _policy(nodes.a, 30, RetentionMode.PURGE)
        await asyncio.gather(nodes.a.apply_retention(), nodes.b.apply_retention())
        runs = await _runs(nodes.a)
        assert sorted(r.node for r in runs) == ["node-a", "node-b"]
        assert {(r.trigger, r.mode, r.error) for r in runs} == {
            ("schedule", RetentionMode.PURGE, None)
        }
        assert sum(r.conversations for r in runs) == len(nodes.old)
        assert sum(r.events for r in runs) == len(nodes.old)
        assert sum(r.attachments for r in runs) == len(nodes.keys)
        async with nodes.a.db.read() as session:
            left = set(await session.scalars(select(Conversation.id)))
            events = set(await session.scalars(select(ConversationEvent.conversation_id)))
        assert left == events == nodes.kept
        # Their visitors, not seen since, went too; those of kept conversations stay.
        assert sum(r.visitors for r in runs) == len(nodes.old)
        async with nodes.a.db.read() as session:
            owners = set(await session.scalars(select(Conversation.visitor_id)))
            visitors = set(await session.scalars(select(Visitor.id)))
        assert visitors == owners
        for key in nodes.keys:
            assert not await _file_exists(nodes.files, key)

    async def test_two_nodes_anonymise_each_conversation_once(self, nodes: Nodes) -> None:
        """Anonymising keeps the rows, removes their text, names and files, and writes one
        `conversation.redacted` per conversation even with two nodes at once; the next run
        finds nothing left to do."""
        await _policy(nodes.a, 30, RetentionMode.ANONYMISE)
        await asyncio.gather(nodes.a.apply_retention(), nodes.b.apply_retention())
        await nodes.b.apply_retention()
        runs = await _runs(nodes.a)
        assert sum(r.conversations for r in runs) == len(nodes.old)
        assert runs[-1].conversations == 0
        async with nodes.a.db.read() as session:
            conversations = {c.id: c for c in await session.scalars(select(Conversation))}
            log = list(await session.scalars(select(ConversationEvent)))
            files = list(await session.scalars(select(Attachment)))
        assert set(conversations) == nodes.old | nodes.kept
        assert {c for c, row in conversations.items() if row.redacted_at} == nodes.old
        redacted = [e.conversation_id for e in log if e.kind == REDACTED]
        assert sorted(redacted) == sorted(nodes.old)
        for event in log:
            if event.kind != "message":
                continue
            if event.conversation_id in nodes.old:
                assert (event.body, event.sender_name) == ({"text": "", "redacted": True}, None)
            else:
                assert event.body["text"].startswith("words of")
        assert files == []
        # Their visitors, not seen since, lost their identity; the others kept theirs.
        assert sum(r.visitors for r in runs) == len(nodes.old)
        async with nodes.a.db.read() as session:
            people = {v.id: v for v in await session.scalars(select(Visitor))}
        for cid, row in conversations.items():
            visitor = people[row.visitor_id]
            if cid in nodes.old:
                assert (visitor.name, visitor.email, visitor.attributes) == (None, None, {})
                assert visitor.erased_at == NOW
            else:
                assert visitor.name is not None
                assert visitor.erased_at is None
        for key in nodes.keys:
            assert not await _file_exists(nodes.files, key)
