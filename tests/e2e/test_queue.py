"""Queued visitors are told their position and an estimated wait, updated as the queue moves."""

from __future__ import annotations

import asyncio

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

    async def test_nobody_left_online_means_no_estimate(self, backend: Backend) -> None:
        """A chat waits for the only agent, who then steps away: the visitor keeps a position
        but is given no invented wait."""
        server = await Server(backend, heartbeat_interval="0.5", heartbeat_timeout="30").start()
        try:
            agent = await Client.agent(server, await create_agent(backend, capacity=1))
            await agent.connect()
            holder = await Client.visitor(server, name="Holder")
            await holder.connect()
            await holder.message("first")
            await holder.event("agent.joined")
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello?")
            await visitor.event("conversation.queued")
            await agent.send({"type": "status", "status": "away"})
            await agent.next("status")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while True:
                frame = await visitor.next("queue", timeout=max(0.1, deadline - loop.time()))
                if frame["estimated_wait"] is None:
                    break
            assert frame["position"] == 1
        finally:
            await server.stop()
