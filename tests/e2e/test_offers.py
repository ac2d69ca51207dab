"""Offers (WARMLINE_OFFER_AUTO_ACCEPT=false): the chosen agent accepts or declines within the
timeout; declined or expired offers go to the next agent and never back."""

from __future__ import annotations

import asyncio

import pytest

from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def offer_server(backend: Backend, timeout: str = "30") -> Server:
    return await Server(
        backend,
        offer_auto_accept="false",
        offer_timeout=timeout,
        heartbeat_interval="0.5",
        # Generous: the harness answers pings only while a client reads, and a client left
        # idle while others are set up (argon2 hashes) must not be dropped on a loaded machine.
        heartbeat_timeout="30",
    ).start()


def internal(client: Client, conversation_id: str) -> list[str]:
    return [e["kind"] for e in client.events[conversation_id] if e["visibility"] == "agents"]


class TestOffers:
    async def test_accept_assigns_and_joins(self, backend: Backend) -> None:
        """The agent gets an offer with the customer's words; on accept the chat is theirs, the
        visitor sees the agent join, and never sees the offer itself."""
        server = await offer_server(backend)
        try:
            agent = await Client.agent(server, await create_agent(backend, name="Ann"))
            await agent.connect()
            visitor = await Client.visitor(server, name="Ada")
            await visitor.connect()
            ack = await visitor.message("my parcel is late")
            offer = await agent.next("offer")
            assert offer["conversation_id"] == ack["conversation_id"]
            assert offer["preview"] == "my parcel is late"
            assert offer["visitor"]["name"] == "Ada"
            await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
            accepted = await agent.next("accepted")
            assert accepted["conversation_id"] == ack["conversation_id"]
            joined = await visitor.event("agent.joined")
            assert joined["body"]["agent"]["name"] == "Ann"
            await agent.event("agent.joined", seq=joined["seq"])
            assert [e["visibility"] for e in visitor.events[ack["conversation_id"]]].count(
                "agents"
            ) == 0
            assert "conversation.offered" in internal(agent, ack["conversation_id"])
            await agent.send({"type": "accept", "offer_id": offer["offer_id"]})
            assert (await agent.next("error"))["code"] == "offer_not_pending"
        finally:
            await server.stop()

    async def test_decline_goes_to_the_next_agent_and_never_back(self, backend: Backend) -> None:
        """A declined chat is offered to the next agent; when they decline too, it waits in the
        queue rather than going back to either."""
        server = await offer_server(backend)
        try:
            first = await Client.agent(
                server, await create_agent(backend, name="First", skills={"billing": 5})
            )
            await first.connect()
            second = await Client.agent(
                server, await create_agent(backend, name="Second", skills={"billing": 3})
            )
            await second.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello", skill="billing")
            # Same load ratio: the more proficient agent is offered the chat first.
            offer_a, offer_b = (
                asyncio.ensure_future(first.next("offer")),
                asyncio.ensure_future(second.next("offer")),
            )
            done, _ = await asyncio.wait(
                {offer_a, offer_b}, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            assert offer_a in done, (
                f"offered to Second first: {offer_b.result() if offer_b in done else None}"
            )
            offer_b.cancel()
            offer = offer_a.result()
            await first.send({"type": "decline", "offer_id": offer["offer_id"], "reason": "busy"})
            assert (await first.next("offer_withdrawn"))["reason"] == "declined"
            again = await second.next("offer")
            assert again["conversation_id"] == offer["conversation_id"]
            await second.send({"type": "decline", "offer_id": again["offer_id"]})
            await second.next("offer_withdrawn")
            assert [f for f in await first.quiet(1.0) if f["type"] == "offer"] == []
            newcomer = await Client.agent(
                server, await create_agent(backend, name="Third", skills={"billing": 1})
            )
            await newcomer.connect()
            third = await newcomer.next("offer")
            assert third["conversation_id"] == offer["conversation_id"]
        finally:
            await server.stop()

    async def test_unanswered_offer_expires_and_moves_on(self, backend: Backend) -> None:
        """An offer nobody answers expires after the timeout, the agent is told, and the chat
        is offered to the next agent; accepting the expired offer is refused."""
        server = await offer_server(backend, timeout="1")
        try:
            slow = await Client.agent(server, await create_agent(backend, name="Slow", capacity=1))
            await slow.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello")
            offer = await slow.next("offer")
            fast = await Client.agent(server, await create_agent(backend, name="Fast", capacity=1))
            await fast.connect()
            withdrawn = await slow.next("offer_withdrawn", timeout=10)
            assert withdrawn == {
                "type": "offer_withdrawn",
                "offer_id": offer["offer_id"],
                "reason": "expired",
            }
            moved = await fast.next("offer", timeout=10)
            assert moved["conversation_id"] == offer["conversation_id"]
            await slow.send({"type": "accept", "offer_id": offer["offer_id"]})
            assert (await slow.next("error"))["code"] == "offer_not_pending"
            await fast.send({"type": "accept", "offer_id": moved["offer_id"]})
            assert (await visitor.event("agent.joined"))["body"]["agent"]["name"] == "Fast"
        finally:
            await server.stop()

    async def test_reconnecting_agent_sees_pending_offer_again(self, backend: Backend) -> None:
        """A pending offer is sent again to an agent's new socket."""
        server = await offer_server(backend)
        try:
            agent = await Client.agent(server, await create_agent(backend))
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello")
            offer = await agent.next("offer")
            await agent.close()
            again = Client(server, "agent", agent.token)
            await again.connect()
            resent = await again.next("offer")
            assert resent["offer_id"] == offer["offer_id"]
        finally:
            await server.stop()

    async def test_offer_of_someone_else_is_not_found(self, backend: Backend) -> None:
        """An agent cannot accept another agent's offer."""
        server = await offer_server(backend)
        try:
            owner = await Client.agent(server, await create_agent(backend, name="Owner"))
            await owner.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello")
            offer = await owner.next("offer")
            other = await Client.agent(server, await create_agent(backend, name="Other"))
            await other.connect()
            await other.send({"type": "accept", "offer_id": offer["offer_id"]})
            assert (await other.next("error"))["code"] == "offer_not_found"
        finally:
            await server.stop()


class TestRoutingExplanation:
    async def test_why_did_this_chat_go_to_bob(self, backend: Backend) -> None:
        """GET /conversations/{id}/routing names the chosen agent, the rule that chose them and
        why every other agent was passed over."""
        import httpx

        server = await Server(backend).start()
        try:
            bob = await Client.agent(
                server, await create_agent(backend, name="Bob", skills={"billing": 5})
            )
            await bob.connect()
            ann = await Client.agent(
                server, await create_agent(backend, name="Ann", skills={"billing": 2})
            )
            await ann.connect()
            sam = await Client.agent(
                server, await create_agent(backend, name="Sam", skills={"technical": 4})
            )
            await sam.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hello", skill="billing")
            await visitor.event("agent.joined")
            async with httpx.AsyncClient(base_url=server.http) as http:
                headers = {"Authorization": f"Bearer {bob.token}"}
                got = await http.get(
                    f"/api/v1/conversations/{ack['conversation_id']}/routing", headers=headers
                )
                assert got.status_code == 200, got.text
                body = got.json()
                assert body["skill"]["source"] == "topic"
                [decision] = body["decisions"]
                assert decision["chosen"] == bob.welcome["session"]["id"]
                assert "proficiency" in decision["rule"]
                reasons = {g["reason"]: g["agent_ids"] for g in decision["passed_over"]}
                assert reasons["lacks_skill"] == [sam.welcome["session"]["id"]]
                assert ann.welcome["session"]["id"] in decision["considered"]
                assert body["waiting_now"] is None

                # Sam never held it: to him the conversation does not exist.
                other = await http.get(
                    f"/api/v1/conversations/{ack['conversation_id']}/routing",
                    headers={"Authorization": f"Bearer {sam.token}"},
                )
                assert other.status_code == 404

        finally:
            await server.stop()

    async def test_why_a_chat_still_waits(self, backend: Backend) -> None:
        """For a chat still queued, supervisors see what the planner decides right now: who is
        away, who has no room. A plain agent who never held it gets a 404."""
        import httpx

        server = await Server(backend).start()
        try:
            bob = await Client.agent(
                server, await create_agent(backend, name="Bob", skills={"billing": 5})
            )
            await bob.connect()
            sam = await Client.agent(
                server, await create_agent(backend, name="Sam", skills={"technical": 4})
            )
            await sam.connect()
            await sam.send({"type": "status", "status": "away"})
            await sam.next("status")
            # Tia is online with the skill but her one slot is taken: the chat waits for her.
            tia = await Client.agent(
                server,
                await create_agent(backend, name="Tia", skills={"technical": 2}, capacity=1),
            )
            await tia.connect()
            holder = await Client.visitor(server, name="Holder")
            await holder.connect()
            await holder.message("first in", skill="technical")
            await holder.event("agent.joined")
            queued = await Client.visitor(server, name="Queued")
            await queued.connect()
            q = await queued.message("my login fails", skill="technical")
            await queued.event("conversation.queued")
            url = f"/api/v1/conversations/{q['conversation_id']}/routing"
            async with httpx.AsyncClient(base_url=server.http) as http:
                plain = await http.get(url, headers={"Authorization": f"Bearer {bob.token}"})
                assert plain.status_code == 404  # Bob is a plain agent and never held it
                lee = await Client.agent(
                    server, await create_agent(backend, name="Lee", role=Role.SUPERVISOR)
                )
                supervised = await http.get(url, headers={"Authorization": f"Bearer {lee.token}"})
            assert supervised.status_code == 200
            now = supervised.json()["waiting_now"]
            assert now["agent_ids"] == []
            reasons = {g["reason"]: g["agent_ids"] for g in now["passed_over"]}
            assert reasons["away"] == [sam.welcome["session"]["id"]]
            assert reasons["at_capacity"] == [tia.welcome["session"]["id"]]
        finally:
            await server.stop()
