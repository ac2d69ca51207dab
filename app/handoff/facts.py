"""The facts a customer gave in a chat, merged across messages, with corrections applied.

Pure: no I/O, no clock, no randomness. `handoff.summary` calls `collect()` on the customer's
messages; `handoff.repeats` reuses `Fact` and the keys of `handoff.mentions`. What counts as a
mention (patterns, keys, languages) is in `handoff.mentions`. Rules: docs/handoff.md#facts.

A fact is one `(kind, key)`: the same order number written twice, or written `ORD-12345` once
and `12345` later, is one fact citing both messages. Its `value` is how the customer first wrote
it, verbatim, and `seqs` lists every message that mentioned it, so each fact can be checked
against the events it cites.

Corrections. A sentence with a correction marker ("sorry, I meant", "correction", "actually
it's", "should be", "not X but Y", "ich meinte", "nicht X sondern", "quise decir", "no X sino",
"訂正", "正しくは", "ではなく" …) corrects with every value that follows the marker in that
sentence. Each such value supersedes, of the same kind: the value the sentence itself negates
("not 12345", "12345ではなく") if there is one; else the most recently mentioned value still
current that was mentioned before the marker. A bare number after a marker ("sorry, I meant
12354") takes the kind of a known fact with that key, else of an order or ticket number in the
same sentence, else of the latest order or ticket number, provided it is about as long as that
number (one digit more or less, and no year for a longer number); with no order or ticket
number known, the kind the agent asked for, if any. Restating a superseded value in a
correction makes it current again. Superseded facts stay in the list, marked, so both stay
traceable.

Bare numbers elsewhere are facts only in context: when they restate a known order or ticket
number, or answer an agent who had just asked for one (`Said.asked`, see `asked_kind()`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from app.handoff.mentions import (
    ID_KINDS,
    KINDS,
    ORDER,
    PHONE,
    TICKET,
    Mention,
    Scan,
    id_key,
)
from app.handoff.sentences import sentence_spans

__all__ = ["KINDS", "Fact", "Said", "asked_kind", "collect"]


@dataclass(frozen=True, slots=True)
class Fact:
    """A fact the customer gave.

    `kind` is one of `KINDS`; `value` is verbatim from the message at `seqs[0]`; `seqs` are
    the seqs of every message that mentioned it, ascending; `superseded_by` is the value that
    corrected it, or None while it is current.
    """

    kind: str
    value: str
    seqs: tuple[int, ...]
    superseded_by: str | None = None

    @property
    def current(self) -> bool:
        return self.superseded_by is None


@dataclass(frozen=True, slots=True)
class Said:
    """One customer message: its seq, its text, and the kind of fact an agent had just asked
    for in the agent message right before it (None if none)."""

    seq: int
    text: str
    asked: str | None = None


_CORRECTION = re.compile(
    r"(?<![A-Za-z])(?:i\s+meant|correction|corrected|actually\s*,?\s*it(?:'|’)?s"
    r"|actually\s*,?\s*it\s+is|it(?:'|’)?s\s+actually|is\s+actually|should\s+(?:be|have\s+been)"
    r"|typo|wrong\s+(?:number|one|order|email|address|ticket)|my\s+(?:bad|mistake)"
    r"|not\s+[^.!?\n]{1,40}?\s+but|ich\s+meinte?|korrektur|richtig\s+ist"
    r"|nicht\s+[^.!?\n]{1,40}?\s+sondern|quise\s+decir|quer[ií]a\s+decir|correcci[oó]n"
    r"|me\s+equivoqu[eé]|no\s+[^.!?\n]{1,40}?\s+sino)(?![A-Za-z])"
    r"|訂正|正しくは|間違え",
    re.IGNORECASE,
)
# Markers written after the value they negate: the whole sentence is the correction.
NEGATION_REACH = 24  # characters before a value searched for "not …": "no es el pedido 12345"
_SUFFIX_NEGATION = re.compile(r"\s*(?:ではなく|じゃなくて|じゃなく)")
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_NEGATED_BEFORE = re.compile(
    r"(?<![A-Za-z])(?:not|nicht|kein|keine|no|ni)\s+(?:(?:it|is|was|es|era|ist|war|the|die|der"
    r"|das|el|la|order|ticket|pedido|bestellung)\s+){0,2}#?\s*$",
    re.IGNORECASE,
)
_ASKS = re.compile(r"\?|？|please|could you|can you|bitte|por favor|お願い|教えて", re.IGNORECASE)
_ASKED_KINDS = (
    (ORDER, re.compile(r"order|bestell|pedido|commande|注文", re.IGNORECASE)),
    (TICKET, re.compile(r"ticket|case|reference|vorgang|caso|問い合わせ", re.IGNORECASE)),
    (PHONE, re.compile(r"phone|mobile|telefon|teléfono|電話", re.IGNORECASE)),
)


def asked_kind(agent_text: str) -> str | None:
    """The kind of fact an agent's message asks the customer for, if it asks for one.

    A message asks when it has a question mark or a "please"; of the kinds it names (order,
    ticket or case, phone), the one named first wins.
    """
    if _ASKS.search(agent_text) is None:
        return None
    named = [(m.start(), kind) for kind, rx in _ASKED_KINDS if (m := rx.search(agent_text))]
    return min(named)[1] if named else None


@dataclass(slots=True)
class _Entry:
    kind: str
    key: str
    value: str
    seqs: list[int]
    first: tuple[int, int]  # (seq, offset) of the first mention
    last: tuple[int, int]  # (seq, offset) of the latest mention
    superseded_by: str | None = None


@dataclass(slots=True)
class _Said:
    """One message's mentions, with the correction scopes they fall in."""

    mentions: list[Mention] = field(default_factory=list)
    scope_of: dict[int, tuple[int, int]] = field(default_factory=dict)  # mention index → scope
    negated: set[int] = field(default_factory=set)  # indexes of negated mentions


