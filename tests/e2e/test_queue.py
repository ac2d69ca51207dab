"""Queued visitors are told their position and an estimated wait, updated as the queue moves."""

from __future__ import annotations

import pytest

from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


class TestQueuePosition:
    async def test_positions_move_up_as_chats_are_taken(self, backend: Backend) -> None:
        """Three visitors wait behind a busy agent: they are told positions 1, 2, 3 with an
        estimate; when the agent finishes a chat the first is taken and the others move up."""
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, await create_agent(backend, capacity=1))
            await agent.connect()
            first = await Client.visitor(server, name="First")
            await first.connect()
            busy = await first.message("the chat that keeps the agent busy")
            await agent.event("agent.joined")

            waiting = []
            for name in ("A", "B", "C"):
                visitor = await Client.visitor(server, name=name)
                await visitor.connect()
                await visitor.message(f"{name} waiting")
                waiting.append(visitor)
            estimates = []
            for expected, visitor in enumerate(waiting, start=1):
                frame = await visitor.next("queue", position=expected)
                wait = frame["estimated_wait"]
                assert wait is not None  # an agent with the skill is online: there is a basis
                assert wait["low_seconds"] <= wait["seconds"] <= wait["high_seconds"]
                estimates.append(wait["seconds"])
            assert estimates == sorted(estimates)  # further back waits longer
            assert estimates[-1] > estimates[0]
            await agent.send({"type": "close", "conversation_id": busy["conversation_id"]})
            taken = await waiting[0].event("agent.joined")
            assert taken["body"]["agent"]["id"] == agent.welcome["session"]["id"]
            assert (await waiting[1].next("queue", position=1))["position"] == 1
            assert (await waiting[2].next("queue", position=2))["position"] == 2
        finally:
            await server.stop()

    async def test_no_room_at_all_means_no_estimate(self, backend: Backend) -> None:
        """With the only agent for the chat online but without a single slot, the visitor gets
        a position but no invented wait."""
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, await create_agent(backend, capacity=0))
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello?")
            frame = await visitor.next("queue")
            assert frame["position"] == 1
            assert frame["estimated_wait"] is None
        finally:
            await server.stop()
