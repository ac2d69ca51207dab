"""FastAPI dependencies: the unit of work per request, the clock, the current agent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.exc import DataError, DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import keys as key_service
from app.auth import service as auth_service
from app.auth.errors import InvalidToken
from app.config import Settings
from app.errors import Forbidden, InvalidData, ServiceUnavailable
from app.store.db import Database
from app.store.models import Agent, Visitor

_bearer = HTTPBearer(
    auto_error=False,
    description="An agent session token (`wla_…`, from /api/v1/auth/login), an API key "
    "(`wlk_…`, from /api/v1/api-keys) or, on the visitor routes, a visitor token (`wlv_…`).",
)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_now(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", None)
    return clock() if clock is not None else datetime.now(UTC)


async def get_session(db: Annotated[Database, Depends(get_db)]) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed when the handler returns, rolled back if it
    raises."""
    async with unit(db) as session:
        yield session


@asynccontextmanager
async def unit(db: Database, *, write: bool = True) -> AsyncIterator[AsyncSession]:
    """A unit of work inside a handler that must not hold a session for its whole length (an
    upload or a download: bytes move between two short units). Same errors as `SessionDep`."""
    try:
        async with db.write() if write else db.read() as session:
            yield session
    except DataError as exc:
        raise InvalidData("The database refused a value in this request.") from exc
    except DBAPIError as exc:
        if refused_value(exc):
            raise InvalidData("The database refused a value in this request.") from exc
        raise ServiceUnavailable("The database cannot be reached; try again shortly.") from exc
    except (OSError, PoolTimeout) as exc:
        raise ServiceUnavailable("The database cannot be reached; try again shortly.") from exc


def refused_value(exc: DBAPIError) -> bool:
    """Whether the error is a value refused (SQLSTATE class 22, data exception), not an outage.

    asyncpg refuses an argument it cannot encode (a number past its column's type) before
    sending it, and SQLAlchemy wraps that as a plain `DBAPIError`, not a `DataError`; asking the
    same again fails the same way, so it must not be a 503 that invites a retry.
    """
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


# scope="function": the commit happens before the response is sent, so a client never holds a
# token (or an id) whose transaction could still fail.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
NowDep = Annotated[datetime, Depends(get_now)]
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


async def get_current_agent(session: SessionDep, credentials: BearerDep, now: NowDep) -> Agent:
    if credentials is None:
        raise InvalidToken("Send an agent session token as `Authorization: Bearer <token>`.")
    if key_service.is_api_key(credentials.credentials):
        # A live key is told why it is refused; a dead one is refused as any bad token.
        await key_service.authenticate_api_key(session, token=credentials.credentials, now=now)
        raise Forbidden(
            "This route serves an agent's session at the console; API keys cannot use it.",
            required_role="agent",
        )
    return await auth_service.authenticate_agent(session, token=credentials.credentials, now=now)


CurrentAgent = Annotated[Agent, Depends(get_current_agent)]


async def get_current_visitor(session: SessionDep, credentials: BearerDep, now: NowDep) -> Visitor:
    if credentials is None:
        raise InvalidToken("Send the visitor token as `Authorization: Bearer <token>`.")
    return await auth_service.authenticate_visitor(session, token=credentials.credentials, now=now)


CurrentVisitor = Annotated[Visitor, Depends(get_current_visitor)]
