"""The quality rubric and the score of one review: criteria, scales, and the weighted percentage.

Pure: no I/O, no clock, no randomness. `quality.service` loads the rubric version a review is
scored against, calls `check_rubric()` / `check_scores()` on what a client sent (each answers
the problems it finds, as `(location, message)` pairs the API turns into a 422) and `overall()`
for the stored score. Every definition here is written out in docs/metrics.md#quality-reviews;
change one only together with that text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Shown with two decimals: a hundredth of a percentage point.
SCORE_DIGITS = 2
# A rubric has at least one criterion and no more than a page of them.
MAX_CRITERIA = 20
MAX_WEIGHT = 100
# A points scale runs from 1 to `points`: 2 (a pass/fail in numbers) up to 10.
MIN_POINTS = 2
MAX_POINTS = 10
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,31}$")

Location = tuple[str | int, ...]
Problem = tuple[Location, str]


class Scale(enum.StrEnum):
    POINTS = "points"  # 1 .. points
    YES_NO = "yes_no"  # 0 (no) or 1 (yes)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One thing a reviewer scores. `points` is the top of a points scale (None for yes/no)."""

    key: str
    label: str
    description: str
    weight: int
    scale: Scale
    points: int | None
    allow_na: bool

    def lowest(self) -> int:
        return 0 if self.scale is Scale.YES_NO else 1

    def highest(self) -> int:
        if self.scale is Scale.YES_NO:
            return 1
        assert self.points is not None  # noqa: S101 - check_rubric() refuses a points scale without
        return self.points

    def fraction(self, score: int) -> float:
        """The score as a fraction of the scale: the lowest value 0, the highest 1, linear."""
        low, high = self.lowest(), self.highest()
        return (score - low) / (high - low)


@dataclass(frozen=True, slots=True)
class Score:
    """A reviewer's mark on one criterion: `value` None means "not applicable"."""

    key: str
    value: int | None
    comment: str | None = None


DEFAULT_CRITERIA: tuple[Criterion, ...] = (
    Criterion(
        "greeting",
        "Greeting",
        "Greeted the customer by name and introduced themselves promptly.",
        1,
        Scale.POINTS,
        5,
        allow_na=False,
    ),
    Criterion(
        "empathy",
        "Empathy",
        "Acknowledged the customer's situation and kept a warm, respectful tone.",
        2,
        Scale.POINTS,
        5,
        allow_na=True,
    ),
    Criterion(
        "accuracy",
        "Accuracy",
        "Gave correct, complete information and followed policy.",
        3,
        Scale.POINTS,
        5,
        allow_na=True,
    ),
    Criterion(
        "resolution",
        "Resolution",
        "The customer's issue was resolved, or handed on with a clear next step.",
        3,
        Scale.YES_NO,
        None,
        allow_na=True,
    ),
)


def check_rubric(criteria: Sequence[Criterion]) -> list[Problem]:
    """What is wrong with a rubric an admin sent (field-level checks are the API's): between 1
    and MAX_CRITERIA criteria, keys unique and slug-shaped, a points scale with its top between
    MIN_POINTS and MAX_POINTS, yes/no without one, weights from 1 to MAX_WEIGHT."""
    problems: list[Problem] = []
    if not criteria:
        problems.append((("body", "criteria"), "a rubric needs at least one criterion"))
    if len(criteria) > MAX_CRITERIA:
        problems.append((("body", "criteria"), f"at most {MAX_CRITERIA} criteria"))
    seen: set[str] = set()
    for index, criterion in enumerate(criteria):
        at: Location = ("body", "criteria", index)
        if not KEY_PATTERN.match(criterion.key):
            problems.append(
                ((*at, "key"), "a lower-case letter, then letters, digits or _ (32 at most)")
            )
        elif criterion.key in seen:
            problems.append(((*at, "key"), f"{criterion.key!r} appears twice"))
        seen.add(criterion.key)
        if not 1 <= criterion.weight <= MAX_WEIGHT:
            problems.append(((*at, "weight"), f"from 1 to {MAX_WEIGHT}"))
        if criterion.scale is Scale.POINTS:
            if criterion.points is None or not MIN_POINTS <= criterion.points <= MAX_POINTS:
                problems.append(
                    (
                        (*at, "points"),
                        f"a points scale tops out between {MIN_POINTS} and {MAX_POINTS}",
                    )
                )
        elif criterion.points is not None:
            problems.append(((*at, "points"), "a yes/no criterion has no points"))
    return problems


