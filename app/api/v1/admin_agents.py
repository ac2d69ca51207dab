"""`/api/v1/agents`: the team, as supervisors read it and admins edit it (docs/api.md#agents).

Also the access every admin route shares (`StaffAgent`, `AdminAgent`: app/api/access.py) and
`refuse()`, which reports a rule only the database can check (a skill that does not exist)
exactly as request validation reports a malformed field.

Routing side effects are part of the change, in the same transaction: whatever can give an
agent room or make them eligible (more capacity, other skills, another role, re-activation)
runs a routing pass, so that a chat already waiting reaches them at once; deactivation first
puts the agent's chats back at the front of the queue and ends their sessions. What those
passes stored is published after the commit (`app.api.publish`). Must not decide routing
itself: `chat.service` and `routing` do.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Depends, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, field_validator
from pydantic.config import JsonDict
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.access import AdminAccess, Principal, Requires
from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.publish import PublisherDep
from app.auth.tokens import hash_password
from app.chat import service as chat_service
from app.chat.service import Outcome
from app.errors import Conflict, NotFound
from app.routing.repository import load_of, lock_agent_load
from app.store.models import Agent, AgentSession, AgentSkill, AgentStatus, Role, Skill

router = APIRouter(prefix="/agents", tags=["agents"])

# Ids of integer rows are 32-bit on PostgreSQL: a larger number is refused as invalid input
# rather than reaching the database, which would refuse it with an error of its own.
MAX_ROW_ID = 2**31 - 1
# The password rule of agents created through the API (the CLI accepts 10 characters).
MIN_PASSWORD_LENGTH = 12
# An agent has a handful of skills; the bound keeps one request from writing thousands of rows.
MAX_AGENT_SKILLS = 100

RowId = Annotated[int, Field(ge=1, le=MAX_ROW_ID)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Proficiency = Annotated[int, Field(ge=1, le=5, description="1 (can handle it) to 5 (expert).")]
Capacity = Annotated[
    int, Field(ge=0, le=100, description="Chats held at once; 0: never routed to.")
]
AgentIdPath = Annotated[uuid.UUID, Path(description="The agent's id.")]


# --- roles -------------------------------------------------------------------------------------


# Reading the team and its settings: supervisors and admins (their sessions), or a key with
# `reports:read`. Changing them: admins, or a key with `admin` (app/api/access.py).
StaffAgent = Annotated[Principal, Depends(Requires("reports:read", staff=True))]
AdminAgent = AdminAccess


def refuse(*problems: tuple[tuple[str | int, ...], str]) -> NoReturn:
    """Answer `422 invalid_request` naming each field, as a malformed body is answered.

    Args:
        problems: `(location, message)` pairs; a location is a path such as
            `("body", "skills", 2, "skill_id")`.
    """
    raise RequestValidationError(
        [{"loc": loc, "msg": message, "type": "value_error"} for loc, message in problems]
    )


def not_null(value: object) -> object:
    """For PATCH fields that may be left out but not cleared (a field validator runs only on
    values that were sent, so an explicit `null` gets here and a missing field does not)."""
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def _drop_null(schema: JsonDict) -> None:
    options = schema.pop("anyOf", None)
    if not isinstance(options, list):
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1 and isinstance(kept[0], dict):
        schema.update(kept[0])
    else:
        schema["anyOf"] = kept


def patch_field(*, description: str | None = None, **constraints: Any) -> Any:
    """A PATCH field that may be left out, or sent with a value, but not sent as null.

    Typed `X | None` (None standing for "not sent"), validated with `not_null`, and shown in
    OpenAPI without the null. (`SkipJsonSchema[None]` would hide it too, but makes the type a
    union that reports each member's error and cannot take constraints such as `ge`.)
    """
    return Field(default=None, description=description, json_schema_extra=_drop_null, **constraints)


async def unknown_skills(session: AsyncSession, skill_ids: Sequence[int]) -> set[int]:
    """Which of `skill_ids` name no skill."""
    if not skill_ids:
        return set()
    found = await session.scalars(select(Skill.id).where(Skill.id.in_(set(skill_ids))))
    return set(skill_ids) - set(found)


# --- errors ------------------------------------------------------------------------------------


class AgentNotFound(NotFound):
    code = "agent_not_found"


class EmailTaken(Conflict):
    code = "email_taken"


class LastAdmin(Conflict):
    code = "last_admin"


# --- bodies ------------------------------------------------------------------------------------


class AgentSkillIn(RequestBody):
    skill_id: RowId
    proficiency: Proficiency = 3


class AgentCreate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "lee@example.com",
                    "name": "Lee Park",
                    "password": "a long passphrase",
                    "role": "agent",
                    "capacity": 4,
                    "skills": [{"skill_id": 1, "proficiency": 4}],
                }
            ]
        }
    )

    email: Annotated[EmailStr, Field(max_length=254, examples=["lee@example.com"])]
    name: Annotated[Name, Field(examples=["Lee Park"], description="Shown to visitors.")]
    password: Annotated[
        str,
        Field(
            min_length=MIN_PASSWORD_LENGTH,
            max_length=1024,
            description=f"At least {MIN_PASSWORD_LENGTH} characters; stored as an Argon2id hash.",
        ),
    ]
    role: Role = Role.AGENT
    capacity: Capacity = 4
    skills: Annotated[list[AgentSkillIn], Field(max_length=MAX_AGENT_SKILLS)] = Field(
        default_factory=list
    )


class AgentUpdate(RequestBody):
    """Only the fields sent are changed."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"role": "supervisor", "capacity": 6}, {"is_active": False}]
        }
    )

    name: Name | None = patch_field()
    role: Role | None = patch_field()
    capacity: Capacity | None = patch_field()
    is_active: bool | None = patch_field(
        description="false deactivates: the agent's chats go back to the queue and their "
        "sessions end. true re-activates (the agent logs in again).",
    )
    avatar_url: Annotated[
        str | None,
        Field(
            max_length=512,
            pattern=r"^https?://\S+$",
            description="An http(s) URL of a picture shown to visitors; null removes it.",
        ),
    ] = None

    _not_null = field_validator("name", "role", "capacity", "is_active")(not_null)


class AgentSkillsIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"skills": [{"skill_id": 1, "proficiency": 5}, {"skill_id": 2, "proficiency": 2}]}
            ]
        }
    )

    skills: Annotated[
        list[AgentSkillIn],
        Field(max_length=MAX_AGENT_SKILLS, description="The agent's whole list of skills."),
    ]


# --- responses ---------------------------------------------------------------------------------


class AgentSkillOut(BaseModel):
    skill_id: int
    slug: str
    proficiency: int = Field(description="1 (can handle it) to 5 (expert).")


class AgentDetail(BaseModel):
    id: uuid.UUID
    email: str = Field(description="Login email, lower-case.")
    name: str
    role: Role
    status: AgentStatus = Field(description="Presence, set by the agent's WebSocket.")
    capacity: int = Field(description="How many chats the agent may hold at once (0-100).")
    load: int = Field(description="Chats the agent holds plus offers awaiting their answer.")
    is_active: bool = Field(description="false: deactivated; cannot log in, never routed to.")
    avatar_url: str | None
    skills: list[AgentSkillOut] = Field(description="By slug.")
    created_at: datetime


async def _details(session: AsyncSession, agents: Sequence[tuple[Agent, int]]) -> list[AgentDetail]:
    skills: dict[uuid.UUID, list[AgentSkillOut]] = {agent.id: [] for agent, _ in agents}
    if skills:
        rows = await session.execute(
            select(AgentSkill.agent_id, AgentSkill.skill_id, Skill.slug, AgentSkill.proficiency)
            .join(Skill, Skill.id == AgentSkill.skill_id)
            .where(AgentSkill.agent_id.in_(list(skills)))
            .order_by(Skill.slug)
        )
        for agent_id, skill_id, slug, level in rows:
            skills[agent_id].append(AgentSkillOut(skill_id=skill_id, slug=slug, proficiency=level))
    return [
        AgentDetail(
            id=agent.id,
            email=agent.email,
            name=agent.name,
            role=agent.role,
            status=agent.status,
            capacity=agent.capacity,
            load=load,
            is_active=agent.is_active,
            avatar_url=agent.avatar_url,
            skills=skills[agent.id],
            created_at=agent.created_at,
        )
        for agent, load in agents
    ]


