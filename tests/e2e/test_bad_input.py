"""Hostile and broken input gets a documented error frame or close code, and changes nothing
that is stored (docs/protocol.md#errors, #close-codes)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Backend
from tests.e2e.harness import Client, Server, count_rows, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(backend: Backend) -> AsyncIterator[Server]:
    srv = await Server(
        backend, allowed_origins="https://shop.example", hello_timeout="2", max_frame_bytes="4096"
    ).start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest_asyncio.fixture
async def chatting(server: Server, backend: Backend) -> AsyncIterator[tuple[Client, Client, str]]:
    """A visitor and an agent in one assigned conversation."""
    agent = await Client.agent(server, await create_agent(backend))
    await agent.connect()
    visitor = await Client.visitor(server)
    await visitor.connect()
    ack = await visitor.message("hello")
    await agent.event("agent.joined")
    await visitor.event("agent.joined")
    yield visitor, agent, ack["conversation_id"]


async def still_alive(client: Client) -> None:
    """The socket still works after the error: a ping gets its pong."""
    await client.send({"type": "ping"})
    await client.next("pong")


class TestErrorFrames:
    @pytest.mark.parametrize(
        ("raw", "code"),
        [
            ("{not json", "invalid_json"),
            ("[1, 2]", "invalid_frame"),
            ('{"text": "no type"}', "invalid_frame"),
            ('{"type": "shout", "text": "hi"}', "unknown_type"),
            ('{"type": "message", "text": "no client_msg_id"}', "invalid_frame"),
            ('{"type": "message", "client_msg_id": 5, "text": "wrong type"}', "invalid_frame"),
            (
                '{"type": "message", "client_msg_id": "a", "text": "x", "admin": true}',
                "invalid_frame",
            ),
            ('{"type": "message", "client_msg_id": "a", "text": "   "}', "invalid_frame"),
            (
                '{"type": "typing", "conversation_id": "not-a-uuid", "state": "start"}',
                "invalid_frame",
            ),
            ('{"type": "hello", "token": "again"}', "invalid_frame"),
            (
                '{"type": "message", "client_msg_id": "n", "text": "nul \\u0000 inside"}',
                "invalid_frame",
            ),
            (
                '{"type": "read", "seq": true,'
                ' "conversation_id": "00000000-0000-0000-0000-000000000000"}',
                "invalid_frame",
            ),
            (
                '{"type": "a", "b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {}}}}}}}}}',
                "invalid_frame",
            ),
            (
                '{"type": "message", "client_msg_id": "a", "text": "x", '
                '"page_url": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {}}}}}}}}}',
                "invalid_frame",
            ),
        ],
    )
    async def test_bad_frame_gets_error_and_changes_nothing(
        self,
        server: Server,
        backend: Backend,
        chatting: tuple[Client, Client, str],
        raw: str,
        code: str,
    ) -> None:
        """Each malformed frame is answered with an error frame carrying its documented code;
        the socket stays open and no row is added or changed."""
        visitor, _agent, _conversation_id = chatting
        before = await count_rows(backend)
        await visitor.send(raw)
        error = await visitor.next("error")
        assert error["code"] == code
        assert error["message"]
        assert "fatal" not in error
        await still_alive(visitor)
        assert await count_rows(backend) == before

    async def test_message_too_long(
        self, server: Server, backend: Backend, chatting: tuple[Client, Client, str]
    ) -> None:
        """A message over the character limit is refused with the limit in the error."""
        visitor, _agent, _ = chatting
        before = await count_rows(backend)
        async with httpx.AsyncClient(base_url=server.http) as http:
            assert (await http.get("/healthz")).status_code == 200
        await visitor.send({"type": "message", "client_msg_id": "long", "text": "a" * 4001})
        error = await visitor.next("error", ref="long")
        assert error["code"] == "invalid_frame"
        assert error["details"]["limit"] == 4000
        await still_alive(visitor)
        assert await count_rows(backend) == before

    async def test_missing_fields_are_named(self, chatting: tuple[Client, Client, str]) -> None:
        """The error for a frame with missing fields names each field."""
        visitor, _agent, _ = chatting
        await visitor.send({"type": "read"})
        error = await visitor.next("error")
        fields = {e["field"] for e in error["details"]["errors"]}
        assert fields == {"conversation_id", "seq"}

    async def test_binary_frame_is_refused(self, chatting: tuple[Client, Client, str]) -> None:
        """Binary frames are not part of the protocol: error frame, socket stays open."""
        visitor, _agent, _ = chatting
        assert visitor.ws is not None
        await visitor.ws.send(b"\x00\x01")
        assert (await visitor.next("error"))["code"] == "invalid_frame"
        await still_alive(visitor)


class TestNotYourConversation:
    async def test_visitor_cannot_write_to_someone_elses_conversation(
        self, server: Server, backend: Backend, chatting: tuple[Client, Client, str]
    ) -> None:
        """Another visitor naming this conversation gets conversation_not_found (ids are not
        probeable) and nothing is stored."""
        _visitor, _agent, conversation_id = chatting
        intruder = await Client.visitor(server, name="Mallory")
        await intruder.connect()
        before = await count_rows(backend)
        for frame in (
            {
                "type": "message",
                "conversation_id": conversation_id,
                "client_msg_id": "m",
                "text": "hi",
            },
            {"type": "close", "conversation_id": conversation_id},
            {"type": "read", "conversation_id": conversation_id, "seq": 1},
            {"type": "typing", "conversation_id": conversation_id, "state": "start"},
        ):
            await intruder.send(frame)
            assert (await intruder.next("error"))["code"] == "conversation_not_found"
        await intruder.send({"type": "resume", "conversations": {conversation_id: 0}})
        assert (await intruder.next("error"))["code"] == "conversation_not_found"
        assert [f for f in await intruder.quiet(0.3) if f["type"] == "event"] == []
        assert await count_rows(backend) == before

    async def test_agent_cannot_write_to_a_chat_of_another_agent(
        self, server: Server, backend: Backend, chatting: tuple[Client, Client, str]
    ) -> None:
        """An agent who does not hold the conversation gets not_participant."""
        _visitor, _agent, conversation_id = chatting
        other = await Client.agent(server, await create_agent(backend, name="Other"))
        await other.connect()
        before = await count_rows(backend)
        await other.send(
            {
                "type": "message",
                "conversation_id": conversation_id,
                "client_msg_id": "o",
                "text": "x",
            }
        )
        error = await other.next("error", ref="o")
        assert error["code"] == "not_participant"
        await other.send({"type": "message", "client_msg_id": "o2", "text": "no conversation"})
        assert (await other.next("error", ref="o2"))["code"] == "not_participant"
        assert await count_rows(backend) == before

    async def test_closed_conversation_refuses_messages(
        self, chatting: tuple[Client, Client, str]
    ) -> None:
        """After a close, a message naming the conversation gets conversation_closed."""
        visitor, agent, conversation_id = chatting
        await visitor.send({"type": "close", "conversation_id": conversation_id})
        await agent.event("conversation.closed")
        await agent.send(
            {
                "type": "message",
                "conversation_id": conversation_id,
                "client_msg_id": "late",
                "text": "x",
            }
        )
        assert (await agent.next("error", ref="late"))["code"] == "conversation_closed"
        await visitor.send({"type": "close", "conversation_id": conversation_id})
        assert (await visitor.next("error"))["code"] == "conversation_closed"


class TestFatal:
    async def test_oversize_frame_closes_with_1009(
        self, chatting: tuple[Client, Client, str], backend: Backend
    ) -> None:
        """A frame over max_frame_bytes closes the socket with 1009 and stores nothing."""
        visitor, _agent, _ = chatting
        before = await count_rows(backend)
        await visitor.send({"type": "message", "client_msg_id": "big", "text": "x" * 5000})
        closed = await visitor.closed()
        assert closed.code == 1009
        assert "frame_too_large" in closed.reason
        assert await count_rows(backend) == before

    async def test_huge_frame_is_cut_by_the_transport(
        self, chatting: tuple[Client, Client, str]
    ) -> None:
        """A frame far over the limit never reaches the application: closed with 1009."""
        visitor, _agent, _ = chatting
        await visitor.send("x" * 100_000)
        assert (await visitor.closed()).code == 1009

    @pytest.mark.parametrize("role", ["visitor", "agent"])
    async def test_wrong_token_closes_with_4001(self, server: Server, role: str) -> None:
        """A hello with an unknown token closes with 4001 and a reason."""
        client = Client(server, role, "wlv_not-a-real-token" if role == "visitor" else "wla_nope")
        await client.connect(hello=False)
        await client.send({"type": "hello", "token": client.token})
        closed = await client.closed()
        assert closed.code == 4001
        assert "invalid_token" in closed.reason

    async def test_visitor_token_on_agent_socket_closes_with_4001(self, server: Server) -> None:
        """A visitor token does not open an agent socket."""
        visitor = await Client.visitor(server)
        client = Client(server, "agent", visitor.token)
        await client.connect(hello=False)
        await client.send({"type": "hello", "token": visitor.token})
        assert (await client.closed()).code == 4001

    async def test_wrong_origin_closes_with_4003(self, server: Server) -> None:
        """A browser page on an origin that is not allowed cannot open a socket."""
        visitor = await Client.visitor(server)
        await visitor.connect(origin="https://evil.example", hello=False)
        closed = await visitor.closed()
        assert closed.code == 4003
        assert "origin_not_allowed" in closed.reason

    async def test_allowed_and_same_origin_connect(self, server: Server) -> None:
        """The configured origin and the server's own origin are accepted."""
        visitor = await Client.visitor(server)
        assert (await visitor.connect(origin="https://shop.example"))["type"] == "welcome"
        same = Client(server, "visitor", visitor.token)
        assert (await same.connect(origin=server.http))["type"] == "welcome"

    @pytest.mark.parametrize(
        "first",
        [{"type": "ping"}, {"type": "message", "client_msg_id": "a", "text": "hi"}, "garbage"],
    )
    async def test_first_frame_must_be_hello(
        self, server: Server, first: dict[str, Any] | str
    ) -> None:
        """Anything but a hello first closes with 4002."""
        visitor = await Client.visitor(server)
        await visitor.connect(hello=False)
        await visitor.send(first)
        assert (await visitor.closed()).code == 4002

    async def test_silent_client_is_closed_after_hello_timeout(self, server: Server) -> None:
        """A socket that never says hello is closed with 4002 once hello_timeout passes."""
        visitor = await Client.visitor(server)
        await visitor.connect(hello=False)
        closed = await visitor.closed(timeout=10)
        assert closed.code == 4002


