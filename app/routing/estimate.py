"""Queue position and estimated wait: what a queued visitor is told while they wait.

Pure: no I/O, no clock, no randomness; `now` is passed in. Not wired yet: the routing service
is to load the queue (the queued conversations), the recent completed chats and the online
capacity for the chat's skill, call `queue_positions()` and `estimate_wait()`, and send the
result to the visitor each time the queue moves. It must not decide anything: routing order
lives in `routing.core`.
Model and its measured error: docs/routing.md#queue-position-and-estimated-wait.

The model. A queued chat at position `p` among the chats that compete for the same agents waits
for `k = p - free` slots to free up, where `free` is the number of free slots that online agents
with the skill have right now (`k <= 0`: a slot is free for it now, so the wait is zero). When
all `S` slots of those agents are busy and a chat takes `m` seconds on average, slots free at a
rate of about `S / m` per second, so the `k`-th free slot comes after about `k * m / S` seconds.
Treating slot releases as a Poisson process (a fair approximation once several chats run at
once, whatever the handle-time distribution), the wait is Erlang(k, S / m): the estimate is its
median and the range its 10th to 90th percentiles.

`m` is the mean handle time (assignment to close) of the chats with this skill that ended within
`EstimatePolicy.window` before `now`, shrunk towards a prior worth `prior_weight` chats so that
two or three outliers cannot swing it: the prior is the mean over every skill in the window, or
`default_handle_time` when nothing ended in the window at all.

No online capacity for the skill (`S == 0`) gives no estimate (`None`): nobody can say when an
agent will come online, and a made-up number is worse than "we'll get back to you".

Not modelled: chats of higher priority that arrive later and overtake, agents going offline or
joining, and visitors who leave the queue; the estimate is meant to be recomputed whenever the
queue or the capacity changes, which corrects for all three. An agent with several skills counts
in full for each, although their slots also serve the other skills' queues, so where many agents
share skills the estimate runs short (by a median 10 to 20 s for queued chats on the simulated
days of `tests/unit/routing/test_estimate.py`, where two agents of six have both skills).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist
from typing import Protocol
from uuid import UUID

# The range shown is the 10th to the 90th percentile: four visitors in five are served within it
# if slots keep freeing at the recent rate.
_LOW_QUANTILE = 0.10
_HIGH_QUANTILE = 0.90
_Z_LOW = NormalDist().inv_cdf(_LOW_QUANTILE)
_Z_HIGH = NormalDist().inv_cdf(_HIGH_QUANTILE)
_Z_MEDIAN = 0.0
# A chat holds its slot for at least this long. Guards the rate against a window of zero-length
# chats (visitors who left as the agent joined) or negative ones (clock steps between processes).
_MIN_HANDLE_SECONDS = 1.0


class QueuedChat(Protocol):
    """What positions need of a queued conversation; `routing.core.Waiting` has it."""

    @property
    def id(self) -> UUID: ...

    @property
    def skill_id(self) -> int | None: ...

    @property
    def priority(self) -> int: ...

    @property
    def queued_at(self) -> datetime: ...


@dataclass(frozen=True, slots=True)
class CompletedChat:
    """A chat that an agent finished: how long it held the agent's slot, and when it ended.

    `handle_seconds` runs from assignment to close (or to the transfer that freed the slot).
    """

    skill_id: int | None
    handle_seconds: float
    ended_at: datetime


@dataclass(frozen=True, slots=True)
class Capacity:
    """The slots of the agents who could take the chat right now.

    Counts only agents who are online and connected and have the chat's skill (every such agent
    for a chat with no skill). `total_slots` is the sum of their capacities; `free_slots` the sum
    of `max(0, capacity - load)`, so an agent above capacity frees nothing for others.
    """

    total_slots: int
    free_slots: int


@dataclass(frozen=True, slots=True)
class EstimatePolicy:
    """How the estimate reads history. Per deployment; the defaults suit a support desk."""

    # Used when no chat at all ended within `window`: a first morning, a new deployment. Six
    # minutes is a plausible mean for support chats; a desk should set its own.
    default_handle_time: timedelta = timedelta(minutes=6)
    # Recent enough to follow a change of pace during the day (harder questions at lunchtime),
    # long enough to hold a few dozen chats at a modest desk.
    window: timedelta = timedelta(hours=1)
    # Weight of the prior, in chats: with 3, a skill's first chat moves the mean by a quarter.
    prior_weight: float = 3.0

    def __post_init__(self) -> None:
        if (
            self.default_handle_time <= timedelta(0)
            or self.window <= timedelta(0)
            or not self.prior_weight > 0
        ):
            raise ValueError(f"estimate policy needs positive durations and weight: {self}")


DEFAULT_POLICY = EstimatePolicy()


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """An estimated wait in whole seconds, with a likely range around it.

    `seconds` is the median wait under the model; `low_seconds`..`high_seconds` holds about
    80 % of waits. `slots_ahead` is how many slots must free before this chat is served (0:
    one is free now). `samples` is how many recent chats of the skill the handle time rests on;
    0 means the figure comes from other skills or the configured default.
    """

    seconds: int
    low_seconds: int
    high_seconds: int
    slots_ahead: int
    handle_seconds: float
    samples: int


def queue_key(chat: QueuedChat) -> tuple[int, datetime, UUID]:
    """Queue order: highest priority first, then longest waiting, then id for determinism."""
    return (-chat.priority, chat.queued_at, chat.id)


def queue_positions(waiting: Iterable[QueuedChat]) -> dict[UUID, int]:
    """Each queued chat's 1-based position among the chats competing for the same agents.

    Two chats compete when they need the same skill, or when either needs none (an agent with
    any skill can take a chat with no skill). Position 1 is the next such chat to be served.

    Args:
        waiting: The queued conversations, in any order.

    Returns:
        Chat id to position. A chat's position counts itself and every competing chat ahead of
        it in queue order (priority, then queued time, then id). One sort and one pass.
    """
    ordered = sorted(waiting, key=queue_key)
    positions: dict[UUID, int] = {}
    ahead_by_skill: dict[int, int] = {}  # chats with that skill seen so far
    ahead_without_skill = 0
    for index, chat in enumerate(ordered):
        if chat.skill_id is None:
            positions[chat.id] = index + 1  # everyone ahead competes with a chat of no skill
            ahead_without_skill += 1
        else:
            same = ahead_by_skill.get(chat.skill_id, 0)
            positions[chat.id] = same + ahead_without_skill + 1
            ahead_by_skill[chat.skill_id] = same + 1
    return positions


def recent_handle_time(
    skill_id: int | None,
    completed: Sequence[CompletedChat],
    now: datetime,
    policy: EstimatePolicy = DEFAULT_POLICY,
) -> tuple[float, int]:
    """The mean handle time to expect for a chat of `skill_id`, and how many chats it rests on.

    Uses the chats that ended in `(now - window, now]` (later ones are ignored: the caller may
    pass a snapshot that runs ahead). For a chat with no skill every skill counts.

    Returns:
        (seconds, samples): the skill's mean shrunk towards the all-skill mean (or the default
        handle time when nothing ended in the window), never below one second, and the number
        of the skill's chats used.
    """
    since = now - policy.window
    recent = [c for c in completed if since < c.ended_at <= now]
    if recent:
        prior = math.fsum(c.handle_seconds for c in recent) / len(recent)
    else:
        prior = policy.default_handle_time.total_seconds()
    own = [c.handle_seconds for c in recent if skill_id is None or c.skill_id == skill_id]
    weight = policy.prior_weight
    mean = (math.fsum(own) + weight * prior) / (len(own) + weight)
    return max(_MIN_HANDLE_SECONDS, mean), len(own)


def _erlang_quantile(k: int, rate: float, z: float) -> float:
    """The quantile of Erlang(k, rate) for the standard normal score `z`.

    Erlang(k, rate) is chi-square with 2k degrees of freedom over 2 * rate. The Wilson-Hilferty
    cube approximation of chi-square is within 0.5 % of the exact 10th, 50th and 90th
    percentiles from k = 2 on; at k = 1 (one exponential) it is 1.3 % high on the median and
    7 % low on the 10th percentile, which is a few seconds. The cubed base stays positive for
    the scores used here (0.46 at k = 1 for the 10th percentile).
    """
    dof = 2 * k
    c = 2 / (9 * dof)
    return dof * (1 - c + z * math.sqrt(c)) ** 3 / (2 * rate)


def estimate_wait(
    position: int,
    skill_id: int | None,
    completed: Sequence[CompletedChat],
    capacity: Capacity,
    now: datetime,
    *,
    policy: EstimatePolicy = DEFAULT_POLICY,
) -> WaitEstimate | None:
    """Estimate how long the chat at `position` waits before a slot is free for it.

    Args:
        position: The chat's 1-based position from `queue_positions()`.
        skill_id: The chat's required skill, or None.
        completed: Chats that ended recently, of any skill (see `recent_handle_time()`).
        capacity: Slots of the agents who could take this chat, as of `now`.
        now: The moment the estimate is for.
        policy: How history is read.

    Returns:
        The estimate, or None when no online agent could take the chat (`total_slots <= 0`):
        tell the visitor they will get an answer rather than a time.

    Raises:
        ValueError: `position` is below 1 (a caller bug, not a visitor's doing).
    """
    return _estimate(position, capacity, *recent_handle_time(skill_id, completed, now, policy))


def _estimate(
    position: int, capacity: Capacity, handle_seconds: float, samples: int
) -> WaitEstimate | None:
    if position < 1:
        raise ValueError(f"queue positions start at 1, got {position}")
    if capacity.total_slots <= 0:
        return None
    slots_ahead = max(0, position - max(0, capacity.free_slots))
    if slots_ahead == 0:
        return WaitEstimate(0, 0, 0, 0, handle_seconds, samples)
    rate = capacity.total_slots / handle_seconds  # slots freed per second when all are busy

    def quantile(z: float) -> int:
        return round(_erlang_quantile(slots_ahead, rate, z))

    return WaitEstimate(
        seconds=quantile(_Z_MEDIAN),
        low_seconds=quantile(_Z_LOW),
        high_seconds=quantile(_Z_HIGH),
        slots_ahead=slots_ahead,
        handle_seconds=handle_seconds,
        samples=samples,
    )


def estimate_queue(
    waiting: Iterable[QueuedChat],
    completed: Sequence[CompletedChat],
    capacity_by_skill: Mapping[int | None, Capacity],
    now: datetime,
    *,
    policy: EstimatePolicy = DEFAULT_POLICY,
) -> dict[UUID, tuple[int, WaitEstimate | None]]:
    """Position and estimate for every queued chat: what to push when the queue moves.

    Args:
        waiting: The queued conversations.
        completed: Chats that ended recently, of any skill.
        capacity_by_skill: Capacity per skill id (None: every online agent); a skill missing
            from the mapping counts as having no capacity.
        now: The moment the estimates are for.
        policy: How history is read.

    Returns:
        Chat id to (position, estimate or None). Reads `completed` once per distinct skill, not
        once per chat, so a long queue costs a sort plus one pass.
    """
    chats = list(waiting)
    positions = queue_positions(chats)
    handle = {
        skill_id: recent_handle_time(skill_id, completed, now, policy)
        for skill_id in {chat.skill_id for chat in chats}
    }
    none = Capacity(total_slots=0, free_slots=0)
    return {
        chat.id: (
            positions[chat.id],
            _estimate(
                positions[chat.id],
                capacity_by_skill.get(chat.skill_id, none),
                *handle[chat.skill_id],
            ),
        )
        for chat in chats
    }
