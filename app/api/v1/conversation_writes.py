"""The write side of the conversations API: change a conversation's tags or a closed one's
disposition, and close a conversation (docs/api.md#changing-conversations).

Both need `conversations:write`. An API key acts as its integration (`chat.outcome.Integration`:
the events are the system's, signed with the key's name); an agent's session acts as that agent,
by the rules of the `tags` and `close` frames, and a conversation the agent may not read answers
404, as in the read API. What was stored is published after the commit (`api/publish.py`), so
sockets receive it as if a frame had done it. Must not decide who may label or close what:
`chat.labels` and `chat.service` do.
"""

from __future__ import annotations

import uuid
from typing import Annotated, NoReturn, Self

from fastapi import APIRouter, Body, Depends
from pydantic import AfterValidator, ConfigDict, Field, field_validator, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.access import Principal, Requires
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.publish import PublisherDep
from app.api.v1.admin_agents import not_null, patch_field, refuse
from app.api.v1.transcript_schemas import (
    ITEM_EXAMPLE,
    ConversationDetail,
    Timings,
    conversation_fields,
)
from app.chat import service as chat_service
from app.chat import transcripts
from app.chat.errors import ConversationNotFound
from app.chat.labels import MAX_TAG_CHARS, MAX_TAGS, InvalidLabel, normalise_tags
from app.chat.service import Actor, Integration, Outcome
from app.store.models import SenderType

router = APIRouter(prefix="/conversations", tags=["conversations API"])

WriteAccess = Annotated[Principal, Depends(Requires("conversations:write"))]


def _normalised(tags: list[str]) -> list[str]:
    try:
        return normalise_tags(tags)
    except InvalidLabel as exc:
        raise ValueError(exc.message) from exc


# As the `tags` frame takes them: at most 20 as sent, each 1-64 characters, then trimmed,
# collapsed and lower-cased (at most 32 characters once that is done).
Tags = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=2 * MAX_TAG_CHARS)]],
    Field(max_length=MAX_TAGS),
    AfterValidator(_normalised),
]
Disposition = Annotated[str, Field(min_length=1, max_length=64)]

TAGS_HELP = (
    "The conversation's tags from now on (`[]` removes them all): trimmed, inner spaces "
    f"collapsed, lower-cased, duplicates once; at most {MAX_TAGS}, {MAX_TAG_CHARS} characters "
    "each once trimmed."
)
DISPOSITION_HELP = "How it ended: a code of `GET /api/v1/dispositions`."


class ConversationChange(RequestBody):
    """What to change; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",  # a misspelt field is an error, not a change silently left out
        allow_inf_nan=False,
        json_schema_extra={"minProperties": 1},
    )

    tags: Tags | None = patch_field(description=TAGS_HELP)
    disposition: Disposition | None = patch_field(
        description=DISPOSITION_HELP + " Closed conversations only: an open one gets its "
        "disposition when it is closed."
    )

    _not_null = field_validator("tags", "disposition")(not_null)

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.tags is None and self.disposition is None:
            raise ValueError("give `tags`, `disposition` or both")
        return self


class CloseRequest(RequestBody):
    """Labels to close it with; the body may be left out."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    tags: Tags | None = Field(default=None, description=TAGS_HELP + " Null: as they are.")
    disposition: Disposition | None = Field(
        default=None,
        description=DISPOSITION_HELP + " Required when the deployment requires one.",
    )


DETAIL_EXAMPLE = {
    **ITEM_EXAMPLE,
    "csat": None,
    "tags": ["refund", "vip"],
    "last_seq": 14,
    "timings": {"queue_wait_seconds": 0.12, "first_response_seconds": 51.39},
}


async def _acting(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID
) -> Actor | Integration:
    """Who the caller acts as. An agent's session that may not read the conversation gets
    `404 conversation_not_found`, as the read API answers, so ids cannot be probed."""
    if principal.api_key is not None:
        return Integration(key_id=principal.api_key.id, name=principal.api_key.name)
    agent = principal.agent
    assert agent is not None  # noqa: S101 - a key or an agent, by construction
    actor = Actor(SenderType.AGENT, agent.id, agent.name)
    if not principal.sees_all:
        conversation = await chat_service.get(session, conversation_id)
        if conversation is not None and not await chat_service.may_read(
            session, actor=actor, conversation=conversation
        ):
            raise ConversationNotFound(
                "No such conversation.", conversation_id=str(conversation_id)
            )
    return actor


def _refuse_label(exc: InvalidLabel) -> NoReturn:
    """A label the domain refused, as a 422 naming the field (tags were checked by the body's
    validation, so what remains is about the disposition)."""
    field = "disposition" if "disposition" in exc.details else "tags"
    offered = exc.details.get("dispositions")
    hint = f" Offered: {', '.join(offered)}." if offered else ""
    refuse((("body", field), exc.message + hint))


