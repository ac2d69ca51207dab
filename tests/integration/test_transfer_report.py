"""The acceptance test of the transfer report: a day of scripted transfers with known timings,
driven through the real services with the clock injected (`now` of each call), on SQLite and
PostgreSQL; each figure equals the number worked out by hand here (docs/metrics.md#transfer-report
defines them).

The day, Tuesday 1 December 2026, in seconds after 09:00 UTC. Skills: billing (Ann), tech
(Bob); Cy has only sales, so routing offers billing chats to Ann and tech chats to Bob; Sue is a
supervisor. Transfer offers lapse after 120 s. Each chat, with its transfers (T1…T10):

- C1, billing: Ann accepts 10. T1 Ann → Bob at 100, accepted 130 (30 s). T2 Bob → Ann at 200,
  accepted 260 (60 s). Ann closes 300. Holders Ann, Bob, Ann: ping-pong.
- C2, tech: Bob accepts 1,010. T3 Bob → Cy at 1,100, Cy declines at 1,110. T4 Bob → Cy at
  1,200, accepted 1,290 (90 s). Cy closes 1,400. Holders Bob, Cy.
- C3, tech: Bob accepts 2,010. T5 Bob → Ann at 2,100, lapses at 2,220 (expired). T6 Bob → Ann at
  2,300, accepted 2,310 (10 s). Ann closes 2,400. Holders Bob, Ann.
- C4, billing: Ann accepts 3,010. T7 Ann → Bob at 3,100, Ann cancels at 3,120. Ann closes 3,200.
  Not transferred.
- C5, billing: Ann accepts 4,010. T8 Ann → Bob at 4,100, accepted 4,120 (20 s). Sue takes it over
  from Bob at 4,200 and reassigns it to Ann at 4,300; Ann closes 4,400. Holders Ann, Bob, Sue,
  Ann: ping-pong (a supervisor's moves count as holding).
- C6, billing: Ann accepts 5,010; Sue takes it over at 5,100 and gives it back to Ann at 5,200;
  Ann closes 5,300. Holders Ann, Sue, Ann, but no transfer: not counted (ping-pong is a share of
  transferred conversations).
- C7, tech: Bob accepts 6,010, escalates at 6,100 (T9, offered to Sue), Sue accepts 6,140
  (40 s) and closes 6,200. Holders Bob, Sue.
- C8, billing: Ann accepts 7,010. T10 Ann → Bob at 7,100, still pending when the report is read;
  C8 is still open, so it is in no conversation figure.
- C9, billing: Ann accepts 8,010, T11 cold to the billing queue at 8,100 (accepted as made; not
  offered back to Ann, nobody else has billing); Sue reassigns it to Ann at 8,200; Ann closes
  8,300. Holders Ann, Ann: one stint, not a ping-pong (a re-queue that came back to the same
  agent); T11 has no time to accept (nobody had to answer it) and counts as Ann's.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import hash_password
from app.chat.service import Actor
from app.handoff import pingpong
from app.handoff import report as transfers
from app.handoff import service as handoff_service
from app.handoff.transfers import Target
from app.routing import presence
from app.store.db import Database
from app.store.models import Agent, AgentStatus, Role, SenderType, TransferKind
from tests.conftest import Backend
from tests.integration.desk import OFFERS, Desk

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SINCE = START - timedelta(hours=9)
UNTIL = START + timedelta(days=1)
TTL = timedelta(seconds=120)


class TransferDesk(Desk):
    """The report desk, plus the handoff steps this day needs, each one unit of work."""

    async def supervisor(self, name: str) -> Actor:
        async def work(session: AsyncSession) -> Actor:
            agent = Agent(
                name=name,
                email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
                password_hash=hash_password("irrelevant-here"),
                capacity=4,
                role=Role.SUPERVISOR,
                status=AgentStatus.OFFLINE,
            )
            session.add(agent)
            await session.flush()
            await presence.connect(
                session, agent=agent, node="test-node", now=self.start - timedelta(hours=1)
            )
            return Actor(SenderType.AGENT, agent.id, name)

        return await self.unit(work)

    async def request(
        self, source: Actor, to: Actor, conversation_id: uuid.UUID, at: float
    ) -> uuid.UUID:
        async def work(session: AsyncSession) -> uuid.UUID:
            _, started = await handoff_service.request_transfer(
                session,
                actor=source,
                conversation_id=conversation_id,
                target=Target(agent_id=to.id),
                cold=False,
                note="Over to you",
                now=self.at(at),
                ttl=TTL,
                offers=OFFERS,
            )
            assert started.transfer_id is not None
            return started.transfer_id

        return await self.unit(work)

    async def cold(self, source: Actor, conversation_id: uuid.UUID, at: float) -> None:
        """A cold transfer back to the chat's own skill queue."""

        async def work(session: AsyncSession) -> None:
            await handoff_service.request_transfer(
                session,
                actor=source,
                conversation_id=conversation_id,
                target=Target(),
                cold=True,
                note=None,
                now=self.at(at),
                ttl=TTL,
                offers=OFFERS,
            )

        await self.unit(work)

    async def escalate(self, source: Actor, conversation_id: uuid.UUID, at: float) -> uuid.UUID:
        async def work(session: AsyncSession) -> uuid.UUID:
            _, started = await handoff_service.escalate_by_agent(
                session,
                actor=source,
                conversation_id=conversation_id,
                reason="Needs a supervisor",
                now=self.at(at),
                ttl=TTL,
            )
            assert started.transfer_id is not None
            return started.transfer_id

        return await self.unit(work)

    async def answer(self, who: Actor, transfer_id: uuid.UUID, at: float, *, yes: bool) -> None:
        async def work(session: AsyncSession) -> None:
            if yes:
                await handoff_service.accept(
                    session, actor=who, transfer_id=transfer_id, now=self.at(at), ttl=TTL
                )
            else:
                await handoff_service.decline(
                    session, actor=who, transfer_id=transfer_id, reason=None, now=self.at(at)
                )

        await self.unit(work)

    async def cancel(self, who: Actor, transfer_id: uuid.UUID, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await handoff_service.cancel(
                session, actor=who, transfer_id=transfer_id, now=self.at(at)
            )

        await self.unit(work)

    async def expire(self, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await handoff_service.expire_due(session, now=self.at(at))

        await self.unit(work)

    async def take_over(self, who: Actor, conversation_id: uuid.UUID, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await handoff_service.take_over(
                session, actor=who, conversation_id=conversation_id, now=self.at(at)
            )

        await self.unit(work)

    async def reassign(self, who: Actor, conversation_id: uuid.UUID, to: Actor, at: float) -> None:
        async def work(session: AsyncSession) -> None:
            await handoff_service.reassign(
                session, actor=who, conversation_id=conversation_id, agent_id=to.id, now=self.at(at)
            )

        await self.unit(work)


async def simulate_transfers(desk: TransferDesk) -> dict[str, Any]:
    """Play the day of this module's docstring; ids by name (skills, agents, conversations)."""
    billing = await desk.skill("billing")
    tech = await desk.skill("tech")
    sales = await desk.skill("sales")
    ann = await desk.agent("Ann", billing)
    bob = await desk.agent("Bob", tech)
    cy = await desk.agent("Cy", sales)
    sue = await desk.supervisor("Sue")
    v = [await desk.visitor(f"V{i}") for i in range(1, 10)]

    c1 = await desk.open(v[0], 0, billing)
    await desk.accept(ann, c1, 10)
    await desk.answer(bob, await desk.request(ann, bob, c1, 100), 130, yes=True)
    await desk.answer(ann, await desk.request(bob, ann, c1, 200), 260, yes=True)
    await desk.close(ann, c1, 300)

    c2 = await desk.open(v[1], 1_000, tech)
    await desk.accept(bob, c2, 1_010)
    await desk.answer(cy, await desk.request(bob, cy, c2, 1_100), 1_110, yes=False)
    await desk.answer(cy, await desk.request(bob, cy, c2, 1_200), 1_290, yes=True)
    await desk.close(cy, c2, 1_400)

    c3 = await desk.open(v[2], 2_000, tech)
    await desk.accept(bob, c3, 2_010)
    await desk.request(bob, ann, c3, 2_100)
    await desk.expire(2_220)
    await desk.answer(ann, await desk.request(bob, ann, c3, 2_300), 2_310, yes=True)
    await desk.close(ann, c3, 2_400)

    c4 = await desk.open(v[3], 3_000, billing)
    await desk.accept(ann, c4, 3_010)
    await desk.cancel(ann, await desk.request(ann, bob, c4, 3_100), 3_120)
    await desk.close(ann, c4, 3_200)
    ids = {"billing": billing, "tech": tech, "ann": ann.id, "bob": bob.id, "cy": cy.id}
    later = await _after_lunch(desk, billing=billing, tech=tech, ann=ann, bob=bob, sue=sue, v=v)
    return {**ids, "sue": sue.id, "conversations": [c1, c2, c3, c4, *later]}


async def _after_lunch(
    desk: TransferDesk,
    *,
    billing: int,
    tech: int,
    ann: Actor,
    bob: Actor,
    sue: Actor,
    v: list[Actor],
) -> list[uuid.UUID]:
    """C5 to C9 of the day."""
    c5 = await desk.open(v[4], 4_000, billing)
    await desk.accept(ann, c5, 4_010)
    await desk.answer(bob, await desk.request(ann, bob, c5, 4_100), 4_120, yes=True)
    await desk.take_over(sue, c5, 4_200)
    await desk.reassign(sue, c5, ann, 4_300)
    await desk.close(ann, c5, 4_400)

    c6 = await desk.open(v[5], 5_000, billing)
    await desk.accept(ann, c6, 5_010)
    await desk.take_over(sue, c6, 5_100)
    await desk.reassign(sue, c6, ann, 5_200)
    await desk.close(ann, c6, 5_300)

    c7 = await desk.open(v[6], 6_000, tech)
    await desk.accept(bob, c7, 6_010)
    await desk.answer(sue, await desk.escalate(bob, c7, 6_100), 6_140, yes=True)
    await desk.close(sue, c7, 6_200)

    c8 = await desk.open(v[7], 7_000, billing)
    await desk.accept(ann, c8, 7_010)
    await desk.request(ann, bob, c8, 7_100)

    c9 = await desk.open(v[8], 8_000, billing)
    await desk.accept(ann, c9, 8_010)
    await desk.cold(ann, c9, 8_100)
    await desk.reassign(sue, c9, ann, 8_200)
    await desk.close(ann, c9, 8_300)
    return [c5, c6, c7, c8, c9]


@pytest_asyncio.fixture
async def day(backend: Backend) -> AsyncIterator[tuple[Desk, dict[str, Any]]]:
    db = Database(backend.database_url, pool_size=5)
    desk = TransferDesk(db, START)
    try:
        yield desk, await simulate_transfers(desk)
    finally:
        await db.dispose()


def outcomes(**counts: int) -> dict[str, int]:
    return {"accepted": 0, "declined": 0, "expired": 0, "cancelled": 0, "pending": 0, **counts}


class TestTransferOutcomes:
    async def test_total_by_outcome_and_time_to_accept(
        self, day: tuple[Desk, dict[str, Any]]
    ) -> None:
        """Every transfer of the day once, by how it ended; the time to accept of the six
        accepted offers (not of the cold T11, accepted as it was made)."""
        desk, _ = day
        async with desk.db.read() as session:
            found = await transfers.transfer_report(session, since=SINCE, until=UNTIL)
        # Accepted: T1, T2, T4, T6, T8, T9, T11. Declined T3, expired T5, cancelled T7, pending
        # T10.
        assert asdict(found.outcomes) == outcomes(
            accepted=7, declined=1, expired=1, cancelled=1, pending=1
        )
        assert (found.total.transfers, found.total.with_repeat) == (7, 0)
        assert found.by_kind == {
            TransferKind.WARM: 5,
            TransferKind.COLD: 1,
            TransferKind.ESCALATION: 1,
        }
        # Accept times, sorted: 10, 20, 30, 40, 60, 90 s. Median: position 2.5, 30 + 10 x 0.5 =
        # 35. p90: position 4.5, 60 + 30 x 0.5 = 75.
        assert (found.accept.median_ms, found.accept.p90_ms) == (35_000, 75_000)

    async def test_by_skill(self, day: tuple[Desk, dict[str, Any]]) -> None:
        """Each transfer under its chat's skill: the one it moved with, or for one that did not
        move the chat, the chat's."""
        desk, ids = day
        async with desk.db.read() as session:
            found = await transfers.transfer_report(session, since=SINCE, until=UNTIL)
        rows = {
            s.skill_id: (s.skill_name, s.tally.transfers, asdict(s.outcomes), asdict(s.accept))
            for s in found.by_skill
        }
        assert rows == {
            # T1 (30 s), T2 (60 s), T8 (20 s), T11 (cold) accepted; T7 cancelled; T10 pending.
            # Times 20, 30, 60: median 30; p90 at 1.8, 30 + 30 x 0.8 = 54.
            ids["billing"]: (
                "Billing",
                4,
                outcomes(accepted=4, cancelled=1, pending=1),
                {"median_ms": 30_000, "p90_ms": 54_000},
            ),
            # T4 (90 s), T6 (10 s), T9 (40 s) accepted; T3 declined; T5 expired. Times 10, 40,
            # 90: median 40; p90 at 1.8, 40 + 50 x 0.8 = 80.
            ids["tech"]: (
                "Tech",
                3,
                outcomes(accepted=3, declined=1, expired=1),
                {"median_ms": 40_000, "p90_ms": 80_000},
            ),
        }

    async def test_by_agent(self, day: tuple[Desk, dict[str, Any]]) -> None:
        """Per receiving agent: what they accepted and how fast, what they declined, what they
        let lapse; the pending T10 is neither Bob's decline nor his expiry."""
        desk, ids = day
        async with desk.db.read() as session:
            found = await transfers.transfer_report(session, since=SINCE, until=UNTIL)
        rows = {
            a.agent_id: (a.agent_name, a.tally.transfers, a.declined, a.expired, asdict(a.accept))
            for a in found.by_agent
        }
        assert rows == {
            # T2 (60 s), T6 (10 s), T11 (cold, no time); T5 lapsed. Median 35; p90 at 0.9,
            # 10 + 50 x 0.9 = 55.
            ids["ann"]: ("Ann", 3, 0, 1, {"median_ms": 35_000, "p90_ms": 55_000}),
            # T1 (30 s), T8 (20 s). Median 25; p90 20 + 10 x 0.9 = 29.
            ids["bob"]: ("Bob", 2, 0, 0, {"median_ms": 25_000, "p90_ms": 29_000}),
            # T4 (90 s); declined T3.
            ids["cy"]: ("Cy", 1, 1, 0, {"median_ms": 90_000, "p90_ms": 90_000}),
            ids["sue"]: ("Sue", 1, 0, 0, {"median_ms": 40_000, "p90_ms": 40_000}),
        }

    async def test_window_is_when_a_transfer_ended(self, day: tuple[Desk, dict[str, Any]]) -> None:
        """A range ending between T1's request (100) and its acceptance (130) does not count
        it; one starting there does. The pending T10 counts where it was requested (7,100)."""
        desk, _ = day
        async with desk.db.read() as session:
            before = await transfers.transfer_report(
                session, since=SINCE, until=START + timedelta(seconds=120)
            )
            after = await transfers.transfer_report(
                session,
                since=START + timedelta(seconds=120),
                until=START + timedelta(seconds=7_100),
            )
        assert asdict(before.outcomes) == outcomes()
        assert before.accept.median_ms is None
        assert asdict(after.outcomes) == outcomes(accepted=6, declined=1, expired=1, cancelled=1)
        assert (after.accept.median_ms, after.accept.p90_ms) == (35_000, 75_000)


class TestPingPong:
    async def test_bounced_conversations(self, day: tuple[Desk, dict[str, Any]]) -> None:
        """C1 (Ann, Bob, Ann) and C5 (Ann, Bob, Sue, Ann) came back to Ann; C6 did too but was
        never transferred; C2, C3 and C7 changed hands without coming back; C9 came back to Ann from
        the queue with nobody in between; C8 is open."""
        desk, ids = day
        c = ids["conversations"]
        async with desk.db.read() as session:
            found = await pingpong.bounced(session, since=SINCE, until=UNTIL)
            tech_only = await pingpong.bounced(
                session, since=SINCE, until=UNTIL, skill_id=ids["tech"]
            )
        assert {(b.conversation_id, b.skill_id, b.last_agent_id) for b in found} == {
            (c[0], ids["billing"], ids["ann"]),
            (c[4], ids["billing"], ids["ann"]),
        }
        assert tech_only == []
