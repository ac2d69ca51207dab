"""`/api/v1/escalations` and `/api/v1/reports/transfers`: what supervisors read about handoffs
(docs/api.md#escalations, docs/api.md#transfer-report; the rules are docs/handoff.md).

Read-only, for supervisors and admins (and keys with `reports:read`). The escalated list is
what a supervisor works from between `transfer_offer` frames: every open escalated chat, oldest
escalation first. The report says how transfers ended, how fast they were accepted, how often
a chat bounced back to an agent who had it, and how many made the customer repeat themselves
(every figure: docs/metrics.md#transfer-report). Must not change a chat: taking one is the
`take` frame of `/ws/v1/agent`.
"""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import NowDep, SessionDep
from app.api.errors import responses
from app.api.spreadsheet import cell
from app.api.v1.admin_agents import StaffAgent, refuse
from app.api.v1.report_query import (
    CSV_TYPE,
    MAX_REPORT_DAYS,
    AcceptHeader,
    Format,
    Since,
    Until,
    csv_download,
    report_window,
    wants_csv,
)
from app.api.v1.transfer_schemas import (
    CSV_COLUMNS,
    REPORT_EXAMPLE,
    AgentRow,
    ByKind,
    ConversationAgentRow,
    ConversationLine,
    Conversations,
    ConversationSkillRow,
    Outcomes,
    Ref,
    SkillRef,
    SkillRow,
    TransferReport,
    csv_lines,
)
from app.handoff import pingpong, repository
from app.handoff import report as transfers
from app.handoff.report import AcceptTimes, Tally
from app.reports import repository as reports
from app.reports.figures import GroupBy, Totals, line
from app.store.models import ConversationState, TransferKind

router = APIRouter(tags=["handoff"])

# Shares are ratios for people to read; four decimals is a hundredth of a per cent.
SHARE_DIGITS = 4
# Durations in seconds to the millisecond, as the conversation report shows them.
SECONDS_DIGITS = 3


# --- the escalated list ------------------------------------------------------------------------


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


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, SHARE_DIGITS)


def share(tally: Tally) -> float | None:
    """The share of transfers with a repeat, or None when there were none to share."""
    return _ratio(tally.with_repeat, tally.transfers)


def _seconds(ms: float | None) -> float | None:
    # As the conversation report shows its durations: seconds to the millisecond.
    return None if ms is None else round(ms / 1000, SECONDS_DIGITS)


def _accept(times: AcceptTimes) -> dict[str, float | None]:
    return {
        "accept_median_s": _seconds(times.median_ms),
        "accept_p90_s": _seconds(times.p90_ms),
    }


def _conversation_line(totals: Totals, bounced: int) -> dict[str, Any]:
    # The transfer rate is the conversation report's own line(), so the two never disagree.
    shown = line(totals)
    return {
        "handled": shown.handled,
        "transferred": shown.transferred,
        "transfer_rate": shown.transfer_rate,
        "ping_pong": bounced,
        "ping_pong_share": _ratio(bounced, shown.transferred),
    }


async def conversation_figures(
    session: AsyncSession, *, since: datetime, until: datetime
) -> Conversations:
    """Transfer rate and ping-pong over the conversation report's conversations, grouped as
    it groups them: in total, by arrival skill and by last agent."""
    # One light query (handled and transferred by arrival skill and last agent) instead of the
    # conversation report's totals three times: the same counts and the same rate (`line()`),
    # without its percentiles, which these figures do not show.
    found: dict[GroupBy | None, dict[str | None, Totals]] = {
        None: {},
        GroupBy.SKILL: {},
        GroupBy.AGENT: {},
    }
    for pair in await reports.handled_counts(session, since=since, until=until):
        skill = None if pair.skill_id is None else str(pair.skill_id)
        agent = None if pair.last_agent_id is None else str(pair.last_agent_id)
        for grouping, key in ((None, None), (GroupBy.SKILL, skill), (GroupBy.AGENT, agent)):
            was = found[grouping].get(key, Totals())
            found[grouping][key] = Totals(
                handled=was.handled + pair.handled,
                transferred=was.transferred + pair.transferred,
            )
    bounced = await pingpong.bounced(session, since=since, until=until)
    by_skill: dict[str | None, int] = {}
    by_agent: dict[str | None, int] = {}
    for b in bounced:
        skill_key = None if b.skill_id is None else str(b.skill_id)
        agent_key = None if b.last_agent_id is None else str(b.last_agent_id)
        by_skill[skill_key] = by_skill.get(skill_key, 0) + 1
        by_agent[agent_key] = by_agent.get(agent_key, 0) + 1

    async def rows(
        grouping: GroupBy, counts: dict[str | None, int]
    ) -> list[tuple[str | None, str | None, dict[str, Any]]]:
        """(key, name, figures) of each group with a handled conversation, most transferred
        first, then by name, the null group last."""
        groups = {k: t for k, t in found[grouping].items() if t.handled > 0}
        names = await reports.names(session, grouping, list(groups))
        named = {k: None if k is None or k not in names else names[k].name for k in groups}
        ordered = sorted(
            groups, key=lambda k: (-groups[k].transferred, k is None, named[k] or "", k or "")
        )
        return [(k, named[k], _conversation_line(groups[k], counts.get(k, 0))) for k in ordered]

    skills = await rows(GroupBy.SKILL, by_skill)
    agents = await rows(GroupBy.AGENT, by_agent)

    return Conversations(
        total=ConversationLine(**_conversation_line(found[None].get(None, Totals()), len(bounced))),
        by_skill=[
            ConversationSkillRow(
                skill=None if k is None else SkillRef(id=int(k), name=name), **figures
            )
            for k, name, figures in skills
        ],
        by_agent=[
            ConversationAgentRow(
                agent=None if k is None else Ref(id=uuid.UUID(k), name=name), **figures
            )
            for k, name, figures in agents
        ],
    )