async def _detail(session: AsyncSession, agent: Agent) -> AgentDetail:
    load = await session.scalar(select(load_of(agent.id)))
    [detail] = await _details(session, [(agent, int(load or 0))])
    return detail


async def _lock_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent:
    # The row lock routing takes before counting an agent's load: a change of capacity or
    # status cannot interleave with a router filling the agent.
    locked = await lock_agent_load(session, agent_id)
    if locked is None:
        raise AgentNotFound("No such agent.", agent_id=str(agent_id))
    return locked[0]


async def _check_skills(session: AsyncSession, skills: Sequence[AgentSkillIn], *at: str) -> None:
    problems: list[tuple[tuple[str | int, ...], str]] = []
    seen: set[int] = set()
    for index, item in enumerate(skills):
        if item.skill_id in seen:
            problems.append(((*at, index, "skill_id"), f"skill {item.skill_id} is listed twice"))
        seen.add(item.skill_id)
    unknown = await unknown_skills(session, [s.skill_id for s in skills])
    problems += [
        ((*at, index, "skill_id"), f"no skill has id {item.skill_id}")
        for index, item in enumerate(skills)
        if item.skill_id in unknown
    ]
    if problems:
        refuse(*problems)


# --- routes ------------------------------------------------------------------------------------


@router.get(
    "",
    summary="List agents",
    description="Every agent, deactivated ones included, by name. Supervisors and admins.",
    responses=responses(401, 403, 503),
)
async def list_agents(_staff: StaffAgent, session: SessionDep) -> list[AgentDetail]:
    rows = await session.execute(select(Agent, load_of(Agent.id)).order_by(Agent.name, Agent.id))
    return await _details(session, [(agent, int(load)) for agent, load in rows])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create an agent",
    description="Creates an agent who can log in at once with this email and password. The "
    "agent is offline until they open a WebSocket. Admins only.",
    responses=responses(401, 403, 409, 422, 503),
)
async def create_agent(body: AgentCreate, _admin: AdminAgent, session: SessionDep) -> AgentDetail:
    email = str(body.email).strip().lower()
    if await session.scalar(select(Agent.id).where(Agent.email == email)) is not None:
        raise EmailTaken("An agent with this email exists already.", email=email)
    await _check_skills(session, body.skills, "body", "skills")
    # Argon2 is deliberately slow (tens of ms): off the event loop, as other requests wait on it.
    password_hash = await asyncio.to_thread(hash_password, body.password)
    agent = Agent(
        email=email,
        name=body.name,
        role=body.role,
        password_hash=password_hash,
        capacity=body.capacity,
    )
    session.add(agent)
    try:
        await session.flush()
    except IntegrityError as exc:  # the same email, created by a concurrent request
        raise EmailTaken("An agent with this email exists already.", email=email) from exc
    session.add_all(
        AgentSkill(agent_id=agent.id, skill_id=s.skill_id, proficiency=s.proficiency)
        for s in body.skills
    )
    await session.flush()
    return await _detail(session, agent)


@router.get(
    "/{agent_id}",
    summary="One agent",
    description="Supervisors and admins.",
    responses=responses(401, 403, 404, 422, 503),
)
async def get_agent(agent_id: AgentIdPath, _staff: StaffAgent, session: SessionDep) -> AgentDetail:
    agent = await session.get(Agent, agent_id)
    if agent is None:
        raise AgentNotFound("No such agent.", agent_id=str(agent_id))
    return await _detail(session, agent)


