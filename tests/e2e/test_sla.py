"""Live SLA breaches end to end (docs/metrics.md#sla-breaches): a real server whose detector
(`routing.watch_sla`) runs every 0.2 s, a skill whose first-reply target is set to 5 s (the
shortest allowed) through the admin API, agents, a supervisor and visitors over WebSockets,
and a real webhook receiver.

Every wait is for an event, a webhook or a stored row, and the order of what the detector
records is what shows that it has looked at a chat and left it be; the one fixed pause (two
nodes) only gives a duplicate time to show, so it can make the test miss a bug, never fail
without one.
The first test runs on both backends (SQLite + in-process bus, PostgreSQL + Redis), the second
on two nodes sharing PostgreSQL and Redis.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.store.db import Database
from app.store.models import Conversation, ConversationEvent, ConversationMetrics, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.webhook_receiver import Receiver, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

BREACHED = "sla.breached"
WEBHOOK = "conversation.sla_breached"
# Billing's first-reply target in these tests: the shortest the admin API accepts.
TARGET = 5


@asynccontextmanager
async def api(server: Server, token: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def stored(backend: Backend, cid: str) -> dict[str, Any]:
    """What the store holds of a conversation: its breach events, its mark, its creation, and
    its closing figures' verdict (None while open)."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            conversation = await session.get(Conversation, uuid.UUID(cid))
            assert conversation is not None
            events = list(
                await session.scalars(
                    select(ConversationEvent)
                    .where(
                        ConversationEvent.conversation_id == conversation.id,
                        ConversationEvent.kind == BREACHED,
                    )
                    .order_by(ConversationEvent.seq)
                )
            )
            figures = await session.get(ConversationMetrics, conversation.id)
            return {
                "breaches": [(e.seq, e.visibility.value, dict(e.body)) for e in events],
                "breached_at": conversation.sla_breached_at,
                "created_at": conversation.created_at,
                "sla_met": None if figures is None else figures.sla_met,
                "closed": figures is not None,
            }
    finally:
        await db.dispose()


async def breach_count(backend: Backend) -> int:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(ConversationEvent)
                .where(ConversationEvent.kind == BREACHED)
            )
            return int(count or 0)
    finally:
        await db.dispose()


