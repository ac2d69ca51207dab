"""Which skill a new conversation needs: from the pre-chat topic, the page, or the first message.

Pure: no I/O, no clock. `chat.service` loads the skills' rules and calls `infer_skill()` when a
visitor's first message opens a conversation. Rules: docs/routing.md#required-skill.

Precedence: a topic the visitor chose (the pre-chat form) wins; else the first skill whose page
pattern matches the page the chat started on; else the skill whose keywords and phrases the
first message mentions most; else none (any agent may take it).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class SkillRule:
    """How to recognise that a chat needs a skill."""

    skill_id: int
    slug: str
    keywords: tuple[str, ...] = ()  # words or phrases, matched case-insensitively as whole words
    page_patterns: tuple[str, ...] = ()  # globs on the page's path, e.g. "/billing/*"


@dataclass(frozen=True, slots=True)
class Inference:
    skill_id: int | None
    source: str  # "topic", "page", "message" or "none"
    matched: tuple[str, ...] = ()  # the pattern or keywords that decided it


_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _mentions(words: Sequence[str], phrase: str) -> bool:
    needle = _words(phrase)
    if not needle:
        return False
    n = len(needle)
    return any(list(words[i : i + n]) == needle for i in range(len(words) - n + 1))


def infer_skill(
    rules: Sequence[SkillRule],
    *,
    topic_skill_id: int | None,
    page_url: str | None,
    first_message: str,
) -> Inference:
    """The skill a new conversation requires, and why."""
    if topic_skill_id is not None:
        return Inference(topic_skill_id, "topic")
    ordered = sorted(rules, key=lambda r: r.slug)
    if page_url:
        path = urlsplit(page_url).path or "/"
        for rule in ordered:
            for pattern in rule.page_patterns:
                if fnmatchcase(path, pattern):
                    return Inference(rule.skill_id, "page", (pattern,))
    words = _words(first_message)
    best: tuple[int, SkillRule, tuple[str, ...]] | None = None
    for rule in ordered:
        hits = tuple(k for k in rule.keywords if _mentions(words, k))
        # A phrase counts for each of its words: "refund policy" says more than "policy".
        score = sum(len(_words(k)) for k in hits)
        if score and (best is None or score > best[0]):
            best = (score, rule, hits)
    if best is None:
        return Inference(None, "none")
    return Inference(best[1].skill_id, "message", best[2])
