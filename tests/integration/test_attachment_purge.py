"""Uploads nobody sent are purged after a day, rows first and then bytes; sent files stay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import select

from app.bus.memory import MemoryBus
from app.chat import attachments
from app.chat import service as chat_service
from app.chat.service import Actor
from app.config import Settings
from app.files import FileMissing, FileStore, open_store
from app.realtime.hub import Hub
from app.store.db import Database
from app.store.models import Attachment, SenderType, Visitor
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest_asyncio.fixture
async def setup(backend: Backend, tmp_path: Path) -> AsyncIterator[tuple[Hub, FileStore, Clock]]:
    db = Database(backend.database_url)
    files = open_store((tmp_path / "files").as_uri())
    clock = Clock()
    hub = Hub(
        settings=Settings(database_url=backend.database_url),
        db=db,
        bus=MemoryBus(),
        node="test-node",
        clock=clock,
        files=files,
    )
    try:
        yield hub, files, clock
    finally:
        await db.dispose()


async def uploaded(hub: Hub, files: FileStore, actor: Actor, at: datetime) -> str:
    key = f"k/{uuid.uuid4()}"
    source = files.scratch_dir() / uuid.uuid4().hex
    source.write_bytes(b"%PDF-1.4 test")
    await files.put(key, source, content_type="application/pdf")
    upload = attachments.Upload(uuid.uuid4(), "a.pdf", "application/pdf", 13, "0" * 64, key)
    async with hub.db.write() as session:
        await attachments.record_upload(session, actor=actor, upload=upload, now=at)
    return key


async def read(files: FileStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in files.read(key)])


class TestPurge:
    async def test_only_abandoned_uploads_go(self, setup: tuple[Hub, FileStore, Clock]) -> None:
        """After 24 hours an unsent upload's row and bytes are deleted; a younger one and a sent
        one stay, bytes and all."""
        hub, files, clock = setup
        async with hub.db.write() as session:
            visitor = Visitor(token_hash=uuid.uuid4().hex, name="Ada")
            session.add(visitor)
            await session.flush()
            actor = Actor(SenderType.VISITOR, visitor.id, "Ada")
        abandoned = await uploaded(hub, files, actor, T0)
        sent = await uploaded(hub, files, actor, T0)
        async with hub.db.read() as session:
            sent_id = (
                await session.scalars(select(Attachment.id).where(Attachment.storage_key == sent))
            ).one()
        async with hub.db.write() as session:
            await chat_service.send_message(
                session,
                actor=actor,
                conversation_id=None,
                client_msg_id="m1",
                text="",
                now=T0,
                attachment_ids=[sent_id],
            )
        young = await uploaded(hub, files, actor, T0 + timedelta(hours=20))

        clock.now = T0 + timedelta(hours=23)
        assert await hub.purge_unsent() == 0
        clock.now = T0 + timedelta(hours=25)
        assert await hub.purge_unsent() == 1

        with pytest.raises(FileMissing):
            await read(files, abandoned)
        assert await read(files, sent) == b"%PDF-1.4 test"
        assert await read(files, young) == b"%PDF-1.4 test"
        async with hub.db.read() as session:
            keys = set(await session.scalars(select(Attachment.storage_key)))
        assert keys == {sent, young}
