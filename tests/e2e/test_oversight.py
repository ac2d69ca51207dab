"""Supervisor oversight end to end over WebSockets (docs/handoff.md#supervisor-oversight):
monitoring a chat, whispering to its agent, barging in and leaving, taking over any open chat,
and reassigning a chat to another agent; who may do each, and what the visitor never sees.

Each test runs on both backends (SQLite + in-process bus, PostgreSQL + Redis); the last class
runs two nodes on PostgreSQL + Redis. A server start and the agents' logins (Argon2) are the
expensive parts, so each test plays several scenes on one server.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.store.db import Database
from app.store.models import Agent, ConversationEvent, ConversationParticipant, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

FIRST = "I was charged twice for order ORD-48213 and I want a refund."


async def oversight_server(backend: Backend, **settings: str) -> Server:
    return await Server(
        backend,
        heartbeat_interval="0.5",
        # Generous: the harness answers pings only while a client reads, and a client left
        # idle while others log in (Argon2) must not be dropped on a loaded machine.
        heartbeat_timeout="30",
        **settings,
    ).start()


@contextlib.asynccontextmanager
async def running(backend: Backend) -> AsyncIterator[Server]:
    server = await oversight_server(backend)
    try:
        yield server
    finally:
        await server.stop()


async def online(
    server: Server,
    backend: Backend,
    name: str,
    *,
    role: Role = Role.AGENT,
    skills: dict[str, int] | None = None,
    capacity: int = 4,
) -> Client:
    """An agent (or supervisor) connected and, by their hello, online."""
    email = await create_agent(backend, name=name, role=role, skills=skills, capacity=capacity)
    client = await Client.agent(server, email)
    await client.connect()
    return client


def agent_id(client: Client) -> str:
    return str(client.welcome["session"]["id"])


async def held_by(server: Server, agent: Client, *, name: str = "Ada") -> tuple[Client, str]:
    """A visitor whose billing chat `agent` holds and has answered once."""
    visitor = await Client.visitor(server, name=name)
    await visitor.connect()
    ack = await visitor.message(FIRST, skill="billing")
    cid = str(ack["conversation_id"])
    joined = await visitor.event("agent.joined", conversation_id=cid)
    assert joined["body"]["agent"]["id"] == agent_id(agent)
    await agent.event("agent.joined", conversation_id=cid)
    said = await agent.message("Sorry about that, let me check.", conversation_id=cid)
    await visitor.event("message", conversation_id=cid, seq=said["seq"])
    return visitor, cid


async def in_store(backend: Backend, cid: str) -> list[tuple[int, str, str]]:
    """The conversation's log as stored: (seq, kind, visibility)."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            rows = await session.execute(
                select(ConversationEvent.seq, ConversationEvent.kind, ConversationEvent.visibility)
                .where(ConversationEvent.conversation_id == uuid.UUID(cid))
                .order_by(ConversationEvent.seq)
            )
            return [(seq, kind, visibility.value) for seq, kind, visibility in rows]
    finally:
        await db.dispose()


async def present(backend: Backend, cid: str) -> list[str]:
    """The agents barged into the conversation now (participation rows not ended)."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(
                select(ConversationParticipant.agent_id).where(
                    ConversationParticipant.conversation_id == uuid.UUID(cid),
                    ConversationParticipant.left_at.is_(None),
                )
            )
            return [str(r) for r in rows]
    finally:
        await db.dispose()


async def deactivate(backend: Backend, agent: str) -> None:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            await session.execute(
                update(Agent).where(Agent.id == uuid.UUID(agent)).values(is_active=False)
            )
    finally:
        await db.dispose()


async def error(client: Client, frame: dict[str, Any]) -> dict[str, Any]:
    await client.send(frame)
    return await client.next("error")


async def internal(client: Client, cid: str, text: str, kind: str = "internal") -> dict[str, Any]:
    """Send an `internal` (or `whisper`) frame; return its ack."""
    cmid = uuid.uuid4().hex
    await client.send({"type": kind, "conversation_id": cid, "client_msg_id": cmid, "text": text})
    return await client.next("ack", client_msg_id=cmid)


async def nothing_after(client: Client, cid: str, seq: int) -> None:
    """`client`'s socket no longer receives the chat: nothing from `seq` on arrives."""
    await client.quiet(0.6)
    late = [e["kind"] for e in client.events[cid] if e["seq"] >= seq]
    assert late == [], late


