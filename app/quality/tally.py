"""Adding quality reviews up into report lines: by agent, by reviewer, by criterion or by day.

Pure: no I/O, no clock. `quality.service` reads the reviews of the range and the rubric versions
they were scored against, and calls `tally()`; the same Python adds up on PostgreSQL and SQLite
(reviews are a few per agent and day, not the millions of events a log holds). Definitions:
docs/metrics.md#quality-reviews.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from app.quality.scoring import shown


class QualityGroupBy(enum.StrEnum):
    AGENT = "agent"
    REVIEWER = "reviewer"
    CRITERION = "criterion"
    DAY = "day"


@dataclass(frozen=True, slots=True)
class Reviewed:
    """What a report needs of one review: whom it is about, by whom, when the conversation
    closed, its overall score, and each scored criterion's fraction (n/a ones absent)."""

    agent_id: uuid.UUID | None
    reviewer_id: uuid.UUID | None
    closed_at: datetime
    overall: float | None
    fractions: dict[str, float]
    not_applicable: frozenset[str] = frozenset()


@dataclass(slots=True)
class _Sums:
    reviews: int = 0
    scored: int = 0
    total: float = 0.0
    criteria: dict[str, tuple[int, float]] = field(default_factory=dict)

    def add(self, overall: float | None) -> None:
        self.reviews += 1
        if overall is not None:
            self.scored += 1
            self.total += overall

    def add_criterion(self, key: str, fraction: float) -> None:
        count, total = self.criteria.get(key, (0, 0.0))
        self.criteria[key] = (count + 1, total + fraction)


@dataclass(frozen=True, slots=True)
class Line:
    """One group's figures. `average_score`: the mean of the scored reviews' overall scores (by
    criterion: of that criterion's percentages); `criteria`: each criterion's mean percentage
    over the reviews that scored it (empty by criterion)."""

    reviews: int
    scored: int
    average_score: float | None
    criteria: dict[str, float | None]


def _key(review: Reviewed, group_by: QualityGroupBy | None, zone: ZoneInfo) -> str | None:
    if group_by is QualityGroupBy.AGENT:
        return None if review.agent_id is None else str(review.agent_id)
    if group_by is QualityGroupBy.REVIEWER:
        return None if review.reviewer_id is None else str(review.reviewer_id)
    if group_by is QualityGroupBy.DAY:
        return review.closed_at.astimezone(zone).date().isoformat()
    return None


def tally(
    reviews: Iterable[Reviewed], group_by: QualityGroupBy | None, zone: str = "UTC"
) -> dict[str | None, Line]:
    """Each group's line; `group_by` None: one line (key None) with every review once. By
    criterion a review counts in each criterion it holds, scored or n/a."""
    tz = ZoneInfo(zone)
    sums: dict[str | None, _Sums] = {}
    for review in reviews:
        if group_by is QualityGroupBy.CRITERION:
            for key in sorted(review.not_applicable):
                sums.setdefault(key, _Sums()).add(None)
            for key, fraction in review.fractions.items():
                sums.setdefault(key, _Sums()).add(100 * fraction)
            continue
        group = sums.setdefault(_key(review, group_by, tz), _Sums())
        group.add(review.overall)
        for key, fraction in review.fractions.items():
            group.add_criterion(key, fraction)
    return {
        key: Line(
            reviews=found.reviews,
            scored=found.scored,
            average_score=shown(found.total / found.scored) if found.scored else None,
            criteria={
                name: shown(100 * total / count)
                for name, (count, total) in sorted(found.criteria.items())
            },
        )
        for key, found in sums.items()
    }
