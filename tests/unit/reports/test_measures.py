"""Unit tests for `app.reports.measures`: one conversation's figures from its log, first-contact
resolution over the window, and the percentile both backends compute. Pure: no loop, no DB."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.reports import measures as m
from app.reports.measures import Event, fcr, measure, percentile_cont, satisfied

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANN = uuid.UUID(int=1)
BOB = uuid.UUID(int=2)
SUE = uuid.UUID(int=3)
VISITOR = uuid.UUID(int=9)
TARGET = 60


class Log:
    """A conversation's log written in order, each event `seconds` after T0."""

    def __init__(self, *, skill: int | None = 1, offline: bool = False) -> None:
        self.events: list[Event] = []
        self.add(0, m.OPENED, body={"skill": {"id": skill, "source": "topic", "matched": []}})
        self.visitor(0, "hello")
        if offline:
            self.add(0, m.OFFLINE, body={"reason": "no_agents", "opens_at": None})
        else:
            self.add(0, m.QUEUED, body={"reason": "new"})

    def add(
        self,
        seconds: float,
        kind: str,
        *,
        sender: str = m.SYSTEM,
        sender_id: uuid.UUID | None = None,
        visibility: str = m.SEEN_BY_ALL,
        body: dict[str, Any] | None = None,
    ) -> Log:
        self.events.append(
            Event(
                seq=len(self.events) + 1,
                kind=kind,
                sender_type=sender,
                sender_id=sender_id,
                visibility=visibility,
                at=T0 + timedelta(seconds=seconds),
                body=body or {},
            )
        )
        return self

    def visitor(self, seconds: float, text: str = "…") -> Log:
        return self.add(
            seconds, m.MESSAGE, sender=m.VISITOR, sender_id=VISITOR, body={"text": text}
        )

    def agent(self, seconds: float, who: uuid.UUID = ANN, *, kind: str = m.MESSAGE) -> Log:
        visibility = m.SEEN_BY_ALL if kind == m.MESSAGE else "agents"
        return self.add(seconds, kind, sender=m.AGENT, sender_id=who, visibility=visibility)

    def assign(self, seconds: float, who: uuid.UUID = ANN, **extra: Any) -> Log:
        agent = {"id": str(who), "name": "x", "avatar_url": None}
        self.add(seconds, m.ASSIGNED, body={"agent": agent, "epoch": 1, **extra})
        return self.add(seconds, "agent.joined", sender_id=who, body={"agent": agent})

    def left(self, seconds: float, who: uuid.UUID = ANN, reason: str = "transferred") -> Log:
        agent = {"id": str(who), "name": "x"}
        return self.add(
            seconds, m.AGENT_LEFT, sender_id=who, body={"agent": agent, "reason": reason}
        )

    def close(self, seconds: float, by: str = m.AGENT, who: uuid.UUID | None = ANN) -> Log:
        return self.add(seconds, m.CLOSED, sender=by, sender_id=who, body={"by": by})

    def measured(self) -> m.Measures:
        return measure(self.events, sla_target_seconds=TARGET)


