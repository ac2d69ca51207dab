"""When a chat escalates on its own: a visitor asking for a manager, and the policy rules
(too long in the queue, too long with one agent, too many transfers, a customer whose last
messages read as angry). Rules: docs/handoff.md#escalation.

Pure: no I/O, no clock, no randomness; `now` is an argument. `handoff.service` loads a
`ChatFacts` snapshot and the stored `EscalationPolicy`, calls `asks_for_manager()` on each
visitor message and `escalation_due()` when a transfer is accepted, a customer message is
scored, or the timer picks a chat whose `next_due_at()` has passed, and marks the chat
escalated when either says so. A chat escalates once: these functions never fire for a chat
already marked, or closed.

Limits of phrase matching: it is literal. Negation is out of scope ("I don't need to speak to
a manager" still matches "speak to a manager"), and so are synonyms and misspellings; the
deployment lists the phrases its customers use.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "DEFAULT_PHRASES",
    "HANDLE",
    "RULES",
    "SENTIMENT",
    "TRANSFERS",
    "WAIT",
    "ChatFacts",
    "EscalationPolicy",
    "Trigger",
    "asks_for_manager",
    "escalation_due",
    "next_due_at",
]

DEFAULT_PHRASES: tuple[str, ...] = (
    "speak to a manager",
    "talk to a manager",
    "speak to your manager",
    "talk to your manager",
    "speak to a supervisor",
    "talk to a supervisor",
    "speak to your supervisor",
    "talk to your supervisor",
    "your manager",
    "your supervisor",
    "escalate this",
)

# Rule names, as `conversation.escalated` events carry them (docs/protocol.md#event-kinds).
WAIT = "wait"
HANDLE = "handle"
TRANSFERS = "transfers"
SENTIMENT = "sentiment"
RULES = (TRANSFERS, SENTIMENT, HANDLE, WAIT)  # the order of checking: see escalation_due()

# Conversation states, as `ConversationState` spells them.
QUEUED = "queued"
OFFLINE = "offline"
ASSIGNED = "assigned"
CLOSED = "closed"

# Time rules fire strictly after the limit; this is the first instant a stored timestamp
# (PostgreSQL and Python both count microseconds) can hold that is strictly after it.
_RESOLUTION = timedelta(microseconds=1)
# Scores carry four decimals (`LexiconScorer`); rounding their mean to nine keeps float noise
# (-0.6 - 0.5 - 0.4 == -1.5000000000000002) from tipping a mean equal to the limit below it.
_MEAN_PLACES = 9

# Scripts written without spaces between words: each character is a word of its own, so a
# phrase in them matches wherever its characters stand together.
_UNSPACED = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3040, 0x30FF),  # Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
)
_UNSPACED_FROM = min(low for low, _ in _UNSPACED)
# In ASCII the word characters are letters, digits and "_" (no marks, nothing unspaced).
_ASCII_WORD = re.compile(r"[0-9A-Za-z_]+")


@dataclass(frozen=True, slots=True)
class EscalationPolicy:
    """The deployment's escalation settings (the stored routing policy). `None` disables a
    rule; `phrases` may be empty to disable phrase matching.

    Raises:
        ValueError: On construction, when a limit is negative or `sentiment_window` is below 1.
    """

    phrases: tuple[str, ...] = DEFAULT_PHRASES
    wait_seconds: int | None = 600  # queued longer than this
    handle_seconds: int | None = 1800  # held by one agent longer than this
    max_transfers: int | None = 2  # transferred more often than this
    sentiment_below: float | None = -0.5  # the mean of the last `sentiment_window` scores
    sentiment_window: int = 3

    def __post_init__(self) -> None:
        for name in ("wait_seconds", "handle_seconds", "max_transfers"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.sentiment_window < 1:
            raise ValueError(f"sentiment_window must be at least 1, got {self.sentiment_window}")


@dataclass(frozen=True, slots=True)
class ChatFacts:
    """What the rules read of one conversation. Datetimes are timezone-aware."""

    state: str  # "queued", "offline", "assigned" or "closed"
    queued_at: datetime | None  # when it last entered the queue (`waiting_since` in the store)
    assigned_at: datetime | None  # when the current agent got it
    transfer_count: int  # accepted and cold transfers so far
    escalated: bool
    customer_scores: tuple[
        float, ...
    ]  # the scorer's marks of the customer's messages, oldest first


@dataclass(frozen=True, slots=True)
class Trigger:
    """A rule that says the chat should escalate, and why, in words for supervisors."""

    rule: str  # WAIT, HANDLE, TRANSFERS or SENTIMENT
    reason: str  # "Waited 12 min in the queue (limit 10 min)"


def _unspaced(char: str) -> bool:
    code = ord(char)
    if code < _UNSPACED_FROM:  # most text, and all of ASCII: checked per character
        return False
    return any(low <= code <= high for low, high in _UNSPACED)


def _wordish(char: str) -> bool:
    """Letters, digits and combining marks (so "ü" written as u + ◌̈ stays one word)."""
    return char == "_" or unicodedata.category(char)[0] in "LNM"


def _words(text: str) -> tuple[str, ...]:
    """The words of `text`, NFKC-normalised and case-folded: runs of letters, digits and
    marks, and single characters of unspaced scripts. Everything else, apostrophes included,
    separates words, as regex `\\b` would ("your manager's" holds "your manager")."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    if folded.isascii():  # the same words as below, found in one pass of the regex engine
        return tuple(_ASCII_WORD.findall(folded))
    return _scanned(folded)


