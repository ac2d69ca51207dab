"""Routing policy: how offers are made and how the search widens as a chat waits.

Plain, immutable configuration that `routing.core.plan()` reads. Pure like the core: no I/O, no
clock, no randomness; the time a chat has waited is passed in. Loading a policy from settings
or the admin API, and validating what users type, belongs to the edges (`schemas.py`); the
checks here only refuse values that would make the planner's answer meaningless.
Rules: docs/architecture.md#routing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

# Proficiency levels run from 1 (can handle it) to 5 (expert), as agents' skills are stored.
MIN_LEVEL = 1
MAX_LEVEL = 5

# A returning visitor's chat goes first to the agent who served them last only while it is
# fresh: continuity is worth a short head start, but past half a minute in the queue the
# visitor is better served by fairness between agents (load ratio, then proficiency).
PREFERRED_AGENT_WAIT = timedelta(seconds=30)

# Each broadcast offer holds a slot of the agent's capacity until someone accepts, so a wide
# broadcast ties up a team; three gives a fast answer without idling more than two slots.
BROADCAST_SIZE = 3


class OfferMode(enum.Enum):
    """How many agents are offered a chat at once."""

    SINGLE = "single"  # one agent at a time; on decline or expiry the next one
    BROADCAST = "broadcast"  # the N best at once; the first to accept wins


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """Who may take a chat of a skill once it has waited at least `after`.

    A step states its whole target, as a TaskRouter workflow step does: the step in force alone
    decides eligibility, nothing carries over from earlier steps.

    Attributes:
        after: How long the chat must have waited for this step to be in force.
        min_proficiency: The lowest level accepted, in the chat's skill or a related one.
        related_skills: Skills that also qualify an agent (at `min_proficiency` or above).
        include_supervisors: Supervisors qualify whatever their skills.
        name: Shown in routing reasons and recorded with the step's conversation event.
    """

    after: timedelta
    min_proficiency: int = 1
    related_skills: frozenset[int] = frozenset()
    include_supervisors: bool = False
    name: str = ""
    # The stored step's id (None for steps not from the database, as in tests and DEFAULT_STEP).
    id: int | None = None

    def __post_init__(self) -> None:
        if self.after < timedelta(0):
            raise ValueError(f"escalation step {self.name!r} starts before the chat is queued")
        if not MIN_LEVEL <= self.min_proficiency <= MAX_LEVEL:
            raise ValueError(
                f"escalation step {self.name!r}: min_proficiency must be {MIN_LEVEL}..{MAX_LEVEL}"
            )

    def qualification(
        self, skill_id: int | None, proficiency: Mapping[int, int], is_supervisor: bool
    ) -> Qualification | None:
        """How an agent with `proficiency` qualifies for a chat of `skill_id`, if they do.

        By the chat's own skill at `min_proficiency`; failing that by the related skill they
        are best at (lowest id on a tie), at the same minimum; failing that as a supervisor
        when the step includes supervisors. A chat without a skill takes anyone, at level 0.
        """
        if skill_id is None:
            return Qualification(level=0)
        level = proficiency.get(skill_id)
        if level is not None and level >= self.min_proficiency:
            return Qualification(level=level)
        best: Qualification | None = None
        for related in sorted(self.related_skills):
            related_level = proficiency.get(related, 0)
            if related_level >= self.min_proficiency and (
                best is None or related_level > best.level
            ):
                best = Qualification(related_level, f"via related skill {related}")
        if best is None and self.include_supervisors and is_supervisor:
            return Qualification(level or 0, "as a supervisor")
        return best

    def falls_short(self, skill_id: int | None, proficiency: Mapping[int, int]) -> bool:
        """Whether an agent who does not qualify has the skill or a related one, too low."""
        return skill_id in proficiency or not self.related_skills.isdisjoint(proficiency)


@dataclass(frozen=True, slots=True)
class Qualification:
    """How an agent qualifies for a chat under an escalation step."""

    level: int  # the proficiency they are ranked by, in the skill that qualifies them
    via: str = ""  # empty when by the chat's own skill; otherwise how, for routing reasons


# In force until a skill's first configured step: the exact skill, at any level.
DEFAULT_STEP = EscalationStep(after=timedelta(0), min_proficiency=1, name="default")


@dataclass(frozen=True, slots=True)
class RoutingPolicy:
    """Everything a deployment may configure about choosing agents.

    Attributes:
        escalation: Per skill id, its escalation steps (any order; they are read by `after`).
        default_steps: The steps of every skill (and of chats without a skill) that has no
            entry in `escalation`.
        offer_mode: One agent at a time, or the `broadcast_size` best at once.
        broadcast_size: How many agents hold an offer for one chat in broadcast mode.
        preferred_agent_wait: How long a returning visitor's chat goes first to the agent
            who served them last; zero turns the preference off.
    """

    escalation: Mapping[int, tuple[EscalationStep, ...]] = field(default_factory=dict)
    default_steps: tuple[EscalationStep, ...] = ()
    offer_mode: OfferMode = OfferMode.SINGLE
    broadcast_size: int = BROADCAST_SIZE
    preferred_agent_wait: timedelta = PREFERRED_AGENT_WAIT

    def __post_init__(self) -> None:
        if self.broadcast_size < 1:
            raise ValueError("broadcast_size must be at least 1")
        if self.preferred_agent_wait < timedelta(0):
            raise ValueError("preferred_agent_wait must not be negative")

    @property
    def offers_per_chat(self) -> int:
        """How many agents hold an offer for one chat at a time."""
        return self.broadcast_size if self.offer_mode is OfferMode.BROADCAST else 1

    def steps_for(self, skill_id: int | None) -> tuple[EscalationStep, ...]:
        """The configured steps of a skill, earliest first.

        Steps with the same `after` keep their configured order, so the later one is in force.
        """
        steps = self.default_steps if skill_id is None else self.escalation.get(skill_id)
        if steps is None:
            steps = self.default_steps
        return tuple(sorted(steps, key=lambda step: step.after))

    def step_for(self, skill_id: int | None, waited: timedelta) -> EscalationStep:
        """The step in force for a chat of `skill_id` that has waited `waited`."""
        return step_in_force(self.steps_for(skill_id), waited)[1]


@dataclass(frozen=True, slots=True)
class WatchdogPolicy:
    """When an assigned chat whose customer awaits a reply is flagged, and what follows.

    Each threshold counts from when the customer's oldest unanswered message reached the agent;
    None switches that stage off.

    Attributes:
        alert_after: The agent is alerted.
        supervisors_after: The supervisors are alerted.
        requeue_after: The chat is taken from the agent and goes back to the front of the queue.
    """

    alert_after: timedelta | None = timedelta(minutes=2)
    supervisors_after: timedelta | None = timedelta(minutes=5)
    requeue_after: timedelta | None = None


def step_in_force(steps: Sequence[EscalationStep], waited: timedelta) -> tuple[int, EscalationStep]:
    """The last of `steps` (sorted by `after`) whose `after` has been reached, with its index.

    Before the first step, `DEFAULT_STEP` is in force, at index -1. A negative wait (the clocks
    of two nodes disagreeing about when the chat was queued) counts as no wait.
    """
    waited = max(waited, timedelta(0))
    index, in_force = -1, DEFAULT_STEP
    for position, step in enumerate(steps):
        if step.after > waited:
            break
        index, in_force = position, step
    return index, in_force
