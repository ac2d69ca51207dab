"""Warm and cold transfers end to end over WebSockets (docs/handoff.md): the receiver gets an
offer with the context summary and the whole transcript, the two agents talk privately, and
the visitor sees only who joined, never loses or re-sees a message."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def transfer_server(backend: Backend, transfer_timeout: str = "30") -> Server:
    return await Server(
        backend,
        transfer_timeout=transfer_timeout,
        heartbeat_interval="0.5",
        # Generous: the harness answers pings only while a client reads, and a client left
        # idle while others are set up (argon2 hashes) must not be dropped on a loaded machine.
        heartbeat_timeout="30",
    ).start()


async def held_chat(
    server: Server, backend: Backend, *, skills: dict[str, int] | None = None
) -> tuple[Client, Client, str]:
    """A visitor whose chat (with an order number in it) is held by Ann."""
    ann = await Client.agent(
        server, await create_agent(backend, name="Ann", skills=skills or {"billing": 5})
    )
    await ann.connect()
    visitor = await Client.visitor(server, name="Ada")
    await visitor.connect()
    ack = await visitor.message(
        "I was charged twice for order ORD-48213 and I want a refund.", skill="billing"
    )
    conversation_id = ack["conversation_id"]
    await ann.event("agent.joined", conversation_id=conversation_id)
    await visitor.event("agent.joined")
    await ann.message("Sorry about that, let me check.", conversation_id=conversation_id)
    return ann, visitor, conversation_id


async def joined_by(visitor: Client, cid: str, name: str) -> dict[str, Any]:
    """The visitor's `agent.joined` event of the named agent (earlier joins skipped)."""
    while True:
        joined = await visitor.event("agent.joined", conversation_id=cid)
        if joined["body"]["agent"]["name"] == name:
            return joined


def kinds(client: Client, conversation_id: str) -> list[str]:
    return [e["kind"] for e in client.events[conversation_id]]


def no_repeats(client: Client, conversation_id: str) -> None:
    seqs = client.seqs(conversation_id)
    assert seqs == sorted(set(seqs)), f"re-seen or out of order: {seqs}"