async def _detail(session: AsyncSession, conversation_id: uuid.UUID) -> ConversationDetail:
    conversation = await chat_service.get(session, conversation_id)
    assert conversation is not None  # noqa: S101 - just written under its lock
    [info] = await transcripts.describe(session, [conversation])
    timing = await transcripts.timings(session, conversation)
    return ConversationDetail(
        **conversation_fields(info),
        timings=Timings(
            queue_wait_seconds=timing.queue_wait_seconds,
            first_response_seconds=timing.first_response_seconds,
        ),
    )


WRITE_ERRORS = responses(401, 403, 404, 409, 422, 429, 503)


@router.patch(
    "/{conversation_id}",
    summary="Change a conversation's tags or disposition",
    description="`tags` replace the conversation's tags; `disposition` sets how a **closed** "
    "conversation ended (a QA tool or a CRM labelling afterwards). Each change is an "
    "agents-only event (`conversation.tagged`, `conversation.disposition`) signed by the "
    "caller: an API key as the system with the key's name, a session as its agent; the same "
    "set of tags or the same disposition writes nothing. An open conversation: an agent "
    "tags the chats they hold, supervisors and admins any (as with the `tags` frame). A "
    "closed one: API keys, supervisors and admins only (an agent gets 409 "
    "`conversation_closed`). Answers the conversation as `GET …/{conversation_id}` does.",
    response_model=ConversationDetail,
    responses={
        200: {"content": {"application/json": {"example": DETAIL_EXAMPLE}}},
        **WRITE_ERRORS,
    },
)
async def change_conversation(
    conversation_id: uuid.UUID,
    body: Annotated[
        ConversationChange,
        Body(
            openapi_examples={
                "tags": {
                    "summary": "Replace the tags",
                    "value": {"tags": ["refund", "VIP"]},
                },
                "disposition": {
                    "summary": "Set a closed conversation's disposition",
                    "value": {"disposition": "resolved"},
                },
                "both": {
                    "summary": "Both, on a closed conversation",
                    "value": {"tags": ["refund"], "disposition": "follow_up"},
                },
            }
        ),
    ],
    *,
    principal: WriteAccess,
    session: SessionDep,
    now: NowDep,
    publisher: PublisherDep,
) -> ConversationDetail:
    who = await _acting(session, principal, conversation_id)
    try:
        events = await chat_service.relabel(
            session,
            by=who,
            conversation_id=conversation_id,
            tags=body.tags,
            disposition=body.disposition,
            now=now,
        )
    except InvalidLabel as exc:
        _refuse_label(exc)
    publisher.after_commit(Outcome(events=events, conversation_id=conversation_id))
    return await _detail(session, conversation_id)


@router.post(
    "/{conversation_id}/close",
    summary="Close a conversation",
    description="Closes an open conversation (queued, assigned or offline) as an agent's "
    "`close` frame does: pending offers are withdrawn, a pending transfer ends, the visitor "
    "and the agents see `conversation.closed`, the agent's capacity is free and waiting chats "
    "are routed at once. `tags` and `disposition` label it first (the disposition is "
    "required when the deployment requires one). An API key closes any conversation, as the "
    "system signed with the key's name (`closed_by` `system`); a session closes only a chat "
    "its agent holds. Answers the closed conversation as `GET …/{conversation_id}` does.",
    response_model=ConversationDetail,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {**DETAIL_EXAMPLE, "closed_by": "system", "disposition": None}
                }
            }
        },
        **WRITE_ERRORS,
    },
)
async def close_conversation(
    conversation_id: uuid.UUID,
    *,
    principal: WriteAccess,
    session: SessionDep,
    now: NowDep,
    publisher: PublisherDep,
    body: Annotated[
        CloseRequest | None,
        Body(
            openapi_examples={
                "plain": {"summary": "Just close it", "value": {}},
                "labelled": {
                    "summary": "Close with tags and a disposition",
                    "value": {"tags": ["refund"], "disposition": "resolved"},
                },
            }
        ),
    ] = None,
) -> ConversationDetail:
    who = await _acting(session, principal, conversation_id)
    labels = body or CloseRequest()
    try:
        outcome = await chat_service.close(
            session,
            actor=who if isinstance(who, Actor) else None,
            integration=who if isinstance(who, Integration) else None,
            conversation_id=conversation_id,
            now=now,
            offers=publisher.offers,
            tags=labels.tags,
            disposition=labels.disposition,
        )
    except InvalidLabel as exc:
        _refuse_label(exc)
    publisher.after_commit(outcome)
    return await _detail(session, conversation_id)