def _scopes(view: str) -> list[tuple[int, int]]:
    """The correction scopes of a text: from each marker to the end of its sentence."""
    scopes = []
    for start, end in sentence_spans(view):
        if (marker := _CORRECTION.search(view, start, end)) is not None:
            scopes.append((marker.start(), end))
        elif _SUFFIX_NEGATION.search(view, start, end) is not None:
            scopes.append((start, end))
    return scopes


def _like(bare: str, key: str) -> bool:
    """Whether a bare number can be the corrected form of `key`: typos keep a number about as
    long (12345 → 12354), and a year is no correction of a longer number."""
    digits, reference = sum(c.isdigit() for c in bare), sum(c.isdigit() for c in key)
    year = _YEAR.fullmatch(bare) is not None and reference != len(bare)
    return abs(digits - reference) <= 1 and not year


def _is_negated(view: str, mention: Mention, scope: tuple[int, int]) -> bool:
    """Whether the sentence says this value is the wrong one ("not 12345", "12345ではなく")."""
    before = view[max(scope[0], mention.start - NEGATION_REACH) : mention.start]
    return (
        _NEGATED_BEFORE.search(before) is not None
        or _SUFFIX_NEGATION.match(view, mention.end) is not None
    )


class _Collector:
    def __init__(self, catalogue: Sequence[str]) -> None:
        self.catalogue = catalogue
        self.entries: dict[tuple[str, str], _Entry] = {}

    def _latest_id(self, key: str | None = None) -> _Entry | None:
        """The latest current order or ticket number; with `key`, the latest with that key."""
        pool = [
            e
            for e in self.entries.values()
            if e.kind in ID_KINDS and (e.key == key if key is not None else e.superseded_by is None)
        ]
        return max(pool, key=lambda e: e.last) if pool else None

    def _bare_kind(self, text: str, scoped: list[Mention], asked: str | None) -> str | None:
        """The kind of a bare number after a correction marker (see the module docstring)."""
        if (known := self._latest_id(id_key(ORDER, text))) is not None:
            return known.kind
        reference = next((m.key for m in scoped if m.kind in ID_KINDS), None)
        if reference is not None:
            kind = next(m.kind for m in scoped if m.kind in ID_KINDS)
        elif (latest := self._latest_id()) is not None:
            kind, reference = latest.kind, latest.key
        else:
            return asked if asked in ID_KINDS else None
        return kind if _like(text, reference) else None

    def _read(self, said: Said) -> _Said:
        scan = Scan(said.text)
        scan.typed(self.catalogue)
        scopes = _scopes(scan.view)
        for start, end in scopes:
            scoped = [m for m in scan.mentions() if start <= m.start and m.end <= end]
            for first, last, text in scan.bare(start, end):
                if (kind := self._bare_kind(text, scoped, said.asked)) is not None:
                    scan.take(kind, first, last, id_key(kind, text))
        for start, end, text in scan.bare():
            if (known := self._latest_id(id_key(ORDER, text))) is not None:
                scan.take(known.kind, start, end, id_key(known.kind, text))
        scan.asked(said.asked)
        out = _Said(mentions=scan.mentions())
        for index, mention in enumerate(out.mentions):
            for scope in scopes:
                if scope[0] <= mention.start and mention.end <= scope[1]:
                    out.scope_of[index] = scope
                    if _is_negated(scan.view, mention, scope):
                        out.negated.add(index)
        return out

    def add(self, said: Said) -> None:
        read = self._read(said)
        touched: list[_Entry] = []
        for mention in read.mentions:
            entry = self.entries.get((mention.kind, mention.key))
            if entry is None:
                at = (said.seq, mention.start)
                entry = _Entry(mention.kind, mention.key, mention.value, [], at, at)
                self.entries[(mention.kind, mention.key)] = entry
            if said.seq not in entry.seqs:
                entry.seqs.append(said.seq)
            entry.last = max(entry.last, (said.seq, mention.start))
            touched.append(entry)
        for index, scope in sorted(read.scope_of.items()):
            if index in read.negated:
                continue
            new = touched[index]
            target = next(
                (
                    touched[i]
                    for i in sorted(read.negated)
                    if read.scope_of[i] == scope
                    and touched[i].kind == new.kind
                    and touched[i] is not new
                ),
                None,
            ) or self._previous(new, (said.seq, scope[0]))
            if target is not None:
                target.superseded_by = new.value
                new.superseded_by = None

    def _previous(self, new: _Entry, before: tuple[int, int]) -> _Entry | None:
        pool = [
            e
            for e in self.entries.values()
            if e.kind == new.kind and e is not new and e.superseded_by is None and e.last < before
        ]
        return max(pool, key=lambda e: e.last) if pool else None


def collect(said: Sequence[Said], catalogue: Sequence[str] = ()) -> tuple[Fact, ...]:
    """The facts in the customer's messages.

    Args:
        said: The customer's messages (customer-facing ones only: never agents' notes). Read in
            seq order whatever their order here.
        catalogue: Product names to recognise (see `mentions.extract`).

    Returns:
        One `Fact` per `(kind, key)`, in the order first mentioned; superseded ones included.
    """
    collector = _Collector(catalogue)
    for message in sorted(said, key=lambda s: s.seq):
        collector.add(message)
    entries = sorted(collector.entries.values(), key=lambda e: e.first)
    return tuple(Fact(e.kind, e.value, tuple(e.seqs), e.superseded_by) for e in entries)
