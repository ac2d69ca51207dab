"""Escalation steps, broadcast offers and the unanswered-message watchdog, end to end.

The routing policy is written straight to the store here (the admin API that edits it has its
own tests in test_admin.py), so that each test states its policy in one place.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.store.db import Database
from app.store.models import (
    EscalationStepRow,
    EscalationStepSkill,
    OfferMode,
    Role,
    RoutingSettings,
    Skill,
)
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def configure(
    backend: Backend, *, steps: dict[str, list[dict[str, Any]]] | None = None, **settings: Any
) -> None:
    """Store escalation steps per skill slug (steps name related skills by slug) and settings."""
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            ids = {s.slug: s.id for s in (await session.scalars(select(Skill))).all()}
            for slug, specs in (steps or {}).items():
                for position, spec in enumerate(specs):
                    row = EscalationStepRow(
                        skill_id=ids[slug],
                        position=position,
                        name=spec["name"],
                        after_seconds=spec["after"],
                        min_proficiency=spec.get("min_proficiency", 1),
                        include_supervisors=spec.get("include_supervisors", False),
                    )
                    session.add(row)
                    await session.flush()
                    session.add_all(
                        EscalationStepSkill(step_id=row.id, skill_id=ids[related])
                        for related in spec.get("related", [])
                    )
            if settings:
                await session.execute(
                    update(RoutingSettings).where(RoutingSettings.id == 1).values(**settings)
                )
    finally:
        await db.dispose()


def at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))


class TestEscalationSteps:
    async def test_steps_fire_in_order_until_a_supervisor_takes_the_chat(
        self, backend: Backend
    ) -> None:
        """Nobody qualifying has room: each step is recorded as it comes into force (experts,
        any level, related skill, supervisors), in order and not before its time, and the
        supervisor, the only one with room, gets the chat at the last step."""
        junior = await create_agent(backend, name="Junior", skills={"billing": 2}, capacity=0)
        techie = await create_agent(backend, name="Techie", skills={"technical": 4}, capacity=0)
        sue = await create_agent(backend, name="Sue", role=Role.SUPERVISOR, capacity=2)
        await configure(
            backend,
            steps={
                "billing": [
                    {"name": "experts", "after": 0, "min_proficiency": 4},
                    {"name": "any level", "after": 1},
                    {"name": "with technical", "after": 2, "related": ["technical"]},
                    {"name": "supervisors", "after": 3, "include_supervisors": True},
                ]
            },
        )
        server = await Server(backend).start()
        try:
            agents = [await Client.agent(server, email) for email in (junior, techie, sue)]
            for agent in agents:
                await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("I was charged twice", skill="billing")
            opened = await visitor.event("conversation.opened")
            joined = await visitor.event("agent.joined", timeout=15)
            assert joined["body"]["agent"]["name"] == "Sue"
            assert (at(joined) - at(opened)).total_seconds() >= 3

            supervisor = agents[2]
            conversation_id = ack["conversation_id"]
            await supervisor.event("agent.joined", conversation_id=conversation_id)
            steps = [e for e in supervisor.events[conversation_id] if e["kind"] == "routing.step"]
            assert [s["body"]["step"] for s in steps] == [
                "experts",
                "any level",
                "with technical",
                "supervisors",
            ]
            assert all(s["visibility"] == "agents" for s in steps)
            for step, after in zip(steps, (0, 1, 2, 3), strict=True):
                assert (at(step) - at(opened)).total_seconds() >= after
            # The visitor never sees the internals of routing.
            assert not [e for e in visitor.events[conversation_id] if e["kind"] == "routing.step"]

            async with httpx.AsyncClient(base_url=server.http) as http:
                got = await http.get(
                    f"/api/v1/conversations/{conversation_id}/routing",
                    headers={"Authorization": f"Bearer {supervisor.token}"},
                )
            assert got.status_code == 200, got.text
            body = got.json()
            assert [s["step"] for s in body["steps"]] == [
                "experts",
                "any level",
                "with technical",
                "supervisors",
            ]
            assert body["decisions"][-1]["step"] == "supervisors"
            assert body["decisions"][-1]["chosen"] == supervisor.welcome["session"]["id"]
        finally:
            await server.stop()

    async def test_lower_proficiency_is_accepted_only_after_its_step(
        self, backend: Backend
    ) -> None:
        """An expert-only first step keeps the chat from a free junior; the step that accepts
        any level gives it to them the moment it comes into force."""
        junior = await create_agent(backend, name="Junior", skills={"billing": 2}, capacity=2)
        await configure(
            backend,
            steps={
                "billing": [
                    {"name": "experts", "after": 0, "min_proficiency": 4},
                    {"name": "anyone", "after": 2},
                ]
            },
        )
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, junior)
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("refund please", skill="billing")
            opened = await visitor.event("conversation.opened")
            queue = await visitor.next("queue")
            assert queue["position"] == 1
            joined = await visitor.event("agent.joined", timeout=15)
            assert joined["body"]["agent"]["name"] == "Junior"
            waited = (at(joined) - at(opened)).total_seconds()
            assert 2 <= waited < 4.5  # at the step, within the 1 s timer, not at a later pass
        finally:
            await server.stop()


class TestBroadcast:
    async def test_first_to_accept_wins_and_the_others_are_withdrawn(
        self, backend: Backend
    ) -> None:
        """In broadcast mode the two best agents are offered the chat at once; both accept at
        the same moment, exactly one gets it, the other is told it was taken."""
        emails = [
            await create_agent(backend, name=name, skills={"billing": level})
            for name, level in (("Ann", 5), ("Bob", 4), ("Cid", 1))
        ]
        await configure(backend, offer_mode=OfferMode.BROADCAST, broadcast_size=2)
        server = await Server(backend, offer_auto_accept="false").start()
        try:
            agents = [await Client.agent(server, email) for email in emails]
            for agent in agents:
                await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            await visitor.message("hello", skill="billing")
            ann, bob, cid = agents
            offers = [await ann.next("offer"), await bob.next("offer")]
            assert offers[0]["conversation_id"] == offers[1]["conversation_id"]
            assert [f for f in await cid.quiet(0.3) if f.get("type") == "offer"] == []

            await asyncio.gather(
                ann.send({"type": "accept", "offer_id": offers[0]["offer_id"]}),
                bob.send({"type": "accept", "offer_id": offers[1]["offer_id"]}),
            )
            joined = await visitor.event("agent.joined")
            frames = {"Ann": await ann.quiet(1.0), "Bob": await bob.quiet(1.0)}
            winner = joined["body"]["agent"]["name"]
            loser = "Bob" if winner == "Ann" else "Ann"
            assert [f["type"] for f in frames[winner] if f["type"] == "accepted"] == ["accepted"]
            lost = frames[loser]
            assert not [f for f in lost if f["type"] == "accepted"]
            assert {"type": "offer_withdrawn", "reason": "taken"}.items() <= next(
                f for f in lost if f["type"] == "offer_withdrawn"
            ).items()
            error = next(f for f in lost if f["type"] == "error")
            assert error["code"] == "offer_not_pending"
            assert [f for f in await visitor.quiet(0.5) if f.get("kind") == "agent.joined"] == []
        finally:
            await server.stop()


class TestWatchdog:
    async def test_unanswered_customer_alerts_agent_then_supervisors_then_requeues(
        self, backend: Backend
    ) -> None:
        """A customer left without a reply: the agent is alerted, then the supervisors, then
        the chat goes to another agent, front of the queue, with its history."""
        slow = await create_agent(backend, name="Slow", capacity=1)
        lee = await create_agent(backend, name="Lee", role=Role.SUPERVISOR, capacity=0)
        await configure(
            backend,
            unanswered_alert_seconds=1,
            unanswered_supervisor_seconds=2,
            unanswered_requeue_seconds=3,
        )
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, slow)
            await agent.connect()
            supervisor = await Client.agent(server, lee)
            await supervisor.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hello, anyone?")
            await visitor.event("agent.joined")
            spare = await Client.agent(server, await create_agent(backend, name="Spare"))
            await spare.connect()

            alert = await agent.next("alert", timeout=10)
            assert alert["alert"] == "unanswered"
            assert alert["conversation_id"] == ack["conversation_id"]
            assert alert["alerted"] == "agent"
            escalated = await supervisor.next("alert", timeout=10)
            assert escalated["alerted"] == "supervisors"
            assert escalated["waited_seconds"] >= 2

            left = await visitor.event("agent.left", timeout=10)
            assert left["body"]["reason"] == "unanswered"
            joined = await visitor.event("agent.joined")
            assert joined["seq"] > left["seq"]
            assert joined["body"]["agent"]["name"] == "Spare"
            got = await spare.event("message", seq=ack["seq"])
            assert got["body"]["text"] == "hello, anyone?"
        finally:
            await server.stop()

    async def test_a_reply_stands_the_watchdog_down(self, backend: Backend) -> None:
        """An agent who answers in time gets no alert."""
        await configure(backend, unanswered_alert_seconds=1, unanswered_supervisor_seconds=None)
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, await create_agent(backend, name="Quick"))
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hi")
            await agent.event("message", seq=ack["seq"])
            await agent.message("Hello! How can I help?", conversation_id=ack["conversation_id"])
            frames = await agent.quiet(2.5)
            assert [f for f in frames if f.get("type") == "alert"] == []
        finally:
            await server.stop()


class TestBusinessHours:
    async def test_outside_hours_the_visitor_is_told_when_it_opens(self, backend: Backend) -> None:
        """A skill closed today (a holiday) takes no chats even with its agent online: the
        visitor is told at once, with the next opening, and their message is kept."""
        email = await create_agent(backend, name="Ann", skills={"billing": 3})
        db = Database(backend.database_url)
        today = datetime.now(UTC).date()
        try:
            async with db.write() as session:
                await session.execute(
                    update(Skill)
                    .where(Skill.slug == "billing")
                    .values(
                        business_hours={
                            "timezone": "UTC",
                            "weekly": {
                                day: [["00:00", "24:00"]]
                                for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
                            },
                            "holidays": [today.isoformat()],
                        }
                    )
                )
        finally:
            await db.dispose()
        server = await Server(backend).start()
        try:
            agent = await Client.agent(server, email)
            await agent.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("my invoice is wrong", skill="billing")
            offline = await visitor.event("conversation.offline")
            assert offline["body"]["reason"] == "outside_hours"
            day = at(offline).date()
            assert offline["body"]["opens_at"] == f"{day + timedelta(days=1)}T00:00:00Z"
            assert [f for f in await agent.quiet(0.5) if f.get("type") in ("event", "offer")] == []
            async with httpx.AsyncClient(base_url=server.http) as http:
                listed = await http.get(
                    "/api/v1/conversations/offline",
                    headers={"Authorization": f"Bearer {agent.token}"},
                )
            assert [item["id"] for item in listed.json()] == [ack["conversation_id"]]
            assert listed.json()[0]["reason"] == "outside_hours"

            # An agent without the skill neither sees it nor can take it by its id.
            stranger = await Client.agent(server, await create_agent(backend, name="Gus"))
            await stranger.connect()
            async with httpx.AsyncClient(base_url=server.http) as http:
                theirs = await http.get(
                    "/api/v1/conversations/offline",
                    headers={"Authorization": f"Bearer {stranger.token}"},
                )
            assert theirs.json() == []
            await stranger.send({"type": "take", "conversation_id": ack["conversation_id"]})
            assert (await stranger.next("error"))["code"] == "not_participant"
            await agent.send({"type": "take", "conversation_id": ack["conversation_id"]})
            await agent.next("taken")
            assert (await visitor.event("agent.joined"))["body"]["agent"]["name"] == "Ann"
        finally:
            await server.stop()
