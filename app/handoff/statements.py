"""What was said that the next agent must know: the customer's problem in their own words,
what agents did and promised, and the customer's questions nobody answered yet.

Pure: no I/O, no clock, no randomness. `handoff.summary` feeds it plain `(seq, text)` lines;
`handoff.repeats` reuses `key_candidates()` and `similarity`. Rules:
docs/handoff.md#context-summary.

The problem: every sentence of the customer's customer-facing messages is a candidate (a
leading "Hi," trimmed off) if it has at least `MIN_WORDS` words and is not a pleasantry
("thanks!", "ok"). Each candidate scores:

- `OPENING_POINTS` if it is in the customer's first message with a candidate (people say
  what they came for first);
- `CUE_POINTS` for each distinct problem cue it contains ("not working", "charged twice",
  "error", "refund", "funktioniert nicht", "no funciona", "届かない" …), at most
  `MAX_CUES` of them;
- `FACT_POINTS` if it mentions a fact (an order number, an amount …);
- `DETAIL_POINTS` if it has at least `DETAIL_WORDS` words.

Candidates scoring at least `MIN_SCORE` are taken best first (ties: earlier first), skipping
any at least `sentences.SIMILAR` alike to one already taken (a customer who says it twice is
quoted once), up to `PROBLEM_MAX`; they are returned in the order they were written. Each is a
verbatim substring of its message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from app.handoff.mentions import Scan
from app.handoff.sentences import SIMILAR, sentence_spans, similarity, word_count

PROBLEM_MAX = 3  # three sentences say what is wrong; more is the transcript, not a summary
MIN_WORDS = 3  # "It broke." is too little to quote; "My card was charged twice" is not
OPENING_POINTS = 3
CUE_POINTS = 2
MAX_CUES = 2
FACT_POINTS = 1
DETAIL_POINTS = 1
DETAIL_WORDS = 8
MIN_SCORE = 2  # a later sentence needs a cue, or a fact and some detail, to describe the problem
MAX_ACTIONS = 8  # the most recent; older ones are in the transcript
MAX_OPEN_QUESTIONS = 5  # the most recent
MIN_QUESTION_WORDS = 2  # "Hello?" checks that someone is there; it asks nothing

DID = "did"
PROMISED = "promised"
NOTED = "noted"  # an agents-only note, quoted whole: notes are written for the next agent


@dataclass(frozen=True, slots=True)
class Quote:
    """A sentence quoted verbatim from the message with this seq."""

    seq: int
    text: str


@dataclass(frozen=True, slots=True)
class Action:
    """Something an agent did or promised, quoted verbatim from the event with this seq.

    `internal` is true when it comes from an agents-only note or private transfer chat.
    """

    seq: int
    kind: str  # DID, PROMISED or NOTED
    text: str
    agent: str | None
    internal: bool


@dataclass(frozen=True, slots=True)
class AgentLine:
    """One agent's message, or agents-only note (`note`), or private transfer message
    (`internal` without `note`)."""

    seq: int
    text: str
    agent: str | None
    internal: bool
    note: bool = False


_L = r"(?<![A-Za-z])"
_R = r"(?![A-Za-z])"
_GREETING = re.compile(
    r"^(?:hi|hello|hey|hallo|hola|good\s+(?:morning|afternoon|evening)|guten\s+tag"
    r"|buenos\s+d[ií]as|buenas\s+tardes)(?:\s+there)?[\s,!.:;-]+",
    re.IGNORECASE,
)
_PLEASANTRY = re.compile(
    r"^(?:hi|hello|hey|hallo|hola|thanks?|thank\s+you|many\s+thanks|ok(?:ay)?|bye|goodbye"
    r"|danke|gracias|yes|no|sure|great|perfect|cheers|こんにちは|ありがとう(?:ございます)?"
    r"|すみません)(?:\s+(?:so\s+much|a\s+lot|very\s+much|again|there|schön|mucho))*[\s\W]*$",
    re.IGNORECASE,
)
_CUES = re.compile(
    rf"{_L}(?:not\s+working|doesn'?t\s+work|does\s+not\s+work|stopped\s+working|won'?t"
    r"|can'?t|cannot|couldn'?t|unable|error|errors|broken|fail(?:s|ed|ure)?|crash(?:es|ed)?"
    r"|bug|issue|problem|wrong|missing|never\s+arrived|hasn'?t\s+arrived|didn'?t\s+arrive"
    r"|not\s+(?:arrived|received)|haven'?t\s+received|charged\s+twice|double\s+charged"
    r"|twice|refund|overcharged|declined|locked\s+out|lost|damaged|late|delayed|stuck"
    r"|funktioniert\s+nicht|geht\s+nicht|fehler|kaputt|doppelt|nicht\s+angekommen"
    r"|erstattung|r[üu]ckerstattung|falsch|no\s+funciona|problema|roto|dos\s+veces"
    rf"|reembolso|no\s+(?:ha\s+)?lleg[óo]|cobr\w+){_R}"
    r"|届かない|届いていません|届きません|できない|できません|エラー|壊れ|二重|返金|問題|動かない",
    re.IGNORECASE,
)
_QUESTION = re.compile(r"[?？][\"'”’)）」]*$")
_PROMISE = re.compile(
    rf"{_L}(?:i|we)(?:['’]ll|\s+will|\s+shall|['’]m\s+going\s+to|\s+am\s+going\s+to"
    rf"|['’]re\s+going\s+to|\s+are\s+going\s+to){_R}"
    rf"|{_L}you(?:['’]ll|\s+will|\s+should)\s+(?:receive|get|see|hear|have){_R}"
    rf"|{_L}(?:ich\s+werde|wir\s+werden|le\s+(?:enviaremos|enviar[ée]|llamaremos|llamar[ée])"
    rf"|vamos\s+a|te\s+(?:enviaremos|enviar[ée])){_R}|いたします|させていただきます",
    re.IGNORECASE,
)
_PAST = (
    r"(?:(?!(?:need|proceed|exceed|succeed|feed|speed|seed|heed|indeed)(?![a-z]))[a-z]{2,}ed"
    r"|sent|reset|made|done|gave|given|found|issued|put|set|told|paid|spoke|spoken|rang"
    r"|wrote|written|took|taken|resent)"
)
_DID = re.compile(
    rf"{_L}(?:i|we)(?:['’]ve|\s+have|\s+had)?(?:\s+(?:just|already|now))?\s+{_PAST}{_R}"
    rf"|{_L}(?:has|have)\s+been\s+{_PAST}{_R}"
    rf"|{_L}(?:ich\s+habe|wir\s+haben)\s+\w+{_R}|{_L}(?:he|hemos)\s+\w+(?:ado|ido){_R}"
    r"|しました|いたしました",
    re.IGNORECASE,
)


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """A sentence's span without a leading greeting ("Hi, my card…" → "my card…")."""
    greeting = _GREETING.match(text, start, end)
    return (greeting.end(), end) if greeting is not None and greeting.end() < end else (start, end)


