"""Unit tests for `app.handoff.rules`: when a visitor's words or the policy rules escalate a
chat. Pure inputs, no loop, no database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.handoff.rules import (
    DEFAULT_PHRASES,
    HANDLE,
    RULES,
    SENTIMENT,
    TRANSFERS,
    WAIT,
    ChatFacts,
    EscalationPolicy,
    Trigger,
    asks_for_manager,
    escalation_due,
    next_due_at,
)
from app.store.models import DEFAULT_ESCALATION_PHRASES

T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
POLICY = EscalationPolicy()
# Only the rule under test is on.
OFF = EscalationPolicy(
    wait_seconds=None, handle_seconds=None, max_transfers=None, sentiment_below=None
)
TICK = timedelta(microseconds=1)


def facts(
    state: str = "assigned",
    *,
    queued_at: datetime | None = T0,
    assigned_at: datetime | None = T0,
    transfers: int = 0,
    escalated: bool = False,
    scores: tuple[float, ...] = (),
) -> ChatFacts:
    return ChatFacts(state, queued_at, assigned_at, transfers, escalated, scores)


def queued(
    *, queued_at: datetime | None = T0, escalated: bool = False, scores: tuple[float, ...] = ()
) -> ChatFacts:
    return facts(
        "queued", queued_at=queued_at, assigned_at=None, escalated=escalated, scores=scores
    )


def minutes(n: float) -> datetime:
    return T0 + timedelta(minutes=n)


class TestAsksForManager:
    @pytest.mark.parametrize(
        ("text", "phrase"),
        [
            ("I want to speak to a manager", "speak to a manager"),
            ("Speak to a MANAGER.", "speak to a manager"),
            ("speak  to a\tmanager please", "speak to a manager"),
            ("Please escalate this now!", "escalate this"),
            ("Can I talk to your supervisor?", "talk to your supervisor"),
            ("Is your manager in today?", "your manager"),
            ("ＥＳＣＡＬＡＴＥ ＴＨＩＳ", "escalate this"),  # full-width letters
        ],
    )
    def test_default_phrases_match(self, text: str, phrase: str) -> None:
        """A message containing a default phrase, in any case or spacing, names that phrase."""
        assert asks_for_manager(text, DEFAULT_PHRASES) == phrase

    @pytest.mark.parametrize(
        "text",
        [
            "Your managerial team was great",
            "Our supervisory board",
            "I will deescalate this",
            "speak to amanager",
            "manager to a speak",
            "",
            "   ",
        ],
    )
    def test_part_words_and_other_orders_do_not_match(self, text: str) -> None:
        """Phrases match whole words in order, never inside a longer word."""
        assert asks_for_manager(text, DEFAULT_PHRASES) is None

    def test_punctuation_between_words_is_a_gap(self) -> None:
        """Punctuation between the words of a phrase counts like a space."""
        assert asks_for_manager("speak to a... manager", ["speak to a manager"]) == (
            "speak to a manager"
        )
        assert asks_for_manager("escalate—this", ["escalate this"]) == "escalate this"

    def test_first_configured_phrase_wins(self) -> None:
        """When several phrases match, the one configured first is returned, wherever it
        stands in the text."""
        text = "your manager, I said: escalate this"
        assert asks_for_manager(text, ["escalate this", "your manager"]) == "escalate this"
        assert asks_for_manager(text, ["your manager", "escalate this"]) == "your manager"

    def test_phrase_is_returned_as_configured(self) -> None:
        """The configured spelling comes back, not the customer's."""
        assert asks_for_manager("i need a SUPERVISOR", ["  A Supervisor "]) == "  A Supervisor "

    def test_blank_phrases_are_ignored(self) -> None:
        """An empty or blank configured phrase never matches anything."""
        assert asks_for_manager("anything at all", ["", "   ", "..."]) is None
        assert asks_for_manager("anything at all", []) is None

    def test_german_phrase(self) -> None:
        """Non-ASCII phrases match case-insensitively, whatever the Unicode composition."""
        phrase = "Vorgesetzten sprechen"
        assert asks_for_manager("Ich will den VORGESETZTEN sprechen!", [phrase]) == phrase
        assert asks_for_manager("Ich möchte den Vorgesetzten", [phrase]) is None
        decomposed = "Geschäftsführer"
        composed_text = "Bitte den Gescha\u0308ftsfu\u0308hrer!"
        assert asks_for_manager(composed_text, [decomposed]) == decomposed
        assert asks_for_manager("STRASSE", ["straße"]) == "straße"  # casefold: ß is ss

    def test_japanese_phrase_without_spaces(self) -> None:
        """In a script written without spaces, a phrase matches where its characters stand."""
        assert asks_for_manager("上司と話したいです", ["上司と話したい"]) == "上司と話したい"
        assert asks_for_manager("上司と話したいです", ["部長"]) is None

    def test_words_run_into_unspaced_script(self) -> None:
        """A Latin word written against Japanese ends where the Japanese starts."""
        assert asks_for_manager("Warmlineの上司と話したい", ["上司"]) == "上司"

    def test_possessive_still_names_the_phrase(self) -> None:
        """An apostrophe ends a word, so "your manager's name" contains "your manager"."""
        assert asks_for_manager("What is your manager's name?", DEFAULT_PHRASES) == ("your manager")

    def test_apostrophes_of_either_kind(self) -> None:
        """A curly apostrophe in the text matches a straight one in the phrase."""
        assert asks_for_manager("I’d like your boss", ["i'd like your boss"]) == (
            "i'd like your boss"
        )

    def test_negation_is_not_understood(self) -> None:
        """Documented limit: a negated request still matches."""
        text = "I don't need to speak to a manager"
        assert asks_for_manager(text, DEFAULT_PHRASES) == "speak to a manager"

    def test_a_single_string_is_refused(self) -> None:
        """Passing one phrase as a bare string would match letter by letter: refused."""
        with pytest.raises(TypeError):
            asks_for_manager("a manager", "manager")


