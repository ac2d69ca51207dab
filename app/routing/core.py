"""Assignment decisions: which agents are offered which waiting conversations.

Pure: no I/O, no clock, no randomness; `now` is passed in. Two entry points:

- `plan()` decides a whole queue at once: given the waiting conversations, the agents and the
  `RoutingPolicy`, it returns a `Plan` of offers (`Decision`s) and of chats left waiting
  (`Deferral`s), each with its reasons. `routing.service.claim_agent()` plans one chat at a
  time and re-checks capacity under the chosen agent's lock: the plan is a proposal about a
  snapshot, not a claim.
- `rank_agents()` ranks the agents for one conversation (kept for tests and tools; the
  service no longer uses it).

Policy types (offer mode, escalation steps) live in `routing.policy`.
Rules: docs/architecture.md#routing.
"""

from __future__ import annotations

import enum
import heapq
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from app.routing.policy import EscalationStep, Qualification, RoutingPolicy, step_in_force


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
    # Agents who declined, or let an offer expire, for this chat: never offered it again.
    excluded: frozenset[UUID] = frozenset()
    # The agent who served this visitor last, tried first while the chat is fresh.
    preferred_agent: UUID | None = None
    # Agents holding a pending offer for this chat now.
    offered_to: frozenset[UUID] = frozenset()


@dataclass(frozen=True, slots=True)
class Candidate:
    """An agent as routing sees them at one instant."""

    id: UUID
    presence: Presence
    connected: bool
    capacity: int
    load: int  # active chats plus pending offers
    proficiency: dict[int, int]  # skill id -> 1..5
    idle_since: datetime | None  # when they were last given a chat; None: never
    is_supervisor: bool = False  # eligible for any skill once an escalation step says so

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


# --- the batch planner -------------------------------------------------------------------------


class PassReason(enum.Enum):
    """Why an agent was not offered a chat.

    Declared from the most lasting reason to the most passing one. An agent to whom several
    apply is reported under the first: offline before lacking the skill, lacking the skill
    before having declined the chat, and any of those before being at capacity.
    """

    OFFLINE = "offline"
    AWAY = "away"
    NOT_CONNECTED = "not_connected"  # online, but every socket has dropped
    LACKS_SKILL = "lacks_skill"  # neither the skill nor a related one the step allows
    BELOW_MIN_PROFICIENCY = "below_min_proficiency"  # has it, below the step's minimum
    EXCLUDED = "excluded"  # declined, or let an offer expire, for this chat
    ALREADY_OFFERED = "already_offered"  # holds a pending offer for this chat
    AT_CAPACITY = "at_capacity"  # load (counting this plan's offers) has reached capacity


@dataclass(frozen=True, slots=True)
class PassedOver:
    """The agents passed over for one reason, in id order."""

    reason: PassReason
    agent_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class Reasons:
    """Why a chat went to whom, or why it went to nobody.

    Every agent of the snapshot is in exactly one place: `considered` (the eligible agents
    with room at that point of the plan, the chosen ones included) or one group of
    `passed_over`.

    Attributes:
        considered: The eligible agents, in id order.
        passed_over: One group per reason that applied, in `PassReason` order.
        rule: What chose the winner ("lowest load ratio 1/4"), or why nobody was chosen.
    """

    considered: tuple[UUID, ...]
    passed_over: tuple[PassedOver, ...]
    rule: str

    def reason_for(self, agent_id: UUID) -> PassReason | None:
        """Why `agent_id` was passed over; None if they were considered (or are unknown)."""
        for group in self.passed_over:
            if agent_id in group.agent_ids:
                return group.reason
        return None


@dataclass(frozen=True, slots=True)
class Decision:
    """Offer `conversation_id` to `agent_ids` (one in single mode, up to N in broadcast)."""

    conversation_id: UUID
    agent_ids: tuple[UUID, ...]  # best first
    step: EscalationStep  # the escalation step in force when deciding
    reasons: Reasons


@dataclass(frozen=True, slots=True)
class Deferral:
    """`conversation_id` stays in the queue for now."""

    conversation_id: UUID
    step: EscalationStep
    reasons: Reasons


