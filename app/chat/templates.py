"""The variables of canned responses: which exist, which a text uses, and filling them in.

Pure: no I/O, no clock. `chat.canned` refuses a text naming an unknown variable when it is
saved, so rendering never meets one; it loads the values (visitor, agent, conversation, skill)
and calls `render()`. Reference: docs/api.md#canned-responses.

A variable is written `{{visitor.name}}`; spaces inside the braces are allowed
(`{{ visitor.name }}`). Values are inserted as they are, in one pass: a visitor who calls
themselves `{{agent.name}}` is greeted by that literal name, never by the agent's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# The greeting that reads naturally when the visitor gave no name: "Hi there".
NAME_FALLBACK = "there"
# A chat without a skill is handled by the team at large.
SKILL_FALLBACK = "support"

VARIABLES = (
    "visitor.name",
    "visitor.first_name",
    "visitor.email",
    "agent.name",
    "agent.first_name",
    "conversation.id",
    "skill.name",
)
_KNOWN = frozenset(VARIABLES)
# `{{` then anything but braces then `}}`: an unfinished `{{` is plain text.
_VARIABLE = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")


def variables_in(text: str) -> list[str]:
    """Every variable `text` names, once each, in order of first appearance."""
    found: list[str] = []
    for match in _VARIABLE.finditer(text):
        name = match.group(1)
        if name not in found:
            found.append(name)
    return found


def unknown_variables(text: str) -> list[str]:
    """The variables `text` names that `render()` cannot fill, in order of appearance."""
    return [name for name in variables_in(text) if name not in _KNOWN]


def first_name(name: str | None) -> str | None:
    """The first word of a name ("Ada Lovelace" → "Ada"); None for a blank one."""
    words = (name or "").split()
    return words[0] if words else None


@dataclass(frozen=True, slots=True)
class RenderContext:
    """What the variables are filled from; None where the conversation has no such value."""

    visitor_name: str | None
    visitor_email: str | None
    agent_name: str
    conversation_id: str
    skill_name: str | None

    def values(self) -> dict[str, str]:
        """Each variable's text, with the documented fallbacks for missing values."""
        visitor_name = (self.visitor_name or "").strip()
        return {
            "visitor.name": visitor_name or NAME_FALLBACK,
            "visitor.first_name": first_name(visitor_name) or NAME_FALLBACK,
            "visitor.email": self.visitor_email or "",
            "agent.name": self.agent_name,
            "agent.first_name": first_name(self.agent_name) or self.agent_name,
            "conversation.id": self.conversation_id,
            "skill.name": self.skill_name or SKILL_FALLBACK,
        }


def render(text: str, values: Mapping[str, str]) -> str:
    """`text` with every known variable replaced by its value.

    A variable missing from `values` is left as written (saved texts name none: they were
    checked with `unknown_variables`).
    """

    def fill(match: re.Match[str]) -> str:
        value = values.get(match.group(1))
        return match.group(0) if value is None else value

    return _VARIABLE.sub(fill, text)