class TestTransfers:
    def test_fires_over_the_limit(self) -> None:
        """The third transfer exceeds the default limit of two."""
        assert escalation_due(facts(transfers=3), POLICY, T0) == Trigger(
            TRANSFERS, "Transferred 3 times (limit 2)"
        )

    def test_at_the_limit_does_not_fire(self) -> None:
        """Exactly two transfers is at the limit, not over it."""
        assert escalation_due(facts(transfers=2), POLICY, T0) is None

    def test_limit_zero_fires_on_the_first(self) -> None:
        """With a limit of 0, any transfer escalates."""
        policy = replace(OFF, max_transfers=0)
        assert escalation_due(facts(transfers=1), policy, T0) == Trigger(
            TRANSFERS, "Transferred once (limit 0)"
        )

    def test_disabled(self) -> None:
        """With `max_transfers=None`, no number of transfers escalates."""
        assert escalation_due(facts(transfers=50), OFF, T0) is None


class TestSentiment:
    POLICY = replace(OFF, sentiment_below=-0.5)

    def test_fires_below_the_limit(self) -> None:
        """The mean of the last three customer scores below -0.5 escalates."""
        chat = facts(scores=(0.9, -0.5, -0.6, -0.76))
        assert escalation_due(chat, self.POLICY, T0) == Trigger(
            SENTIMENT, "Customer's last 3 messages average -0.62 (limit -0.50)"
        )

    def test_at_the_limit_does_not_fire(self) -> None:
        """A mean exactly at the limit is not below it, float noise notwithstanding."""
        assert escalation_due(facts(scores=(-0.6, -0.5, -0.4)), self.POLICY, T0) is None
        assert escalation_due(facts(scores=(-0.5, -0.5, -0.5)), self.POLICY, T0) is None

    def test_just_below_fires(self) -> None:
        """A mean a hair below the limit fires."""
        chat = facts(scores=(-0.5, -0.5, -0.5001))
        assert escalation_due(chat, self.POLICY, T0) is not None

    def test_only_the_last_window_counts(self) -> None:
        """Old anger does not count once the last messages are calm."""
        chat = facts(scores=(-1.0, -1.0, -1.0, 0.1, 0.0, 0.2))
        assert escalation_due(chat, self.POLICY, T0) is None

    def test_needs_a_full_window(self) -> None:
        """Two furious messages are not enough for a window of three."""
        assert escalation_due(facts(scores=(-1.0, -1.0)), self.POLICY, T0) is None
        assert escalation_due(facts(scores=()), self.POLICY, T0) is None

    def test_window_of_one(self) -> None:
        """A window of one looks at the latest message alone, and says so."""
        policy = replace(self.POLICY, sentiment_window=1)
        assert escalation_due(facts(scores=(0.5, -0.8)), policy, T0) == Trigger(
            SENTIMENT, "Customer's last message scores -0.80 (limit -0.50)"
        )

    def test_disabled(self) -> None:
        """With `sentiment_below=None`, no mood escalates."""
        assert escalation_due(facts(scores=(-1.0, -1.0, -1.0)), OFF, T0) is None