async def joined_by(client: Client, cid: str, agent: Client) -> dict[str, Any]:
    """The `agent.joined` event of `agent` that `client` receives (earlier joins skipped)."""
    while True:
        joined = await client.event("agent.joined", conversation_id=cid)
        if joined["body"]["agent"]["id"] == agent_id(agent):
            return joined


def visible_only(visitor: Client, cid: str) -> None:
    log = visitor.events[cid]
    assert log, "the visitor received nothing"
    assert all(e["visibility"] == "all" for e in log), [e["kind"] for e in log]
    assert "whisper" not in [e["kind"] for e in log]


async def transcript(server: Server, visitor: Client, cid: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=server.http) as http:
        got = await http.get(
            f"/api/v1/visitor/conversations/{cid}/transcript",
            headers={"Authorization": f"Bearer {visitor.token}"},
        )
    assert got.status_code == 200, got.text
    lines: list[dict[str, Any]] = got.json()["lines"]
    return lines


class TestMonitor:
    async def test_reads_the_log_and_live_events_writing_nothing(self, backend: Backend) -> None:
        """A supervisor's `monitor` sends the whole log from seq 1 (agents-only events
        included) and then live events, through a transfer that takes the chat to another
        agent, and stores nothing; `unmonitor` stops it; closing ends it."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR)
            visitor, cid = await held_by(server, ann)
            before = await in_store(backend, cid)

            await sue.send({"type": "monitor", "conversation_id": cid})
            assert (await sue.next("monitoring"))["conversation_id"] == cid
            last = before[-1][0]
            await sue.event("message", conversation_id=cid, seq=last)
            assert [(e["seq"], e["kind"], e["visibility"]) for e in sue.events[cid]] == before
            assert "routing.decided" in [e["kind"] for e in sue.events[cid]]
            assert await in_store(backend, cid) == before, "monitoring wrote an event"

            # Live, and past a warm transfer that takes the chat from Ann to Bob.
            bob = await online(server, backend, "Bob", skills={"billing": 3})
            said = await visitor.message("Any news?", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])
            await ann.send(
                {"type": "transfer", "conversation_id": cid, "to": {"agent_id": agent_id(bob)}}
            )
            offer = await bob.next("transfer_offer")
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await bob.next("transfer_accepted")
            await sue.event("agent.left", conversation_id=cid)
            await sue.event("agent.joined", conversation_id=cid)
            said = await visitor.message("Hello Bob", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])

            await sue.send({"type": "unmonitor", "conversation_id": cid})
            await sue.next("monitoring_stopped", conversation_id=cid)
            said = await visitor.message("Still there?", conversation_id=cid)
            await bob.event("message", conversation_id=cid, seq=said["seq"])
            await nothing_after(sue, cid, said["seq"])
            again = await error(sue, {"type": "unmonitor", "conversation_id": cid})
            assert again["code"] == "not_participant"

            # Monitoring again continues where this socket was; the close ends it.
            await sue.send({"type": "monitor", "conversation_id": cid})
            await sue.next("monitoring", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])
            await visitor.send({"type": "close", "conversation_id": cid})
            closed = await sue.event("conversation.closed", conversation_id=cid)
            gone = await error(sue, {"type": "unmonitor", "conversation_id": cid})
            assert gone["code"] == "not_participant"
            late = await error(sue, {"type": "monitor", "conversation_id": cid})
            assert late["code"] == "conversation_closed"
            assert closed["seq"] == (await in_store(backend, cid))[-1][0]

    async def test_only_supervisors_monitor(self, backend: Backend) -> None:
        """An agent or a visitor asking to monitor is `forbidden`; an unknown chat is
        `conversation_not_found`; nothing is sent of the chat."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            bob = await online(server, backend, "Bob", skills={"billing": 1}, capacity=0)
            visitor, cid = await held_by(server, ann)
            refused = await error(bob, {"type": "monitor", "conversation_id": cid})
            assert refused["code"] == "forbidden"
            assert (await error(visitor, {"type": "monitor", "conversation_id": cid}))[
                "code"
            ] == "forbidden"
            assert bob.events[cid] == []
            sue = await online(server, backend, "Sue", role=Role.ADMIN)
            unknown = await error(sue, {"type": "monitor", "conversation_id": str(uuid.uuid4())})
            assert unknown["code"] == "conversation_not_found"


