"""The context summary stored with every transfer (docs/handoff.md#context-summary), the
sentiment scorer it rates customers' messages with (docs/handoff.md#sentiment), and the
"repeated themselves" check after a transfer (docs/handoff.md#repeated-themselves).

Loads what the pure cores (`handoff.summary`, `handoff.repeats`) need and stores what they
find as agents-only events. Runs inside the caller's unit of work and never commits.

Keeps two things per process for the check after every customer message: the escalation
settings and product catalogue for `SETTINGS_TTL_SECONDS` (a change made on another node is
seen once they expire; `routing.repository` makes one made here seen at once), and the scores
of customer messages (`SCORES`, bounded), which never go stale. Nothing else is kept between
units of work.
"""

from __future__ import annotations

import importlib
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat.events import StoredEvent
from app.chat.log import append_event
from app.chat.service import Outcome
from app.handoff.repeats import Repeat, repeats_after_transfer
from app.handoff.rules import EscalationPolicy
from app.handoff.sentiment import DEFAULT_SCORER, Scorer
from app.handoff.summary import (
    EarlierConversation,
    EventView,
    Summary,
    SummaryInput,
    VisitorView,
    build_summary,
)
from app.routing import repository as routing_repository
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    RoutingSettings,
    SenderType,
    Skill,
    Transfer,
    TransferState,
    Visibility,
    Visitor,
)

# Earlier conversations of the visitor linked from a summary.
log = logging.getLogger(__name__)

EARLIER_LIMIT = 5
# Customer messages after a transfer checked for a restatement: a repeat that late is a new
# question, not the cost of a bad handoff.
REPEAT_WINDOW = 10


# -- the sentiment scorer ---------------------------------------------------------------------

_SCORER = "warmline.handoff.scorer"


def load_scorer(spec: str | None) -> Scorer:
    """The scorer named by "package.module:name" (an object with `score`, or a class making
    one), or the built-in lexicon scorer when `spec` is empty.

    Raises:
        ValueError: the spec names nothing importable, or nothing that scores.
    """
    if not spec:
        return DEFAULT_SCORER
    module_name, _, attribute = spec.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute or "scorer")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"WARMLINE_SENTIMENT_SCORER={spec!r} cannot be imported: {exc}") from exc
    scorer = found() if isinstance(found, type) else found
    if not callable(getattr(scorer, "score", None)):
        raise ValueError(f"WARMLINE_SENTIMENT_SCORER={spec!r} has no score(text) method.")
    return GuardedScorer(cast(Scorer, scorer))


class GuardedScorer:
    """A deployment's scorer that can never break a chat: a failure or a non-number scores
    as neutral (0) and is logged; a mark out of range is clamped to [-1, 1]."""

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner

    def score(self, text: str) -> float:
        try:
            value = float(self.inner.score(text))
        except Exception as exc:  # a deployment's plug-in may raise anything
            log.warning("sentiment scorer failed (%r); scored as neutral", exc)
            return 0.0
        if math.isnan(value):
            return 0.0
        return max(-1.0, min(1.0, value))


def use_scorer(session: AsyncSession, scorer: Scorer) -> None:
    """Make `scorer` the one this unit of work rates customers' messages with."""
    session.info[_SCORER] = scorer


def _scorer(session: AsyncSession) -> Scorer:
    found: Scorer = session.info.get(_SCORER, DEFAULT_SCORER)
    return found


# How many customer messages' scores a process keeps. The sentiment rule rescores the last
# `escalate_sentiment_window` (3 by default, at most 20) messages after each new one; with this
# many, a node serving a few thousand chats at once scores each message once.
SCORE_CACHE_SIZE = 20_000


