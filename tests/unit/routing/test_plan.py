"""Unit tests for `app.routing.core.plan()` and `app.routing.policy`: who is offered which
waiting chat in one routing pass, and why. Pure inputs, no loop, no database.

Examples pin each rule and each reason an agent is passed over; Hypothesis checks the
invariants on random snapshots (against a deliberately naive restatement of the rules), and a
state machine runs chats through arrival, offers, replies, closing and time to show that no
chat starves while an agent who may take it has room.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from app.routing.core import (
    Candidate,
    Decision,
    Deferral,
    PassReason,
    Plan,
    Presence,
    Waiting,
    plan,
)
from app.routing.policy import (
    DEFAULT_STEP,
    EscalationStep,
    OfferMode,
    Qualification,
    RoutingPolicy,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=8)
BILLING = 1
SALES = 2
RETURNS = 3
PAYMENTS = 4
POLICY = RoutingPolicy()
BROADCAST = RoutingPolicy(offer_mode=OfferMode.BROADCAST, broadcast_size=2)


def uid(n: int) -> UUID:
    """A readable, ordered id: `uid(1) < uid(2)`."""
    return UUID(int=n)


def ids(ns: Iterable[int]) -> frozenset[UUID]:
    return frozenset(uid(n) for n in ns)


def agent(
    n: int,
    *,
    presence: Presence = Presence.ONLINE,
    connected: bool = True,
    capacity: int = 3,
    load: int = 0,
    skills: dict[int, int] | None = None,
    idle_since: datetime | None = T0,
    supervisor: bool = False,
) -> Candidate:
    return Candidate(
        id=uid(n),
        presence=presence,
        connected=connected,
        capacity=capacity,
        load=load,
        proficiency={} if skills is None else skills,
        idle_since=idle_since,
        is_supervisor=supervisor,
    )


def chat(
    n: int = 100,
    *,
    skill: int | None = None,
    priority: int = 0,
    waited: timedelta = timedelta(0),
    excluded: Iterable[int] = (),
    offered_to: Iterable[int] = (),
    preferred: int | None = None,
) -> Waiting:
    return Waiting(
        id=uid(n),
        skill_id=skill,
        priority=priority,
        queued_at=NOW - waited,
        excluded=ids(excluded),
        offered_to=ids(offered_to),
        preferred_agent=None if preferred is None else uid(preferred),
    )


def offers(result: Plan) -> list[tuple[int, tuple[int, ...]]]:
    """The plan's offers as readable numbers: `[(chat, (agent, ...)), ...]`."""
    return [(d.conversation_id.int, tuple(a.int for a in d.agent_ids)) for d in result.decisions]


def only(result: Plan) -> Decision:
    (decision,) = result.decisions
    return decision


def deferred(result: Plan) -> Deferral:
    (deferral,) = result.deferred
    return deferral


def steps_policy(skill: int, *steps: EscalationStep) -> RoutingPolicy:
    return RoutingPolicy(escalation={skill: steps})


SECOND = timedelta(seconds=1)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
LOWER = EscalationStep(after=MINUTE, min_proficiency=1, name="lower")
STRICT = EscalationStep(after=timedelta(0), min_proficiency=3, name="strict")
RELATED = EscalationStep(
    after=2 * MINUTE, min_proficiency=1, related_skills=frozenset({PAYMENTS}), name="related"
)
SUPERVISORS = EscalationStep(
    after=5 * MINUTE,
    min_proficiency=1,
    related_skills=frozenset({PAYMENTS}),
    include_supervisors=True,
    name="supervisors",
)
WORKFLOW = steps_policy(BILLING, STRICT, LOWER, RELATED, SUPERVISORS)


class TestPlanQueueOrder:
    def test_empty_queue_gives_empty_plan(self) -> None:
        """With nobody waiting, the plan offers nothing and defers nothing."""
        assert plan([], [agent(1)], POLICY, NOW) == Plan()

    def test_higher_priority_first_then_longest_waiting(self) -> None:
        """A high-priority chat gets a slot before an older normal one; among normal chats the
        one queued earliest goes first."""
        old_normal = chat(100, waited=10 * MINUTE)
        older_normal = chat(101, waited=20 * MINUTE)
        new_urgent = chat(102, priority=5)
        queue = [old_normal, older_normal, new_urgent]
        result = plan(queue, [agent(1, capacity=2)], POLICY, NOW)
        assert offers(result) == [(102, (1,)), (101, (1,))]
        assert deferred(result).conversation_id == uid(100)

    def test_full_tie_between_chats_is_broken_by_id(self) -> None:
        """Chats queued at the same instant with the same priority are served in id order, and
        the plan lists its offers in that order."""
        result = plan([chat(102), chat(100), chat(101)], [agent(1, capacity=2)], POLICY, NOW)
        assert offers(result) == [(100, (1,)), (101, (1,))]
        assert deferred(result).conversation_id == uid(102)

    def test_a_repeated_chat_is_decided_once(self) -> None:
        """A chat listed twice in the snapshot is still offered to one agent only."""
        result = plan([chat(100), chat(100)], [agent(1), agent(2)], POLICY, NOW)
        assert offers(result) == [(100, (1,))]
        assert result.deferred == ()


