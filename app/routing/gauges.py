"""The cluster-wide gauges of `/metrics`: queues per skill, open conversations, agents by status.

Read from the database at scrape time, so every node reports the same figures (aggregate them
with `max`: docs/metrics.md#prometheus-metrics). Bounded cost whatever the traffic: three
grouped reads in one read transaction (the open conversations through `ix_conversations_queue`,
the agents and the skills, both small tables), and at most one read per `CACHE_SECONDS` however
many scrapers ask. Must not write.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from sqlalchemy import func, select

from app.metrics import ClusterFigures, QueueFigures
from app.store.db import Database
from app.store.models import Agent, AgentStatus, Conversation, ConversationState, Skill

# Two scrapers (an HA pair of Prometheus servers) or a scrape every second share one read.
CACHE_SECONDS = 2.0
# Chats that need no particular skill are reported under this label value.
NO_SKILL = ""
_OPEN_STATES = (ConversationState.QUEUED, ConversationState.ASSIGNED, ConversationState.OFFLINE)


async def read(db: Database, *, now: datetime) -> ClusterFigures:
    """The figures as the database has them now."""
    started = time.perf_counter()
    async with db.read() as session:
        skills = {row.id: row.slug for row in await session.execute(select(Skill.id, Skill.slug))}
        rows = (
            await session.execute(
                select(
                    Conversation.state,
                    Conversation.skill_id,
                    func.count(),
                    func.min(Conversation.waiting_since),
                )
                .where(Conversation.state.in_(_OPEN_STATES))
                .group_by(Conversation.state, Conversation.skill_id)
            )
        ).all()
        conversations = {state.value: 0 for state in _OPEN_STATES}
        queued: dict[str, tuple[int, datetime | None]] = dict.fromkeys(skills.values(), (0, None))
        queued[NO_SKILL] = (0, None)
        for state, skill_id, count, oldest in rows:
            conversations[state.value] += count
            if state is not ConversationState.QUEUED:
                continue
            # A chat whose skill was deleted meanwhile waits with no particular skill.
            slug = skills.get(skill_id, NO_SKILL) if skill_id is not None else NO_SKILL
            depth, earliest = queued[slug]
            if oldest is not None and (earliest is None or oldest < earliest):
                earliest = oldest
            queued[slug] = (depth + count, earliest)
        agents = {status.value: 0 for status in AgentStatus}
        for status, count in (
            await session.execute(
                select(Agent.status, func.count()).where(Agent.is_active).group_by(Agent.status)
            )
        ).all():
            agents[status.value] = count
    queues = [
        QueueFigures(
            skill=slug,
            depth=depth,
            oldest_wait_seconds=0.0
            if earliest is None
            else max((now - earliest).total_seconds(), 0.0),
        )
        for slug, (depth, earliest) in sorted(queued.items())
    ]
    return ClusterFigures(
        queues=queues,
        conversations=conversations,
        agents=agents,
        read_seconds=time.perf_counter() - started,
    )


class ClusterGauges:
    """The latest figures, re-read at most every `CACHE_SECONDS`. `refresh()` before rendering,
    then `latest()` is what `metrics.ClusterCollector` yields."""

    def __init__(self, db: Database, *, cache_seconds: float = CACHE_SECONDS) -> None:
        self.db = db
        self._cache_seconds = cache_seconds
        self._figures: ClusterFigures | None = None
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()  # concurrent scrapes wait for one read, not start their own

    async def refresh(self, *, now: datetime) -> None:
        async with self._lock:
            if time.monotonic() - self._read_at < self._cache_seconds:
                return
            started = time.perf_counter()
            try:
                self._figures = await read(self.db, now=now)
            except Exception:  # any database failure: reported as up 0, never a 500
                self._figures = ClusterFigures(
                    queues=(),
                    conversations={},
                    agents={},
                    read_seconds=time.perf_counter() - started,
                    up=False,
                )
            self._read_at = time.monotonic()

    def latest(self) -> ClusterFigures | None:
        return self._figures
