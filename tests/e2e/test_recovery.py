"""Regressions found in review: chats coming back to an agent, lost bus notices, resends after
a close, subscriptions that must not leak."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from app.chat import service as chat_service
from app.chat.service import Actor
from app.store.db import Database
from app.store.models import SenderType
from tests.conftest import REDIS_URL, Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


class TestChatComesBack:
    async def test_agent_who_gets_a_chat_back_hears_it(self, backend: Backend) -> None:
        """An agent past the grace period loses the chat; when they reconnect and it is given
        back to them, they receive the visitor's new messages (a replay of their own earlier
        `agent.left` must not unsubscribe them)."""
        server = await Server(
            backend, agent_grace_period="0.5", heartbeat_interval="0.3", heartbeat_timeout="2"
        ).start()
        try:
            email = await create_agent(backend, name="Ann")
            agent = await Client.agent(server, email)
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hello")
            conversation_id = ack["conversation_id"]
            await visitor.event("agent.joined")
            await agent.drop()
            await visitor.event("agent.left", timeout=15)

            back = Client(server, "agent", agent.token)
            await back.connect()
            rejoined = await visitor.event("agent.joined", timeout=15)
            assert rejoined["body"]["agent"]["name"] == "Ann"
            later = await visitor.message("are you back?")
            got = await back.event("message", seq=later["seq"])
            assert got["body"]["text"] == "are you back?"
            seqs = back.seqs(conversation_id)
            assert seqs == list(range(1, later["seq"] + 1))
        finally:
            await server.stop()


class TestLostNotices:
    async def test_event_stored_without_a_notice_still_arrives(self, backend: Backend) -> None:
        """An event stored and acked by a node whose publish then failed (simulated: written
        straight to the store, never published) reaches connected clients on the next tick."""
        server = await Server(backend, heartbeat_interval="0.3", heartbeat_timeout="2").start()
        try:
            agent = await Client.agent(server, await create_agent(backend))
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hello")
            await agent.event("agent.joined")
            actor = Actor(SenderType.AGENT, uuid.UUID(agent.welcome["session"]["id"]), "Dana")
            db = Database(backend.database_url)
            try:
                async with db.write() as session:
                    outcome = await chat_service.send_message(
                        session,
                        actor=actor,
                        conversation_id=uuid.UUID(ack["conversation_id"]),
                        client_msg_id="unpublished",
                        text="stored, never announced",
                        now=datetime.now(UTC),
                    )
            finally:
                await db.dispose()
            assert outcome.ack is not None
            got = await visitor.event("message", seq=outcome.ack.seq, timeout=10)
            assert got["body"]["text"] == "stored, never announced"
            await agent.event("message", seq=outcome.ack.seq, timeout=10)
        finally:
            await server.stop()


class TestResendAfterClose:
    async def test_resend_after_close_is_a_duplicate_not_an_error(self, backend: Backend) -> None:
        """A message whose ack was lost, resent after the conversation closed, is acked as a
        duplicate with its first seq (it was stored), not refused."""
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, await create_agent(backend))
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            first = await visitor.message("hello")
            conversation_id = first["conversation_id"]
            await agent.event("agent.joined")
            stored = await agent.message("bye", conversation_id=conversation_id, client_msg_id="m2")
            await agent.send({"type": "close", "conversation_id": conversation_id})
            await agent.event("conversation.closed")
            again = await agent.message("bye", conversation_id=conversation_id, client_msg_id="m2")
            assert (again["seq"], again["duplicate"]) == (stored["seq"], True)
        finally:
            await server.stop()


class TestSubscriptions:
    async def test_no_redis_subscription_outlives_its_sockets(
        self, postgres_backend: Backend
    ) -> None:
        """Visitors who open, close and leave conversations leave no Redis subscription behind."""
        server = await Server(postgres_backend).start()
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            channels = []
            for i in range(6):
                visitor = await Client.visitor(server, name=f"V{i}")
                await visitor.connect()
                ack = await visitor.message("hi")
                channels.append(f"warmline:conv:{ack['conversation_id']}")
                await visitor.send({"type": "close", "conversation_id": ack["conversation_id"]})
                await visitor.event("conversation.closed")
                await visitor.close()
            for _ in range(50):
                counts = [n for _, n in await redis.pubsub_numsub(*channels)]
                if not any(counts):
                    break
                await asyncio.sleep(0.1)
            assert counts == [0] * len(channels)
        finally:
            await redis.aclose()
            await server.stop()
