"""`/api/v1/skills`: the team's skills, how chats are recognised as needing one, and their
business hours (docs/api.md#skills).

Any agent may read skills; only admins change them. Business hours are validated and stored in
the canonical shape of `routing.hours`, and every skill answers whether its desk is open now.
Must not decide routing: deleting a skill hands its waiting chats to a routing pass, which does.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)
from pydantic.config import JsonDict
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.access import ConversationsRead
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.publish import PublisherDep
from app.api.v1.admin_agents import MAX_ROW_ID, AdminAgent, Name, not_null, patch_field
from app.chat import service as chat_service
from app.errors import Conflict, NotFound
from app.routing import service as routing_service
from app.routing.hours import HoursError, hours_to_json, is_open, next_opening, parse_hours
from app.routing.sla import DEFAULT_TARGET_PERCENT, DEFAULT_TARGET_SECONDS
from app.store.models import Skill

log = logging.getLogger(__name__)
router = APIRouter(prefix="/skills", tags=["skills"])

# Matched against a first message as whole words; a team's topics need no more than this many.
MAX_KEYWORDS = 200
MAX_PAGE_PATTERNS = 50
_WORD = re.compile(r"\w")

HOURS_EXAMPLE: JsonDict = {
    "timezone": "Europe/Paris",
    "weekly": {
        "mon": [["09:00", "12:30"], ["13:30", "18:00"]],
        "tue": [["09:00", "18:00"]],
        "wed": [["09:00", "18:00"]],
        "thu": [["09:00", "18:00"]],
        "fri": [["09:00", "17:00"]],
        "sat": [],
        "sun": [],
    },
    "holidays": ["2026-12-25"],
}


def _has_word(keyword: str) -> str:
    if not _WORD.search(keyword):
        raise ValueError("a keyword needs a letter or a digit: it is matched as whole words")
    return keyword


def _canonical_hours(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """The canonical shape of valid hours (`HoursError` is a `ValueError`: a 422 naming it)."""
    return None if value is None else hours_to_json(parse_hours(value))


Slug = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9-]+$", min_length=1, max_length=64),
    Field(description="Lower-case letters, digits and '-'; unique.", examples=["billing"]),
]
Keyword = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_has_word),
]
PagePattern = Annotated[str, StringConstraints(pattern=r"^/", min_length=1, max_length=256)]
Keywords = Annotated[
    list[Keyword],
    Field(
        max_length=MAX_KEYWORDS,
        description="Words and phrases that, in a first message, mean this skill is needed "
        "(case-insensitive, whole words).",
        examples=[["invoice", "refund", "credit card"]],
    ),
]
PagePatterns = Annotated[
    list[PagePattern],
    Field(
        max_length=MAX_PAGE_PATTERNS,
        description="Globs on the path of the page a chat starts on; each starts with '/'.",
        examples=[["/billing*", "/account/invoices*"]],
    ),
]
Hours = Annotated[
    dict[str, Any] | None,
    Field(
        description="Weekly opening hours in a time zone, with holidays; null: always open.",
        examples=[HOURS_EXAMPLE],
    ),
]
SkillIdPath = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="The skill's id.")]
SlaSeconds = Annotated[
    int,
    Field(
        ge=5,
        le=86_400,
        description="The first agent reply should come within this many seconds of the "
        "customer's first message (5 to 86400); the supervisor view judges each queue by it.",
    ),
]
SlaPercent = Annotated[
    int, Field(ge=1, le=100, description="For this share of chats, in per cent (1 to 100).")
]


class SkillNotFound(NotFound):
    code = "skill_not_found"


class SlugTaken(Conflict):
    code = "slug_taken"


class SkillCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "slug": "billing",
                    "name": "Billing",
                    "keywords": ["invoice", "refund"],
                    "page_patterns": ["/billing*"],
                    "business_hours": HOURS_EXAMPLE,
                    "sla_first_response_seconds": 60,
                    "sla_target_percent": 80,
                }
            ]
        }
    )

    slug: Slug
    name: Annotated[Name, Field(examples=["Billing"])]
    keywords: Keywords = Field(default_factory=list)
    page_patterns: PagePatterns = Field(default_factory=list)
    business_hours: Hours = None
    sla_first_response_seconds: SlaSeconds = DEFAULT_TARGET_SECONDS
    sla_target_percent: SlaPercent = DEFAULT_TARGET_PERCENT

    _hours = field_validator("business_hours")(_canonical_hours)


class SkillUpdate(RequestBody):
    """Only the fields sent are changed; `business_hours: null` makes the skill always open."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"name": "Billing and refunds", "business_hours": None}]}
    )

    slug: Slug | None = patch_field()
    name: Name | None = patch_field()
    keywords: Keywords | None = patch_field()
    page_patterns: PagePatterns | None = patch_field()
    business_hours: Hours = None
    sla_first_response_seconds: SlaSeconds | None = patch_field()
    sla_target_percent: SlaPercent | None = patch_field()

    _not_null = field_validator(
        "slug",
        "name",
        "keywords",
        "page_patterns",
        "sla_first_response_seconds",
        "sla_target_percent",
    )(not_null)
    _hours = field_validator("business_hours")(_canonical_hours)


class SkillOut(BaseModel):
    id: int
    slug: str
    name: str
    keywords: list[str]
    page_patterns: list[str]
    business_hours: dict[str, Any] | None = Field(
        description="As stored: every day present, intervals sorted, a closing midnight as "
        "'24:00'; null: always open."
    )
    open_now: bool = Field(description="Whether the skill's desk is open at this moment.")
    next_opening: datetime | None = Field(
        description="When the desk next opens: now when it is open, null when it never opens "
        "within a year (no opening hours, or every open day a holiday)."
    )
    sla_first_response_seconds: int = Field(
        description="The first-reply target: within this many seconds."
    )
    sla_target_percent: int = Field(description="For this share of chats, in per cent.")
    created_at: datetime


