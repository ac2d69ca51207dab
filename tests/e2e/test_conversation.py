"""A visitor and an agent talk through a real server, on SQLite + in-process bus and on
PostgreSQL + Redis: the happy path, idempotent resends, resume after a drop, presence."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


@pytest_asyncio.fixture
async def server(backend: Backend) -> AsyncIterator[Server]:
    srv = await Server(backend).start()
    try:
        yield srv
    finally:
        await srv.stop()


def kinds(client: Client, conversation_id: str) -> list[tuple[int, str]]:
    return [(e["seq"], e["kind"]) for e in client.events[conversation_id]]


class TestConversation:
    async def test_visitor_and_agent_see_the_same_log(
        self, server: Server, backend: Backend
    ) -> None:
        """Visitor writes, the online agent is assigned and answers, the agent closes: both
        sides receive the same events, in the same order, with the same seq."""
        agent = await Client.agent(server, await create_agent(backend, name="Dana"))
        await agent.connect()
        visitor = await Client.visitor(server)
        welcome = await visitor.connect()
        assert welcome["conversations"] == []

        ack = await visitor.message("Hi, my order #1234 has not arrived")
        conversation_id = ack["conversation_id"]
        assert ack["seq"] == 2
        assert ack["duplicate"] is False

        joined = await visitor.event("agent.joined")
        assert joined["body"]["agent"]["name"] == "Dana"
        first = await agent.event("message", conversation_id=conversation_id)
        assert first["body"]["text"] == "Hi, my order #1234 has not arrived"
        assert first["sender"]["type"] == "visitor"

        reply = await agent.message("Let me check that for you", conversation_id=conversation_id)
        got = await visitor.event("message", seq=reply["seq"])
        assert got["body"]["text"] == "Let me check that for you"
        assert got["sender"] == {
            "type": "agent",
            "id": agent.welcome["session"]["id"],
            "name": "Dana",
        }

        await agent.send({"type": "close", "conversation_id": conversation_id})
        await visitor.event("conversation.closed")
        await agent.event("conversation.closed")

        expected = [
            "conversation.opened",
            "message",
            "conversation.queued",
            "conversation.assigned",
            "agent.joined",
            "message",
            "conversation.closed",
        ]
        assert [k for _, k in kinds(visitor, conversation_id)] == expected
        # The agent sees the same events with the same seqs, plus the agents-only routing
        # decision (who was chosen and why), which the visitor never sees.
        shared = [
            (e["seq"], e["kind"]) for e in agent.events[conversation_id] if e["visibility"] == "all"
        ]
        assert shared == kinds(visitor, conversation_id)
        assert agent.seqs(conversation_id) == list(range(1, 9))
        internal = [e for e in agent.events[conversation_id] if e["visibility"] == "agents"]
        assert [e["kind"] for e in internal] == ["routing.decided"]
        assert internal[0]["body"]["chosen"] == agent.welcome["session"]["id"]
        assert internal[0]["body"]["rule"]
        await visitor.close()
        await agent.close()

    async def test_nobody_online_means_an_offline_message(
        self, server: Server, backend: Backend
    ) -> None:
        """With nobody online the visitor is told at once and may leave a message; an agent
        who comes online later finds it in the offline list, takes it, and has its history."""
        email = await create_agent(backend, name="Sam")
        visitor = await Client.visitor(server)
        await visitor.connect()
        ack = await visitor.message("Anyone there?")
        offline = await visitor.event("conversation.offline")
        assert offline["body"] == {"reason": "no_agents", "opens_at": None}
        details = await visitor.message("My order #123 never arrived, email me please.")
        assert details["conversation_id"] == ack["conversation_id"]  # the same left message

        agent = await Client.agent(server, email)
        await agent.connect()
        # Not routed to the agent who comes online: the visitor was told nobody could answer.
        assert [f for f in await agent.quiet(0.5) if f.get("type") in ("offer", "event")] == []
        async with httpx.AsyncClient(base_url=server.http) as http:
            listed = await http.get(
                "/api/v1/conversations/offline",
                headers={"Authorization": f"Bearer {agent.token}"},
            )
        assert listed.status_code == 200, listed.text
        [item] = listed.json()
        assert item["id"] == ack["conversation_id"]
        assert item["reason"] == "no_agents"
        assert item["preview"] == "My order #123 never arrived, email me please."

        await agent.send({"type": "take", "conversation_id": ack["conversation_id"]})
        await agent.next("taken", conversation_id=ack["conversation_id"])
        message = await agent.event("message", seq=details["seq"])
        assert message["body"]["text"] == "My order #123 never arrived, email me please."
        assert agent.seqs(ack["conversation_id"])[0] == 1
        await visitor.event("agent.joined")

        # Taken once: a second take is refused with a reason, and nothing changes.
        await agent.send({"type": "take", "conversation_id": ack["conversation_id"]})
        error = await agent.next("error")
        assert error["code"] == "not_offline"

    async def test_offline_message_joins_the_queue_when_the_visitor_writes_again(
        self, server: Server, backend: Backend
    ) -> None:
        """A visitor whose message was left offline writes again once an agent is online: the
        conversation is queued and assigned with everything said so far."""
        visitor = await Client.visitor(server)
        await visitor.connect()
        first = await visitor.message("hello?")
        await visitor.event("conversation.offline")
        agent = await Client.agent(server, await create_agent(backend, name="Ann"))
        await agent.connect()
        again = await visitor.message("still there?")
        queued = await visitor.event("conversation.queued")
        assert queued["body"]["reason"] == "agents_available"
        joined = await visitor.event("agent.joined")
        assert joined["body"]["agent"]["name"] == "Ann"
        assert (await agent.event("message", seq=first["seq"]))["body"]["text"] == "hello?"
        await agent.event("message", seq=again["seq"])

    async def test_least_loaded_agent_gets_the_chat(self, server: Server, backend: Backend) -> None:
        """Two agents with the skill: the one with fewer chats for their capacity is assigned."""
        busy = await Client.agent(
            server, await create_agent(backend, name="Busy", skills={"billing": 3}, capacity=2)
        )
        await busy.connect()
        first = await Client.visitor(server, name="First")
        await first.connect()
        await first.message("one", skill="billing")
        await busy.event("agent.joined")  # Busy is alone, takes the first chat

        free = await Client.agent(
            server, await create_agent(backend, name="Free", skills={"billing": 1}, capacity=2)
        )
        await free.connect()
        second = await Client.visitor(server, name="Second")
        await second.connect()
        await second.message("two", skill="billing")
        joined = await second.event("agent.joined")
        assert joined["body"]["agent"]["name"] == "Free"

    async def test_unknown_skill_is_refused(self, server: Server) -> None:
        """A first message naming a skill that does not exist is an error and opens nothing."""
        visitor = await Client.visitor(server)
        await visitor.connect()
        await visitor.send(
            {"type": "message", "client_msg_id": "x1", "text": "hi", "skill": "nope"}
        )
        error = await visitor.next("error", ref="x1")
        assert error["code"] == "invalid_frame"
        await visitor.close()
        again = Client(server, "visitor", visitor.token)
        assert (await again.connect())["conversations"] == []


class TestIdempotency:
    async def test_resend_is_stored_once(self, server: Server, backend: Backend) -> None:
        """Sending the same client_msg_id again acks the first seq and stores nothing new."""
        agent = await Client.agent(server, await create_agent(backend))
        await agent.connect()
        visitor = await Client.visitor(server)
        await visitor.connect()
        first = await visitor.message("hello", client_msg_id="c-1")
        conversation_id = first["conversation_id"]
        await agent.event("agent.joined")
        again = await visitor.message("hello", client_msg_id="c-1")
        assert again["seq"] == first["seq"]
        assert again["duplicate"] is True
        agent_resend = await agent.message(
            "hi!", conversation_id=conversation_id, client_msg_id="a-1"
        )
        agent_again = await agent.message(
            "hi!", conversation_id=conversation_id, client_msg_id="a-1"
        )
        assert (agent_again["seq"], agent_again["duplicate"]) == (agent_resend["seq"], True)

        fresh = Client(server, "visitor", visitor.token)
        await fresh.connect(resume={conversation_id: 0})
        await fresh.event("message", seq=agent_resend["seq"])
        texts = [e["body"]["text"] for e in fresh.events[conversation_id] if e["kind"] == "message"]
        assert texts == ["hello", "hi!"]

    async def test_same_client_msg_id_from_two_senders_are_two_messages(
        self, server: Server, backend: Backend
    ) -> None:
        """client_msg_id is unique per sender: a visitor and an agent may both use "1"."""
        agent = await Client.agent(server, await create_agent(backend))
        await agent.connect()
        visitor = await Client.visitor(server)
        await visitor.connect()
        mine = await visitor.message("from visitor", client_msg_id="1")
        await agent.event("agent.joined")
        theirs = await agent.message(
            "from agent", conversation_id=mine["conversation_id"], client_msg_id="1"
        )
        assert theirs["duplicate"] is False
        assert theirs["seq"] > mine["seq"]


class TestResume:
    async def test_resume_gets_exactly_the_missed_events(
        self, server: Server, backend: Backend
    ) -> None:
        """A visitor who drops after seq N and comes back with N receives N+1… once, in order,
        including what the agent wrote meanwhile, then keeps receiving live events."""
        agent = await Client.agent(server, await create_agent(backend))
        await agent.connect()
        visitor = await Client.visitor(server)
        await visitor.connect()
        ack = await visitor.message("hello")
        conversation_id = ack["conversation_id"]
        await visitor.event("agent.joined")
        last_seen = visitor.seqs(conversation_id)[-1]
        await visitor.drop()

        for text in ("are you there?", "I found your order", "it ships tomorrow"):
            await agent.message(text, conversation_id=conversation_id)

        back = Client(server, "visitor", visitor.token)
        welcome = await back.connect(resume={conversation_id: last_seen})
        assert [c["id"] for c in welcome["conversations"]] == [conversation_id]
        for seq in range(last_seen + 1, last_seen + 4):
            await back.event("message", seq=seq)
        assert back.seqs(conversation_id) == [last_seen + 1, last_seen + 2, last_seen + 3]
        assert [f for f in await back.quiet() if f["type"] == "event"] == []

        live = await agent.message("anything else?", conversation_id=conversation_id)
        await back.event("message", seq=live["seq"])
        assert back.seqs(conversation_id) == list(range(last_seen + 1, live["seq"] + 1))

        # Replayed state equals a fresh fetch of the whole log.
        fresh = Client(server, "visitor", visitor.token)
        await fresh.connect(resume={conversation_id: 0})
        await fresh.event("message", seq=live["seq"])
        full = fresh.events[conversation_id]
        seen = visitor.events[conversation_id] + back.events[conversation_id]
        assert [(e["seq"], e["kind"], e["body"]) for e in seen] == [
            (e["seq"], e["kind"], e["body"]) for e in full
        ]

    async def test_new_tab_without_resume_gets_the_whole_open_conversation(
        self, server: Server
    ) -> None:
        """A second tab of the same visitor sees the one open conversation from its start."""
        visitor = await Client.visitor(server)
        await visitor.connect()
        ack = await visitor.message("first tab")
        tab = Client(server, "visitor", visitor.token)
        welcome = await tab.connect()
        assert [c["id"] for c in welcome["conversations"]] == [ack["conversation_id"]]
        await tab.event("message", seq=ack["seq"])
        # A message from the second tab goes to the same conversation and reaches the first.
        other = await tab.message("second tab")
        assert other["conversation_id"] == ack["conversation_id"]
        await visitor.event("message", seq=other["seq"])

    async def test_visitor_token_resumes_the_open_conversation_over_http(
        self, server: Server
    ) -> None:
        """POST /visitor/sessions with a held token returns the same visitor and their open chat."""
        visitor = await Client.visitor(server)
        await visitor.connect()
        ack = await visitor.message("hello")
        async with httpx.AsyncClient(base_url=server.http) as http:
            response = await http.post("/api/v1/visitor/sessions", json={"token": visitor.token})
        assert response.status_code == 200
        body = response.json()
        assert body["visitor_id"] == visitor.welcome["session"]["id"]
        assert body["conversation"]["id"] == ack["conversation_id"]


class TestPresence:
    async def test_dropped_agent_loses_chats_after_grace(self, backend: Backend) -> None:
        """An agent whose socket dies keeps the chat for the grace period; then it goes back to
        the queue (the visitor is told) and the next online agent gets it with its history."""
        server = await Server(
            backend, agent_grace_period="1", heartbeat_interval="0.5", heartbeat_timeout="2"
        ).start()
        try:
            gone = await Client.agent(server, await create_agent(backend, name="Gone"))
            await gone.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("help")
            await visitor.event("agent.joined")
            await gone.drop()

            left = await visitor.event("agent.left", timeout=15)
            assert left["body"]["reason"] == "agent_disconnected"
            await visitor.event("conversation.queued", seq=left["seq"] + 1)

            next_agent = await Client.agent(server, await create_agent(backend, name="Next"))
            await next_agent.connect()
            joined = await visitor.event("agent.joined")
            assert joined["seq"] > left["seq"]
            assert joined["body"]["agent"]["name"] == "Next"
            await next_agent.event("message", seq=ack["seq"])
        finally:
            await server.stop()

    async def test_away_agent_gets_no_new_chats(self, server: Server, backend: Backend) -> None:
        """An agent who sets themselves away is not assigned, even with room while the chat
        waits for a busy colleague; back online, they get it at once."""
        away = await Client.agent(server, await create_agent(backend, name="Away"))
        await away.connect()
        await away.send({"type": "status", "status": "away"})
        assert (await away.next("status"))["status"] == "away"
        busy = await Client.agent(server, await create_agent(backend, name="Busy", capacity=1))
        await busy.connect()
        first = await Client.visitor(server)
        await first.connect()
        await first.message("one")
        await busy.event("agent.joined")

        visitor = await Client.visitor(server)
        await visitor.connect()
        await visitor.message("hello?")
        await visitor.event("conversation.queued")
        assert [f for f in await visitor.quiet(0.5) if f.get("kind") == "agent.joined"] == []
        await away.send({"type": "status", "status": "online"})
        joined = await visitor.event("agent.joined")
        assert joined["body"]["agent"]["name"] == "Away"

    async def test_everyone_away_means_an_offline_message(
        self, server: Server, backend: Backend
    ) -> None:
        """Agents who are all away count as nobody available: the visitor is told at once."""
        agent = await Client.agent(server, await create_agent(backend))
        await agent.connect()
        await agent.send({"type": "status", "status": "away"})
        await agent.next("status")
        visitor = await Client.visitor(server)
        await visitor.connect()
        await visitor.message("hello?")
        offline = await visitor.event("conversation.offline")
        assert offline["body"]["reason"] == "no_agents"


async def set_skill_rules(
    backend: Backend, slug: str, *, keywords: list[str], page_patterns: list[str]
) -> None:
    from sqlalchemy import update

    from app.store.db import Database
    from app.store.models import Skill

    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Skill)
                .where(Skill.slug == slug)
                .values(keywords=keywords, page_patterns=page_patterns)
            )
    finally:
        await db.dispose()


class TestRequiredSkill:
    async def test_first_message_and_page_choose_the_skill(
        self, server: Server, backend: Backend
    ) -> None:
        """Without a pre-chat topic, a chat goes to the skill its first message talks about, or
        whose pages it started on; the opened event says why."""
        biller = await Client.agent(
            server, await create_agent(backend, name="Biller", skills={"billing": 3})
        )
        await biller.connect()
        techie = await Client.agent(
            server, await create_agent(backend, name="Techie", skills={"technical": 3})
        )
        await techie.connect()
        await set_skill_rules(backend, "billing", keywords=["refund", "charged"], page_patterns=[])
        await set_skill_rules(backend, "technical", keywords=["error"], page_patterns=["/docs/*"])

        money = await Client.visitor(server, name="Money")
        await money.connect()
        await money.message("I was charged twice and want a refund")
        opened = await money.event("conversation.opened")
        assert opened["body"]["skill"]["source"] == "message"
        assert sorted(opened["body"]["skill"]["matched"]) == ["charged", "refund"]
        assert (await money.event("agent.joined"))["body"]["agent"]["name"] == "Biller"

        docs = await Client.visitor(server, name="Reader")
        await docs.connect()
        await docs.message("hi there", page_url="https://example.com/docs/setup")
        opened = await docs.event("conversation.opened")
        assert opened["body"]["skill"]["source"] == "page"
        assert (await docs.event("agent.joined"))["body"]["agent"]["name"] == "Techie"