def _scanned(folded: str) -> tuple[str, ...]:
    """`_words()` of normalised, case-folded text, character by character."""
    words: list[str] = []
    current: list[str] = []
    for char in folded:
        if _wordish(char) and not _unspaced(char):
            current.append(char)
            continue
        if current:
            words.append("".join(current))
            current = []
        if _unspaced(char):
            words.append(char)
    if current:
        words.append("".join(current))
    return tuple(words)


@functools.lru_cache(maxsize=1024)
def _phrase_words(phrase: str) -> tuple[str, ...]:
    """`_words()` of a configured phrase: the same few phrases are matched against every
    customer message, so each is split once per process (at most 100 are configured)."""
    return _words(phrase)


def _contains(words: tuple[str, ...], phrase: tuple[str, ...]) -> bool:
    size = len(phrase)
    return any(words[i : i + size] == phrase for i in range(len(words) - size + 1))


def asks_for_manager(text: str, phrases: Sequence[str]) -> str | None:
    """The first of `phrases` (in the order configured) that `text` contains, or None.

    Matching is on whole words, in order and adjacent: case does not matter (`str.casefold`,
    after NFKC normalisation, so full-width letters and composed/decomposed accents compare
    equal), and any run of spaces or punctuation between words counts as one gap. So "escalate
    this" matches "Please escalate THIS now!", and "speak to a manager" matches "speak  to a
    manager." and "speak to a... manager", but "your manager" does not match "your managerial".
    An apostrophe is punctuation too, so "your manager's name" contains "your manager".
    In scripts written without spaces (Chinese, Japanese, Thai, …) every character is a word.
    Negation is not understood: see the module docstring.

    Args:
        text: A visitor's message.
        phrases: The configured phrases; blank ones (no word characters) are ignored.

    Returns:
        The matching phrase exactly as configured, or None.

    Raises:
        TypeError: If `phrases` is a single string (which would match letter by letter).
    """
    if isinstance(phrases, str):
        raise TypeError("phrases must be a sequence of phrases, not one string")
    words = _words(text)
    for phrase in phrases:
        wanted = _phrase_words(phrase)
        if wanted and _contains(words, wanted):
            return phrase
    return None


