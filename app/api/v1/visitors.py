"""`/api/v1/visitor/sessions`: a visitor token for the widget (docs/api.md#visitor-sessions)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.auth import service as auth_service
from app.auth.identity import InvalidIdentity, Priority, verify_identity
from app.chat import repository as chat_repository

router = APIRouter(prefix="/visitor", tags=["visitors"])


class VisitorSessionRequest(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "Ada", "email": "ada@example.com", "attributes": {"plan": "pro"}},
                {"token": "wlv_Hn0kYp…"},
            ]
        }
    )

    token: Annotated[
        str | None,
        Field(max_length=256, description="A token held from before: resume that visitor."),
    ] = None
    name: Annotated[str | None, Field(max_length=128, examples=["Ada"])] = None
    email: EmailStr | None = Field(default=None, examples=["ada@example.com"])
    attributes: Annotated[
        dict[str, str | int | float | bool | None],
        Field(max_length=50, description="Free-form facts about the visitor (plan, locale…)."),
    ] = Field(default_factory=dict)
    identity_token: Annotated[
        str | None,
        Field(
            max_length=4096,
            description="A JWT (HS256) the host site's backend signed for its logged-in user "
            "with WARMLINE_IDENTITY_SECRET: verifies who they are and their priority "
            "(docs/api.md#verified-identity).",
        ),
    ] = None


class OpenConversation(BaseModel):
    id: uuid.UUID
    state: str
    last_seq: int


class VisitorSessionResponse(BaseModel):
    visitor_id: uuid.UUID
    token: str = Field(
        description="Send it in the hello of /ws/v1/visitor; keep it to resume later."
    )
    conversation: OpenConversation | None = Field(
        description="The visitor's open conversation, if any."
    )
    verified: bool = Field(description="Whether a valid identity token vouched for the visitor.")
    priority: str = Field(description='Queue priority: "normal", "high" or "vip".')


@router.post(
    "/sessions",
    summary="Start or resume a visitor session",
    description="Without `token`, creates a visitor and returns a new token (201). With the token "
    "of an earlier session, resumes that visitor (200) and returns their open conversation.",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": VisitorSessionResponse, "description": "Resumed"},
        **responses(401, 422, 503),
    },
)
async def start_session(
    body: VisitorSessionRequest,
    session: SessionDep,
    now: NowDep,
    response: Response,
    settings: SettingsDep,
) -> VisitorSessionResponse:
    attributes: dict[str, Any] = dict(body.attributes)
    identity = None
    if body.identity_token is not None:
        if settings.identity_secret is None:
            raise InvalidIdentity(
                "Identity verification is not configured on this server "
                "(WARMLINE_IDENTITY_SECRET is unset)."
            )
        identity = verify_identity(
            body.identity_token, secret=settings.identity_secret.get_secret_value(), now=now
        )
    started = await auth_service.start_visitor_session(
        session,
        token=body.token,
        name=body.name,
        email=None if body.email is None else str(body.email),
        attributes=attributes,
        now=now,
        identity=identity,
    )
    if not started.created:
        response.status_code = status.HTTP_200_OK
    conversation = await chat_repository.open_of_visitor(session, started.visitor.id, lock=False)
    return VisitorSessionResponse(
        visitor_id=started.visitor.id,
        token=started.token,
        conversation=None
        if conversation is None
        else OpenConversation(
            id=conversation.id, state=conversation.state.value, last_seq=conversation.last_seq
        ),
        verified=started.visitor.verified_at is not None,
        priority=Priority(started.visitor.priority).name.lower(),
    )
