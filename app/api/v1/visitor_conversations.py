"""What a visitor does with their own conversation over REST, with their visitor token: read or
download its transcript, and rate it once it has closed: the CSAT rating and, when the close
asked it, the customer effort answer (docs/api.md#visitor-conversations).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.body import RequestBody
from app.api.deps import CurrentVisitor, NowDep, SessionDep
from app.api.errors import responses
from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat.errors import ConversationNotFound
from app.chat.events import iso
from app.chat.log import append_event
from app.errors import Conflict
from app.reports import service as reports_service
from app.store.models import (
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Visibility,
    Visitor,
)

router = APIRouter(prefix="/visitor/conversations", tags=["visitors"])

# How long after the close a visitor may still rate (or change their rating).
RATING_WINDOW = timedelta(days=7)
# What a transcript shows: the words and the people, not the machinery.
TRANSCRIPT_KINDS = (
    kinds.MESSAGE,
    kinds.AGENT_JOINED,
    kinds.AGENT_LEFT,
    kinds.CLOSED,
    kinds.RATED,
)


class NotClosed(Conflict):
    code = "not_closed"


class RatingClosed(Conflict):
    code = "rating_closed"


class EffortNotAsked(Conflict):
    code = "effort_not_asked"


class AttachmentRef(BaseModel):
    id: uuid.UUID
    name: str
    content_type: str
    size: int
    image: bool


class TranscriptLine(BaseModel):
    seq: int
    at: datetime
    kind: str = Field(
        description="`message`, `agent.joined`, `agent.left`, "
        "`conversation.closed` or `conversation.rated`."
    )
    sender: Literal["visitor", "agent", "system"]
    name: str | None = Field(description="Who wrote it or who joined/left, when known.")
    text: str = Field(description="The message, or a sentence saying what happened.")
    attachments: list[AttachmentRef] = Field(
        default_factory=list,
        description="Files the message carries (download: GET /api/v1/visitor/attachments/{id}).",
    )


class Transcript(BaseModel):
    conversation_id: uuid.UUID
    state: str
    created_at: datetime
    closed_at: datetime | None
    lines: list[TranscriptLine]


class RatingIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"score": 5, "comment": "Quick and friendly, thanks!"}]}
    )

    score: int = Field(
        ge=1, le=5, strict=True, description="1 (very unhappy) to 5 (very happy), a number."
    )
    comment: Annotated[str | None, Field(max_length=1000)] = None


class RatingOut(BaseModel):
    conversation_id: uuid.UUID
    score: int
    comment: str | None
    rated_at: datetime


class EffortIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [{"score": 6}]})

    score: int = Field(
        ge=1,
        le=7,
        strict=True,
        description="How much the visitor agrees that the company made it easy to handle their "
        "issue: 1 (strongly disagree) to 7 (strongly agree), a number.",
    )


class EffortOut(BaseModel):
    conversation_id: uuid.UUID
    score: int
    answered_at: datetime


async def _own(
    session: AsyncSession, visitor: Visitor, conversation_id: uuid.UUID, *, lock: bool = False
) -> Conversation:
    conversation = (
        await chat_repository.get_for_update(session, conversation_id)
        if lock
        else await chat_repository.get(session, conversation_id)
    )
    if conversation is None or conversation.visitor_id != visitor.id:
        # The same answer for another visitor's conversation: ids are not probeable.
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    return conversation


def _line(row: ConversationEvent) -> TranscriptLine:
    body = row.body or {}
    agent = body.get("agent") if isinstance(body.get("agent"), dict) else {}
    name = row.sender_name or (agent.get("name") if agent else None)
    sender: Literal["visitor", "agent", "system"] = row.sender_type.value
    files: list[AttachmentRef] = []
    if row.kind == kinds.MESSAGE:
        text = str(body.get("text", ""))
        files = [AttachmentRef.model_validate(f) for f in body.get("attachments") or []]
    elif row.kind == kinds.AGENT_JOINED:
        text = f"{name or 'An agent'} joined the chat."
    elif row.kind == kinds.AGENT_LEFT:
        text = f"{name or 'The agent'} left the chat."
    elif row.kind == kinds.CLOSED:
        text = "The chat was closed."
    else:
        text = f"Rated {body.get('score')} out of 5."
    return TranscriptLine(
        seq=row.seq,
        at=row.created_at,
        kind=row.kind,
        sender=sender,
        name=name,
        text=text,
        attachments=files,
    )


def _size(size: int) -> str:
    if size < 1024:  # noqa: PLR2004 - bytes below one kilobyte
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _plain(conversation: Conversation, lines: list[TranscriptLine]) -> str:
    out = [f"Conversation {conversation.id}", f"Started {iso(conversation.created_at)}", ""]
    for line in lines:
        stamp = line.at.strftime("%Y-%m-%d %H:%M UTC")
        who = (line.name or "You") if line.kind == kinds.MESSAGE else "*"
        if line.kind == kinds.MESSAGE and line.sender == "visitor":
            who = "You"
        said = [line.text] if line.text else []
        said += [f"[file: {f.name}, {_size(f.size)}]" for f in line.attachments]
        out.append(f"[{stamp}] {who}: {' '.join(said)}")
    return "\n".join(out) + "\n"


@router.get(
    "/{conversation_id}/transcript",
    summary="The visitor's transcript of their conversation",
    description="Every message and who joined and left, in order; never agents-only notes. "
    "`format=text` answers a plain-text download (`Content-Disposition: attachment`). "
    "Visitor token (`Authorization: Bearer <visitor token>`).",
    response_model=Transcript,
    responses={
        200: {"content": {"text/plain": {}}, "description": "JSON, or text with format=text"},
        **responses(401, 404, 422, 503),
    },
)
async def transcript(
    conversation_id: uuid.UUID,
    visitor: CurrentVisitor,
    session: SessionDep,
    format: Annotated[Literal["json", "text"], Query()] = "json",
) -> Response | Transcript:
    conversation = await _own(session, visitor, conversation_id)
    rows = await session.scalars(
        select(ConversationEvent)
        .where(
            ConversationEvent.conversation_id == conversation.id,
            ConversationEvent.visibility == Visibility.ALL,
            ConversationEvent.kind.in_(TRANSCRIPT_KINDS),
        )
        .order_by(ConversationEvent.seq)
    )
    lines = [_line(row) for row in rows]
    if format == "text":
        day = conversation.created_at.strftime("%Y-%m-%d")
        return PlainTextResponse(
            _plain(conversation, lines),
            headers={
                "Content-Disposition": f'attachment; filename="chat-{day}.txt"',
                "X-Content-Type-Options": "nosniff",
            },
        )
    return Transcript(
        conversation_id=conversation.id,
        state=conversation.state.value,
        created_at=conversation.created_at,
        closed_at=conversation.closed_at,
        lines=lines,
    )


@router.put(
    "/{conversation_id}/rating",
    summary="Rate a closed conversation",
    description="The visitor's satisfaction (CSAT) from 1 to 5, with an optional comment, once "
    "the conversation has closed and for 7 days after; sending another replaces it, sending the "
    "same again changes nothing (a retry is safe). Stored on the conversation and as a "
    "`conversation.rated` event in its log.",
    responses=responses(401, 404, 409, 422, 503),
)
async def rate(
    conversation_id: uuid.UUID,
    body: RatingIn,
    visitor: CurrentVisitor,
    session: SessionDep,
    now: NowDep,
) -> RatingOut:
    conversation = await _own(session, visitor, conversation_id, lock=True)
    if conversation.state is not ConversationState.CLOSED or conversation.closed_at is None:
        raise NotClosed(
            "A conversation is rated once it has closed.",
            conversation_id=str(conversation_id),
            state=conversation.state.value,
        )
    if now - conversation.closed_at > RATING_WINDOW:
        raise RatingClosed(
            "This conversation closed more than 7 days ago; it can no longer be rated.",
            conversation_id=str(conversation_id),
        )
    comment = (body.comment or "").strip() or None
    if (
        conversation.rated_at is not None
        and conversation.rating == body.score
        and conversation.rating_comment == comment
    ):
        # The same answer again (a retry whose first answer was lost): nothing new to store,
        # no second event or webhook.
        return RatingOut(
            conversation_id=conversation.id,
            score=body.score,
            comment=comment,
            rated_at=conversation.rated_at,
        )
    conversation.rating = body.score
    conversation.rating_comment = comment
    conversation.rated_at = now
    append_event(
        session,
        conversation,
        kind=kinds.RATED,
        now=now,
        body={"score": body.score, "comment": comment},
        sender_type=SenderType.VISITOR,
        sender_id=visitor.id,
        sender_name=visitor.name,
    )
    # CSAT in the conversation's figures for reports (docs/metrics.md#per-conversation).
    await reports_service.record(session, conversation)
    return RatingOut(
        conversation_id=conversation.id, score=body.score, comment=comment, rated_at=now
    )


@router.put(
    "/{conversation_id}/effort",
    summary="Answer the customer effort question of a closed conversation",
    description="The visitor's customer effort score (CES 2.0): how much they agree that the "
    "company made it easy to handle their issue, from 1 (strongly disagree) to 7 (strongly "
    "agree). Only for a conversation whose close asked it (`effort_asked` in its "
    "`conversation.closed`, when the effort survey was on), for 7 days after the close, with "
    "or without a CSAT rating; sending another replaces it, the same again changes nothing. "
    "Stored on the conversation and as a `conversation.effort_rated` event in its log. 409 "
    "`effort_not_asked` when the question was not asked.",
    responses=responses(401, 404, 409, 422, 503),
)
async def answer_effort(
    conversation_id: uuid.UUID,
    body: EffortIn,
    visitor: CurrentVisitor,
    session: SessionDep,
    now: NowDep,
) -> EffortOut:
    conversation = await _own(session, visitor, conversation_id, lock=True)
    if conversation.state is not ConversationState.CLOSED or conversation.closed_at is None:
        raise NotClosed(
            "The effort question is answered once the conversation has closed.",
            conversation_id=str(conversation_id),
            state=conversation.state.value,
        )
    closing = await session.scalar(
        select(ConversationEvent.body).where(
            ConversationEvent.conversation_id == conversation.id,
            ConversationEvent.kind == kinds.CLOSED,
        )
    )
    if not (isinstance(closing, dict) and closing.get("effort_asked") is True):
        raise EffortNotAsked(
            "The effort question was not asked after this conversation.",
            conversation_id=str(conversation_id),
        )
    if now - conversation.closed_at > RATING_WINDOW:
        raise RatingClosed(
            "This conversation closed more than 7 days ago; it can no longer be rated.",
            conversation_id=str(conversation_id),
        )
    if conversation.effort_at is not None and conversation.effort == body.score:
        # The same answer again (a retry): nothing new to store, no second event or webhook.
        return EffortOut(
            conversation_id=conversation.id, score=body.score, answered_at=conversation.effort_at
        )
    conversation.effort = body.score
    conversation.effort_at = now
    append_event(
        session,
        conversation,
        kind=kinds.EFFORT_RATED,
        now=now,
        body={"score": body.score},
        sender_type=SenderType.VISITOR,
        sender_id=visitor.id,
        sender_name=visitor.name,
    )
    # CES in the conversation's figures for reports (docs/metrics.md#per-conversation).
    await reports_service.record(session, conversation)
    return EffortOut(conversation_id=conversation.id, score=body.score, answered_at=now)
