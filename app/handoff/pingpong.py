"""Ping-pong: transferred conversations that came back to an agent who had already held them
(docs/metrics.md#ping-pong), for the transfer report.

A conversation's holders are the agents its `conversation.assigned` events name, in `seq`
order, with consecutive assignments to the same agent merged into one stint (they dropped and
routing gave the chat back to them, nobody else in between). It ping-pongs when an agent has
two stints: someone else held it in between. Every way a chat changes hands makes a stint
(a transfer, a supervisor's take or take-over, a reassignment, routing after a re-queue): to
the customer each is another person. Only conversations the conversation report counts as
transferred are looked at, so the figure is a share of those.

One SQL query on both backends (window functions and JSON paths are SQLite's too), over the
conversations the conversation report counts (`conversation_metrics`, opened in the range)
and their logs. A conversation whose log was purged since is no longer found here, though its
figures still count in `transferred`. Read-only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import distinct, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import ConversationEvent, ConversationMetrics

ASSIGNED = "conversation.assigned"

E = ConversationEvent
M = ConversationMetrics


@dataclass(frozen=True, slots=True)
class Bounced:
    """A ping-pong conversation, with the groups the conversation report puts it in."""

    conversation_id: uuid.UUID
    skill_id: int | None  # the skill it arrived with
    last_agent_id: uuid.UUID | None


async def bounced(
    session: AsyncSession, *, since: datetime, until: datetime, skill_id: int | None = None
) -> list[Bounced]:
    """The ping-pong conversations among the transferred ones opened in `[since, until)`
    (closed: measured), only those that arrived needing `skill_id` if given."""
    where = [M.opened_at >= since, M.opened_at < until, M.transfers > 0]
    if skill_id is not None:
        where.append(M.skill_id == skill_id)
    agent = E.body["agent"]["id"].as_string()
    # The range's conversations as an IN list rather than a join: SQLite then reads only their
    # events through the (conversation_id, seq) index (a week of 20,000: 116 ms to 9 ms),
    # where with a join it scanned every assignment of the log; PostgreSQL plans both alike.
    holders = (
        select(
            E.conversation_id.label("conversation_id"),
            agent.label("agent"),
            func.lag(agent).over(partition_by=E.conversation_id, order_by=E.seq).label("before"),
        )
        .where(E.kind == ASSIGNED, E.conversation_id.in_(select(M.conversation_id).where(*where)))
        .subquery("holders")
    )
    stints = (
        select(holders.c.conversation_id, holders.c.agent)
        .where(or_(holders.c.before.is_(None), holders.c.before != holders.c.agent))
        .subquery("stints")
    )
    bounced_ids = (
        select(stints.c.conversation_id)
        .group_by(stints.c.conversation_id)
        .having(func.count() > func.count(distinct(stints.c.agent)))
        .subquery("bounced")
    )
    rows = await session.execute(
        select(M.conversation_id, M.skill_id, M.last_agent_id).join(
            bounced_ids, bounced_ids.c.conversation_id == M.conversation_id
        )
    )
    return [Bounced(r.conversation_id, r.skill_id, r.last_agent_id) for r in rows]