class ScoreCache:
    """Scores of stored customer messages, by conversation and `seq`, least recently used
    first out. Correct on any node: a stored message never changes, and a score is a pure
    function of its text and the scorer (a mark is kept with the scorer that gave it, and only
    that scorer gets it back). Clamped to [-1, 1], as the summary clamps them: a plug-in scorer
    out of range must not skew the rule."""

    def __init__(self, size: int = SCORE_CACHE_SIZE) -> None:
        self.size = size
        self._marks: OrderedDict[tuple[uuid.UUID, int], tuple[Scorer, float]] = OrderedDict()

    def scores(
        self, scorer: Scorer, conversation_id: uuid.UUID, said: Sequence[tuple[int, str]]
    ) -> list[float]:
        """The scores of `said`, (seq, text) pairs of one conversation, in their order."""
        out = []
        for seq, text in said:
            key = (conversation_id, seq)
            found = self._marks.get(key)
            if found is not None and found[0] is scorer:
                self._marks.move_to_end(key)
                out.append(found[1])
                continue
            mark = max(-1.0, min(1.0, scorer.score(text)))
            self._marks[key] = (scorer, mark)
            self._marks.move_to_end(key)
            if len(self._marks) > self.size:
                self._marks.popitem(last=False)
            out.append(mark)
        return out


SCORES = ScoreCache()


# -- the stored settings the checks read ------------------------------------------------------

# How long a process keeps the escalation settings and the product catalogue it read from the
# routing settings row. Every customer message checks them: reading the row each time cost a
# query per message, for a row that changes when an admin edits the policy. A change made
# through the admin API is seen at once by the node that made it (`routing.repository`
# bumps its version on commit); other nodes see it within this many seconds.
SETTINGS_TTL_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StoredSettings:
    """What the handoff checks read of the routing settings row."""

    policy: EscalationPolicy
    catalogue: tuple[str, ...]


