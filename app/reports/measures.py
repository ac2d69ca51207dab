"""One conversation's measures, computed from its event log: the figures reports add up.

Pure: no I/O, no clock, no randomness. `reports.service` reads a closed conversation's events,
calls `measure()` and stores the result as the conversation's `conversation_metrics` row in the
transaction of the close; `fcr()` decides first-contact resolution at report time, from the
stored row, the window and `now`. Every definition here is written out in
docs/metrics.md#per-conversation; change one only together with that text.

The event kinds are named here as strings (as `app.webhooks.events` does) rather than imported
from `app.chat.events`, which imports the store: a core must not.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

OPENED = "conversation.opened"
MESSAGE = "message"
QUEUED = "conversation.queued"
OFFLINE = "conversation.offline"
ASSIGNED = "conversation.assigned"
AGENT_LEFT = "agent.left"
CLOSED = "conversation.closed"
TRANSFER_REQUESTED = "transfer.requested"
TRANSFER_ACCEPTED = "transfer.accepted"
ESCALATED = "conversation.escalated"
RATED = "conversation.rated"
EFFORT_RATED = "conversation.effort_rated"
TAGGED = "conversation.tagged"
DISPOSITION = "conversation.disposition"

VISITOR = "visitor"
AGENT = "agent"
SYSTEM = "system"
SEEN_BY_ALL = "all"

# A CSAT score counts as satisfied from here up (the usual top-two-box of a 1-5 scale).
SATISFIED_FROM = 4
# An effort answer counts as easy from here up: agree (5), mostly or strongly agree (6, 7) that
# the company made it easy, the usual top-three-box of CES 2.0's 7-point scale.
EASY_FROM = 5


@dataclass(frozen=True, slots=True)
class Event:
    """What `measure()` needs of one stored event (`conversation_events` row)."""

    seq: int
    kind: str
    sender_type: str  # "visitor", "agent" or "system"
    sender_id: uuid.UUID | None
    visibility: str  # "all" or "agents"
    at: datetime
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Measures:
    """One closed conversation's figures (docs/metrics.md#per-conversation). Durations are whole
    milliseconds; None where the figure does not apply (see each field)."""

    opened_at: datetime
    closed_at: datetime
    # The skill it needed when it arrived (`conversation.opened`), the queue it counts against.
    skill_id: int | None
    first_agent_id: uuid.UUID | None
    last_agent_id: uuid.UUID | None
    closed_by: str  # "visitor", "agent" or "system"
    offline: bool  # arrived while nobody could take it (`conversation.offline`)
    handled: bool  # assigned to an agent at least once
    answered: bool  # an agent wrote to the visitor after their first message
    abandoned: bool  # queued, never assigned, and the visitor (or the system) closed it
    queue_wait_ms: int | None
    first_response_ms: int | None
    handle_ms: int | None
    transfers: int
    escalations: int
    # Closed by its one and only agent, answered, without transfer: resolved on first contact
    # unless the visitor comes back within the window (`fcr()`).
    fcr_candidate: bool
    # True: first response within the target; False: not; None: not counted (offline, or
    # closed before the target elapsed without an answer).
    sla_met: bool | None
    csat: int | None  # the latest rating, 1-5
    # Its `conversation.closed` asked the effort question (the setting was on at the close).
    effort_asked: bool
    effort: int | None  # the latest effort answer, 1-7
    tags: tuple[str, ...]
    disposition: str | None


def _ms(start: datetime, end: datetime) -> int:
    # Whole milliseconds, rounded down: timestamps carry microseconds, reports show ms.
    return (end - start) // timedelta(milliseconds=1)


def _is_integration(event: Event) -> bool:
    # Another system closing through the REST API signs the system close with its key.
    return event.sender_type == SYSTEM and "api_key" in event.body


def _agent_of(event: Event) -> uuid.UUID | None:
    agent = event.body.get("agent")
    if isinstance(agent, Mapping):
        raw = agent.get("id")
        if isinstance(raw, str):
            try:
                return uuid.UUID(raw)
            except ValueError:
                return None
    return None


def _skill_of(opened: Event | None) -> int | None:
    if opened is None:
        return None
    skill = opened.body.get("skill")
    if isinstance(skill, Mapping):
        value = skill.get("id")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def _score(log: Sequence[Event], kind: str) -> int | None:
    """The `score` of the latest event of `kind` (a rating or an effort answer), or None."""
    answers = [e for e in log if e.kind == kind]
    if not answers:
        return None
    score = answers[-1].body.get("score")
    return score if isinstance(score, int) and not isinstance(score, bool) else None


def _labels(log: Sequence[Event]) -> tuple[int | None, tuple[str, ...], str | None]:
    """The latest rating, tags and disposition, from the whole log: a rating comes after the
    close, and supervisors may relabel a closed conversation (`chat.labels.relabel`)."""
    csat = _score(log, RATED)
    tagged = [e for e in log if e.kind == TAGGED]
    tags: tuple[str, ...] = ()
    if tagged:
        raw_tags = tagged[-1].body.get("tags")
        if isinstance(raw_tags, list):
            tags = tuple(sorted({t for t in raw_tags if isinstance(t, str)}))
    dispositions = [e for e in log if e.kind == DISPOSITION]
    disposition = None
    if dispositions:
        value = dispositions[-1].body.get("disposition")
        disposition = value if isinstance(value, str) else None

    return csat, tags, disposition


def arrival_skill(events: Sequence[Event]) -> int | None:
    """The skill the conversation needed when it arrived (`conversation.opened`), or None."""
    return _skill_of(next((e for e in events if e.kind == OPENED), None))


def measure(events: Sequence[Event], *, sla_target_seconds: int) -> Measures:
    """The measures of a closed conversation.

    Args:
        events: its whole log, any order (sorted by `seq` here); it must hold its
            `conversation.closed`. Events after the close (a rating) count.
        sla_target_seconds: the first-response target of its skill (`Skill.sla_first_response_
            seconds`, or the default for chats without a skill).

    Returns:
        The measures, as docs/metrics.md#per-conversation defines them.

    Raises:
        ValueError: the log has no `conversation.closed`.
    """
    log = sorted(events, key=lambda e: e.seq)
    closed = next((e for e in log if e.kind == CLOSED), None)
    if closed is None:
        msg = "a conversation's measures need its conversation.closed"
        raise ValueError(msg)
    opened = next((e for e in log if e.kind == OPENED), None)
    opened_at = log[0].at if opened is None else opened.at
    # Only what happened up to the close shapes the service figures; a rating comes later.
    life = [e for e in log if e.seq <= closed.seq]

    offline = False
    queued_at: datetime | None = None
    for event in life:
        if event.kind == OFFLINE:
            offline = True
            break
        if event.kind == QUEUED:
            queued_at = event.at
            break
    assignments = [e for e in life if e.kind == ASSIGNED]
    agents = [_agent_of(e) for e in assignments]
    first_assigned = assignments[0].at if assignments else None
    handled = bool(assignments)

    asked = next((e.at for e in life if e.kind == MESSAGE and e.sender_type == VISITOR), None)
    reply = None
    if asked is not None:
        reply = next(
            (
                e.at
                for e in life
                if e.kind == MESSAGE
                and e.sender_type == AGENT
                and e.visibility == SEEN_BY_ALL
                and e.at >= asked
            ),
            None,
        )

    queue_wait_ms = None
    first_response_ms = None
    sla_met: bool | None = None
    if not offline:
        if queued_at is not None:
            queue_wait_ms = _ms(queued_at, first_assigned if first_assigned else closed.at)
        if asked is not None and reply is not None:
            first_response_ms = _ms(asked, reply)
            sla_met = first_response_ms <= sla_target_seconds * 1000
        elif asked is not None and _ms(asked, closed.at) > sla_target_seconds * 1000:
            sla_met = False  # the target passed without an answer
    # An agent wrote to the visitor: offline messages answered later included.
    answered = reply is not None
    abandoned = (
        not offline
        and not handled
        and queued_at is not None
        and (
            closed.sender_type == VISITOR
            or (closed.sender_type == SYSTEM and not _is_integration(closed))
        )
    )

    transfers = sum(
        1
        for e in life
        if e.kind == TRANSFER_ACCEPTED
        or (e.kind == TRANSFER_REQUESTED and e.body.get("kind") == "cold")
    )
    escalations = sum(1 for e in life if e.kind == ESCALATED)
    # Who held it at the close: the last assignment, unless an `agent.left` followed it.
    held_at_close = handled and not any(
        e.kind == AGENT_LEFT and e.seq > assignments[-1].seq for e in life
    )
    fcr_candidate = (
        answered
        and held_at_close
        and transfers == 0
        and len(set(agents)) == 1
        and agents[0] is not None
    )

    csat, tags, disposition = _labels(log)

    return Measures(
        opened_at=opened_at,
        closed_at=closed.at,
        skill_id=_skill_of(opened),
        first_agent_id=agents[0] if agents else None,
        last_agent_id=agents[-1] if agents else None,
        closed_by=closed.sender_type,
        offline=offline,
        handled=handled,
        answered=answered,
        abandoned=abandoned,
        queue_wait_ms=queue_wait_ms,
        first_response_ms=first_response_ms,
        handle_ms=None if first_assigned is None else _ms(first_assigned, closed.at),
        transfers=transfers,
        escalations=escalations,
        fcr_candidate=fcr_candidate,
        sla_met=sla_met,
        csat=csat,
        effort_asked=closed.body.get("effort_asked") is True,
        effort=_score(log, EFFORT_RATED),
        tags=tags,
        disposition=disposition,
    )


def fcr(
    *,
    candidate: bool,
    closed_at: datetime,
    next_contact_at: datetime | None,
    window: timedelta,
    now: datetime,
) -> bool | None:
    """Whether a conversation was resolved on first contact, as known at `now`.

    Args:
        candidate: `Measures.fcr_candidate`.
        closed_at: when it closed.
        next_contact_at: when its visitor opened their next conversation, or None.
        window: `WARMLINE_FCR_WINDOW`: a contact within it means the issue was not resolved.
        now: the moment of the report.

    Returns:
        False when not a candidate or the visitor came back within the window; True once the
        window has passed without that; None (pending) while it runs.
    """
    if not candidate:
        return False
    if next_contact_at is not None and next_contact_at - closed_at <= window:
        return False
    if now - closed_at >= window:
        return True
    return None


def percentile_cont(values: Sequence[float], fraction: float) -> float | None:
    """The `fraction` percentile of `values` by linear interpolation between the two nearest
    ranks, computed as PostgreSQL's `percentile_cont` does (so both backends agree to the bit):
    position `fraction * (n - 1)` in the sorted values, then `lo + (hi - lo) * (pos - floor)`.

    Returns None for no values.
    """
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    first = math.floor(position)
    second = math.ceil(position)
    low = float(ordered[first])
    if first == second:
        return low
    return low + (float(ordered[second]) - low) * (position - first)


def satisfied(score: int) -> bool:
    """A CSAT rating that counts as satisfied: 4 or 5 of 5."""
    return score >= SATISFIED_FROM


def easy(score: int) -> bool:
    """An effort answer that counts as easy: 5, 6 or 7 of 7."""
    return score >= EASY_FROM