class TestWhisper:
    async def test_reaches_the_agent_and_monitors_never_the_visitor(self, backend: Backend) -> None:
        """A whisper is an agents-only `whisper` event to the holder, seen by monitors, acked
        like a message (a resend once); the visitor's socket and transcript never show it."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR)
            lee = await online(server, backend, "Lee", role=Role.SUPERVISOR)
            visitor, cid = await held_by(server, ann)
            await lee.send({"type": "monitor", "conversation_id": cid})
            await lee.next("monitoring")

            cmid = "w-1"
            frame = {
                "type": "whisper",
                "conversation_id": cid,
                "client_msg_id": cmid,
                "text": "Offer the refund, it's approved.",
            }
            await sue.send(frame)
            ack = await sue.next("ack", client_msg_id=cmid)
            assert ack["duplicate"] is False
            heard = await ann.event("whisper", conversation_id=cid, seq=ack["seq"])
            assert heard["visibility"] == "agents"
            assert heard["sender"] == {"type": "agent", "id": agent_id(sue), "name": "Sue"}
            assert heard["body"] == {
                "text": "Offer the refund, it's approved.",
                "to": {"id": agent_id(ann), "name": "Ann"},
            }
            await lee.event("whisper", conversation_id=cid, seq=ack["seq"])
            await sue.send(frame)
            resent = await sue.next("ack", client_msg_id=cmid)
            assert resent == {**ack, "duplicate": True}

            said = await ann.message("Good news: refunded.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, seq=said["seq"])
            assert ack["seq"] not in visitor.seqs(cid)
            visible_only(visitor, cid)
            lines = await transcript(server, visitor, cid)
            assert "Offer the refund" not in str(lines)
            assert [line["text"] for line in lines if line.get("text")][-1] == (
                "Good news: refunded."
            )

    async def test_refusals(self, backend: Backend) -> None:
        """Only supervisors whisper (`forbidden`), to a chat someone holds (`not_assigned`),
        open (`conversation_closed`), with text (`invalid_frame`)."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5}, capacity=1)
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            visitor, cid = await held_by(server, ann)

            def whisper(text: str = "psst", to: str = cid) -> dict[str, Any]:
                return {
                    "type": "whisper",
                    "conversation_id": to,
                    "client_msg_id": uuid.uuid4().hex,
                    "text": text,
                }

            assert (await error(ann, whisper()))["code"] == "forbidden"
            assert (await error(visitor, whisper()))["code"] == "forbidden"
            assert (await error(sue, whisper("   ")))["code"] == "invalid_frame"
            unknown = await error(sue, whisper(to=str(uuid.uuid4())))
            assert unknown["code"] == "conversation_not_found"
            # Ann is full: a second visitor waits in the queue, held by nobody.
            other = await Client.visitor(server, name="Bo")
            await other.connect()
            queued = (await other.message("Hello?"))["conversation_id"]
            await other.event("conversation.queued", conversation_id=queued)
            waiting = await error(sue, whisper(to=queued))
            assert waiting["code"] == "not_assigned"
            assert waiting["details"]["state"] == "queued"
            await visitor.send({"type": "close", "conversation_id": cid})
            await visitor.event("conversation.closed", conversation_id=cid)
            assert (await error(sue, whisper()))["code"] == "conversation_closed"


