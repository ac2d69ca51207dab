"""Tags as the team sees them: one spelling per tag, whatever the agent typed."""

from __future__ import annotations

import pytest

from app.chat.labels import MAX_TAG_CHARS, MAX_TAGS, InvalidLabel, normalise_tags


def test_tags_are_trimmed_collapsed_lower_cased_and_counted_once() -> None:
    assert normalise_tags(["  Refund ", "VIP", "late   Parcel", "refund", "Vip"]) == [
        "refund",
        "vip",
        "late parcel",
    ]
    assert normalise_tags([]) == []


@pytest.mark.parametrize(
    "tags",
    [["   "], ["\t\n"], ["x" * (MAX_TAG_CHARS + 1)], [f"t{i}" for i in range(MAX_TAGS + 1)]],
    ids=["blank", "whitespace", "too-long", "too-many"],
)
def test_unusable_tags_are_refused(tags: list[str]) -> None:
    with pytest.raises(InvalidLabel) as refused:
        normalise_tags(tags)
    assert refused.value.code == "invalid_frame"


def test_duplicates_do_not_count_towards_the_limit() -> None:
    many = [f"t{i}" for i in range(MAX_TAGS)]
    assert normalise_tags([*many, *(t.upper() for t in many)]) == many
    # Long raw text that collapses to a short tag is fine.
    assert normalise_tags(["a" + " " * 40 + "b"]) == ["a b"]
