"""Unit tests for `app.routing.core`: who may take a waiting chat, in what order, and which
chat is served first. Pure inputs, no loop, no database.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.routing.core import Candidate, Presence, Waiting, queue_order, rank_agents

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = T0 + timedelta(hours=8)
BILLING = 1
SALES = 2
RETURNS = 3


def uid(n: int) -> UUID:
    """A readable, ordered id: `uid(1) < uid(2)`."""
    return UUID(int=n)


def agent(
    n: int,
    *,
    presence: Presence = Presence.ONLINE,
    connected: bool = True,
    capacity: int = 3,
    load: int = 0,
    proficiency: dict[int, int] | None = None,
    idle_since: datetime | None = T0,
) -> Candidate:
    return Candidate(
        id=uid(n),
        presence=presence,
        connected=connected,
        capacity=capacity,
        load=load,
        proficiency={} if proficiency is None else proficiency,
        idle_since=idle_since,
    )


def waiting(
    n: int = 1000, *, skill_id: int | None = None, priority: int = 0, queued_at: datetime = T0
) -> Waiting:
    return Waiting(id=uid(n), skill_id=skill_id, priority=priority, queued_at=queued_at)


class TestCandidateCanTake:
    def test_online_connected_agent_with_room_can_take_unskilled_chat(self) -> None:
        """An online, connected agent below capacity may take a chat that needs no skill."""
        assert agent(1, load=2, capacity=3).can_take(waiting())

    @pytest.mark.parametrize("presence", [Presence.AWAY, Presence.OFFLINE])
    def test_agent_not_online_cannot_take_chat(self, presence: Presence) -> None:
        """An agent who is away or offline is never offered a chat, even with free capacity."""
        assert not agent(1, presence=presence).can_take(waiting())

    def test_online_agent_without_socket_cannot_take_chat(self) -> None:
        """An agent marked online whose sockets have all dropped is not offered a chat."""
        assert not agent(1, connected=False).can_take(waiting())

    @pytest.mark.parametrize("capacity", [0, -1])
    def test_agent_with_no_capacity_cannot_take_chat(self, capacity: int) -> None:
        """An agent whose capacity is zero (or misconfigured below zero) never gets a chat."""
        assert not agent(1, capacity=capacity, load=0).can_take(waiting())

    @pytest.mark.parametrize("load", [3, 4])
    def test_full_agent_cannot_take_chat(self, load: int) -> None:
        """An agent at (or somehow above) capacity is not offered another chat."""
        assert not agent(1, capacity=3, load=load).can_take(waiting())

    def test_skilled_chat_needs_agent_with_that_skill(self) -> None:
        """A chat that needs billing goes only to agents who have billing at some level."""
        chat = waiting(skill_id=BILLING)
        assert agent(1, proficiency={BILLING: 1}).can_take(chat)
        assert not agent(2, proficiency={SALES: 5}).can_take(chat)
        assert not agent(3, proficiency={}).can_take(chat)

    def test_unskilled_chat_goes_to_agent_with_any_skills(self) -> None:
        """A chat that needs no skill may go to an agent with or without skills."""
        chat = waiting(skill_id=None)
        assert agent(1, proficiency={SALES: 5}).can_take(chat)
        assert agent(2, proficiency={}).can_take(chat)


class TestCandidateLevel:
    def test_level_in_known_skill(self) -> None:
        """An agent's level in a skill they have is their proficiency in it."""
        assert agent(1, proficiency={BILLING: 4, SALES: 2}).level(BILLING) == 4

    def test_level_in_missing_skill_is_zero(self) -> None:
        """An agent has level 0 in a skill they do not have."""
        assert agent(1, proficiency={SALES: 2}).level(BILLING) == 0

    def test_level_without_skill_is_zero(self) -> None:
        """When the chat needs no skill, every agent ranks as level 0 for it."""
        assert agent(1, proficiency={SALES: 5}).level(None) == 0