class TestWarmTransfer:
    async def test_accepted_moves_the_chat_with_its_context(self, backend: Backend) -> None:
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            bob = await Client.agent(
                server, await create_agent(backend, name="Bob", skills={"billing": 3})
            )
            await bob.connect()
            bob_id = bob.welcome["session"]["id"]
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob_id},
                    "note": "Refund over my limit",
                }
            )
            started = await ann.next("transfer_started")
            assert started["mode"] == "warm"
            assert [r["name"] for r in started["receivers"]] == ["Bob"]
            offer = await bob.next("transfer_offer")
            assert offer["transfer_id"] == started["transfer_id"]
            assert offer["from_agent"]["name"] == "Ann"
            assert offer["note"] == "Refund over my limit"
            assert "ORD-48213" in offer["summary"]["text"]
            assert len(offer["summary"]["text"].split()) <= 75
            # Bob reads the whole transcript before accepting, the customer's words included.
            first = await bob.event("message", conversation_id=cid)
            assert "ORD-48213" in first["body"]["text"]
            await bob.event("handoff.summary", conversation_id=cid)
            # A private word between the two agents; the visitor never sees it.
            await bob.send(
                {
                    "type": "internal",
                    "conversation_id": cid,
                    "client_msg_id": "b1",
                    "text": "Has the refund been approved already?",
                }
            )
            assert (await bob.next("ack", client_msg_id="b1"))["conversation_id"] == cid
            said = await ann.event("transfer.chat", conversation_id=cid)
            assert said["body"]["text"] == "Has the refund been approved already?"
            # Meanwhile the visitor keeps talking to Ann.
            await visitor.message("Are you still there?", conversation_id=cid)
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await bob.next("transfer_accepted", transfer_id=offer["transfer_id"])
            result = await ann.next("transfer_result")
            assert result["state"] == "accepted"
            assert result["by"]["name"] == "Bob"
            joined = await joined_by(visitor, cid, "Bob")
            assert joined["body"]["transfer"]["has_context"] is True
            assert joined["body"]["transfer"]["from"]["name"] == "Ann"
            left = [e for e in visitor.events[cid] if e["kind"] == "agent.left"]
            assert left[-1]["body"]["reason"] == "transferred"
            # Bob now holds it: he writes, the visitor reads; Ann is out of it.
            await bob.message("Hi Ada, I have it from here.", conversation_id=cid)
            said = await visitor.event(
                "message",
                conversation_id=cid,
                sender={"type": "agent", "id": bob_id, "name": "Bob"},
            )
            assert said["body"]["text"] == "Hi Ada, I have it from here."
            await ann.send(
                {"type": "message", "conversation_id": cid, "client_msg_id": "a9", "text": "x"}
            )
            assert (await ann.next("error", ref="a9"))["code"] == "not_participant"
            assert all(e["visibility"] == "all" for e in visitor.events[cid])
            for client in (visitor, bob):
                no_repeats(client, cid)
            assert "transfer.chat" not in kinds(visitor, cid)
        finally:
            await server.stop()

    async def test_declined_stays_with_the_agent_who_is_told_why(self, backend: Backend) -> None:
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            bob = await Client.agent(server, await create_agent(backend, name="Bob"))
            await bob.connect()
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            offer = await bob.next("transfer_offer")
            await bob.send(
                {
                    "type": "transfer_decline",
                    "transfer_id": offer["transfer_id"],
                    "reason": "I don't handle refunds",
                }
            )
            withdrawn = await bob.next("transfer_withdrawn")
            assert withdrawn["reason"] == "declined"
            result = await ann.next("transfer_result")
            assert result["state"] == "declined"
            assert result["reason"] == "I don't handle refunds"
            assert result["by"]["name"] == "Bob"
            declined = await ann.event("transfer.declined", conversation_id=cid)
            assert declined["body"]["reason"] == "I don't handle refunds"
            # Still Ann's: she talks to the visitor, Bob can no longer accept.
            await ann.message("Still with you, Ada.", conversation_id=cid)
            said = await visitor.event(
                "message", conversation_id=cid, body={"text": "Still with you, Ada."}
            )
            assert said["sender"]["name"] == "Ann"
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            refused = await bob.next("error")
            assert refused["code"] == "transfer_not_pending"
            assert not [
                e
                for e in visitor.events[cid]
                if e["kind"] in ("agent.left", "agent.joined") and e["seq"] > said["seq"]
            ]
            no_repeats(visitor, cid)
        finally:
            await server.stop()

    async def test_expired_stays_with_the_agent(self, backend: Backend) -> None:
        server = await transfer_server(backend, transfer_timeout="1")
        try:
            ann, visitor, cid = await held_chat(server, backend)
            bob = await Client.agent(server, await create_agent(backend, name="Bob"))
            await bob.connect()
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            offer = await bob.next("transfer_offer")
            withdrawn = await bob.next("transfer_withdrawn", timeout=10)
            assert withdrawn["transfer_id"] == offer["transfer_id"]
            assert withdrawn["reason"] == "expired"
            result = await ann.next("transfer_result", timeout=10)
            assert result["state"] == "expired"
            assert "Bob" in result["reason"]
            await ann.message("Back to you, Ada.", conversation_id=cid)
            await visitor.event("message", conversation_id=cid, body={"text": "Back to you, Ada."})
            # Bob's socket stopped reading the chat once his offer ended.
            await visitor.message("Thanks", conversation_id=cid)
            await ann.event("message", conversation_id=cid, body={"text": "Thanks"})
            assert not [
                e
                for e in bob.events[cid]
                if e["kind"] == "message" and e["body"]["text"] == "Thanks"
            ]
        finally:
            await server.stop()

    async def test_to_a_skill_goes_to_the_best_free_agent_of_it(self, backend: Backend) -> None:
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            low = await Client.agent(
                server, await create_agent(backend, name="Lou", skills={"tech": 2})
            )
            high = await Client.agent(
                server, await create_agent(backend, name="Hal", skills={"tech": 5})
            )
            await low.connect()
            await high.connect()
            await ann.send({"type": "transfer", "conversation_id": cid, "to": {"skill": "tech"}})
            started = await ann.next("transfer_started")
            assert [r["name"] for r in started["receivers"]] == ["Hal"]
            offer = await high.next("transfer_offer")
            assert offer["conversation_id"] == cid
            await high.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await ann.next("transfer_result", state="accepted")
            joined = await joined_by(visitor, cid, "Hal")
            assert joined["body"]["transfer"]["has_context"] is True
            assert not [f for f in low.frames if f["type"] == "transfer_offer"]
            # No free agent of a skill: refused at once, the chat stays.
            await high.send({"type": "transfer", "conversation_id": cid, "to": {"skill": "nosuch"}})
            assert (await high.next("error"))["code"] == "transfer_target_unavailable"
        finally:
            await server.stop()

    async def test_close_during_a_pending_transfer_withdraws_it(self, backend: Backend) -> None:
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            bob = await Client.agent(server, await create_agent(backend, name="Bob"))
            await bob.connect()
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            offer = await bob.next("transfer_offer")
            await visitor.send({"type": "close", "conversation_id": cid})
            withdrawn = await bob.next("transfer_withdrawn")
            assert withdrawn["reason"] == "conversation_closed"
            result = await ann.next("transfer_result")
            assert result["state"] == "cancelled"
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            assert (await bob.next("error"))["code"] == "transfer_not_pending"
        finally:
            await server.stop()


