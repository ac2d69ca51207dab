"""A node that loses its database while a socket must catch up (docs/protocol.md#close-codes).

Two `warmline serve` processes on one PostgreSQL + Redis: node-a reaches PostgreSQL through a
TCP proxy in this test, which the test cuts (every connection dropped, new ones refused) and
restores; node-b and the test reach PostgreSQL directly. Redis keeps delivering to both nodes
throughout, so node-a still hears of new events while it cannot read the store.

Housekeeping (whose reconciliation would fill a gap in its own round) runs every 30 s in
TestCatchUpWithoutDatabase, longer than any wait there: what fills the gap is the socket's own
catch-up. TestFollowWithoutDatabase is about following a chat while the database is down; where
what must repair the socket is that reconciliation, the nodes run a round about every 2 s
(`RECONCILING`).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis
from sqlalchemy.engine import make_url

from app.chat import service as chat_service
from app.chat.service import Actor
from app.store.db import Database
from app.store.models import SenderType
from tests.conftest import PG_HOST, PG_PORT, REDIS_URL, Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.fault, pytest.mark.asyncio]

NODE_SETTINGS = {"heartbeat_interval": "30", "heartbeat_timeout": "90"}
# Housekeeping (and so reconciliation) every 2 s +-20 %. A presence row goes stale after 4
# intervals (8 s): every cut in these tests is far shorter, so node-b never sweeps node-a's agents.
RECONCILING = {"heartbeat_interval": "2", "heartbeat_timeout": "90"}
# A slow shared machine: generous, since every wait ends on a condition, not on the clock.
WAIT = 20.0
CATCH_UP_CLOSE = "unavailable: database; reconnect and resume"


class Proxy:
    """Forwards TCP connections on 127.0.0.1 to an upstream address until `cut()`, which drops
    every forwarded connection and stops listening (new connections are refused), as a network
    partition between one node and its database would; `restore()` listens again on the same
    port."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in tuple(self._links):
            writer.transport.abort()
        self._links.clear()
        # The pipes end once their sockets are gone.
        if self._pipes:
            await asyncio.wait(tuple(self._pipes), timeout=WAIT)

    async def restore(self) -> None:
        if self._server is None:
            await self.start()

    async def stop(self) -> None:
        await self.cut()

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        # Called by asyncio for each connection: it must not raise (asyncio would log an error).
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
        except OSError:
            client_w.transport.abort()
            return
        if self._server is None:  # cut while connecting upstream
            client_w.transport.abort()
            upstream_w.transport.abort()
            return
        self._links.update((client_w, upstream_w))
        pipes = [
            asyncio.create_task(self._pipe(client_r, upstream_w)),
            asyncio.create_task(self._pipe(upstream_r, client_w)),
        ]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes)
        finally:
            self._pipes.difference_update(pipes)
            self._links.difference_update((client_w, upstream_w))

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                sink.write(data)
                await sink.drain()
        except OSError:
            pass
        finally:
            # One side ended: so does the connection (PostgreSQL's protocol has no half-close).
            sink.transport.abort()


async def store_without_notice(
    backend: Backend, *, agent: Client, conversation_id: str, text: str
) -> int:
    """An agent message stored and acked by a node whose publish then failed (simulated: written
    straight to the store, never published, as in test_recovery.TestLostNotices). Its seq."""
    session_of = agent.welcome["session"]
    actor = Actor(SenderType.AGENT, uuid.UUID(session_of["id"]), session_of["name"])
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            outcome = await chat_service.send_message(
                session,
                actor=actor,
                conversation_id=uuid.UUID(conversation_id),
                client_msg_id=uuid.uuid4().hex,
                text=text,
                now=datetime.now(UTC),
            )
    finally:
        await db.dispose()
    assert outcome.ack is not None
    return outcome.ack.seq


@contextlib.asynccontextmanager
async def nodes_with_proxy(
    backend: Backend, *, node_a_name: str = "node-a", settings: dict[str, str] = NODE_SETTINGS
) -> AsyncIterator[tuple[Server, Server, Proxy]]:
    """node-a, whose database is behind a `Proxy`, and node-b, connected directly; both
    stopped afterwards (each fails the test if it logged an error)."""
    proxy = await Proxy(PG_HOST, PG_PORT).start()
    proxied = make_url(backend.database_url).set(host="127.0.0.1", port=proxy.port)
    node_a = Server(
        backend,
        node_name=node_a_name,
        database_url=proxied.render_as_string(hide_password=False),
        **settings,
    )
    node_b = Server(backend, node_name="node-b", **settings)
    try:
        await asyncio.gather(node_a.start(), node_b.start())
        yield node_a, node_b, proxy
    finally:
        await proxy.restore()  # so that node-a can shut down cleanly
        stopped = await asyncio.gather(node_a.stop(), node_b.stop(), return_exceptions=True)
        await proxy.stop()
        for failure in stopped:
            if isinstance(failure, BaseException):
                raise failure


