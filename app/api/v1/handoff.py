"""`/api/v1/escalations` and `/api/v1/reports/transfers`: what supervisors read about handoffs
(docs/api.md#escalations, docs/api.md#transfer-report; the rules are docs/handoff.md).

Read-only, supervisors and admins only. The escalated list is what a supervisor works from
between `transfer_offer` frames: every open escalated chat, oldest escalation first. The report
counts accepted transfers and how many made the customer repeat themselves. Must not change a
chat: taking one is the `take` frame of `/ws/v1/agent`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel, Field

from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.v1.admin_agents import StaffAgent, refuse
from app.handoff import repository
from app.handoff.repository import Tally
from app.store.models import ConversationState, TransferKind

router = APIRouter(tags=["handoff"])

# The report's default window: a week smooths out the day-of-week swings of a support desk.
DEFAULT_REPORT_DAYS = 7
# A year (a leap one included) is the longest window: enough for year-on-year comparisons,
# and it keeps one request from scanning every transfer ever stored.
MAX_REPORT_DAYS = 366
# Shares are ratios for people to read; four decimals is a hundredth of a per cent.
SHARE_DIGITS = 4


# --- the escalated list ------------------------------------------------------------------------


class Ref(BaseModel):
    id: uuid.UUID
    name: str | None


class SkillRef(BaseModel):
    id: int
    name: str | None


class PendingTransfer(BaseModel):
    id: uuid.UUID
    kind: TransferKind = Field(description='"warm", "cold" or "escalation".')
    receivers: int = Field(
        description="How many agents can still accept it (offered and not declined); 0 for a "
        "cold transfer, which waits in the queue instead."
    )
    expires_at: datetime | None = Field(description="When the offer lapses; null for cold.")


class EscalatedConversation(BaseModel):
    conversation_id: uuid.UUID
    state: ConversationState = Field(description='"queued", "assigned" or "offline".')
    escalated_at: datetime
    reason: str | None = Field(description="Why it was escalated, as recorded then.")
    visitor: Ref
    agent: Ref | None = Field(description="The agent holding it; null while nobody does.")
    skill: SkillRef | None
    waiting_seconds: int | None = Field(
        description="For a queued chat: seconds since it first joined the queue (a chat put "
        "back keeps that time, and its place); null otherwise."
    )
    transfer_count: int = Field(description="Transfers it has been through so far.")
    pending_transfer: PendingTransfer | None = Field(
        description="The transfer or escalation offer awaiting an answer, if any."
    )


@router.get(
    "/escalations",
    summary="Escalated conversations",
    description="Open conversations escalated to the supervisors (by their agent, by the "
    "customer asking for a manager, or by a rule), oldest escalation first. A supervisor "
    "takes one with the `take` frame of `/ws/v1/agent`. Page with `after`: the "
    "`conversation_id` of the last item of the previous page. Supervisors and admins.",
    responses=responses(401, 403, 422, 503),
)
async def escalations(
    _staff: StaffAgent,
    session: SessionDep,
    now: NowDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    after: Annotated[
        uuid.UUID | None,
        Query(description="Continue after this conversation (the last one of a page)."),
    ] = None,
) -> list[EscalatedConversation]:
    key = None
    if after is not None:
        key = await repository.escalation_position(session, after)
        if key is None:
            refuse((("query", "after"), "no escalated conversation has this id"))
    rows = await repository.open_escalated(session, limit=limit, after=key)
    return [_escalated(row, now) for row in rows]


def _escalated(row: repository.EscalatedChat, now: datetime) -> EscalatedConversation:
    conversation = row.conversation
    assert conversation.escalated_at is not None  # noqa: S101 - the query selects only these
    waiting = None
    if conversation.state is ConversationState.QUEUED:
        since = conversation.waiting_since or conversation.queued_at or conversation.created_at
        waiting = max(0, int((now - since).total_seconds()))
    holder = None
    if conversation.state is ConversationState.ASSIGNED and conversation.agent_id is not None:
        holder = Ref(id=conversation.agent_id, name=row.holder_name)
    pending = None
    if row.pending is not None:
        declined = set(row.pending.declined_by or ())
        pending = PendingTransfer(
            id=row.pending.id,
            kind=row.pending.kind,
            receivers=sum(1 for r in row.pending.receivers or () if r not in declined),
            expires_at=row.pending.expires_at,
        )
    return EscalatedConversation(
        conversation_id=conversation.id,
        state=conversation.state,
        escalated_at=conversation.escalated_at,
        reason=conversation.escalation_reason,
        visitor=Ref(id=conversation.visitor_id, name=row.visitor_name),
        agent=holder,
        skill=None
        if conversation.skill_id is None
        else SkillRef(id=conversation.skill_id, name=row.skill_name),
        waiting_seconds=waiting,
        transfer_count=conversation.transfer_count,
        pending_transfer=pending,
    )


# --- the transfer report -----------------------------------------------------------------------


class ByKind(BaseModel):
    warm: int
    cold: int
    escalation: int


class SkillRow(BaseModel):
    skill: SkillRef | None = Field(description="null: transfers of chats without a skill.")
    transfers: int
    with_repeat: int
    repeat_share: float | None


class AgentRow(BaseModel):
    agent: Ref | None = Field(
        description="The receiver; null for a cold transfer nobody has taken yet."
    )
    transfers: int
    with_repeat: int
    repeat_share: float | None


class TransferReport(BaseModel):
    since: datetime
    until: datetime
    total: int = Field(description="Transfers accepted in [since, until).")
    with_repeat: int = Field(
        description="Of those, how many the customer had to repeat something after."
    )
    repeat_share: float | None = Field(
        description="with_repeat / total, 0 to 1 (the goal is 0); null when total is 0."
    )
    by_kind: ByKind
    by_skill: list[SkillRow] = Field(description="Most transfers first.")
    by_agent: list[AgentRow] = Field(description="Per receiving agent, most transfers first.")


def share(tally: Tally) -> float | None:
    """The share of transfers with a repeat, or None when there were none to share."""
    if tally.transfers == 0:
        return None
    return round(tally.with_repeat / tally.transfers, SHARE_DIGITS)


def report_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """A report's `[since, until)`: the last week by default; refused (422) unless
    `since < until` and the two are at most MAX_REPORT_DAYS apart. Shared by the reports."""
    if until is None:
        until = now
    if since is None:
        try:
            since = until - timedelta(days=DEFAULT_REPORT_DAYS)
        except OverflowError:  # `until` within a week of year 1
            refuse((("query", "until"), "too early to report the week before it"))
    if until <= since:
        refuse((("query", "until"), "must be after since"))
    if until - since > timedelta(days=MAX_REPORT_DAYS):
        refuse((("query", "since"), f"the range may span at most {MAX_REPORT_DAYS} days"))
    return since, until


@router.get(
    "/reports/transfers",
    summary="Transfer report: how often customers repeated themselves",
    description="Transfers (warm, cold and escalations) accepted in `[since, until)`, and how "
    "many of them made the customer restate a fact they had already given before the move "
    "(the `handoff.repeat` event). The product goal is zero repeats (`repeat_share` 0): each "
    "one is a handoff where the context did not travel with the chat. Broken "
    "down per kind, per skill and per receiving agent. Default: the last 7 days; the range "
    f"may span at most {MAX_REPORT_DAYS} days. Supervisors and admins.",
    responses=responses(401, 403, 422, 503),
)
async def transfer_report(
    _staff: StaffAgent,
    session: SessionDep,
    now: NowDep,
    since: Annotated[
        AwareDatetime | None,
        Query(description="Start, inclusive: ISO 8601 with a time zone. Default: until - 7 d."),
    ] = None,
    until: Annotated[
        AwareDatetime | None,
        Query(description="End, exclusive: ISO 8601 with a time zone. Default: now."),
    ] = None,
) -> TransferReport:
    since, until = report_window(since, until, now)
    report = await repository.transfer_report(session, since=since, until=until)
    by_skill = sorted(
        report.by_skill,
        key=lambda s: (-s.tally.transfers, s.skill_id is None, s.skill_name or "", s.skill_id or 0),
    )
    by_agent = sorted(
        report.by_agent,
        key=lambda a: (-a.tally.transfers, a.agent_id is None, a.agent_name or "", str(a.agent_id)),
    )
    return TransferReport(
        since=since,
        until=until,
        total=report.total.transfers,
        with_repeat=report.total.with_repeat,
        repeat_share=share(report.total),
        by_kind=ByKind(
            warm=report.by_kind[TransferKind.WARM],
            cold=report.by_kind[TransferKind.COLD],
            escalation=report.by_kind[TransferKind.ESCALATION],
        ),
        by_skill=[
            SkillRow(
                skill=None if s.skill_id is None else SkillRef(id=s.skill_id, name=s.skill_name),
                transfers=s.tally.transfers,
                with_repeat=s.tally.with_repeat,
                repeat_share=share(s.tally),
            )
            for s in by_skill
        ],
        by_agent=[
            AgentRow(
                agent=None if a.agent_id is None else Ref(id=a.agent_id, name=a.agent_name),
                transfers=a.tally.transfers,
                with_repeat=a.tally.with_repeat,
                repeat_share=share(a.tally),
            )
            for a in by_agent
        ],
    )