class TestTimings:
    def test_a_plain_chat(self) -> None:
        """Queued at 0, assigned at 12 s, first reply at 30 s, closed at 5 min: wait 12 s,
        first response 30 s, handle 288 s, within a 60 s target, a first-contact candidate."""
        got = Log().assign(12).agent(30).visitor(40).agent(50).close(300).measured()
        assert (got.queue_wait_ms, got.first_response_ms, got.handle_ms) == (
            12_000,
            30_000,
            288_000,
        )
        assert got.handled
        assert got.answered
        assert not got.abandoned
        assert not got.offline
        assert got.sla_met is True
        assert got.fcr_candidate
        assert (got.first_agent_id, got.last_agent_id, got.skill_id) == (ANN, ANN, 1)
        assert got.opened_at == T0
        assert got.closed_at == T0 + timedelta(seconds=300)

    def test_milliseconds_are_rounded_down(self) -> None:
        """Durations are whole milliseconds, truncated (12.3456 s is 12,345 ms)."""
        got = Log().assign(12.3456).agent(20).close(30).measured()
        assert got.queue_wait_ms == 12_345

    def test_notes_whispers_and_system_events_are_not_a_response(self) -> None:
        """Only an agent message the visitor sees answers: notes and whispers do not."""
        log = Log().assign(5).agent(10, kind="note").agent(11, SUE, kind="whisper")
        log.add(12, "conversation.unanswered", visibility="agents")
        got = log.agent(90).close(100).measured()
        assert got.first_response_ms == 90_000
        assert got.sla_met is False

    def test_never_answered(self) -> None:
        """Assigned but the agent never wrote: no first response, not answered, SLA missed once
        the target passed, not a first-contact candidate; still handled, so not abandoned."""
        got = Log().assign(5).close(120, by=m.VISITOR, who=VISITOR).measured()
        assert got.first_response_ms is None
        assert not got.answered
        assert got.handled
        assert not got.abandoned
        assert got.sla_met is False
        assert not got.fcr_candidate
        assert got.handle_ms == 115_000

    def test_closed_unanswered_before_the_target_is_not_counted_for_sla(self) -> None:
        """A visitor who leaves before the target elapsed cannot have been failed: SLA None."""
        got = Log().close(59, by=m.VISITOR, who=VISITOR).measured()
        assert got.sla_met is None
        got = Log().close(61, by=m.VISITOR, who=VISITOR).measured()
        assert got.sla_met is False

    def test_sla_boundary_is_inclusive(self) -> None:
        """A first reply exactly at the target meets it; a millisecond later does not."""
        assert Log().assign(1).agent(60).close(70).measured().sla_met is True
        assert Log().assign(1).agent(60.001).close(70).measured().sla_met is False

    def test_barging_supervisor_answers_first(self) -> None:
        """A supervisor who barged in and wrote first gives the first response (the visitor saw
        a person), though the chat's agent had not written yet."""
        log = Log().assign(5)
        log.add(8, "supervisor.joined", sender_id=SUE, body={"agent": {"id": str(SUE)}})
        got = log.agent(9, SUE).agent(20).close(60).measured()
        assert got.first_response_ms == 9_000
        assert got.fcr_candidate  # the barge-in moved nothing: Ann held it throughout

    def test_reply_before_the_customer_wrote_is_ignored(self) -> None:
        """An agent message earlier than the visitor's first message (possible only in a log
        with a greeting before it) is not a response to it."""
        events = [
            Event(1, m.OPENED, m.SYSTEM, None, "all", T0, {}),
            Event(2, m.QUEUED, m.SYSTEM, None, "all", T0, {}),
            Event(3, m.ASSIGNED, m.SYSTEM, None, "all", T0, {"agent": {"id": str(ANN)}}),
            Event(4, m.MESSAGE, m.AGENT, ANN, "all", T0 + timedelta(seconds=1), {}),
            Event(5, m.MESSAGE, m.VISITOR, VISITOR, "all", T0 + timedelta(seconds=2), {}),
            Event(6, m.MESSAGE, m.AGENT, ANN, "all", T0 + timedelta(seconds=5), {}),
            Event(7, m.CLOSED, m.AGENT, ANN, "all", T0 + timedelta(seconds=9), {"by": "agent"}),
        ]
        got = measure(list(reversed(events)), sla_target_seconds=TARGET)  # any order
        assert got.first_response_ms == 3_000
        assert got.skill_id is None
        assert got.opened_at == T0

    def test_wait_counts_the_first_queue_only(self) -> None:
        """A re-queue after the agent disconnected does not add to the queue wait; handle time
        runs from the first assignment to the close."""
        log = Log().assign(10).agent(15).left(100, reason="agent_disconnected")
        log.add(100, m.QUEUED, body={"reason": "agent_disconnected"})
        got = log.assign(160, BOB).agent(170, BOB).close(200, who=BOB).measured()
        assert got.queue_wait_ms == 10_000
        assert got.handle_ms == 190_000
        assert (got.first_agent_id, got.last_agent_id) == (ANN, BOB)
        assert got.transfers == 0
        assert not got.fcr_candidate  # two agents

    def test_requeued_to_the_same_agent_stays_a_candidate(self) -> None:
        """Back to the same agent after a short disconnection: one agent, still a candidate."""
        log = Log().assign(10).agent(15).left(100, reason="agent_disconnected")
        log.add(100, m.QUEUED, body={"reason": "agent_disconnected"})
        assert log.assign(110).agent(120).close(200).measured().fcr_candidate

    def test_requeued_and_left_waiting_is_not_a_candidate(self) -> None:
        """Re-queued and closed by the visitor while waiting again: nobody held it at the close."""
        log = Log().assign(10).agent(15).left(100, reason="unanswered")
        log.add(100, m.QUEUED, body={"reason": "unanswered"})
        got = log.close(300, by=m.VISITOR, who=VISITOR).measured()
        assert not got.fcr_candidate
        assert not got.abandoned  # it had been answered


