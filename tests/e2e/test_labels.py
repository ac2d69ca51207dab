"""Tags and dispositions through the agent protocol, on both backends: an agent labels a chat
and records how it ended when closing it; the visitor sees none of it; refused labels change
nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import text

from app.store.db import Database
from app.store.models import Conversation
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(backend: Backend) -> AsyncIterator[Server]:
    srv = await Server(backend, heartbeat_timeout="30").start()
    try:
        yield srv
    finally:
        await srv.stop()


async def chat(server: Server, backend: Backend) -> tuple[Client, Client, str]:
    agent = await Client.agent(server, await create_agent(backend, name="Dana"))
    await agent.connect()
    visitor = await Client.visitor(server)
    await visitor.connect()
    ack = await visitor.message("My parcel is late, order ORD-1234")
    conversation_id = str(ack["conversation_id"])
    await agent.event("agent.joined", conversation_id=conversation_id)
    return agent, visitor, conversation_id


async def stored(backend: Backend, conversation_id: str) -> dict[str, Any]:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            row = await session.get(Conversation, uuid.UUID(conversation_id))
            assert row is not None
            return {"state": row.state.value, "tags": row.tags, "disposition": row.disposition}
    finally:
        await db.dispose()


async def require_disposition(backend: Backend) -> None:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            await session.execute(text("UPDATE routing_settings SET require_disposition = true"))
    finally:
        await db.dispose()


class TestTags:
    async def test_agent_tags_a_chat_the_visitor_never_sees_them(
        self, server: Server, backend: Backend
    ) -> None:
        agent, visitor, conversation_id = await chat(server, backend)

        await agent.send(
            {
                "type": "tags",
                "conversation_id": conversation_id,
                "tags": ["Refund ", "VIP", "refund"],
            }
        )
        tagged = await agent.event("conversation.tagged", conversation_id=conversation_id)
        assert tagged["visibility"] == "agents"
        assert tagged["body"] == {
            "tags": ["refund", "vip"],
            "added": ["refund", "vip"],
            "removed": [],
        }
        assert tagged["sender"]["name"] == "Dana"

        # The same set again writes nothing; a change lists what was added and removed.
        await agent.send(
            {"type": "tags", "conversation_id": conversation_id, "tags": ["vip", "refund"]}
        )
        await agent.send(
            {"type": "tags", "conversation_id": conversation_id, "tags": ["vip", "late  parcel"]}
        )
        changed = await agent.event("conversation.tagged", seq=tagged["seq"] + 1)
        assert changed["body"] == {
            "tags": ["vip", "late parcel"],
            "added": ["late parcel"],
            "removed": ["refund"],
        }
        assert (await stored(backend, conversation_id))["tags"] == ["vip", "late parcel"]

        # The visitor may not tag, and never received a tag event.
        await visitor.send({"type": "tags", "conversation_id": conversation_id, "tags": ["x"]})
        assert (await visitor.next("error"))["code"] == "forbidden"
        await visitor.message("Any news?", conversation_id=conversation_id)
        assert all(e["kind"] != "conversation.tagged" for e in visitor.events[conversation_id])
        await agent.close()
        await visitor.close()

    async def test_bad_tags_are_refused_and_change_nothing(
        self, server: Server, backend: Backend
    ) -> None:
        agent, visitor, conversation_id = await chat(server, backend)
        await agent.send({"type": "tags", "conversation_id": conversation_id, "tags": ["ok"]})
        await agent.event("conversation.tagged")
        for bad in (["   "], ["x" * 33], [f"t{i}" for i in range(21)]):
            await agent.send({"type": "tags", "conversation_id": conversation_id, "tags": bad})
            error = await agent.next("error")
            assert error["code"] == "invalid_frame", bad
        other = await Client.agent(server, await create_agent(backend, name="Sam"))
        await other.connect()
        await other.send({"type": "tags", "conversation_id": conversation_id, "tags": ["mine"]})
        assert (await other.next("error"))["code"] == "not_participant"
        assert (await stored(backend, conversation_id))["tags"] == ["ok"]
        await other.close()
        await agent.close()
        await visitor.close()


class TestDisposition:
    async def test_close_with_tags_and_disposition(self, server: Server, backend: Backend) -> None:
        agent, visitor, conversation_id = await chat(server, backend)
        await agent.send(
            {
                "type": "close",
                "conversation_id": conversation_id,
                "tags": ["Shipping"],
                "disposition": "resolved",
            }
        )
        closed = await agent.event("conversation.closed", conversation_id=conversation_id)
        log = [(e["seq"], e["kind"]) for e in agent.events[conversation_id]][-3:]
        assert [k for _, k in log] == [
            "conversation.tagged",
            "conversation.disposition",
            "conversation.closed",
        ]
        disposition = agent.events[conversation_id][-2]
        assert disposition["visibility"] == "agents"
        assert disposition["body"] == {"disposition": "resolved", "label": "Resolved"}
        assert closed["body"] == {"by": "agent"}  # the visitor's copy holds no label

        seen = await visitor.event("conversation.closed")
        assert seen["seq"] == closed["seq"]
        assert {e["kind"] for e in visitor.events[conversation_id]}.isdisjoint(
            {"conversation.tagged", "conversation.disposition"}
        )
        assert await stored(backend, conversation_id) == {
            "state": "closed",
            "tags": ["shipping"],
            "disposition": "resolved",
        }
        await agent.close()
        await visitor.close()

    async def test_refused_closes_leave_the_chat_open(
        self, server: Server, backend: Backend
    ) -> None:
        agent, visitor, conversation_id = await chat(server, backend)

        await agent.send(
            {"type": "close", "conversation_id": conversation_id, "disposition": "made_up"}
        )
        error = await agent.next("error")
        assert error["code"] == "invalid_frame"
        assert "resolved" in error["details"]["dispositions"]

        await visitor.send(
            {"type": "close", "conversation_id": conversation_id, "disposition": "resolved"}
        )
        assert (await visitor.next("error"))["code"] == "forbidden"

        await require_disposition(backend)
        await agent.send({"type": "close", "conversation_id": conversation_id, "tags": ["a"]})
        required = await agent.next("error")
        assert required["code"] == "disposition_required"
        assert (await stored(backend, conversation_id)) == {
            "state": "assigned",
            "tags": [],
            "disposition": None,
        }
        # Still open: the conversation goes on, then closes with a disposition.
        ack = await visitor.message("Hello?", conversation_id=conversation_id)
        await agent.event("message", seq=ack["seq"])
        await agent.send(
            {"type": "close", "conversation_id": conversation_id, "disposition": "follow_up"}
        )
        await agent.event("conversation.closed")
        assert (await stored(backend, conversation_id))["disposition"] == "follow_up"
        # A visitor's close needs no disposition even when agents must give one.
        await agent.close()
        await visitor.close()
