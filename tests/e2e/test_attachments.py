"""Files sent both ways: uploaded over REST, sent with a message frame, downloaded by whoever may
read the conversation, served safely; bad uploads store nothing (docs/api.md#attachments)."""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Attachment, ConversationEvent
from tests.conftest import S3, Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def png(width: int = 2, height: int = 2) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"


def bearer(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


async def upload(
    client: Client,
    data: bytes,
    name: str | None,
    *,
    expect: int = 201,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    path = "/api/v1/visitor/attachments" if client.role == "visitor" else "/api/v1/attachments"
    async with httpx.AsyncClient(base_url=client.server.http) as http:
        response = await http.post(
            path,
            params={} if name is None else {"filename": name},
            content=data,
            headers={**bearer(client), **(headers or {})},
        )
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def download(client: Client, attachment_id: str) -> httpx.Response:
    path = "/api/v1/visitor/attachments" if client.role == "visitor" else "/api/v1/attachments"
    async with httpx.AsyncClient(base_url=client.server.http) as http:
        return await http.get(f"{path}/{attachment_id}", headers=bearer(client))


async def attachment_rows(backend: Backend) -> list[Attachment]:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(Attachment)))
    finally:
        await db.dispose()


async def message_count(backend: Backend) -> int:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            found = await session.scalar(
                select(func.count())
                .select_from(ConversationEvent)
                .where(ConversationEvent.kind == "message")
            )
            return int(found or 0)
    finally:
        await db.dispose()


@pytest_asyncio.fixture
async def server(sqlite_backend: Backend) -> AsyncIterator[Server]:
    started = await Server(sqlite_backend, attachment_max_bytes="4096").start()
    try:
        yield started
    finally:
        await started.stop()