async def counted(server: Server) -> dict[str, float]:
    """`warmline_sla_breaches_total` by skill, as a scrape of `/metrics` reads it."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        text = (await http.get("/metrics")).text
    return {
        sample.labels["skill"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "warmline_sla_breaches_total"
    }


def held_chat(overview: dict[str, Any], cid: str) -> dict[str, Any]:
    for agent in overview["agents"]:
        for chat in agent["chats"]:
            if chat["id"] == cid:
                result: dict[str, Any] = chat
                return result
    raise AssertionError(f"{cid} is held by nobody in the overview")


def queued_chat(overview: dict[str, Any], cid: str) -> dict[str, Any]:
    for chat in overview["queued"]:
        if chat["id"] == cid:
            result: dict[str, Any] = chat
            return result
    raise AssertionError(f"{cid} is not queued in the overview")


def at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def close(agent: Client, visitor: Client, cid: str) -> None:
    await agent.send({"type": "close", "conversation_id": cid})
    await visitor.event("conversation.closed", conversation_id=cid)


class TestLiveBreaches:
    async def test_late_first_reply_is_a_breach_once(self, backend: Backend) -> None:
        """With billing's target at 5 s: a chat its agent leaves unanswered breaches once; the
        event reaches the agent and the monitoring supervisor, never the visitor; its webhook
        is delivered; the overview shows it breached and then, answered, no longer waiting;
        a queued chat breaches too; and the closing figures call the late chat not met. A chat
        needing another skill (60 s target), answered at once, records no breach and is met."""
        server = await Server(
            backend, sla_watch_interval="0.2", webhook_retry_base="0.05", heartbeat_timeout="30"
        ).start()
        try:
            admin = await Client.agent(
                server, await create_agent(backend, name="Root", role=Role.ADMIN, capacity=0)
            )
            ann = await Client.agent(
                server,
                await create_agent(backend, name="Ann", skills={"billing": 5, "sales": 5}),
            )
            await ann.connect()
            sue = await Client.agent(
                server, await create_agent(backend, name="Sue", role=Role.SUPERVISOR, capacity=0)
            )
            await sue.connect()
            async with Receiver() as receiver, api(server, admin.token) as http:
                skills = {s["slug"]: s for s in (await http.get("/skills")).json()}
                billing = skills["billing"]
                patched = await http.patch(
                    f"/skills/{billing['id']}", json={"sla_first_response_seconds": TARGET}
                )
                assert patched.status_code == 200, patched.text
                hook = await http.post("/webhooks", json={"url": receiver.url, "events": [WEBHOOK]})
                assert hook.status_code == 201, hook.text

                # Answered at once, against sales' 60 s target: no breach.
                bea, on_time = await answered_at_once(server, http, ann)

                # Left unanswered against billing's 5 s target.
                ada, late, event = await unanswered_breach(server, http, ann, sue, billing)
                await wait_for(lambda: bool(receiver.ok()), what="the breach webhook")
                payload = receiver.ok()[0].json()
                sent = (payload["type"], payload["conversation_id"], payload["seq"])
                assert sent == (WEBHOOK, late, event["seq"])
                assert payload["data"] == {
                    "target_seconds": TARGET,
                    "waited_seconds": event["body"]["waited_seconds"],
                    "answered": False,
                    "skill": {"id": billing["id"], "slug": "billing"},
                }
                created = (await stored(backend, late))["created_at"]
                assert at(event["due_at"]) == created + timedelta(seconds=TARGET)

                # The late reply reaches the visitor; the breach before it never did.
                said = await ann.message("Sorry for the wait.", conversation_id=late)
                await ada.event("message", conversation_id=late, seq=said["seq"])
                assert BREACHED not in [e["kind"] for e in ada.events[late]]
                assert event["seq"] not in ada.seqs(late)
                replied = (await http.get("/supervisor/overview")).json()
                assert held_chat(replied, late)["sla"] is None

                # A chat queued behind Ann's full capacity breaches too, and later than the
                # first: by then the detector has gone over the other two again.
                full = await http.patch(
                    f"/agents/{ann.welcome['session']['id']}", json={"capacity": 2}
                )
                assert full.status_code == 200, full.text
                cid = await queued_breach(server, backend, http)

                late_row = await stored(backend, late)
                assert (len(late_row["breaches"]), late_row["breached_at"] is not None) == (1, True)
                on_time_row = await stored(backend, on_time)
                assert on_time_row["breaches"] == []
                assert on_time_row["breached_at"] is None
                assert (await stored(backend, cid))["breached_at"] is not None

                # The closing figures agree with what was recorded live.
                await close(ann, ada, late)
                await close(ann, bea, on_time)
                assert (await stored(backend, late))["sla_met"] is False
                assert (await stored(backend, on_time))["sla_met"] is True
                assert await breach_count(backend) == 2
                await transcripts(server, http, ada, late)
                assert await counted(server) == {"billing": 2.0}
                assert [r.json()["conversation_id"] for r in receiver.ok()][:1] == [late]
        finally:
            await server.stop()


async def queued_breach(server: Server, backend: Backend, http: httpx.AsyncClient) -> str:
    """A billing chat that waits in the queue (its only agent is full) past the 5 s target:
    the overview shows it breached once its breach is stored."""
    cy = await Client.visitor(server, name="Cy")
    await cy.connect()
    cid = str((await cy.message("Still waiting on a refund", skill="billing"))["conversation_id"])
    waiting = (await http.get("/supervisor/overview")).json()
    sla = queued_chat(waiting, cid)["sla"]
    assert sla is not None
    assert sla["target_seconds"] == TARGET

    async def recorded() -> bool:
        return bool((await stored(backend, cid))["breaches"])

    await wait_for(recorded, what="the queued chat's breach")
    breached = (await http.get("/supervisor/overview")).json()
    assert queued_chat(breached, cid)["sla"]["state"] == "breached"
    assert BREACHED not in [e["kind"] for e in cy.events[cid]]
    return cid


async def unanswered_breach(
    server: Server,
    http: httpx.AsyncClient,
    ann: Client,
    sue: Client,
    billing: dict[str, Any],
) -> tuple[Client, str, dict[str, Any]]:
    """A billing chat Ann holds and leaves unanswered: its breach reaches Ann and Sue, who
    monitors it, and the overview shows it at its target, then breached. Returns the visitor,
    the chat and the event (with the overview's `due_at`)."""
    ada = await Client.visitor(server, name="Ada")
    await ada.connect()
    late = str((await ada.message("I was charged twice", skill="billing"))["conversation_id"])
    await ann.event("agent.joined", conversation_id=late)
    await sue.send({"type": "monitor", "conversation_id": late})
    await sue.next("monitoring")
    first = await http.get("/supervisor/overview")
    sla = held_chat(first.json(), late)["sla"]
    assert sla is not None
    assert sla["target_seconds"] == TARGET
    assert sla["state"] in ("ok", "at_risk", "breached")

    event = await ann.event(BREACHED, conversation_id=late)
    assert event["visibility"] == "agents"
    assert event["body"]["target_seconds"] == TARGET
    assert event["body"]["waited_seconds"] >= TARGET
    assert event["body"]["answered"] is False
    assert event["body"]["skill"] == {"id": billing["id"], "slug": "billing"}
    seen = await sue.event(BREACHED, conversation_id=late)
    assert seen["seq"] == event["seq"]

    now_breached = (await http.get("/supervisor/overview")).json()
    sla = held_chat(now_breached, late)["sla"]
    assert sla["state"] == "breached"
    event["due_at"] = sla["due_at"]
    return ada, late, event


async def answered_at_once(
    server: Server, http: httpx.AsyncClient, ann: Client
) -> tuple[Client, str]:
    """A sales chat Ann answers as soon as she has it: the overview shows it awaiting nothing."""
    bea = await Client.visitor(server, name="Bea")
    await bea.connect()
    on_time = str((await bea.message("A quote, please", skill="sales"))["conversation_id"])
    await ann.event("agent.joined", conversation_id=on_time)
    await ann.message("Here it is.", conversation_id=on_time)
    answered = await http.get("/supervisor/overview")
    assert held_chat(answered.json(), on_time)["sla"] is None
    return bea, on_time


async def transcripts(server: Server, http: httpx.AsyncClient, ada: Client, cid: str) -> None:
    """The breach is a line of the staff's text transcript, and absent from the visitor's."""
    staff = await http.get(f"/conversations/{cid}/transcript", params={"format": "text"})
    assert staff.status_code == 200, staff.text
    assert "First-reply SLA breached: " in staff.text
    assert f"against a target of {TARGET} s." in staff.text
    async with httpx.AsyncClient(base_url=server.http) as visitor_http:
        own = await visitor_http.get(
            f"/api/v1/visitor/conversations/{cid}/transcript",
            headers={"Authorization": f"Bearer {ada.token}"},
        )
    assert own.status_code == 200, own.text
    assert "breach" not in own.text.lower()
    assert "sla" not in own.text.lower()


class TestTwoNodes:
    async def test_each_breach_recorded_once(self, postgres_backend: Backend) -> None:
        """Two nodes on PostgreSQL and Redis, both detecting every 0.1 s: three chats opened on
        one node, held and left unanswered by an agent connected to the other, each get one
        `sla.breached`; the agent receives each once, and each webhook is sent once."""
        backend = postgres_backend
        fast = {"sla_watch_interval": "0.1", "webhook_retry_base": "0.05"}
        one = await Server(backend, node_name="one", heartbeat_timeout="30", **fast).start()
        two: Server | None = None
        try:
            admin = await Client.agent(
                one, await create_agent(backend, name="Root", role=Role.ADMIN, capacity=0)
            )
            email = await create_agent(backend, name="Ann", skills={"billing": 5}, capacity=3)
            async with Receiver() as receiver, api(one, admin.token) as http:
                billing = next(
                    s for s in (await http.get("/skills")).json() if s["slug"] == "billing"
                )
                await http.patch(
                    f"/skills/{billing['id']}", json={"sla_first_response_seconds": TARGET}
                )
                hook = await http.post("/webhooks", json={"url": receiver.url, "events": [WEBHOOK]})
                assert hook.status_code == 201, hook.text
                two = await Server(backend, node_name="two", heartbeat_timeout="30", **fast).start()
                ann = await Client.agent(two, email)
                await ann.connect()
                chats = []
                for name in ("Ada", "Bea", "Cy"):
                    visitor = await Client.visitor(one, name=name)
                    await visitor.connect()
                    chats.append(
                        str((await visitor.message("Hello?", skill="billing"))["conversation_id"])
                    )
                for cid in chats:
                    await ann.event(BREACHED, conversation_id=cid)
                await wait_for(lambda: len(receiver.ok()) >= len(chats), what="three webhooks")
                await asyncio.sleep(1.0)  # ten rounds of each node: time for a duplicate to show
                assert await breach_count(backend) == len(chats)
                assert sorted(r.json()["conversation_id"] for r in receiver.ok()) == sorted(chats)
                for cid in chats:
                    assert [e["kind"] for e in ann.events[cid]].count(BREACHED) == 1
        finally:
            await one.stop()
            if two is not None:
                await two.stop()
