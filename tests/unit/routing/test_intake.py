"""The skill a new chat needs: topic, then page, then the words of the first message."""

from __future__ import annotations

from app.routing.intake import Inference, SkillRule, infer_skill

BILLING = SkillRule(
    1, "billing", keywords=("refund", "invoice", "credit card"), page_patterns=("/billing*",)
)
TECH = SkillRule(
    2, "technical", keywords=("error", "login", "not working"), page_patterns=("/docs/*",)
)
RULES = (BILLING, TECH)


def infer(text: str, *, topic: int | None = None, page: str | None = None) -> Inference:
    return infer_skill(RULES, topic_skill_id=topic, page_url=page, first_message=text)


class TestInferSkill:
    def test_topic_chosen_by_the_visitor_wins(self) -> None:
        """A pre-chat topic decides, whatever the page or the words say."""
        assert infer("refund please", topic=2, page="https://x.example/billing") == Inference(
            2, "topic"
        )

    def test_page_pattern_before_words(self) -> None:
        """A chat started on a billing page needs billing, even if it mentions an error."""
        got = infer("I see an error", page="https://shop.example/billing/plans?x=1")
        assert got == Inference(1, "page", ("/billing*",))

    def test_words_of_the_first_message(self) -> None:
        """Keywords are matched case-insensitively as whole words."""
        assert infer("Where is my INVOICE?") == Inference(1, "message", ("invoice",))
        assert infer("invoices") == Inference(None, "none")  # whole words only

    def test_phrases_weigh_by_their_words(self) -> None:
        """A two-word phrase outweighs a single keyword of another skill."""
        got = infer("my refund page is not working")
        assert got.skill_id == 2
        assert got.matched == ("not working",)

    def test_more_mentions_win_ties_by_slug(self) -> None:
        """Equal scores go to the skill whose slug sorts first, so the answer is stable."""
        assert infer("refund error").skill_id == 1

    def test_nothing_recognised(self) -> None:
        """No topic, no matching page, no keyword: no skill is required (anyone may answer)."""
        assert infer("hello", page="https://x.example/") == Inference(None, "none")

    def test_blank_keyword_is_ignored(self) -> None:
        """A keyword of punctuation only never matches."""
        rules = (SkillRule(3, "odd", keywords=("!!",)),)
        assert infer_skill(
            rules, topic_skill_id=None, page_url=None, first_message="!!"
        ) == Inference(None, "none")