class SettingsCache:
    """The stored settings as last read, per database, for `ttl` seconds of `clock`."""

    def __init__(
        self, ttl: float = SETTINGS_TTL_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.clock = clock
        self._held: dict[str, tuple[int, float, StoredSettings]] = {}

    def get(self, key: str, version: int) -> StoredSettings | None:
        """What was put under `key` at `version` less than `ttl` ago, or None."""
        held = self._held.get(key)
        if held is None or held[0] != version or self.clock() - held[1] >= self.ttl:
            return None
        return held[2]

    def put(self, key: str, version: int, read_at: float, settings: StoredSettings) -> None:
        """Keep `settings`, read from the database no earlier than `read_at` (`clock`'s time
        before the read) while its version was `version`."""
        self._held[key] = (version, read_at, settings)


SETTINGS = SettingsCache()


async def stored_settings(session: AsyncSession) -> StoredSettings:
    """The escalation policy and product catalogue as stored, at most `SETTINGS_TTL_SECONDS`
    old (fresh in a unit of work that changed them)."""
    if routing_repository.settings_changed_here(session):
        return _settings_of(await routing_repository.routing_settings(session))
    key, version = routing_repository.settings_version(session)
    held = SETTINGS.get(key, version)
    if held is not None:
        return held
    read_at = SETTINGS.clock()
    # Tagged with the version seen before the read: a change committed meanwhile bumps it, and
    # this copy is then stale at once.
    fresh = _settings_of(await routing_repository.routing_settings(session))
    SETTINGS.put(key, version, read_at, fresh)
    return fresh


def _settings_of(row: RoutingSettings) -> StoredSettings:
    return StoredSettings(
        policy=EscalationPolicy(
            phrases=tuple(row.escalation_phrases or ()),
            wait_seconds=row.escalate_wait_seconds,
            handle_seconds=row.escalate_handle_seconds,
            max_transfers=row.escalate_after_transfers,
            sentiment_below=row.escalate_sentiment_below,
            sentiment_window=row.escalate_sentiment_window,
        ),
        catalogue=tuple(row.product_catalogue or ()),
    )


# -- the context summary ----------------------------------------------------------------------


def _view(row: ConversationEvent) -> EventView:
    return EventView(
        seq=row.seq,
        kind=row.kind,
        sender_type=row.sender_type.value,
        sender_id=None if row.sender_id is None else str(row.sender_id),
        sender_name=row.sender_name,
        visibility=row.visibility.value,
        body=row.body or {},
        created_at=row.created_at,
    )


async def _transcript(
    session: AsyncSession, conversation_id: uuid.UUID, *, messages_only: bool = False
) -> list[EventView]:
    query = select(ConversationEvent).where(ConversationEvent.conversation_id == conversation_id)
    if messages_only:
        query = query.where(ConversationEvent.kind == kinds.MESSAGE)
    rows = await session.scalars(query.order_by(ConversationEvent.seq))
    return [_view(row) for row in rows]


async def _earlier(session: AsyncSession, conversation: Conversation) -> list[EarlierConversation]:
    rows = await session.execute(
        select(Conversation, Skill.name, Agent.name)
        .outerjoin(Skill, Skill.id == Conversation.skill_id)
        .outerjoin(Agent, Agent.id == Conversation.agent_id)
        .where(
            Conversation.visitor_id == conversation.visitor_id,
            Conversation.id != conversation.id,
        )
        .order_by(Conversation.created_at.desc())
        .limit(EARLIER_LIMIT)
    )
    return [
        EarlierConversation(
            id=str(row.id),
            opened_at=row.created_at,
            closed_at=row.closed_at,
            skill_name=skill_name,
            agent_name=agent_name,
        )
        for row, skill_name, agent_name in rows
    ]


async def build(
    session: AsyncSession, conversation: Conversation, *, now: datetime, note: str | None
) -> Summary:
    """The context summary of a conversation as it stands (`handoff.summary.build_summary`
    over its whole log and its visitor's record)."""
    visitor = await session.get(Visitor, conversation.visitor_id)
    settings = await routing_repository.routing_settings(session)
    skill_name = (
        None
        if conversation.skill_id is None
        else await session.scalar(select(Skill.name).where(Skill.id == conversation.skill_id))
    )
    attributes = {} if visitor is None else dict(visitor.attributes or {})
    view = VisitorView(
        id=str(conversation.visitor_id),
        name=None if visitor is None else visitor.name,
        email=None if visitor is None else visitor.email,
        external_id=None if visitor is None else visitor.external_id,
        verified=visitor is not None and visitor.verified_at is not None,
        priority=0 if visitor is None else visitor.priority,
        attributes={k: v for k, v in attributes.items() if isinstance(v, str | int | float | bool)},
    )
    return build_summary(
        SummaryInput(
            events=await _transcript(session, conversation.id),
            visitor=view,
            now=now,
            skill_name=skill_name,
            earlier=await _earlier(session, conversation),
            transfer_note=note,
            catalogue=tuple(settings.product_catalogue or ()),
            scorer=_scorer(session),
        )
    )


def _summary_event(
    session: AsyncSession,
    conversation: Conversation,
    summary: Summary,
    *,
    transfer_id: uuid.UUID | None,
    now: datetime,
) -> StoredEvent:
    return append_event(
        session,
        conversation,
        kind=kinds.SUMMARY,
        now=now,
        body={
            "transfer_id": None if transfer_id is None else str(transfer_id),
            "text": summary.text(),
            "summary": summary.to_json(),
        },
        visibility=Visibility.AGENTS,
    )


# -- after a transfer: did the customer repeat themselves? ------------------------------------


@dataclass(frozen=True, slots=True)
class FoundRepeat:
    """Restatements found after the move of `transfer_id`, not yet stored."""

    transfer_id: uuid.UUID
    repeats: tuple[Repeat, ...]


async def _moved_by(session: AsyncSession, conversation_id: uuid.UUID) -> Transfer | None:
    """The accepted transfer that last moved the chat."""
    transfer: Transfer | None = await session.scalar(
        select(Transfer)
        .where(
            Transfer.conversation_id == conversation_id,
            Transfer.state == TransferState.ACCEPTED,
            Transfer.moved_seq.is_not(None),
        )
        .order_by(Transfer.moved_seq.desc())
        .limit(1)
        # A copy read earlier in this unit of work may predate a change made under the lock.
        .execution_options(populate_existing=True)
    )
    return transfer


async def find_repeat(
    session: AsyncSession, conversation_id: uuid.UUID, *, catalogue: Sequence[str]
) -> FoundRepeat | None:
    """Did the customer, in their first `REPEAT_WINDOW` messages since the chat last moved,
    restate what they had said before it? Reads only, without a lock: the caller stores what
    is found with `record_repeat()`, which checks under the lock that it still applies. Found
    once per transfer: nothing once its first repeat is stored."""
    transfer = await _moved_by(session, conversation_id)
    if transfer is None or transfer.repeat_seq is not None or transfer.moved_seq is None:
        return None
    # Counted in the store first: once the window has passed, nothing more is read.
    said_after = await session.scalar(
        select(func.count())
        .select_from(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation_id,
            ConversationEvent.seq > transfer.moved_seq,
            ConversationEvent.kind == kinds.MESSAGE,
            ConversationEvent.sender_type == SenderType.VISITOR,
        )
    )
    if not said_after or said_after > REPEAT_WINDOW:
        return None
    events = await _transcript(session, conversation_id, messages_only=True)
    found = repeats_after_transfer(events, transfer.moved_seq, catalogue=tuple(catalogue))
    if not found:
        return None
    return FoundRepeat(transfer.id, tuple(found))


async def record_repeat(
    session: AsyncSession, conversation: Conversation, found: FoundRepeat, *, now: datetime
) -> Outcome:
    """Store what `find_repeat()` found (`handoff.repeat`, and the transfer's `repeat_seq`), if
    the chat has not moved again and no repeat of that transfer was stored meanwhile. The
    caller holds the conversation's row lock, under which every transfer of it changes."""
    transfer = await _moved_by(session, conversation.id)
    if transfer is None or transfer.id != found.transfer_id or transfer.repeat_seq is not None:
        return Outcome()
    transfer.repeat_seq = found.repeats[0].seq
    event = append_event(
        session,
        conversation,
        kind=kinds.REPEAT,
        now=now,
        body={
            "transfer_id": str(transfer.id),
            "repeats": [
                {
                    "seq": r.seq,
                    "fact_kind": r.fact_kind,
                    "value": r.value,
                    "original_seqs": list(r.original_seqs),
                }
                for r in found.repeats
            ],
        },
        visibility=Visibility.AGENTS,
    )
    return Outcome(events=[event], conversation_id=conversation.id)


async def add_extra(
    session: AsyncSession,
    conversation_id: uuid.UUID,
    *,
    transfer_id: str | None,
    text: str,
    by: str,
    now: datetime,
) -> StoredEvent | None:
    """Store an external summarizer's prose beside a summary (`handoff.summary_extra`); nothing
    once the chat has closed."""
    conversation = await chat_repository.get_for_update(session, conversation_id)
    if conversation is None or conversation.state is ConversationState.CLOSED:
        return None
    return append_event(
        session,
        conversation,
        kind=kinds.SUMMARY_EXTRA,
        now=now,
        body={"transfer_id": transfer_id, "text": text, "summarizer": by},
        visibility=Visibility.AGENTS,
    )


async def for_extra(
    session: AsyncSession, conversation_id: uuid.UUID, *, now: datetime
) -> tuple[Summary, list[EventView]] | None:
    """The summary and transcript an external summarizer is given (None: no such chat)."""
    conversation = await chat_repository.get(session, conversation_id)
    if conversation is None:
        return None
    summary = await build(session, conversation, now=now, note=None)
    return summary, await _transcript(session, conversation_id)