async def chat(server: Server, backend: Backend) -> tuple[Client, Client, str]:
    ann = await Client.agent(server, await create_agent(backend, name="Ann"))
    await ann.connect()
    ada = await Client.visitor(server, name="Ada")
    await ada.connect()
    cid = (await ada.message("Hello"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=cid)
    return ann, ada, cid


class TestBothWays:
    async def test_a_picture_and_a_document_go_both_ways(self, backend: Backend) -> None:
        """The visitor's picture reaches the agent, the agent's PDF the visitor: each side sees
        the file in the message event and downloads exactly the bytes sent, served safely; a
        stranger cannot download either; the transcript lists them."""
        server = await Server(backend).start()
        try:
            ann, ada, cid = await chat(server, backend)
            photo = png()
            up = await upload(
                ada, photo, "../../My photo.png", headers={"Content-Type": "image/jpeg"}
            )
            assert (up["name"], up["content_type"], up["size"], up["image"]) == (
                "My photo.png",
                "image/png",  # the bytes decide, not the declared type
                len(photo),
                True,
            )
            ack = await ada.message(
                "This is what arrived", conversation_id=cid, attachments=[up["id"]]
            )
            event = await ann.event("message", conversation_id=cid, seq=ack["seq"])
            assert event["body"]["text"] == "This is what arrived"
            assert event["body"]["attachments"] == [
                {
                    "id": up["id"],
                    "name": "My photo.png",
                    "content_type": "image/png",
                    "size": len(photo),
                    "image": True,
                }
            ]
            got = await download(ann, up["id"])
            assert got.status_code == 200
            assert got.content == photo
            assert got.headers["content-type"] == "image/png"
            assert got.headers["content-disposition"].startswith('inline; filename="My photo.png"')
            assert got.headers["x-content-type-options"] == "nosniff"
            assert "sandbox" in got.headers["content-security-policy"]

            doc = await upload(ann, PDF, "Refund form.pdf")
            ack = await ann.message("", conversation_id=cid, attachments=[doc["id"]])
            event = await ada.event("message", conversation_id=cid, seq=ack["seq"])
            assert event["body"] == {
                "text": "",
                "attachments": [
                    {
                        "id": doc["id"],
                        "name": "Refund form.pdf",
                        "content_type": "application/pdf",
                        "size": len(PDF),
                        "image": False,
                    }
                ],
            }
            got = await download(ada, doc["id"])
            assert got.content == PDF
            assert got.headers["content-disposition"] == (
                "attachment; filename=\"Refund form.pdf\"; filename*=UTF-8''Refund%20form.pdf"
            )
            # Her own upload too, and a second fetch with the ETag is a 304.
            async with httpx.AsyncClient(base_url=server.http) as http:
                again = await http.get(
                    f"/api/v1/visitor/attachments/{up['id']}",
                    headers={**bearer(ada), "If-None-Match": got.headers["etag"]},
                )
                assert again.status_code == 200  # another file's ETag does not match
                mine = await http.get(
                    f"/api/v1/visitor/attachments/{up['id']}", headers=bearer(ada)
                )
                cached = await http.get(
                    f"/api/v1/visitor/attachments/{up['id']}",
                    headers={**bearer(ada), "If-None-Match": mine.headers["etag"]},
                )
                assert cached.status_code == 304
                anonymous = await http.get(f"/api/v1/visitor/attachments/{up['id']}")
                assert anonymous.status_code == 401

            stranger = await Client.visitor(server, name="Eve")
            other_agent = await Client.agent(server, await create_agent(backend, name="Otto"))
            for who, attachment in ((stranger, up), (stranger, doc), (other_agent, up)):
                refused = await download(who, attachment["id"])
                assert refused.status_code == 404
                assert refused.json()["code"] == "attachment_not_found"

            async with httpx.AsyncClient(base_url=server.http) as http:
                transcript = await http.get(
                    f"/api/v1/visitor/conversations/{cid}/transcript", headers=bearer(ada)
                )
                text = await http.get(
                    f"/api/v1/visitor/conversations/{cid}/transcript",
                    params={"format": "text"},
                    headers=bearer(ada),
                )
            files = [f["name"] for line in transcript.json()["lines"] for f in line["attachments"]]
            assert files == ["My photo.png", "Refund form.pdf"]
            assert "This is what arrived [file: My photo.png, " in text.text
            assert "Ann: [file: Refund form.pdf, " in text.text
        finally:
            await server.stop()

    async def test_an_s3_store_serves_the_same(self, postgres_backend: Backend, s3: S3) -> None:
        """With an S3-compatible bucket configured, files round-trip through it, /readyz checks
        it, and the bytes are in the bucket under the configured prefix."""
        import boto3

        server = Server(
            postgres_backend,
            attachment_store=f"s3://{s3.bucket}/chat-files",
            s3_endpoint_url=s3.endpoint_url,
        )
        server.env.update(s3.env)  # the standard AWS credential variables
        await server.start()
        try:
            ann, ada, cid = await chat(server, postgres_backend)
            photo = png(3, 3)
            up = await upload(ada, photo, "screen.png")
            ack = await ada.message("See", conversation_id=cid, attachments=[up["id"]])
            await ann.event("message", conversation_id=cid, seq=ack["seq"])
            assert (await download(ann, up["id"])).content == photo
            keys = [
                o["Key"]
                for o in boto3.client("s3", endpoint_url=s3.endpoint_url)
                .list_objects_v2(Bucket=s3.bucket)
                .get("Contents", [])
            ]
            assert keys == [f"chat-files/{up['id'][:2]}/{up['id']}"]
            async with httpx.AsyncClient(base_url=server.http) as http:
                ready = await http.get("/readyz")
            assert ready.json()["checks"]["files"] == "ok"
        finally:
            await server.stop()


class TestRefusedUploads:
    async def test_bad_uploads_store_nothing(self, server: Server, sqlite_backend: Backend) -> None:
        """Too large (declared, or streamed without a length), a disguised type, an empty file:
        each is refused with its own problem code, and neither a row nor a file stays."""
        ada = await Client.visitor(server, name="Ada")
        too_big = await upload(ada, png() + b"\x00" * 5000, "big.png", expect=413)
        assert too_big["code"] == "file_too_large"
        assert too_big["limit"] == 4096

        async def stream() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b"x" * 1000

        async with httpx.AsyncClient(base_url=server.http) as http:
            chunked = await http.post(
                "/api/v1/visitor/attachments",
                params={"filename": "log.txt"},
                content=stream(),
                headers=bearer(ada),
            )
        assert chunked.status_code == 413
        html = await upload(ada, b"<html><script>alert(1)</script></html>", "cat.png", expect=415)
        assert html["code"] == "unsupported_file_type"
        assert "image/png" in html["accepted"]
        svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
        assert (await upload(ada, svg, "logo.svg", expect=415))["code"] == "unsupported_file_type"
        assert (await upload(ada, b"", "empty.txt", expect=422))["code"] == "empty_file"
        async with httpx.AsyncClient(base_url=server.http) as http:
            no_token = await http.post("/api/v1/visitor/attachments", content=png())
        assert no_token.status_code == 401

        assert await attachment_rows(sqlite_backend) == []
        left = [p for p in server.files_dir.rglob("*") if p.is_file()]
        assert left == []

    async def test_the_limits_are_published(self, server: Server) -> None:
        """A client can check a file before uploading it."""
        async with httpx.AsyncClient(base_url=server.http) as http:
            limits = (await http.get("/api/v1/attachments/limits")).json()
        assert limits["max_bytes"] == 4096
        assert limits["max_per_message"] == 10
        png_type = next(t for t in limits["types"] if t["mime"] == "image/png")
        assert png_type == {
            "mime": "image/png",
            "extensions": [".png"],
            "label": "PNG",
            "image": True,
        }

    async def test_unsent_uploads_are_capped(self, server: Server) -> None:
        """Twenty uploads wait unsent at most; sending one frees a place."""
        ada = await Client.visitor(server, name="Ada")
        await ada.connect()
        ids = [(await upload(ada, png(), f"{i}.png"))["id"] for i in range(20)]
        refused = await upload(ada, png(), "21.png", expect=429)
        assert refused["code"] == "too_many_uploads"
        await ada.message("", attachments=ids[:1])
        await upload(ada, png(), "21.png")


class TestSending:
    async def test_only_the_senders_unsent_uploads_can_be_sent(
        self, server: Server, sqlite_backend: Backend
    ) -> None:
        """Another's upload, one already sent, or an unknown id: an error frame naming it and
        no message stored. A resend of the same frame is acked as a duplicate, stored once."""
        _, ada, cid = await chat(server, sqlite_backend)
        eve = await Client.visitor(server, name="Eve")
        theirs = await upload(eve, png(), "eve.png")
        mine = await upload(ada, PDF, "mine.pdf")
        before = await message_count(sqlite_backend)
        for ids in ([theirs["id"]], [str(uuid.uuid4())], [mine["id"], theirs["id"]]):
            await ada.send(
                {
                    "type": "message",
                    "client_msg_id": uuid.uuid4().hex,
                    "text": "x",
                    "attachments": ids,
                }
            )
            error = await ada.next("error")
            assert error["code"] == "attachment_not_found"
        assert await message_count(sqlite_backend) == before

        first = await ada.message(
            "here", conversation_id=cid, attachments=[mine["id"]], client_msg_id="m1"
        )
        again = await ada.message(
            "here", conversation_id=cid, attachments=[mine["id"]], client_msg_id="m1"
        )
        assert again == {**first, "duplicate": True}
        await ada.send(
            {
                "type": "message",
                "client_msg_id": "m2",
                "conversation_id": cid,
                "text": "x",
                "attachments": [mine["id"]],
            }
        )
        assert (await ada.next("error", ref="m2"))["code"] == "attachment_not_found"
        assert await message_count(sqlite_backend) == before + 1
        rows = {str(r.id): r for r in await attachment_rows(sqlite_backend)}
        assert (str(rows[mine["id"]].conversation_id), rows[mine["id"]].seq) == (cid, first["seq"])
        assert rows[theirs["id"]].conversation_id is None

    async def test_frames_that_say_nothing_are_refused(
        self, server: Server, sqlite_backend: Backend
    ) -> None:
        """No text and no file, blank text with files, eleven files, a file listed twice."""
        _, ada, cid = await chat(server, sqlite_backend)
        up = await upload(ada, png(), "a.png")
        many = [str(uuid.uuid4()) for _ in range(11)]
        for text, ids in (("", []), ("   ", [up["id"]]), ("x", many), ("x", [up["id"], up["id"]])):
            await ada.send(
                {
                    "type": "message",
                    "client_msg_id": uuid.uuid4().hex,
                    "conversation_id": cid,
                    "text": text,
                    "attachments": ids,
                }
            )
            assert (await ada.next("error"))["code"] == "invalid_frame"
        assert (await attachment_rows(sqlite_backend))[0].conversation_id is None
