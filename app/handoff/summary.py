"""The context summary that travels with a transferred chat: who the customer is, what they
want in their own words, the facts they gave, what agents did and promised, what is still
unanswered, the files sent, the transfer note, the mood, the timings and the chat's transfer
history.

Pure: no I/O, no clock, no randomness; `now` is an argument. `handoff.service` loads the
conversation's events and the visitor, calls `build_summary()`, and stores `to_json()` as
the body of a `handoff.summary` event; agents read `text()`. A deployment's `Summarizer`
(`handoff.summarizer`) may add to it, never replace it. Rules: docs/handoff.md#context-summary.

Contract:
- Deterministic: equal inputs give equal summaries, and `to_json()` equal dicts with equal key
  order. Events are read in `seq` order whatever their order in the input (seqs are unique in
  a conversation, as the store guarantees), so shuffling them changes nothing.
- Traceable: every item carries the seq(s) of the event(s) it came from; quotes and fact
  values are verbatim substrings of those events' text.
- Only customer-facing (`visibility == "all"`) visitor messages are "the customer's own
  words" (problem, facts, questions, sentiment). Agents-only `note` and `transfer.chat`
  events feed only what agents did and promised, marked `internal`. Earlier `handoff.summary`
  events are history, never input.
- Files: every attachment of a customer-facing message, the customer's and agents', is a
  `files` item. A message of files alone (`text` "") adds no quote, fact, action or score:
  only text is words.
- `text()` holds at most `TEXT_WORD_LIMIT` words (`handoff.digest`); `to_json()` keeps the full
  lists (problem ≤ 3 sentences, actions ≤ 8, open questions ≤ 5, all facts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from app.handoff import digest
from app.handoff.digest import TEXT_WORD_LIMIT
from app.handoff.facts import Fact, Said, asked_kind, collect
from app.handoff.sentiment import DEFAULT_SCORER, Scorer, trend
from app.handoff.statements import (
    Action,
    AgentLine,
    Quote,
    agent_actions,
    key_sentences,
    open_questions,
)

__all__ = [
    "TEXT_WORD_LIMIT",
    "Action",
    "Customer",
    "EarlierConversation",
    "EventView",
    "Fact",
    "FileItem",
    "HistoryItem",
    "Origin",
    "Quote",
    "Sentiment",
    "Summary",
    "SummaryInput",
    "Timings",
    "TransferNote",
    "VisitorView",
    "build_summary",
]

Scalar = str | int | float | bool | None

# Event kinds read here (docs/protocol.md#event-kinds); the transfer kinds come with handoff.
OPENED = "conversation.opened"
MESSAGE = "message"
QUEUED = "conversation.queued"
OFFLINE = "conversation.offline"
ASSIGNED = "conversation.assigned"
AGENT_LEFT = "agent.left"
CLOSED = "conversation.closed"
NOTE = "note"  # agents only: an internal note
TRANSFER_CHAT = "transfer.chat"  # agents only: the two agents of a pending transfer talking
TRANSFER_REQUESTED = "transfer.requested"
TRANSFER_ACCEPTED = "transfer.accepted"
TRANSFER_DECLINED = "transfer.declined"
TRANSFER_EXPIRED = "transfer.expired"
ESCALATED = "conversation.escalated"
SUMMARY = "handoff.summary"
HISTORY_KINDS = frozenset(
    {TRANSFER_REQUESTED, TRANSFER_ACCEPTED, TRANSFER_DECLINED, TRANSFER_EXPIRED, ESCALATED, SUMMARY}
)
VISITOR = "visitor"
AGENT = "agent"
CUSTOMER = "customer"  # FileItem.sender of the visitor's files
CUSTOMER_FACING = "all"
PRIORITY_FLAGS = {1: "high", 2: "VIP"}  # conversation.opened `priority`: 0 normal, 1 high, 2 VIP
FORMAT_VERSION = 1  # of to_json(); bump when a reader would misread the old shape


@dataclass(frozen=True, slots=True)
class EventView:
    """A stored conversation event as the builder reads it (mirrors `chat.events.StoredEvent`
    with plain strings for the enums)."""

    seq: int
    kind: str
    sender_type: str  # "visitor", "agent" or "system"
    sender_id: str | None
    sender_name: str | None
    visibility: str  # "all" or "agents"
    body: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class VisitorView:
    id: str
    name: str | None
    email: str | None
    external_id: str | None
    verified: bool
    priority: int
    attributes: Mapping[str, Scalar]


@dataclass(frozen=True, slots=True)
class EarlierConversation:
    id: str
    opened_at: datetime
    closed_at: datetime | None
    skill_name: str | None
    agent_name: str | None


@dataclass(frozen=True, slots=True)
class SummaryInput:
    """Everything the summary is built from.

    `catalogue` lists product names the deployment sells; `transfer_note` is the note of the
    transfer being made now (if None, the note of the latest `transfer.requested` is used).
    """

    events: Sequence[EventView]
    visitor: VisitorView
    now: datetime
    skill_name: str | None = None
    earlier: Sequence[EarlierConversation] = ()
    transfer_note: str | None = None
    catalogue: Sequence[str] = ()
    scorer: Scorer = DEFAULT_SCORER


@dataclass(frozen=True, slots=True)
class Customer:
    name: str | None
    email: str | None
    external_id: str | None  # only when a signed identity verified it
    verified: bool
    priority: int
    flag: str | None  # "VIP", "high" or None
    attributes: tuple[tuple[str, Scalar], ...]  # sorted by name
    seqs: tuple[int, ...]  # the conversation.opened event, when present


@dataclass(frozen=True, slots=True)
class Origin:
    page_url: str | None
    skill: str | None
    skill_source: str | None  # "topic", "page", "message" or "none"
    matched: tuple[str, ...]
    seqs: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class TransferNote:
    text: str
    seq: int | None  # None: the note of the transfer being made, not stored yet


@dataclass(frozen=True, slots=True)
class Sentiment:
    trend: str  # "improving", "steady" or "worsening"
    first: float
    last: float
    scores: tuple[tuple[int, float], ...]  # (seq, score) per customer message


@dataclass(frozen=True, slots=True)
class Timings:
    waited_s: int  # in the queue or offline, waiting for an agent, so far
    handled_s: int  # held by an agent, so far
    open_s: int  # from the first event to the close, or to `now`
    waiting_now: bool
    seqs: tuple[int, ...]  # the queue, offline, assignment, leave and close events counted


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """A transfer step, an escalation or an earlier summary, from the event at `seq`."""

    seq: int
    kind: str  # the event kind
    at: datetime
    transfer_id: str | None = None
    mode: str | None = None  # transfer.requested: "warm", "cold" or "escalation"
    by: str | None = None  # who asked, accepted or declined; escalation: agent/visitor/rule
    to: str | None = None  # transfer.requested: agent or skill name, or "supervisors"
    reason: str | None = None
    note: str | None = None
    rule: str | None = None  # escalation by rule: which


@dataclass(frozen=True, slots=True)
class FileItem:
    """One file of the customer-facing message at `seq`, as its `attachments` named it
    (docs/protocol.md#message); fields the body lacks or mistyped are None."""

    seq: int
    sender: str  # CUSTOMER or AGENT
    sender_name: str | None  # the agent's name; None for the customer's files
    id: str  # for a console to link to the download
    name: str | None
    content_type: str | None
    size: int | None  # bytes
    image: bool


@dataclass(frozen=True, slots=True)
class Summary:
    """The context summary of one conversation, as of `built_at` and event `through_seq`.

    Sections: `customer`; `origin` (page and skill); `problem` (key sentences, verbatim, in
    the order written); `facts` (all of them, superseded ones marked); agents' `actions`;
    the customer's `open_questions`; the `files` sent both ways, in seq order; the transfer
    `note`; `sentiment`; `timings`; transfer and escalation `history` in seq order; `earlier`
    conversations, newest first.
    """

    built_at: datetime
    through_seq: int  # the latest event read
    customer: Customer
    origin: Origin
    problem: tuple[Quote, ...]
    facts: tuple[Fact, ...]
    actions: tuple[Action, ...]
    open_questions: tuple[Quote, ...]
    files: tuple[FileItem, ...]
    note: TransferNote | None
    sentiment: Sentiment
    timings: Timings
    history: tuple[HistoryItem, ...]
    earlier: tuple[EarlierConversation, ...]

    @property
    def current_facts(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.facts if f.current)

    def text(self) -> str:
        """The summary as an agent reads it: at most `TEXT_WORD_LIMIT` words, lower-priority
        sections dropped first (see `handoff.digest`)."""
        return digest.render(self)

    def to_json(self) -> dict[str, Any]:
        """The full summary as JSON-ready data, the body of a `handoff.summary` event: every
        field by its name, in declaration order; datetimes as ISO 8601 UTC with a `Z`, tuples
        as lists, the customer's attributes as an object."""
        body: dict[str, Any] = {"version": FORMAT_VERSION, **_plain(self)}
        body["customer"]["attributes"] = dict(self.customer.attributes)
        return body


def _plain(value: object) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    return value


def _iso(value: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as the protocol writes timestamps."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _name(value: object) -> str | None:
    """The `name` of an `{id, name}` body object."""
    return _str(value.get("name")) if isinstance(value, Mapping) else None


def _text(event: EventView) -> str:
    """The message's text; "" for a message of files alone (or a malformed one), which the
    callers skip wherever a quote, fact, action or score would be made of it."""
    return _str(event.body.get("text")) or ""


def _files(event: EventView) -> list[FileItem]:
    """The files of a customer-facing message; items without an id are not files."""
    attachments = event.body.get("attachments")
    if not isinstance(attachments, list):
        return []
    sender, name = (CUSTOMER, None) if event.sender_type == VISITOR else (AGENT, event.sender_name)
    found = []
    for item in attachments:
        if not isinstance(item, Mapping) or (file_id := _str(item.get("id"))) is None:
            continue
        size = item.get("size")
        found.append(
            FileItem(
                seq=event.seq,
                sender=sender,
                sender_name=_str(name),
                id=file_id,
                name=_str(item.get("name")),
                content_type=_str(item.get("content_type")),
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                image=item.get("image") is True,
            )
        )
    return found


def _customer_says(event: EventView) -> bool:
    return (
        event.kind == MESSAGE
        and event.sender_type == VISITOR
        and event.visibility == CUSTOMER_FACING
    )


def _agent_says(event: EventView) -> bool:
    return (
        event.kind == MESSAGE and event.sender_type == AGENT and event.visibility == CUSTOMER_FACING
    )


def _customer(visitor: VisitorView, opened: EventView | None) -> Customer:
    body = opened.body if opened is not None else {}
    shown = body.get("visitor")
    opened_priority = body.get("priority")
    priority = max(visitor.priority, opened_priority if isinstance(opened_priority, int) else 0)
    verified = visitor.verified or (isinstance(shown, Mapping) and shown.get("verified") is True)
    return Customer(
        name=_str(visitor.name) or _name(shown),
        email=_str(visitor.email),
        external_id=_str(visitor.external_id) if visitor.verified else None,
        verified=verified,
        priority=priority,
        flag=PRIORITY_FLAGS.get(priority),
        attributes=tuple(sorted(visitor.attributes.items())),
        seqs=() if opened is None else (opened.seq,),
    )


def _origin(opened: EventView | None, skill_name: str | None) -> Origin:
    if opened is None:
        return Origin(None, skill_name, None, (), ())
    skill = opened.body.get("skill")
    skill = skill if isinstance(skill, Mapping) else {}
    matched = skill.get("matched")
    return Origin(
        page_url=_str(opened.body.get("page_url")),
        skill=skill_name,
        skill_source=_str(skill.get("source")),
        matched=tuple(m for m in matched if isinstance(m, str))
        if isinstance(matched, list)
        else (),
        seqs=(opened.seq,),
    )


def _target(to: object) -> str | None:
    if not isinstance(to, Mapping):
        return None
    if to.get("supervisors") is True:
        return "supervisors"
    return _name(to.get("agent")) or _name(to.get("skill"))


def _history(event: EventView) -> HistoryItem:
    b = event.body
    transfer_id = _str(b.get("transfer_id"))
    at = event.created_at
    if event.kind == TRANSFER_REQUESTED:
        return HistoryItem(
            event.seq, event.kind, at, transfer_id, mode=_str(b.get("kind")),
            by=_name(b.get("from_agent")), to=_target(b.get("to")),
            reason=_str(b.get("reason")), note=_str(b.get("note")),
        )  # fmt: skip
    if event.kind == ESCALATED:
        return HistoryItem(
            event.seq, event.kind, at, by=_str(b.get("by")), reason=_str(b.get("reason")),
            rule=_str(b.get("rule")),
        )  # fmt: skip
    by = _name(b.get("agent"))
    return HistoryItem(event.seq, event.kind, at, transfer_id, by=by, reason=_str(b.get("reason")))


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, int((end - start).total_seconds()))


def _timings(events: Sequence[EventView], now: datetime) -> Timings:
    """Waiting runs from a queue or offline event to the next assignment (or close); holding
    runs from an assignment to the next leave, re-queue or close. Open ones run to `now`."""
    waited = handled = 0
    wait_from: datetime | None = None
    hold_from: datetime | None = None
    seqs: list[int] = []
    end = now
    for event in events:
        at = event.created_at
        if event.kind in (QUEUED, OFFLINE, AGENT_LEFT, CLOSED) and hold_from is not None:
            handled += _seconds(hold_from, at)
            hold_from = None
        if event.kind in (ASSIGNED, CLOSED) and wait_from is not None:
            waited += _seconds(wait_from, at)
            wait_from = None
        if event.kind in (QUEUED, OFFLINE) and wait_from is None:
            wait_from = at
        elif event.kind == ASSIGNED and hold_from is None:
            hold_from = at
        if event.kind in (QUEUED, OFFLINE, ASSIGNED, AGENT_LEFT, CLOSED):
            seqs.append(event.seq)
        if event.kind == CLOSED:
            end = at
    waited += _seconds(wait_from, end) if wait_from is not None else 0
    handled += _seconds(hold_from, end) if hold_from is not None else 0
    opened = _seconds(events[0].created_at, end) if events else 0
    return Timings(waited, handled, opened, wait_from is not None, tuple(seqs))


def build_summary(source: SummaryInput) -> Summary:
    """Build the context summary of one conversation (see the module docstring's contract).

    Args:
        source: The conversation's events (any order; unique seqs), the visitor's record,
            `now` (timezone-aware), and the deployment's catalogue and scorer.

    Returns:
        The summary. Building it reads nothing else and changes nothing.
    """
    events = sorted(source.events, key=lambda e: e.seq)
    opened = next((e for e in events if e.kind == OPENED), None)
    said: list[Said] = []
    asked: str | None = None
    agent_lines: list[AgentLine] = []
    last_reply: int | None = None
    files: list[FileItem] = []
    for event in events:
        if _customer_says(event):
            files += _files(event)
            if text := _text(event):  # files alone answer no question asked for a value
                said.append(Said(event.seq, text, asked))
                asked = None
        elif _agent_says(event):
            files += _files(event)
            last_reply = event.seq  # a form sent in reply answers the question before it too
            if text := _text(event):  # files alone leave the agent's last request standing
                asked = asked_kind(text)
                agent_lines.append(AgentLine(event.seq, text, event.sender_name, False))
        elif event.kind in (NOTE, TRANSFER_CHAT) and event.sender_type == AGENT:
            line = AgentLine(event.seq, _text(event), event.sender_name, True, event.kind == NOTE)
            agent_lines.append(line)
    words = [Quote(s.seq, s.text) for s in said]
    scores = [(s.seq, round(max(-1.0, min(1.0, source.scorer.score(s.text))), 4)) for s in said]
    mood = trend([score for _, score in scores])
    history = tuple(_history(e) for e in events if e.kind in HISTORY_KINDS)
    note: TransferNote | None = None
    if _str(source.transfer_note) is not None:
        note = TransferNote(str(source.transfer_note).strip(), None)
    else:
        requested = [h for h in history if h.kind == TRANSFER_REQUESTED and h.note is not None]
        if requested:
            note = TransferNote(str(requested[-1].note), requested[-1].seq)
    return Summary(
        built_at=source.now,
        through_seq=events[-1].seq if events else 0,
        customer=_customer(source.visitor, opened),
        origin=_origin(opened, source.skill_name),
        problem=key_sentences(words),
        facts=collect(said, source.catalogue),
        actions=agent_actions(agent_lines),
        open_questions=open_questions(words, last_reply),
        files=tuple(files),
        note=note,
        sentiment=Sentiment(mood.direction, mood.first, mood.last, tuple(scores)),
        timings=_timings(events, source.now),
        history=history,
        earlier=tuple(sorted(source.earlier, key=lambda e: (-e.opened_at.timestamp(), e.id))),
    )
