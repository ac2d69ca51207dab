"""`/api/v1/auth`: agent login, logout and who-am-I (docs/api.md#authentication)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi import APIRouter, status
from pydantic import BaseModel, Field

from app.api.body import RequestBody
from app.api.deps import BearerDep, CurrentAgent, NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.auth import service as auth_service

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(RequestBody):
    email: str = Field(min_length=3, max_length=254, examples=["dana@example.com"])
    password: str = Field(min_length=1, max_length=1024, examples=["correct horse battery staple"])


class AgentOut(BaseModel):
    id: uuid.UUID
    email: str
    name: str
    role: str
    capacity: int
    status: str
    avatar_url: str | None


class LoginResponse(BaseModel):
    token: str = Field(
        description="Session token for `Authorization: Bearer` and the agent WebSocket hello."
    )
    expires_at: datetime
    agent: AgentOut


def agent_out(agent: object) -> AgentOut:
    return AgentOut.model_validate(agent, from_attributes=True)


@router.post(
    "/login",
    summary="Log an agent in",
    description="Exchanges an email and password for a session token. Wrong email and wrong "
    "password give the same answer.",
    responses=responses(401, 422, 503),
)
async def login(
    body: LoginRequest, session: SessionDep, settings: SettingsDep, now: NowDep
) -> LoginResponse:
    issued = await auth_service.login(
        session,
        email=body.email,
        password=body.password,
        ttl=timedelta(hours=settings.agent_session_ttl_hours),
        now=now,
    )
    return LoginResponse(
        token=issued.token, expires_at=issued.expires_at, agent=agent_out(issued.agent)
    )


@router.post(
    "/logout",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End the current session",
    responses=responses(401, 403, 503),
)
async def logout(
    _agent: CurrentAgent, credentials: BearerDep, session: SessionDep, now: NowDep
) -> None:
    assert credentials is not None  # noqa: S101 - CurrentAgent already required it
    await auth_service.logout(session, token=credentials.credentials, now=now)


@router.get("/me", summary="The agent behind the session token", responses=responses(401, 403, 503))
async def me(agent: CurrentAgent) -> AgentOut:
    return agent_out(agent)