class TestOutcomes:
    def test_abandoned_in_the_queue(self) -> None:
        """Never assigned, the visitor closed it: abandoned; its wait runs to the close."""
        got = Log().close(45, by=m.VISITOR, who=VISITOR).measured()
        assert got.abandoned
        assert not got.handled
        assert not got.answered
        assert got.queue_wait_ms == 45_000
        assert got.handle_ms is None
        assert got.first_agent_id is None
        assert not got.fcr_candidate

    def test_closed_by_the_system_while_waiting_is_abandoned(self) -> None:
        """An erasure (the system on its own) closing a waiting chat: the visitor is gone."""
        assert Log().close(45, by=m.SYSTEM, who=None).measured().abandoned

    def test_closed_by_an_integration_while_waiting_is_not_abandoned(self) -> None:
        """Another system closing it through the API (a system close carrying its key) is not
        the visitor leaving."""
        log = Log().add(45, m.CLOSED, body={"by": "system", "api_key": {"id": "k"}})
        got = log.measured()
        assert not got.abandoned
        assert not got.handled

    def test_offline_message(self) -> None:
        """A chat left offline is its own outcome: not abandoned, no wait, first response or SLA,
        even once an agent took it and answered; answered, it may be resolved on first contact."""
        log = Log(offline=True).visitor(60).assign(3600).agent(3650)
        got = log.close(3700).measured()
        assert got.offline
        assert got.handled
        assert not got.abandoned
        assert (got.queue_wait_ms, got.first_response_ms, got.sla_met) == (None, None, None)
        assert got.answered  # an agent did write back
        assert got.fcr_candidate
        assert got.handle_ms == 100_000

    def test_offline_never_taken(self) -> None:
        """An offline chat the visitor closed unanswered is offline, not abandoned."""
        got = Log(offline=True).close(600, by=m.VISITOR, who=VISITOR).measured()
        assert got.offline
        assert not got.abandoned
        assert not got.handled


