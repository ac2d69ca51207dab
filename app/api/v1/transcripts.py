"""`/api/v1/conversations…` for other systems: the filtered list in cursor pages, one
conversation's metadata, its transcript (JSON or text), its CSAT rating, and the streamed NDJSON
export of closed conversations (docs/api.md#conversations-api).

Access comes from `app/api/access.py`: `conversations:read` for metadata, `transcripts:read` for
transcripts and the export; agents-only events (notes, whispers, the transfer channel, routing)
only with `transcripts:internal`. An agent's session (role `agent`) reads one conversation when
`chat.service.may_read` says so, and lists and exports only the conversations they hold or held.
A conversation the caller may not read answers 404, as one that does not exist.

The cursor is opaque to clients: base64url of `{"s": sort, "k": sort key, "i": id}`; the
queries are in `chat/transcripts.py`.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from pydantic import AfterValidator
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.access import Principal, Requires
from app.api.deps import SessionDep, get_db, unit
from app.api.errors import responses
from app.api.v1.admin_agents import MAX_ROW_ID
from app.api.v1.transcript_schemas import (
    EVENT_EXAMPLE,
    ITEM_EXAMPLE,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    Csat,
    ExportLine,
    Timings,
    TranscriptOut,
    conversation_fields,
    event_out,
)
from app.api.v1.transcript_text import plain_transcript
from app.chat import service as chat_service
from app.chat import transcripts
from app.chat.errors import ConversationNotFound
from app.chat.labels import MAX_TAG_CHARS, MAX_TAGS
from app.chat.outcome import Actor
from app.chat.search import MAX_QUERY_CHARS
from app.chat.transcripts import CsatNotFound, Filters, Keyset
from app.store.db import Database
from app.store.models import Conversation, ConversationState, SenderType

router = APIRouter(prefix="/conversations", tags=["conversations API"])

# Conversations per read of the export: each batch is one short read (metadata and events),
# so no database session is held while the client reads the stream.
EXPORT_BATCH = 100

ReadAccess = Annotated[Principal, Depends(Requires("conversations:read"))]
TranscriptAccess = Annotated[Principal, Depends(Requires("transcripts:read"))]


def _utc(value: datetime) -> datetime:
    """A time without an offset is read as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Instant = Annotated[datetime, AfterValidator(_utc)]


def _invalid(field: str, problem: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("query", field), "msg": problem, "type": "value_error", "input": None}]
    )


# --- cursor ----------------------------------------------------------------------------------