def _substantive(sentence: str, min_words: int = MIN_WORDS) -> bool:
    return word_count(sentence) >= min_words and _PLEASANTRY.match(sentence) is None


def key_candidates(messages: Sequence[Quote]) -> list[Quote]:
    """Every substantive sentence of the customer's messages, greeting trimmed, in order."""
    out = []
    for message in sorted(messages, key=lambda m: m.seq):
        for start, end in sentence_spans(message.text):
            a, b = _trimmed(message.text, start, end)
            if _substantive(message.text[a:b]):
                out.append(Quote(message.seq, message.text[a:b]))
    return out


def _score(quote: Quote, opening_seq: int | None) -> int:
    cues = {m.group().casefold() for m in _CUES.finditer(quote.text)}
    scan = Scan(quote.text)
    scan.typed()
    return (
        (OPENING_POINTS if quote.seq == opening_seq else 0)
        + CUE_POINTS * min(len(cues), MAX_CUES)
        + (FACT_POINTS if scan.found else 0)
        + (DETAIL_POINTS if word_count(quote.text) >= DETAIL_WORDS else 0)
    )


def key_sentences(messages: Sequence[Quote], limit: int = PROBLEM_MAX) -> tuple[Quote, ...]:
    """The sentences that state the customer's problem, chosen as the module docstring says.

    Args:
        messages: The customer's customer-facing messages, one `Quote` per message.
        limit: How many sentences at most.

    Returns:
        Verbatim sentences, in the order they were written.
    """
    candidates = key_candidates(messages)
    opening = candidates[0].seq if candidates else None
    ranked = sorted(
        ((-_score(q, opening), index, q) for index, q in enumerate(candidates)),
        key=lambda item: (item[0], item[1]),
    )
    chosen: list[tuple[int, Quote]] = []
    for negative, index, quote in ranked:
        if len(chosen) >= limit or -negative < MIN_SCORE:
            break
        if all(similarity(quote.text, other.text) < SIMILAR for _, other in chosen):
            chosen.append((index, quote))
    return tuple(quote for _, quote in sorted(chosen, key=lambda item: item[0]))


def agent_actions(lines: Sequence[AgentLine], limit: int = MAX_ACTIONS) -> tuple[Action, ...]:
    """What agents did ("I've reset your password") and promised ("we'll email you by
    Friday"), one `Action` per sentence that says so; questions are never actions. A note is
    one `NOTED` action, whole.

    Returns:
        The latest `limit` of them, in the order they were written.
    """
    found: list[Action] = []
    for line in sorted(lines, key=lambda item: item.seq):
        if line.note:
            if line.text.strip():
                found.append(Action(line.seq, NOTED, line.text.strip(), line.agent, True))
            continue
        for start, end in sentence_spans(line.text):
            sentence = line.text[start:end]
            if _QUESTION.search(sentence) or word_count(sentence) < MIN_WORDS:
                continue
            if _PROMISE.search(sentence):
                kind = PROMISED
            elif _DID.search(sentence):
                kind = DID
            else:
                continue
            found.append(Action(line.seq, kind, sentence, line.agent, line.internal))
    return tuple(found[-limit:]) if limit > 0 else ()


def open_questions(
    messages: Sequence[Quote], answered_through: int | None, limit: int = MAX_OPEN_QUESTIONS
) -> tuple[Quote, ...]:
    """The customer's questions that no agent message has followed yet.

    Args:
        messages: The customer's customer-facing messages.
        answered_through: The seq of the latest customer-facing agent message, if any: every
            question before it counts as answered (the agent replied after it).
        limit: How many at most (the latest are kept).
    """
    found = []
    for message in sorted(messages, key=lambda m: m.seq):
        if answered_through is not None and message.seq < answered_through:
            continue
        for start, end in sentence_spans(message.text):
            a, b = _trimmed(message.text, start, end)
            sentence = message.text[a:b]
            if _QUESTION.search(sentence) and _substantive(sentence, MIN_QUESTION_WORDS):
                found.append(Quote(message.seq, sentence))
    return tuple(found[-limit:]) if limit > 0 else ()