class TestHandoff:
    def test_warm_transfer_before_the_first_reply(self) -> None:
        """Ann transfers before writing, Bob answers: the first response is Bob's, one transfer,
        two agents, not a candidate."""
        log = Log().assign(10)
        log.add(
            20,
            m.TRANSFER_REQUESTED,
            sender=m.AGENT,
            sender_id=ANN,
            visibility="agents",
            body={"kind": "warm", "transfer_id": "t"},
        )
        log.add(50, m.TRANSFER_ACCEPTED, sender=m.AGENT, sender_id=BOB, visibility="agents")
        log.left(50).assign(50, BOB, transfer_id="t")
        got = log.agent(55, BOB).close(100, who=BOB).measured()
        assert got.first_response_ms == 55_000
        assert got.transfers == 1
        assert (got.first_agent_id, got.last_agent_id) == (ANN, BOB)
        assert not got.fcr_candidate

    def test_declined_and_expired_transfers_do_not_count(self) -> None:
        """Only transfers that moved the chat count: requested then declined or expired do not,
        and the chat stays a candidate."""
        log = Log().assign(10).agent(12)
        for at, end in ((20, "transfer.declined"), (40, "transfer.expired")):
            log.add(
                at,
                m.TRANSFER_REQUESTED,
                sender=m.AGENT,
                sender_id=ANN,
                visibility="agents",
                body={"kind": "warm"},
            )
            log.add(at + 5, end, visibility="agents")
        got = log.close(100).measured()
        assert got.transfers == 0
        assert got.fcr_candidate

    def test_cold_transfer_counts_when_made(self) -> None:
        """A cold transfer counts as it is made (it writes no `transfer.accepted`)."""
        log = Log().assign(10).agent(12)
        log.add(
            20,
            m.TRANSFER_REQUESTED,
            sender=m.AGENT,
            sender_id=ANN,
            visibility="agents",
            body={"kind": "cold"},
        )
        log.left(20).add(20, m.QUEUED, body={"reason": "transferred"})
        got = log.assign(80, BOB).agent(90, BOB).close(120, who=BOB).measured()
        assert got.transfers == 1
        assert got.queue_wait_ms == 10_000

    def test_escalation_taken_by_a_supervisor(self) -> None:
        """Escalated, then taken by a supervisor through the escalation transfer: one
        escalation, one transfer, the supervisor is the last agent."""
        log = Log().assign(10).agent(12)
        log.add(30, m.ESCALATED, visibility="agents", body={"by": "visitor"})
        log.add(30, m.TRANSFER_REQUESTED, visibility="agents", body={"kind": "escalation"})
        log.add(60, m.TRANSFER_ACCEPTED, sender=m.AGENT, sender_id=SUE, visibility="agents")
        log.left(60).assign(60, SUE, transfer_id="t")
        got = log.agent(61, SUE).close(90, who=SUE).measured()
        assert (got.escalations, got.transfers) == (1, 1)
        assert got.last_agent_id == SUE
        assert not got.fcr_candidate

    def test_supervisor_take_over_is_not_a_transfer_but_ends_candidacy(self) -> None:
        """A supervisor taking a chat over (not escalated) is no transfer, yet two agents held
        it, so it was not resolved by its first agent."""
        log = Log().assign(10).agent(12).left(40, reason="taken_over")
        got = log.assign(40, SUE).agent(45, SUE).close(60, who=SUE).measured()
        assert got.transfers == 0
        assert not got.fcr_candidate

    def test_declined_and_expired_offers_lengthen_the_wait(self) -> None:
        """Offers declined or expired before one is accepted are part of the queue wait."""
        log = Log()
        log.add(1, "conversation.offered", visibility="agents").add(
            5, "offer.declined", visibility="agents"
        )
        log.add(6, "conversation.offered", visibility="agents").add(
            36, "offer.expired", visibility="agents"
        )
        log.add(37, "conversation.offered", visibility="agents")
        got = log.assign(40, offer_id="o").agent(45).close(60).measured()
        assert got.queue_wait_ms == 40_000
        assert got.first_response_ms == 45_000


