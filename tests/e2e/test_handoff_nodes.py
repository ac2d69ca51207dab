"""Transfers and escalation across two `warmline serve` processes on one PostgreSQL + Redis
(docs/handoff.md): the requester and the visitor on one node, the receiver on the other. What
one node stores must reach the other node's sockets through Redis, and the visitor must see
every visible event of its chat exactly once, in order, whichever node it is connected to.

Housekeeping (whose reconciliation would paper over a lost Redis notice within a round) runs
every 30 s here, longer than any wait in these tests: cross-node delivery is Redis's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select, update

from app.store.db import Database
from app.store.models import ConversationEvent, Role, RoutingSettings, Visibility
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

NODE_SETTINGS = {
    "transfer_timeout": "60",
    "heartbeat_interval": "30",
    "heartbeat_timeout": "90",
}
FIRST_MESSAGE = "I was charged twice for order ORD-48213 and I want a refund."


@contextlib.asynccontextmanager
async def two_nodes(backend: Backend, **settings: str) -> AsyncIterator[tuple[Server, Server]]:
    """node-1 and node-2 on one backend, started together, both stopped afterwards (each
    fails the test if it logged an error)."""
    options = {**NODE_SETTINGS, **settings}
    nodes = [Server(backend, node_name=f"node-{n}", **options) for n in (1, 2)]
    started = await asyncio.gather(*(n.start() for n in nodes), return_exceptions=True)
    try:
        for result in started:
            if isinstance(result, BaseException):
                raise result
        yield nodes[0], nodes[1]
    finally:
        stopped = await asyncio.gather(*(n.stop() for n in nodes), return_exceptions=True)
        for failure in stopped:
            if isinstance(failure, BaseException):
                raise failure


async def held_chat(node: Server, backend: Backend) -> tuple[Client, Client, str]:
    """Ann (billing) and the visitor Ada on `node`; Ada's chat, with an order number in its
    first message, is held by Ann, who has answered once."""
    ann = await Client.agent(node, await create_agent(backend, name="Ann", skills={"billing": 5}))
    await ann.connect()
    visitor = await Client.visitor(node, name="Ada")
    await visitor.connect()
    ack = await visitor.message(FIRST_MESSAGE, skill="billing")
    cid = ack["conversation_id"]
    joined = await visitor.event("agent.joined", conversation_id=cid)
    assert joined["body"]["agent"]["name"] == "Ann"
    await ann.event("agent.joined", conversation_id=cid)
    await ann.message("Sorry about that, let me check.", conversation_id=cid)
    return ann, visitor, cid


async def agent_on(node: Server, backend: Backend, name: str, **options: Any) -> Client:
    client = await Client.agent(node, await create_agent(backend, name=name, **options))
    await client.connect()
    assert client.welcome["node"] == node.env["WARMLINE_NODE_NAME"]
    return client


async def internal(client: Client, cid: str, text: str) -> dict[str, Any]:
    """Send an agents-only message; return its ack."""
    cmid = uuid.uuid4().hex
    await client.send(
        {"type": "internal", "conversation_id": cid, "client_msg_id": cmid, "text": text}
    )
    return await client.next("ack", client_msg_id=cmid)


async def says_privately(sender: Client, receiver: Client, cid: str, text: str) -> None:
    """`sender` writes to `receiver` during a transfer: a `transfer.chat` event from them."""
    ack = await internal(sender, cid, text)
    heard = await receiver.event("transfer.chat", conversation_id=cid, seq=ack["seq"])
    assert heard["body"]["text"] == text
    assert heard["sender"]["id"] == sender_id(sender)
    assert heard["visibility"] == "agents"


def sender_id(client: Client) -> str:
    return str(client.welcome["session"]["id"])


def shown(events: list[dict[str, Any]]) -> list[tuple[int, str, str | None, Any]]:
    return [(e["seq"], e["kind"], e["sender"]["id"], e["body"]) for e in events]


async def in_store(
    backend: Backend, cid: str, *, visible_only: bool
) -> list[tuple[int, str, str | None, Any]]:
    """The conversation's events as stored (only those a visitor may see, if `visible_only`),
    in seq order."""
    query = select(ConversationEvent).where(ConversationEvent.conversation_id == uuid.UUID(cid))
    if visible_only:
        query = query.where(ConversationEvent.visibility == Visibility.ALL)
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            rows = await session.scalars(query.order_by(ConversationEvent.seq))
            return [
                (r.seq, r.kind, None if r.sender_id is None else str(r.sender_id), r.body)
                for r in rows
            ]
    finally:
        await db.dispose()


async def assert_read_the_whole_log(backend: Backend, cid: str, agent: Client, up_to: int) -> None:
    """An agent offered the chat read its log from seq 1, agents-only events included, each
    event once, in order, up to `up_to`."""
    got = [e for e in shown(agent.events[cid]) if e[0] <= up_to]
    stored = [e for e in await in_store(backend, cid, visible_only=False) if e[0] <= up_to]
    assert got == stored, (
        f"{agent.welcome['session']['name']} saw {[(s, k) for s, k, _, _ in got]}, "
        f"the store has {[(s, k) for s, k, _, _ in stored]}"
    )


async def assert_saw_exactly_the_store(
    backend: Backend, cid: str, events: list[dict[str, Any]]
) -> None:
    """`events` (what the visitor received, over all its sockets) are the stored visible
    events, each once, in order: nothing lost, nothing repeated, nothing agents-only."""
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), f"visitor got seqs out of order or twice: {seqs}"
    assert all(e["visibility"] == "all" for e in events), [
        e["kind"] for e in events if e["visibility"] != "all"
    ]
    stored = await in_store(backend, cid, visible_only=True)
    got = shown(events)
    missing = sorted({s[0] for s in stored} - set(seqs))
    assert got == stored, (
        f"visitor saw {[(s, k) for s, k, _, _ in got]}, "
        f"the store has {[(s, k) for s, k, _, _ in stored]}; missing seqs {missing}"
    )


async def transfer(ann: Client, cid: str, to: dict[str, Any], **extra: Any) -> dict[str, Any]:
    await ann.send({"type": "transfer", "conversation_id": cid, "to": to, **extra})
    return await ann.next("transfer_started", conversation_id=cid)


async def joined_by(visitor: Client, cid: str, name: str) -> dict[str, Any]:
    """The visitor's `agent.joined` naming `name` (Ann's own came earlier)."""
    while True:
        joined = await visitor.event("agent.joined", conversation_id=cid)
        if joined["body"]["agent"]["name"] == name:
            return joined


class TestWarmTransferAcrossNodes:
    async def test_named_agent_on_the_other_node_takes_the_chat_with_its_context(
        self, postgres_backend: Backend
    ) -> None:
        """Ann (node 1) hands Ada's chat to Bob (node 2): Bob reads the summary and the whole
        transcript, the two talk privately, Ada keeps writing, Bob accepts, Ada is told Bob
        has her conversation, and the two reach each other across nodes. Ada receives the
        chat's visible events, each once, in order, and nothing else."""
        backend = postgres_backend
        async with two_nodes(backend) as (node1, node2):
            ann, visitor, cid = await held_chat(node1, backend)
            assert visitor.welcome["node"] == "node-1"
            bob = await agent_on(node2, backend, "Bob", skills={"billing": 3})

            started = await transfer(
                ann, cid, {"agent_id": sender_id(bob)}, note="Refund over my limit"
            )
            assert started["mode"] == "warm"
            assert [r["name"] for r in started["receivers"]] == ["Bob"]
            offer = await bob.next("transfer_offer", conversation_id=cid)
            tid = offer["transfer_id"]
            assert tid == started["transfer_id"]
            assert offer["mode"] == "warm"
            assert offer["from_agent"]["name"] == "Ann"
            assert offer["visitor"]["name"] == "Ada"
            assert offer["note"] == "Refund over my limit"
            assert "ORD-48213" in offer["summary"]["text"]

            # Bob, on the other node, reads the transcript from its first message.
            first = await bob.event("message", conversation_id=cid)
            assert first["body"]["text"] == FIRST_MESSAGE
            assert first["sender"]["type"] == "visitor"
            await bob.event("handoff.summary", conversation_id=cid)

            # Private talk, each way across the nodes.
            await says_privately(bob, ann, cid, "Has the refund been approved already?")
            await says_privately(ann, bob, cid, "Not yet, it needs your sign-off.")

            # Ada keeps writing while the transfer is pending: Ann and Bob both read it.
            for text in ("Are you still there?", "Hello?"):
                sent = await visitor.message(text, conversation_id=cid)
                for agent in (ann, bob):
                    got = await agent.event("message", conversation_id=cid, seq=sent["seq"])
                    assert got["body"]["text"] == text

            await bob.send({"type": "transfer_accept", "transfer_id": tid})
            await bob.next("transfer_accepted", transfer_id=tid)
            result = await ann.next("transfer_result", transfer_id=tid)
            assert (result["state"], result["by"]["name"]) == ("accepted", "Bob")

            joined = await joined_by(visitor, cid, "Bob")
            assert joined["body"]["transfer"]["has_context"] is True
            assert joined["body"]["transfer"]["from"]["name"] == "Ann"
            left = [e for e in visitor.events[cid] if e["kind"] == "agent.left"]
            assert [(e["body"]["agent"]["name"], e["body"]["reason"]) for e in left] == [
                ("Ann", "transferred")
            ]

            # Bob (node 2) and Ada (node 1) reach each other.
            said = await bob.message("Hi Ada, I have it from here.", conversation_id=cid)
            got = await visitor.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Hi Ada, I have it from here."
            said = await visitor.message("Thanks Bob!", conversation_id=cid)
            got = await bob.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Thanks Bob!"
            await assert_read_the_whole_log(backend, cid, bob, said["seq"])
            await visitor.event("message", conversation_id=cid, seq=said["seq"])

            # Ann no longer holds the chat.
            await ann.send(
                {"type": "message", "conversation_id": cid, "client_msg_id": "late", "text": "x"}
            )
            assert (await ann.next("error", ref="late"))["code"] == "not_participant"

            await assert_saw_exactly_the_store(backend, cid, visitor.events[cid])


