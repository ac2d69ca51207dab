"""The response shapes of the conversations API (docs/api.md#conversations-api), how a stored
conversation and event become them, and the examples OpenAPI shows. Used by
`app/api/v1/transcripts.py`; no queries, no access rules.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from app.chat.transcripts import ConversationInfo
from app.store.models import ConversationEvent, ConversationState

ATTACHMENT_URL = "/api/v1/attachments/{id}"


class PersonOut(BaseModel):
    id: uuid.UUID
    name: str | None


class VisitorOut(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None


class SkillOut(BaseModel):
    id: int
    slug: str
    name: str


class Csat(BaseModel):
    score: int = Field(description="1 (very unhappy) to 5 (very happy).")
    comment: str | None
    rated_at: datetime


class Effort(BaseModel):
    score: int = Field(
        description="Customer effort (CES 2.0): 1 (strongly disagree that the company made it "
        "easy to handle their issue) to 7 (strongly agree)."
    )
    answered_at: datetime


class ConversationOut(BaseModel):
    id: uuid.UUID
    state: ConversationState
    skill: SkillOut | None = Field(description="The skill it needs, or null.")
    visitor: VisitorOut
    agent: PersonOut | None = Field(
        description="Who holds it now; for a closed conversation, who held it last."
    )
    agents: list[PersonOut] = Field(
        description="Every agent who held it, in the order they first joined."
    )
    tags: list[str]
    disposition: str | None
    priority: int
    created_at: datetime
    assigned_at: datetime | None = Field(description="Its latest assignment.")
    closed_at: datetime | None
    closed_by: Literal["visitor", "agent", "system"] | None
    message_count: int = Field(description="Messages of the visitor and the agents.")
    csat: Csat | None = Field(description="The visitor's rating, once rated.")
    effort: Effort | None = Field(
        description="The visitor's effort answer, once given (asked only when the effort "
        "survey was on at the close)."
    )
    last_seq: int = Field(description="The seq of its newest event.")


class Timings(BaseModel):
    queue_wait_seconds: float | None = Field(
        description="From entering the queue (or the offline list) to the first assignment."
    )
    first_response_seconds: float | None = Field(
        description="From the visitor's first message to the first agent message."
    )


class ConversationDetail(ConversationOut):
    timings: Timings


class ConversationPage(BaseModel):
    data: list[ConversationOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    has_more: bool


class Sender(BaseModel):
    type: Literal["visitor", "agent", "system"]
    id: uuid.UUID | None
    name: str | None


class EventOut(BaseModel):
    seq: int
    kind: str = Field(description="An event kind of docs/protocol.md#event-kinds.")
    at: datetime
    sender: Sender
    visibility: Literal["all", "agents"]
    body: dict[str, Any] = Field(
        description="As stored; a message's `attachments` also carry `download_url`."
    )


class TranscriptOut(BaseModel):
    conversation_id: uuid.UUID
    internal: bool = Field(description="Whether agents-only events are included.")
    events: list[EventOut]


class ExportLine(ConversationOut):
    internal: bool
    events: list[EventOut]


# --- mapping -----------------------------------------------------------------------------------


def conversation_fields(info: ConversationInfo) -> dict[str, Any]:
    c = info.conversation
    visitor = info.visitor
    return {
        "id": c.id,
        "state": c.state,
        "skill": None
        if info.skill is None
        else SkillOut(id=info.skill.id, slug=info.skill.slug, name=info.skill.name),
        "visitor": VisitorOut(
            id=c.visitor_id,
            name=None if visitor is None else visitor.name,
            email=None if visitor is None else visitor.email,
        ),
        "agent": None if info.agent is None else PersonOut(id=info.agent.id, name=info.agent.name),
        "agents": [PersonOut(id=p.id, name=p.name) for p in info.held_by],
        "tags": list(c.tags or []),
        "disposition": c.disposition,
        "priority": c.priority,
        "created_at": c.created_at,
        "assigned_at": c.assigned_at,
        "closed_at": c.closed_at,
        "closed_by": None if c.closed_by is None else c.closed_by.value,
        "message_count": info.message_count,
        "csat": None
        if c.rating is None or c.rated_at is None
        else Csat(score=c.rating, comment=c.rating_comment, rated_at=c.rated_at),
        "effort": None
        if c.effort is None or c.effort_at is None
        else Effort(score=c.effort, answered_at=c.effort_at),
        "last_seq": c.last_seq,
    }


def event_out(row: ConversationEvent) -> EventOut:
    body = dict(row.body or {})
    files = body.get("attachments")
    if isinstance(files, list):
        body["attachments"] = [
            {**f, "download_url": ATTACHMENT_URL.format(id=f.get("id"))}
            if isinstance(f, dict)
            else f
            for f in files
        ]
    return EventOut(
        seq=row.seq,
        kind=row.kind,
        at=row.created_at,
        sender=Sender(type=row.sender_type.value, id=row.sender_id, name=row.sender_name),
        visibility=row.visibility.value,
        body=body,
    )


ITEM_EXAMPLE: dict[str, Any] = {
    "id": "0b6f3c0e-4a4e-4b8e-9f7e-6c3f1d2a9b10",
    "state": "closed",
    "skill": {"id": 2, "slug": "billing", "name": "Billing"},
    "visitor": {
        "id": "4f9f793e-afb8-4344-9b43-33522a3c6d3c",
        "name": "Ada",
        "email": "ada@example.com",
    },
    "agent": {"id": "320eb479-b64a-4c23-8947-b57159ae00af", "name": "Ann"},
    "agents": [{"id": "320eb479-b64a-4c23-8947-b57159ae00af", "name": "Ann"}],
    "tags": ["refund"],
    "disposition": "resolved",
    "priority": 0,
    "created_at": "2026-12-03T16:02:11.120000Z",
    "assigned_at": "2026-12-03T16:02:11.240000Z",
    "closed_at": "2026-12-03T16:09:40.002000Z",
    "closed_by": "agent",
    "message_count": 6,
    "csat": {"score": 4, "comment": "Quick, thanks", "rated_at": "2026-12-03T16:10:02.000000Z"},
    "effort": {"score": 6, "answered_at": "2026-12-03T16:10:02.000000Z"},
    "last_seq": 12,
}
EVENT_EXAMPLE: dict[str, Any] = {
    "seq": 2,
    "kind": "message",
    "at": "2026-12-03T16:02:11.120000Z",
    "sender": {"type": "visitor", "id": "4f9f793e-afb8-4344-9b43-33522a3c6d3c", "name": "Ada"},
    "visibility": "all",
    "body": {"text": "Where is my parcel?"},
}