async def refused_while_down(server: Server, token: str, resume: dict[str, int]) -> None:
    """A client reconnecting (with backoff) while the database is down is told to retry later
    and keeps its token: an `unavailable` error, then 1013."""
    early = Client(server, "visitor", token)
    await early.connect(hello=False)
    await early.send({"type": "hello", "token": token, "resume": resume})
    refused = await early.next("error", timeout=WAIT)
    assert refused["code"] == "unavailable"
    assert (await early.closed(timeout=WAIT)).code == 1013


def shown(events: list[dict[str, Any]]) -> list[tuple[int, str, Any]]:
    return [(e["seq"], e["kind"], e["body"].get("text")) for e in events]


async def logged(server: Server, text: str) -> list[str]:
    """The lines of the server's log that contain `text`, once there is at least one."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while not (lines := [line for line in server.output if text in line]):
        assert loop.time() < deadline, f"no {text!r} logged within {WAIT}s: {server.output[-20:]}"
        await asyncio.sleep(0.05)
    return lines


async def kill_pubsub(node_name: str) -> None:
    """Drop the node's Redis pub/sub connection (named `warmline:<node>`, operations.md), as a
    Redis failover or a network blip would; the node's bus reconnects by itself."""
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        ours = [
            c
            for c in await admin.client_list(_type="pubsub")
            if c["name"] == f"warmline:{node_name}"
        ]
        assert len(ours) == 1, ours
        assert await admin.client_kill_filter(_id=ours[0]["id"]) == 1
    finally:
        await admin.aclose()


class TestCatchUpWithoutDatabase:
    async def test_socket_closed_1013_then_resume_delivers_every_missed_event_once(
        self, postgres_backend: Backend
    ) -> None:
        """The visitor is on node-a, the agent on node-b. node-a loses its database; a notice
        is lost and the next one arrives with a seq gap, so node-a must read the store to catch
        the visitor up and cannot: it closes the socket with 1013 `unavailable: database;
        reconnect and resume` (not 1011) and logs no error. A reconnect during the outage is
        refused with 1013 too. Once the database is back, the visitor resumes from the last seq
        it has and receives every event it missed once, in order, then live ones; what it holds
        equals a fresh replay of the conversation."""
        async with nodes_with_proxy(postgres_backend) as (node_a, node_b, proxy):
            agent = await Client.agent(node_b, await create_agent(postgres_backend, name="Bo"))
            assert (await agent.connect())["node"] == "node-b"
            visitor = await Client.visitor(node_a, name="Ada")
            assert (await visitor.connect())["node"] == "node-a"

            ack = await visitor.message("My parcel never arrived.")
            cid = ack["conversation_id"]
            await visitor.event("agent.joined", conversation_id=cid, timeout=WAIT)
            await agent.event("message", seq=ack["seq"], timeout=WAIT)
            reply = await agent.message("Let me look into it.", conversation_id=cid)
            await visitor.event("message", seq=reply["seq"], timeout=WAIT)
            last = visitor.seqs(cid)[-1]
            assert last == reply["seq"]

            await proxy.cut()
            lost = await store_without_notice(
                postgres_backend, agent=agent, conversation_id=cid, text="Found it: in Lyon."
            )
            # Announced through Redis: node-a hears seq lost + 1 and must read seq `lost`.
            gap = await agent.message("It ships tomorrow.", conversation_id=cid)
            assert (lost, gap["seq"]) == (last + 1, last + 2)

            closed = await visitor.closed(timeout=WAIT)
            assert (closed.code, closed.reason) == (1013, CATCH_UP_CLOSE)
            assert visitor.seqs(cid)[-1] == last  # nothing sent past the gap
            await refused_while_down(node_a, visitor.token, {cid: last})

            away = await agent.message("Anything else?", conversation_id=cid)
            await proxy.restore()

            back = Client(node_a, "visitor", visitor.token)
            await back.connect(resume={cid: last})
            await back.event("message", seq=away["seq"], timeout=WAIT)
            assert back.seqs(cid) == [lost, gap["seq"], away["seq"]]
            # Live delivery continues after the replay; a duplicate of anything replayed would
            # have to arrive before it, and the harness fails on a seq that does not increase.
            final = await agent.message("Have a good day!", conversation_id=cid)
            await back.event("message", seq=final["seq"], timeout=WAIT)
            assert [(e["seq"], e["body"]["text"]) for e in back.events[cid]] == [
                (lost, "Found it: in Lyon."),
                (gap["seq"], "It ships tomorrow."),
                (away["seq"], "Anything else?"),
                (final["seq"], "Have a good day!"),
            ]

            fresh = Client(node_b, "visitor", visitor.token)
            await fresh.connect(resume={cid: 0})
            await fresh.event("message", seq=final["seq"], timeout=WAIT)
            assert shown(visitor.events[cid] + back.events[cid]) == shown(fresh.events[cid])

            warned = [line for line in node_a.output if "socket closed to resume later" in line]
            assert len(warned) == 1, node_a.output[-20:]
            assert not any("socket writer failed" in line for line in node_a.output)


