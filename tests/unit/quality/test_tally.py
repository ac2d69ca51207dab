"""Unit tests for `app.quality.tally`: the quality report's lines by agent, reviewer,
criterion and day, against sums done by hand. Pure: no loop, no database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.quality.tally import Line, QualityGroupBy, Reviewed, tally

ANN, BOB, SAM = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
NIGHT = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # 2 December already in Paris
REVIEWS = [
    Reviewed(ANN, SAM, NIGHT, 70.0, {"greeting": 1.0, "empathy": 0.4}),
    Reviewed(ANN, SAM, NIGHT, 18.75, {"greeting": 0.75}, frozenset({"empathy"})),
    Reviewed(BOB, None, NIGHT, None, {}, frozenset({"empathy"})),
]


class TestTally:
    def test_by_agent(self) -> None:
        """Ann: two reviews, mean (70 + 18.75) / 2 = 44.38 (44.375 rounded half to even shows
        44.38), greeting (100 + 75) / 2, empathy 40 from the one review that scored it; Bob:
        one review, all n/a, no average."""
        got = tally(REVIEWS, QualityGroupBy.AGENT)
        assert got == {
            str(ANN): Line(2, 2, 44.38, {"empathy": 40.0, "greeting": 87.5}),
            str(BOB): Line(1, 0, None, {}),
        }

    def test_by_agent_keeps_a_deleted_agent_apart(self) -> None:
        """A review whose agent is gone (None) is counted in the null group."""
        gone = Reviewed(None, SAM, NIGHT, 50.0, {"greeting": 0.5})
        assert tally([gone], QualityGroupBy.AGENT) == {None: Line(1, 1, 50.0, {"greeting": 50.0})}

    def test_by_reviewer_keeps_a_deleted_reviewer_apart(self) -> None:
        """A review whose reviewer is gone (None) is counted in the null group."""
        got = tally(REVIEWS, QualityGroupBy.REVIEWER)
        assert got[str(SAM)].reviews == 2
        assert got[None] == Line(1, 0, None, {})

    def test_by_criterion(self) -> None:
        """Each criterion: the reviews holding it, those scoring it, and its mean percentage;
        empathy was scored once (40 %) and n/a twice."""
        got = tally(REVIEWS, QualityGroupBy.CRITERION)
        assert got == {
            "greeting": Line(2, 2, 87.5, {}),
            "empathy": Line(3, 1, 40.0, {}),
        }

    def test_by_day_in_a_zone(self) -> None:
        """The day of the close in `tz`: 23:30 UTC on 1 December is 2 December in Paris."""
        assert set(tally(REVIEWS, QualityGroupBy.DAY)) == {"2026-12-01"}
        assert set(tally(REVIEWS, QualityGroupBy.DAY, "Europe/Paris")) == {"2026-12-02"}

    def test_total(self) -> None:
        """No grouping: one line, every review once: (70 + 18.75) / 2 over the two scored."""
        assert tally(REVIEWS, None) == {
            None: Line(3, 2, 44.38, {"empathy": 40.0, "greeting": 87.5})
        }
        assert tally([], None) == {}
