"""Unit tests for `app.routing.sla`: how a queue's longest wait for a first reply stands
against its target, where one chat stands, and the breach rule, which must agree with the
closing figures (`reports.measures`). Pure inputs, no loop, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.reports import measures as m
from app.reports.measures import Event
from app.routing.sla import (
    DEFAULT_TARGET_SECONDS,
    ChatSla,
    SlaState,
    SlaTarget,
    breached,
    chat,
    first_reply_wait,
    state,
    target_seconds,
)

TARGET = SlaTarget(seconds=60, percent=80)


class TestState:
    def test_nobody_waiting_is_ok(self) -> None:
        """An empty queue with every chat answered is within target."""
        assert state(None, TARGET) is SlaState.OK

    @pytest.mark.parametrize(
        ("waited", "expected"),
        [
            (0, SlaState.OK),
            (44.9, SlaState.OK),
            (45, SlaState.AT_RISK),
            (60, SlaState.AT_RISK),
            (60.001, SlaState.BREACHED),
            (3600, SlaState.BREACHED),
        ],
    )
    def test_thresholds(self, waited: float, expected: SlaState) -> None:
        """At risk from three quarters of the target on; breached once past it (the target
        itself is still met)."""
        assert state(timedelta(seconds=waited), TARGET) is expected

    def test_short_target(self) -> None:
        """A 5 s target is breached by a 6 s wait and at risk at 4 s."""
        short = SlaTarget(seconds=5)
        assert state(timedelta(seconds=6), short) is SlaState.BREACHED
        assert state(timedelta(seconds=4), short) is SlaState.AT_RISK
        assert state(timedelta(seconds=3), short) is SlaState.OK


T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
# Waits from 0 to 3 minutes in whole microseconds, as timestamps carry them.
WAITS = st.integers(min_value=0, max_value=180_000_000).map(lambda us: timedelta(microseconds=us))


class TestBreached:
    @pytest.mark.parametrize(
        ("waited", "expected"),
        [
            (timedelta(seconds=60), False),
            (timedelta(seconds=60, microseconds=999), False),  # 60 000 ms, rounded down
            (timedelta(seconds=60, milliseconds=1), True),
            (timedelta(0), False),
        ],
    )
    def test_whole_milliseconds_past_the_target(self, waited: timedelta, expected: bool) -> None:
        """A 60 s target is missed from 60.001 s on: the reports' whole milliseconds."""
        assert breached(waited, 60) is expected

    @given(
        asked=WAITS,
        target=st.integers(min_value=5, max_value=120),
        reply=st.one_of(st.none(), WAITS, st.integers(min_value=-2000, max_value=2000)),
        close=st.one_of(WAITS, st.integers(min_value=-2000, max_value=2000)),
    )
    def test_agrees_with_the_closing_figures(
        self,
        asked: timedelta,
        target: int,
        reply: timedelta | int | None,
        close: timedelta | int,
    ) -> None:
        """For any first message, reply (or none) and close, the detector's verdict at the
        close is the closing figures': breached exactly when `sla_met` is False. (An int is
        that many microseconds either side of the target, where the rules could part.)"""
        if isinstance(reply, int):
            reply = timedelta(seconds=target, microseconds=reply)
        if isinstance(close, int):
            close = timedelta(seconds=target, microseconds=close)
        opened_at = T0 + asked
        replied_at = None if reply is None else opened_at + reply
        closed_at = max(opened_at + close, replied_at or opened_at)
        log = [
            Event(1, m.OPENED, m.SYSTEM, None, "all", opened_at, {}),
            Event(2, m.MESSAGE, m.VISITOR, None, "all", opened_at, {}),
            Event(3, m.QUEUED, m.SYSTEM, None, "all", opened_at, {}),
        ]
        if replied_at is not None:
            log.append(Event(4, m.MESSAGE, m.AGENT, uuid.uuid4(), "all", replied_at, {}))
        log.append(Event(5, m.CLOSED, m.AGENT, None, "all", closed_at, {}))
        figures = m.measure(log, sla_target_seconds=target)
        wait = first_reply_wait(
            asked=opened_at, replied_at=replied_at, closed_at=closed_at, now=closed_at
        )
        assert breached(wait, target) is (figures.sla_met is False)


class TestFirstReplyWait:
    def test_stops_at_the_reply_then_the_close(self) -> None:
        """Running until the first reply; unanswered, until the close; else until now."""
        later = T0 + timedelta(minutes=5)
        assert first_reply_wait(
            asked=T0, replied_at=T0 + timedelta(seconds=7), closed_at=later, now=later
        ) == timedelta(seconds=7)
        assert first_reply_wait(
            asked=T0, replied_at=None, closed_at=T0 + timedelta(seconds=9), now=later
        ) == timedelta(seconds=9)
        assert first_reply_wait(asked=T0, replied_at=None, closed_at=None, now=later) == (
            timedelta(minutes=5)
        )

    def test_never_negative(self) -> None:
        """A clock a little behind the first message reads as no wait, not a negative one."""
        wait = first_reply_wait(asked=T0, replied_at=None, closed_at=None, now=T0 - timedelta(1))
        assert wait == timedelta(0)


class TestChat:
    @pytest.mark.parametrize(
        ("after", "expected"),
        [
            (0, SlaState.OK),
            (44.999, SlaState.OK),
            (45, SlaState.AT_RISK),
            (60, SlaState.AT_RISK),
            (60.001, SlaState.BREACHED),
        ],
    )
    def test_states_and_due_time(self, after: float, expected: SlaState) -> None:
        """Against 60 s: at risk from 45 s, breached once the target is missed; due at 60 s."""
        verdict = chat(T0, 60, now=T0 + timedelta(seconds=after))
        assert verdict == ChatSla(expected, 60, T0 + timedelta(seconds=60))

    def test_a_recorded_breach_stands(self) -> None:
        """Once recorded, the chat shows breached even if the clock reads less (another node's
        clock a little behind)."""
        verdict = chat(T0, 60, now=T0 + timedelta(seconds=10), breached_at=T0)
        assert verdict.state is SlaState.BREACHED


class TestTargetSeconds:
    def test_own_skill_default_and_deleted(self) -> None:
        """A chat's skill's target; 60 s without a skill or when its skill is gone."""
        assert target_seconds(3, {3: 20}) == 20
        assert target_seconds(None, {3: 20}) == DEFAULT_TARGET_SECONDS == 60
        assert target_seconds(9, {3: 20}) == DEFAULT_TARGET_SECONDS
