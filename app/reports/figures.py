"""Adding conversations' figures up into report lines: counts, percentiles and rates.

Pure: no I/O, no clock (`now` is an argument). `reports.repository` gets the totals of each group
either from SQL (PostgreSQL: `percentile_cont`, `count(*) FILTER`) or by calling `tally()` on the
stored rows (SQLite); `line()` turns totals into what the API shows. The two paths must agree to
the last digit: `tally()` counts exactly what the SQL counts, and `percentile_cont()` interpolates
as PostgreSQL does. Definitions: docs/metrics.md#reports.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from app.reports.measures import easy, fcr, percentile_cont, satisfied

# Rates are ratios for people to read; four decimals is a hundredth of a per cent.
RATE_DIGITS = 4
# Durations are shown in seconds to the millisecond, as they are stored.
SECONDS_DIGITS = 3
MEDIAN = 0.5
P90 = 0.9


class GroupBy(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    SKILL = "skill"
    AGENT = "agent"
    TAG = "tag"


@dataclass(frozen=True, slots=True)
class Stored:
    """What a report reads of one `conversation_metrics` row."""

    opened_at: datetime
    closed_at: datetime
    skill_id: int | None
    last_agent_id: uuid.UUID | None
    offline: bool
    handled: bool
    answered: bool
    abandoned: bool
    queue_wait_ms: int | None
    first_response_ms: int | None
    handle_ms: int | None
    transfers: int
    escalations: int
    fcr_candidate: bool
    next_contact_at: datetime | None
    sla_met: bool | None
    csat: int | None
    tags: tuple[str, ...]
    effort_asked: bool = False
    effort: int | None = None


@dataclass(frozen=True, slots=True)
class Totals:
    """A group's counts, and its percentiles in milliseconds (None: no value to take one of)."""

    volume: int = 0
    offline: int = 0
    queued: int = 0
    handled: int = 0
    answered: int = 0
    abandoned: int = 0
    transferred: int = 0
    escalated: int = 0
    fcr_decided: int = 0
    fcr_resolved: int = 0
    sla_counted: int = 0
    sla_met: int = 0
    rated: int = 0
    satisfied: int = 0
    effort_asked: int = 0
    effort_answered: int = 0
    effort_easy: int = 0
    wait_p50: float | None = None
    wait_p90: float | None = None
    response_p50: float | None = None
    response_p90: float | None = None
    handle_p50: float | None = None
    handle_p90: float | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """One row of a report as the API shows it (docs/metrics.md#reports)."""

    volume: int
    handled: int
    answered: int
    abandoned: int
    abandon_rate: float | None
    offline: int
    wait_median_s: float | None
    wait_p90_s: float | None
    first_response_median_s: float | None
    first_response_p90_s: float | None
    handle_median_s: float | None
    handle_p90_s: float | None
    transferred: int
    transfer_rate: float | None
    escalated: int
    escalation_rate: float | None
    fcr_decided: int
    fcr_resolved: int
    fcr_rate: float | None
    sla_counted: int
    sla_met: int
    sla_attainment: float | None
    csat_responses: int
    csat_satisfied: int
    csat: float | None
    csat_response_rate: float | None
    effort_asked: int
    effort_responses: int
    effort_easy: int
    ces: float | None
    effort_response_rate: float | None


def keys(row: Stored, group_by: GroupBy | None, zone: ZoneInfo) -> list[str | None]:
    """The groups a row counts in: one, except by tag (each of its tags; None when untagged).
    Days are `YYYY-MM-DD` and hours `YYYY-MM-DDTHH:00` of the opening time, in `zone`; skills
    and agents their id as text; None for no skill, no agent. `group_by` None: the one total."""
    if group_by is None:
        return [None]
    if group_by is GroupBy.DAY:
        return [row.opened_at.astimezone(zone).strftime("%Y-%m-%d")]
    if group_by is GroupBy.HOUR:
        return [row.opened_at.astimezone(zone).strftime("%Y-%m-%dT%H:00")]
    if group_by is GroupBy.SKILL:
        return [None if row.skill_id is None else str(row.skill_id)]
    if group_by is GroupBy.AGENT:
        return [None if row.last_agent_id is None else str(row.last_agent_id)]
    return list(row.tags) if row.tags else [None]


