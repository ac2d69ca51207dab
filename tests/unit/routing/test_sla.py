"""Unit tests for `app.routing.sla`: how a queue's longest wait for a first reply stands
against its target. Pure inputs, no loop, no database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.routing.sla import SlaState, SlaTarget, state

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
