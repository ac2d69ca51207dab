"""How a customer's messages feel, as a score in [-1, 1], and where the feeling is heading.

Pure: no I/O, no clock, no randomness. The scorer is pluggable: anything with
`score(text) -> float` is a `Scorer`. `LexiconScorer` is the default: a small English lexicon
in the manner of VADER (Hutto & Gilbert, 2014), with negation, boosters, shouting and
exclamation marks. `trend()` turns per-message scores into "improving", "steady" or
"worsening" for the context summary and for escalation rules ("negative sentiment over the
last messages"). Rules: docs/handoff.md#sentiment.

Limits: words outside the lexicon count as neutral, so a message in another language scores 0
with the default scorer (deployments plug in their own); sarcasm reads as meant.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol

IMPROVING = "improving"
STEADY = "steady"
WORSENING = "worsening"


class Scorer(Protocol):
    """Anything that rates a text from -1 (very negative) to 1 (very positive)."""

    def score(self, text: str) -> float: ...


# Valence of each word, from -3 (furious) to +3 (delighted), as VADER's human ratings scale.
LEXICON: Mapping[str, float] = MappingProxyType(
    {
        # negative
        "angry": -2.5, "annoyed": -1.5, "annoying": -1.5, "awful": -2.5, "bad": -2.0,
        "broken": -1.5, "bug": -1.0, "cancel": -0.5, "complain": -1.5, "complaint": -1.5,
        "confused": -1.0, "confusing": -1.0, "crash": -1.5, "crashed": -1.5, "crashes": -1.5,
        "damaged": -1.5, "delayed": -1.0, "disappointed": -2.0, "disappointing": -2.0,
        "disgusting": -2.5, "error": -1.0, "fail": -1.5, "failed": -1.5, "fails": -1.5,
        "failure": -1.5, "frustrated": -2.0, "frustrating": -2.0, "furious": -3.0,
        "garbage": -2.5, "hate": -2.5, "horrible": -2.5, "incompetent": -2.5,
        "issue": -0.5, "joke": -1.0, "late": -1.0, "lost": -1.0, "mad": -2.0, "mess": -1.5,
        "missing": -1.0, "nightmare": -2.5, "pathetic": -2.5, "poor": -2.0, "problem": -1.0,
        "ridiculous": -2.0, "rude": -2.0, "sad": -1.5, "scam": -3.0, "slow": -1.0,
        "stuck": -1.0, "stupid": -2.0, "sucks": -2.0, "terrible": -2.5, "unacceptable": -2.5,
        "unhappy": -2.0, "upset": -2.0, "useless": -2.0, "waste": -2.0, "wasted": -2.0,
        "worried": -1.0, "worse": -2.0, "worst": -3.0, "wrong": -1.5, "forever": -1.0,
        "again": -0.5, "still": -0.5,
        # positive
        "amazing": 2.5, "appreciate": 2.0, "appreciated": 2.0, "awesome": 2.5,
        "brilliant": 2.5, "cheers": 1.0, "cool": 1.0, "easy": 1.0, "excellent": 2.5,
        "fantastic": 2.5, "fast": 1.0, "fine": 0.8, "fixed": 1.5, "glad": 2.0, "good": 1.5,
        "great": 2.0, "happy": 2.0, "helpful": 2.0, "kind": 1.5, "love": 2.5, "lovely": 2.0,
        "nice": 1.5, "ok": 0.5, "okay": 0.5, "perfect": 2.5, "pleased": 2.0, "quick": 1.0,
        "resolved": 1.5, "satisfied": 2.0, "solved": 1.5, "sorted": 1.0, "super": 1.5,
        "thank": 1.5, "thanks": 1.5, "wonderful": 2.5, "work": 1.0, "worked": 1.0,
        "working": 1.0, "works": 1.0,
    }
)  # fmt: skip
NEGATORS = frozenset({
    "not", "no", "never", "nothing", "nobody", "none", "neither", "nor", "without", "cannot",
    "cant", "can't", "don't", "dont", "doesn't", "doesnt", "didn't", "didnt", "isn't", "isnt",
    "wasn't", "wasnt", "aren't", "arent", "weren't", "won't", "wont", "couldn't", "couldnt",
    "shouldn't", "wouldn't", "haven't", "havent", "hasn't", "hasnt", "hadn't",
})  # fmt: skip
BOOSTERS = frozenset({
    "very", "really", "so", "extremely", "absolutely", "totally", "completely", "incredibly",
    "super", "utterly",
})  # fmt: skip
NEGATION_REACH = 3  # a negator turns the next three words around ("not very good at all")
NEGATION_FACTOR = -0.74  # VADER's: "not good" is less bad than "bad" is bad
BOOST_FACTOR = 1.3  # "very", and a word in capitals amid lower case
EXCLAMATION_STEP = 0.1  # each "!" adds 10 % to the message's intensity, up to three
EXCLAMATION_MAX = 3
NORMALIZE_ALPHA = 15.0  # VADER's: x / sqrt(x² + 15) maps a sum of valences into (-1, 1)
SHOUT_MIN_LETTERS = 3  # "OK" is not shouting

_TOKEN = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)?")


class LexiconScorer:
    """The default scorer: valences from `lexicon`, turned around by a negator within
    `NEGATION_REACH` words before, boosted by "very" and capitals, intensified by "!".

    The sum `x` of valences is mapped to `x / sqrt(x² + 15)`, rounded to four places.
    """

    def __init__(self, lexicon: Mapping[str, float] = LEXICON) -> None:
        self.lexicon = MappingProxyType({k.casefold(): v for k, v in lexicon.items()})

    def score(self, text: str) -> float:
        raw = [t.replace("’", "'") for t in _TOKEN.findall(text)]
        tokens = [t.casefold() for t in raw]
        mixed = any(t.islower() for t in raw)  # capitals only stand out amid lower case
        total = 0.0
        for i, token in enumerate(tokens):
            valence = self.lexicon.get(token)
            if valence is None:
                continue
            if i and tokens[i - 1] in BOOSTERS:
                valence *= BOOST_FACTOR
            if mixed and raw[i].isupper() and len(raw[i]) >= SHOUT_MIN_LETTERS:
                valence *= BOOST_FACTOR
            if any(t in NEGATORS for t in tokens[max(0, i - NEGATION_REACH) : i]):
                valence *= NEGATION_FACTOR
            total += valence
        if total:
            total *= 1 + EXCLAMATION_STEP * min(text.count("!"), EXCLAMATION_MAX)
        return round(total / math.sqrt(total * total + NORMALIZE_ALPHA), 4)


DEFAULT_SCORER: Scorer = LexiconScorer()

TREND_WINDOW = 3  # compare the mean of the first three messages with the last three
TREND_DELTA = 0.2  # a move smaller than this is noise: one mildly worded message


@dataclass(frozen=True, slots=True)
class Trend:
    """Where the customer's mood is heading: `first` and `last` are the mean scores of the
    first and last `window` messages, `window = min(TREND_WINDOW, len(scores) // 2)`."""

    direction: str  # IMPROVING, STEADY or WORSENING
    first: float
    last: float


def trend(scores: Sequence[float]) -> Trend:
    """The direction of a sequence of per-message scores, in the order written.

    Fewer than two messages are "steady". Otherwise the first and last windows do not
    overlap, and a difference of at least `TREND_DELTA` is a direction.
    """
    if not scores:
        return Trend(STEADY, 0.0, 0.0)
    window = min(TREND_WINDOW, len(scores) // 2) or 1
    first = round(sum(scores[:window]) / window, 4)
    last = round(sum(scores[-window:]) / window, 4)
    delta = last - first
    if len(scores) >= 2 and delta >= TREND_DELTA:  # noqa: PLR2004 - two messages make a trend
        return Trend(IMPROVING, first, last)
    if len(scores) >= 2 and delta <= -TREND_DELTA:  # noqa: PLR2004 - as above
        return Trend(WORSENING, first, last)
    return Trend(STEADY, first, last)
