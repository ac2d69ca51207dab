"""Unit tests for `app.quality.scoring`: what a rubric and a review may hold, and the overall
score, checked against values computed by hand. Pure: no loop, no database."""

from __future__ import annotations

from dataclasses import replace

import pytest

from app.quality.scoring import (
    DEFAULT_CRITERIA,
    Criterion,
    Scale,
    Score,
    as_json,
    check_rubric,
    check_scores,
    fractions,
    from_json,
    overall,
    shown,
)

GREETING = Criterion("greeting", "Greeting", "", 1, Scale.POINTS, 5, allow_na=False)
EMPATHY = Criterion("empathy", "Empathy", "", 2, Scale.POINTS, 5, allow_na=True)
ACCURACY = Criterion("accuracy", "Accuracy", "", 3, Scale.YES_NO, None, allow_na=True)
RESOLUTION = Criterion("resolution", "Resolution", "", 4, Scale.POINTS, 3, allow_na=True)
RUBRIC = (GREETING, EMPATHY, ACCURACY, RESOLUTION)


def marks(**values: int | None) -> list[Score]:
    return [Score(key, value) for key, value in values.items()]


class TestOverall:
    def test_weighted_mean_of_fractions(self) -> None:
        """greeting 5/5 (1.0, w1), empathy 3/5 (0.5, w2), accuracy yes (1.0, w3), resolution 2
        of 1-3 (0.5, w4): 100 * (1 + 1 + 3 + 2) / 10 = 70."""
        got = overall(RUBRIC, marks(greeting=5, empathy=3, accuracy=1, resolution=2))
        assert got == pytest.approx(70.0)

    def test_not_applicable_is_left_out_of_both_sums(self) -> None:
        """With empathy and resolution n/a: 100 * (1 * 0.75 + 3 * 0) / (1 + 3) = 18.75, not a
        score dragged down by the n/a criteria's weights."""
        got = overall(RUBRIC, marks(greeting=4, empathy=None, accuracy=0, resolution=None))
        assert got == pytest.approx(18.75)

    def test_lowest_everywhere_is_zero_and_highest_is_hundred(self) -> None:
        """The lowest value of every scale scores 0 (a 1 of 1-5 is 0 %, a "no" is 0 %), the
        highest 100."""
        assert overall(RUBRIC, marks(greeting=1, empathy=1, accuracy=0, resolution=1)) == 0
        assert overall(RUBRIC, marks(greeting=5, empathy=5, accuracy=1, resolution=3)) == 100

    def test_all_not_applicable_has_no_score(self) -> None:
        """A review whose every criterion is n/a has no overall score (None), not 0."""
        rubric = (EMPATHY, ACCURACY)
        assert overall(rubric, marks(empathy=None, accuracy=None)) is None

    def test_fractions_by_key_without_na(self) -> None:
        """Each scored criterion's fraction of its scale; n/a ones are absent."""
        got = fractions(RUBRIC, marks(greeting=2, empathy=None, accuracy=1, resolution=3))
        assert got == {"greeting": 0.25, "accuracy": 1.0, "resolution": 1.0}

    def test_fractions_ignore_keys_the_rubric_lacks(self) -> None:
        """A stored score whose key its rubric version does not have counts for nothing."""
        assert fractions(RUBRIC, [Score("tone", 2)]) == {}

    def test_shown_rounds_to_hundredths(self) -> None:
        """5/6 of 100 is shown as 83.33; None stays None."""
        assert shown(500 / 6) == 83.33
        assert shown(None) is None


class TestCheckScores:
    def test_a_complete_review_passes(self) -> None:
        """Every criterion once, values on their scales, n/a where allowed: no problem."""
        assert check_scores(RUBRIC, marks(greeting=3, empathy=None, accuracy=0, resolution=3)) == []

    @pytest.mark.parametrize(
        ("values", "where", "message"),
        [
            ({"greeting": 6}, ("body", "scores", 0, "value"), "'greeting' is scored from 1 to 5"),
            ({"greeting": 0}, ("body", "scores", 0, "value"), "'greeting' is scored from 1 to 5"),
            (
                {"accuracy": 2},
                ("body", "scores", 2, "value"),
                "'accuracy' is scored 0 (no) or 1 (yes)",
            ),
            (
                {"resolution": 4},
                ("body", "scores", 3, "value"),
                "'resolution' is scored from 1 to 3",
            ),
            ({"greeting": None}, ("body", "scores", 0, "value"), "'greeting' cannot be marked n/a"),
        ],
    )
    def test_values_off_the_scale_or_na_where_not_allowed(
        self, values: dict[str, int | None], where: tuple[object, ...], message: str
    ) -> None:
        """A value outside its criterion's scale, or n/a where the criterion does not allow it,
        is refused at that score's value."""
        given = {"greeting": 3, "empathy": 3, "accuracy": 1, "resolution": 2, **values}
        assert check_scores(RUBRIC, marks(**given)) == [(where, message)]

    def test_unknown_repeated_and_missing_criteria(self) -> None:
        """An unknown key, a key given twice, and criteria not given at all are each named."""
        scores = [Score("greeting", 3), Score("tone", 2), Score("greeting", 4)]
        assert check_scores(RUBRIC, scores) == [
            (("body", "scores", 1, "key"), "the rubric has no criterion 'tone'"),
            (("body", "scores", 2, "key"), "'greeting' is scored twice"),
            (
                ("body", "scores"),
                "every criterion needs a score (null for n/a); missing: empathy, accuracy, "
                "resolution",
            ),
        ]


class TestCheckRubric:
    def test_the_default_rubric_is_valid(self) -> None:
        """The default rubric (greeting, empathy, accuracy, resolution) passes its own rules."""
        assert check_rubric(DEFAULT_CRITERIA) == []
        assert [c.key for c in DEFAULT_CRITERIA] == [
            "greeting",
            "empathy",
            "accuracy",
            "resolution",
        ]

    def test_every_rule(self) -> None:
        """Bad keys, a repeated key, weights out of range, a points scale without a sane top and
        a yes/no with points are each named at their field."""
        criteria = [
            replace(GREETING, key="Greeting"),
            replace(EMPATHY, weight=0),
            replace(EMPATHY, key="tone", points=11),
            replace(ACCURACY, points=5),
            replace(ACCURACY, key="accuracy", weight=101),
            replace(RESOLUTION, points=None),
        ]
        assert check_rubric(criteria) == [
            (
                ("body", "criteria", 0, "key"),
                "a lower-case letter, then letters, digits or _ (32 at most)",
            ),
            (("body", "criteria", 1, "weight"), "from 1 to 100"),
            (("body", "criteria", 2, "points"), "a points scale tops out between 2 and 10"),
            (("body", "criteria", 3, "points"), "a yes/no criterion has no points"),
            (("body", "criteria", 4, "key"), "'accuracy' appears twice"),
            (("body", "criteria", 4, "weight"), "from 1 to 100"),
            (("body", "criteria", 5, "points"), "a points scale tops out between 2 and 10"),
        ]

    def test_size(self) -> None:
        """An empty rubric and one of more than 20 criteria are refused."""
        assert check_rubric([]) == [(("body", "criteria"), "a rubric needs at least one criterion")]
        many = [replace(GREETING, key=f"c{i}") for i in range(21)]
        assert check_rubric(many) == [(("body", "criteria"), "at most 20 criteria")]

    def test_json_round_trip(self) -> None:
        """A criterion stored as JSON reads back equal."""
        for criterion in RUBRIC:
            assert from_json(as_json(criterion)) == criterion