class TestBarge:
    async def test_joins_talks_and_leaves(self, backend: Backend) -> None:
        """A barged-in supervisor reads the log from seq 1, the visitor sees
        `supervisor.joined` and their messages; they receive the visitor's, may type, read
        and write notes; `leave` stops it all."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            visitor, cid = await held_by(server, ann)

            await sue.send({"type": "barge", "conversation_id": cid})
            assert (await sue.next("barged"))["conversation_id"] == cid
            joined = await visitor.event("supervisor.joined", conversation_id=cid)
            assert joined["visibility"] == "all"
            assert joined["body"]["agent"]["id"] == agent_id(sue)
            assert joined["body"]["agent"]["name"] == "Sue"
            await ann.event("supervisor.joined", conversation_id=cid, seq=joined["seq"])
            await sue.event("supervisor.joined", conversation_id=cid, seq=joined["seq"])
            assert sue.seqs(cid) == list(range(1, joined["seq"] + 1))
            assert await present(backend, cid) == [agent_id(sue)]
            again = await error(sue, {"type": "barge", "conversation_id": cid})
            assert again["code"] == "already_participant"

            said = await sue.message("Hi Ada, I'm Ann's supervisor.", conversation_id=cid)
            heard = await visitor.event("message", conversation_id=cid, seq=said["seq"])
            assert heard["sender"] == {"type": "agent", "id": agent_id(sue), "name": "Sue"}
            await ann.event("message", conversation_id=cid, seq=said["seq"])
            said = await visitor.message("Thanks!", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])
            await sue.send({"type": "typing", "conversation_id": cid, "state": "start"})
            typing = await visitor.next("typing", conversation_id=cid)
            assert typing["sender"]["id"] == agent_id(sue)
            await sue.send({"type": "read", "conversation_id": cid, "seq": said["seq"]})
            await visitor.next("read", conversation_id=cid, seq=said["seq"])
            note = await internal(sue, cid, "Keep it short.")
            await ann.event("note", conversation_id=cid, seq=note["seq"])

            await sue.send({"type": "leave", "conversation_id": cid})
            left = await sue.event("supervisor.left", conversation_id=cid)
            assert left["body"]["agent"]["id"] == agent_id(sue)
            assert left["visibility"] == "all"
            await visitor.event("supervisor.left", conversation_id=cid, seq=left["seq"])
            said = await visitor.message("Bye Sue", conversation_id=cid)
            await ann.event("message", conversation_id=cid, seq=said["seq"])
            await nothing_after(sue, cid, said["seq"])
            gone = await error(sue, {"type": "leave", "conversation_id": cid})
            assert gone["code"] == "not_participant"
            await sue.send(
                {"type": "message", "conversation_id": cid, "client_msg_id": "x", "text": "hm"}
            )
            refused = await sue.next("error", ref="x")
            assert refused["code"] == "not_participant"
            assert await present(backend, cid) == []
            visible_only(visitor, cid)

    async def test_reconnect_follows_and_close_ends(self, backend: Backend) -> None:
        """A barged-in supervisor who reconnects gets the chat in `welcome` and follows it;
        an agent may not barge (`forbidden`); closing the chat ends every participation."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            sue = await online(server, backend, "Sue", role=Role.ADMIN)
            visitor, cid = await held_by(server, ann)
            refused = await error(ann, {"type": "barge", "conversation_id": cid})
            assert refused["code"] == "forbidden"
            await sue.send({"type": "barge", "conversation_id": cid})
            await sue.next("barged")
            joined = await visitor.event("supervisor.joined", conversation_id=cid)
            await sue.event("supervisor.joined", conversation_id=cid)

            await sue.close()
            await sue.connect(resume={cid: joined["seq"]})
            assert cid in [c["id"] for c in sue.welcome["conversations"]]
            said = await visitor.message("Are you both there?", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])

            await ann.send({"type": "close", "conversation_id": cid})
            await sue.event("conversation.closed", conversation_id=cid)
            assert await present(backend, cid) == []
            late = await error(sue, {"type": "leave", "conversation_id": cid})
            assert late["code"] == "conversation_closed"
            again = await error(sue, {"type": "barge", "conversation_id": cid})
            assert again["code"] == "conversation_closed"


