"""`/api/v1/api-keys`: keys for other systems, created and revoked by admins
(docs/api.md#api-keys).

A key is shown once, in the answer to its creation; afterwards only its first characters
(`prefix`) identify it. Revoking is immediate and final (a revoked key answers 401 at once, on
every node: keys are checked against the database on each request). The scopes are listed in
`app.auth.keys.SCOPES` and at `GET /api/v1/api-keys/scopes`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal, cast, get_args

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select

from app.api.access import AdminAccess
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.auth import keys as key_service
from app.errors import NotFound
from app.store.models import ApiKey

router = APIRouter(prefix="/api-keys", tags=["api keys"])

Scope = Literal[
    "conversations:read",
    "conversations:write",
    "transcripts:read",
    "transcripts:internal",
    "reports:read",
    "privacy",
    "admin",
]
assert set(get_args(Scope)) == key_service.ALL_SCOPES  # noqa: S101 - one list, checked at import
KeyIdPath = Annotated[uuid.UUID, Path(description="The key's id (not the key).")]
KeyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str = Field(description="The key's first characters, to recognise it.")
    scopes: list[Scope]
    created_by: uuid.UUID | None = Field(description="The admin who created it.")
    created_at: datetime
    last_used_at: datetime | None = Field(
        description="Its latest use, to the minute (written at most once a minute)."
    )
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(
        description="The key itself. Shown this once: store it now (Warmline keeps a hash).",
        examples=["wlk_Xq3…"],
    )


class ApiKeyCreate(RequestBody):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # a misspelt field is an error

    name: KeyName = Field(description="What it is for.", examples=["Data warehouse export"])
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=len(key_service.SCOPES),
        description="What it may do; `admin` grants every scope.",
        examples=[["transcripts:read", "conversations:read"]],
    )


class ApiKeyUpdate(RequestBody):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: KeyName = Field(
        description="A new name (scopes never change: create another key).",
        examples=["BI warehouse (nightly)"],
    )


class ScopeOut(BaseModel):
    scope: Scope
    grants: str


def _out(row: ApiKey) -> ApiKeyOut:
    return ApiKeyOut(
        id=row.id,
        name=row.name,
        prefix=row.prefix,
        scopes=[cast(Scope, s) for s in row.scopes if s in key_service.ALL_SCOPES],
        created_by=row.created_by,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


async def _get(session: SessionDep, key_id: uuid.UUID) -> ApiKey:
    row = await session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyNotFound("No API key has this id.")
    return row


@router.get(
    "/scopes",
    summary="List scopes",
    description="Every scope a key may carry, with what it grants.",
    responses=responses(401, 403, 503),
)
async def list_scopes(_admin: AdminAccess) -> list[ScopeOut]:
    return [ScopeOut(scope=cast(Scope, s), grants=g) for s, g in key_service.SCOPES.items()]


@router.get(
    "",
    summary="List API keys",
    description="Every key, newest first; revoked keys too unless `active=true`.",
    responses=responses(401, 403, 422, 503),
)
async def list_keys(
    _admin: AdminAccess,
    session: SessionDep,
    active: Annotated[bool, Query(description="Only keys not revoked.")] = False,
) -> list[ApiKeyOut]:
    query = select(ApiKey).order_by(ApiKey.created_at.desc(), ApiKey.id)
    if active:
        query = query.where(ApiKey.revoked_at.is_(None))
    return [_out(row) for row in (await session.scalars(query)).all()]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an API key",
    description="A new key with the scopes given. The answer is the only time the key is shown.",
    responses=responses(401, 403, 422, 503),
)
async def create_key(
    body: ApiKeyCreate, admin: AdminAccess, session: SessionDep, now: NowDep
) -> ApiKeyCreated:
    issued = await key_service.create_api_key(
        session, name=body.name, scopes=list(body.scopes), created_by=admin.agent_id, now=now
    )
    return ApiKeyCreated(**_out(issued.row).model_dump(), key=issued.key)


@router.get(
    "/{key_id}",
    summary="Get an API key",
    responses=responses(401, 403, 404, 422, 503),
)
async def get_key(key_id: KeyIdPath, _admin: AdminAccess, session: SessionDep) -> ApiKeyOut:
    return _out(await _get(session, key_id))


@router.patch(
    "/{key_id}",
    summary="Rename an API key",
    responses=responses(401, 403, 404, 422, 503),
)
async def rename_key(
    key_id: KeyIdPath, body: ApiKeyUpdate, _admin: AdminAccess, session: SessionDep
) -> ApiKeyOut:
    row = await _get(session, key_id)
    row.name = body.name
    await session.flush()
    return _out(row)


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an API key",
    description="From now on the key answers 401. Revoking a revoked key changes nothing. The "
    "key stays listed (with `revoked_at`) for the record.",
    responses=responses(401, 403, 404, 422, 503),
)
async def revoke_key(
    key_id: KeyIdPath, _admin: AdminAccess, session: SessionDep, now: NowDep
) -> None:
    row = await _get(session, key_id)
    if row.revoked_at is None:
        row.revoked_at = now
        await session.flush()
