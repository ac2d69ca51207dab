"""API keys for other systems, and the scopes that say what a caller may do.

A key is `wlk_` + 256 random bits, shown once when an admin creates it; the store keeps its
SHA-256 and its first characters (to recognise it in a list). A key carries scopes; an agent's
session token carries the scopes of the agent's role (`role_scopes`), and agents read only the
conversations they may read, whatever their scopes.

`last_used_at` is written at most once a minute per key, so a busy integration does not turn
every read into a write.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from app.auth.errors import InvalidToken
from app.auth.tokens import API_KEY_PREFIX, new_token, token_hash
from app.store.models import ApiKey, Role

# Every scope, with what it grants. `admin` grants every other scope as well.
SCOPES: dict[str, str] = {
    "conversations:read": "List conversations, read one's metadata and its CSAT; the skills, "
    "dispositions and quality rubric on offer.",
    "conversations:write": "Change conversations: tags, disposition, close.",
    "transcripts:read": "Read transcripts (JSON and text) and the bulk export.",
    "transcripts:internal": "With transcripts:read: internal notes, whispers and the "
    "transfer channel between agents in transcripts too.",
    "reports:read": "Read reports, quality reviews, escalations, the team and the routing "
    "settings (what supervisors read).",
    "privacy": "Export or erase everything stored about one visitor.",
    "admin": "Administration (agents, skills, routing, canned responses, API keys, "
    "webhooks, retention); grants every other scope too.",
}
ALL_SCOPES = frozenset(SCOPES)

_AGENT_SCOPES = frozenset(
    {"conversations:read", "conversations:write", "transcripts:read", "transcripts:internal"}
)
_ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.AGENT: _AGENT_SCOPES,
    Role.SUPERVISOR: _AGENT_SCOPES | {"reports:read", "privacy"},
    Role.ADMIN: ALL_SCOPES,
}

# How far `last_used_at` may lag behind the truth.
LAST_USED_GRANULARITY = timedelta(minutes=1)
# Characters of the key kept in clear to tell keys apart in a list (`wlk_` + 8).
SHOWN_PREFIX_LENGTH = len(API_KEY_PREFIX) + 8


def role_scopes(role: Role) -> frozenset[str]:
    """The scopes a session token of an agent with `role` carries."""
    return _ROLE_SCOPES[role]


def effective_scopes(scopes: list[str] | frozenset[str]) -> frozenset[str]:
    """`scopes` as granted: `admin` means all of them; unknown names (a scope since
    withdrawn) grant nothing."""
    granted = frozenset(scopes) & ALL_SCOPES
    return ALL_SCOPES if "admin" in granted else granted


def is_api_key(token: str) -> bool:
    return token.startswith(API_KEY_PREFIX)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    key: str  # the only time it exists in clear
    row: ApiKey


async def create_api_key(
    session: AsyncSession,
    *,
    name: str,
    scopes: list[str],
    created_by: uuid.UUID | None,
    now: datetime,
) -> IssuedKey:
    """A new key. `scopes` must be names from `SCOPES` (the API checks them first)."""
    key = new_token(API_KEY_PREFIX)
    row = ApiKey(
        name=name,
        prefix=key[:SHOWN_PREFIX_LENGTH],
        key_hash=token_hash(key),
        scopes=sorted(set(scopes)),
        created_by=created_by,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return IssuedKey(key=key, row=row)


async def authenticate_api_key(session: AsyncSession, *, token: str, now: datetime) -> ApiKey:
    """The key `token` is, if it is live; records its use (at most once a minute).

    Raises:
        InvalidToken: not a key, unknown, or revoked.
    """
    if not is_api_key(token):
        raise InvalidToken("This is not an API key.")
    row = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == token_hash(token)))
    ).scalar_one_or_none()
    if row is None:
        raise InvalidToken("Unknown API key.")
    if row.revoked_at is not None:
        raise InvalidToken("This API key has been revoked.")
    if row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY:
        # A conditional update: two nodes seeing the same stale value write once between them.
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == row.id,
                (ApiKey.last_used_at.is_(None))
                | (ApiKey.last_used_at <= now - LAST_USED_GRANULARITY),
            )
            .values(last_used_at=now)
        )
        set_committed_value(row, "last_used_at", now)
    return row