def tally(rows: Iterable[Stored], *, window: timedelta, now: datetime) -> Totals:
    """The totals of a group of rows (docs/metrics.md#reports), as the PostgreSQL query counts."""
    volume = offline = queued = handled = answered = abandoned = 0
    transferred = escalated = fcr_decided = fcr_resolved = 0
    sla_counted = sla_met = rated = happy = 0
    effort_asked = effort_answered = effort_easy = 0
    waits: list[int] = []
    responses: list[int] = []
    handles: list[int] = []
    for row in rows:
        volume += 1
        offline += row.offline
        queued += not row.offline
        handled += row.handled
        answered += row.answered
        abandoned += row.abandoned
        transferred += row.transfers > 0
        escalated += row.escalations > 0
        if row.handled:
            verdict = fcr(
                candidate=row.fcr_candidate,
                closed_at=row.closed_at,
                next_contact_at=row.next_contact_at,
                window=window,
                now=now,
            )
            fcr_decided += verdict is not None
            fcr_resolved += verdict is True
            if row.csat is not None:
                rated += 1
                happy += satisfied(row.csat)
            if row.effort_asked:
                effort_asked += 1
                if row.effort is not None:
                    effort_answered += 1
                    effort_easy += easy(row.effort)
        if row.sla_met is not None:
            sla_counted += 1
            sla_met += row.sla_met
        if row.handled and row.queue_wait_ms is not None:
            waits.append(row.queue_wait_ms)
        if row.first_response_ms is not None:
            responses.append(row.first_response_ms)
        if row.handle_ms is not None:
            handles.append(row.handle_ms)
    return Totals(
        volume=volume,
        offline=offline,
        queued=queued,
        handled=handled,
        answered=answered,
        abandoned=abandoned,
        transferred=transferred,
        escalated=escalated,
        fcr_decided=fcr_decided,
        fcr_resolved=fcr_resolved,
        sla_counted=sla_counted,
        sla_met=sla_met,
        rated=rated,
        satisfied=happy,
        effort_asked=effort_asked,
        effort_answered=effort_answered,
        effort_easy=effort_easy,
        wait_p50=percentile_cont(waits, MEDIAN),
        wait_p90=percentile_cont(waits, P90),
        response_p50=percentile_cont(responses, MEDIAN),
        response_p90=percentile_cont(responses, P90),
        handle_p50=percentile_cont(handles, MEDIAN),
        handle_p90=percentile_cont(handles, P90),
    )


def group(
    rows: Iterable[Stored],
    group_by: GroupBy | None,
    *,
    zone: ZoneInfo,
    window: timedelta,
    now: datetime,
) -> dict[str | None, Totals]:
    """Each group's totals (see `keys()`)."""
    members: dict[str | None, list[Stored]] = {}
    for row in rows:
        for key in keys(row, group_by, zone):
            members.setdefault(key, []).append(row)
    return {key: tally(found, window=window, now=now) for key, found in members.items()}


def _rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, RATE_DIGITS)


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else round(ms / 1000, SECONDS_DIGITS)


def line(t: Totals) -> Line:
    """What the API shows of a group's totals: rates of their stated denominators (None when it
    is 0), durations in seconds."""
    return Line(
        volume=t.volume,
        handled=t.handled,
        answered=t.answered,
        abandoned=t.abandoned,
        abandon_rate=_rate(t.abandoned, t.queued),
        offline=t.offline,
        wait_median_s=_seconds(t.wait_p50),
        wait_p90_s=_seconds(t.wait_p90),
        first_response_median_s=_seconds(t.response_p50),
        first_response_p90_s=_seconds(t.response_p90),
        handle_median_s=_seconds(t.handle_p50),
        handle_p90_s=_seconds(t.handle_p90),
        transferred=t.transferred,
        transfer_rate=_rate(t.transferred, t.handled),
        escalated=t.escalated,
        escalation_rate=_rate(t.escalated, t.volume),
        fcr_decided=t.fcr_decided,
        fcr_resolved=t.fcr_resolved,
        fcr_rate=_rate(t.fcr_resolved, t.fcr_decided),
        sla_counted=t.sla_counted,
        sla_met=t.sla_met,
        sla_attainment=_rate(t.sla_met, t.sla_counted),
        csat_responses=t.rated,
        csat_satisfied=t.satisfied,
        csat=_rate(t.satisfied, t.rated),
        csat_response_rate=_rate(t.rated, t.handled),
        effort_asked=t.effort_asked,
        effort_responses=t.effort_answered,
        effort_easy=t.effort_easy,
        ces=_rate(t.effort_easy, t.effort_answered),
        effort_response_rate=_rate(t.effort_answered, t.effort_asked),
    )
