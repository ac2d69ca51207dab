"""`/api/v1/routing/policy` and the escalation steps, per skill and by default
(docs/api.md#routing-policy, docs/api.md#escalation-steps).

Supervisors and admins read them; admins change them. Every change calls
`routing.service.policy_changed()`, which drops the policy cached by the unit of work and has
every queued chat look again at the escalation step in force. Must not decide routing: the
planner reads what is stored here (`routing.repository.load_policy()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.body import RequestBody
from app.api.deps import NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.api.v1.admin_agents import (
    AdminAgent,
    RowId,
    StaffAgent,
    not_null,
    patch_field,
    refuse,
    unknown_skills,
)
from app.api.v1.admin_skills import SkillIdPath, get_skill_or_raise
from app.config import Settings
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.store.models import EscalationStepRow, EscalationStepSkill, OfferMode, RoutingSettings

router = APIRouter(tags=["routing"])

# A skill's search widens a few times at most; ten steps is far past any real workflow.
MAX_STEPS = 10
MAX_RELATED_SKILLS = 50
DAY = 86_400

Problems = list[tuple[tuple[str | int, ...], str]]


# --- escalation steps --------------------------------------------------------------------------


class StepIn(RequestBody):
    name: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
        Field(description="Unique within the list (ignoring case); shown in routing reasons."),
    ]
    after_seconds: int = Field(
        ge=0, le=DAY, description="How long a chat must have waited for this step to apply."
    )
    min_proficiency: int = Field(
        default=1,
        ge=1,
        le=5,
        description="The lowest level accepted, in the skill or a related one.",
    )
    related_skill_ids: Annotated[
        list[RowId],
        Field(
            max_length=MAX_RELATED_SKILLS,
            description="Other skills that also qualify an agent, at `min_proficiency` or above.",
        ),
    ] = Field(default_factory=list)
    include_supervisors: bool = Field(
        default=False, description="Supervisors and admins qualify whatever their skills."
    )


class EscalationIn(RequestBody):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "steps": [
                        {"name": "Any level", "after_seconds": 120, "min_proficiency": 1},
                        {
                            "name": "Sales helps",
                            "after_seconds": 300,
                            "related_skill_ids": [2],
                            "include_supervisors": True,
                        },
                    ]
                }
            ]
        }
    )

    steps: Annotated[
        list[StepIn],
        Field(
            max_length=MAX_STEPS,
            description="The whole list, replacing the stored one; the step in force is the "
            "last whose `after_seconds` a chat has waited (steps with the same `after_seconds` "
            "keep this order).",
        ),
    ]


class StepOut(BaseModel):
    id: int
    position: int = Field(description="Index in the list as it was sent.")
    name: str
    after_seconds: int
    min_proficiency: int
    related_skill_ids: list[int] = Field(description="Ascending.")
    include_supervisors: bool


class EscalationOut(BaseModel):
    skill_id: int | None = Field(description="The skill; null for the default steps.")
    steps: list[StepOut]
    uses_default_steps: bool = Field(
        description="The skill has no steps of its own, so the default steps "
        "(`GET /routing/escalation`) apply to it. Always false for the default steps."
    )


async def _steps_out(session: AsyncSession, skill_id: int | None) -> EscalationOut:
    owner = (
        EscalationStepRow.skill_id.is_(None)
        if skill_id is None
        else EscalationStepRow.skill_id == skill_id
    )
    rows = list(
        await session.scalars(
            select(EscalationStepRow)
            .where(owner)
            .order_by(EscalationStepRow.position, EscalationStepRow.id)
        )
    )
    related: dict[int, list[int]] = {row.id: [] for row in rows}
    if rows:
        for step_id, related_id in await session.execute(
            select(EscalationStepSkill.step_id, EscalationStepSkill.skill_id)
            .where(EscalationStepSkill.step_id.in_(list(related)))
            .order_by(EscalationStepSkill.skill_id)
        ):
            related[step_id].append(related_id)
    return EscalationOut(
        skill_id=skill_id,
        steps=[
            StepOut(
                id=row.id,
                position=row.position,
                name=row.name,
                after_seconds=row.after_seconds,
                min_proficiency=row.min_proficiency,
                related_skill_ids=related[row.id],
                include_supervisors=row.include_supervisors,
            )
            for row in rows
        ],
        uses_default_steps=skill_id is not None and not rows,
    )


async def _check_steps(
    session: AsyncSession, steps: Sequence[StepIn], skill_id: int | None
) -> None:
    problems: Problems = []
    names: dict[str, int] = {}
    for index, step in enumerate(steps):
        first = names.setdefault(step.name.casefold(), index)
        if first != index:
            problems.append(
                (("body", "steps", index, "name"), f"step {first} has this name already")
            )
        if len(set(step.related_skill_ids)) != len(step.related_skill_ids):
            problems.append(
                (("body", "steps", index, "related_skill_ids"), "a skill is listed twice")
            )
        if skill_id is not None and skill_id in step.related_skill_ids:
            problems.append(
                (
                    ("body", "steps", index, "related_skill_ids"),
                    "a skill is not related to itself: its agents qualify by it already",
                )
            )
    unknown = await unknown_skills(session, [s for step in steps for s in step.related_skill_ids])
    for index, step in enumerate(steps):
        missing = sorted(set(step.related_skill_ids) & unknown)
        if missing:
            problems.append(
                (
                    ("body", "steps", index, "related_skill_ids"),
                    f"no skill has id {', '.join(map(str, missing))}",
                )
            )
    if problems:
        refuse(*problems)


async def _replace_steps(
    session: AsyncSession, skill_id: int | None, steps: Sequence[StepIn], *, now: datetime
) -> EscalationOut:
    """Store `steps` as the whole list of the skill (or the defaults, for None).

    The caller holds the row that serialises these writes (the skill's, or the routing
    settings' for the defaults): two replacements at once would otherwise leave both lists.
    """
    await _check_steps(session, steps, skill_id)
    owner = (
        EscalationStepRow.skill_id.is_(None)
        if skill_id is None
        else EscalationStepRow.skill_id == skill_id
    )
    # Related skills go with their steps (ON DELETE CASCADE); conversations that were at one
    # of these steps lose it (SET NULL) and `policy_changed` has them re-evaluated.
    await session.execute(delete(EscalationStepRow).where(owner))
    rows = [
        EscalationStepRow(
            skill_id=skill_id,
            position=position,
            name=step.name,
            after_seconds=step.after_seconds,
            min_proficiency=step.min_proficiency,
            include_supervisors=step.include_supervisors,
        )
        for position, step in enumerate(steps)
    ]
    session.add_all(rows)
    await session.flush()
    session.add_all(
        EscalationStepSkill(step_id=row.id, skill_id=related)
        for row, step in zip(rows, steps, strict=True)
        for related in step.related_skill_ids
    )
    await session.flush()
    await routing_service.policy_changed(session, now=now)
    return await _steps_out(session, skill_id)


async def _lock_settings(session: AsyncSession) -> RoutingSettings:
    await routing_repository.routing_settings(session)  # creates the row if it is missing
    row = await session.scalar(
        select(RoutingSettings)
        .where(RoutingSettings.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # noqa: S101 - just created if it was missing
    return row


@router.get(
    "/skills/{skill_id}/escalation",
    summary="A skill's escalation steps",
    description="Who may take a chat of this skill as it waits longer. Supervisors and admins.",
    responses=responses(401, 403, 404, 422, 503),
)
async def get_skill_escalation(
    skill_id: SkillIdPath, _staff: StaffAgent, session: SessionDep
) -> EscalationOut:
    await get_skill_or_raise(session, skill_id)
    return await _steps_out(session, skill_id)


@router.put(
    "/skills/{skill_id}/escalation",
    summary="Replace a skill's escalation steps",
    description="The list sent becomes the skill's whole list; an empty list removes its own "
    "steps, so the default steps apply to it. Queued chats of the skill move to the step now "
    "in force. Admins only.",
    responses=responses(401, 403, 404, 422, 503),
)
async def put_skill_escalation(
    skill_id: SkillIdPath, body: EscalationIn, _admin: AdminAgent, session: SessionDep, now: NowDep
) -> EscalationOut:
    await get_skill_or_raise(session, skill_id, lock=True)
    return await _replace_steps(session, skill_id, body.steps, now=now)


@router.get(
    "/routing/escalation",
    summary="The default escalation steps",
    description="The steps of every skill without steps of its own, and of chats that need no "
    "skill. Supervisors and admins.",
    responses=responses(401, 403, 503),
)
async def get_default_escalation(_staff: StaffAgent, session: SessionDep) -> EscalationOut:
    return await _steps_out(session, None)


@router.put(
    "/routing/escalation",
    summary="Replace the default escalation steps",
    description="The list sent becomes the default list; empty: the exact skill at any level, "
    "whatever the wait. Queued chats move to the step now in force. Admins only.",
    responses=responses(401, 403, 422, 503),
)
async def put_default_escalation(
    body: EscalationIn, _admin: AdminAgent, session: SessionDep, now: NowDep
) -> EscalationOut:
    await _lock_settings(session)
    return await _replace_steps(session, None, body.steps, now=now)


# --- policy ------------------------------------------------------------------------------------

WatchdogSeconds = Annotated[
    int | None,
    Field(ge=10, le=DAY, description="Seconds, 10 to 86400; null switches this stage off."),
]
EscalationSeconds = Annotated[
    int | None,
    Field(ge=1, le=DAY, description="Seconds, 1 to 86400; null switches this rule off."),
]


class PolicyUpdate(RequestBody):
    """Only the fields sent are changed. The watchdog thresholds may be null (off)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "offer_mode": "broadcast",
                    "broadcast_size": 3,
                    "unanswered_alert_seconds": 60,
                    "escalation_phrases": ["speak to a manager", "cancel my account"],
                    "escalate_wait_seconds": None,
                }
            ]
        }
    )

    offer_mode: OfferMode | None = patch_field(
        description="`single`: one agent at a time; `broadcast`: the `broadcast_size` best at "
        "once, the first to accept wins (needs offers: WARMLINE_OFFER_AUTO_ACCEPT=false).",
    )
    broadcast_size: int | None = patch_field(ge=1, le=20)
    preferred_agent_wait_seconds: int | None = patch_field(
        ge=0,
        le=3600,
        description="How long a returning visitor's chat goes first to their last agent; 0: off.",
    )
    unanswered_alert_seconds: WatchdogSeconds = None
    unanswered_supervisor_seconds: WatchdogSeconds = None
    unanswered_requeue_seconds: WatchdogSeconds = None
    escalation_phrases: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = (
        patch_field(
            max_length=100,
            description="A customer message containing one of these (case-insensitive, whole "
            "words) escalates the chat to the supervisors. [] switches this off.",
        )
    )
    escalate_wait_seconds: EscalationSeconds = None
    escalate_handle_seconds: EscalationSeconds = None
    escalate_after_transfers: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Escalate when a chat has been transferred more often; null: off.",
    )
    escalate_sentiment_below: float | None = Field(
        default=None,
        ge=-1,
        le=1,
        description="Escalate when the mean mood of the customer's last messages (from -1 to "
        "1) falls below this; null: off.",
    )
    escalate_sentiment_window: int | None = patch_field(
        ge=1, le=20, description="How many of the customer's last messages the mood is over."
    )
    product_catalogue: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = (
        patch_field(
            max_length=1000,
            description="Product names the context summary recognises as facts the customer gave.",
        )
    )
    effort_survey: bool | None = patch_field(
        description="Ask visitors the customer effort question (CES, 1-7) after a chat, next to "
        "the CSAT rating: chats that close from now on ask it (docs/widget.md#after-the-chat).",
    )

    _not_null = field_validator(
        "offer_mode",
        "broadcast_size",
        "preferred_agent_wait_seconds",
        "escalation_phrases",
        "escalate_sentiment_window",
        "product_catalogue",
        "effort_survey",
    )(not_null)


