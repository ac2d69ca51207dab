"""Who is calling: agent logins and sessions, visitor tokens.

Owns issuing and checking the tokens that HTTP and WebSocket share. Services flush, never
commit: the caller's unit of work does. Reference: docs/api.md#authentication.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.errors import InvalidCredentials, InvalidToken
from app.auth.identity import Identity, InvalidIdentity
from app.auth.tokens import (
    AGENT_TOKEN_PREFIX,
    DUMMY_PASSWORD_HASH,
    VISITOR_TOKEN_PREFIX,
    new_token,
    token_hash,
    verify_password,
)
from app.store.models import Agent, AgentSession, Visitor


@dataclass(frozen=True, slots=True)
class IssuedSession:
    token: str
    agent: Agent
    expires_at: datetime


async def login(
    session: AsyncSession, *, email: str, password: str, ttl: timedelta, now: datetime
) -> IssuedSession:
    """Check an agent's email and password and open a console session.

    Raises:
        InvalidCredentials: unknown email, wrong password or deactivated agent (one message
            for all three, so the answer does not tell which).
    """
    agent = await session.scalar(select(Agent).where(Agent.email == email.strip().lower()))
    if agent is None:
        # Argon2 costs ~0.1 s of CPU: off the event loop, or every socket of the node stalls.
        await asyncio.to_thread(verify_password, DUMMY_PASSWORD_HASH, password)
        raise InvalidCredentials("Wrong email or password.")
    if not await asyncio.to_thread(verify_password, agent.password_hash, password):
        raise InvalidCredentials("Wrong email or password.")
    if not agent.is_active:
        raise InvalidCredentials("Wrong email or password.")
    token = new_token(AGENT_TOKEN_PREFIX)
    expires_at = now + ttl
    session.add(
        AgentSession(agent_id=agent.id, token_hash=token_hash(token), expires_at=expires_at)
    )
    await session.flush()
    return IssuedSession(token=token, agent=agent, expires_at=expires_at)


async def logout(session: AsyncSession, *, token: str, now: datetime) -> None:
    await session.execute(
        update(AgentSession)
        .where(AgentSession.token_hash == token_hash(token), AgentSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )


async def authenticate_agent(session: AsyncSession, *, token: str, now: datetime) -> Agent:
    """The agent holding `token`.

    Raises:
        InvalidToken: unknown, expired or revoked token, or a deactivated agent.
    """
    if not token.startswith(AGENT_TOKEN_PREFIX):
        raise InvalidToken("This is not an agent session token.")
    row = (
        await session.execute(
            select(Agent, AgentSession)
            .join(AgentSession, AgentSession.agent_id == Agent.id)
            .where(AgentSession.token_hash == token_hash(token))
        )
    ).first()
    if row is None:
        raise InvalidToken("Unknown session token; log in again.")
    agent, agent_session = row
    if agent_session.revoked_at is not None or agent_session.expires_at <= now:
        raise InvalidToken("This session has ended; log in again.")
    if not agent.is_active:
        raise InvalidToken("This agent account is deactivated.")
    return agent


@dataclass(frozen=True, slots=True)
class VisitorSession:
    token: str
    visitor: Visitor
    created: bool


async def start_visitor_session(
    session: AsyncSession,
    *,
    token: str | None,
    name: str | None,
    email: str | None,
    attributes: dict[str, Any],
    now: datetime,
    identity: Identity | None = None,
) -> VisitorSession:
    """Resume the visitor holding `token`, or make a new visitor with a new token.

    A token that is given but unknown is an error rather than a silent new identity: a widget
    that lost its visitor must know it, or the visitor would think their chat vanished. A
    verified `identity` wins over what the widget says (name, email, attributes) and sets the
    visitor's priority; a visitor verified as one user cannot be re-verified as another.

    Raises:
        InvalidToken: `token` was given and matches no visitor.
        InvalidIdentity: `identity` names another user than the visitor was verified as.
    """
    if token is not None:
        visitor = await authenticate_visitor(session, token=token, now=now)
        if identity is not None and visitor.external_id not in (None, identity.external_id):
            raise InvalidIdentity(
                "This visitor token belongs to another verified user; start a new visitor "
                "session without the token."
            )
        if name is not None:
            visitor.name = name
        if email is not None:
            visitor.email = email
        if attributes:
            visitor.attributes = {**visitor.attributes, **attributes}
        _apply(visitor, identity, now)
        await session.flush()
        return VisitorSession(token=token, visitor=visitor, created=False)
    new = new_token(VISITOR_TOKEN_PREFIX)
    visitor = Visitor(
        id=uuid.uuid4(),
        token_hash=token_hash(new),
        name=name,
        email=email,
        attributes=attributes,
        priority=0,
        created_at=now,
        last_seen_at=now,
    )
    _apply(visitor, identity, now)
    session.add(visitor)
    await session.flush()
    return VisitorSession(token=new, visitor=visitor, created=True)


def _apply(visitor: Visitor, identity: Identity | None, now: datetime) -> None:
    if identity is None:
        return
    visitor.external_id = identity.external_id
    visitor.verified_at = now
    visitor.priority = int(identity.priority)
    if identity.name is not None:
        visitor.name = identity.name
    if identity.email is not None:
        visitor.email = identity.email
    if identity.attributes:
        visitor.attributes = {**(visitor.attributes or {}), **identity.attributes}


async def authenticate_visitor(session: AsyncSession, *, token: str, now: datetime) -> Visitor:
    """The visitor holding `token`; marks them seen.

    Raises:
        InvalidToken: the token matches no visitor.
    """
    if not token.startswith(VISITOR_TOKEN_PREFIX):
        raise InvalidToken("This is not a visitor token.")
    visitor = await session.scalar(select(Visitor).where(Visitor.token_hash == token_hash(token)))
    if visitor is None:
        raise InvalidToken("Unknown visitor token; start a new visitor session.")
    visitor.last_seen_at = now
    return visitor
