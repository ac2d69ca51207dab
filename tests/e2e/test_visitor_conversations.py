"""A visitor's own conversation over REST: its transcript (JSON or a text download) and a
satisfaction rating once it closed (docs/api.md#visitor-conversations)."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import select

from app.store.db import Database
from app.store.models import Conversation
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


def bearer(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


async def a_chat(server: Server, backend: Backend) -> tuple[Client, Client, str]:
    ann = await Client.agent(server, await create_agent(backend, name="Ann"))
    await ann.connect()
    visitor = await Client.visitor(server, name="Ada")
    await visitor.connect()
    cid = (await visitor.message("Where is my parcel <b>now</b>?"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=cid)
    await ann.message("It left the depot this morning.", conversation_id=cid)
    await ann.send(
        {"type": "internal", "conversation_id": cid, "client_msg_id": "n1", "text": "VIP, be nice"}
    )
    await ann.next("ack", client_msg_id="n1")
    return ann, visitor, cid


class TestTranscriptAndRating:
    async def test_the_visitor_reads_downloads_and_rates(self, backend: Backend) -> None:
        server = await Server(backend).start()
        try:
            ann, visitor, cid = await a_chat(server, backend)
            async with httpx.AsyncClient(base_url=server.http) as http:
                early = await http.put(
                    f"/api/v1/visitor/conversations/{cid}/rating",
                    json={"score": 5},
                    headers=bearer(visitor),
                )
                assert early.status_code == 409
                assert early.json()["code"] == "not_closed"
                await ann.send({"type": "close", "conversation_id": cid})
                await visitor.event("conversation.closed", conversation_id=cid)

                got = await http.get(
                    f"/api/v1/visitor/conversations/{cid}/transcript", headers=bearer(visitor)
                )
                assert got.status_code == 200, got.text
                lines = [(x["sender"], x["text"]) for x in got.json()["lines"]]
                assert lines == [
                    ("visitor", "Where is my parcel <b>now</b>?"),
                    ("system", "Ann joined the chat."),
                    ("agent", "It left the depot this morning."),
                    ("agent", "The chat was closed."),
                ]
                text = await http.get(
                    f"/api/v1/visitor/conversations/{cid}/transcript?format=text",
                    headers=bearer(visitor),
                )
                assert text.headers["content-type"].startswith("text/plain")
                assert text.headers["content-disposition"].startswith("attachment;")
                assert "You: Where is my parcel <b>now</b>?" in text.text
                assert "Ann: It left the depot this morning." in text.text
                assert "VIP" not in text.text

                rated = await http.put(
                    f"/api/v1/visitor/conversations/{cid}/rating",
                    json={"score": 4, "comment": " Quick, thanks "},
                    headers=bearer(visitor),
                )
                assert rated.status_code == 200, rated.text
                assert (rated.json()["score"], rated.json()["comment"]) == (4, "Quick, thanks")
                again = await http.put(
                    f"/api/v1/visitor/conversations/{cid}/rating",
                    json={"score": 5},
                    headers=bearer(visitor),
                )
                assert again.json()["score"] == 5
                after = await http.get(
                    f"/api/v1/visitor/conversations/{cid}/transcript", headers=bearer(visitor)
                )
                assert [x["text"] for x in after.json()["lines"]][-2:] == [
                    "Rated 4 out of 5.",
                    "Rated 5 out of 5.",
                ]
            db = Database(backend.database_url)
            try:
                async with db.read() as session:
                    row = await session.scalar(
                        select(Conversation).where(Conversation.id == uuid.UUID(cid))
                    )
                    assert row is not None
                    assert (row.rating, row.rating_comment) == (5, None)
            finally:
                await db.dispose()
        finally:
            await server.stop()

    async def test_bad_requests_are_refused_and_change_nothing(self, backend: Backend) -> None:
        server = await Server(backend).start()
        try:
            ann, visitor, cid = await a_chat(server, backend)
            await ann.send({"type": "close", "conversation_id": cid})
            await visitor.event("conversation.closed", conversation_id=cid)
            stranger = await Client.visitor(server, name="Eve")
            url = f"/api/v1/visitor/conversations/{cid}"
            async with httpx.AsyncClient(base_url=server.http) as http:
                nobody = await http.get(f"{url}/transcript")
                assert nobody.status_code == 401
                other = await http.get(f"{url}/transcript", headers=bearer(stranger))
                assert other.status_code == 404
                assert other.json()["code"] == "conversation_not_found"
                for body in (
                    {"score": 0},
                    {"score": 6},
                    {"score": "5"},
                    {"score": 3, "comment": "x" * 1001},
                    {},
                ):
                    bad = await http.put(f"{url}/rating", json=body, headers=bearer(visitor))
                    assert bad.status_code == 422, body
                theirs = await http.put(
                    f"{url}/rating", json={"score": 1}, headers=bearer(stranger)
                )
                assert theirs.status_code == 404
                as_agent = await http.put(f"{url}/rating", json={"score": 1}, headers=bearer(ann))
                assert as_agent.status_code == 401
                transcript = await http.get(f"{url}/transcript", headers=bearer(visitor))
                assert "Rated" not in str(transcript.json()["lines"])
        finally:
            await server.stop()