class PolicyOut(BaseModel):
    offer_mode: OfferMode
    broadcast_size: int = Field(description="Agents offered one chat at once in broadcast mode.")
    preferred_agent_wait_seconds: int
    unanswered_alert_seconds: int | None = Field(
        description="The agent is alerted when the customer has awaited a reply this long."
    )
    unanswered_supervisor_seconds: int | None = Field(
        description="Supervisors are alerted when the customer has awaited a reply this long."
    )
    unanswered_requeue_seconds: int | None = Field(
        description="The chat is taken from the agent and re-queued after this long."
    )
    escalation_phrases: list[str] = Field(
        description="Customer phrases that escalate a chat to the supervisors."
    )
    escalate_wait_seconds: int | None = Field(
        description="A chat waiting in the queue longer than this escalates."
    )
    escalate_handle_seconds: int | None = Field(
        description="A chat held by one agent longer than this escalates."
    )
    escalate_after_transfers: int | None = Field(
        description="A chat transferred more often than this escalates."
    )
    escalate_sentiment_below: float | None = Field(
        description="A chat whose customer's mood averages below this escalates."
    )
    escalate_sentiment_window: int = Field(description="Customer messages the mood is over.")
    product_catalogue: list[str] = Field(
        description="Product names the context summary recognises."
    )
    effort_survey: bool = Field(
        description="Whether chats that close ask the visitor the customer effort question."
    )
    updated_at: datetime
    offer_auto_accept: bool = Field(
        description="Deployment setting WARMLINE_OFFER_AUTO_ACCEPT (not editable here): true, "
        "the chosen agent gets the chat at once; false, they are offered it."
    )
    offer_timeout_seconds: float = Field(
        description="Deployment setting WARMLINE_OFFER_TIMEOUT (not editable here): how long an "
        "offer waits for an answer."
    )


