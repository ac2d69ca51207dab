"""`/api/v1/webhooks`: endpoints other systems give for conversation events, their secrets,
their delivery log, retries and test pings; for admins (docs/api.md#webhooks).

Every route needs the `admin` scope (an admin's session or a key with `admin`). The rules of
what is sent, and how, are in `app/webhooks/`; this module shapes requests and answers.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from app.api.access import AdminAccess
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.config import Settings
from app.store.models import WebhookDelivery, WebhookDeliveryStatus, WebhookEndpoint
from app.webhooks import events as webhook_events
from app.webhooks import service as webhooks
from app.webhooks import urls

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

EventType = Literal[
    "conversation.created",
    "conversation.queued",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.escalated",
    "conversation.closed",
    "message.created",
    "csat.submitted",
    "effort.submitted",
    "offline_message.created",
    "conversation.sla_breached",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]
WebhookIdPath = Annotated[uuid.UUID, Path(description="The endpoint's id.")]
# Delivery ids are 64-bit (BIGINT): a larger number names nothing, and the database could not
# even compare it.
MAX_DELIVERY_ID = 2**63 - 1
DeliveryIdPath = Annotated[
    int, Path(ge=1, le=MAX_DELIVERY_ID, description="The delivery's id, from the log.")
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
PAGE_DEFAULT = 50
PAGE_MAX = 100
URL_EXAMPLE = "https://crm.example.com/hooks/warmline"
SECRET_EXAMPLE = "whsec_0mWq4V3tYx1b9hKc2Zr8uA5sE7dN6pLf_jG4oQiT1yM"  # noqa: S105 - an example


def _checked_url(value: str) -> str:
    """Scheme, credentials and form; private networks are judged by the route (a setting)."""
    problem = urls.problem(value, allow_private=True)
    if problem is not None:
        raise ValueError(problem)
    return value


class WebhookCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": URL_EXAMPLE,
                    "events": ["conversation.created", "message.created", "conversation.closed"],
                    "description": "CRM sync",
                }
            ]
        }
    )

    url: str = Field(
        max_length=urls.MAX_URL_LENGTH,
        description="Where events are POSTed: `https://` (or `http://`), no credentials.",
        examples=[URL_EXAMPLE],
    )
    events: list[EventType] = Field(
        min_length=1,
        description="The event types to receive.",
        examples=[["conversation.created", "message.created", "conversation.closed"]],
    )
    description: Description = Field(default="", examples=["CRM sync"])
    active: bool = Field(default=True, description="False: created disabled.")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _checked_url(value)


class WebhookUpdate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"events": ["conversation.closed"]}, {"active": False}]}
    )

    url: str | None = Field(default=None, max_length=urls.MAX_URL_LENGTH, examples=[URL_EXAMPLE])
    events: list[EventType] | None = Field(default=None, min_length=1)
    description: Description | None = None
    active: bool | None = Field(
        default=None, description="False disables the endpoint: nothing is sent to it."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    events: list[str]
    description: str
    active: bool
    created_by: uuid.UUID | None = Field(description="The admin who created it.")
    created_at: datetime
    updated_at: datetime


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (also at `GET /webhooks/{id}/secret`).",
        examples=[SECRET_EXAMPLE],
    )


class WebhookSecret(BaseModel):
    secret: str = Field(examples=[SECRET_EXAMPLE])


class DeliveryOut(BaseModel):
    id: int
    event_id: str = Field(description="The event's id, the same in every attempt.")
    event_type: str
    conversation_id: uuid.UUID | None
    status: DeliveryStatus
    attempts: int = Field(description="Attempts made so far.")
    last_status_code: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None = Field(description="Why the last attempt failed.")
    next_attempt_at: datetime | None = Field(description="When it is tried next, if pending.")
    last_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="The JSON body sent.")


class DeliveryPage(BaseModel):
    data: list[DeliveryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next (older) page; null at the end."
    )


def _out(row: WebhookEndpoint) -> WebhookOut:
    return WebhookOut(
        id=row.id,
        url=row.url,
        events=list(row.events),
        description=row.description,
        active=row.active,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _delivery(row: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        conversation_id=row.conversation_id,
        status=row.status.value,
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        last_attempt_at=row.last_attempt_at,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        payload=dict(row.payload),
    )


def _invalid(location: tuple[str, ...], problem: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": location, "msg": problem, "type": "value_error", "input": None}]
    )


def _network_allowed(request: Request, url: str | None) -> None:
    """Refuse a private-network URL when the deployment says so (a 422 naming `body.url`)."""
    settings: Settings = request.app.state.settings
    if url is None or settings.webhook_allow_private:
        return
    problem = urls.problem(url, allow_private=False)
    if problem is not None:
        raise _invalid(("body", "url"), problem)


def _encode_cursor(delivery_id: int) -> str:
    return base64.urlsafe_b64encode(f"d{delivery_id}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if raw[:1] != "d" or not raw[1:].isdigit() or int(raw[1:]) > MAX_DELIVERY_ID:
            raise ValueError(raw)
        return int(raw[1:])
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid(
            ("query", "cursor"), "Not a cursor from this API: pass `next_cursor` as it is."
        ) from exc


ENDPOINT_EXAMPLE = {
    "id": "0b8e3f4a-6c1d-4e2f-9a7b-5c3d2e1f0a9b",
    "url": URL_EXAMPLE,
    "events": ["conversation.closed", "message.created"],
    "description": "CRM sync",
    "active": True,
    "created_by": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
    "created_at": "2026-12-04T05:00:00Z",
    "updated_at": "2026-12-04T05:00:00Z",
}


@router.get(
    "",
    summary="List webhook endpoints",
    description="Every endpoint, oldest first (secrets are not listed).",
    responses=responses(401, 403, 503),
)
async def list_webhooks(_admin: AdminAccess, session: SessionDep) -> list[WebhookOut]:
    return [_out(row) for row in await webhooks.list_endpoints(session)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a webhook endpoint",
    description="A new endpoint for the event types given, with a new signing secret "
    "(`whsec_…`) in the answer. Events stored from the commit on are sent to it.",
    responses={
        **responses(401, 403, 422, 503),
        201: {
            "content": {
                "application/json": {"example": {**ENDPOINT_EXAMPLE, "secret": SECRET_EXAMPLE}}
            }
        },
    },
)
async def create_webhook(
    body: WebhookCreate, request: Request, admin: AdminAccess, session: SessionDep, now: NowDep
) -> WebhookCreated:
    _network_allowed(request, body.url)
    row = await webhooks.create_endpoint(
        session,
        url=body.url,
        events=list(body.events),
        description=body.description,
        active=body.active,
        created_by=admin.agent_id,
        now=now,
    )
    return WebhookCreated(**_out(row).model_dump(), secret=row.secret)


@router.get(
    "/{webhook_id}",
    summary="Get a webhook endpoint",
    responses={
        **responses(401, 403, 404, 422, 503),
        200: {"content": {"application/json": {"example": ENDPOINT_EXAMPLE}}},
    },
)
async def get_webhook(
    webhook_id: WebhookIdPath, _admin: AdminAccess, session: SessionDep
) -> WebhookOut:
    return _out(await webhooks.get_endpoint_or_raise(session, webhook_id))


@router.patch(
    "/{webhook_id}",
    summary="Update a webhook endpoint",
    description="Change the URL, the event types, the description, or enable (`active: true`) "
    "and disable it. Fields left out are unchanged. Disabled, it is sent nothing; its pending "
    "deliveries wait and go once it is enabled again.",
    responses=responses(401, 403, 404, 422, 503),
)
async def update_webhook(
    webhook_id: WebhookIdPath,
    body: WebhookUpdate,
    request: Request,
    _admin: AdminAccess,
    session: SessionDep,
    now: NowDep,
) -> WebhookOut:
    _network_allowed(request, body.url)
    row = await webhooks.get_endpoint_or_raise(session, webhook_id)
    await webhooks.update_endpoint(
        session,
        row,
        url=body.url,
        events=None if body.events is None else list(body.events),
        description=body.description,
        active=body.active,
        now=now,
    )
    return _out(row)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook endpoint",
    description="The endpoint and its delivery log go; pending deliveries are not sent.",
    responses=responses(401, 403, 404, 422, 503),
)
async def delete_webhook(
    webhook_id: WebhookIdPath, _admin: AdminAccess, session: SessionDep
) -> None:
    await webhooks.delete_endpoint(
        session, await webhooks.get_endpoint_or_raise(session, webhook_id)
    )


@router.get(
    "/{webhook_id}/secret",
    summary="Get a webhook endpoint's signing secret",
    responses=responses(401, 403, 404, 422, 503),
)
async def get_secret(
    webhook_id: WebhookIdPath, _admin: AdminAccess, session: SessionDep
) -> WebhookSecret:
    return WebhookSecret(secret=(await webhooks.get_endpoint_or_raise(session, webhook_id)).secret)


@router.post(
    "/{webhook_id}/secret/rotate",
    summary="Rotate a webhook endpoint's signing secret",
    description="A new secret, used for every request sent after this answer (including "
    "retries of earlier events); the old one stops at once.",
    responses=responses(401, 403, 404, 422, 503),
)
async def rotate_secret(
    webhook_id: WebhookIdPath, _admin: AdminAccess, session: SessionDep, now: NowDep
) -> WebhookSecret:
    row = await webhooks.get_endpoint_or_raise(session, webhook_id)
    return WebhookSecret(secret=(await webhooks.rotate_secret(session, row, now=now)).secret)


@router.get(
    "/{webhook_id}/deliveries",
    summary="List a webhook endpoint's deliveries",
    description="The delivery log, newest first, in pages of `limit`: each event queued for "
    "the endpoint with its attempts and their outcome.",
    responses=responses(401, 403, 404, 422, 503),
)
async def list_deliveries(
    webhook_id: WebhookIdPath,
    _admin: AdminAccess,
    session: SessionDep,
    status_filter: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only deliveries in this state.")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=PAGE_MAX)] = PAGE_DEFAULT,
) -> DeliveryPage:
    before = None if cursor is None else _decode_cursor(cursor)
    row = await webhooks.get_endpoint_or_raise(session, webhook_id)
    rows = await webhooks.deliveries(
        session,
        row,
        status=None if status_filter is None else WebhookDeliveryStatus(status_filter),
        before=before,
        limit=limit + 1,
    )
    page = list(rows[:limit])
    next_cursor = _encode_cursor(page[-1].id) if len(rows) > limit else None
    return DeliveryPage(data=[_delivery(d) for d in page], next_cursor=next_cursor)


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Retry a webhook delivery now",
    description="Queues the delivery to be sent at once (within about a second), whatever its "
    "status, with the same event id and payload.",
    responses=responses(401, 403, 404, 422, 503),
)
async def retry_delivery(
    webhook_id: WebhookIdPath,
    delivery_id: DeliveryIdPath,
    _admin: AdminAccess,
    session: SessionDep,
    now: NowDep,
) -> DeliveryOut:
    row = await webhooks.get_endpoint_or_raise(session, webhook_id)
    return _delivery(await webhooks.retry_delivery(session, row, delivery_id, now=now))


@router.post(
    "/{webhook_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a test event",
    description=f"Queues a `{webhook_events.TEST}` event for the endpoint, sent, signed and "
    "retried like any other; follow it in the delivery log.",
    responses=responses(401, 403, 404, 409, 422, 503),
)
async def send_test_event(
    webhook_id: WebhookIdPath, _admin: AdminAccess, session: SessionDep, now: NowDep
) -> DeliveryOut:
    row = await webhooks.get_endpoint_or_raise(session, webhook_id)
    return _delivery(await webhooks.send_test(session, row, now=now))