class TestSkillTransferAcrossNodes:
    async def test_declined_by_the_only_agent_of_the_skill_stays_with_the_requester(
        self, postgres_backend: Backend
    ) -> None:
        """Ann (billing, node 1) transfers to the skill "tech"; Tess (node 2), its only agent,
        is offered it and declines with a reason. Ann is told why, and keeps the chat: she
        and Ada still talk, and Ada never sees anyone leave or join."""
        backend = postgres_backend
        async with two_nodes(backend) as (node1, node2):
            ann, visitor, cid = await held_chat(node1, backend)
            tess = await agent_on(node2, backend, "Tess", skills={"tech": 4})

            started = await transfer(ann, cid, {"skill": "tech"})
            assert [r["name"] for r in started["receivers"]] == ["Tess"]
            offer = await tess.next("transfer_offer", conversation_id=cid)
            tid = offer["transfer_id"]
            assert tid == started["transfer_id"]
            assert offer["from_agent"]["name"] == "Ann"
            assert "ORD-48213" in offer["summary"]["text"]
            first = await tess.event("message", conversation_id=cid)
            assert first["body"]["text"] == FIRST_MESSAGE

            reason = "I only handle hardware faults; billing should keep this one."
            await tess.send({"type": "transfer_decline", "transfer_id": tid, "reason": reason})
            withdrawn = await tess.next("transfer_withdrawn", transfer_id=tid)
            assert withdrawn["reason"] == "declined"
            result = await ann.next("transfer_result", transfer_id=tid)
            assert result["state"] == "declined"
            assert result["reason"] == reason
            assert result["by"]["name"] == "Tess"
            declined = await ann.event("transfer.declined", conversation_id=cid)
            assert declined["body"]["reason"] == reason

            # The chat is still Ann's.
            said = await ann.message("I'll sort the refund myself.", conversation_id=cid)
            got = await visitor.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "I'll sort the refund myself."
            assert got["sender"]["name"] == "Ann"
            said = await visitor.message("Great, thanks.", conversation_id=cid)
            got = await ann.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Great, thanks."
            await visitor.event("message", conversation_id=cid, seq=said["seq"])

            kinds = [e["kind"] for e in visitor.events[cid]]
            assert "agent.left" not in kinds
            assert kinds.count("agent.joined") == 1
            await assert_saw_exactly_the_store(backend, cid, visitor.events[cid])