class TestHeartbeat:
    async def test_server_pings_and_drops_a_silent_client(self, backend: Backend) -> None:
        """The server pings every heartbeat_interval; a client that stops answering is closed
        with 4008 once heartbeat_timeout passes, while one that answers stays connected."""
        server = await Server(backend, heartbeat_interval="0.3", heartbeat_timeout="1.2").start()
        try:
            lively = await Client.visitor(server)
            await lively.connect()
            silent = Client(server, "visitor", lively.token)
            await silent.connect()
            silent.answer_pings = False
            closed, heard = await asyncio.gather(silent.closed(timeout=10), lively.quiet(3.0))
            assert closed.code == 4008
            assert heard == []  # pings are answered by the harness and not recorded
            await still_alive(lively)
        finally:
            await server.stop()


class TestHttpErrors:
    async def test_problem_details(self, server: Server) -> None:
        """HTTP errors are problem details with a machine-readable code."""
        async with httpx.AsyncClient(base_url=server.http) as http:
            wrong = await http.post(
                "/api/v1/auth/login", json={"email": "x@example.com", "password": "nope"}
            )
            assert wrong.status_code == 401
            assert wrong.headers["content-type"] == "application/problem+json"
            assert wrong.json()["code"] == "invalid_credentials"
            invalid = await http.post("/api/v1/visitor/sessions", json={"email": "not-an-email"})
            assert invalid.status_code == 422
            assert invalid.json()["code"] == "invalid_request"
            assert invalid.json()["errors"][0]["field"].endswith("email")
            nul = await http.post("/api/v1/visitor/sessions", json={"name": "A\u0000da"})
            assert nul.status_code == 422
            assert nul.json()["code"] == "invalid_request"
            nan = await http.post(
                "/api/v1/visitor/sessions",
                content=b'{"attributes": {"score": NaN}}',
                headers={"content-type": "application/json"},
            )
            assert nan.status_code == 422
            unknown = await http.post("/api/v1/visitor/sessions", json={"token": "wlv_unknown"})
            assert unknown.status_code == 401
            assert unknown.json()["code"] == "invalid_token"
            me = await http.get("/api/v1/auth/me")
            assert me.status_code == 401
            missing = await http.get("/api/v1/nothing-here")
            assert missing.status_code == 404
            assert missing.json()["code"] == "not_found"