def skill_out(skill: Skill, now: datetime) -> SkillOut:
    hours = None
    if skill.business_hours is not None:
        try:
            hours = parse_hours(skill.business_hours)
        except HoursError:
            # Validated on the way in; a time zone since removed from the system's database
            # makes routing treat the desk as open, and this answer says the same.
            log.exception("skill %s has unreadable business hours", skill.id)
    return SkillOut(
        id=skill.id,
        slug=skill.slug,
        name=skill.name,
        keywords=list(skill.keywords or []),
        page_patterns=list(skill.page_patterns or []),
        business_hours=skill.business_hours,
        open_now=is_open(hours, now),
        next_opening=next_opening(hours, now),
        sla_first_response_seconds=skill.sla_first_response_seconds,
        sla_target_percent=skill.sla_target_percent,
        created_at=skill.created_at,
    )


async def get_skill_or_raise(session: AsyncSession, skill_id: int, *, lock: bool = False) -> Skill:
    query = select(Skill).where(Skill.id == skill_id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    skill = await session.scalar(query)
    if skill is None:
        raise SkillNotFound("No such skill.", skill_id=skill_id)
    return skill


async def _slug_free(session: AsyncSession, slug: str, *, other_than: int | None = None) -> None:
    query = select(Skill.id).where(Skill.slug == slug)
    if other_than is not None:
        query = query.where(Skill.id != other_than)
    if await session.scalar(query) is not None:
        raise SlugTaken("Another skill has this slug.", slug=slug)


async def _flush(session: AsyncSession, slug: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # the same slug, stored by a concurrent request
        raise SlugTaken("Another skill has this slug.", slug=slug) from exc


@router.get(
    "",
    summary="List skills",
    description="Every skill, by slug. Any agent.",
    responses=responses(401, 503),
)
async def list_skills(
    _reader: ConversationsRead, session: SessionDep, now: NowDep
) -> list[SkillOut]:
    skills = await session.scalars(select(Skill).order_by(Skill.slug))
    return [skill_out(skill, now) for skill in skills]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a skill",
    description="Chats opened from now on are recognised as needing it by its keywords and page "
    "patterns; agents get it with `PUT /agents/{id}/skills`. Admins only.",
    responses=responses(401, 403, 409, 422, 503),
)
async def create_skill(
    body: SkillCreate, _admin: AdminAgent, session: SessionDep, now: NowDep
) -> SkillOut:
    await _slug_free(session, body.slug)
    skill = Skill(
        slug=body.slug,
        name=body.name,
        keywords=body.keywords,
        page_patterns=body.page_patterns,
        business_hours=body.business_hours,
        sla_first_response_seconds=body.sla_first_response_seconds,
        sla_target_percent=body.sla_target_percent,
        created_at=now,
    )
    session.add(skill)
    await _flush(session, body.slug)
    return skill_out(skill, now)


@router.get(
    "/{skill_id}",
    summary="One skill",
    description="Any agent.",
    responses=responses(401, 404, 422, 503),
)
async def get_skill(
    skill_id: SkillIdPath, _reader: ConversationsRead, session: SessionDep, now: NowDep
) -> SkillOut:
    return skill_out(await get_skill_or_raise(session, skill_id), now)


@router.patch(
    "/{skill_id}",
    summary="Change a skill",
    description="Changes the fields sent. New keywords and page patterns apply to chats opened "
    "from then on; chats already open keep the skill they were given. Admins only.",
    responses=responses(401, 403, 404, 409, 422, 503),
)
async def update_skill(
    skill_id: SkillIdPath, body: SkillUpdate, _admin: AdminAgent, session: SessionDep, now: NowDep
) -> SkillOut:
    skill = await get_skill_or_raise(session, skill_id, lock=True)
    if body.slug is not None and body.slug != skill.slug:
        await _slug_free(session, body.slug, other_than=skill.id)
        skill.slug = body.slug
    if body.name is not None:
        skill.name = body.name
    if body.keywords is not None:
        skill.keywords = body.keywords
    if body.page_patterns is not None:
        skill.page_patterns = body.page_patterns
    if "business_hours" in body.model_fields_set:
        skill.business_hours = body.business_hours
    if body.sla_first_response_seconds is not None:
        skill.sla_first_response_seconds = body.sla_first_response_seconds
    if body.sla_target_percent is not None:
        skill.sla_target_percent = body.sla_target_percent
    await _flush(session, skill.slug)
    return skill_out(skill, now)


@router.delete(
    "/{skill_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a skill",
    description="Agents lose the skill; its escalation steps go, and so does it from other "
    "steps' related skills. Conversations that needed it keep their history but need no "
    "skill any more, so a routing pass runs at once and any free agent may take those still "
    "waiting. Admins only.",
    responses=responses(401, 403, 404, 422, 503),
)
async def delete_skill(
    skill_id: SkillIdPath,
    _admin: AdminAgent,
    session: SessionDep,
    now: NowDep,
    publisher: PublisherDep,
) -> None:
    skill = await get_skill_or_raise(session, skill_id, lock=True)
    # The database clears the references (agent skills, steps, related skills: cascade;
    # conversations and transfers: set null).
    await session.delete(skill)
    await session.flush()
    await routing_service.policy_changed(session, now=now)
    publisher.after_commit(
        await chat_service.assign_waiting(session, now=now, offers=publisher.offers)
    )
