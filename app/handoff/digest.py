"""The context summary as an agent reads it before saying hello: short enough for 15 seconds.

Pure: no I/O, no clock, no randomness. `Summary.text()` calls `render()`; the structured
summary (`Summary.to_json()`) keeps everything this leaves out. Rules:
docs/handoff.md#context-summary.

Sections come in priority order, each on its own line under a one-word label: customer,
problem, facts (current values, with what they corrected), unanswered questions, transfer
note, what agents did and promised, transfer history, mood, timings, topic and page, earlier
chats. Each section may use at most its own cap of words and at most what the sections above
it left of `TEXT_WORD_LIMIT`; items that do not fit are shortened (quotes clipped with "…"),
then dropped, and a section with nothing left is left out. So detail is dropped from the
bottom first, and customer, problem, current facts and open questions are always kept before
anything else. Words are counted by `sentences.word_count` (CJK text per two characters), and
no displayed word is longer than `sentences.MAX_WORD_CHARS`. Lines that would say nothing are
left out: a steady, neutral mood; a zero wait; how the skill was chosen when no rule chose it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.handoff.mentions import DATE, KINDS, ORDER, PHONE, TICKET
from app.handoff.sentences import clip, word_count
from app.handoff.sentiment import STEADY
from app.handoff.statements import NOTED, PROMISED

if TYPE_CHECKING:
    from app.handoff.summary import HistoryItem, Summary

# Why 75: the receiving agent should take the summary in within 15 seconds, before greeting
# the customer. Careful reading of English runs at about 240 words a minute and skimming at
# 300 or more; at a skimming rate of 300 words a minute, 15 s is 75 words. (Japanese, read at
# about 500 characters a minute, is counted per two characters: 75 units are 150 characters,
# some 18 seconds, close enough for text that is mostly labels, names and numbers anyway.)
TEXT_WORD_LIMIT = 75

# Per-section caps, in priority order. The first four add up to 68 so that, however much a
# chat holds, customer, problem, facts and open questions always fit together in the limit.
CUSTOMER_WORDS = 10
PROBLEM_WORDS = 28
QUOTE_WORDS = 13  # one sentence of a quote; longer ones are clipped with "…"
FACTS_WORDS = 16
QUESTIONS_WORDS = 14
NOTE_WORDS = 14
ACTIONS_WORDS = 16
HISTORY_WORDS = 14
MOOD_WORDS = 5
TIMES_WORDS = 6
TOPIC_WORDS = 8
EARLIER_WORDS = 6
SHORTER = (8, 5)  # word counts a quote is clipped to when the full clip does not fit

_PREFIX = {ORDER: "order ", TICKET: "ticket ", PHONE: "phone ", DATE: "date "}
_MODE_WORDS = {"warm": "warm transfer", "cold": "cold transfer", "escalation": "escalation"}
_SOURCES = frozenset({"topic", "page", "message"})  # how routing knew the skill; "none" is noise
MOOD_NOTABLE = 0.3  # a steady mood is worth a line only when it is this far from neutral
_EVENT_WORDS = {
    "transfer.accepted": "accepted by",
    "transfer.declined": "declined by",
    "transfer.expired": "transfer expired",
}


def _quote(text: str, limit: int = QUOTE_WORDS) -> list[str]:
    """A quote and its shorter clips, fullest first."""
    out = []
    for words in (limit, *SHORTER):
        clipped = clip(text, min(words, limit))
        if clipped and f'"{clipped}"' not in out:
            out.append(f'"{clipped}"')
    return out


def _fit(label: str, items: Sequence[Sequence[str]], budget: int) -> list[str]:
    """The fullest alternative of each item, in order, that still fits with `label` in
    `budget` words; an item none of whose alternatives fits is dropped."""
    parts: list[str] = []
    for alternatives in items:
        for alternative in alternatives:
            if word_count(_line(label, [*parts, alternative])) <= budget:
                parts.append(alternative)
                break
    return parts


def _line(label: str, parts: Sequence[str]) -> str:
    return f"{label} {'; '.join(parts)}"


def _duration(seconds: int) -> str:
    minutes, hours = seconds // 60, seconds // 3600
    if seconds < 60:  # noqa: PLR2004 - a minute
        return f"{seconds}s"
    if hours == 0:
        return f"{minutes}m"
    if hours < 24:  # noqa: PLR2004 - a day
        return f"{hours}h{minutes % 60:02d}m"
    return f"{hours // 24}d{hours % 24}h"


def _customer(summary: Summary) -> list[list[str]]:
    c = summary.customer
    items = [[clip(c.name, 4)] if c.name else ["anonymous visitor"]]
    if c.flag:
        items.append([c.flag])
    if c.external_id:
        items.append([f"verified id {clip(c.external_id, 2)}", "verified"])
    elif c.verified:
        items.append(["verified"])
    if c.email:
        items.append([clip(c.email, 1)])
    return items


def _facts(summary: Summary) -> list[list[str]]:
    current = sorted(
        (f for f in summary.facts if f.current),
        key=lambda f: (KINDS.index(f.kind) if f.kind in KINDS else len(KINDS), f.seqs[0]),
    )
    items = []
    for fact in current:
        shown = f"{_PREFIX.get(fact.kind, '')}{clip(fact.value, 6)}"
        was = [
            clip(f.value, 4)
            for f in summary.facts
            if f.kind == fact.kind and f.superseded_by == fact.value
        ]
        items.append([f"{shown} (was {', '.join(was)})", shown] if was else [shown])
    return items


def _actions(summary: Summary) -> list[list[str]]:
    rank = {PROMISED: 0, NOTED: 1}  # promises must be kept by the next agent; notes are for them
    ordered = sorted(summary.actions, key=lambda a: rank.get(a.kind, len(rank)))
    return [[f"{a.kind} {q}" for q in _quote(a.text, 10)] for a in ordered]


def _event(item: HistoryItem) -> str | None:
    if item.kind == "transfer.requested":
        mode = _MODE_WORDS.get(item.mode or "", "transfer")
        return f"{mode} {clip(item.by or 'agent', 3)} to {clip(item.to or 'someone', 3)}"
    if item.kind == "conversation.escalated":
        why = f": {clip(item.reason, 5)}" if item.reason else ""
        return f"escalated by {clip(item.by or 'rule', 2)}{why}"
    if item.kind in _EVENT_WORDS:
        who = f" {clip(item.by, 3)}" if item.by else ""
        why = f" ({clip(item.reason, 4)})" if item.reason else ""
        return f"{_EVENT_WORDS[item.kind]}{who}{why}"
    return None  # earlier summaries: counted in to_json(), not worth a reader's seconds


def _history(summary: Summary) -> list[list[str]]:
    events = [text for item in summary.history if (text := _event(item)) is not None]
    return [[text] for text in events]


def _sections(summary: Summary) -> list[tuple[str, list[list[str]], int, bool]]:
    """(label, items, cap, latest first) per section, in priority order."""
    s = summary
    shown_questions = [q for q in s.open_questions if q not in s.problem]
    mood = s.sentiment
    times = []
    if s.timings.waiting_now:
        times.append(f"waiting {_duration(s.timings.waited_s)}")
    elif s.timings.waited_s:
        times.append(f"waited {_duration(s.timings.waited_s)}")
    if s.timings.handled_s:
        times.append(f"handled {_duration(s.timings.handled_s)}")
    topic = []
    if s.origin.skill:
        source = f" ({s.origin.skill_source})" if s.origin.skill_source in _SOURCES else ""
        topic.append([f"{clip(s.origin.skill, 3)}{source}", clip(s.origin.skill, 3)])
    if s.origin.page_url:
        topic.append([clip(s.origin.page_url, 1)])
    earlier = []
    if s.earlier:
        last = s.earlier[0].opened_at.date().isoformat()
        earlier.append([f"{len(s.earlier)}, last {last}"])
    return [
        ("Customer:", _customer(s), CUSTOMER_WORDS, False),
        ("Problem:", [_quote(q.text) for q in s.problem], PROBLEM_WORDS, False),
        ("Facts:", _facts(s), FACTS_WORDS, False),
        ("Unanswered:", [_quote(q.text, 12) for q in shown_questions], QUESTIONS_WORDS, True),
        ("Note:", [[clip(s.note.text, NOTE_WORDS - 1)]] if s.note else [], NOTE_WORDS, False),
        ("Agents:", _actions(s), ACTIONS_WORDS, False),
        ("History:", _history(s), HISTORY_WORDS, True),
        (
            "Mood:",
            [[f"{mood.trend} ({mood.first:+.1f} to {mood.last:+.1f})", mood.trend]]
            if mood.scores and (mood.trend != STEADY or abs(mood.last) >= MOOD_NOTABLE)
            else [],
            MOOD_WORDS,
            False,
        ),
        ("Times:", [[t] for t in times], TIMES_WORDS, False),
        ("Topic:", topic, TOPIC_WORDS, False),
        ("Earlier chats:", earlier, EARLIER_WORDS, False),
    ]


def render(summary: Summary, limit: int = TEXT_WORD_LIMIT) -> str:
    """The summary in at most `limit` words, one section a line (see the module docstring)."""
    lines: list[str] = []
    left = limit
    for label, items, cap, latest_first in _sections(summary):
        budget = min(cap, left)
        if not latest_first:
            parts = _fit(label, items, budget)
        else:  # chosen newest first, shown in the order they happened
            parts = _fit(label, items[::-1], budget)[::-1]
            while parts and word_count(_line(label, parts)) > budget:
                parts = parts[1:]  # reordering moved a "; " next to CJK text: drop the oldest
        if parts:
            lines.append(_line(label, parts))
            left -= word_count(lines[-1])
    return "\n".join(lines)
