"""Assignment decisions: which agent is offered a waiting conversation.

Pure: no I/O, no clock, no randomness; `now` is passed in. `routing.service` loads the snapshot
(the conversation and the candidate agents), calls `rank_agents()`, and claims the first agent
whose capacity still has room once locked. Rules: docs/architecture.md#routing.

This is the seam the full engine of step [2/10] (priorities, offers, escalation steps) grows from.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID


class Presence(enum.Enum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class Waiting:
    """A conversation in the queue."""

    id: UUID
    skill_id: int | None
    priority: int
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent as routing sees them at one instant."""

    id: UUID
    presence: Presence
    connected: bool
    capacity: int
    load: int
    proficiency: dict[int, int]  # skill id -> 1..5
    idle_since: datetime | None  # when they were last given a chat; None: never

    def can_take(self, chat: Waiting) -> bool:
        if self.presence is not Presence.ONLINE or not self.connected:
            return False
        if self.capacity <= 0 or self.load >= self.capacity:
            return False
        return chat.skill_id is None or chat.skill_id in self.proficiency

    def level(self, skill_id: int | None) -> int:
        return 0 if skill_id is None else self.proficiency.get(skill_id, 0)


def queue_order(waiting: Sequence[Waiting]) -> list[Waiting]:
    """Highest priority first, then longest waiting (ties broken by id, for determinism)."""
    return sorted(waiting, key=lambda w: (-w.priority, w.queued_at, w.id))


def rank_agents(chat: Waiting, agents: Sequence[Candidate], now: datetime) -> list[UUID]:
    """The agents that may take `chat`, best first.

    Best means: lowest load ratio, then highest proficiency in the chat's skill, then longest
    idle (never assigned counts as idle the longest), then id so equal agents rank the same
    way every time.
    """
    eligible = [a for a in agents if a.can_take(chat)]

    def key(agent: Candidate) -> tuple[float, int, float, UUID]:
        idle_seconds = (
            float("inf") if agent.idle_since is None else (now - agent.idle_since).total_seconds()
        )
        return (agent.load / agent.capacity, -agent.level(chat.skill_id), -idle_seconds, agent.id)

    return [a.id for a in sorted(eligible, key=key)]
