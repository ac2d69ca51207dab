"""Quality reviews through the real services on SQLite and PostgreSQL (docs/metrics.md#quality-
reviews): who a review is about, what is refused (with nothing stored), rubric versions that
leave past scores alone, the author's rights, and the report per agent with hand-computed
figures.

The desk, 1 December 2026 from 09:00 UTC: Ann has billing, Bob tech.
- C1: Ada opens (billing) at 0, Ann accepts 10, replies 20, closes 100.
- C2: Bea opens (tech) at 200, Bob accepts 210, replies 220, warm transfer to Ann at 300
  accepted 360; Ann closes 400. Held by Bob and Ann; left with Ann.
- C3: Cy opens (tech) at 500, Bob accepts 510: still open.
Sam is a supervisor, Pat an admin, Ann and Bob plain agents.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.tokens import hash_password
from app.chat.errors import ConversationNotFound
from app.errors import Forbidden
from app.privacy.erasure import redact_conversation
from app.quality import service
from app.quality.errors import AlreadyReviewed, ConversationNotClosed, InvalidReview
from app.quality.scoring import DEFAULT_CRITERIA, Criterion, Scale, Score
from app.quality.tally import Line, QualityGroupBy
from app.store.db import Database
from app.store.models import Agent, Conversation, QualityReview, Role
from tests.conftest import Backend
from tests.integration.desk import Desk

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NOW = START + timedelta(days=1)
WEEK = (START - timedelta(days=1), START + timedelta(days=6))
# Default rubric: greeting 1-5 (w1, no n/a), empathy 1-5 (w2), accuracy 1-5 (w3), resolution
# yes/no (w3).
FULL = [Score("greeting", 5), Score("empathy", 3), Score("accuracy", 4), Score("resolution", 1)]


@dataclass
class World:
    desk: Desk
    ann: uuid.UUID
    bob: uuid.UUID
    sam: Agent
    pat: Agent
    c1: uuid.UUID
    c2: uuid.UUID
    c3: uuid.UUID


async def person(desk: Desk, name: str, role: Role) -> Agent:
    async def work(session: AsyncSession) -> Agent:
        agent = Agent(
            name=name,
            email=f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com",
            password_hash=hash_password("irrelevant-here"),
            role=role,
        )
        session.add(agent)
        await session.flush()
        return agent

    return await desk.unit(work)


@pytest_asyncio.fixture
async def world(backend: Backend) -> AsyncIterator[World]:
    db = Database(backend.database_url, pool_size=5)
    desk = Desk(db, START)
    try:
        billing = await desk.skill("billing")
        tech = await desk.skill("tech")
        ann = await desk.agent("Ann", billing)
        bob = await desk.agent("Bob", tech)
        ada, bea, cy = [await desk.visitor(n) for n in ("Ada", "Bea", "Cy")]
        c1 = await desk.open(ada, 0, billing)
        await desk.accept(ann, c1, 10)
        await desk.say(ann, c1, 20)
        await desk.close(ann, c1, 100)
        c2 = await desk.open(bea, 200, tech)
        await desk.accept(bob, c2, 210)
        await desk.say(bob, c2, 220)
        await desk.transfer(bob, ann, c2, 300, 360)
        await desk.close(ann, c2, 400)
        c3 = await desk.open(cy, 500, tech)
        await desk.accept(bob, c3, 510)
        sam = await person(desk, "Sam", Role.SUPERVISOR)
        pat = await person(desk, "Pat", Role.ADMIN)
        yield World(desk, ann.id, bob.id, sam, pat, c1, c2, c3)
    finally:
        await db.dispose()


async def review(
    w: World,
    conversation_id: uuid.UUID,
    scores: list[Score],
    *,
    by: Agent | None = None,
    agent_id: uuid.UUID | None = None,
    comment: str | None = None,
) -> QualityReview:
    async with w.desk.db.write() as session:
        return await service.create_review(
            session,
            conversation_id=conversation_id,
            reviewer=by or w.sam,
            agent_id=agent_id,
            scores=scores,
            comment=comment,
            now=NOW,
        )


async def stored(w: World) -> int:
    async with w.desk.db.read() as session:
        return int(await session.scalar(select(func.count()).select_from(QualityReview)) or 0)


async def report(w: World, group_by: QualityGroupBy) -> service.Report:
    async with w.desk.db.read() as session:
        return await service.report(
            session, since=WEEK[0], until=WEEK[1], group_by=group_by, zone="UTC"
        )


class TestReview:
    async def test_default_agent_and_score(self, world: World) -> None:
        """Without agent_id the review is of the agent the chat was left with (Ann, who took
        it over and closed C2); greeting 5 (100 %, w1), empathy 3 (50 %, w2), accuracy 4 (75 %,
        w3), resolution yes (100 %, w3): 100 * (1 + 1 + 2.25 + 3) / 9 = 80.56."""
        row = await review(world, world.c2, FULL, comment="Good save")
        assert row.agent_id == world.ann
        assert row.reviewer_id == world.sam.id
        assert row.rubric_version == 1
        assert row.score == pytest.approx(725 / 9)
        assert row.comment == "Good save"
        assert row.conversation_closed_at == START + timedelta(seconds=400)

    async def test_an_earlier_holder_may_be_named(self, world: World) -> None:
        """Bob held C2 before the transfer: a review may be about him."""
        row = await review(world, world.c2, FULL, agent_id=world.bob)
        assert row.agent_id == world.bob

    async def test_refusals_store_nothing(self, world: World) -> None:
        """An agent who never held the chat, a chat still open, no such chat, a score off its
        scale, an unknown criterion, a missing one: each refused, nothing stored."""
        with pytest.raises(InvalidReview) as never:
            await review(world, world.c1, FULL, agent_id=world.bob)
        assert never.value.details["errors"] == [
            {"field": "body.agent_id", "problem": "this agent never held the conversation"}
        ]
        with pytest.raises(ConversationNotClosed) as still_open:
            await review(world, world.c3, FULL)
        assert still_open.value.details == {"state": "assigned"}
        with pytest.raises(ConversationNotFound):
            await review(world, uuid.uuid4(), FULL)
        with pytest.raises(InvalidReview) as off_scale:
            await review(world, world.c1, [*FULL[:3], Score("resolution", 2)])
        assert off_scale.value.details["errors"] == [
            {"field": "body.scores.3.value", "problem": "'resolution' is scored 0 (no) or 1 (yes)"}
        ]
        with pytest.raises(InvalidReview) as unknown:
            await review(world, world.c1, [*FULL, Score("tone", 3)])
        assert unknown.value.details["errors"][0]["field"] == "body.scores.4.key"
        with pytest.raises(InvalidReview) as missing:
            await review(world, world.c1, FULL[1:])
        assert missing.value.details["errors"] == [
            {
                "field": "body.scores",
                "problem": "every criterion needs a score (null for n/a); missing: greeting",
            }
        ]
        assert await stored(world) == 0

    async def test_one_review_per_reviewer(self, world: World) -> None:
        """A second review of the same chat by the same reviewer is refused (naming the first);
        another reviewer may review it too."""
        first = await review(world, world.c1, FULL)
        with pytest.raises(AlreadyReviewed) as again:
            await review(world, world.c1, FULL)
        assert again.value.details == {"review_id": first.id}
        await review(world, world.c1, FULL, by=world.pat)
        assert await stored(world) == 2


class TestRubricVersions:
    async def test_editing_the_rubric_leaves_past_scores_alone(self, world: World) -> None:
        """A review made under version 1 keeps its score and version when the rubric changes;
        a new review is scored against version 2; editing the old review still checks it
        against version 1."""
        old = await review(world, world.c1, FULL)
        changed = [
            Criterion("greeting", "Greeting", "", 5, Scale.YES_NO, None, allow_na=False),
            Criterion("tone", "Tone", "", 1, Scale.POINTS, 3, allow_na=False),
        ]
        async with world.desk.db.write() as session:
            version = await service.set_rubric(session, criteria=changed, by=world.pat.id, now=NOW)
        assert version.version == 2
        async with world.desk.db.write() as session:
            same = await service.set_rubric(session, criteria=changed, by=world.pat.id, now=NOW)
        assert same.version == 2  # the same criteria again: no new version

        async with world.desk.db.read() as session:
            kept = await session.get(QualityReview, old.id)
        assert kept is not None
        assert kept.rubric_version == 1
        assert kept.score == pytest.approx(725 / 9)

        new = await review(world, world.c2, [Score("greeting", 0), Score("tone", 3)])
        # greeting no (0 %, w5), tone 3 of 1-3 (100 %, w1): 100 * 1 / 6.
        assert new.rubric_version == 2
        assert new.score == pytest.approx(100 / 6)

        async with world.desk.db.write() as session:
            edited = await service.update_review(
                session,
                review_id=old.id,
                by=world.sam,
                scores=[*FULL[:3], Score("resolution", None)],
                comment=None,
                now=NOW,
            )
        # Still version 1: resolution n/a, so 100 * (1 + 1 + 2.25) / 6.
        assert edited.rubric_version == 1
        assert edited.score == pytest.approx(425 / 6)

    async def test_a_bad_rubric_changes_nothing(self, world: World) -> None:
        """A rubric breaking a rule is refused and version 1 stays in force."""
        bad = [DEFAULT_CRITERIA[0], DEFAULT_CRITERIA[0]]
        with pytest.raises(InvalidReview):
            async with world.desk.db.write() as session:
                await service.set_rubric(session, criteria=bad, by=None, now=NOW)
        async with world.desk.db.read() as session:
            current = await service.current_rubric(session, now=NOW)
        assert (current.version, current.criteria) == (1, DEFAULT_CRITERIA)


class TestAuthorRights:
    async def test_only_the_author_or_an_admin(self, world: World) -> None:
        """Another supervisor may neither change nor delete Sam's review; an admin may delete
        it."""
        other = await person(world.desk, "Sue", Role.SUPERVISOR)
        row = await review(world, world.c1, FULL)
        with pytest.raises(Forbidden):
            async with world.desk.db.write() as session:
                await service.update_review(
                    session, review_id=row.id, by=other, scores=FULL, comment="x", now=NOW
                )
        with pytest.raises(Forbidden):
            async with world.desk.db.write() as session:
                await service.delete_review(session, review_id=row.id, by=other)
        async with world.desk.db.write() as session:
            await service.delete_review(session, review_id=row.id, by=world.pat)
        assert await stored(world) == 0


class TestReport:
    async def test_per_agent_per_criterion_per_reviewer(self, world: World) -> None:
        """Ann: Sam's C1 review (80.56, as above) and Pat's C2 review (greeting 3 = 50 %,
        empathy n/a, accuracy 5 = 100 %, resolution no = 0 %: 100 * (0.5 + 3) / 7 = 50); mean
        (80.56 + 50) / 2 = 65.28. Bob: Sam's C2 review, all top marks, 100. Criteria per agent
        are the means of the percentages that were scored."""
        await review(world, world.c1, FULL)
        pat_scores = [
            Score("greeting", 3),
            Score("empathy", None),
            Score("accuracy", 5),
            Score("resolution", 0),
        ]
        await review(world, world.c2, pat_scores, by=world.pat)
        top = [
            Score("greeting", 5),
            Score("empathy", 5),
            Score("accuracy", 5),
            Score("resolution", 1),
        ]
        await review(world, world.c2, top, agent_id=world.bob)

        by_agent = await report(world, QualityGroupBy.AGENT)
        assert by_agent.rows == {
            str(world.ann): Line(
                2,
                2,
                65.28,
                {"accuracy": 87.5, "empathy": 50.0, "greeting": 75.0, "resolution": 50.0},
            ),
            str(world.bob): Line(
                1,
                1,
                100.0,
                {"accuracy": 100.0, "empathy": 100.0, "greeting": 100.0, "resolution": 100.0},
            ),
        }
        assert by_agent.names == {str(world.ann): "Ann", str(world.bob): "Bob"}
        # Every review once: (725/9 + 50 + 100) / 3 = 76.85.
        assert (by_agent.total.reviews, by_agent.total.average_score) == (3, 76.85)

        by_criterion = await report(world, QualityGroupBy.CRITERION)
        assert by_criterion.rows["empathy"] == Line(3, 2, 75.0, {})
        assert by_criterion.names["empathy"] == "Empathy"

        by_reviewer = await report(world, QualityGroupBy.REVIEWER)
        assert {k: (v.reviews, v.average_score) for k, v in by_reviewer.rows.items()} == {
            str(world.sam.id): (2, 90.28),
            str(world.pat.id): (1, 50.0),
        }

    async def test_range_is_over_the_close(self, world: World) -> None:
        """A review counts in the range its conversation closed in, not the day it was made."""
        await review(world, world.c1, FULL)
        async with world.desk.db.read() as session:
            later = await service.report(
                session,
                since=START + timedelta(days=1),
                until=START + timedelta(days=2),
                group_by=QualityGroupBy.AGENT,
                zone="UTC",
            )
        assert later.rows == {}
        assert later.total == Line(0, 0, None, {})


class TestPrivacy:
    async def test_redaction_empties_the_comments_and_keeps_the_scores(self, world: World) -> None:
        """A reviewer may quote the customer ("card ending 4242"): an erasure or an anonymising
        retention empties the overall and per-criterion comments; the marks and the score, which
        the quality report counts, stay."""
        quoting = [
            Score("greeting", 5),
            Score("empathy", 3, comment="She gave card ending 4242 twice"),
            Score("accuracy", 4, comment="Address 12 Rue X was right"),
            Score("resolution", 1),
        ]
        made = await review(world, world.c1, quoting, comment="Customer Ada, 12 Rue X")
        async with world.desk.db.write() as session:
            conversation = await session.get(Conversation, world.c1, with_for_update=True)
            assert conversation is not None
            await redact_conversation(session, conversation, now=NOW, cause={"by": "retention"})
        async with world.desk.db.read() as session:
            kept = await session.get(QualityReview, made.id)
            assert kept is not None
            assert kept.comment is None
            assert [s["comment"] for s in kept.scores] == [None, None, None, None]
            assert [s["value"] for s in kept.scores] == [5, 3, 4, 1]
            assert kept.score == pytest.approx(725 / 9)
        assert (await report(world, QualityGroupBy.AGENT)).total.reviews == 1