class TestLabelsAndRating:
    def test_rated_later_counts_the_latest(self) -> None:
        """A rating given after the close counts; a changed rating, the latest."""
        log = Log().assign(1).agent(2).close(10)
        log.add(100, m.RATED, sender=m.VISITOR, sender_id=VISITOR, body={"score": 2})
        log.add(200, m.RATED, sender=m.VISITOR, sender_id=VISITOR, body={"score": 5})
        got = log.measured()
        assert got.csat == 5
        assert got.closed_at == T0 + timedelta(seconds=10)

    def test_tags_and_disposition_at_close(self) -> None:
        """The tags are the last `conversation.tagged` set, sorted; the disposition the last."""
        log = Log().assign(1).agent(2)
        log.add(
            3, m.TAGGED, sender=m.AGENT, sender_id=ANN, visibility="agents", body={"tags": ["b"]}
        )
        log.add(
            9,
            m.TAGGED,
            sender=m.AGENT,
            sender_id=ANN,
            visibility="agents",
            body={"tags": ["z", "a"]},
        )
        log.add(
            9,
            m.DISPOSITION,
            sender=m.AGENT,
            sender_id=ANN,
            visibility="agents",
            body={"disposition": "resolved"},
        )
        got = log.close(9).measured()
        assert got.tags == ("a", "z")
        assert got.disposition == "resolved"

    def test_relabelled_after_the_close(self) -> None:
        """Tags and a disposition a supervisor changed after the close are the ones counted."""
        log = Log().assign(1).agent(2)
        log.add(
            3, m.TAGGED, sender=m.AGENT, sender_id=ANN, visibility="agents", body={"tags": ["b"]}
        )
        log.close(9)
        log.add(
            99, m.TAGGED, sender=m.AGENT, sender_id=SUE, visibility="agents", body={"tags": ["c"]}
        )
        log.add(
            99,
            m.DISPOSITION,
            sender=m.AGENT,
            sender_id=SUE,
            visibility="agents",
            body={"disposition": "follow_up"},
        )
        got = log.measured()
        assert got.tags == ("c",)
        assert got.disposition == "follow_up"
        assert got.closed_at == T0 + timedelta(seconds=9)

    def test_unreadable_bodies_are_ignored(self) -> None:
        """Odd bodies (a redacted or hand-edited log) give None rather than an error."""
        log = Log(skill=None).add(1, m.ASSIGNED, body={"agent": {"id": "not-a-uuid"}})
        log.add(2, m.RATED, body={"score": True}).add(2, m.TAGGED, body={"tags": "x"})
        log.add(2, m.DISPOSITION, body={"disposition": 3})
        got = log.close(5).measured()
        assert got.skill_id is None
        assert got.first_agent_id is None
        assert got.csat is None
        assert got.tags == ()
        assert got.disposition is None
        assert not got.fcr_candidate

    def test_a_log_without_close_is_refused(self) -> None:
        """Measures are of closed conversations only."""
        with pytest.raises(ValueError, match=r"conversation\.closed"):
            measure(Log().events, sla_target_seconds=TARGET)

    def test_satisfied_is_four_or_five(self) -> None:
        """The top two boxes of five."""
        assert [satisfied(s) for s in range(1, 6)] == [False, False, False, True, True]


WINDOW = timedelta(hours=24)
CLOSED = T0


class TestFirstContactResolution:
    def test_not_a_candidate(self) -> None:
        """A chat that was not a candidate is never resolved on first contact."""
        assert (
            fcr(
                candidate=False,
                closed_at=CLOSED,
                next_contact_at=None,
                window=WINDOW,
                now=CLOSED + WINDOW * 2,
            )
            is False
        )

    def test_pending_until_the_window_passes(self) -> None:
        """No repeat contact yet and the window still running: undecided."""
        assert (
            fcr(
                candidate=True,
                closed_at=CLOSED,
                next_contact_at=None,
                window=WINDOW,
                now=CLOSED + WINDOW - timedelta(seconds=1),
            )
            is None
        )
        assert (
            fcr(
                candidate=True,
                closed_at=CLOSED,
                next_contact_at=None,
                window=WINDOW,
                now=CLOSED + WINDOW,
            )
            is True
        )

    def test_coming_back_within_the_window_flips_it(self) -> None:
        """A next conversation within the window (inclusive) means not resolved, at once."""
        at = CLOSED + WINDOW
        assert (
            fcr(candidate=True, closed_at=CLOSED, next_contact_at=at, window=WINDOW, now=at)
            is False
        )

    def test_coming_back_after_the_window_does_not(self) -> None:
        """A visit after the window is a new issue."""
        at = CLOSED + WINDOW + timedelta(seconds=1)
        assert (
            fcr(candidate=True, closed_at=CLOSED, next_contact_at=at, window=WINDOW, now=at) is True
        )

    @given(
        candidate=st.booleans(),
        back=st.one_of(st.none(), st.integers(min_value=0, max_value=200_000)),
        later=st.integers(min_value=0, max_value=200_000),
    )
    def test_decided_never_changes_as_time_goes_on(
        self, candidate: bool, back: int | None, later: int
    ) -> None:
        """Once decided, the answer stays the same at every later moment."""
        next_at = None if back is None else CLOSED + timedelta(seconds=back)
        now = (
            CLOSED + timedelta(seconds=later)
            if next_at is None
            else max(next_at, CLOSED + timedelta(seconds=later))
        )
        first = fcr(
            candidate=candidate, closed_at=CLOSED, next_contact_at=next_at, window=WINDOW, now=now
        )
        after = fcr(
            candidate=candidate,
            closed_at=CLOSED,
            next_contact_at=next_at,
            window=WINDOW,
            now=now + timedelta(days=3),
        )
        assert after is not None
        if first is not None:
            assert first == after