class TestFollowWithoutDatabase:
    async def test_chat_assigned_during_the_outage_is_followed_once_the_database_is_back(
        self, postgres_backend: Backend
    ) -> None:
        """The agent is on node-a, the visitor on node-b. While node-a cannot reach its
        database, node-b assigns the visitor's new chat to the agent; node-a hears the join
        notice but cannot check the chat is still the agent's, which it logs as a warning (not
        an error) and does not count as followed. Once the database is back, node-a's next
        housekeeping round follows the chat: the agent is sent everything from seq 1, then the
        visitor's next message live."""
        async with nodes_with_proxy(postgres_backend, settings=RECONCILING) as (
            node_a,
            node_b,
            proxy,
        ):
            agent = await Client.agent(node_a, await create_agent(postgres_backend, name="Bo"))
            assert (await agent.connect())["node"] == "node-a"
            visitor = await Client.visitor(node_b, name="Ada")
            assert (await visitor.connect())["node"] == "node-b"

            await proxy.cut()
            first = await visitor.message("Is anyone there?")
            cid = first["conversation_id"]
            await visitor.event("agent.joined", conversation_id=cid, timeout=WAIT)
            # node-a subscribed to the chat, then failed to read whether it is the agent's.
            failed = await logged(node_a, "connection task")
            await proxy.restore()

            await agent.event("message", seq=first["seq"], timeout=WAIT)
            later = await visitor.message("Hello?", conversation_id=cid)
            await agent.event("message", seq=later["seq"], timeout=WAIT)
            # Every event of the chat once and in order (an agent is sent internal ones too).
            assert agent.seqs(cid) == list(range(1, later["seq"] + 1))
            assert [e["body"].get("text") for e in agent.events[cid] if e["kind"] == "message"] == [
                "Is anyone there?",
                "Hello?",
            ]
            assert all("[warning" in line for line in failed), failed

    async def test_bus_reconnect_during_the_outage_closes_1013_and_resume_misses_nothing(
        self, postgres_backend: Backend
    ) -> None:
        """The visitor is on node-a, the agent on node-b; a second agent with no chats is on
        node-a too. While node-a cannot reach its database, Redis drops its pub/sub connection.
        The bus reconnects and asks every socket of node-a to re-read its chats and follow the
        ones it should: the visitor's socket cannot read and is closed with 1013 `unavailable:
        database; reconnect and resume`; the idle agent's re-follow (and the visitor's, if it
        ran before the close) fails and is logged as a warning, not an error. Once the database
        is back, the visitor resumes and has every event once: what it holds equals a fresh
        replay of the conversation."""
        # Its Redis connections are named after it: CLIENT KILL hits this test's node alone.
        name = f"node-a-{uuid.uuid4().hex[:8]}"
        async with nodes_with_proxy(postgres_backend, node_a_name=name) as (
            node_a,
            node_b,
            proxy,
        ):
            agent = await Client.agent(node_b, await create_agent(postgres_backend, name="Bo"))
            assert (await agent.connect())["node"] == "node-b"
            visitor = await Client.visitor(node_a, name="Ada")
            assert (await visitor.connect())["node"] == name

            ack = await visitor.message("My parcel never arrived.")
            cid = ack["conversation_id"]
            await visitor.event("agent.joined", conversation_id=cid, timeout=WAIT)
            reply = await agent.message("Let me look into it.", conversation_id=cid)
            await visitor.event("message", seq=reply["seq"], timeout=WAIT)
            last = visitor.seqs(cid)[-1]
            # Connected once the chat is Bo's, so nothing is routed to Cy: no chat to re-read,
            # their socket stays open and always runs the re-follow to its end.
            idle = await Client.agent(node_a, await create_agent(postgres_backend, name="Cy"))
            await idle.connect()

            await proxy.cut()
            await kill_pubsub(name)
            closed = await visitor.closed(timeout=WAIT)
            assert (closed.code, closed.reason) == (1013, CATCH_UP_CLOSE)
            failed = await logged(node_a, "connection task")
            assert all("[warning" in line for line in failed), failed
            await refused_while_down(node_a, visitor.token, {cid: last})

            away = await agent.message("Anything else?", conversation_id=cid)
            await proxy.restore()

            back = Client(node_a, "visitor", visitor.token)
            await back.connect(resume={cid: last})
            await back.event("message", seq=away["seq"], timeout=WAIT)
            final = await agent.message("Have a good day!", conversation_id=cid)
            await back.event("message", seq=final["seq"], timeout=WAIT)
            assert visitor.seqs(cid)[-1] == last  # the closed socket got nothing more

            fresh = Client(node_b, "visitor", visitor.token)
            await fresh.connect(resume={cid: 0})
            await fresh.event("message", seq=final["seq"], timeout=WAIT)
            assert shown(visitor.events[cid] + back.events[cid]) == shown(fresh.events[cid])
            assert not any("socket writer failed" in line for line in node_a.output)
