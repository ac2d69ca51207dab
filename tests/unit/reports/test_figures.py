"""Unit tests for `app.reports.figures`: which groups a conversation counts in, what a group's
totals count, and the rates and seconds a report line shows. Pure: no loop, no database."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.reports.figures import GroupBy, Stored, Totals, group, keys, line, tally

T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # the night Paris moves to summer time
ANN = uuid.UUID(int=1)
UTC_ZONE = ZoneInfo("UTC")
WINDOW = timedelta(hours=24)

ROW = Stored(
    opened_at=T0,
    closed_at=T0 + timedelta(minutes=10),
    skill_id=2,
    last_agent_id=ANN,
    offline=False,
    handled=True,
    answered=True,
    abandoned=False,
    queue_wait_ms=4_000,
    first_response_ms=9_000,
    handle_ms=500_000,
    transfers=0,
    escalations=0,
    fcr_candidate=True,
    next_contact_at=None,
    sla_met=True,
    csat=5,
    tags=("billing", "vip"),
)


class TestKeys:
    def test_every_grouping(self) -> None:
        """Day and hour of opening in the zone; skill and agent ids as text; each tag."""
        assert keys(ROW, None, UTC_ZONE) == [None]
        assert keys(ROW, GroupBy.DAY, UTC_ZONE) == ["2026-03-29"]
        assert keys(ROW, GroupBy.HOUR, UTC_ZONE) == ["2026-03-29T00:00"]
        assert keys(ROW, GroupBy.HOUR, ZoneInfo("Europe/Paris")) == ["2026-03-29T01:00"]
        assert keys(ROW, GroupBy.HOUR, ZoneInfo("Asia/Kolkata")) == ["2026-03-29T06:00"]
        assert keys(ROW, GroupBy.SKILL, UTC_ZONE) == ["2"]
        assert keys(ROW, GroupBy.AGENT, UTC_ZONE) == [str(ANN)]
        assert keys(ROW, GroupBy.TAG, UTC_ZONE) == ["billing", "vip"]

    def test_missing_values_group_under_none(self) -> None:
        """No skill, no agent, no tag: the None group."""
        bare = replace(ROW, skill_id=None, last_agent_id=None, tags=())
        assert [keys(bare, g, UTC_ZONE) for g in (GroupBy.SKILL, GroupBy.AGENT, GroupBy.TAG)] == [
            [None],
            [None],
            [None],
        ]


class TestTally:
    def test_counts_by_their_definitions(self) -> None:
        """An abandoned chat's wait is left out of the waits; an offline one out of the queue;
        a pending FCR out of both FCR counts; an unhandled chat's rating out of CSAT."""
        abandoned = replace(
            ROW,
            handled=False,
            answered=False,
            abandoned=True,
            queue_wait_ms=90_000,
            first_response_ms=None,
            handle_ms=None,
            fcr_candidate=False,
            sla_met=False,
            csat=1,
            tags=(),
        )
        offline = replace(
            ROW, offline=True, queue_wait_ms=None, first_response_ms=None, sla_met=None, csat=3
        )
        pending = replace(
            ROW, closed_at=T0 + timedelta(days=1, hours=1), transfers=2, escalations=1
        )
        got = tally([ROW, abandoned, offline, pending], window=WINDOW, now=T0 + timedelta(days=2))
        assert got == Totals(
            volume=4,
            offline=1,
            queued=3,
            handled=3,
            answered=3,
            abandoned=1,
            transferred=1,
            escalated=1,
            fcr_decided=2,  # ROW and offline; `pending` closed 23 h ago, `abandoned` unhandled
            fcr_resolved=2,
            sla_counted=3,
            sla_met=2,
            rated=3,  # ROW 5, offline 3, pending 5; the abandoned one's 1 is not counted
            satisfied=2,
            wait_p50=4_000.0,
            wait_p90=4_000.0,
            response_p50=9_000.0,
            response_p90=9_000.0,
            handle_p50=500_000.0,
            handle_p90=500_000.0,
        )

    def test_group_by_tag_counts_a_row_in_each_tag(self) -> None:
        """Two tags, two groups, one conversation in each."""
        got = group([ROW], GroupBy.TAG, zone=UTC_ZONE, window=WINDOW, now=T0)
        assert {k: v.volume for k, v in got.items()} == {"billing": 1, "vip": 1}


class TestLine:
    def test_rates_and_seconds(self) -> None:
        """Rates of their denominators to four decimals; milliseconds to seconds."""
        got = line(
            Totals(
                volume=3,
                queued=3,
                handled=3,
                abandoned=1,
                transferred=2,
                sla_counted=3,
                sla_met=2,
                rated=3,
                satisfied=1,
                wait_p50=1_234.5678,
            )
        )
        assert got.abandon_rate == 0.3333
        assert got.transfer_rate == 0.6667
        assert got.sla_attainment == 0.6667
        assert got.csat == 0.3333
        assert got.csat_response_rate == 1.0
        assert got.wait_median_s == 1.235

    def test_empty_denominators_give_none(self) -> None:
        """No conversation to take a share of: None, not 0."""
        got = line(Totals())
        assert got.abandon_rate is None
        assert got.fcr_rate is None
        assert got.csat is None
        assert got.handle_p90_s is None