class TestRankAgents:
    def test_no_agents_means_no_ranking(self) -> None:
        """With nobody on shift the chat has no one to go to."""
        assert rank_agents(waiting(), [], NOW) == []

    def test_agents_who_cannot_take_the_chat_are_left_out(self) -> None:
        """Away, offline, disconnected, zero-capacity, full and unskilled agents are not ranked."""
        chat = waiting(skill_id=BILLING)
        skilled = {BILLING: 3}
        agents = [
            agent(1, presence=Presence.AWAY, proficiency=skilled),
            agent(2, presence=Presence.OFFLINE, proficiency=skilled),
            agent(3, connected=False, proficiency=skilled),
            agent(4, capacity=0, proficiency=skilled),
            agent(5, capacity=2, load=2, proficiency=skilled),
            agent(6, proficiency={SALES: 5}),
            agent(7, proficiency=skilled),
        ]
        assert rank_agents(chat, agents, NOW) == [uid(7)]

    def test_lower_load_ratio_wins(self) -> None:
        """Of two skilled agents, the one using the smaller share of their capacity goes first."""
        chat = waiting(skill_id=BILLING)
        busy = agent(1, capacity=2, load=1, proficiency={BILLING: 5})  # 50 % busy
        lighter = agent(2, capacity=4, load=1, proficiency={BILLING: 1})  # 25 % busy
        assert rank_agents(chat, [busy, lighter], NOW) == [uid(2), uid(1)]

    def test_load_ratio_not_absolute_load_decides(self) -> None:
        """An agent with more chats but more room ranks ahead of one nearer their limit."""
        near_limit = agent(1, capacity=2, load=1)  # 1 chat, 50 %
        roomy = agent(2, capacity=10, load=3)  # 3 chats, 30 %
        assert rank_agents(waiting(), [near_limit, roomy], NOW) == [uid(2), uid(1)]

    def test_equal_load_ratio_higher_proficiency_wins(self) -> None:
        """With the same load ratio, the agent more proficient in the chat's skill goes first."""
        chat = waiting(skill_id=BILLING)
        novice = agent(1, capacity=2, load=1, proficiency={BILLING: 2}, idle_since=None)
        expert = agent(2, capacity=4, load=2, proficiency={BILLING: 5})
        assert rank_agents(chat, [novice, expert], NOW) == [uid(2), uid(1)]

    def test_proficiency_in_other_skills_does_not_count(self) -> None:
        """Only the level in the chat's own skill matters, not how good an agent is elsewhere."""
        chat = waiting(skill_id=BILLING)
        allrounder = agent(1, proficiency={BILLING: 2, SALES: 5, RETURNS: 5})
        specialist = agent(2, proficiency={BILLING: 3})
        assert rank_agents(chat, [allrounder, specialist], NOW) == [uid(2), uid(1)]

    def test_unskilled_chat_ignores_proficiency(self) -> None:
        """For a chat that needs no skill, proficiency does not reorder agents; idle time does."""
        expert_recent = agent(1, proficiency={SALES: 5}, idle_since=NOW - timedelta(minutes=1))
        novice_idle = agent(2, proficiency={SALES: 1}, idle_since=NOW - timedelta(hours=1))
        assert rank_agents(waiting(), [expert_recent, novice_idle], NOW) == [uid(2), uid(1)]

    def test_equal_load_and_proficiency_longest_idle_wins(self) -> None:
        """With the same load ratio and level, the agent idle the longest is offered the chat."""
        chat = waiting(skill_id=BILLING)
        recent = agent(1, proficiency={BILLING: 3}, idle_since=NOW - timedelta(minutes=5))
        idle = agent(2, proficiency={BILLING: 3}, idle_since=NOW - timedelta(minutes=30))
        assert rank_agents(chat, [recent, idle], NOW) == [uid(2), uid(1)]

    def test_never_assigned_counts_as_idlest(self) -> None:
        """An agent who has never had a chat ranks ahead of one idle for a very long time."""
        long_idle = agent(1, idle_since=NOW - timedelta(days=365))
        never = agent(2, idle_since=None)
        assert rank_agents(waiting(), [long_idle, never], NOW) == [uid(2), uid(1)]

    def test_assigned_after_now_ranks_after_idle_agents(self) -> None:
        """An idle time stamped after `now` (clock skew between nodes) counts as the least idle."""
        skewed = agent(1, idle_since=NOW + timedelta(seconds=5))
        idle = agent(2, idle_since=NOW)
        assert rank_agents(waiting(), [skewed, idle], NOW) == [uid(2), uid(1)]

    def test_full_tie_is_broken_by_id(self) -> None:
        """Agents equal in every respect are ranked by id, so the same agent wins every time."""
        agents = [agent(3), agent(1), agent(2)]
        assert rank_agents(waiting(), agents, NOW) == [uid(1), uid(2), uid(3)]

    def test_two_never_assigned_agents_are_ranked_by_id(self) -> None:
        """Two agents who have never had a chat tie on idle time and fall back to id order."""
        agents = [agent(2, idle_since=None), agent(1, idle_since=None)]
        assert rank_agents(waiting(), agents, NOW) == [uid(1), uid(2)]

    def test_criteria_apply_in_order(self) -> None:
        """Load ratio outranks proficiency, which outranks idle time, which outranks id."""
        chat = waiting(skill_id=BILLING)
        agents = [
            agent(1, capacity=2, load=1, proficiency={BILLING: 5}, idle_since=None),
            agent(2, capacity=4, load=1, proficiency={BILLING: 1}, idle_since=NOW),
            agent(3, capacity=4, load=1, proficiency={BILLING: 4}, idle_since=NOW),
            agent(4, capacity=4, load=1, proficiency={BILLING: 4}, idle_since=T0),
            agent(5, capacity=4, load=1, proficiency={BILLING: 4}, idle_since=T0),
        ]
        assert rank_agents(chat, agents, NOW) == [uid(4), uid(5), uid(3), uid(2), uid(1)]


