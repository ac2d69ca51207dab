"""Priority and verified identity, end to end: a host site signs who its user is (and whether
they are a VIP); Warmline queues VIPs first and recognises a returning customer on any device."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import Backend
from tests.e2e.harness import Client, Server, count_rows, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

SECRET = "host-site-and-warmline-share-this-secret"


def identity(sub: str, **claims: Any) -> str:
    """An identity token as the host site's backend mints it."""
    return jwt.encode({"sub": sub, "exp": int(time.time()) + 600, **claims}, SECRET, "HS256")


async def server_with_identity(backend: Backend) -> Server:
    return await Server(backend, identity_secret=SECRET).start()


class TestPriority:
    async def test_vip_goes_ahead_of_earlier_normal_chats(self, backend: Backend) -> None:
        """Two normal chats wait for a full agent; a VIP arriving after them is assigned first
        when the slot frees, then the normal ones in arrival order."""
        server = await server_with_identity(backend)
        try:
            agent = await Client.agent(server, await create_agent(backend, capacity=1))
            await agent.connect()
            holder = await Client.visitor(server, name="Holder")
            await holder.connect()
            held = await holder.message("first!")
            await holder.event("agent.joined")

            early = await Client.visitor(server, name="Early")
            await early.connect()
            await early.message("I was here before the VIP")
            await early.event("conversation.queued")
            vip = await Client.visitor(
                server, name="Vera", identity_token=identity("crm-7", priority="vip")
            )
            await vip.connect()
            await vip.message("I am important")
            opened = await vip.event("conversation.opened")
            assert opened["body"]["priority"] == 2
            assert opened["body"]["visitor"]["verified"] is True
            position = await vip.next("queue")
            assert position["position"] == 1  # ahead of Early, who arrived first

            await agent.send({"type": "close", "conversation_id": held["conversation_id"]})
            joined = await vip.event("agent.joined")
            assert joined["body"]["agent"]["name"] == "Dana"
            assert [f for f in await early.quiet(0.5) if f.get("kind") == "agent.joined"] == []
        finally:
            await server.stop()

    async def test_the_widget_cannot_make_itself_vip(self, backend: Backend) -> None:
        """Priority claimed in plain attributes, or in a token signed with another key, gives
        nothing; the forged token is refused with a problem detail and stores nothing."""
        server = await server_with_identity(backend)
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                plain = await http.post(
                    "/api/v1/visitor/sessions",
                    json={"name": "Eve", "attributes": {"priority": "vip", "vip": True}},
                )
                assert plain.status_code == 201
                assert plain.json()["priority"] == "normal"
                assert plain.json()["verified"] is False

                before = await count_rows(backend)
                forged = jwt.encode(
                    {"sub": "eve", "exp": int(time.time()) + 600, "priority": "vip"},
                    "a-secret-the-widget-made-up-itself-32+",
                    "HS256",
                )
                refused = await http.post(
                    "/api/v1/visitor/sessions", json={"identity_token": forged}
                )
                assert refused.status_code == 401
                assert refused.headers["content-type"].startswith("application/problem+json")
                assert refused.json()["code"] == "invalid_identity"
                assert "signature" in refused.json()["detail"]
                assert await count_rows(backend) == before
        finally:
            await server.stop()

    async def test_identity_tokens_refused_when_not_configured(self, backend: Backend) -> None:
        """Without WARMLINE_IDENTITY_SECRET a token cannot be checked: refused, saying why."""
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                refused = await http.post(
                    "/api/v1/visitor/sessions", json={"identity_token": identity("u1")}
                )
            assert refused.status_code == 401
            assert "WARMLINE_IDENTITY_SECRET" in refused.json()["detail"]
        finally:
            await server.stop()


class TestReturningCustomer:
    async def test_verified_customer_on_a_new_device_gets_their_last_agent(
        self, backend: Backend
    ) -> None:
        """The same verified user, from a second browser (a new visitor), is offered first to
        the agent who served them last, though another agent has less load."""
        server = await server_with_identity(backend)
        try:
            ann = await Client.agent(server, await create_agent(backend, name="Ann"))
            await ann.connect()
            first = await Client.visitor(server, identity_token=identity("crm-99", name="Ada"))
            await first.connect()
            ack = await first.message("hello from my laptop")
            joined = await first.event("agent.joined")
            assert joined["body"]["agent"]["name"] == "Ann"
            # Ann keeps one other chat, so a fresh colleague has the lower load.
            other = await Client.visitor(server, name="Other")
            await other.connect()
            await other.message("hi")
            await other.event("agent.joined")
            await first.send({"type": "close", "conversation_id": ack["conversation_id"]})
            await first.event("conversation.closed")
            bob = await Client.agent(server, await create_agent(backend, name="Bob"))
            await bob.connect()

            phone = await Client.visitor(server, identity_token=identity("crm-99", name="Ada"))
            await phone.connect()
            await phone.message("hello again, from my phone")
            again = await phone.event("agent.joined")
            assert again["body"]["agent"]["name"] == "Ann"

            stranger = await Client.visitor(server, name="Stranger")
            await stranger.connect()
            await stranger.message("hi")
            assert (await stranger.event("agent.joined"))["body"]["agent"]["name"] == "Bob"
        finally:
            await server.stop()