@dataclass(frozen=True, slots=True)
class Plan:
    """Every waiting chat exactly once: offered (`decisions`) or not (`deferred`), in queue
    order."""

    decisions: tuple[Decision, ...] = ()
    deferred: tuple[Deferral, ...] = ()


def plan(
    waiting: Sequence[Waiting],
    agents: Sequence[Candidate],
    policy: RoutingPolicy,
    now: datetime,
) -> Plan:
    """Decide who is offered which waiting chat. Pure: the same inputs, in any order, give the
    same plan.

    Chats are taken in `queue_order()`. For each, the escalation step in force (by how long it
    has waited) says who qualifies; of those with room who neither excluded themselves nor
    already hold an offer for it, the returning visitor's last agent is chosen while the chat
    is fresh, otherwise the best by load ratio, proficiency, idle time, then id. Every offer
    raises the agent's load, and pushes back their idle time, for the rest of the plan.

    Args:
        waiting: The queue. Ids are unique (a repeated id is decided once, first in queue
            order); `queued_at` is timezone-aware.
        agents: Every agent routing may consider, with unique ids. `load` must count pending
            offers as well as active chats: this plan's offers are added on top.
        policy: Offer mode, escalation steps and the returning-visitor window.
        now: The instant the snapshot was taken.

    Returns:
        Offers in queue order. A chat that already has as many pending offers as the mode
        allows (one in single mode) is deferred, never offered twice. In broadcast mode a chat
        is topped up to `broadcast_size` offers. Nothing is claimed: the caller must still take
        its locks and re-check capacity before assigning.
    """
    batch = _Batch(agents, policy, now)
    decisions: list[Decision] = []
    deferred: list[Deferral] = []
    seen: set[UUID] = set()
    for chat in queue_order(waiting):
        if chat.id in seen:
            continue
        seen.add(chat.id)
        outcome = batch.decide(chat)
        if isinstance(outcome, Decision):
            decisions.append(outcome)
        else:
            deferred.append(outcome)
    return Plan(decisions=tuple(decisions), deferred=tuple(deferred))


# An agent's rank for one chat, smallest best: load ratio, minus level, never assigned (0) or
# not (1), when last assigned, order of assignment within this plan, position in id order.
_RankKey = tuple[float, int, int, datetime, int, int]


@dataclass(slots=True, eq=False)
class _Pool:
    """The agents who qualify for chats of one skill under one escalation step.

    Working state of one `plan()` call: built on first use, then kept in step with the loads
    as the plan makes offers. Agents are positions in the id-sorted agent list.
    """

    members: frozenset[int]
    level: dict[int, int]  # the proficiency an agent is ranked by for these chats
    via: dict[int, str]  # how an agent qualifies, for agents who lack the exact skill
    skill_groups: tuple[PassedOver, ...]  # lacks skill / below minimum: fixed for the plan
    keys: dict[int, _RankKey] = field(default_factory=dict)
    room: set[int] = field(default_factory=set)
    # What `passed_over` is for a chat that excludes nobody; dropped when `room` shrinks.
    plain_passed: tuple[PassedOver, ...] | None = None