class TestPercentile:
    def test_linear_interpolation_as_percentile_cont(self) -> None:
        """Values 10, 20, 30, 40: median at position 1.5 is 25; p90 at 2.7 is 30 + 0.7 * 10."""
        assert percentile_cont([40, 10, 30, 20], 0.5) == 25.0
        assert percentile_cont([40, 10, 30, 20], 0.9) == pytest.approx(37.0, abs=1e-9)

    def test_one_and_none(self) -> None:
        """One value is every percentile; no values give None."""
        assert percentile_cont([7], 0.9) == 7.0
        assert percentile_cont([], 0.5) is None

    @given(st.lists(st.integers(min_value=0, max_value=10**9), min_size=1), st.floats(0, 1))
    def test_between_min_and_max(self, values: list[int], fraction: float) -> None:
        """Any percentile lies between the smallest and the largest value."""
        got = percentile_cont(values, fraction)
        assert got is not None
        assert min(values) <= got <= max(values)

    @given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=50))
    def test_monotone_in_the_fraction(self, values: list[int]) -> None:
        """A higher fraction never gives a lower value."""
        got = [percentile_cont(values, f / 10) for f in range(11)]
        assert got == sorted(got)  # type: ignore[type-var] # no None for a non-empty list


@given(
    st.lists(
        st.tuples(
            st.sampled_from([m.MESSAGE, m.ASSIGNED, m.AGENT_LEFT, m.QUEUED, m.TRANSFER_ACCEPTED]),
            st.sampled_from([m.VISITOR, m.AGENT, m.SYSTEM]),
            st.sampled_from([ANN, BOB]),
            st.integers(min_value=0, max_value=600),
        ),
        max_size=20,
    ),
    st.integers(min_value=0, max_value=600),
)
def test_any_log_gives_consistent_measures(
    steps: list[tuple[str, str, uuid.UUID, int]], close_after: int
) -> None:
    """Whatever happens between arrival and close: durations are never negative, a first
    response implies answered and an SLA verdict, abandoned excludes handled, and a candidate
    was answered by one agent without transfer."""
    log = Log()
    at = 0
    for kind, sender, who, gap in steps:
        at += gap
        if kind == m.ASSIGNED:
            log.assign(at, who)
        else:
            body = {"agent": {"id": str(who)}} if kind == m.AGENT_LEFT else {}
            log.add(at, kind, sender=sender, sender_id=who, body=body)
    got = log.close(at + close_after).measured()
    for value in (got.queue_wait_ms, got.first_response_ms, got.handle_ms):
        assert value is None or value >= 0
    assert got.answered == (got.first_response_ms is not None)  # never offline here
    if got.answered:
        assert got.sla_met is not None
    assert not (got.abandoned and got.handled)
    if got.fcr_candidate:
        assert got.answered
        assert got.transfers == 0
        assert got.first_agent_id == got.last_agent_id
