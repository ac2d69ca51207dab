"""Privacy over REST: export or erase one visitor, and the retention policy
(docs/api.md#privacy).

Export and erase need the `privacy` scope (supervisors and admins by role, or an API key given
it); the retention policy and its runs are for admins. Must not decide what an erasure removes
or what retention keeps: `app.privacy` does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from app.api.access import AdminAccess, Principal, Requires
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.api.publish import PublisherDep
from app.chat.service import Outcome
from app.errors import Conflict
from app.files import FileStore
from app.privacy import erasure, export, retention
from app.store.models import Erasure, RetentionMode, RetentionRun

router = APIRouter(tags=["privacy"])

PrivacyAccess = Annotated[Principal, Depends(Requires("privacy"))]
VisitorIdPath = Annotated[uuid.UUID, Path(description="The visitor's id (`visitor_id`).")]
# Beyond a century a retention period means "forever": use null for that.
MAX_RETENTION_DAYS = 36_500


class RetentionOff(Conflict):
    code = "retention_off"


class ErasureOut(BaseModel):
    id: uuid.UUID
    visitor_id: uuid.UUID
    requested_by: str = Field(description="Who asked: `agent:<id>` or `api_key:<id>`.")
    requested_at: datetime
    conversations: int = Field(description="Conversations of the visitor, all redacted.")
    conversations_closed: int = Field(description="Open ones closed first (by the system).")
    events_redacted: int = Field(description="Events whose text changed (0 when erased before).")
    attachments_deleted: int = Field(description="Files deleted, records and bytes.")

    @classmethod
    def of(cls, row: Erasure) -> ErasureOut:
        return cls.model_validate(export.erasure_json(row))


class ExportSender(BaseModel):
    type: Literal["visitor", "agent", "system"]
    id: uuid.UUID | None
    name: str | None


class ExportEvent(BaseModel):
    seq: int
    at: datetime
    kind: str = Field(description="An event kind of docs/protocol.md#event-kinds.")
    sender: ExportSender
    body: dict[str, Any] = Field(description="As stored (docs/protocol.md#event-kinds).")


class ExportRating(BaseModel):
    score: int
    comment: str | None
    rated_at: datetime | None


class ExportConversation(BaseModel):
    id: uuid.UUID
    state: str
    created_at: datetime
    queued_at: datetime | None
    assigned_at: datetime | None
    closed_at: datetime | None
    closed_by: str | None
    page_url: str | None
    left_offline: bool = Field(description="A message left while nobody could answer.")
    offline_reason: str | None
    rating: ExportRating | None
    redacted_at: datetime | None
    events: list[ExportEvent] = Field(description="What the visitor could see, in seq order.")


class ExportAttachment(BaseModel):
    id: uuid.UUID
    name: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: Literal["visitor", "agent", "system"]
    conversation_id: uuid.UUID | None = Field(description="Null: uploaded, never sent.")
    seq: int | None
    created_at: datetime
    sent_at: datetime | None
    download_url: str = Field(description="Path of the download (a staff session token).")


class ExportVisitor(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None
    attributes: dict[str, Any]
    external_id: str | None
    verified_at: datetime | None
    priority: int
    created_at: datetime
    last_seen_at: datetime
    erased_at: datetime | None


class VisitorExport(BaseModel):
    format: Literal["warmline.visitor-export/1"]
    exported_at: datetime
    visitor: ExportVisitor
    conversations: list[ExportConversation]
    attachments: list[ExportAttachment]
    erasures: list[ErasureOut]


class RetentionIn(RequestBody):
    closed_after_days: int | None = Field(
        ge=1,
        le=MAX_RETENTION_DAYS,
        description="Conversations closed longer ago than this many days are purged or "
        "anonymised; null keeps everything (the default).",
    )
    mode: RetentionMode = Field(
        default=RetentionMode.ANONYMISE,
        description="`purge`: delete them with their events and files; `anonymise`: remove "
        "their text and files, keep the rows.",
    )


class RetentionOut(BaseModel):
    closed_after_days: int | None
    mode: RetentionMode
    updated_at: datetime | None
    updated_by: str | None
    interval_seconds: float = Field(
        description="How often each node runs the policy (WARMLINE_RETENTION_INTERVAL)."
    )


class RetentionRunOut(BaseModel):
    id: int
    trigger: Literal["schedule", "request"]
    node: str
    mode: RetentionMode
    closed_after_days: int
    cutoff: datetime = Field(description="Conversations closed before this were due.")
    started_at: datetime
    finished_at: datetime
    batches: int
    conversations: int
    events: int
    attachments: int
    visitors: int = Field(
        description="Visitors not seen since the cutoff with nothing kept: deleted (purge) or "
        "made anonymous (anonymise)."
    )
    error: str | None

    @classmethod
    def of(cls, row: RetentionRun) -> RetentionRunOut:
        return cls.model_validate(row, from_attributes=True)


def _files(request: Request) -> FileStore:
    files: FileStore = request.app.state.files
    return files


async def _delete_files(files: FileStore, keys: list[str]) -> None:
    # Before the commit: once the answer says erased, the bytes are gone. A commit that then
    # fails answers 503 and leaves records without bytes (downloads say `file_missing`) until
    # the erasure is asked again.
    for key in keys:
        await files.delete(key)


ERASURE_EXAMPLE = {
    "id": "6a1d3f0e-2b7c-4c1e-9f3a-0c5e8d7b2a41",
    "visitor_id": "4f9f793e-afb8-4344-9b43-33522a3c6d3c",
    "requested_by": "agent:320eb479-b64a-4c23-8947-b57159ae00af",
    "requested_at": "2026-12-04T09:12:44.120Z",
    "conversations": 2,
    "conversations_closed": 1,
    "events_redacted": 14,
    "attachments_deleted": 1,
}


@router.get(
    "/visitors/{visitor_id}/export",
    summary="Everything stored about one visitor",
    description="The visitor's identity and attributes, every conversation with what they "
    "could see of it (messages both ways, joins and leaves, the close, the rating), files with "
    "their download paths, and earlier erasures, as one JSON document. Agents-only content "
    "(internal notes, whispers, the agents' transfer channel, summaries, routing) is not in it.",
    response_model=VisitorExport,
    responses=responses(401, 403, 404, 422, 503),
)
async def export_visitor(
    visitor_id: VisitorIdPath, _who: PrivacyAccess, session: SessionDep, now: NowDep
) -> JSONResponse:
    document = await export.export_visitor(session, visitor_id=visitor_id, now=now)
    return JSONResponse(
        VisitorExport.model_validate(document).model_dump(mode="json"),
        headers={"Content-Disposition": f'attachment; filename="visitor-{visitor_id}.json"'},
    )


@router.post(
    "/visitors/{visitor_id}/erase",
    summary="Erase one visitor",
    description="Removes who the visitor is and revokes their token, closes their open "
    "conversation (as the system), redacts the text of every conversation of theirs and "
    "deletes its files; conversation rows, states, timings and scores stay. Idempotent: "
    "erasing again changes nothing and is recorded with zero counts.",
    response_model=ErasureOut,
    responses={
        200: {"content": {"application/json": {"example": ERASURE_EXAMPLE}}},
        **responses(401, 403, 404, 422, 503),
    },
)
async def erase_visitor(
    visitor_id: VisitorIdPath,
    *,
    who: PrivacyAccess,
    session: SessionDep,
    now: NowDep,
    request: Request,
    publisher: PublisherDep,
) -> ErasureOut:
    erased = await erasure.erase_visitor(
        session,
        visitor_id=visitor_id,
        requested_by=who.label,
        now=now,
        offers=publisher.offers,
    )
    await _delete_files(_files(request), erased.storage_keys)
    publisher.after_commit(erased.outcome)
    return ErasureOut.of(erased.record)


@router.get(
    "/visitors/{visitor_id}/erasures",
    summary="Erasures of one visitor",
    description="Each erasure asked for this visitor, oldest first: who asked, when, and what "
    "went. Answers an empty list for a visitor never erased.",
    response_model=list[ErasureOut],
    responses=responses(401, 403, 404, 422, 503),
)
async def list_erasures(
    visitor_id: VisitorIdPath, _who: PrivacyAccess, session: SessionDep
) -> list[ErasureOut]:
    rows = await erasure.erasures_of(session, visitor_id)
    if not rows:
        await erasure.get_visitor_or_raise(session, visitor_id)
    return [ErasureOut.of(row) for row in rows]


def _policy_out(policy: retention.Policy, interval: float) -> RetentionOut:
    return RetentionOut(
        closed_after_days=policy.closed_after_days,
        mode=policy.mode,
        updated_at=policy.updated_at,
        updated_by=policy.updated_by,
        interval_seconds=interval,
    )


@router.get(
    "/privacy/retention",
    summary="The retention policy",
    description="How long closed conversations are kept, and what happens to them then.",
    response_model=RetentionOut,
    responses=responses(401, 403, 503),
)
async def get_retention(
    _admin: AdminAccess, session: SessionDep, settings: SettingsDep
) -> RetentionOut:
    return _policy_out(await retention.get_policy(session), settings.retention_interval)


@router.put(
    "/privacy/retention",
    summary="Set the retention policy",
    description="Replaces the policy. Applied by every node's next run (hourly by default), "
    "or at once with `POST /api/v1/privacy/retention/runs`.",
    response_model=RetentionOut,
    responses=responses(401, 403, 422, 503),
)
async def put_retention(
    body: Annotated[
        RetentionIn,
        Body(
            openapi_examples={
                "anonymise": {
                    "summary": "Anonymise after a year",
                    "value": {"closed_after_days": 365, "mode": "anonymise"},
                },
                "purge": {
                    "summary": "Delete after 90 days",
                    "value": {"closed_after_days": 90, "mode": "purge"},
                },
                "forever": {
                    "summary": "Keep everything",
                    "value": {"closed_after_days": None, "mode": "anonymise"},
                },
            }
        ),
    ],
    admin: AdminAccess,
    session: SessionDep,
    now: NowDep,
    settings: SettingsDep,
) -> RetentionOut:
    policy = await retention.set_policy(
        session,
        closed_after_days=body.closed_after_days,
        mode=body.mode,
        by=admin.label,
        now=now,
    )
    return _policy_out(policy, settings.retention_interval)


@router.get(
    "/privacy/retention/runs",
    summary="Recent runs of the retention policy",
    description="Newest first: when each ran, on which node, and what it removed.",
    response_model=list[RetentionRunOut],
    responses=responses(401, 403, 422, 503),
)
async def list_runs(
    _admin: AdminAccess,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="How many runs.")] = 50,
) -> list[RetentionRunOut]:
    return [RetentionRunOut.of(row) for row in await retention.runs(session, limit=limit)]


@router.post(
    "/privacy/retention/runs",
    summary="Run the retention policy now",
    description="Applies the policy at once, in this request's transaction, for at most "
    f"{retention.REQUEST_MAX_BATCHES * retention.BATCH_SIZE} conversations (the scheduled "
    "runs take the rest). `409 retention_off` when the policy keeps everything.",
    response_model=RetentionRunOut,
    responses=responses(401, 403, 409, 503),
)
async def run_now(
    _admin: AdminAccess,
    session: SessionDep,
    request: Request,
    publisher: PublisherDep,
    now: NowDep,
) -> RetentionRunOut:
    async def unit(work: Any) -> Any:
        return await work(session)

    async def publish(outcome: Outcome) -> None:
        publisher.after_commit(outcome)

    run = await retention.run(
        unit,
        _files(request),
        clock=lambda: now,
        node=request.app.state.hub.node,
        trigger="request",
        publish=publish,
        max_batches=retention.REQUEST_MAX_BATCHES,
    )
    if run is None:
        raise RetentionOff(
            "The retention policy keeps every conversation (closed_after_days "
            "is null); set one with PUT /api/v1/privacy/retention first."
        )
    return RetentionRunOut.of(run)
