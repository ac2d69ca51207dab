"""Canned responses: saved replies agents insert with `/shortcut`, which admins manage.

Owns the `canned_responses` rows: the list an agent picks from (the chat's skill and their own
skills first), the admin writes, and a reply rendered for one conversation with its variables
filled (`chat.templates`). A text naming a variable `render` cannot fill is refused when saved.
Must not check roles or conversation rights: the caller (the API) decides who may write and
who may read the conversation a reply is rendered for. Reference: docs/api.md#canned-responses.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import ColumnElement, case, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import templates
from app.chat.errors import CannedResponseNotFound, ShortcutTaken, UnknownVariable
from app.store.models import AgentSkill, CannedResponse, Conversation, Skill, Visitor


class _Keep(enum.Enum):
    """The value of an update argument that was not given."""

    KEEP = "keep"


KEEP: Final = _Keep.KEEP


@dataclass(frozen=True, slots=True)
class SkillRef:
    id: int
    slug: str
    name: str


@dataclass(frozen=True, slots=True)
class CannedView:
    """A canned response with the skill it is for (None: for everyone)."""

    row: CannedResponse
    skill: SkillRef | None


def _view(row: CannedResponse, skill: Skill | None) -> CannedView:
    return CannedView(row, None if skill is None else SkillRef(skill.id, skill.slug, skill.name))


async def skill_id_of(session: AsyncSession, slug: str) -> int | None:
    """The id of the skill with this slug, or None."""
    found: int | None = await session.scalar(select(Skill.id).where(Skill.slug == slug))
    return found


async def offered(
    session: AsyncSession,
    *,
    agent_id: uuid.UUID,
    skill_slug: str | None,
    q: str | None,
    limit: int,
) -> list[CannedView]:
    """The canned responses an agent picks from, best first: those of the chat's skill
    (`skill_slug`), then those of the agent's own skills, then the rest; by shortcut within
    each group.

    Args:
        q: keeps those whose shortcut starts with it (a leading `/` ignored) or whose title or
            text contains it, ignoring case (on SQLite, case is ignored for ASCII letters only).
        skill_slug: the chat's skill; an unknown slug puts nothing first.
    """
    mine = select(AgentSkill.skill_id).where(AgentSkill.agent_id == agent_id)
    groups: list[tuple[ColumnElement[bool], int]] = [(CannedResponse.skill_id.in_(mine), 1)]
    if skill_slug:
        chat_skill = select(Skill.id).where(Skill.slug == skill_slug).scalar_subquery()
        groups.insert(0, (CannedResponse.skill_id == chat_skill, 0))
    query = select(CannedResponse, Skill).outerjoin(Skill, Skill.id == CannedResponse.skill_id)
    if q:
        words = q.strip()
        prefix = words.removeprefix("/").lower()
        query = query.where(
            or_(
                CannedResponse.shortcut.startswith(prefix, autoescape=True),
                CannedResponse.title.icontains(words, autoescape=True),
                CannedResponse.text.icontains(words, autoescape=True),
            )
        )
    query = query.order_by(case(*groups, else_=2), CannedResponse.shortcut).limit(limit)
    return [_view(row, skill) for row, skill in (await session.execute(query)).all()]


async def every(session: AsyncSession) -> list[CannedView]:
    """Every canned response, by shortcut (the admins' list)."""
    rows = await session.execute(
        select(CannedResponse, Skill)
        .outerjoin(Skill, Skill.id == CannedResponse.skill_id)
        .order_by(CannedResponse.shortcut)
    )
    return [_view(row, skill) for row, skill in rows.all()]


async def get_or_raise(
    session: AsyncSession, canned_id: uuid.UUID, *, lock: bool = False
) -> CannedView:
    """The canned response with its skill.

    Raises:
        CannedResponseNotFound: no canned response has this id.
    """
    query = (
        select(CannedResponse, Skill)
        .outerjoin(Skill, Skill.id == CannedResponse.skill_id)
        .where(CannedResponse.id == canned_id)
    )
    if lock:
        query = query.with_for_update(of=CannedResponse).execution_options(populate_existing=True)
    found = (await session.execute(query)).first()
    if found is None:
        raise CannedResponseNotFound("No such canned response.", canned_response_id=str(canned_id))
    return _view(*found)


def check_variables(text: str) -> None:
    """Raises:
    UnknownVariable: `text` names a variable `render` cannot fill (`variables` lists them,
        `known` the ones there are).
    """
    unknown = templates.unknown_variables(text)
    if unknown:
        raise UnknownVariable(
            f"Unknown variable {{{{{unknown[0]}}}}}; the variables are "
            + ", ".join(f"{{{{{name}}}}}" for name in templates.VARIABLES)
            + ".",
            variables=unknown,
            known=list(templates.VARIABLES),
        )


async def _shortcut_free(
    session: AsyncSession, shortcut: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(CannedResponse.id).where(CannedResponse.shortcut == shortcut)
    if other_than is not None:
        query = query.where(CannedResponse.id != other_than)
    if await session.scalar(query) is not None:
        raise ShortcutTaken("Another canned response has this shortcut.", shortcut=shortcut)


async def _flush(session: AsyncSession, shortcut: str) -> None:
    try:
        await session.flush()
    except IntegrityError as exc:  # the same shortcut, stored by a concurrent request
        raise ShortcutTaken(
            "Another canned response has this shortcut.", shortcut=shortcut
        ) from exc


async def create(
    session: AsyncSession,
    *,
    shortcut: str,
    title: str,
    text: str,
    skill_id: int | None,
    by: uuid.UUID | None,
    now: datetime,
) -> CannedView:
    """Store a new canned response (`skill_id` must name a skill, or be None).

    Raises:
        UnknownVariable, ShortcutTaken.
    """
    check_variables(text)
    await _shortcut_free(session, shortcut)
    row = CannedResponse(
        shortcut=shortcut,
        title=title,
        text=text,
        skill_id=skill_id,
        created_by=by,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await _flush(session, shortcut)
    return await get_or_raise(session, row.id)


async def update(
    session: AsyncSession,
    canned_id: uuid.UUID,
    *,
    shortcut: str | _Keep = KEEP,
    title: str | _Keep = KEEP,
    text: str | _Keep = KEEP,
    skill_id: int | _Keep | None = KEEP,
    now: datetime,
) -> CannedView:
    """Change the fields given (`KEEP`: left as they are).

    Raises:
        CannedResponseNotFound, UnknownVariable, ShortcutTaken.
    """
    row = (await get_or_raise(session, canned_id, lock=True)).row
    if not isinstance(text, _Keep):
        check_variables(text)
        row.text = text
    if not isinstance(shortcut, _Keep) and shortcut != row.shortcut:
        await _shortcut_free(session, shortcut, other_than=row.id)
        row.shortcut = shortcut
    if not isinstance(title, _Keep):
        row.title = title
    if not isinstance(skill_id, _Keep):
        row.skill_id = skill_id
    row.updated_at = now
    await _flush(session, row.shortcut)
    return await get_or_raise(session, row.id)


async def delete(session: AsyncSession, canned_id: uuid.UUID) -> None:
    """Raises:
    CannedResponseNotFound.
    """
    row = (await get_or_raise(session, canned_id, lock=True)).row
    await session.delete(row)
    await session.flush()


async def render(
    session: AsyncSession, *, canned_id: uuid.UUID, conversation: Conversation, agent_name: str
) -> str:
    """The canned response's text for `conversation`, as `agent_name` would send it.

    The caller has checked that this agent may read the conversation.

    Raises:
        CannedResponseNotFound.
    """
    row = (await get_or_raise(session, canned_id)).row
    visitor = await session.get(Visitor, conversation.visitor_id)
    skill = (
        None if conversation.skill_id is None else await session.get(Skill, conversation.skill_id)
    )
    context = templates.RenderContext(
        visitor_name=None if visitor is None else visitor.name,
        visitor_email=None if visitor is None else visitor.email,
        agent_name=agent_name,
        conversation_id=str(conversation.id),
        skill_name=None if skill is None else skill.name,
    )
    return templates.render(row.text, context.values())
