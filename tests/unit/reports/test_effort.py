"""Unit tests for the customer effort score (CES) in `app.reports`: what one conversation's log
says about the effort question, and what a report counts and shows of the answers. Pure: no
loop, no database. Definitions: docs/metrics.md (CES)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from app.reports import measures as m
from app.reports.figures import Stored, Totals, line, tally
from app.reports.measures import Event, easy, measure

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANN = uuid.UUID(int=1)
VISITOR = uuid.UUID(int=9)
WINDOW = timedelta(hours=24)


def _log(*, asked: bool, answers: tuple[Any, ...] = (), rating: int | None = None) -> list[Event]:
    """A handled chat closed at 60 s, then its rating and effort answers, a minute apart."""
    agent = {"id": str(ANN), "name": "Ann"}
    closing: dict[str, Any] = {"by": "agent"}
    if asked:
        closing["effort_asked"] = True
    rows: list[tuple[str, str, dict[str, Any]]] = [
        (m.OPENED, m.SYSTEM, {"skill": None}),
        (m.MESSAGE, m.VISITOR, {"text": "hi"}),
        (m.QUEUED, m.SYSTEM, {"reason": "new"}),
        (m.ASSIGNED, m.SYSTEM, {"agent": agent, "epoch": 1}),
        (m.MESSAGE, m.AGENT, {"text": "hello"}),
        (m.CLOSED, m.AGENT, closing),
    ]
    if rating is not None:
        rows.append((m.RATED, m.VISITOR, {"score": rating, "comment": None}))
    rows += [(m.EFFORT_RATED, m.VISITOR, {"score": a}) for a in answers]
    return [
        Event(
            seq=i,
            kind=kind,
            sender_type=sender,
            sender_id=None,
            visibility=m.SEEN_BY_ALL,
            at=T0 + timedelta(seconds=10 * i),
            body=body,
        )
        for i, (kind, sender, body) in enumerate(rows, start=1)
    ]


ROW = Stored(
    opened_at=T0,
    closed_at=T0 + timedelta(minutes=10),
    skill_id=None,
    last_agent_id=ANN,
    offline=False,
    handled=True,
    answered=True,
    abandoned=False,
    queue_wait_ms=1_000,
    first_response_ms=2_000,
    handle_ms=60_000,
    transfers=0,
    escalations=0,
    fcr_candidate=True,
    next_contact_at=None,
    sla_met=True,
    csat=None,
    tags=(),
    effort_asked=True,
    effort=None,
)


class TestMeasure:
    def test_asked_and_answered_twice_counts_the_latest(self) -> None:
        """The close asked the question; the visitor answered 3, then changed it to 6."""
        got = measure(_log(asked=True, answers=(3, 6)), sla_target_seconds=60)
        assert got.effort_asked is True
        assert got.effort == 6

    def test_answered_without_a_rating_leaves_csat_alone(self) -> None:
        """An effort answer is not a CSAT rating: CSAT stays the rating's (or none)."""
        got = measure(_log(asked=True, answers=(2,)), sla_target_seconds=60)
        assert (got.csat, got.effort) == (None, 2)
        rated = measure(_log(asked=True, answers=(7,), rating=4), sla_target_seconds=60)
        assert (rated.csat, rated.effort) == (4, 7)

    def test_not_asked(self) -> None:
        """A close without `effort_asked` (the survey was off) did not ask; no answer."""
        got = measure(_log(asked=False), sla_target_seconds=60)
        assert (got.effort_asked, got.effort) == (False, None)

    def test_unreadable_answers_are_ignored(self) -> None:
        """A score that is not a whole number (true, text) gives no answer, not an error."""
        assert measure(_log(asked=True, answers=(True,)), sla_target_seconds=60).effort is None
        assert measure(_log(asked=True, answers=("7",)), sla_target_seconds=60).effort is None

    def test_easy_is_five_to_seven(self) -> None:
        """The top three boxes of seven: agree, mostly agree, strongly agree."""
        assert [easy(s) for s in range(1, 8)] == [False] * 4 + [True] * 3


class TestTally:
    def test_counts_by_their_definitions(self) -> None:
        """Of eight conversations: asked and answered 7, 5, 4 and 1 (two easy), asked and not
        answered, not asked, and two unhandled ones (asked, one answered 7) left out like CSAT."""
        rows = [
            replace(ROW, effort=7),
            replace(ROW, effort=5),
            replace(ROW, effort=4),
            replace(ROW, effort=1),
            ROW,
            replace(ROW, effort_asked=False),
            replace(ROW, handled=False, abandoned=True, effort=7),
            replace(ROW, handled=False, abandoned=True),
        ]
        got = tally(rows, window=WINDOW, now=T0 + timedelta(days=2))
        assert (got.effort_asked, got.effort_answered, got.effort_easy) == (5, 4, 2)

    def test_no_question_asked(self) -> None:
        """The survey off all along: nothing asked, nothing counted."""
        got = tally([replace(ROW, effort_asked=False)] * 3, window=WINDOW, now=T0)
        assert (got.effort_asked, got.effort_answered, got.effort_easy) == (0, 0, 0)


class TestLine:
    def test_score_and_response_rate(self) -> None:
        """CES = easy / answers, the response rate = answers / asked, to four decimals."""
        got = line(Totals(handled=9, effort_asked=6, effort_answered=3, effort_easy=2))
        assert (got.effort_asked, got.effort_responses, got.effort_easy) == (6, 3, 2)
        assert got.ces == 0.6667
        assert got.effort_response_rate == 0.5

    def test_asked_but_no_answers(self) -> None:
        """No answers: the score is null (not 0), the response rate 0."""
        got = line(Totals(handled=4, effort_asked=4))
        assert got.ces is None
        assert got.effort_response_rate == 0.0

    def test_never_asked(self) -> None:
        """The survey off: both null."""
        got = line(Totals(handled=4))
        assert (got.ces, got.effort_response_rate) == (None, None)