WATCHDOG_LATER = ("unanswered_supervisor_seconds", "unanswered_requeue_seconds")


def _policy_out(row: RoutingSettings, settings: Settings) -> PolicyOut:
    return PolicyOut(
        offer_mode=row.offer_mode,
        broadcast_size=row.broadcast_size,
        preferred_agent_wait_seconds=row.preferred_agent_wait_seconds,
        unanswered_alert_seconds=row.unanswered_alert_seconds,
        unanswered_supervisor_seconds=row.unanswered_supervisor_seconds,
        unanswered_requeue_seconds=row.unanswered_requeue_seconds,
        escalation_phrases=list(row.escalation_phrases or ()),
        escalate_wait_seconds=row.escalate_wait_seconds,
        escalate_handle_seconds=row.escalate_handle_seconds,
        escalate_after_transfers=row.escalate_after_transfers,
        escalate_sentiment_below=row.escalate_sentiment_below,
        escalate_sentiment_window=row.escalate_sentiment_window,
        product_catalogue=list(row.product_catalogue or ()),
        effort_survey=row.effort_survey,
        updated_at=row.updated_at,
        offer_auto_accept=settings.offer_auto_accept,
        offer_timeout_seconds=settings.offer_timeout,
    )


@router.get(
    "/routing/policy",
    summary="The routing policy",
    description="How offers are made, the returning-visitor preference and the unanswered-"
    "message watchdog, with the deployment's offer settings. Supervisors and admins.",
    responses=responses(401, 403, 503),
)
async def get_policy(_staff: StaffAgent, session: SessionDep, settings: SettingsDep) -> PolicyOut:
    return _policy_out(await routing_repository.routing_settings(session), settings)


@router.patch(
    "/routing/policy",
    summary="Change the routing policy",
    description="Changes the fields sent. Of the watchdog thresholds, the supervisor and "
    "re-queue ones may not come before the agent alert (checked against the stored values for "
    "the fields not sent). Admins only.",
    responses=responses(401, 403, 422, 503),
)
async def update_policy(
    body: PolicyUpdate,
    _admin: AdminAgent,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> PolicyOut:
    row = await _lock_settings(session)
    sent = body.model_fields_set
    if not sent:
        return _policy_out(row, settings)
    for name in sorted(sent):
        setattr(row, name, getattr(body, name))
    alert = row.unanswered_alert_seconds
    problems: Problems = []
    for name in WATCHDOG_LATER:
        later: int | None = getattr(row, name)
        if alert is not None and later is not None and later < alert:
            # Blame the field the client sent: that is the one to change.
            field = name if name in sent else "unanswered_alert_seconds"
            problems.append(
                (
                    ("body", field),
                    f"{name} ({later}) must not be less than unanswered_alert_seconds ({alert})",
                )
            )
    if problems:
        refuse(*problems)
    row.updated_at = now
    await session.flush()
    await routing_service.policy_changed(session, now=now)
    return _policy_out(row, settings)