class TestQueueOrder:
    def test_empty_queue(self) -> None:
        """An empty queue stays empty."""
        assert queue_order([]) == []

    def test_higher_priority_served_first(self) -> None:
        """A high-priority chat is served before a normal one that has waited longer."""
        old_normal = waiting(1, priority=0, queued_at=T0)
        new_urgent = waiting(2, priority=5, queued_at=T0 + timedelta(minutes=10))
        assert queue_order([old_normal, new_urgent]) == [new_urgent, old_normal]

    def test_same_priority_longest_waiting_first(self) -> None:
        """Among chats of equal priority, the one queued earliest is served first."""
        late = waiting(1, queued_at=T0 + timedelta(seconds=1))
        early = waiting(2, queued_at=T0)
        assert queue_order([late, early]) == [early, late]

    def test_full_tie_is_broken_by_id(self) -> None:
        """Chats queued at the same instant with the same priority are served in id order."""
        chats = [waiting(3), waiting(1), waiting(2)]
        assert [w.id for w in queue_order(chats)] == [uid(1), uid(2), uid(3)]

    def test_does_not_mutate_input(self) -> None:
        """Ordering the queue returns a new list and leaves the caller's sequence untouched."""
        chats = [waiting(1, priority=0), waiting(2, priority=1)]
        before = list(chats)
        queue_order(chats)
        assert chats == before


# --- properties ------------------------------------------------------------------------------

SKILLS = st.sampled_from([BILLING, SALES, RETURNS])
PAST = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)).map(lambda d: NOW - d)


@st.composite
def candidates(draw: st.DrawFn) -> Candidate:
    return Candidate(
        id=draw(st.uuids()),
        presence=draw(st.sampled_from(Presence)),
        connected=draw(st.booleans()),
        capacity=draw(st.integers(min_value=0, max_value=6)),
        load=draw(st.integers(min_value=0, max_value=7)),
        proficiency=draw(st.dictionaries(SKILLS, st.integers(min_value=1, max_value=5))),
        idle_since=draw(st.none() | PAST | st.sampled_from([T0, NOW])),
    )


@st.composite
def chats(draw: st.DrawFn) -> Waiting:
    return Waiting(
        id=draw(st.uuids()),
        skill_id=draw(st.none() | SKILLS),
        priority=draw(st.integers(min_value=-2, max_value=2)),
        queued_at=draw(st.sampled_from([T0, NOW]) | PAST),
    )


AGENT_LISTS = st.lists(candidates(), max_size=12, unique_by=lambda a: a.id)


def may_take(candidate: Candidate, chat: Waiting) -> bool:
    """The eligibility rules restated independently of `Candidate.can_take`."""
    return (
        candidate.presence is Presence.ONLINE
        and candidate.connected
        and candidate.capacity > 0
        and candidate.load < candidate.capacity
        and (chat.skill_id is None or chat.skill_id in candidate.proficiency)
    )