class _Batch:
    """The state one `plan()` call moves through: loads and idle times after each offer."""

    def __init__(self, agents: Sequence[Candidate], policy: RoutingPolicy, now: datetime) -> None:
        self.policy = policy
        self.now = now
        self.agents = sorted(agents, key=lambda a: a.id)
        self.ids = [a.id for a in self.agents]
        self.position = {agent_id: i for i, agent_id in enumerate(self.ids)}
        self.load = [a.load for a in self.agents]
        self.idle = [
            (0, now, 0) if a.idle_since is None else (1, a.idle_since, 0) for a in self.agents
        ]
        self.offers_made = 0
        self.pools: dict[tuple[int | None, int], _Pool] = {}
        self.pools_of: list[list[_Pool]] = [[] for _ in self.agents]
        self.steps: dict[int | None, tuple[EscalationStep, ...]] = {}
        by_reason: dict[PassReason, list[int]] = {}
        self.available: list[int] = []
        for i, agent in enumerate(self.agents):
            reason = _presence_reason(agent)
            if reason is None:
                self.available.append(i)
            else:
                by_reason.setdefault(reason, []).append(i)
        self.presence_groups = self._groups(by_reason)

    def decide(self, chat: Waiting) -> Decision | Deferral:
        """Offer `chat` to the best agents with room, or say why it waits; count the offers."""
        waited = self.now - chat.queued_at
        steps = self.steps.get(chat.skill_id)
        if steps is None:
            steps = self.steps[chat.skill_id] = self.policy.steps_for(chat.skill_id)
        index, step = step_in_force(steps, waited)
        pool = self._pool(chat.skill_id, index, step)
        excluded = self._members_among(pool, chat.excluded)
        offered = self._members_among(pool, chat.offered_to) - excluded
        eligible = pool.room - excluded - offered if excluded or offered else pool.room
        # Taken before this chat's offers change who has room.
        considered, passed = self._explain(pool, eligible, excluded, offered)
        wanted = self.policy.offers_per_chat - len(chat.offered_to)
        if wanted <= 0:
            noun = "offer" if len(chat.offered_to) == 1 else "offers"
            rule = f"awaiting replies to {len(chat.offered_to)} pending {noun}"
            return Deferral(chat.id, step, Reasons(considered, passed, rule))
        if not eligible:
            rule = f"no eligible agent with room at step {step.name!r}"
            return Deferral(chat.id, step, Reasons(considered, passed, rule))
        preferred = None
        if chat.preferred_agent is not None:
            preferred = self.position.get(chat.preferred_agent)
        if preferred in eligible and waited < self.policy.preferred_agent_wait:
            # First, and in broadcast mode alongside the best others: a solo offer would only
            # be topped up by the next plan anyway.
            others = eligible - {preferred}
            chosen = [preferred, *heapq.nsmallest(wanted - 1, others, key=pool.keys.__getitem__)]
            rule = "preferred: served this visitor last"
            if len(chosen) > 1:
                rule += f"; {len(chosen) - 1} more by rank"
        else:
            ranked = heapq.nsmallest(wanted + 1, eligible, key=pool.keys.__getitem__)
            chosen = ranked[:wanted]
            rule = self._rule(pool, chosen, ranked[wanted] if len(ranked) > wanted else None)
        if chosen[0] in pool.via:
            rule += f" ({pool.via[chosen[0]]} at step {step.name!r})"
        for i in chosen:
            self._offer(i)
        reasons = Reasons(considered, passed, rule)
        return Decision(chat.id, tuple(self.ids[i] for i in chosen), step, reasons)

    def _pool(self, skill_id: int | None, index: int, step: EscalationStep) -> _Pool:
        pool = self.pools.get((skill_id, index))
        if pool is not None:
            return pool
        level: dict[int, int] = {}
        via: dict[int, str] = {}
        left_out: dict[PassReason, list[int]] = {}
        for i in self.available:
            agent = self.agents[i]
            qualifies = _qualification(agent, skill_id, step)
            if isinstance(qualifies, PassReason):
                left_out.setdefault(qualifies, []).append(i)
            else:
                level[i] = qualifies.level
                if qualifies.via:
                    via[i] = qualifies.via
        pool = _Pool(frozenset(level), level, via, self._groups(left_out))
        for i in pool.members:
            pool.keys[i] = self._key(i, level[i])
            if self.load[i] < self.agents[i].capacity:
                pool.room.add(i)
            self.pools_of[i].append(pool)
        self.pools[(skill_id, index)] = pool
        return pool

    def _offer(self, i: int) -> None:
        """Count an offer to agent `i` for the rest of the plan."""
        self.load[i] += 1
        self.offers_made += 1
        # Offered now, and after every offer made earlier in this plan.
        self.idle[i] = (1, self.now, self.offers_made)
        full = self.load[i] >= self.agents[i].capacity
        for pool in self.pools_of[i]:
            pool.keys[i] = self._key(i, pool.level[i])
            if full:
                pool.room.discard(i)
                pool.plain_passed = None

    def _key(self, i: int, level: int) -> _RankKey:
        capacity = self.agents[i].capacity
        # Float division orders load ratios exactly: two different fractions with small
        # denominators are far further apart than a float's rounding, and equal ones round alike.
        ratio = self.load[i] / capacity if capacity > 0 else float("inf")
        never, since, order = self.idle[i]
        return (ratio, -level, never, since, order, i)

    def _members_among(self, pool: _Pool, agent_ids: frozenset[UUID]) -> frozenset[int]:
        if not agent_ids:
            return frozenset()
        found = (self.position.get(agent_id) for agent_id in agent_ids)
        return frozenset(i for i in found if i is not None and i in pool.members)

    def _explain(
        self, pool: _Pool, eligible: set[int], excluded: frozenset[int], offered: frozenset[int]
    ) -> tuple[tuple[UUID, ...], tuple[PassedOver, ...]]:
        """Who is considered for a chat and who is passed over why, at this point of the plan."""
        considered = tuple(self.ids[i] for i in sorted(eligible))
        if excluded or offered:
            return considered, self._passed(pool, excluded, offered)
        if pool.plain_passed is None:
            pool.plain_passed = self._passed(pool, excluded, offered)
        return considered, pool.plain_passed

    def _passed(
        self, pool: _Pool, excluded: frozenset[int], offered: frozenset[int]
    ) -> tuple[PassedOver, ...]:
        full = pool.members - pool.room - excluded - offered
        chat_groups = self._groups(
            {
                PassReason.EXCLUDED: sorted(excluded),
                PassReason.ALREADY_OFFERED: sorted(offered),
                PassReason.AT_CAPACITY: sorted(full),
            }
        )
        return self.presence_groups + pool.skill_groups + chat_groups

    def _groups(self, by_reason: dict[PassReason, list[int]]) -> tuple[PassedOver, ...]:
        return tuple(
            PassedOver(reason, tuple(self.ids[i] for i in by_reason[reason]))
            for reason in PassReason
            if by_reason.get(reason)
        )

    def _rule(self, pool: _Pool, chosen: Sequence[int], next_best: int | None) -> str:
        """Name the criterion that put the last chosen agent ahead of the next best."""
        last = chosen[-1]
        if len(chosen) > 1:
            prefix = f"broadcast to the best {len(chosen)}"
            if next_best is None:
                return f"{prefix}: every eligible agent"
            return f"{prefix}, the last of them by {self._criterion(pool, last, next_best)}"
        if next_best is None:
            return f"only eligible agent, load ratio {self._ratio(last)}"
        return self._criterion(pool, last, next_best)

    def _criterion(self, pool: _Pool, winner: int, other: int) -> str:
        won, lost = pool.keys[winner], pool.keys[other]
        if won[0] != lost[0]:
            return f"lowest load ratio {self._ratio(winner)}"
        if won[1] != lost[1]:
            return f"highest proficiency {pool.level[winner]} at load ratio {self._ratio(winner)}"
        if won[2] != lost[2]:
            return f"never assigned, at load ratio {self._ratio(winner)}"
        if won[3:5] != lost[3:5]:
            return f"longest idle since last assignment, at load ratio {self._ratio(winner)}"
        return f"lowest id among equals at load ratio {self._ratio(winner)}"

    def _ratio(self, i: int) -> str:
        return f"{self.load[i]}/{self.agents[i].capacity}"


def _presence_reason(agent: Candidate) -> PassReason | None:
    if agent.presence is Presence.OFFLINE:
        return PassReason.OFFLINE
    if agent.presence is Presence.AWAY:
        return PassReason.AWAY
    if not agent.connected:
        return PassReason.NOT_CONNECTED
    return None


def _qualification(
    agent: Candidate, skill_id: int | None, step: EscalationStep
) -> Qualification | PassReason:
    """How `agent` qualifies for a chat of `skill_id` under `step`, or why they do not."""
    qualification = step.qualification(skill_id, agent.proficiency, agent.is_supervisor)
    if qualification is not None:
        return qualification
    if step.falls_short(skill_id, agent.proficiency):
        return PassReason.BELOW_MIN_PROFICIENCY
    return PassReason.LACKS_SKILL