class TestHandle:
    POLICY = replace(OFF, handle_seconds=1800)

    def test_fires_over_the_limit(self) -> None:
        """Held 31 minutes against a 30 minute limit escalates, with the times in the reason."""
        assert escalation_due(facts(), self.POLICY, minutes(31)) == Trigger(
            HANDLE, "Held 31 min by one agent (limit 30 min)"
        )

    def test_at_the_limit_does_not_fire(self) -> None:
        """Exactly 30 minutes is not over the limit; a microsecond more is."""
        assert escalation_due(facts(), self.POLICY, minutes(30)) is None
        assert escalation_due(facts(), self.POLICY, minutes(30) + TICK) is not None

    def test_reason_shows_the_overrun(self) -> None:
        """Just over the limit, the reason still reads over it; long holds read in hours."""
        just_over = escalation_due(facts(), self.POLICY, minutes(30) + timedelta(seconds=0.4))
        assert just_over == Trigger(HANDLE, "Held 30 min 1 s by one agent (limit 30 min)")
        later = escalation_due(facts(), self.POLICY, minutes(125))
        assert later == Trigger(HANDLE, "Held 2 h 5 min by one agent (limit 30 min)")

    @pytest.mark.parametrize("state", ["queued", "offline"])
    def test_only_assigned_chats(self, state: str) -> None:
        """Queued and offline chats have no holder to hold them too long."""
        assert escalation_due(facts(state), self.POLICY, minutes(600)) is None

    def test_disabled(self) -> None:
        """With `handle_seconds=None`, no hold is too long."""
        assert escalation_due(facts(), OFF, minutes(10_000)) is None


class TestWait:
    POLICY = replace(OFF, wait_seconds=600)

    def test_fires_over_the_limit(self) -> None:
        """Queued 12 minutes against a 10 minute limit escalates, with the times in the reason."""
        assert escalation_due(queued(), self.POLICY, minutes(12)) == Trigger(
            WAIT, "Waited 12 min in the queue (limit 10 min)"
        )

    def test_at_the_limit_does_not_fire(self) -> None:
        """Exactly 10 minutes is not over the limit; a microsecond more is."""
        assert escalation_due(queued(), self.POLICY, minutes(10)) is None
        assert escalation_due(queued(), self.POLICY, minutes(10) + TICK) is not None

    def test_short_limits_read_in_seconds(self) -> None:
        """Limits under a minute read in seconds."""
        policy = replace(OFF, wait_seconds=45)
        assert escalation_due(queued(), policy, minutes(1.5)) == Trigger(
            WAIT, "Waited 1 min 30 s in the queue (limit 45 s)"
        )

    def test_offline_never_waits(self) -> None:
        """A message left offline is not waiting in a queue."""
        chat = facts("offline", assigned_at=None)
        assert escalation_due(chat, self.POLICY, minutes(600)) is None

    def test_assigned_chat_is_not_waiting(self) -> None:
        """Time in the queue before an agent took it does not count against the agent."""
        assert escalation_due(facts(), self.POLICY, minutes(20)) is None

    def test_unknown_queue_time(self) -> None:
        """A queued chat without a queue time cannot be timed, so the wait rule stays quiet."""
        assert escalation_due(queued(queued_at=None), self.POLICY, minutes(600)) is None

    def test_disabled(self) -> None:
        """With `wait_seconds=None`, no wait is too long."""
        assert escalation_due(queued(), OFF, minutes(10_000)) is None


class TestOnce:
    @pytest.mark.parametrize(
        "chat",
        [
            facts(escalated=True, transfers=9, scores=(-1.0, -1.0, -1.0)),
            queued(escalated=True),
            facts("closed", transfers=9, scores=(-1.0, -1.0, -1.0)),
        ],
    )
    def test_escalated_or_closed_never_fires(self, chat: ChatFacts) -> None:
        """A chat escalates once, and a closed chat not at all."""
        assert escalation_due(chat, POLICY, minutes(10_000)) is None
        assert next_due_at(chat, POLICY) is None


class TestOrder:
    def test_rules_order(self) -> None:
        """The documented order of checking."""
        assert RULES == (TRANSFERS, SENTIMENT, HANDLE, WAIT)

    def test_transfers_then_sentiment_then_handle(self) -> None:
        """With every rule holding, transfers is reported; without it, sentiment; then handle."""
        angry = (-0.9, -0.9, -0.9)
        now = minutes(60)

        def rule(chat: ChatFacts) -> str | None:
            trigger = escalation_due(chat, POLICY, now)
            return None if trigger is None else trigger.rule

        assert rule(facts(transfers=3, scores=angry)) == TRANSFERS
        assert rule(facts(transfers=0, scores=angry)) == SENTIMENT
        assert rule(facts(transfers=0, scores=())) == HANDLE

    def test_sentiment_before_wait(self) -> None:
        """Sentiment is reported before a long wait."""
        chat = queued(scores=(-0.9, -0.9, -0.9))
        trigger = escalation_due(chat, POLICY, minutes(60))
        assert trigger is not None
        assert trigger.rule == SENTIMENT