def load_ratio(candidate: Candidate) -> Fraction:
    return Fraction(candidate.load, candidate.capacity)


def documented_key(
    candidate: Candidate, chat: Waiting
) -> tuple[Fraction, int, bool, datetime, UUID]:
    """The documented order, exactly: ratio asc, level desc, idle longest first, id asc."""
    level = 0 if chat.skill_id is None else candidate.proficiency.get(chat.skill_id, 0)
    never = candidate.idle_since is None
    return (
        load_ratio(candidate),
        -level,
        not never,
        T0 if candidate.idle_since is None else candidate.idle_since,
        candidate.id,
    )


class TestRankAgentsProperties:
    @given(chat=chats(), agents=AGENT_LISTS)
    def test_never_ranks_an_agent_who_cannot_take_the_chat(
        self, chat: Waiting, agents: list[Candidate]
    ) -> None:
        """Whatever the snapshot, no one unavailable, full or unskilled is ever offered the chat."""
        by_id = {a.id: a for a in agents}
        for agent_id in rank_agents(chat, agents, NOW):
            assert may_take(by_id[agent_id], chat)

    @given(chat=chats(), agents=AGENT_LISTS)
    def test_ranks_every_eligible_agent_exactly_once(
        self, chat: Waiting, agents: list[Candidate]
    ) -> None:
        """Every agent who may take the chat appears in the ranking, and only once."""
        ranked = rank_agents(chat, agents, NOW)
        assert len(ranked) == len(set(ranked))
        assert set(ranked) == {a.id for a in agents if may_take(a, chat)}

    @given(chat=chats(), agents=AGENT_LISTS, data=st.data())
    def test_ranking_does_not_depend_on_input_order(
        self, chat: Waiting, agents: list[Candidate], data: st.DataObject
    ) -> None:
        """The order agents are loaded from the database never changes who is offered the chat."""
        shuffled = data.draw(st.permutations(agents))
        assert rank_agents(chat, shuffled, NOW) == rank_agents(chat, agents, NOW)

    @given(chat=chats(), agents=AGENT_LISTS)
    def test_first_agent_has_the_lowest_load_ratio(
        self, chat: Waiting, agents: list[Candidate]
    ) -> None:
        """The agent offered the chat first is never busier, proportionally, than another choice."""
        ranked = rank_agents(chat, agents, NOW)
        eligible = [a for a in agents if may_take(a, chat)]
        if not eligible:
            assert ranked == []
            return
        first = next(a for a in agents if a.id == ranked[0])
        assert load_ratio(first) == min(load_ratio(a) for a in eligible)

    @given(chat=chats(), agents=AGENT_LISTS)
    def test_ranking_follows_the_documented_order(
        self, chat: Waiting, agents: list[Candidate]
    ) -> None:
        """The whole ranking is ratio, then level, then idle time (never first), then id."""
        eligible = [a for a in agents if may_take(a, chat)]
        expected = [a.id for a in sorted(eligible, key=lambda a: documented_key(a, chat))]
        assert rank_agents(chat, agents, NOW) == expected


class TestQueueOrderProperties:
    @given(queue=st.lists(chats(), max_size=15, unique_by=lambda w: w.id))
    def test_priority_desc_then_queued_at_asc(self, queue: list[Waiting]) -> None:
        """Higher priority is always served first; within a priority, earlier arrivals first."""
        ordered = queue_order(queue)
        assert sorted(ordered, key=lambda w: w.id) == sorted(queue, key=lambda w: w.id)
        for before, after in itertools.pairwise(ordered):
            assert before.priority >= after.priority
            if before.priority == after.priority:
                assert before.queued_at <= after.queued_at

    @given(queue=st.lists(chats(), max_size=15, unique_by=lambda w: w.id), data=st.data())
    def test_order_does_not_depend_on_input_order(
        self, queue: list[Waiting], data: st.DataObject
    ) -> None:
        """However the queue is loaded, chats are served in the same order."""
        shuffled = data.draw(st.permutations(queue))
        assert queue_order(shuffled) == queue_order(queue)