class TestColdTransfer:
    async def test_back_to_a_skill_queue_with_the_summary(self, backend: Backend) -> None:
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            tess_email = await create_agent(backend, name="Tess", skills={"tech": 4})
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "mode": "cold",
                    "to": {"skill": "tech"},
                    "note": "Looks like a login fault, not billing",
                }
            )
            started = await ann.next("transfer_started")
            assert started["mode"] == "cold"
            left = await visitor.event("agent.left", conversation_id=cid)
            assert left["body"]["reason"] == "transferred"
            queued = await visitor.event(
                "conversation.queued", conversation_id=cid, seq=left["seq"] + 1
            )
            assert queued["body"]["reason"] == "transferred"
            # A tech agent arrives: the chat is theirs, and they get its summary.
            tess = await Client.agent(server, tess_email)
            await tess.connect()
            summary = await tess.event("handoff.summary", conversation_id=cid)
            assert "ORD-48213" in summary["body"]["text"]
            assert "login fault" in summary["body"]["text"]
            joined = await joined_by(visitor, cid, "Tess")
            assert joined["seq"] > queued["seq"]
            assigned = [
                e for e in (await _all_events(tess, cid)) if e["kind"] == "conversation.assigned"
            ]
            assert assigned[-1]["body"]["agent"]["name"] == "Tess"
            # Ann left and is not offered it back.
            await ann.send(
                {"type": "message", "conversation_id": cid, "client_msg_id": "a2", "text": "x"}
            )
            assert (await ann.next("error", ref="a2"))["code"] == "not_participant"
            no_repeats(visitor, cid)
        finally:
            await server.stop()


async def _all_events(client: Client, cid: str) -> list[dict[str, Any]]:
    await client.quiet(0.3)
    return client.events[cid]


class TestRepeatedThemselves:
    async def test_a_restated_order_number_is_flagged_and_reported(self, backend: Backend) -> None:
        """After a transfer, the customer giving their order number again is what Warmline
        exists to prevent: the agents see it flagged, and the report counts it against the
        transfer's skill and receiving agent."""
        server = await transfer_server(backend)
        try:
            ann, visitor, cid = await held_chat(server, backend)
            bob = await Client.agent(
                server, await create_agent(backend, name="Bob", skills={"billing": 3})
            )
            await bob.connect()
            sue = await Client.agent(
                server, await create_agent(backend, name="Sue", role=Role.SUPERVISOR, capacity=0)
            )
            await ann.send(
                {
                    "type": "transfer",
                    "conversation_id": cid,
                    "to": {"agent_id": bob.welcome["session"]["id"]},
                }
            )
            offer = await bob.next("transfer_offer")
            await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
            await bob.next("transfer_accepted")
            await bob.message("Hi Ada, how can I help?", conversation_id=cid)
            # A new question is not a repeat.
            await visitor.message("Also, can I change my email address?", conversation_id=cid)
            await visitor.message(
                "Like I said, order ORD-48213 was charged twice.", conversation_id=cid
            )
            flagged = await bob.event("handoff.repeat", conversation_id=cid)
            assert flagged["visibility"] == "agents"
            [repeat] = flagged["body"]["repeats"][:1]
            assert repeat["fact_kind"] == "order"
            assert "48213" in repeat["value"]
            assert flagged["body"]["transfer_id"] == offer["transfer_id"]
            await visitor.quiet(0.3)
            assert "handoff.repeat" not in kinds(visitor, cid)
            # Flagged once per transfer, however often they repeat.
            await visitor.message("ORD-48213!", conversation_id=cid)
            await bob.quiet(0.5)
            assert kinds(bob, cid).count("handoff.repeat") == 1
            async with httpx.AsyncClient(base_url=server.http) as http:
                report = await http.get(
                    "/api/v1/reports/transfers", headers={"Authorization": f"Bearer {sue.token}"}
                )
            assert report.status_code == 200, report.text
            body = report.json()
            assert (body["total"], body["with_repeat"], body["repeat_share"]) == (1, 1, 1.0)
            assert [(a["agent"]["name"], a["with_repeat"]) for a in body["by_agent"]] == [
                ("Bob", 1)
            ]
        finally:
            await server.stop()
