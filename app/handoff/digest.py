"""The context summary as an agent reads it before saying hello: short enough for 15 seconds.

Pure: no I/O, no clock, no randomness. `Summary.text()` calls `render()`; the structured
summary (`Summary.to_json()`) keeps everything this leaves out. Rules:
docs/handoff.md#context-summary.

Sections come in priority order, each on its own line under a one-word label: customer,
problem, facts (current values, with what they corrected), unanswered questions, files sent,
transfer note, what agents did and promised, transfer history, mood, timings, topic and page,
earlier chats. Each section may use at most its own cap of words and at most what the sections
above it left of `TEXT_WORD_LIMIT`; items that do not fit are shortened (quotes clipped with
"…"), then dropped, and a section with nothing left is left out. So detail is dropped from the
bottom first, and customer, problem, current facts and open questions are always kept before
anything else, and files right after them: the files line always has the words those four
leave, at least 75 - 68 = 7. Files that do not fit are counted ("and 2 more"; "3 files" when
not even one name fits). Words are counted by `sentences.word_count` (CJK text per two
characters), and no displayed word is longer than `sentences.MAX_WORD_CHARS`. Lines that would
say nothing are left out: a steady, neutral mood; a zero wait; how the skill was chosen when no
rule chose it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from app.handoff.mentions import DATE, KINDS, ORDER, PHONE, TICKET
from app.handoff.sentences import clip, word_count
from app.handoff.sentiment import STEADY
from app.handoff.statements import NOTED, PROMISED

if TYPE_CHECKING:
    from app.handoff.summary import FileItem, HistoryItem, Summary

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
# Why 10: the label, three files of two words each ("box.png (customer)") and "and N more",
# or four files alone. The customer's evidence ranks with their facts (asked for it again,
# they would repeat themselves), so Files comes right after the four sections above, whose 68
# words leave it at least 7 (the label, a file and "and N more") in the fullest chat; it ranks
# below them because an open question is what the customer is waiting on now, and their 68
# words stay guaranteed. Ten, not more: a file's name says less than a quote of the problem.
FILES_WORDS = 10
FILE_NAME_WORDS = 3  # "photo of box.png": a name with spaces is clipped, its start kept
FILE_SENDER_WORDS = 2  # "(Dana Smith)"
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


def _file(item: FileItem) -> list[str]:
    """A file as "name (who)", fullest first; the customer's files say "customer"."""
    if item.sender == "customer":  # summary.CUSTOMER (not importable here: summary imports us)
        who = "customer"
    else:
        who = clip(item.sender_name, FILE_SENDER_WORDS) if item.sender_name else "agent"
    name = item.name or "file"
    return [f"{clip(name, FILE_NAME_WORDS)} ({who})", f"{clip(name, 1)} ({who})"]


def _more(left_out: int, shown: int) -> str:
    if shown:
        return f"and {left_out} more"
    return "1 file" if left_out == 1 else f"{left_out} files"


def _fit_files(label: str, files: Sequence[FileItem], budget: int) -> list[str]:
    """As many files as fit with `label` in `budget` words, in seq order, then a count of the
    others ("and 2 more"; "3 files" when not even one name fits).

    The customer's files are chosen before agents' ones: a photo the customer already sent is
    what the next agent must not ask for again, while an agent's form can be sent again at no
    cost to the customer. Files left out are counted, never silently dropped.
    """
    ranked = sorted(range(len(files)), key=lambda i: (files[i].sender != "customer", i))
    # Every file takes two words at least ("box.png (customer)"), so no more than `budget` fit.
    for room in range(min(len(files), budget), -1, -1):
        tail = [_more(len(files) - room, room)] if room < len(files) else []
        chosen = [_file(files[i]) for i in sorted(ranked[:room])]
        parts = _fit(label, chosen, budget - word_count(" ".join(tail)))
        if len(parts) == room and word_count(_line(label, [*parts, *tail])) <= budget:
            return [*parts, *tail]
    return []


def _history(summary: Summary) -> list[list[str]]:
    events = [text for item in summary.history if (text := _event(item)) is not None]
    return [[text] for text in events]


# How a section's parts are chosen for a budget: (label, budget) -> parts.
Fitter = Callable[[str, int], list[str]]


def _in_order(items: Sequence[Sequence[str]]) -> Fitter:
    return lambda label, budget: _fit(label, items, budget)


def _latest_first(items: Sequence[Sequence[str]]) -> Fitter:
    """Chosen newest first, shown in the order they happened."""

    def fit(label: str, budget: int) -> list[str]:
        parts = _fit(label, items[::-1], budget)[::-1]
        while parts and word_count(_line(label, parts)) > budget:
            parts = parts[1:]  # reordering moved a "; " next to CJK text: drop the oldest
        return parts

    return fit


def _sections(summary: Summary) -> list[tuple[str, Fitter, int]]:
    """(label, fitter, cap) per section, in priority order."""
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
    note = [[clip(s.note.text, NOTE_WORDS - 1)]] if s.note else []
    questions = [_quote(q.text, 12) for q in shown_questions]
    return [
        ("Customer:", _in_order(_customer(s)), CUSTOMER_WORDS),
        ("Problem:", _in_order([_quote(q.text) for q in s.problem]), PROBLEM_WORDS),
        ("Facts:", _in_order(_facts(s)), FACTS_WORDS),
        ("Unanswered:", _latest_first(questions), QUESTIONS_WORDS),
        ("Files:", lambda label, budget: _fit_files(label, s.files, budget), FILES_WORDS),
        ("Note:", _in_order(note), NOTE_WORDS),
        ("Agents:", _in_order(_actions(s)), ACTIONS_WORDS),
        ("History:", _latest_first(_history(s)), HISTORY_WORDS),
        (
            "Mood:",
            _in_order(
                [[f"{mood.trend} ({mood.first:+.1f} to {mood.last:+.1f})", mood.trend]]
                if mood.scores and (mood.trend != STEADY or abs(mood.last) >= MOOD_NOTABLE)
                else []
            ),
            MOOD_WORDS,
        ),
        ("Times:", _in_order([[t] for t in times]), TIMES_WORDS),
        ("Topic:", _in_order(topic), TOPIC_WORDS),
        ("Earlier chats:", _in_order(earlier), EARLIER_WORDS),
    ]


def render(summary: Summary, limit: int = TEXT_WORD_LIMIT) -> str:
    """The summary in at most `limit` words, one section a line (see the module docstring)."""
    lines: list[str] = []
    left = limit
    for label, fit, cap in _sections(summary):
        parts = fit(label, min(cap, left))
        if parts:
            lines.append(_line(label, parts))
            left -= word_count(lines[-1])
    return "\n".join(lines)