class TestPlanAgentOrder:
    def test_lower_load_ratio_wins(self) -> None:
        """Of two skilled agents, the one using the smaller share of their capacity is offered."""
        busy = agent(1, capacity=2, load=1, skills={BILLING: 5})
        lighter = agent(2, capacity=4, load=1, skills={BILLING: 1})
        decision = only(plan([chat(skill=BILLING)], [busy, lighter], POLICY, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule == "lowest load ratio 1/4"

    def test_equal_ratio_higher_proficiency_wins(self) -> None:
        """With the same load ratio, the agent more proficient in the chat's skill is offered."""
        novice = agent(1, capacity=2, load=1, skills={BILLING: 2}, idle_since=None)
        expert = agent(2, capacity=4, load=2, skills={BILLING: 5})
        decision = only(plan([chat(skill=BILLING)], [novice, expert], POLICY, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule == "highest proficiency 5 at load ratio 2/4"

    def test_equal_ratio_and_level_longest_idle_wins(self) -> None:
        """With the same ratio and level, the agent idle the longest is offered the chat."""
        recent = agent(1, skills={BILLING: 3}, idle_since=NOW - MINUTE)
        idle = agent(2, skills={BILLING: 3}, idle_since=NOW - 30 * MINUTE)
        decision = only(plan([chat(skill=BILLING)], [recent, idle], POLICY, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule.startswith("longest idle since last assignment")

    def test_never_assigned_counts_as_idlest(self) -> None:
        """An agent who has never had a chat goes before one idle for a very long time."""
        long_idle = agent(1, idle_since=NOW - timedelta(days=365))
        never = agent(2, idle_since=None)
        decision = only(plan([chat()], [long_idle, never], POLICY, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule == "never assigned, at load ratio 0/3"

    def test_full_tie_is_broken_by_id(self) -> None:
        """Agents equal in every respect are chosen in id order, so the choice is stable."""
        decision = only(plan([chat()], [agent(3), agent(2)], POLICY, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule == "lowest id among equals at load ratio 0/3"

    def test_a_lone_candidate_is_named_as_such(self) -> None:
        """When one agent can take the chat, the reason says so."""
        decision = only(plan([chat()], [agent(1, load=1)], POLICY, NOW))
        assert decision.reasons.rule == "only eligible agent, load ratio 1/3"


class TestPlanLoad:
    def test_each_offer_raises_load_for_later_chats(self) -> None:
        """An offer counts toward the agent's load for the rest of the pass, so chats spread."""
        small = agent(1, capacity=2)  # 0/2, then 1/2
        large = agent(2, capacity=4, load=1)  # 1/4
        result = plan([chat(100), chat(101)], [small, large], POLICY, NOW)
        assert offers(result) == [(100, (1,)), (101, (2,))]

    def test_never_offers_beyond_capacity(self) -> None:
        """Three chats and two free slots: two offers, and the third chat waits."""
        result = plan([chat(100), chat(101), chat(102)], [agent(1, capacity=2)], POLICY, NOW)
        assert offers(result) == [(100, (1,)), (101, (1,))]
        assert deferred(result).reasons.reason_for(uid(1)) is PassReason.AT_CAPACITY

    def test_agent_at_or_over_capacity_gets_nothing(self) -> None:
        """An agent whose load (chats plus pending offers) fills their capacity, or exceeds it
        after their capacity was lowered, is not offered a chat."""
        agents = [agent(1, capacity=2, load=2), agent(2, capacity=1, load=3)]
        assert plan([chat()], agents, POLICY, NOW).decisions == ()

    def test_an_offer_in_the_pass_ends_never_assigned(self) -> None:
        """An agent offered a chat earlier in the pass no longer counts as never assigned."""
        newcomer = agent(1, capacity=2, idle_since=None)
        veteran = agent(2, capacity=2, load=1, idle_since=T0)
        result = plan([chat(100), chat(101)], [newcomer, veteran], POLICY, NOW)
        # Chat 101 sees both at 1/2; the newcomer was given a chat just now, the veteran at T0.
        assert offers(result) == [(100, (1,)), (101, (2,))]


class TestPlanExclusions:
    def test_agent_who_declined_is_never_offered_the_chat_again(self) -> None:
        """An agent who declined or let an offer for a chat expire is skipped for that chat,
        and still takes the next one."""
        best = agent(1, idle_since=None)
        result = plan([chat(100, excluded=[1]), chat(101)], [best, agent(2)], POLICY, NOW)
        assert offers(result) == [(100, (2,)), (101, (1,))]
        assert result.decisions[0].reasons.reason_for(uid(1)) is PassReason.EXCLUDED

    def test_chat_excluded_by_everyone_waits(self) -> None:
        """When every eligible agent has declined the chat, it stays in the queue."""
        result = plan([chat(excluded=[1, 2])], [agent(1), agent(2)], POLICY, NOW)
        assert result.decisions == ()
        assert deferred(result).reasons.considered == ()

    def test_single_mode_never_makes_a_second_offer_for_a_chat(self) -> None:
        """In single mode a chat with an offer out waits for that agent's reply."""
        result = plan([chat(offered_to=[1])], [agent(1, load=1), agent(2)], POLICY, NOW)
        assert result.decisions == ()
        assert deferred(result).reasons.rule == "awaiting replies to 1 pending offer"

    def test_broadcast_tops_up_without_the_agents_already_offered(self) -> None:
        """In broadcast mode a chat short of offers gets more, never twice to the same agent."""
        agents = [agent(1, load=1, idle_since=None), agent(2), agent(3)]
        policy = replace(BROADCAST, broadcast_size=3)
        decision = only(plan([chat(offered_to=[1])], agents, policy, NOW))
        assert decision.agent_ids == (uid(2), uid(3))
        assert decision.reasons.reason_for(uid(1)) is PassReason.ALREADY_OFFERED

    def test_broadcast_chat_with_all_offers_out_waits(self) -> None:
        """A chat holding all its broadcast offers is not offered to anyone else."""
        result = plan([chat(offered_to=[1, 2])], [agent(1), agent(2), agent(3)], BROADCAST, NOW)
        assert result.decisions == ()
        assert deferred(result).reasons.rule == "awaiting replies to 2 pending offers"

    def test_agents_missing_from_the_snapshot_change_nothing(self) -> None:
        """Exclusions, offers and a last agent naming agents no longer there are ignored."""
        queue = [chat(100, excluded=[9]), chat(101, preferred=9)]
        result = plan(queue, [agent(1)], BROADCAST, NOW)
        assert offers(result) == [(100, (1,)), (101, (1,))]


class TestPlanPreferredAgent:
    def test_returning_visitor_goes_to_their_last_agent(self) -> None:
        """A fresh chat goes to the agent who served the visitor last, though busier."""
        last_agent = agent(1, load=2)
        free = agent(2, idle_since=None)
        decision = only(plan([chat(preferred=1)], [last_agent, free], POLICY, NOW))
        assert decision.agent_ids == (uid(1),)
        assert decision.reasons.rule == "preferred: served this visitor last"

    def test_preference_lapses_after_the_configured_wait(self) -> None:
        """Once the chat has waited `preferred_agent_wait` the normal order applies; with the
        window at zero the last agent gets no head start at all."""
        agents = [agent(1, load=2), agent(2)]
        stale = [chat(preferred=1, waited=POLICY.preferred_agent_wait)]
        assert offers(plan(stale, agents, POLICY, NOW)) == [(100, (2,))]
        off = RoutingPolicy(preferred_agent_wait=timedelta(0))
        assert offers(plan([chat(preferred=1)], agents, off, NOW)) == [(100, (2,))]

    def test_ineligible_preferred_agent_falls_back_to_normal_order(self) -> None:
        """If the last agent is full, away, unskilled or declined the chat, it goes to the best
        other agent at once."""
        agents = [
            agent(1, capacity=2, load=2, skills={BILLING: 5}),
            agent(2, presence=Presence.AWAY, skills={BILLING: 5}),
            agent(3, skills={SALES: 5}),
            agent(4, skills={BILLING: 5}),
            agent(5, capacity=9, skills={BILLING: 1}),
        ]
        queue = [chat(100 + n, skill=BILLING, preferred=n, excluded=[4]) for n in range(1, 5)]
        assert offers(plan(queue, agents, POLICY, NOW)) == [(100 + n, (5,)) for n in range(1, 5)]

    def test_broadcast_offers_the_preferred_agent_and_the_best_others(self) -> None:
        """In broadcast mode the last agent is offered first, alongside the best others."""
        agents = [agent(1, idle_since=None), agent(2), agent(3, load=2)]
        decision = only(plan([chat(preferred=3)], agents, BROADCAST, NOW))
        assert decision.agent_ids == (uid(3), uid(1))
        assert decision.reasons.rule == "preferred: served this visitor last; 1 more by rank"


class TestPlanEscalation:
    def test_default_step_needs_the_exact_skill(self) -> None:
        """Without configured steps, only agents with the chat's skill may take it, however
        long it waits; a chat that needs no skill takes anyone."""
        agents = [agent(1, skills={SALES: 5}, idle_since=None), agent(2, skills={BILLING: 1})]
        queue = [chat(100, skill=BILLING, waited=HOUR), chat(101, skill=None)]
        result = plan(queue, agents, POLICY, NOW)
        assert offers(result) == [(100, (2,)), (101, (1,))]
        assert [d.step for d in result.decisions] == [DEFAULT_STEP, DEFAULT_STEP]

    def test_minimum_proficiency_applies_until_a_lower_step(self) -> None:
        """A strict first step passes over a novice; after a minute the novice may take it."""
        novice = agent(1, skills={BILLING: 2})
        fresh = plan([chat(skill=BILLING)], [novice], WORKFLOW, NOW)
        assert deferred(fresh).reasons.reason_for(uid(1)) is PassReason.BELOW_MIN_PROFICIENCY
        assert deferred(fresh).step == STRICT
        later = only(plan([chat(skill=BILLING, waited=MINUTE)], [novice], WORKFLOW, NOW))
        assert later.agent_ids == (uid(1),)
        assert later.step == LOWER

    def test_related_skill_opens_up_at_its_step(self) -> None:
        """An agent with only a related skill is eligible once the step that adds it is in force."""
        payments = agent(1, skills={PAYMENTS: 4})
        early = plan([chat(skill=BILLING, waited=MINUTE)], [payments], WORKFLOW, NOW)
        assert deferred(early).reasons.reason_for(uid(1)) is PassReason.LACKS_SKILL
        assert deferred(early).step == LOWER  # a chat left waiting says its step, for the event
        late = only(plan([chat(skill=BILLING, waited=2 * MINUTE)], [payments], WORKFLOW, NOW))
        assert late.agent_ids == (uid(1),)
        assert late.reasons.rule.endswith(f"(via related skill {PAYMENTS} at step 'related')")

    def test_related_skill_agents_rank_by_their_level_in_it(self) -> None:
        """Agents eligible through a related skill are ranked by their level in that skill."""
        agents = [agent(1, skills={BILLING: 2}), agent(2, skills={PAYMENTS: 5})]
        decision = only(plan([chat(skill=BILLING, waited=3 * MINUTE)], agents, WORKFLOW, NOW))
        assert decision.agent_ids == (uid(2),)
        assert decision.reasons.rule.startswith("highest proficiency 5")

    def test_related_skill_below_the_minimum_does_not_qualify(self) -> None:
        """A related skill counts only at the step's minimum level."""
        step = replace(RELATED, min_proficiency=3)
        policy = steps_policy(BILLING, step)
        result = plan(
            [chat(skill=BILLING, waited=3 * MINUTE)], [agent(1, skills={PAYMENTS: 2})], policy, NOW
        )
        assert deferred(result).reasons.reason_for(uid(1)) is PassReason.BELOW_MIN_PROFICIENCY

    def test_supervisors_join_at_their_step(self) -> None:
        """A supervisor without the skill may take the chat once the step includes them; other
        agents without it still may not."""
        boss = agent(1, supervisor=True)
        other = agent(2, skills={SALES: 5}, idle_since=None)
        early = plan([chat(skill=BILLING, waited=4 * MINUTE)], [boss, other], WORKFLOW, NOW)
        assert deferred(early).reasons.reason_for(uid(1)) is PassReason.LACKS_SKILL
        queue = [chat(skill=BILLING, waited=5 * MINUTE)]
        late = only(plan(queue, [boss, other], WORKFLOW, NOW))
        assert late.agent_ids == (uid(1),)
        assert late.step == SUPERVISORS
        assert late.reasons.rule.endswith("(as a supervisor at step 'supervisors')")
        assert late.reasons.reason_for(uid(2)) is PassReason.LACKS_SKILL

    def test_step_in_force_is_the_last_reached_whatever_the_given_order(self) -> None:
        """Steps may be configured in any order; the latest one reached is in force, and the
        default step before the first."""
        policy = steps_policy(BILLING, SUPERVISORS, LOWER, RELATED)
        queue = [chat(100, skill=BILLING, waited=150 * SECOND), chat(101, skill=BILLING)]
        result = plan(queue, [agent(1, skills={BILLING: 1})], policy, NOW)
        assert [d.step for d in result.decisions] == [RELATED, DEFAULT_STEP]

    def test_chat_queued_in_the_future_counts_as_not_waited(self) -> None:
        """A queue time after `now` (clocks of two nodes disagreeing) is treated as no wait."""
        queue = [chat(skill=BILLING, waited=-HOUR)]
        result = plan(queue, [agent(1, skills={BILLING: 5})], WORKFLOW, NOW)
        assert only(result).step == STRICT

    def test_default_steps_apply_to_skills_without_their_own(self) -> None:
        """Skills with no workflow of their own follow the policy's default steps."""
        policy = RoutingPolicy(escalation={SALES: (STRICT,)}, default_steps=(SUPERVISORS,))
        boss = agent(1, supervisor=True)
        decision = only(plan([chat(skill=RETURNS, waited=HOUR)], [boss], policy, NOW))
        assert decision.step == SUPERVISORS


class TestPlanBroadcast:
    def test_broadcast_offers_the_n_best(self) -> None:
        """In broadcast mode the N best eligible agents are offered the chat at once."""
        agents = [agent(1, load=2), agent(2, load=1), agent(3)]
        decision = only(plan([chat()], agents, BROADCAST, NOW))
        assert decision.agent_ids == (uid(3), uid(2))
        assert (
            decision.reasons.rule
            == "broadcast to the best 2, the last of them by lowest load ratio 1/3"
        )

    def test_broadcast_with_fewer_eligible_offers_them_all(self) -> None:
        """With fewer eligible agents than N, all of them are offered the chat."""
        agents = [agent(1), agent(2), agent(3, presence=Presence.OFFLINE)]
        decision = only(plan([chat()], agents, replace(BROADCAST, broadcast_size=3), NOW))
        assert decision.agent_ids == (uid(1), uid(2))
        assert decision.reasons.rule == "broadcast to the best 2: every eligible agent"

    def test_every_broadcast_offer_counts_toward_load(self) -> None:
        """Each agent offered a broadcast chat carries it in their load for later chats."""
        agents = [agent(1, capacity=1), agent(2, capacity=1), agent(3, capacity=2)]
        result = plan([chat(100), chat(101)], agents, BROADCAST, NOW)
        assert offers(result) == [(100, (1, 2)), (101, (3,))]


class TestPlanReasons:
    def test_each_unavailable_agent_is_passed_over_with_its_reason(self) -> None:
        """Offline, away, disconnected, full and zero-capacity agents are each named as such."""
        agents = [
            agent(1, presence=Presence.OFFLINE, connected=False),
            agent(2, presence=Presence.AWAY),
            agent(3, connected=False),
            agent(4, capacity=1, load=1),
            agent(5, capacity=0),
            agent(6),
        ]
        reasons = only(plan([chat()], agents, POLICY, NOW)).reasons
        assert [reasons.reason_for(uid(n)) for n in range(1, 7)] == [
            PassReason.OFFLINE,
            PassReason.AWAY,
            PassReason.NOT_CONNECTED,
            PassReason.AT_CAPACITY,
            PassReason.AT_CAPACITY,
            None,
        ]
        assert reasons.considered == (uid(6),)

    def test_skill_reasons_distinguish_missing_from_too_low(self) -> None:
        """An agent without the skill lacks it; one who has it below the minimum is too low."""
        agents = [
            agent(1, skills={SALES: 5}),
            agent(2, skills={BILLING: 2}),
            agent(3, skills={BILLING: 4}),
        ]
        reasons = only(plan([chat(skill=BILLING)], agents, WORKFLOW, NOW)).reasons
        assert reasons.reason_for(uid(1)) is PassReason.LACKS_SKILL
        assert reasons.reason_for(uid(2)) is PassReason.BELOW_MIN_PROFICIENCY
        assert reasons.considered == (uid(3),)

    def test_groups_come_in_reason_order_with_ids_sorted(self) -> None:
        """Passed-over agents are grouped by reason, most lasting first, ids in order."""
        agents = [
            agent(4, capacity=0),
            agent(3, presence=Presence.OFFLINE),
            agent(2, capacity=0),
            agent(1),
        ]
        reasons = deferred(plan([chat(excluded=[1])], agents, POLICY, NOW)).reasons
        assert [(g.reason, g.agent_ids) for g in reasons.passed_over] == [
            (PassReason.OFFLINE, (uid(3),)),
            (PassReason.EXCLUDED, (uid(1),)),
            (PassReason.AT_CAPACITY, (uid(2), uid(4))),
        ]

    def test_the_most_lasting_reason_is_reported(self) -> None:
        """An agent to whom several reasons apply is reported under the most lasting: offline
        before unskilled before declined before full."""
        agents = [
            agent(1, presence=Presence.OFFLINE, capacity=0),
            agent(2, capacity=0),
            agent(3, capacity=0, skills={BILLING: 1}),
        ]
        queue = [chat(skill=BILLING, excluded=[1, 2, 3])]
        reasons = deferred(plan(queue, agents, POLICY, NOW)).reasons
        assert [reasons.reason_for(uid(n)) for n in (1, 2, 3)] == [
            PassReason.OFFLINE,
            PassReason.LACKS_SKILL,
            PassReason.EXCLUDED,
        ]

    def test_reasons_are_taken_before_the_chats_own_offer(self) -> None:
        """The chosen agent is among the considered, and is not reported full by their offer;
        an agent not in the snapshot has no reason."""
        reasons = only(plan([chat()], [agent(1, capacity=1)], POLICY, NOW)).reasons
        assert reasons.considered == (uid(1),)
        assert reasons.passed_over == ()
        assert reasons.reason_for(uid(9)) is None

    def test_agent_filled_by_an_earlier_chat_is_reported_at_capacity(self) -> None:
        """A later chat sees the agent whom an earlier offer in the pass filled as at capacity."""
        result = plan([chat(100), chat(101)], [agent(1, capacity=1)], POLICY, NOW)
        assert deferred(result).reasons.reason_for(uid(1)) is PassReason.AT_CAPACITY
        assert deferred(result).reasons.rule == "no eligible agent with room at step 'default'"


class TestEscalationStep:
    def test_meaningless_steps_are_refused(self) -> None:
        """A step cannot start before the chat is queued, nor ask for a level off the 1-5
        scale."""
        with pytest.raises(ValueError, match="before the chat is queued"):
            EscalationStep(after=-MINUTE)
        for level in (0, 6):
            with pytest.raises(ValueError, match="min_proficiency"):
                EscalationStep(after=MINUTE, min_proficiency=level)

    def test_exact_skill_at_minimum_qualifies_at_its_level(self) -> None:
        """An agent with the chat's skill at the minimum qualifies, ranked by that level."""
        assert STRICT.qualification(BILLING, {BILLING: 3}, False) == Qualification(3)

    def test_best_related_skill_wins_lowest_id_on_tie(self) -> None:
        """Of several related skills, the highest level counts; the lowest skill id on a tie."""
        step = EscalationStep(after=MINUTE, related_skills=frozenset({SALES, RETURNS, PAYMENTS}))
        proficiency = {PAYMENTS: 4, RETURNS: 4, SALES: 2}
        assert step.qualification(BILLING, proficiency, False) == Qualification(
            4, f"via related skill {RETURNS}"
        )

    def test_supervisors_rank_by_the_skill_that_qualifies_them(self) -> None:
        """A supervisor with a related skill qualifies through it, at its level; one who
        qualifies only as a supervisor is ranked by their level in the chat's skill."""
        related = SUPERVISORS.qualification(BILLING, {PAYMENTS: 2}, True)
        assert related == Qualification(2, f"via related skill {PAYMENTS}")
        strict = replace(SUPERVISORS, min_proficiency=4)
        assert strict.qualification(BILLING, {BILLING: 2}, True) == Qualification(
            2, "as a supervisor"
        )
        assert strict.qualification(BILLING, {}, True) == Qualification(0, "as a supervisor")

    def test_falls_short_only_with_the_skill_or_a_related_one(self) -> None:
        """Too low means having the skill or a related one; otherwise the skill is missing."""
        assert RELATED.falls_short(BILLING, {BILLING: 1})
        assert RELATED.falls_short(BILLING, {PAYMENTS: 1})
        assert not RELATED.falls_short(BILLING, {SALES: 5})


class TestRoutingPolicy:
    def test_defaults(self) -> None:
        """By default: one agent at a time, no workflow, a short returning-visitor window;
        broadcast mode has up to `broadcast_size` offers out per chat."""
        assert POLICY.offer_mode is OfferMode.SINGLE
        assert POLICY.offers_per_chat == 1
        assert POLICY.steps_for(BILLING) == ()
        assert POLICY.step_for(BILLING, HOUR) == DEFAULT_STEP
        assert POLICY.preferred_agent_wait > timedelta(0)
        assert BROADCAST.offers_per_chat == 2

    def test_meaningless_policies_are_refused(self) -> None:
        """A broadcast to nobody and a negative returning-visitor window are refused."""
        with pytest.raises(ValueError, match="broadcast_size"):
            RoutingPolicy(broadcast_size=0)
        with pytest.raises(ValueError, match="preferred_agent_wait"):
            RoutingPolicy(preferred_agent_wait=-MINUTE)

    def test_steps_are_read_in_time_order(self) -> None:
        """However they are configured, a skill's steps are read earliest first."""
        policy = steps_policy(BILLING, SUPERVISORS, STRICT, RELATED)
        assert policy.steps_for(BILLING) == (STRICT, RELATED, SUPERVISORS)
        assert policy.step_for(BILLING, 2 * MINUTE - timedelta(seconds=1)) == STRICT
        assert policy.step_for(BILLING, 2 * MINUTE) == RELATED

    def test_chat_without_skill_uses_default_steps(self) -> None:
        """A chat that needs no skill follows the default steps."""
        policy = RoutingPolicy(escalation={BILLING: (STRICT,)}, default_steps=(LOWER,))
        assert policy.steps_for(None) == (LOWER,)
        assert policy.step_for(None, HOUR) == LOWER


# --- properties ------------------------------------------------------------------------------
#
# `reference_plan` restates the documented rules as plainly as possible (every agent checked
# for every chat, exact fractions, a full sort) so that the planner's indexes and caches are
# checked against something with none.

SKILL_IDS = st.sampled_from([BILLING, SALES, RETURNS])
ANY_SKILL_IDS = st.sampled_from([BILLING, SALES, RETURNS, PAYMENTS])
WAITS = st.sampled_from([0, 30, 59, 60, 119, 120, 300, 900]).map(lambda s: timedelta(seconds=s))
# Agents are drawn from a small set of ids, so that exclusions, offers and last agents often
# name an agent of the snapshot, and sometimes one that is not there.
AGENT_IDS = st.integers(min_value=1, max_value=10).map(uid)
SOME_AGENTS = st.frozensets(AGENT_IDS, max_size=2)
NOBODY = st.just(frozenset[UUID]())
# Weighted towards what makes offers happen: online, connected, with room, skilled, no offer
# out yet, and low step minimums; otherwise most snapshots would only exercise "wait".

AGENTS = st.lists(
    st.builds(
        Candidate,
        id=AGENT_IDS,
        presence=st.sampled_from([Presence.ONLINE] * 4 + [Presence.AWAY, Presence.OFFLINE]),
        connected=st.sampled_from([True, True, True, False]),
        capacity=st.sampled_from([0, 1, 2, 2, 3, 4]),
        load=st.sampled_from([0, 0, 1, 1, 2, 4]),
        proficiency=st.dictionaries(
            ANY_SKILL_IDS, st.integers(min_value=1, max_value=5), min_size=1
        ),
        idle_since=st.none() | st.sampled_from([T0, NOW - MINUTE, NOW, NOW + MINUTE]),
        is_supervisor=st.booleans(),
    ),
    unique_by=lambda a: a.id,
    min_size=1,
    max_size=8,
)
QUEUES = st.lists(
    st.builds(
        Waiting,
        id=st.integers(min_value=100, max_value=140).map(uid),
        skill_id=st.none() | SKILL_IDS,
        priority=st.integers(min_value=0, max_value=2),
        queued_at=(WAITS | st.just(-MINUTE)).map(lambda waited: NOW - waited),
        excluded=st.one_of(NOBODY, NOBODY, SOME_AGENTS),
        preferred_agent=st.none() | AGENT_IDS,
        offered_to=st.one_of(NOBODY, NOBODY, NOBODY, SOME_AGENTS),
    ),
    unique_by=lambda w: w.id,
    min_size=1,
    max_size=10,
)
STEPS = st.builds(
    EscalationStep,
    after=WAITS,
    min_proficiency=st.sampled_from([1, 1, 1, 2, 3, 5]),
    related_skills=st.frozensets(ANY_SKILL_IDS, max_size=2),
    include_supervisors=st.booleans(),
    name=st.sampled_from(["a", "b", "c"]),
)
POLICIES = st.builds(
    RoutingPolicy,
    escalation=st.dictionaries(SKILL_IDS, st.lists(STEPS, max_size=3).map(tuple), max_size=2),
    default_steps=st.lists(STEPS, max_size=2).map(tuple),
    offer_mode=st.sampled_from(OfferMode),
    broadcast_size=st.integers(min_value=1, max_value=3),
    preferred_agent_wait=WAITS,
)
SNAPSHOTS = st.tuples(QUEUES, AGENTS, POLICIES)


def step_of(policy: RoutingPolicy, chat: Waiting, now: datetime) -> EscalationStep:
    """The documented step rule: the latest step reached (the later configured on a tie), the
    default before any; a chat queued in the future has waited nothing."""
    waited = max(now - chat.queued_at, timedelta(0))
    configured = policy.escalation.get(chat.skill_id) if chat.skill_id is not None else None
    steps = policy.default_steps if configured is None else configured
    reached = [s for s in steps if s.after <= waited]
    if not reached:
        return DEFAULT_STEP
    latest = max(s.after for s in reached)
    return [s for s in reached if s.after == latest][-1]


def level_for(candidate: Candidate, chat: Waiting, step: EscalationStep) -> int | None:
    """The level the agent is ranked by for the chat under the step; None: not qualified."""
    if chat.skill_id is None:
        return 0
    exact = candidate.proficiency.get(chat.skill_id, 0)
    if exact >= max(step.min_proficiency, 1):
        return exact
    related = [candidate.proficiency.get(s, 0) for s in step.related_skills]
    best_related = max(related, default=0)
    if best_related >= max(step.min_proficiency, 1):
        return best_related
    if step.include_supervisors and candidate.is_supervisor:
        return exact
    return None


def eligible_ignoring_load(candidate: Candidate, chat: Waiting, step: EscalationStep) -> bool:
    return (
        candidate.presence is Presence.ONLINE
        and candidate.connected
        and level_for(candidate, chat, step) is not None
        and candidate.id not in chat.excluded
        and candidate.id not in chat.offered_to
    )


def reference_plan(
    queue: Sequence[Waiting], agents: Sequence[Candidate], policy: RoutingPolicy, now: datetime
) -> list[tuple[UUID, tuple[UUID, ...]]]:
    load = {a.id: a.load for a in agents}
    idle = {a.id: (0, now, 0) if a.idle_since is None else (1, a.idle_since, 0) for a in agents}
    made = 0
    result = []
    for c in sorted(queue, key=lambda w: (-w.priority, w.queued_at, w.id)):
        step = step_of(policy, c, now)
        wanted = policy.offers_per_chat - len(c.offered_to)
        eligible = [
            a for a in agents if eligible_ignoring_load(a, c, step) and load[a.id] < a.capacity
        ]
        if wanted <= 0 or not eligible:
            continue

        def rank(a: Candidate, c: Waiting = c, step: EscalationStep = step) -> tuple[object, ...]:
            return (
                Fraction(load[a.id], a.capacity),
                -(level_for(a, c, step) or 0),
                idle[a.id],
                a.id,
            )

        ranked = sorted(eligible, key=rank)
        fresh = now - c.queued_at < policy.preferred_agent_wait
        preferred = [a for a in ranked if a.id == c.preferred_agent and fresh]
        chosen = (preferred + [a for a in ranked if a not in preferred])[:wanted]
        for a in chosen:
            made += 1
            load[a.id] += 1
            idle[a.id] = (1, now, made)
        result.append((c.id, tuple(a.id for a in chosen)))
    return result


# Modest counts: the whole unit suite must stay fast on two cores; the state machine below
# and the comparison with the reference cover the rest.
PROPERTY = settings(max_examples=30, deadline=None)


class TestPlanProperties:
    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_agrees_with_the_plain_statement_of_the_rules(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """Every offer is exactly what the documented rules, applied one chat at a time, give."""
        queue, agents, policy = snapshot
        assert [
            (d.conversation_id, d.agent_ids) for d in plan(queue, agents, policy, NOW).decisions
        ] == reference_plan(queue, agents, policy, NOW)

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_never_over_capacity_counting_the_pass(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """No agent is offered more chats than their free capacity, counting this pass."""
        queue, agents, policy = snapshot
        counts = Counter(a for d in plan(queue, agents, policy, NOW).decisions for a in d.agent_ids)
        for candidate in agents:
            if counts[candidate.id]:
                assert candidate.load + counts[candidate.id] <= candidate.capacity

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_only_agents_the_step_in_force_allows(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """An agent without the skill is chosen only when the step in force lets them in."""
        queue, agents, policy = snapshot
        by_id = {a.id: a for a in agents}
        chats = {c.id: c for c in queue}
        for d in plan(queue, agents, policy, NOW).decisions:
            c = chats[d.conversation_id]
            assert d.step == step_of(policy, c, NOW)
            for agent_id in d.agent_ids:
                chosen = by_id[agent_id]
                assert chosen.presence is Presence.ONLINE
                assert chosen.connected
                assert level_for(chosen, c, d.step) is not None

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_every_chat_decided_or_deferred_exactly_once(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """Each waiting chat appears once in the plan, offered or left waiting, never both."""
        queue, agents, policy = snapshot
        result = plan(queue, agents, policy, NOW)
        seen = [d.conversation_id for d in result.decisions] + [
            d.conversation_id for d in result.deferred
        ]
        assert sorted(seen) == sorted(c.id for c in queue)
        for d in result.decisions:
            assert 1 <= len(d.agent_ids) == len(set(d.agent_ids)) <= policy.offers_per_chat

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_priority_then_fifo(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """A chat is never left waiting while a later one got an agent who could have taken it."""
        queue, agents, policy = snapshot
        result = plan(queue, agents, policy, NOW)
        order = {c.id: (-c.priority, c.queued_at, c.id) for c in queue}
        assert [order[d.conversation_id] for d in result.decisions] == sorted(
            order[d.conversation_id] for d in result.decisions
        )
        chats = {c.id: c for c in queue}
        by_id = {a.id: a for a in agents}
        for waiting_chat, later in itertools.product(result.deferred, result.decisions):
            c = chats[waiting_chat.conversation_id]
            if (
                order[c.id] > order[later.conversation_id]
                or len(c.offered_to) >= policy.offers_per_chat
            ):
                continue
            for agent_id in later.agent_ids:
                assert not eligible_ignoring_load(by_id[agent_id], c, waiting_chat.step)

    @PROPERTY
    @given(snapshot=SNAPSHOTS, data=st.data())
    def test_same_plan_whatever_the_input_order(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy], data: st.DataObject
    ) -> None:
        """Loading the queue and the agents in another order never changes the plan."""
        queue, agents, policy = snapshot
        shuffled_queue = data.draw(st.permutations(queue))
        shuffled_agents = data.draw(st.permutations(agents))
        assert plan(shuffled_queue, shuffled_agents, policy, NOW) == plan(
            queue, agents, policy, NOW
        )

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_excluded_and_already_offered_agents_never_chosen(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """An agent who declined a chat, or holds an offer for it, is never offered it again."""
        queue, agents, policy = snapshot
        chats = {c.id: c for c in queue}
        for d in plan(queue, agents, policy, NOW).decisions:
            c = chats[d.conversation_id]
            assert c.excluded.isdisjoint(d.agent_ids)
            assert c.offered_to.isdisjoint(d.agent_ids)

    @PROPERTY
    @given(snapshot=SNAPSHOTS)
    def test_every_agent_is_accounted_for(
        self, snapshot: tuple[list[Waiting], list[Candidate], RoutingPolicy]
    ) -> None:
        """Each chat's reasons name every agent once: considered, or passed over for a reason."""
        queue, agents, policy = snapshot
        result = plan(queue, agents, policy, NOW)
        outcomes: list[Decision | Deferral] = [*result.decisions, *result.deferred]
        for outcome in outcomes:
            named = list(outcome.reasons.considered)
            for group in outcome.reasons.passed_over:
                assert group.agent_ids
                assert list(group.agent_ids) == sorted(group.agent_ids)
                named.extend(group.agent_ids)
            assert sorted(named) == sorted(a.id for a in agents)
        for d in result.decisions:
            assert set(d.agent_ids) <= set(d.reasons.considered)


# --- a simulated queue over time ---------------------------------------------------------------


class RoutingSimulation(RuleBasedStateMachine):
    """Chats arrive, routing passes make offers, agents accept or decline, chats close, and
    time passes. After every pass no waiting chat has an eligible agent with room; draining
    the system shows every chat with someone eligible is eventually assigned."""

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.agents: dict[UUID, Candidate] = {}
        self.policy = POLICY
        self.queue: dict[UUID, Waiting] = {}
        self.pending: dict[UUID, set[UUID]] = {}  # chat -> agents holding an offer
        self.active: dict[UUID, UUID] = {}  # chat -> agent
        self.next_chat = 1000

    @initialize(
        specs=st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=3),
                st.dictionaries(
                    st.sampled_from([BILLING, SALES, PAYMENTS]), st.integers(1, 5), min_size=1
                ),
                st.booleans(),
            ),
            min_size=1,
            max_size=4,
        ),
        mode=st.sampled_from(OfferMode),
        size=st.integers(min_value=1, max_value=3),
    )
    def setup(
        self, specs: list[tuple[int, dict[int, int], bool]], mode: OfferMode, size: int
    ) -> None:
        for n, (capacity, skills, supervisor) in enumerate(specs, start=1):
            self.agents[uid(n)] = agent(
                n, capacity=capacity, skills=skills, supervisor=supervisor, idle_since=None
            )
        self.policy = RoutingPolicy(
            escalation={BILLING: (STRICT, LOWER, RELATED, SUPERVISORS)},
            offer_mode=mode,
            broadcast_size=size,
        )

    def load(self, agent_id: UUID) -> int:
        held = sum(1 for holders in self.pending.values() if agent_id in holders)
        return held + sum(1 for a in self.active.values() if a == agent_id)

    def snapshot(self) -> tuple[list[Waiting], list[Candidate]]:
        queue = [
            replace(c, offered_to=frozenset(self.pending.get(c.id, ())))
            for c in self.queue.values()
        ]
        agents = [replace(a, load=self.load(a.id)) for a in self.agents.values()]
        return queue, agents

    @rule(
        skill=st.sampled_from([None, BILLING, SALES, RETURNS]),
        priority=st.integers(0, 2),
        data=st.data(),
    )
    def arrive(self, skill: int | None, priority: int, data: st.DataObject) -> None:
        """A visitor starts a chat, perhaps a returning one."""
        self.next_chat += 1
        preferred = data.draw(st.none() | st.sampled_from(sorted(self.agents)))
        self.queue[uid(self.next_chat)] = Waiting(
            uid(self.next_chat), skill, priority, self.now, preferred_agent=preferred
        )

    @rule()
    def route(self) -> None:
        """A routing pass: plan on the current snapshot and send the offers."""
        queue, agents = self.snapshot()
        result = plan(queue, agents, self.policy, self.now)
        for d in result.decisions:
            self.pending.setdefault(d.conversation_id, set()).update(d.agent_ids)
        self.check_work_conserving()

    def check_work_conserving(self) -> None:
        """No waiting chat short of offers has an eligible agent with room."""
        queue, agents = self.snapshot()
        for c in queue:
            if len(c.offered_to) >= self.policy.offers_per_chat:
                continue
            step = step_of(self.policy, c, self.now)
            for a in agents:
                assert not (eligible_ignoring_load(a, c, step) and a.load < a.capacity), (c, a)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def accept(self, data: st.DataObject) -> None:
        """An agent accepts an offer; any other broadcast offers are withdrawn."""
        chat_id = data.draw(st.sampled_from(sorted(self.pending)))
        agent_id = data.draw(st.sampled_from(sorted(self.pending[chat_id])))
        del self.pending[chat_id]  # the other broadcast offers are withdrawn with it
        del self.queue[chat_id]
        self.active[chat_id] = agent_id

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def decline(self, data: st.DataObject) -> None:
        """An agent declines (or lets expire) an offer; the chat stays queued without them."""
        chat_id = data.draw(st.sampled_from(sorted(self.pending)))
        agent_id = data.draw(st.sampled_from(sorted(self.pending[chat_id])))
        self.pending[chat_id].discard(agent_id)
        if not self.pending[chat_id]:
            del self.pending[chat_id]
        c = self.queue[chat_id]
        self.queue[chat_id] = replace(c, excluded=c.excluded | {agent_id})

    @precondition(lambda self: bool(self.active))
    @rule(data=st.data())
    def close(self, data: st.DataObject) -> None:
        """A chat ends, freeing a slot."""
        del self.active[data.draw(st.sampled_from(sorted(self.active)))]

    @rule(seconds=st.integers(min_value=1, max_value=400))
    def tick(self, seconds: int) -> None:
        """Time passes; escalation steps and the returning-visitor window move on."""
        self.now += timedelta(seconds=seconds)

    @rule()
    def drain(self) -> None:
        """Free every slot again and again: each chat someone may take gets assigned."""
        self.now += HOUR  # every workflow at its widest step
        # With every slot free, each pass assigns at least one chat that someone may take.
        for _ in range(len(self.queue) + 1):
            self.route()
            for chat_id, holders in sorted(self.pending.items()):
                self.active[chat_id] = min(holders)
                del self.queue[chat_id]
            self.pending.clear()
            self.active.clear()
        for c in self.queue.values():
            step = step_of(self.policy, c, self.now)
            assert not any(eligible_ignoring_load(a, c, step) for a in self.agents.values()), c

    @invariant()
    def nobody_over_capacity(self) -> None:
        """Active chats plus pending offers never exceed an agent's capacity."""
        for a in self.agents.values():
            assert self.load(a.id) <= a.capacity

    @invariant()
    def one_owner_per_chat(self) -> None:
        """A chat is queued or assigned, never both; offers only for queued chats, within N."""
        assert self.queue.keys().isdisjoint(self.active)
        assert self.pending.keys() <= self.queue.keys()
        for holders in self.pending.values():
            assert 1 <= len(holders) <= self.policy.offers_per_chat


RoutingSimulation.TestCase.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None
)
TestRoutingSimulation = RoutingSimulation.TestCase