class TestNextDueAt:
    def test_queued_chat(self) -> None:
        """Due when the wait limit is passed: the first instant `escalation_due` fires."""
        due = next_due_at(queued(), POLICY)
        assert due == minutes(10) + TICK
        assert escalation_due(queued(), POLICY, due) is not None
        assert escalation_due(queued(), POLICY, due - TICK) is None

    def test_assigned_chat(self) -> None:
        """Due when the handle limit is passed since the current agent got it."""
        start = minutes(5)
        chat = facts(assigned_at=start)
        assert next_due_at(chat, POLICY) == start + timedelta(seconds=1800) + TICK

    @pytest.mark.parametrize(
        ("chat", "policy"),
        [
            (facts("offline", assigned_at=None), POLICY),
            (queued(), replace(POLICY, wait_seconds=None)),
            (facts(), replace(POLICY, handle_seconds=None)),
            (queued(queued_at=None), POLICY),
            (facts(assigned_at=None), POLICY),
        ],
    )
    def test_nothing_to_wait_for(self, chat: ChatFacts, policy: EscalationPolicy) -> None:
        """Offline chats, disabled rules and missing start times have no due time."""
        assert next_due_at(chat, policy) is None


class TestPolicy:
    def test_defaults_follow_the_spec(self) -> None:
        """Ten minutes queued, thirty held, more than two transfers, a mean below -0.5 over
        the last three messages, and the eleven phrases of the spec."""
        assert (
            POLICY.wait_seconds,
            POLICY.handle_seconds,
            POLICY.max_transfers,
            POLICY.sentiment_below,
            POLICY.sentiment_window,
        ) == (600, 1800, 2, -0.5, 3)
        assert POLICY.phrases == DEFAULT_PHRASES
        assert len(DEFAULT_PHRASES) == 11

    @pytest.mark.parametrize(
        "build",
        [
            lambda: EscalationPolicy(wait_seconds=-1),
            lambda: EscalationPolicy(handle_seconds=-1),
            lambda: EscalationPolicy(max_transfers=-1),
            lambda: EscalationPolicy(sentiment_window=0),
        ],
    )
    def test_nonsense_is_refused(self, build: Callable[[], EscalationPolicy]) -> None:
        """Negative limits and an empty sentiment window are refused when built."""
        with pytest.raises(ValueError, match="must"):
            build()


STATES = st.sampled_from(["queued", "offline", "assigned", "closed"])
TIMES = st.datetimes(
    min_value=datetime(2026, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive; zone below
    max_value=datetime(2027, 1, 1),  # noqa: DTZ001 - as above
    timezones=st.just(UTC),
)
CHATS = st.builds(
    ChatFacts,
    state=STATES,
    queued_at=st.none() | TIMES,
    assigned_at=st.none() | TIMES,
    transfer_count=st.integers(0, 10),
    escalated=st.booleans(),
    customer_scores=st.lists(st.floats(-1, 1), max_size=8).map(tuple),
)
POLICIES = st.builds(
    EscalationPolicy,
    wait_seconds=st.none() | st.integers(0, 7200),
    handle_seconds=st.none() | st.integers(0, 7200),
    max_transfers=st.none() | st.integers(0, 5),
    sentiment_below=st.none() | st.floats(-1, 1),
    sentiment_window=st.integers(1, 5),
)


class TestProperties:
    @given(CHATS, POLICIES, TIMES)
    def test_escalated_never_fires(
        self, chat: ChatFacts, policy: EscalationPolicy, now: datetime
    ) -> None:
        """Whatever else holds, an escalated chat never escalates again."""
        assert escalation_due(replace(chat, escalated=True), policy, now) is None

    @given(CHATS, POLICIES)
    def test_due_at_is_the_first_instant(self, chat: ChatFacts, policy: EscalationPolicy) -> None:
        """With the other rules off, the time rule fires at `next_due_at` and not a tick before."""
        timed = replace(policy, max_transfers=None, sentiment_below=None)
        due = next_due_at(chat, timed)
        if due is None:
            return
        trigger = escalation_due(chat, timed, due)
        assert trigger is not None
        assert trigger.rule in (WAIT, HANDLE)
        assert escalation_due(chat, timed, due - TICK) is None

    @given(st.text(max_size=60), st.sampled_from(DEFAULT_PHRASES))
    def test_a_phrase_inside_any_text_matches(self, text: str, phrase: str) -> None:
        """A phrase set off by spaces matches wherever it is put, in any case."""
        found = asks_for_manager(f"{text} {phrase.upper()} {text}", [phrase])
        assert found == phrase


def test_a_new_deployment_escalates_on_the_default_phrases() -> None:
    """The settings row a fresh store creates carries the same phrases as the rules' default."""
    assert tuple(DEFAULT_ESCALATION_PHRASES) == DEFAULT_PHRASES
