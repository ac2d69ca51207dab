"""Unit tests for what keeps the check after each customer message cheap: the process's cache
of the stored escalation settings (`handoff.summaries.SettingsCache`) and the scores of
customer messages kept per (conversation, seq) (`handoff.summaries.ScoreCache`). No loop, no
database: the settings cache is fed a fake clock.
"""

from __future__ import annotations

import uuid

from app.handoff.rules import EscalationPolicy
from app.handoff.sentiment import DEFAULT_SCORER
from app.handoff.summaries import ScoreCache, SettingsCache, StoredSettings

DB = "postgresql+asyncpg://warmline@db/warmline"
OLD = StoredSettings(EscalationPolicy(), ())
NEW = StoredSettings(EscalationPolicy(phrases=("a human please",)), ("Widget Pro",))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingScorer:
    """Scores every text 0.25 (or `mark`) and counts the texts it was asked about."""

    def __init__(self, mark: float = 0.25) -> None:
        self.mark = mark
        self.texts: list[str] = []

    def score(self, text: str) -> float:
        self.texts.append(text)
        return self.mark


class TestSettingsCache:
    def test_kept_until_the_ttl_has_passed(self) -> None:
        """Settings read at t are returned until t + ttl, not at t + ttl."""
        clock = Clock()
        cache = SettingsCache(ttl=5.0, clock=clock)
        assert cache.get(DB, 0) is None
        cache.put(DB, 0, clock(), OLD)
        clock.now += 4.999
        assert cache.get(DB, 0) is OLD
        clock.now += 0.001
        assert cache.get(DB, 0) is None

    def test_a_newer_version_makes_it_stale_at_once(self) -> None:
        """A change committed on this node (a new version) is never answered from the copy
        read before it, however young."""
        clock = Clock()
        cache = SettingsCache(ttl=5.0, clock=clock)
        cache.put(DB, 3, clock(), OLD)
        assert cache.get(DB, 4) is None
        cache.put(DB, 4, clock(), NEW)
        assert cache.get(DB, 4) is NEW

    def test_the_age_counts_from_before_the_read(self) -> None:
        """A copy is as old as the moment its read began (`read_at`), not when it was put."""
        clock = Clock()
        cache = SettingsCache(ttl=5.0, clock=clock)
        started = clock()
        clock.now += 3.0  # a slow read
        cache.put(DB, 0, started, OLD)
        clock.now += 2.0
        assert cache.get(DB, 0) is None

    def test_one_copy_per_database(self) -> None:
        """Two databases in one process (as in the tests) never see each other's settings."""
        clock = Clock()
        cache = SettingsCache(ttl=5.0, clock=clock)
        cache.put(DB, 0, clock(), OLD)
        assert cache.get(DB + "_other", 0) is None
        cache.put(DB + "_other", 0, clock(), NEW)
        assert (cache.get(DB, 0), cache.get(DB + "_other", 0)) == (OLD, NEW)


class TestScoreCache:
    def test_each_message_is_scored_once(self) -> None:
        """The window slides over the customer's messages: each text is scored once, and the
        scores come back in the order asked."""
        scorer = CountingScorer()
        cache = ScoreCache(size=100)
        chat = uuid.uuid4()
        assert cache.scores(scorer, chat, [(2, "a"), (4, "b"), (6, "c")]) == [0.25] * 3
        assert cache.scores(scorer, chat, [(4, "b"), (6, "c"), (8, "d")]) == [0.25] * 3
        assert scorer.texts == ["a", "b", "c", "d"]

    def test_matches_scoring_each_time(self) -> None:
        """With the lexicon scorer, cached scores equal fresh ones."""
        said = [(2, "This is terrible!"), (3, "thanks, that works"), (5, "not bad at all")]
        cache = ScoreCache()
        chat = uuid.uuid4()
        fresh = [DEFAULT_SCORER.score(text) for _, text in said]
        assert cache.scores(DEFAULT_SCORER, chat, said) == fresh
        assert cache.scores(DEFAULT_SCORER, chat, said) == fresh

    def test_kept_per_scorer_and_per_conversation(self) -> None:
        """Another scorer, or the same seq of another conversation, is scored anew."""
        first, second = CountingScorer(0.5), CountingScorer(-0.5)
        cache = ScoreCache()
        one, two = uuid.uuid4(), uuid.uuid4()
        assert cache.scores(first, one, [(2, "a")]) == [0.5]
        assert cache.scores(second, one, [(2, "a")]) == [-0.5]
        assert cache.scores(first, two, [(2, "a")]) == [0.5]
        assert (first.texts, second.texts) == (["a", "a"], ["a"])

    def test_marks_out_of_range_are_clamped(self) -> None:
        """A plug-in scorer's mark outside [-1, 1] is clamped, as the rule always did."""
        cache = ScoreCache()
        chat = uuid.uuid4()
        assert cache.scores(CountingScorer(-7.0), chat, [(2, "a")]) == [-1.0]
        assert cache.scores(CountingScorer(3.0), chat, [(3, "b")]) == [1.0]

    def test_bounded_least_recently_used_first_out(self) -> None:
        """Past its size the cache drops the score used longest ago, which is scored again
        when asked for."""
        scorer = CountingScorer()
        cache = ScoreCache(size=2)
        chat = uuid.uuid4()
        cache.scores(scorer, chat, [(1, "a"), (2, "b")])
        cache.scores(scorer, chat, [(1, "a")])  # 2 is now the least recently used
        cache.scores(scorer, chat, [(3, "c")])
        cache.scores(scorer, chat, [(1, "a"), (2, "b")])
        assert scorer.texts == ["a", "b", "c", "b"]
