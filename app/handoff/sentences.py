"""Sentences and words of chat text, as the context summary and the repeat detector read them.

Pure: no I/O, no clock, no randomness. Shared by `handoff.mentions`, `handoff.facts`,
`handoff.statements`, `handoff.digest` and `handoff.repeats`. Rules:
docs/handoff.md#context-summary.

Language-agnostic where it can be: a sentence ends at `. ! ? …` followed by a space or the end,
at the ideographic full stop, the full-width ? and ! and the danda wherever they stand (scripts
written without spaces), and at a line break. Abbreviations ("Mr. Smith") split a sentence.

Scripts written without spaces between words (Chinese, Japanese) are measured in units of two
characters, about one word's worth of reading: that is how `word_count()` keeps the 15-second
limit meaningful for a Japanese summary too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

# Kana, CJK unified ideographs (and extension A), half-width katakana.
CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f"
_CJK_RUN = re.compile(f"[{CJK}]+")
# One reading unit: one or two CJK characters, or a run of anything else but spaces.
_UNIT = re.compile(f"[{CJK}]{{1,2}}|[^\\s{CJK}]+")
# Where a sentence ends (the match is kept with the sentence before it).
_END = re.compile(
    r"[.!?…؟]+[\"'”’)\]]*(?=\s|$)"  # Latin-style: only before a space, so "$12.50" stays whole
    r"|[。？！।]+[」』”’)）]*"  # CJK and Devanagari stops end a sentence wherever they stand
    r"|\n+"
)
_HAS_WORD = re.compile(r"\w")
# A display word longer than this (a pasted URL, a hash) is cut: read at a glance, it is noise.
MAX_WORD_CHARS = 40
_WORD = re.compile(r"\w+")


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """The `(start, end)` of each sentence of `text`, trimmed of surrounding spaces.

    Spans without a letter or digit (a lone "?" or "...") are left out. `text[start:end]` is
    always a verbatim substring of `text`.
    """
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _END.finditer(text):
        spans.append(_trim(text, start, match.end()))
        start = match.end()
    spans.append(_trim(text, start, len(text)))
    return [(a, b) for a, b in spans if b > a and _HAS_WORD.search(text, a, b)]


def sentences(text: str) -> list[str]:
    """The sentences of `text`, verbatim, in order (see `sentence_spans`)."""
    return [text[a:b] for a, b in sentence_spans(text)]


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _units(text: str) -> Iterator[re.Match[str]]:
    return _UNIT.finditer(text)


def word_count(text: str) -> int:
    """How many words a reader takes in: space-separated tokens, with runs of CJK characters
    counted per two characters. Never less than `len(text.split())`."""
    return sum(1 for _ in _units(text))


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` words (as `word_count` counts) for display, with no word
    longer than `MAX_WORD_CHARS` characters, and marked with "…" when cut.

    Returns:
        `text` itself when it fits; else its longest prefix that, with "…" appended, fits (so
        a clip is always a prefix of `text` plus "…"); "" when `limit` is below 1.
    """
    units = list(_units(text))
    long = next((i for i, u in enumerate(units) if len(u.group()) > MAX_WORD_CHARS), None)
    if long is None and len(units) <= limit:
        return text
    most = min(limit, len(units) if long is None else long + 1)
    for n in range(most, 0, -1):
        last = units[n - 1]
        end = last.end() if n - 1 != long else last.start() + MAX_WORD_CHARS - 1
        candidate = text[:end].rstrip(" ,;:、") + "…"
        if word_count(candidate) <= limit:
            return candidate
    return ""


def words(text: str) -> list[str]:
    """Normalised word tokens for comparing sentences: case-folded runs of letters and digits;
    a run of CJK characters becomes its character bigrams (a lone character stays itself)."""
    tokens: list[str] = []
    for token in _WORD.findall(text.casefold()):
        last = 0
        for run in _CJK_RUN.finditer(token):
            if run.start() > last:
                tokens.append(token[last : run.start()])
            chars = run.group()
            if len(chars) == 1:
                tokens.append(chars)
            else:
                tokens.extend(chars[i : i + 2] for i in range(len(chars) - 1))
            last = run.end()
        if last < len(token):
            tokens.append(token[last:])
    return tokens


SIMILAR = 0.6  # Jaccard of content words at or above which two sentences say the same thing
# Words that carry no content of their own: "I want to know where my order is" and "… where my
# refund is" must not look alike because they share "I want to know where my … is".
STOPWORDS = frozenset({
    "a", "about", "am", "an", "and", "are", "as", "at", "be", "been", "but", "by", "can", "could",
    "did", "do", "does", "for", "from", "get", "got", "had", "has", "have", "hi", "hello", "i",
    "i'm", "if", "in", "is", "it", "its", "just", "me", "my", "of", "on", "or", "our", "please",
    "so", "that", "the", "their", "them", "then", "there", "this", "to", "us", "was", "we",
    "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your", "m", "s", "t", "ve", "ll", "d", "re",
    "der", "die", "das", "und", "ist", "ich", "mein", "meine", "nicht", "ein", "eine", "zu",
    "el", "la", "los", "las", "y", "es", "mi", "de", "que", "en", "un", "una", "por", "con",
})  # fmt: skip


def content_words(text: str) -> frozenset[str]:
    """The set of `words()` of `text` that are not `STOPWORDS`."""
    return frozenset(w for w in words(text) if w not in STOPWORDS)


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of the content words of two sentences (shared words over all words), in
    [0, 1]; 0 when both are empty. Order, case and punctuation do not matter."""
    left, right = content_words(a), content_words(b)
    union = left | right
    return len(left & right) / len(union) if union else 0.0