def check_scores(criteria: Sequence[Criterion], scores: Sequence[Score]) -> list[Problem]:
    """What is wrong with a review's scores against its rubric: every criterion scored exactly
    once (n/a is a score, given as null, and only where the criterion allows it), no criterion
    the rubric does not have, each value on its criterion's scale."""
    problems: list[Problem] = []
    by_key = {c.key: c for c in criteria}
    given: set[str] = set()
    for index, score in enumerate(scores):
        at: Location = ("body", "scores", index)
        criterion = by_key.get(score.key)
        if criterion is None:
            problems.append(((*at, "key"), f"the rubric has no criterion {score.key!r}"))
            continue
        if score.key in given:
            problems.append(((*at, "key"), f"{score.key!r} is scored twice"))
        given.add(score.key)
        if score.value is None:
            if not criterion.allow_na:
                problems.append(((*at, "value"), f"{score.key!r} cannot be marked n/a"))
        elif not criterion.lowest() <= score.value <= criterion.highest():
            scale = (
                "0 (no) or 1 (yes)"
                if criterion.scale is Scale.YES_NO
                else (f"from 1 to {criterion.highest()}")
            )
            problems.append(((*at, "value"), f"{score.key!r} is scored {scale}"))
    missing = [c.key for c in criteria if c.key not in given]
    if missing:
        problems.append(
            (
                ("body", "scores"),
                "every criterion needs a score (null for n/a); missing: " + ", ".join(missing),
            )
        )
    return problems


def fractions(criteria: Sequence[Criterion], scores: Sequence[Score]) -> dict[str, float]:
    """Each scored criterion's fraction of its scale (n/a ones left out), by key."""
    by_key = {c.key: c for c in criteria}
    return {
        s.key: by_key[s.key].fraction(s.value)
        for s in scores
        if s.value is not None and s.key in by_key
    }


def overall(criteria: Sequence[Criterion], scores: Sequence[Score]) -> float | None:
    """The review's score in per cent: the weighted mean of the scored criteria's fractions,
    times 100; None when every criterion is n/a. Scores must have passed `check_scores()`.

    100 * sum(weight_i * fraction_i) / sum(weight_i), over the criteria not marked n/a, where
    fraction = (value - lowest) / (highest - lowest) of the criterion's scale.
    """
    weights: Mapping[str, int] = {c.key: c.weight for c in criteria}
    parts = fractions(criteria, scores)
    total = sum(weights[key] for key in parts)
    if total == 0:
        return None
    return 100 * sum(weights[key] * part for key, part in parts.items()) / total


def shown(value: float | None) -> float | None:
    """A score as the API shows it: rounded to SCORE_DIGITS."""
    return None if value is None else round(value, SCORE_DIGITS)


def as_json(criterion: Criterion) -> dict[str, object]:
    """A criterion as `quality_rubrics.criteria` stores it and the API shows it."""
    return {
        "key": criterion.key,
        "label": criterion.label,
        "description": criterion.description,
        "weight": criterion.weight,
        "scale": criterion.scale.value,
        "points": criterion.points,
        "allow_na": criterion.allow_na,
    }


def from_json(stored: Mapping[str, object]) -> Criterion:
    """A criterion as stored (written by `as_json()`)."""
    points = stored.get("points")
    weight = stored["weight"]
    assert isinstance(weight, int)  # noqa: S101 - written by as_json()
    return Criterion(
        key=str(stored["key"]),
        label=str(stored["label"]),
        description=str(stored.get("description") or ""),
        weight=weight,
        scale=Scale(str(stored["scale"])),
        points=points if isinstance(points, int) else None,
        allow_na=bool(stored.get("allow_na")),
    )