def _duration(seconds: int) -> str:
    """A span in its two largest non-zero units: "45 s", "10 min", "12 min 30 s", "1 h 5 min"."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts[:2]) or "0 s"


def _elapsed(since: datetime, now: datetime) -> int:
    # Rounded up, so a chat 600.4 s in the queue reads "10 min 1 s", visibly over a 10 min limit.
    return math.ceil((now - since).total_seconds())


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _transfers(chat: ChatFacts, policy: EscalationPolicy) -> Trigger | None:
    limit = policy.max_transfers
    if limit is None or chat.transfer_count <= limit:
        return None
    return Trigger(TRANSFERS, f"Transferred {_times(chat.transfer_count)} (limit {limit})")


def _sentiment(chat: ChatFacts, policy: EscalationPolicy) -> Trigger | None:
    limit, window = policy.sentiment_below, policy.sentiment_window
    if limit is None or len(chat.customer_scores) < window:
        return None
    mean = round(math.fsum(chat.customer_scores[-window:]) / window, _MEAN_PLACES)
    if mean >= limit:
        return None
    if window == 1:
        return Trigger(SENTIMENT, f"Customer's last message scores {mean:.2f} (limit {limit:.2f})")
    messages = f"Customer's last {window} messages"
    return Trigger(SENTIMENT, f"{messages} average {mean:.2f} (limit {limit:.2f})")


def _since(chat: ChatFacts, policy: EscalationPolicy) -> tuple[str, datetime, int] | None:
    """The time rule that applies to the chat's state: its name, start and limit in seconds."""
    if chat.escalated:
        return None
    if chat.state == QUEUED and chat.queued_at is not None and policy.wait_seconds is not None:
        return WAIT, chat.queued_at, policy.wait_seconds
    if (
        chat.state == ASSIGNED
        and chat.assigned_at is not None
        and policy.handle_seconds is not None
    ):
        return HANDLE, chat.assigned_at, policy.handle_seconds
    return None


def escalation_due(chat: ChatFacts, policy: EscalationPolicy, now: datetime) -> Trigger | None:
    """The rule that escalates `chat` at `now`, or None.

    Never fires for a chat already escalated or closed. Each rule fires strictly over its
    limit and is off when its setting is None:
    - transfers: `transfer_count > max_transfers`;
    - sentiment: with at least `sentiment_window` scores, the mean of the last
      `sentiment_window` is below `sentiment_below`;
    - handle: assigned, and held by the current agent longer than `handle_seconds`;
    - wait: queued longer than `wait_seconds` since `queued_at`. Offline chats (a message
      left while nobody could answer) are not waiting in a queue and never fire it.
    When several hold, the first in `RULES` order is reported: transfers, sentiment, handle,
    wait; the rules about what happened in the chat say more than the clock does.

    Args:
        chat: The conversation's snapshot.
        policy: The deployment's settings.
        now: The current time, timezone-aware.

    Returns:
        A `Trigger` naming the rule with a reason for supervisors, or None.
    """
    if chat.escalated or chat.state == CLOSED:
        return None
    found = _transfers(chat, policy) or _sentiment(chat, policy)
    if found is not None:
        return found
    timed = _since(chat, policy)
    if timed is None:
        return None
    rule, since, limit = timed
    if now - since <= timedelta(seconds=limit):
        return None
    spent, allowed = _duration(_elapsed(since, now)), _duration(limit)
    if rule == HANDLE:
        return Trigger(HANDLE, f"Held {spent} by one agent (limit {allowed})")
    return Trigger(WAIT, f"Waited {spent} in the queue (limit {allowed})")


def next_due_at(chat: ChatFacts, policy: EscalationPolicy) -> datetime | None:
    """The first instant at which a time rule (wait or handle) fires for `chat` as it stands.

    The service stores it in an indexed column whenever the chat changes state, and the timer
    picks chats with `due_at <= now`: `escalation_due(chat, policy, next_due_at(chat, policy))`
    reports that rule (unless a rule earlier in `RULES` order reports first), and no earlier
    instant does. The instant may be in the past. None when no time rule can fire: the chat
    is escalated or closed, offline, or its rule is off.

    Args:
        chat: The conversation's snapshot.
        policy: The deployment's settings.

    Returns:
        The limit plus one microsecond after `queued_at` or `assigned_at`, or None.
    """
    timed = _since(chat, policy)
    if timed is None:
        return None
    _, since, limit = timed
    return since + timedelta(seconds=limit) + _RESOLUTION