@router.get(
    "/reports/transfers",
    summary="Transfer report: outcomes, time to accept, ping-pong, repeats",
    description="Transfers (warm, cold and escalations) of `[since, until)`: those accepted "
    "(by kind, skill and receiving agent) and how many of them made the customer restate a "
    "fact they had already given before the move (the `handoff.repeat` event; the product "
    "goal is zero, `repeat_share` 0); every transfer that ended in the range by outcome "
    "(accepted, declined, expired, cancelled) and those requested in it still pending; the "
    "time receivers took to accept (median and 90th percentile); each agent's declines and "
    "expiries. Over the conversations opened in the range (as the conversation report counts "
    "them): the transfer rate and ping-pong, chats that came back to an agent who had held "
    "them before. Every figure is defined in docs/metrics.md#transfer-report. Default: the "
    f"last 7 days; the range may span at most {MAX_REPORT_DAYS} days. `format=csv` or "
    "`Accept: text/csv` answers CSV: a header row, then one line per group of each section "
    "(`transfers`, `conversations`) and grouping (`total`, `skill`, `agent`). Supervisors, "
    "admins and keys with `reports:read`.",
    response_model=TransferReport,
    responses={
        200: {
            "content": {
                "application/json": {"example": REPORT_EXAMPLE},
                CSV_TYPE: {
                    "schema": {"type": "string"},
                    "example": ",".join(CSV_COLUMNS) + "\r\ntransfers,total,,,5,2,0.4,5,1,…\r\n",
                },
            },
            "description": "JSON, or CSV with `format=csv` or `Accept: text/csv`.",
        },
        **responses(401, 403, 422, 503),
    },
)
async def transfer_report(
    *,
    _staff: StaffAgent,
    session: SessionDep,
    now: NowDep,
    since: Since = None,
    until: Until = None,
    format: Format = None,
    accept: AcceptHeader = None,
) -> TransferReport | Response:
    since, until = report_window(since, until, now)
    answer = await _report(session, since=since, until=until)
    if not wants_csv(format, accept):
        return answer
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in csv_lines(answer):
        writer.writerow({k: cell(v) for k, v in row.items()})
    return csv_download(out.getvalue(), f"transfers-{since:%Y%m%d}-{until:%Y%m%d}.csv")


async def _report(session: AsyncSession, *, since: datetime, until: datetime) -> TransferReport:
    report = await transfers.transfer_report(session, since=since, until=until)
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
        outcomes=Outcomes(**asdict(report.outcomes)),
        **_accept(report.accept),
        by_skill=[
            SkillRow(
                skill=None if s.skill_id is None else SkillRef(id=s.skill_id, name=s.skill_name),
                transfers=s.tally.transfers,
                with_repeat=s.tally.with_repeat,
                repeat_share=share(s.tally),
                outcomes=Outcomes(**asdict(s.outcomes)),
                **_accept(s.accept),
            )
            for s in by_skill
        ],
        by_agent=[
            AgentRow(
                agent=None if a.agent_id is None else Ref(id=a.agent_id, name=a.agent_name),
                transfers=a.tally.transfers,
                with_repeat=a.tally.with_repeat,
                repeat_share=share(a.tally),
                declined=a.declined,
                expired=a.expired,
                **_accept(a.accept),
            )
            for a in by_agent
        ],
        conversations=await conversation_figures(session, since=since, until=until),
    )
