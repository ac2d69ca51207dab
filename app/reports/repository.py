"""The conversation report's queries over `conversation_metrics` (docs/metrics.md#reports).

On PostgreSQL one aggregate query per report does the work in the database (`count(*) FILTER`,
`percentile_cont`, the buckets with `AT TIME ZONE`, tags through `jsonb_array_elements_text`),
on the `opened_at` index. On SQLite, which has neither percentiles nor time zones, the rows of
the range are read and added up by the pure `reports.figures.tally()`, which counts what the SQL
counts: tests/integration/test_reports.py holds both to the same hand-computed numbers.
Read-only; must not import FastAPI, Starlette or the bus.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Float,
    Interval,
    String,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.reports.figures import MEDIAN, P90, GroupBy, Stored, Totals, group
from app.reports.measures import EASY_FROM, SATISFIED_FROM
from app.store.models import Agent, ConversationMetrics, Skill

M = ConversationMetrics
# A handled conversation (an agent held it), and one transferred at least once: the figures
# the conversation report (`tally()` in Python, `_sql_totals()`) and the transfer report's
# `handled_counts()` share.
_HANDLED = M.handled
_TRANSFERRED = M.transfers > 0


@dataclass(frozen=True, slots=True)
class Named:
    """A group's display name and, for a skill, its SLA target percent."""

    name: str | None
    target_percent: int | None = None


async def totals(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    group_by: GroupBy | None,
    zone: str,
    window: timedelta,
    now: datetime,
    skill_id: int | None = None,
) -> dict[str | None, Totals]:
    """Each group's totals over the conversations opened in `[since, until)`, only those that
    arrived needing `skill_id` if given; `group_by` None: one group (key None), every
    conversation counted once."""
    where = [M.opened_at >= since, M.opened_at < until]
    if skill_id is not None:
        where.append(M.skill_id == skill_id)
    if session.get_bind().dialect.name == "postgresql":
        return await _sql_totals(
            session, where=where, group_by=group_by, zone=zone, window=window, now=now
        )
    rows = await session.execute(
        select(
            M.opened_at,
            M.closed_at,
            M.skill_id,
            M.last_agent_id,
            M.offline,
            M.handled,
            M.answered,
            M.abandoned,
            M.queue_wait_ms,
            M.first_response_ms,
            M.handle_ms,
            M.transfers,
            M.escalations,
            M.fcr_candidate,
            M.next_contact_at,
            M.sla_met,
            M.csat,
            M.tags,
            M.effort_asked,
            M.effort,
        ).where(*where)
    )
    stored = [
        Stored(
            opened_at=r.opened_at,
            closed_at=r.closed_at,
            skill_id=r.skill_id,
            last_agent_id=r.last_agent_id,
            offline=r.offline,
            handled=r.handled,
            answered=r.answered,
            abandoned=r.abandoned,
            queue_wait_ms=r.queue_wait_ms,
            first_response_ms=r.first_response_ms,
            handle_ms=r.handle_ms,
            transfers=r.transfers,
            escalations=r.escalations,
            fcr_candidate=r.fcr_candidate,
            next_contact_at=r.next_contact_at,
            sla_met=r.sla_met,
            csat=r.csat,
            tags=tuple(r.tags or ()),
            effort_asked=r.effort_asked,
            effort=r.effort,
        )
        for r in rows
    ]
    return group(stored, group_by, zone=ZoneInfo(zone), window=window, now=now)


@dataclass(frozen=True, slots=True)
class HandledCounts:
    """Handled and transferred conversations of one (arrival skill, last agent) pair."""

    skill_id: int | None
    last_agent_id: uuid.UUID | None
    handled: int
    transferred: int


async def handled_counts(
    session: AsyncSession, *, since: datetime, until: datetime
) -> list[HandledCounts]:
    """`handled` and `transferred` of the conversations opened in `[since, until)`, as the
    totals count them (`_HANDLED`, `_TRANSFERRED`), by arrival skill and last agent: what the
    transfer report needs of the conversation report, in one query without its percentiles
    (a fraction of the cost). Summing the pairs gives the total, by-skill and by-agent lines."""
    rows = await session.execute(
        select(
            M.skill_id,
            M.last_agent_id,
            _n(_HANDLED).label("handled"),
            _n(_TRANSFERRED).label("transferred"),
        )
        .where(M.opened_at >= since, M.opened_at < until)
        .group_by(M.skill_id, M.last_agent_id)
    )
    return [
        HandledCounts(r.skill_id, r.last_agent_id, int(r.handled), int(r.transferred)) for r in rows
    ]


