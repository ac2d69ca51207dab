"""The transfer report's queries (docs/api.md#transfer-report; every figure is defined in
docs/metrics.md#transfer-report): how transfers of a period ended, how long receivers took to
accept, who declined or let them lapse, and how many made the customer repeat themselves.

Counts are one SQL aggregate per grouping on both backends (`count(*) FILTER` is SQLite's too).
Percentiles follow the conversation report: `percentile_cont` in SQL on PostgreSQL; on SQLite,
which has none, the durations are read and `reports.measures.percentile_cont()` (the same
formula and floating-point operations) interpolates them, so both give the same figures.
The per-conversation figures (transfer rate, ping-pong) are `handoff.pingpong` and the
conversation report's own query. Read-only; shares and sorting are left to the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    and_,
    case,
    func,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from app.reports.figures import MEDIAN, P90
from app.reports.measures import percentile_cont
from app.store.models import Agent, Conversation, Skill, Transfer, TransferKind, TransferState

T = Transfer
ENDED = (
    TransferState.ACCEPTED,
    TransferState.DECLINED,
    TransferState.EXPIRED,
    TransferState.CANCELLED,
)


@dataclass(frozen=True, slots=True)
class Outcomes:
    """Transfers of a group by how they ended (pending: not yet)."""

    accepted: int = 0
    declined: int = 0
    expired: int = 0
    cancelled: int = 0
    pending: int = 0


@dataclass(frozen=True, slots=True)
class AcceptTimes:
    """Median and 90th percentile of the time to accept, in milliseconds (None: no values)."""

    median_ms: float | None = None
    p90_ms: float | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """Accepted transfers of one group, and how many of them made the customer repeat."""

    transfers: int
    with_repeat: int


@dataclass(frozen=True, slots=True)
class SkillTally:
    skill_id: int | None
    skill_name: str | None
    tally: Tally
    outcomes: Outcomes = field(default_factory=Outcomes)
    accept: AcceptTimes = field(default_factory=AcceptTimes)


@dataclass(frozen=True, slots=True)
class AgentTally:
    agent_id: uuid.UUID | None  # None: the receiving agent's row was deleted since
    agent_name: str | None
    tally: Tally
    declined: int = 0
    expired: int = 0
    accept: AcceptTimes = field(default_factory=AcceptTimes)


@dataclass(frozen=True, slots=True)
class TransferReport:
    total: Tally
    by_kind: dict[TransferKind, int]
    by_skill: list[SkillTally]
    by_agent: list[AgentTally]
    outcomes: Outcomes = field(default_factory=Outcomes)
    accept: AcceptTimes = field(default_factory=AcceptTimes)


def _in_window(since: datetime, until: datetime) -> ColumnElement[bool]:
    """A transfer belongs to the window in which it ended (`decided_at`: accepted, declined,
    expired, cancelled); one still pending, to the window in which it was requested."""
    return or_(
        and_(T.state.in_(ENDED), T.decided_at >= since, T.decided_at < until),
        and_(T.state == TransferState.PENDING, T.created_at >= since, T.created_at < until),
    )


# The skill a transfer is reported under: the skill it was sent to (warm to a skill, cold),
# else the one the chat needed when it moved (`Transfer.skill_id`, set at the move). One that
# did not move the chat has no such skill: the chat's skill now stands in (the chat stayed,
# and needs it still unless a later transfer moved it to another team).
_SKILL = case(
    (T.state == TransferState.ACCEPTED, func.coalesce(T.to_skill_id, T.skill_id)),
    else_=func.coalesce(T.to_skill_id, Conversation.skill_id),
)

# Time to accept counts only transfers someone had to answer: an offer with an expiry (warm
# transfers, escalation offers). Cold transfers, and a supervisor's take of an escalated chat
# nobody had offered them, are accepted as they are made: their zero would only dilute it.
_ANSWERED = and_(T.state == TransferState.ACCEPTED, T.expires_at.is_not(None))


def _n(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.count().filter(condition)


def _counts() -> list[ColumnElement[Any]]:
    accepted = T.state == TransferState.ACCEPTED
    return [
        _n(accepted).label("accepted"),
        _n(T.state == TransferState.DECLINED).label("declined"),
        _n(T.state == TransferState.EXPIRED).label("expired"),
        _n(T.state == TransferState.CANCELLED).label("cancelled"),
        _n(T.state == TransferState.PENDING).label("pending"),
        _n(and_(accepted, T.repeat_seq.is_not(None))).label("with_repeat"),
    ]


def _outcomes(row: Any) -> Outcomes:
    return Outcomes(
        accepted=int(row.accepted),
        declined=int(row.declined),
        expired=int(row.expired),
        cancelled=int(row.cancelled),
        pending=int(row.pending),
    )


def _ms_sql() -> ColumnElement[Any]:
    # Whole milliseconds, rounded down, as the per-conversation figures are kept: the epoch of
    # an interval is an exact numeric on PostgreSQL, so this floors exactly as Python does.
    return func.floor(func.extract("epoch", T.decided_at - T.created_at) * 1000)


def _ms(created_at: datetime, decided_at: datetime) -> int:
    return (decided_at - created_at) // timedelta(milliseconds=1)


async def _accept_times(
    session: AsyncSession,
    key: ColumnElement[Any] | QueryableAttribute[Any] | None,
    where: ColumnElement[bool],
) -> dict[Any, AcceptTimes]:
    """Time to accept of the answered transfers matching `where`, per value of `key` (one
    group, key None, when `key` is None)."""
    selected = _ANSWERED & where
    if session.get_bind().dialect.name == "postgresql":
        ms = _ms_sql()
        columns: list[ColumnElement[Any]] = [
            type_coerce(func.percentile_cont(MEDIAN).within_group(ms), Float).label("p50"),
            type_coerce(func.percentile_cont(P90).within_group(ms), Float).label("p90"),
        ]
        query = select(*columns) if key is None else select(key.label("key"), *columns)
        query = query.select_from(T).outerjoin(Conversation, Conversation.id == T.conversation_id)
        query = query.where(selected)
        if key is not None:
            query = query.group_by(key)
        return {
            None if key is None else row.key: AcceptTimes(row.p50, row.p90)
            for row in await session.execute(query)
        }
    values = select(
        (T.id if key is None else key).label("key"), T.created_at, T.decided_at
    ).select_from(T)
    values = values.outerjoin(Conversation, Conversation.id == T.conversation_id)
    found: dict[Any, list[int]] = {}
    for row in await session.execute(values.where(selected)):
        found.setdefault(None if key is None else row.key, []).append(
            _ms(row.created_at, row.decided_at)
        )
    return {
        k: AcceptTimes(percentile_cont(ms, MEDIAN), percentile_cont(ms, P90))
        for k, ms in found.items()
    }


def _elements(session: AsyncSession, column: Any, name: str) -> Any:
    """The items of a JSON list column as rows of one `value` column, beside each transfer."""
    if session.get_bind().dialect.name == "postgresql":
        return func.jsonb_array_elements_text(column).table_valued("value").lateral(name)
    return func.json_each(column).table_valued("value").alias(name)


async def _declines_and_expiries(
    session: AsyncSession, where: ColumnElement[bool]
) -> tuple[dict[str, int], dict[str, int]]:
    """Per receiving agent (id as text): the transfers they declined, and the expired ones
    offered to them that they had not declined (they let it lapse)."""
    declined_by = _elements(session, T.declined_by, "declined")
    declines = await session.execute(
        select(declined_by.c.value, T.state, func.count())
        .select_from(T)
        .join(declined_by, true())
        .where(where)
        .group_by(declined_by.c.value, T.state)
    )
    declined: dict[str, int] = {}
    declined_in_expired: dict[str, int] = {}
    for agent, state, count in declines:
        declined[agent] = declined.get(agent, 0) + int(count)
        if state is TransferState.EXPIRED:
            declined_in_expired[agent] = int(count)
    receivers = _elements(session, T.receivers, "receiver")
    offered = await session.execute(
        select(receivers.c.value, func.count())
        .select_from(T)
        .join(receivers, true())
        .where(where, T.state == TransferState.EXPIRED)
        .group_by(receivers.c.value)
    )
    # Those who declined an expired transfer were among its receivers: not their lapse.
    expired = {
        agent: int(count) - declined_in_expired.get(agent, 0)
        for agent, count in offered
        if int(count) > declined_in_expired.get(agent, 0)
    }
    return declined, expired


def _agent_id(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:  # not written by Warmline: ids there are always UUIDs
        return None


async def transfer_report(
    session: AsyncSession, *, since: datetime, until: datetime
) -> TransferReport:
    """The transfers of `[since, until)` (see `_in_window`): by outcome, the time to accept,
    and the accepted ones (ended by `decided_at` in the range) per kind, per skill and per
    receiving agent (`accepted_by`), each with how many have a `repeat_seq` (the customer
    restated a fact after the move); per agent also their declines and expiries.

    Groups are returned in no particular order; every group's accepted transfers add up to
    `total`, and each transfer is in exactly one skill group.
    """
    where = _in_window(since, until)
    accepted = and_(where, T.state == TransferState.ACCEPTED)
    kinds = await session.execute(
        select(T.kind, func.count(), func.count(T.repeat_seq)).where(accepted).group_by(T.kind)
    )
    by_kind = dict.fromkeys(TransferKind, 0)
    for kind, count, _ in kinds:
        by_kind[kind] = int(count)
    total_row = (await session.execute(select(*_counts()).where(where))).one()
    skill_key = _SKILL.label("skill_id")
    skills = await session.execute(
        select(skill_key, Skill.name, *_counts())
        .select_from(T)
        .outerjoin(Conversation, Conversation.id == T.conversation_id)
        .outerjoin(Skill, Skill.id == _SKILL)
        .where(where)
        .group_by(skill_key, Skill.name)
    )
    skill_times = await _accept_times(session, _SKILL, where)
    agents = await session.execute(
        select(T.accepted_by, func.count(), func.count(T.repeat_seq))
        .where(accepted)
        .group_by(T.accepted_by)
    )
    agent_times = await _accept_times(session, T.accepted_by, where)
    declined, expired = await _declines_and_expiries(session, where)
    tallies: dict[uuid.UUID | None, Tally] = {
        agent_id: Tally(int(count), int(repeats)) for agent_id, count, repeats in agents
    }
    others = {_agent_id(a) for a in (*declined, *expired)} - {None}
    named = await _names(session, [a for a in {*tallies, *others} if a is not None])
    by_agent = [
        AgentTally(
            agent_id=agent_id,
            agent_name=named.get(agent_id) if agent_id else None,
            tally=tallies.get(agent_id, Tally(0, 0)),
            declined=declined.get(str(agent_id), 0) if agent_id else 0,
            expired=expired.get(str(agent_id), 0) if agent_id else 0,
            accept=agent_times.get(agent_id, AcceptTimes()),
        )
        for agent_id in {*tallies, *others}
    ]
    total = Tally(int(total_row.accepted), int(total_row.with_repeat))
    return TransferReport(
        total=total,
        by_kind=by_kind,
        by_skill=[
            SkillTally(
                row.skill_id,
                row.name,
                Tally(int(row.accepted), int(row.with_repeat)),
                _outcomes(row),
                skill_times.get(row.skill_id, AcceptTimes()),
            )
            for row in skills
        ],
        by_agent=by_agent,
        outcomes=_outcomes(total_row),
        accept=(await _accept_times(session, None, where)).get(None, AcceptTimes()),
    )


async def _names(session: AsyncSession, agent_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not agent_ids:
        return {}
    rows = await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(agent_ids)))
    return {row.id: row.name for row in rows}