def encode_cursor(at: Keyset) -> str:
    raw = orjson.dumps(
        {"s": at.sort, "k": None if at.key is None else at.key.isoformat(), "i": str(at.id)}
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> Keyset:
    """The keyset a cursor names; a 422 naming `cursor` if it is not one of ours or was made
    for another sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = orjson.loads(raw)
        key = None if data["k"] is None else _utc(datetime.fromisoformat(data["k"]))
        at = Keyset(sort=str(data["s"]), key=key, id=uuid.UUID(str(data["i"])))
    except (binascii.Error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise _invalid(
            "cursor", "Not a cursor from this API: pass `next_cursor` as it is."
        ) from exc
    if at.sort not in transcripts.SORTS or (at.key is None and at.sort.endswith("created_at")):
        raise _invalid("cursor", "Not a cursor from this API: pass `next_cursor` as it is.")
    if at.sort != sort:
        raise _invalid("cursor", f"This cursor continues a list sorted by `{at.sort}`.")
    return at


async def _readable(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID
) -> Conversation:
    """The conversation if the caller may read it; 404 `conversation_not_found` otherwise."""
    conversation = await chat_service.get(session, conversation_id)
    if conversation is not None and not principal.sees_all:
        agent = principal.agent
        assert agent is not None  # noqa: S101 - only an agent's session does not see all
        actor = Actor(SenderType.AGENT, agent.id, agent.name)
        if not await chat_service.may_read(session, actor=actor, conversation=conversation):
            conversation = None
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    return conversation


def _held_by(principal: Principal) -> uuid.UUID | None:
    return None if principal.sees_all else principal.agent_id


# --- routes ------------------------------------------------------------------------------------


@router.get(
    "",
    summary="List conversations",
    description="Conversations matching every filter given, newest first by default, in pages "
    "of `limit`. Follow `next_cursor` (pass it as `cursor` with the same filters and sort) "
    "until `has_more` is false: pages are keyset pages, so conversations created meanwhile "
    "neither repeat nor hide others. `q` searches what the visitor and the agents said to each "
    "other (callers with `transcripts:internal` also match internal notes, whispers and the "
    "transfer channel). An agent's session (role `agent`) lists only the conversations the "
    "agent holds or held.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "data": [ITEM_EXAMPLE],
                        "next_cursor": "eyJzIjoiLWNyZWF0ZWRfYXQiLCJr...",
                        "has_more": True,
                    }
                }
            }
        },
        **responses(401, 403, 422, 503),
    },
)
async def list_conversations(  # noqa: PLR0917 - FastAPI passes the query parameters by name
    principal: ReadAccess,
    session: SessionDep,
    status: Annotated[
        list[ConversationState] | None, Query(description="Repeat for any of several states.")
    ] = None,
    agent_id: Annotated[
        uuid.UUID | None, Query(description="Conversations this agent holds or ever held.")
    ] = None,
    skill_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="Conversations needing this skill.")
    ] = None,
    tag: Annotated[
        list[str] | None,
        Query(max_length=MAX_TAG_CHARS, description="Repeat to require every tag given."),
    ] = None,
    visitor_id: Annotated[uuid.UUID | None, Query()] = None,
    created_after: Annotated[Instant | None, Query(description="Inclusive.")] = None,
    created_before: Annotated[Instant | None, Query(description="Exclusive.")] = None,
    closed_after: Annotated[Instant | None, Query(description="Inclusive.")] = None,
    closed_before: Annotated[Instant | None, Query(description="Exclusive.")] = None,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_CHARS, description="Words said in the conversation."),
    ] = None,
    sort: Annotated[
        Literal["created_at", "-created_at", "closed_at", "-closed_at"], Query()
    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> ConversationPage:
    tags = tuple(" ".join(t.split()).lower() for t in tag or [])
    if any(not t for t in tags) or len(tags) > MAX_TAGS:
        raise _invalid("tag", f"Give 1 to {MAX_TAGS} tags, none blank.")
    if q is not None and not q.strip():
        raise _invalid("q", "Give at least one word to search for.")
    after = None if cursor is None else decode_cursor(cursor, sort)
    filters = Filters(
        states=tuple(status or ()),
        agent_id=agent_id,
        skill_id=skill_id,
        tags=tags,
        visitor_id=visitor_id,
        created_after=created_after,
        created_before=created_before,
        closed_after=closed_after,
        closed_before=closed_before,
        q=None if q is None else q.strip(),
    )
    infos, has_more = await transcripts.page(
        session,
        filters=filters,
        sort=sort,
        after=after,
        limit=limit,
        held_by=_held_by(principal),
        internal=principal.allows("transcripts:internal"),
    )
    next_cursor = (
        encode_cursor(transcripts.keyset_of(infos[-1].conversation, sort))
        if has_more and infos
        else None
    )
    return ConversationPage(
        data=[ConversationOut(**conversation_fields(i)) for i in infos],
        next_cursor=next_cursor,
        has_more=has_more,
    )


@router.get(
    "/export",
    summary="Export closed conversations with their transcripts (NDJSON)",
    description="Every conversation closed at or after `since` (and before `until`, when "
    "given), ordered by close time then id, one JSON object a line: the conversation's "
    "metadata as in the list, with `events`, its transcript. Streamed as it is read from the "
    "database, in batches; a stream that breaks can be resumed with `since` = the `closed_at` "
    "of the last complete line (skip the ids already received). Agents-only events only with "
    "`transcripts:internal`; an agent's session exports only the agent's own conversations.",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {
                "application/x-ndjson": {
                    "example": orjson.dumps(
                        {**ITEM_EXAMPLE, "internal": False, "events": [EVENT_EXAMPLE]}
                    ).decode()
                    + "\n"
                }
            },
            "description": "One conversation a line.",
        },
        **responses(401, 403, 422, 503),
    },
)
async def export(
    principal: TranscriptAccess,
    db: Annotated[Database, Depends(get_db)],
    since: Annotated[Instant, Query(description="Closed at or after (inclusive).")],
    until: Annotated[Instant | None, Query(description="Closed before (exclusive).")] = None,
) -> StreamingResponse:
    if until is not None and until <= since:
        raise _invalid("until", "`until` must be later than `since`.")
    internal = principal.allows("transcripts:internal")
    held_by = _held_by(principal)

    async def lines() -> AsyncIterator[bytes]:
        after: Keyset | None = None
        while True:
            # One short read per batch: no session is held while the client reads.
            async with unit(db, write=False) as session:
                batch = await transcripts.closed_batch(
                    session,
                    since=since,
                    until=until,
                    after=after,
                    limit=EXPORT_BATCH,
                    held_by=held_by,
                )
                infos = await transcripts.describe(session, batch)
                logs = await transcripts.events_of(
                    session, [c.id for c in batch], internal=internal
                )
            chunk = bytearray()
            for info in infos:
                line = ExportLine(
                    **conversation_fields(info),
                    internal=internal,
                    events=[event_out(e) for e in logs[info.conversation.id]],
                )
                chunk += line.model_dump_json().encode() + b"\n"
            if chunk:
                yield bytes(chunk)
            if len(batch) < EXPORT_BATCH:
                return
            after = transcripts.keyset_of(batch[-1], "closed_at")

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get(
    "/{conversation_id}",
    summary="One conversation's metadata",
    description="As an item of the list, with `timings`: the queue wait and the first response. "
    "An agent's session reads the conversations `may_read` allows (held, held before, offered "
    "its transfer, barged into); others are 404 as if they did not exist.",
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        **ITEM_EXAMPLE,
                        "timings": {"queue_wait_seconds": 0.12, "first_response_seconds": 51.39},
                    }
                }
            }
        },
        **responses(401, 403, 404, 422, 503),
    },
)
async def get_conversation(
    conversation_id: uuid.UUID, principal: ReadAccess, session: SessionDep
) -> ConversationDetail:
    conversation = await _readable(session, principal, conversation_id)
    [info] = await transcripts.describe(session, [conversation])
    timing = await transcripts.timings(session, conversation)
    return ConversationDetail(
        **conversation_fields(info),
        timings=Timings(
            queue_wait_seconds=timing.queue_wait_seconds,
            first_response_seconds=timing.first_response_seconds,
        ),
    )


@router.get(
    "/{conversation_id}/transcript",
    summary="A conversation's transcript (JSON or text)",
    description="Every stored event in seq order: messages (with their files' `download_url`), "
    "system events, transfers, escalations, context summaries, tags, disposition, rating. "
    "Agents-only events (notes, whispers, the transfer channel, routing, summaries, tags) only "
    "for callers with `transcripts:internal`. `format=text` answers a human-readable plain-text "
    "download instead.",
    response_model=TranscriptOut,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "conversation_id": ITEM_EXAMPLE["id"],
                        "internal": False,
                        "events": [EVENT_EXAMPLE],
                    }
                },
                "text/plain": {
                    "example": "[2026-12-03 16:02:11 UTC] Visitor Ada: Where is my parcel?\n"
                },
            },
            "description": "JSON, or text with `format=text`.",
        },
        **responses(401, 403, 404, 422, 503),
    },
)
async def transcript(
    conversation_id: uuid.UUID,
    principal: TranscriptAccess,
    session: SessionDep,
    format: Annotated[Literal["json", "text"], Query()] = "json",
) -> Response | TranscriptOut:
    conversation = await _readable(session, principal, conversation_id)
    internal = principal.allows("transcripts:internal")
    rows = (await transcripts.events_of(session, [conversation.id], internal=internal))[
        conversation.id
    ]
    if format == "text":
        [info] = await transcripts.describe(session, [conversation])
        return PlainTextResponse(
            plain_transcript(info, rows, internal=internal),
            headers={
                "Content-Disposition": f'attachment; filename="conversation-{conversation.id}.txt"',
                "X-Content-Type-Options": "nosniff",
            },
        )
    return TranscriptOut(
        conversation_id=conversation.id, internal=internal, events=[event_out(r) for r in rows]
    )


@router.get(
    "/{conversation_id}/csat",
    summary="A conversation's satisfaction rating",
    description="The visitor's CSAT rating (1-5), their comment and when they rated; "
    "404 `csat_not_found` when the conversation has not been rated.",
    responses={
        200: {"content": {"application/json": {"example": ITEM_EXAMPLE["csat"]}}},
        **responses(401, 403, 404, 422, 503),
    },
)
async def csat(conversation_id: uuid.UUID, principal: ReadAccess, session: SessionDep) -> Csat:
    conversation = await _readable(session, principal, conversation_id)
    if conversation.rating is None or conversation.rated_at is None:
        raise CsatNotFound(
            "This conversation has not been rated.", conversation_id=str(conversation_id)
        )
    return Csat(
        score=conversation.rating,
        comment=conversation.rating_comment,
        rated_at=conversation.rated_at,
    )