@router.patch(
    "/{agent_id}",
    summary="Change an agent",
    description="Changes the fields sent. More capacity, another role or re-activation runs a "
    "routing pass at once, so a waiting chat can reach the agent; deactivation puts the "
    "agent's chats back at the front of the queue (`agent.left` with reason "
    "`agent_deactivated`), ends their sessions, and routes those chats to other agents. "
    "The last active admin can be neither demoted nor deactivated. Admins only.",
    responses=responses(401, 403, 404, 409, 422, 503),
)
async def update_agent(
    agent_id: AgentIdPath,
    body: AgentUpdate,
    _admin: AdminAgent,
    session: SessionDep,
    now: NowDep,
    publisher: PublisherDep,
) -> AgentDetail:
    if body.is_active is False:
        # Lock order (docs/architecture.md#invariants): conversations, then offers and
        # transfers, then agents' rows, as accepting an offer or a transfer takes them; so the
        # chats a deactivation takes away are locked before the agent's row.
        await chat_service.lock_chats_of(session, agent_id=agent_id)
    agent = await _lock_agent(session, agent_id)
    sent = body.model_fields_set
    was_admin = agent.role is Role.ADMIN and agent.is_active
    loses_admin = (body.role is not None and body.role is not Role.ADMIN) or (
        body.is_active is False
    )
    if was_admin and loses_admin:
        others = await session.scalar(
            select(func.count())
            .select_from(Agent)
            .where(Agent.role == Role.ADMIN, Agent.is_active.is_(True), Agent.id != agent.id)
        )
        if not others:
            raise LastAdmin(
                "This is the last active admin: make another agent admin first.",
                agent_id=str(agent.id),
            )
    widens = False  # the change may let routing give this agent a chat it could not before
    deactivated = False
    if body.name is not None:
        agent.name = body.name
    if "avatar_url" in sent:
        agent.avatar_url = body.avatar_url
    if body.role is not None and body.role is not agent.role:
        agent.role = body.role  # supervisors qualify under some escalation steps
        widens = True
    if body.capacity is not None and body.capacity != agent.capacity:
        widens = widens or body.capacity > agent.capacity
        agent.capacity = body.capacity
    if body.is_active is not None and body.is_active is not agent.is_active:
        agent.is_active = body.is_active
        deactivated = not body.is_active
        widens = widens or body.is_active
    await session.flush()
    outcome = Outcome()
    if deactivated:
        outcome.merge(
            await chat_service.requeue_agent_chats(
                session, agent_id=agent.id, reason="agent_deactivated", now=now
            )
        )
        await session.execute(
            update(AgentSession)
            .where(AgentSession.agent_id == agent.id, AgentSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
    if widens or deactivated:
        outcome.merge(await chat_service.assign_waiting(session, now=now, offers=publisher.offers))
    publisher.after_commit(outcome)
    return await _detail(session, agent)


@router.put(
    "/{agent_id}/skills",
    summary="Replace an agent's skills",
    description="The list sent becomes the agent's whole list of skills, then a routing pass "
    "runs, so a waiting chat that needs a new skill can reach the agent at once. Chats the "
    "agent holds stay theirs. Admins only.",
    responses=responses(401, 403, 404, 422, 503),
)
async def put_agent_skills(
    agent_id: AgentIdPath,
    body: AgentSkillsIn,
    _admin: AdminAgent,
    session: SessionDep,
    now: NowDep,
    publisher: PublisherDep,
) -> AgentDetail:
    agent = await _lock_agent(session, agent_id)
    await _check_skills(session, body.skills, "body", "skills")
    await session.execute(delete(AgentSkill).where(AgentSkill.agent_id == agent.id))
    session.add_all(
        AgentSkill(agent_id=agent.id, skill_id=s.skill_id, proficiency=s.proficiency)
        for s in body.skills
    )
    await session.flush()
    publisher.after_commit(
        await chat_service.assign_waiting(session, now=now, offers=publisher.offers)
    )
    return await _detail(session, agent)
