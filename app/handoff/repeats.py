"""The "repeated themselves" detector: after a transfer, did the customer have to say again
something they had already said?

Pure: no I/O, no clock, no randomness. `analytics` counts transfers with at least one
`Repeat` per skill and per agent; the product's goal is zero. Rules:
docs/handoff.md#repeated-themselves.

A customer-facing visitor message after the transfer (`seq > transfer_seq`) repeats when:

- it mentions an order number, ticket number, email or phone number the customer had given
  before the transfer: the same normalised key (`ORD-12345` restates `#12345`; `0049 30 1234567`
  restates `+49 30 1234567`), including a bare `12345` when 12345 was a known order number and
  an answer to the new agent's "what is your order number?";
- or one of its sentences is a near-duplicate of a key sentence from before: Jaccard similarity
  of content words (case-folded words without stop words, CJK as character bigrams, fact
  mentions left out since facts are compared by key) at least `sentences.SIMILAR` (0.6), with
  at least `MIN_SENTENCE_WORDS` distinct content words between the two.

A new, different order number is no repeat; neither is anything said before the transfer,
however often.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.handoff.facts import Fact, Said, asked_kind, collect
from app.handoff.mentions import EMAIL, KINDS, ORDER, PHONE, TICKET, Scan, id_key, key_of
from app.handoff.sentences import SIMILAR, content_words, similarity
from app.handoff.statements import Quote, key_candidates
from app.handoff.summary import AGENT, CUSTOMER_FACING, MESSAGE, VISITOR, EventView, Summary

SENTENCE = "sentence"  # Repeat.fact_kind of a restated sentence
REPEATABLE = (ORDER, TICKET, EMAIL, PHONE)  # what a customer should never have to give twice
MIN_SENTENCE_WORDS = 3  # "charged twice" alone is too little to call a restatement


@dataclass(frozen=True, slots=True)
class Repeat:
    """A restatement at `seq` of what the customer had said at `original_seqs`.

    `fact_kind` is one of `REPEATABLE` or `SENTENCE`; `value` is verbatim from the message
    at `seq` (the restated number or email, or the whole restated sentence).
    """

    seq: int
    fact_kind: str
    value: str
    original_seqs: tuple[int, ...]


def _known(facts: Sequence[Fact], transfer_seq: int) -> dict[tuple[str, str], tuple[int, ...]]:
    known: dict[tuple[str, str], tuple[int, ...]] = {}
    for fact in facts:
        seqs = tuple(s for s in fact.seqs if s <= transfer_seq)
        if fact.kind in REPEATABLE and seqs:
            key = (fact.kind, key_of(fact.kind, fact.value))
            known[key] = tuple(sorted({*known.get(key, ()), *seqs}))
    return known


def _restated_facts(said: Said, known: dict[tuple[str, str], tuple[int, ...]]) -> list[Repeat]:
    scan = Scan(said.text)
    scan.typed()
    for start, end, text in scan.bare():
        for kind in (ORDER, TICKET):
            if (kind, id_key(kind, text)) in known:
                scan.take(kind, start, end, id_key(kind, text))
                break
    scan.asked(said.asked)
    return [
        Repeat(said.seq, m.kind, m.value, known[(m.kind, m.key)])
        for m in scan.mentions()
        if (m.kind, m.key) in known
    ]


def _without_facts(text: str) -> str:
    """`text` with its fact mentions blanked: facts are compared by key, sentences by the rest."""
    scan = Scan(text)
    scan.typed()
    for mention in scan.found:
        text = text[: mention.start] + " " * (mention.end - mention.start) + text[mention.end :]
    return text


def _restated_sentences(said: Said, before: Sequence[Quote]) -> list[Repeat]:
    found = []
    earlier = [(quote.seq, _without_facts(quote.text)) for quote in before]
    for sentence in key_candidates([Quote(said.seq, said.text)]):
        mine = _without_facts(sentence.text)
        best: tuple[float, int] | None = None
        for seq, theirs in earlier:
            union = content_words(mine) | content_words(theirs)
            score = similarity(mine, theirs)
            if score >= SIMILAR and len(union) >= MIN_SENTENCE_WORDS:
                best = max(best or (score, -seq), (score, -seq))
        if best is not None:
            found.append(Repeat(said.seq, SENTENCE, sentence.text, (-best[1],)))
    return found


def _said_after(after: Sequence[EventView], transfer_seq: int) -> list[Said]:
    """The customer's messages after the transfer, each with what an agent had just asked."""
    out: list[Said] = []
    asked: str | None = None
    for event in sorted(after, key=lambda e: e.seq):
        if event.kind != MESSAGE or event.visibility != CUSTOMER_FACING:
            continue
        text = event.body.get("text")
        text = text if isinstance(text, str) else ""
        if event.sender_type == AGENT:
            asked = asked_kind(text)
        elif event.sender_type == VISITOR:
            if event.seq > transfer_seq:
                out.append(Said(event.seq, text, asked))
            asked = None
    return out


def repeats(
    before: Summary | Sequence[Fact],
    after: Sequence[EventView],
    transfer_seq: int,
    *,
    sentences: Sequence[Quote] = (),
) -> list[Repeat]:
    """The customer's restatements after a transfer.

    Args:
        before: What was known before the transfer: a `Summary` (its facts and problem
            sentences) or a list of facts. Only what was said at or before `transfer_seq`
            counts, so a summary built over the whole chat is fine too.
        after: Events of the conversation; only customer-facing visitor messages with
            `seq > transfer_seq` are checked (agent messages among them tell what was asked).
        transfer_seq: The seq of the transfer event from which the new agent holds the chat.
        sentences: Further key sentences from before the transfer to compare against.

    Returns:
        Repeats ordered by seq, then kind (`REPEATABLE` order, sentences last), then value;
        at most one per message and `(kind, key)` or sentence.
    """
    facts = before.facts if isinstance(before, Summary) else before
    quotes = [*(before.problem if isinstance(before, Summary) else ()), *sentences]
    quotes = [q for q in quotes if q.seq <= transfer_seq]
    known = _known(facts, transfer_seq)
    found: dict[tuple[int, str, str], Repeat] = {}
    for said in _said_after(after, transfer_seq):
        for repeat in _restated_facts(said, known):
            found.setdefault(
                (said.seq, repeat.fact_kind, key_of(repeat.fact_kind, repeat.value)), repeat
            )
        for repeat in _restated_sentences(said, quotes):
            found.setdefault((said.seq, SENTENCE, repeat.value), repeat)
    order = {kind: i for i, kind in enumerate((*KINDS, SENTENCE))}
    return sorted(found.values(), key=lambda r: (r.seq, order[r.fact_kind], r.value))


def repeats_after_transfer(
    events: Sequence[EventView], transfer_seq: int, *, catalogue: Sequence[str] = ()
) -> list[Repeat]:
    """`repeats()` from a whole transcript: the facts and every substantive sentence the
    customer wrote up to `transfer_seq` are what they should not have to say again."""
    ordered = sorted(events, key=lambda e: e.seq)
    said = [s for s in _said_after(ordered, -1) if s.seq <= transfer_seq]
    facts = collect(said, catalogue)
    sentences = key_candidates([Quote(s.seq, s.text) for s in said])
    return repeats(facts, ordered, transfer_seq, sentences=sentences)
