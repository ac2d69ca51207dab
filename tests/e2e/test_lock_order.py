"""Lock order under concurrency, on PostgreSQL (SQLite serialises every write transaction, so
it has no lock order to get wrong).

Every path that touches a chat and an agent locks the conversation's row first, then its offer
or transfer, then the agent's row (docs/architecture.md#invariants). Deactivating an agent over
the admin REST API re-queues their chats and withdraws what is offered to them while that agent
may be accepting those very offers and transfers; a path taking the rows the other way round
deadlocks, and PostgreSQL aborts one side: a frame handler retries, the REST request answers
503. These tests race the two and check that the request succeeds and the chats end in a state
the invariants allow.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.store.db import Database
from app.store.models import Agent, Conversation, ConversationState, Offer, OfferState, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Closed, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

# Each round races one deactivation against this many accepts, each on a socket of its own (a
# socket handles one frame at a time). A deadlock needs the two to interleave within a few
# milliseconds, so a round is repeated rather than made bigger.
ROUNDS = 3
HELD = 3  # chats the deactivated agent holds
OFFERED = 4  # chats offered to them
TRANSFERRED = 2  # chats another agent is transferring to them


async def lock_server(backend: Backend) -> Server:
    return await Server(
        backend,
        offer_auto_accept="false",
        offer_timeout="120",
        transfer_timeout="120",
        # No housekeeping round (nor its routing pass and re-queue of chats still held by
        # deactivated agents) during the test: what it checks is the request's own doing.
        heartbeat_interval="30",
        heartbeat_timeout="60",
    ).start()


async def socket_of(server: Server, email: str) -> Client:
    client = await Client.agent(server, email)
    await client.connect()
    return client


async def answer(client: Client, timeout: float = 15) -> str:
    """What the server answered an accept with: `accepted`, `transfer_accepted`, an error
    code, or `closed`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while (remaining := deadline - loop.time()) > 0:
            with contextlib.suppress(TimeoutError):
                frame = await client._read(remaining)
                if frame["type"] in ("accepted", "transfer_accepted"):
                    return str(frame["type"])
                if frame["type"] == "error":
                    return str(frame["code"])
    except Closed:
        return "closed"
    raise AssertionError(f"no answer to an accept within {timeout}s")


async def held_by(server: Server, ann: Client, visitor_name: str, skill: str) -> str:
    """A chat offered to, and accepted by, `ann` (the only agent with `skill`)."""
    visitor = await Client.visitor(server, name=visitor_name)
    await visitor.connect()
    ack = await visitor.message("hello", skill=skill)
    offer = await ann.next("offer", conversation_id=ack["conversation_id"])
    await ann.send({"type": "accept", "offer_id": offer["offer_id"]})
    await ann.next("accepted", conversation_id=ack["conversation_id"])
    return str(ack["conversation_id"])


async def check_invariants(backend: Backend, *, deactivated: set[uuid.UUID]) -> None:
    """Each open chat is held by at most one agent (and only when assigned), nobody holds more
    chats plus pending offers than their capacity, and deactivated agents hold nothing and
    are offered nothing."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            agents = {a.id: a for a in await session.scalars(select(Agent))}
            conversations = list(await session.scalars(select(Conversation)))
            pending = list(
                await session.scalars(select(Offer).where(Offer.state == OfferState.PENDING))
            )
    finally:
        await db.dispose()
    load: Counter[uuid.UUID] = Counter()
    for conversation in conversations:
        if conversation.state is ConversationState.ASSIGNED:
            assert conversation.agent_id is not None
            load[conversation.agent_id] += 1
        else:
            assert conversation.agent_id is None, conversation.id
    for offer in pending:
        load[offer.agent_id] += 1
    for agent_id, count in load.items():
        assert count <= agents[agent_id].capacity, (agents[agent_id].name, count)
    assert not [agents[a].name for a in deactivated if load[a]], "deactivated but still loaded"


class TestDeactivationRacesAccepts:
    @pytest.mark.timeout(240)  # each round sets up a dozen chats; three rounds take about a minute
    async def test_deactivating_an_agent_while_they_accept_offers_and_transfers(
        self, postgres_backend: Backend
    ) -> None:
        """An agent holding several chats is deactivated over the admin API while, on other
        sockets, they accept the chats offered and transferred to them: the request succeeds
        every time (never 503), and each chat ends with at most one agent, nobody over
        capacity, and nothing held by or offered to the deactivated agent."""
        backend = postgres_backend
        server = await lock_server(backend)
        try:
            root = await socket_of(
                server, await create_agent(backend, name="Root", role=Role.ADMIN)
            )
            await root.close()  # an admin with no socket is not routed chats
            deactivated: set[uuid.UUID] = set()
            statuses: list[int] = []
            answers: list[str] = []
            for round_ in range(ROUNDS):
                sales, billing = f"sales{round_}", f"billing{round_}"
                ann_email = await create_agent(
                    backend, name=f"Ann{round_}", skills={sales: 5}, capacity=20
                )
                bob_email = await create_agent(
                    backend, name=f"Bob{round_}", skills={billing: 5}, capacity=20
                )
                ann, bob = await socket_of(server, ann_email), await socket_of(server, bob_email)
                ann_id = ann.welcome["session"]["id"]
                for i in range(HELD):
                    await held_by(server, ann, f"Held{i}", sales)
                offers = []
                for i in range(OFFERED):
                    visitor = await Client.visitor(server, name=f"Offered{i}")
                    await visitor.connect()
                    ack = await visitor.message("hello", skill=sales)
                    offer = await ann.next("offer", conversation_id=ack["conversation_id"])
                    offers.append({"type": "accept", "offer_id": offer["offer_id"]})
                transfers = []
                for i in range(TRANSFERRED):
                    cid = await held_by(server, bob, f"Moved{i}", billing)
                    await bob.send(
                        {"type": "transfer", "conversation_id": cid, "to": {"agent_id": ann_id}}
                    )
                    offer = await ann.next("transfer_offer", conversation_id=cid)
                    transfers.append(
                        {"type": "transfer_accept", "transfer_id": offer["transfer_id"]}
                    )
                accepts = offers + transfers
                sockets = [Client(server, "agent", ann.token) for _ in accepts]
                for client in sockets:
                    await client.connect()

                async def deactivate(ann_id: str = ann_id) -> int:
                    async with httpx.AsyncClient(
                        base_url=f"{server.http}/api/v1",
                        headers={"Authorization": f"Bearer {root.token}"},
                    ) as http:
                        response = await http.patch(f"/agents/{ann_id}", json={"is_active": False})
                    return response.status_code

                async def accept(client: Client, frame: dict[str, Any]) -> str:
                    await client.send(frame)
                    return await answer(client)

                request = asyncio.create_task(deactivate())
                answers.extend(
                    await asyncio.gather(
                        *(accept(c, f) for c, f in zip(sockets, accepts, strict=True))
                    )
                )
                statuses.append(await request)
                if statuses[-1] == 200:
                    deactivated.add(uuid.UUID(ann_id))
            await check_invariants(backend, deactivated=deactivated)
            # A frame handler retries the unit of work that lost a deadlock: no accept ever
            # surfaces a database failure (`unavailable`).
            assert "unavailable" not in answers, answers
            # The deactivation locks the chats first, as the accepts do: no deadlock, no 503.
            assert statuses == [200] * ROUNDS, statuses
        finally:
            await server.stop()
