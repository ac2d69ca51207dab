"""Unit tests for `app.chat.templates`: the variables of canned responses and their rendering.

Pure inputs, no loop, no database.
"""

from __future__ import annotations

from app.chat.templates import (
    NAME_FALLBACK,
    SKILL_FALLBACK,
    VARIABLES,
    RenderContext,
    first_name,
    render,
    unknown_variables,
    variables_in,
)
from app.cli import DEMO_CANNED

CONTEXT = RenderContext(
    visitor_name="Ada Lovelace",
    visitor_email="ada@example.com",
    agent_name="Dana Reyes",
    conversation_id="4aa75819-33aa-4ce4-9556-8412d9c20f97",
    skill_name="Billing",
)


class TestVariables:
    def test_found_once_each_in_order(self) -> None:
        """A text's variables are listed once each, in the order they first appear, spaces
        inside the braces ignored."""
        text = "{{agent.name}} {{ visitor.name }} and {{agent.name}} again"
        assert variables_in(text) == ["agent.name", "visitor.name"]

    def test_every_documented_variable_is_known(self) -> None:
        """A text using every documented variable has nothing unknown."""
        text = " ".join(f"{{{{{name}}}}}" for name in VARIABLES)
        assert unknown_variables(text) == []

    def test_typos_and_other_names_are_unknown(self) -> None:
        """A misspelt or invented variable is reported, so it is refused when saved."""
        text = "Hi {{visitor.nam}}, {{ order.id }} and {{}} {{visitor.name}}"
        assert unknown_variables(text) == ["visitor.nam", "order.id", ""]

    def test_unfinished_braces_are_plain_text(self) -> None:
        """Single braces and an unclosed `{{` are text, not variables."""
        assert variables_in("use {curly} or {{ unclosed") == []


class TestRender:
    def test_every_variable_filled(self) -> None:
        """Each variable is replaced by the chat's value."""
        text = (
            "{{visitor.name}}|{{visitor.first_name}}|{{visitor.email}}|{{agent.name}}|"
            "{{agent.first_name}}|{{conversation.id}}|{{skill.name}}"
        )
        assert render(text, CONTEXT.values()) == (
            "Ada Lovelace|Ada|ada@example.com|Dana Reyes|Dana|"
            "4aa75819-33aa-4ce4-9556-8412d9c20f97|Billing"
        )

    def test_fallbacks_for_a_visitor_without_name_or_email_and_no_skill(self) -> None:
        """Without a name the visitor is "there" ("Hi there"); no email is empty; a chat
        without a skill is "support"."""
        context = RenderContext(
            visitor_name="  ",
            visitor_email=None,
            agent_name="Dana",
            conversation_id="c",
            skill_name=None,
        )
        text = "Hi {{visitor.first_name}} / {{visitor.name}} <{{visitor.email}}> {{skill.name}}"
        assert render(text, context.values()) == (
            f"Hi {NAME_FALLBACK} / {NAME_FALLBACK} <> {SKILL_FALLBACK}"
        )

    def test_values_are_not_rendered_again(self) -> None:
        """A visitor whose name looks like a variable is greeted by that literal name."""
        context = RenderContext(
            visitor_name="{{agent.name}}",
            visitor_email=None,
            agent_name="Dana",
            conversation_id="c",
            skill_name=None,
        )
        assert render("Hi {{visitor.name}}", context.values()) == "Hi {{agent.name}}"

    def test_unknown_variable_left_as_written(self) -> None:
        """A variable without a value stays as written rather than vanishing."""
        assert render("Order {{order.id}}", CONTEXT.values()) == "Order {{order.id}}"

    def test_first_name(self) -> None:
        """The first word of a name; nothing for a blank one."""
        assert first_name(" Ada  Lovelace ") == "Ada"
        assert first_name("") is None
        assert first_name(None) is None


class TestDemoData:
    def test_demo_replies_render_fully(self) -> None:
        """Every canned response `warmline demo` loads names only known variables, so each one
        renders without a `{{` left in the text."""
        for shortcut, _title, text, _skill in DEMO_CANNED:
            assert unknown_variables(text) == [], shortcut
            assert "{{" not in render(text, CONTEXT.values()), shortcut