class TestVisitorReconnectDuringTransfer:
    async def test_resume_on_the_other_node_misses_nothing_and_repeats_nothing(
        self, postgres_backend: Backend
    ) -> None:
        """Ada's socket (node 1) drops while Ann's transfer to Bob is pending; Ann writes
        meanwhile. Ada reconnects to node 2 with `resume` at the last seq she saw while Bob
        accepts: she gets what she missed (Ann's message, Ann leaving, Bob joining with the
        context) and what follows, each once, in order."""
        backend = postgres_backend
        async with two_nodes(backend) as (node1, node2):
            ann, visitor, cid = await held_chat(node1, backend)
            bob = await agent_on(node2, backend, "Bob", skills={"billing": 3})
            started = await transfer(ann, cid, {"agent_id": sender_id(bob)})
            tid = started["transfer_id"]
            await bob.next("transfer_offer", transfer_id=tid)
            said = await ann.message("Let me pass you to Bob.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, seq=said["seq"])

            last = visitor.seqs(cid)[-1]
            before = list(visitor.events[cid])
            await visitor.drop()
            missed = await ann.message("Bob will be with you in a moment.", conversation_id=cid)

            # Bob accepts while Ada comes back on the other node.
            back = Client(node2, "visitor", visitor.token)
            await bob.send({"type": "transfer_accept", "transfer_id": tid})
            await back.connect(resume={cid: last})
            assert back.welcome["node"] == "node-2"
            await bob.next("transfer_accepted", transfer_id=tid)
            result = await ann.next("transfer_result", transfer_id=tid)
            assert result["state"] == "accepted"

            got = await back.event("message", conversation_id=cid, seq=missed["seq"])
            assert got["body"]["text"] == "Bob will be with you in a moment."
            joined = await joined_by(back, cid, "Bob")
            assert joined["body"]["transfer"]["has_context"] is True
            assert joined["body"]["transfer"]["from"]["name"] == "Ann"
            assert [e["body"]["reason"] for e in back.events[cid] if e["kind"] == "agent.left"] == [
                "transferred"
            ]

            said = await bob.message("Hi Ada, Bob here.", conversation_id=cid)
            got = await back.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Hi Ada, Bob here."
            said = await back.message("Hi Bob.", conversation_id=cid)
            got = await bob.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Hi Bob."
            await back.event("message", conversation_id=cid, seq=said["seq"])

            assert all(e["seq"] > last for e in back.events[cid]), back.seqs(cid)
            await assert_saw_exactly_the_store(backend, cid, before + back.events[cid])


class TestEscalationPhraseAcrossNodes:
    async def test_asking_for_a_manager_offers_the_chat_to_the_supervisor_on_the_other_node(
        self, postgres_backend: Backend
    ) -> None:
        """Ada (node 1), chatting with Ann (node 1), asks for a manager: Sue, the supervisor
        on node 2, is offered the chat as an escalation with the reason and the transcript;
        Ada is not shown the escalation. Sue accepts and Ada is told Sue joined with the
        context."""
        backend = postgres_backend
        async with two_nodes(backend) as (node1, node2):
            ann, visitor, cid = await held_chat(node1, backend)
            sue = await agent_on(node2, backend, "Sue", role=Role.SUPERVISOR)

            asked = await visitor.message("I want to speak to a manager", conversation_id=cid)
            offer = await sue.next("transfer_offer", conversation_id=cid)
            assert offer["mode"] == "escalation"
            assert offer["from_agent"]["name"] == "Ann"
            assert "speak to a manager" in (offer["reason"] or "")
            assert offer["summary"]["text"]
            got = await sue.event("message", conversation_id=cid, seq=asked["seq"])
            assert got["body"]["text"] == "I want to speak to a manager"
            escalated = await ann.event("conversation.escalated", conversation_id=cid)
            assert (escalated["body"]["by"], escalated["body"]["phrase"]) == (
                "visitor",
                "speak to a manager",
            )

            await sue.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await sue.next("transfer_accepted", transfer_id=offer["transfer_id"])
            result = await ann.next("transfer_result", transfer_id=offer["transfer_id"])
            assert (result["state"], result["by"]["name"]) == ("accepted", "Sue")
            joined = await joined_by(visitor, cid, "Sue")
            assert joined["body"]["transfer"]["kind"] == "escalation"
            assert joined["body"]["transfer"]["has_context"] is True
            said = await sue.message("Hello Ada, I'm the team manager.", conversation_id=cid)
            got = await visitor.event("message", conversation_id=cid, seq=said["seq"])
            assert got["body"]["text"] == "Hello Ada, I'm the team manager."
            await sue.event("message", conversation_id=cid, seq=said["seq"])
            await assert_read_the_whole_log(backend, cid, sue, said["seq"])

            await assert_saw_exactly_the_store(backend, cid, visitor.events[cid])


class TestColdCancelAndEscalationAcrossNodes:
    async def test_cold_transfer_cancel_and_agent_escalation(
        self, postgres_backend: Backend
    ) -> None:
        """With the visitors and Ann on node 1 and everyone else on node 2: a cold transfer
        reaches the tech agent with its summary; a warm transfer Ann withdraws leaves Bob's screen;
        Ann's escalation reaches the supervisor, who takes over. Each visitor sees exactly
        the stored visible events, once, in order."""
        backend = postgres_backend
        async with two_nodes(backend) as (one, two):
            ann, ada, first = await held_chat(one, backend)
            tess = await agent_on(two, backend, "Tess", skills={"tech": 4})
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": first,
                    "mode": "cold",
                    "to": {"skill": "tech"},
                    "note": "Login fault, not billing",
                }
            )
            assert (await ann.next("transfer_started"))["mode"] == "cold"
            summary = await tess.event("handoff.summary", conversation_id=first)
            assert "ORD-48213" in summary["body"]["text"]
            joined = await ada.event(
                "agent.joined",
                conversation_id=first,
                sender={"type": "system", "id": sender_id(tess), "name": "Tess"},
            )
            assert joined["body"]["transfer"] == {
                "id": summary["body"]["transfer_id"],
                "kind": "cold",
                "has_context": True,
                "from": {"id": sender_id(ann), "name": "Ann"},
            }
            await tess.message("Tess here, I have your details.", conversation_id=first)
            await ada.event(
                "message", conversation_id=first, body={"text": "Tess here, I have your details."}
            )

            # A second chat for Ann: she offers it to Bob on node 2, then thinks better of it.
            bea = await Client.visitor(one, name="Bea")
            await bea.connect()
            second = (
                await bea.message("Where is my refund for order ORD-77120?", skill="billing")
            )["conversation_id"]
            await ann.event("agent.joined", conversation_id=second)
            bob = await agent_on(two, backend, "Bob", skills={"billing": 2})
            await ann.send(
                {"type": "transfer", "conversation_id": second, "to": {"agent_id": sender_id(bob)}}
            )
            offer = await bob.next("transfer_offer")
            assert (await ann.next("transfer_started"))["transfer_id"] == offer["transfer_id"]
            await ann.send({"type": "transfer_cancel", "transfer_id": offer["transfer_id"]})
            withdrawn = await bob.next("transfer_withdrawn", transfer_id=offer["transfer_id"])
            assert withdrawn["reason"] == "cancelled"
            assert (await ann.next("transfer_result"))["state"] == "cancelled"

            # Ann escalates the same chat; the supervisor on node 2 takes it.
            sue = await agent_on(two, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            await ann.send(
                {"type": "escalate", "conversation_id": second, "reason": "Refund dispute"}
            )
            started = await ann.next("transfer_started")
            assert [r["name"] for r in started["receivers"]] == ["Sue"]
            escalation = await sue.next("transfer_offer")
            assert (escalation["mode"], escalation["reason"]) == ("escalation", "Refund dispute")
            await sue.send({"type": "transfer_accept", "transfer_id": escalation["transfer_id"]})
            await sue.next("transfer_accepted")
            result = await ann.next("transfer_result", transfer_id=escalation["transfer_id"])
            assert (result["state"], result["by"]["name"]) == ("accepted", "Sue")
            await bea.event(
                "agent.joined",
                conversation_id=second,
                sender={"type": "system", "id": sender_id(sue), "name": "Sue"},
            )
            for visitor, cid in ((ada, first), (bea, second)):
                await visitor.quiet(0.3)
                await assert_saw_exactly_the_store(backend, cid, visitor.events[cid])


class TestExpiryAndRuleAcrossNodes:
    async def test_expired_transfer_and_escalation_by_rule(self, postgres_backend: Backend) -> None:
        """Ann (node 1) offers a chat to Bob (node 2), who lets it lapse: it expires back to
        her, whichever node's timer expires it. Then, with every transfer over the limit
        escalating, Bob accepts her next transfer and the chat escalates by rule to the
        supervisor on node 1."""
        backend = postgres_backend
        db = Database(backend.database_url)
        try:
            async with db.write() as session:
                await session.execute(
                    update(RoutingSettings)
                    .where(RoutingSettings.id == 1)
                    .values(escalate_after_transfers=0)
                )
        finally:
            await db.dispose()
        async with two_nodes(backend, transfer_timeout="2") as (one, two):
            ann, ada, cid = await held_chat(one, backend)
            bob = await agent_on(two, backend, "Bob", skills={"billing": 2})
            await ann.send(
                {"type": "transfer", "conversation_id": cid, "to": {"agent_id": sender_id(bob)}}
            )
            tid = (await ann.next("transfer_started"))["transfer_id"]
            await bob.next("transfer_offer", transfer_id=tid)
            withdrawn = await bob.next("transfer_withdrawn", transfer_id=tid)
            assert withdrawn["reason"] == "expired"
            result = await ann.next("transfer_result", transfer_id=tid)
            assert (result["state"], result["reason"]) == (
                "expired",
                "No answer from Bob within 2 s.",
            )
            await ann.message("Still here, Ada.", conversation_id=cid)
            await ada.event("message", conversation_id=cid, body={"text": "Still here, Ada."})

            sue = await agent_on(one, backend, "Sue", role=Role.SUPERVISOR, capacity=0)
            await ann.send(
                {"type": "transfer", "conversation_id": cid, "to": {"agent_id": sender_id(bob)}}
            )
            offer = await bob.next("transfer_offer")
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await bob.next("transfer_accepted")
            escalated = await bob.event("conversation.escalated", conversation_id=cid)
            assert (escalated["body"]["by"], escalated["body"]["rule"]) == ("rule", "transfers")
            escalation = await sue.next("transfer_offer")
            assert escalation["mode"] == "escalation"
            assert escalation["from_agent"]["name"] == "Bob"
            await ada.quiet(0.3)
            await assert_saw_exactly_the_store(backend, cid, ada.events[cid])