class TestTakeOver:
    async def test_supervisor_takes_an_assigned_chat(self, backend: Backend) -> None:
        """A supervisor takes a chat that was not escalated from its agent: the agent gets
        `agent.left` (`taken_over`) and nothing more, and their capacity is free again; the
        supervisor's participation, if they barged in, ends."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5}, capacity=1)
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            visitor, cid = await held_by(server, ann)
            bob_email = await create_agent(backend, name="Bob", skills={"billing": 5})
            bob = await Client.agent(server, bob_email)
            await bob.connect()
            taken = await error(bob, {"type": "take", "conversation_id": cid})
            assert taken["code"] == "not_offline"
            await bob.close()

            await sue.send({"type": "barge", "conversation_id": cid})
            await sue.next("barged")
            await sue.send({"type": "take", "conversation_id": cid})
            assert (await sue.next("taken"))["conversation_id"] == cid
            left = await ann.event("agent.left", conversation_id=cid)
            assert left["body"]["reason"] == "taken_over"
            assert left["body"]["agent"]["id"] == agent_id(ann)
            seen = await visitor.event("agent.left", conversation_id=cid, seq=left["seq"])
            assert seen["body"]["reason"] == "taken_over"
            joined = await visitor.event("agent.joined", conversation_id=cid)
            assert joined["body"]["agent"]["id"] == agent_id(sue)
            await sue.event("agent.joined", conversation_id=cid, seq=joined["seq"])
            assert await present(backend, cid) == []
            said = await sue.message("I'll take it from here.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, seq=said["seq"])
            await nothing_after(ann, cid, joined["seq"])
            mine = await error(sue, {"type": "take", "conversation_id": cid})
            assert mine["code"] == "not_participant"

            # Ann's one slot is free: the next chat is hers.
            other = await Client.visitor(server, name="Bo")
            await other.connect()
            nxt = (await other.message("Hi there", skill="billing"))["conversation_id"]
            got = await other.event("agent.joined", conversation_id=nxt)
            assert got["body"]["agent"]["id"] == agent_id(ann)

    async def test_supervisor_takes_a_queued_chat(self, backend: Backend) -> None:
        """A queued chat nobody holds is taken straight from the queue; of two supervisors,
        the second is told `already_taken`."""
        async with running(backend) as server:
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            lee = await online(server, backend, "Lee", role=Role.ADMIN, capacity=0)
            # Ann is online but full: the next chat waits in the queue (not offline).
            ann = await online(server, backend, "Ann", skills={"billing": 5}, capacity=1)
            await held_by(server, ann, name="Bo")
            visitor = await Client.visitor(server, name="Ada")
            await visitor.connect()
            cid = (await visitor.message("Hello?"))["conversation_id"]
            queued = await visitor.event("conversation.queued", conversation_id=cid)
            await sue.send({"type": "take", "conversation_id": cid})
            await sue.next("taken", conversation_id=cid)
            joined = await visitor.event("agent.joined", conversation_id=cid)
            assert joined["seq"] > queued["seq"]
            assert joined["body"]["agent"]["id"] == agent_id(sue)
            assert "agent.left" not in [e["kind"] for e in visitor.events[cid]]
            await sue.event("agent.joined", conversation_id=cid)
            assert sue.seqs(cid)[0] == 1
            second = await error(lee, {"type": "take", "conversation_id": cid})
            assert second["code"] == "already_taken"
            assert second["details"]["agent"]["id"] == agent_id(sue)


class TestReassign:
    async def test_to_another_agent(self, backend: Backend) -> None:
        """The new holder gets the whole log with a fresh `handoff.summary`, the old one
        `agent.left` (`reassigned`) and nothing more; `conversation.assigned` names who
        reassigned it."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            bob = await online(server, backend, "Bob", skills={"billing": 1}, capacity=0)
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR)
            visitor, cid = await held_by(server, ann)

            await sue.send({"type": "reassign", "conversation_id": cid, "agent_id": agent_id(bob)})
            answer = await sue.next("reassigned")
            assert answer == {
                "type": "reassigned",
                "conversation_id": cid,
                "agent_id": agent_id(bob),
            }
            joined = await joined_by(bob, cid, bob)
            got = bob.events[cid]
            assert [e["seq"] for e in got] == list(range(1, joined["seq"] + 1))
            kinds = [e["kind"] for e in got]
            summary = got[kinds.index("handoff.summary")]
            assert "ORD-48213" in summary["body"]["text"]
            assert kinds[-4:] == [
                "handoff.summary",
                "agent.left",
                "conversation.assigned",
                "agent.joined",
            ]
            assigned = got[-2]
            assert assigned["body"]["by"] == {"id": agent_id(sue), "name": "Sue"}
            left = await ann.event("agent.left", conversation_id=cid)
            assert left["body"]["reason"] == "reassigned"
            await visitor.event("agent.joined", conversation_id=cid, seq=joined["seq"])
            said = await bob.message("Bob here, I have your case.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, seq=said["seq"])
            await nothing_after(ann, cid, joined["seq"])
            visible_only(visitor, cid)

    async def test_refusals(self, backend: Backend) -> None:
        """Refused: by an agent (`forbidden`); to the holder, to an agent not connected, or to
        a deactivated one (`transfer_target_unavailable`); a closed chat
        (`conversation_closed`). Nothing moves."""
        async with running(backend) as server:
            ann = await online(server, backend, "Ann", skills={"billing": 5})
            bob = await online(server, backend, "Bob", skills={"billing": 1}, capacity=0)
            sue = await online(server, backend, "Sue", role=Role.SUPERVISOR)
            visitor, cid = await held_by(server, ann)
            before = await in_store(backend, cid)

            def to(agent: str) -> dict[str, Any]:
                return {"type": "reassign", "conversation_id": cid, "agent_id": agent}

            assert (await error(ann, to(agent_id(bob))))["code"] == "forbidden"
            holder = await error(sue, to(agent_id(ann)))
            assert holder["code"] == "transfer_target_unavailable"
            assert holder["details"]["reason"] == "holder"
            away_email = await create_agent(backend, name="Cy", skills={"billing": 2})
            db = Database(backend.database_url)
            try:
                async with db.read() as session:
                    cy = await session.scalar(select(Agent.id).where(Agent.email == away_email))
            finally:
                await db.dispose()
            absent = await error(sue, to(str(cy)))
            assert absent["code"] == "transfer_target_unavailable"
            assert absent["details"]["reason"] == "not_connected"
            unknown = await error(sue, to(str(uuid.uuid4())))
            assert unknown["details"]["reason"] == "unknown"
            await deactivate(backend, agent_id(bob))
            inactive = await error(sue, to(agent_id(bob)))
            assert inactive["code"] == "transfer_target_unavailable"
            assert inactive["details"]["reason"] == "inactive"
            assert await in_store(backend, cid) == before

            await visitor.send({"type": "close", "conversation_id": cid})
            await visitor.event("conversation.closed", conversation_id=cid)
            closed = await error(sue, to(agent_id(bob)))
            assert closed["code"] == "conversation_closed"


class TestTwoNodes:
    async def test_whisper_and_barge_across_nodes(self, postgres_backend: Backend) -> None:
        """Ann and the visitor on node-1, the supervisor on node-2: the whisper reaches Ann,
        the barge and the supervisor's messages reach the visitor, and the visitor's messages
        reach the supervisor, through Redis."""
        backend = postgres_backend
        settings = {"heartbeat_interval": "30", "heartbeat_timeout": "90"}
        nodes = [Server(backend, node_name=f"node-{n}", **settings) for n in (1, 2)]
        await asyncio.gather(*(n.start() for n in nodes))
        try:
            one, two = nodes
            ann = await online(one, backend, "Ann", skills={"billing": 5})
            sue = await online(two, backend, "Sue", role=Role.SUPERVISOR)
            assert sue.welcome["node"] == "node-2"
            visitor, cid = await held_by(one, ann)

            ack = await internal(sue, cid, "Offer the refund.", kind="whisper")
            heard = await ann.event("whisper", conversation_id=cid, seq=ack["seq"])
            assert heard["body"]["to"]["id"] == agent_id(ann)

            await sue.send({"type": "barge", "conversation_id": cid})
            await sue.next("barged")
            joined = await visitor.event("supervisor.joined", conversation_id=cid)
            await sue.event("supervisor.joined", conversation_id=cid, seq=joined["seq"])
            said = await sue.message("Hello from a supervisor.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, seq=said["seq"])
            said = await visitor.message("Hi!", conversation_id=cid)
            await sue.event("message", conversation_id=cid, seq=said["seq"])
            await sue.send({"type": "leave", "conversation_id": cid})
            left = await visitor.event("supervisor.left", conversation_id=cid)
            await sue.event("supervisor.left", conversation_id=cid, seq=left["seq"])
            visible_only(visitor, cid)
            assert sue.seqs(cid) == list(range(1, left["seq"] + 1))
        finally:
            await asyncio.gather(*(n.stop() for n in nodes))
