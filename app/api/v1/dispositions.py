"""`/api/v1/dispositions` and `/api/v1/admin/dispositions`: the outcomes agents choose from when
they close a chat, and whether closing needs one (docs/api.md#dispositions).

Any agent reads them (the console's close dialog); admins replace the list. They are stored in
the routing settings row (`RoutingSettings.dispositions`, `require_disposition`); the `close`
frame checks a chosen code against what is stored (docs/protocol.md#close). Closed chats keep
the code they were closed with when it leaves the list.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.api.access import ConversationsRead
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.v1.admin_agents import AdminAgent, refuse
from app.routing import repository as routing_repository
from app.store.models import RoutingSettings

router = APIRouter(tags=["dispositions"])

# A close dialog is read at a glance; thirty choices is already a long list.
MAX_DISPOSITIONS = 30


class Disposition(BaseModel):
    code: Annotated[
        str,
        StringConstraints(pattern=r"^[a-z0-9_]+$", min_length=1, max_length=64),
        Field(
            description="Lower-case letters, digits and `_`; unique; stored on the chat.",
            examples=["resolved"],
        ),
    ]
    label: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
        Field(description="What agents read.", examples=["Resolved"]),
    ]


class Dispositions(BaseModel):
    dispositions: list[Disposition] = Field(description="In the order the console shows them.")
    required: bool = Field(description="Whether an agent's `close` must name one.")


class DispositionsIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "dispositions": [
                        {"code": "resolved", "label": "Resolved"},
                        {"code": "refund_issued", "label": "Refund issued"},
                    ],
                    "required": True,
                }
            ]
        }
    )

    dispositions: Annotated[
        list[Disposition],
        Field(min_length=1, max_length=MAX_DISPOSITIONS, description="The whole list, in order."),
    ]
    required: bool = Field(description="Whether an agent's `close` must name one.")


def _out(row: RoutingSettings) -> Dispositions:
    return Dispositions(
        dispositions=[Disposition(code=d["code"], label=d["label"]) for d in row.dispositions],
        required=row.require_disposition,
    )


@router.get(
    "/dispositions",
    summary="The dispositions to close a chat with",
    description="Any agent.",
    responses=responses(401, 503),
)
async def get_dispositions(_reader: ConversationsRead, session: SessionDep) -> Dispositions:
    return _out(await routing_repository.routing_settings(session))


@router.put(
    "/admin/dispositions",
    summary="Replace the dispositions",
    description="The list sent becomes the whole list; closes from then on are checked "
    "against it. Admins only.",
    responses=responses(401, 403, 422, 503),
)
async def put_dispositions(
    body: DispositionsIn, _admin: AdminAgent, session: SessionDep, now: NowDep
) -> Dispositions:
    seen: dict[str, int] = {}
    problems = []
    for index, entry in enumerate(body.dispositions):
        first = seen.setdefault(entry.code, index)
        if first != index:
            problems.append(
                (("body", "dispositions", index, "code"), f"disposition {first} has this code")
            )
    if problems:
        refuse(*problems)
    row = await routing_repository.lock_routing_settings(session)
    row.dispositions = [{"code": d.code, "label": d.label} for d in body.dispositions]
    row.require_disposition = body.required
    row.updated_at = now
    await session.flush()
    return _out(row)
