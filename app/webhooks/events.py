"""Which stored conversation events become which webhook events, and their payloads.

Pure: no I/O, no clock. Takes the plain fields of one stored event (as `chat.events.StoredEvent`
holds them) and returns the webhook event it is, or None. Never exposes what only agents see:
internal notes, whispers, the transfer channel, routing reasons, summaries, transfer notes and
escalation reasons are either not mapped or left out of `data` (docs/api.md#webhooks).

The kinds below are the protocol's stable names (docs/protocol.md#event-kinds), repeated here so
that this module imports nothing with I/O; tests/unit/webhooks checks they match
`app.chat.events`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Stored kinds (app/chat/events.py).
OPENED = "conversation.opened"
MESSAGE = "message"
QUEUED = "conversation.queued"
ASSIGNED = "conversation.assigned"
AGENT_LEFT = "agent.left"
CLOSED = "conversation.closed"
OFFLINE = "conversation.offline"
TRANSFER_REQUESTED = "transfer.requested"
TRANSFER_ACCEPTED = "transfer.accepted"
ESCALATED = "conversation.escalated"
RATED = "conversation.rated"
SLA_BREACHED = "sla.breached"
EFFORT_RATED = "conversation.effort_rated"

# Webhook event types, the list an endpoint subscribes from.
CONVERSATION_CREATED = "conversation.created"
CONVERSATION_QUEUED = "conversation.queued"
CONVERSATION_ASSIGNED = "conversation.assigned"
CONVERSATION_TRANSFERRED = "conversation.transferred"
CONVERSATION_ESCALATED = "conversation.escalated"
CONVERSATION_CLOSED = "conversation.closed"
MESSAGE_CREATED = "message.created"
CSAT_SUBMITTED = "csat.submitted"
# The customer effort answer has its own type: it comes with or without a CSAT rating, and a
# receiver of csat.submitted keeps getting exactly the rating it always got.
EFFORT_SUBMITTED = "effort.submitted"
OFFLINE_MESSAGE_CREATED = "offline_message.created"
CONVERSATION_SLA_BREACHED = "conversation.sla_breached"
EVENT_TYPES: tuple[str, ...] = (
    CONVERSATION_CREATED,
    CONVERSATION_QUEUED,
    CONVERSATION_ASSIGNED,
    CONVERSATION_TRANSFERRED,
    CONVERSATION_ESCALATED,
    CONVERSATION_CLOSED,
    MESSAGE_CREATED,
    CSAT_SUBMITTED,
    EFFORT_SUBMITTED,
    OFFLINE_MESSAGE_CREATED,
    CONVERSATION_SLA_BREACHED,
)
# Sent only by `POST /webhooks/{id}/test`, whatever the endpoint subscribes to.
TEST = "webhook.test"

# `agent.left` reasons that are a supervisor moving the chat (handoff/oversight.py); the others
# (re-queued, transferred) are told by `conversation.queued` or `transfer.accepted`.
_MOVED_BY_SUPERVISOR = {"reassigned": "reassign", "taken_over": "take_over"}

# Event ids are derived, not drawn: the same stored event is the same webhook event on every
# node, in every retry and after any crash, so receivers can deduplicate on it.
_EVENT_ID_NAMESPACE = uuid.UUID("6f1d5c3e-5b7a-4c39-9a51-0c2e8f4b7d21")


def event_id(conversation_id: uuid.UUID, seq: int) -> str:
    """The stable id of the webhook event made from event `seq` of a conversation."""
    return "evt_" + uuid.uuid5(_EVENT_ID_NAMESPACE, f"{conversation_id}:{seq}").hex


def iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredFacts:
    """What the mapping reads of a stored event (the fields of `chat.events.StoredEvent`)."""

    conversation_id: uuid.UUID
    seq: int
    kind: str
    sender_type: str
    sender_id: uuid.UUID | None
    sender_name: str | None
    visibility: str
    body: Mapping[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    id: str
    type: str
    created_at: datetime
    conversation_id: uuid.UUID | None
    seq: int | None
    data: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """The JSON body sent to endpoints (docs/api.md#payload)."""
        return {
            "id": self.id,
            "type": self.type,
            "created_at": iso(self.created_at),
            "conversation_id": None if self.conversation_id is None else str(self.conversation_id),
            "seq": self.seq,
            "data": self.data,
        }


def _ref(value: Any) -> dict[str, Any] | None:
    """An `{id, name}` pair out of a body's agent reference, nothing more."""
    if not isinstance(value, Mapping):
        return None
    return {"id": value.get("id"), "name": value.get("name")}


def _sender(e: StoredFacts) -> dict[str, Any]:
    return {
        "type": e.sender_type,
        "id": None if e.sender_id is None else str(e.sender_id),
        "name": e.sender_name,
    }


def _created(e: StoredFacts) -> dict[str, Any] | None:
    b = e.body
    visitor = b.get("visitor") or {}
    skill = b.get("skill") or {}
    return {
        "visitor": {
            "id": visitor.get("id"),
            "name": visitor.get("name"),
            "verified": bool(visitor.get("verified")),
        },
        "priority": b.get("priority", 0),
        "page_url": b.get("page_url"),
        "skill_id": skill.get("id"),
    }


def _queued(e: StoredFacts) -> dict[str, Any] | None:
    return {"reason": e.body.get("reason")}


def _assigned(e: StoredFacts) -> dict[str, Any] | None:
    b = e.body
    if "transfer_id" in b:
        via = "transfer"
    elif "by" in b:
        via = "reassign"
    elif "offer_id" in b:
        via = "offer"
    else:
        via = "routing"
    return {
        "agent": _ref(b.get("agent")),
        "via": via,
        "transfer_id": b.get("transfer_id"),
        "by": _ref(b.get("by")),
    }


def _transfer_accepted(e: StoredFacts) -> dict[str, Any] | None:
    return {
        "kind": "warm",
        "transfer_id": e.body.get("transfer_id"),
        "from_agent": None,
        "to_agent": _ref(e.body.get("agent")),
        "to_skill_id": None,
    }


def _transfer_requested(e: StoredFacts) -> dict[str, Any] | None:
    # Only a cold transfer moves the chat when asked for (back to a queue); a warm one or an
    # escalation moves it when accepted. The note stays with the agents.
    b = e.body
    if b.get("kind") != "cold":
        return None
    to = b.get("to") or {}
    skill = to.get("skill") or {}
    return {
        "kind": "cold",
        "transfer_id": b.get("transfer_id"),
        "from_agent": _ref(b.get("from_agent")),
        "to_agent": None,
        "to_skill_id": skill.get("id"),
    }


def _agent_left(e: StoredFacts) -> dict[str, Any] | None:
    kind = _MOVED_BY_SUPERVISOR.get(str(e.body.get("reason")))
    if kind is None:
        return None
    return {
        "kind": kind,
        "transfer_id": None,
        "from_agent": _ref(e.body.get("agent")),
        "to_agent": None,
        "to_skill_id": None,
    }


def _escalated(e: StoredFacts) -> dict[str, Any] | None:
    # The reason and the phrase are agents' reading of the chat: not sent.
    b = e.body
    return {"by": b.get("by"), "rule": b.get("rule"), "agent": _ref(b.get("agent"))}


def _closed(e: StoredFacts) -> dict[str, Any] | None:
    # `api_key`: the integration that closed it through the REST API, null otherwise, so that a
    # system can tell its own closes from the others'.
    return {"by": e.body.get("by"), "api_key": _ref(e.body.get("api_key"))}


def _message(e: StoredFacts) -> dict[str, Any] | None:
    # Only what the customer and the agents say to each other; system lines are not messages.
    if e.visibility != "all" or e.sender_type not in ("visitor", "agent"):
        return None
    attachments = [
        {k: a.get(k) for k in ("id", "filename", "content_type", "size")}
        for a in e.body.get("attachments") or []
        if isinstance(a, Mapping)
    ]
    return {"sender": _sender(e), "text": e.body.get("text", ""), "attachments": attachments}


def _rated(e: StoredFacts) -> dict[str, Any] | None:
    return {"score": e.body.get("score"), "comment": e.body.get("comment")}


def _effort_rated(e: StoredFacts) -> dict[str, Any] | None:
    return {"score": e.body.get("score")}


def _offline(e: StoredFacts) -> dict[str, Any] | None:
    return {"reason": e.body.get("reason"), "opens_at": e.body.get("opens_at")}


def _sla_breached(e: StoredFacts) -> dict[str, Any] | None:
    # The figures only: which target, how long the customer waited, for which skill.
    b = e.body
    skill = b.get("skill")
    return {
        "target_seconds": b.get("target_seconds"),
        "waited_seconds": b.get("waited_seconds"),
        "answered": bool(b.get("answered")),
        "skill": (
            {"id": skill.get("id"), "slug": skill.get("slug")}
            if isinstance(skill, Mapping)
            else None
        ),
    }


_MAPPING: dict[str, tuple[str, Callable[[StoredFacts], dict[str, Any] | None]]] = {
    OPENED: (CONVERSATION_CREATED, _created),
    QUEUED: (CONVERSATION_QUEUED, _queued),
    ASSIGNED: (CONVERSATION_ASSIGNED, _assigned),
    TRANSFER_ACCEPTED: (CONVERSATION_TRANSFERRED, _transfer_accepted),
    TRANSFER_REQUESTED: (CONVERSATION_TRANSFERRED, _transfer_requested),
    AGENT_LEFT: (CONVERSATION_TRANSFERRED, _agent_left),
    ESCALATED: (CONVERSATION_ESCALATED, _escalated),
    CLOSED: (CONVERSATION_CLOSED, _closed),
    MESSAGE: (MESSAGE_CREATED, _message),
    RATED: (CSAT_SUBMITTED, _rated),
    EFFORT_RATED: (EFFORT_SUBMITTED, _effort_rated),
    OFFLINE: (OFFLINE_MESSAGE_CREATED, _offline),
    SLA_BREACHED: (CONVERSATION_SLA_BREACHED, _sla_breached),
}
# Stored kinds that may become a webhook: the outbox's first, cheapest test.
MAPPED_KINDS = frozenset(_MAPPING)


def webhook_event(stored: StoredFacts) -> WebhookEvent | None:
    """The webhook event a stored event is, or None when it is none (or agents-only)."""
    entry = _MAPPING.get(stored.kind)
    if entry is None:
        return None
    type_, shape = entry
    data = shape(stored)
    if data is None:
        return None
    return WebhookEvent(
        id=event_id(stored.conversation_id, stored.seq),
        type=type_,
        created_at=stored.created_at,
        conversation_id=stored.conversation_id,
        seq=stored.seq,
        data=data,
    )


def redact_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A stored payload once the words of its conversation are gone (an erasure of its visitor,
    or the retention policy: docs/api.md#privacy), by the rules `privacy.redaction` applies to
    events: the type, ids, `seq` and every field's place stay, what people wrote and who the
    visitor is go, and `data.redacted` is true. `message.created`: `text` empty, no
    `attachments` (their files are deleted), a visitor sender's `name` null;
    `conversation.created`: the visitor's `name` and the `page_url` null; `csat.submitted`: the
    `comment` null. Other types carry no words (agents-only text never enters a payload) and
    are returned as they are. Redacting twice gives the same payload.
    """
    out = dict(payload)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return out
    kind = payload.get("type")
    redacted = dict(data)
    if kind == MESSAGE_CREATED:
        redacted["text"] = ""
        redacted["attachments"] = []
        sender = data.get("sender")
        if isinstance(sender, Mapping) and sender.get("type") == "visitor":
            redacted["sender"] = {**sender, "name": None}
    elif kind == CONVERSATION_CREATED:
        visitor = data.get("visitor")
        if isinstance(visitor, Mapping):
            redacted["visitor"] = {**visitor, "name": None}
        redacted["page_url"] = None
    elif kind == CSAT_SUBMITTED:
        redacted["comment"] = None
    else:
        return out
    redacted["redacted"] = True
    out["data"] = redacted
    return out


def ping_event(*, event_id: str, now: datetime, endpoint_id: uuid.UUID) -> WebhookEvent:
    """The `webhook.test` ping of `POST /webhooks/{id}/test` (the caller draws the id)."""
    return WebhookEvent(
        id=event_id,
        type=TEST,
        created_at=now,
        conversation_id=None,
        seq=None,
        data={"endpoint_id": str(endpoint_id), "message": "A test event from Warmline."},
    )
