"""`/api/v1/canned-responses` and `/api/v1/admin/canned-responses`: saved replies agents insert
with `/shortcut` (docs/api.md#canned-responses).

Any agent lists them and renders one for a conversation they may read; supervisors read the
admin list; only admins write. Must not hold the rules: listing order, variables and rendering
are `chat.canned` and `chat.templates`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, status
from pydantic import BaseModel, Field, StringConstraints, field_validator

from app.api.body import RequestBody
from app.api.deps import CurrentAgent, NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.api.v1.admin_agents import AdminAgent, StaffAgent, not_null, patch_field, refuse
from app.api.v1.conversations import readable_conversation
from app.chat import canned
from app.chat.canned import CannedView
from app.chat.templates import VARIABLES
from app.config import Settings

router = APIRouter(prefix="/canned-responses", tags=["canned responses"])
admin_router = APIRouter(prefix="/admin/canned-responses", tags=["canned responses"])

# A console's `/` menu shows a screenful; the cap keeps one request bounded.
DEFAULT_LIMIT = 100
MAX_LIMIT = 500

Shortcut = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=32),
    Field(
        description="What agents type after `/`: lower-case letters, digits, `_` and `-`; unique.",
        examples=["refund"],
    ),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=128),
    Field(examples=["Refund on its way"]),
]
Text = Annotated[
    str,
    StringConstraints(min_length=1),
    Field(
        description="The reply, at most `WARMLINE_MAX_MESSAGE_CHARS` (4000) characters; may "
        "use the variables " + ", ".join(f"`{{{{{v}}}}}`" for v in VARIABLES) + ".",
        examples=["Hi {{visitor.first_name}}, your refund is on its way. {{agent.first_name}}"],
    ),
]
SkillSlug = Annotated[
    str | None,
    Field(
        description="The slug of the skill it is for (offered first in chats needing it and "
        "to agents with it); null: for everyone.",
        examples=["billing"],
    ),
]
CannedIdPath = Annotated[uuid.UUID, Path(description="The canned response's id.")]


class SkillOut(BaseModel):
    id: int
    slug: str
    name: str


class CannedOut(BaseModel):
    id: uuid.UUID
    shortcut: str
    title: str
    text: str = Field(description="As stored, variables unfilled.")
    skill: SkillOut | None
    updated_at: datetime


class CannedCreate(RequestBody):
    shortcut: Shortcut
    title: Title
    text: Text
    skill: SkillSlug = None


class CannedUpdate(RequestBody):
    """Only the fields sent are changed; `skill: null` makes it for everyone."""

    shortcut: Shortcut | None = patch_field()
    title: Title | None = patch_field()
    text: Text | None = patch_field()
    skill: SkillSlug = None

    _not_null = field_validator("shortcut", "title", "text")(not_null)


class Rendered(BaseModel):
    text: str = Field(description="The reply with every variable filled in for this chat.")


def _out(view: CannedView) -> CannedOut:
    skill = view.skill
    return CannedOut(
        id=view.row.id,
        shortcut=view.row.shortcut,
        title=view.row.title,
        text=view.row.text,
        skill=None if skill is None else SkillOut(id=skill.id, slug=skill.slug, name=skill.name),
        updated_at=view.row.updated_at,
    )


def _check_length(text: str | None, settings: Settings) -> None:
    limit = settings.max_message_chars
    if text is not None and len(text) > limit:
        refuse((("body", "text"), f"at most {limit} characters: the longest message"))


async def _skill_id(session: SessionDep, slug: str | None) -> int | None:
    if slug is None:
        return None
    skill_id = await canned.skill_id_of(session, slug)
    if skill_id is None:
        refuse((("body", "skill"), f"no skill has slug {slug!r}"))
    return skill_id


@router.get(
    "",
    summary="Canned responses to pick from",
    description="Those of the chat's skill (`skill`) first, then those of the agent's own "
    "skills, then the rest; by shortcut within each group. Any agent.",
    responses=responses(401, 403, 422, 503),
)
async def list_canned(
    agent: CurrentAgent,
    session: SessionDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200,
            description="Keep those whose shortcut starts with it (a leading `/` is ignored) "
            "or whose title or text contains it, ignoring case.",
        ),
    ] = None,
    skill: Annotated[
        str | None,
        Query(max_length=64, description="The slug of the chat's skill: its replies first."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> list[CannedOut]:
    views = await canned.offered(
        session, agent_id=agent.id, skill_slug=skill, q=q or None, limit=limit
    )
    return [_out(view) for view in views]


@router.get(
    "/{canned_id}/render",
    summary="A canned response filled in for a conversation",
    description="Variables are filled from the conversation, its visitor and skill, and the "
    "agent asking. An agent may render for a conversation they may read (they hold or held "
    "it, or are offered its transfer); supervisors and admins for any.",
    responses=responses(401, 403, 404, 422, 503),
)
async def render_canned(
    canned_id: CannedIdPath,
    conversation_id: Annotated[uuid.UUID, Query(description="The conversation to fill it for.")],
    agent: CurrentAgent,
    session: SessionDep,
) -> Rendered:
    conversation = await readable_conversation(session, conversation_id, agent)
    text = await canned.render(
        session, canned_id=canned_id, conversation=conversation, agent_name=agent.name
    )
    return Rendered(text=text)


@admin_router.get(
    "",
    summary="Every canned response",
    description="By shortcut. Supervisors and admins.",
    responses=responses(401, 403, 503),
)
async def admin_list(_staff: StaffAgent, session: SessionDep) -> list[CannedOut]:
    return [_out(view) for view in await canned.every(session)]


@admin_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a canned response",
    description="Admins only.",
    responses=responses(401, 403, 409, 422, 503),
)
async def admin_create(
    body: CannedCreate,
    admin: AdminAgent,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> CannedOut:
    _check_length(body.text, settings)
    view = await canned.create(
        session,
        shortcut=body.shortcut,
        title=body.title,
        text=body.text,
        skill_id=await _skill_id(session, body.skill),
        by=admin.agent_id,
        now=now,
    )
    return _out(view)


@admin_router.get(
    "/{canned_id}",
    summary="One canned response",
    description="Supervisors and admins.",
    responses=responses(401, 403, 404, 422, 503),
)
async def admin_get(canned_id: CannedIdPath, _staff: StaffAgent, session: SessionDep) -> CannedOut:
    return _out(await canned.get_or_raise(session, canned_id))


@admin_router.patch(
    "/{canned_id}",
    summary="Change a canned response",
    description="Changes the fields sent. Admins only.",
    responses=responses(401, 403, 404, 409, 422, 503),
)
async def admin_update(
    canned_id: CannedIdPath,
    body: CannedUpdate,
    _admin: AdminAgent,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> CannedOut:
    _check_length(body.text, settings)
    sent = body.model_fields_set
    view = await canned.update(
        session,
        canned_id,
        shortcut=canned.KEEP if body.shortcut is None else body.shortcut,
        title=canned.KEEP if body.title is None else body.title,
        text=canned.KEEP if body.text is None else body.text,
        skill_id=await _skill_id(session, body.skill) if "skill" in sent else canned.KEEP,
        now=now,
    )
    return _out(view)


@admin_router.delete(
    "/{canned_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a canned response",
    description="Admins only.",
    responses=responses(401, 403, 404, 422, 503),
)
async def admin_delete(canned_id: CannedIdPath, _admin: AdminAgent, session: SessionDep) -> None:
    await canned.delete(session, canned_id)