def _n(condition: ColumnElement[bool] | QueryableAttribute[bool]) -> ColumnElement[int]:
    return func.count().filter(condition)


def _pct(
    fraction: float, value: ColumnElement[Any] | QueryableAttribute[Any]
) -> ColumnElement[float]:
    # NULLs are left out of an ordered-set aggregate: a CASE without ELSE selects the rows.
    return type_coerce(func.percentile_cont(fraction).within_group(value), Float)


async def _sql_totals(
    session: AsyncSession,
    *,
    where: list[ColumnElement[bool]],
    group_by: GroupBy | None,
    zone: str,
    window: timedelta,
    now: datetime,
) -> dict[str | None, Totals]:
    local = func.timezone(zone, M.opened_at)  # opened_at AT TIME ZONE zone: local wall time
    key: ColumnElement[Any]
    source: Any = M
    if group_by is None:
        key = literal(None, String)
    elif group_by is GroupBy.DAY:
        key = func.to_char(local, "YYYY-MM-DD")
    elif group_by is GroupBy.HOUR:
        key = func.to_char(local, 'YYYY-MM-DD"T"HH24:00')
    elif group_by is GroupBy.SKILL:
        key = cast(M.skill_id, String)
    elif group_by is GroupBy.AGENT:
        key = cast(M.last_agent_id, String)
    else:
        tags = func.jsonb_array_elements_text(M.tags).table_valued("value").lateral("tag")
        source = M.__table__.outerjoin(tags, true())
        key = tags.c.value
    repeated = and_(
        M.next_contact_at.is_not(None),
        M.next_contact_at <= M.closed_at + literal(window, Interval()),
    )
    passed = M.closed_at <= now - window
    query = (
        select(
            key.label("key"),
            func.count().label("volume"),
            _n(M.offline).label("offline"),
            _n(not_(M.offline)).label("queued"),
            _n(_HANDLED).label("handled"),
            _n(M.answered).label("answered"),
            _n(M.abandoned).label("abandoned"),
            _n(_TRANSFERRED).label("transferred"),
            _n(M.escalations > 0).label("escalated"),
            _n(and_(M.handled, or_(not_(M.fcr_candidate), repeated, passed))).label("fcr_decided"),
            _n(and_(M.handled, M.fcr_candidate, not_(repeated), passed)).label("fcr_resolved"),
            _n(M.sla_met.is_not(None)).label("sla_counted"),
            _n(M.sla_met.is_(True)).label("sla_met"),
            _n(and_(M.handled, M.csat.is_not(None))).label("rated"),
            _n(and_(M.handled, M.csat >= SATISFIED_FROM)).label("satisfied"),
            _n(and_(M.handled, M.effort_asked)).label("effort_asked"),
            _n(and_(M.handled, M.effort_asked, M.effort.is_not(None))).label("effort_answered"),
            _n(and_(M.handled, M.effort_asked, M.effort >= EASY_FROM)).label("effort_easy"),
            _pct(MEDIAN, case((M.handled, M.queue_wait_ms))).label("wait_p50"),
            _pct(P90, case((M.handled, M.queue_wait_ms))).label("wait_p90"),
            _pct(MEDIAN, M.first_response_ms).label("response_p50"),
            _pct(P90, M.first_response_ms).label("response_p90"),
            _pct(MEDIAN, M.handle_ms).label("handle_p50"),
            _pct(P90, M.handle_ms).label("handle_p90"),
        )
        .select_from(source)
        .where(*where)
        .group_by(key)
    )
    out: dict[str | None, Totals] = {}
    for row in await session.execute(query):
        values = row._asdict()
        group_key = values.pop("key")
        out[group_key] = Totals(**values)
    return out


async def names(
    session: AsyncSession, group_by: GroupBy | None, keys: Sequence[str | None]
) -> dict[str, Named]:
    """Display names of skill and agent groups (and skills' SLA target percent), by key."""
    present = [k for k in keys if k is not None]
    if group_by is GroupBy.SKILL and present:
        ids = [int(k) for k in present]
        rows = await session.execute(
            select(Skill.id, Skill.name, Skill.sla_target_percent).where(Skill.id.in_(ids))
        )
        return {str(r.id): Named(r.name, r.sla_target_percent) for r in rows}
    if group_by is GroupBy.AGENT and present:
        agent_ids = [uuid.UUID(k) for k in present]
        rows = await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(agent_ids)))
        return {str(r.id): Named(r.name) for r in rows}
    return {}
