"""A deployment's own summarizer and sentiment scorer, loaded by name, end to end."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.store.db import Database
from app.store.models import Role, RoutingSettings
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def two_agents(server: Server, backend: Backend) -> tuple[Client, Client, Client, str]:
    ann = await Client.agent(server, await create_agent(backend, name="Ann"))
    await ann.connect()
    visitor = await Client.visitor(server, name="Ada")
    await visitor.connect()
    ack = await visitor.message("My router X200 keeps dropping the connection.")
    cid = ack["conversation_id"]
    await ann.event("agent.joined", conversation_id=cid)
    bob = await Client.agent(server, await create_agent(backend, name="Bob"))
    await bob.connect()
    return ann, bob, visitor, cid


class TestExternalSummarizer:
    async def test_its_prose_is_stored_beside_the_summary(self, backend: Backend) -> None:
        server = await Server(backend, summarizer="tests.e2e.plugins:CountingSummarizer").start()
        try:
            ann, bob, visitor, cid = await two_agents(server, backend)
            await visitor.message("It started yesterday.", conversation_id=cid)
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            await bob.next("transfer_offer")
            extra = await bob.event("handoff.summary_extra", conversation_id=cid)
            assert extra["body"]["text"] == "Read 2 customer messages from Ada."
            assert extra["body"]["summarizer"] == "tests.e2e.plugins.CountingSummarizer"
            assert extra["visibility"] == "agents"
            await ann.event("handoff.summary_extra", conversation_id=cid)
            await visitor.quiet(0.3)
            assert "handoff.summary_extra" not in [e["kind"] for e in visitor.events[cid]]
        finally:
            await server.stop()

    async def test_a_failing_one_never_holds_up_the_transfer(self, backend: Backend) -> None:
        server = await Server(backend, summarizer="tests.e2e.plugins:BrokenSummarizer").start()
        try:
            ann, bob, visitor, cid = await two_agents(server, backend)
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            offer = await bob.next("transfer_offer")
            assert "X200" in offer["summary"]["text"]
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await bob.next("transfer_accepted")
            await visitor.event(
                "agent.joined",
                conversation_id=cid,
                sender={"type": "system", "id": bob.welcome["session"]["id"], "name": "Bob"},
            )
            assert "handoff.summary_extra" not in [e["kind"] for e in bob.events[cid]]
        finally:
            await server.stop()
        assert any("external summarizer failed" in line for line in server.output)


class TestOwnScorer:
    async def test_the_deployments_scorer_decides_the_mood(self, backend: Backend) -> None:
        db = Database(backend.database_url)
        try:
            async with db.write() as session:
                await session.execute(
                    update(RoutingSettings)
                    .where(RoutingSettings.id == 1)
                    .values(escalate_sentiment_below=-0.5, escalate_sentiment_window=1)
                )
        finally:
            await db.dispose()
        server = await Server(backend, sentiment_scorer="tests.e2e.plugins:MehScorer").start()
        try:
            sue = await Client.agent(
                server, await create_agent(backend, name="Sue", role=Role.SUPERVISOR, capacity=0)
            )
            await sue.connect()
            ann, _bob, visitor, cid = await two_agents(server, backend)
            # The built-in lexicon would read this as calm; the deployment's scorer does not.
            await visitor.message("meh", conversation_id=cid)
            escalated = await ann.event("conversation.escalated", conversation_id=cid)
            assert escalated["body"]["by"] == "rule"
            assert escalated["body"]["rule"] == "sentiment"
            offer = await sue.next("transfer_offer")
            assert offer["mode"] == "escalation"
        finally:
            await server.stop()

    async def test_a_failing_scorer_never_costs_a_message(self, backend: Backend) -> None:
        """The visitor's messages are stored, acked and delivered whatever the scorer does;
        its failures are logged and read as neutral, so nothing escalates on them."""
        server = await Server(backend, sentiment_scorer="tests.e2e.plugins:FailingScorer").start()
        try:
            ann, _bob, visitor, cid = await two_agents(server, backend)
            for text in ("This is awful", "Still awful", "Terrible, just terrible"):
                ack = await visitor.message(text, conversation_id=cid)
                said = await ann.event("message", conversation_id=cid, seq=ack["seq"])
                assert said["body"]["text"] == text
            await ann.quiet(0.5)
            assert "conversation.escalated" not in [e["kind"] for e in ann.events[cid]]
        finally:
            await server.stop()
        assert any("sentiment scorer failed" in line for line in server.output)
