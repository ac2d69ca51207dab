"""The transfer report's JSON (`GET /api/v1/reports/transfers`, docs/api.md#transfer-report;
every figure: docs/metrics.md#transfer-report), and the references to agents and skills the
handoff routes share. Shapes only: `api.v1.handoff` fills them.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class Ref(BaseModel):
    id: uuid.UUID
    name: str | None


class SkillRef(BaseModel):
    id: int
    name: str | None


class ByKind(BaseModel):
    warm: int
    cold: int
    escalation: int


class Outcomes(BaseModel):
    accepted: int = Field(description="Ended with the chat moved (the same as `transfers`).")
    declined: int = Field(description="Every receiver declined: the chat stayed.")
    expired: int = Field(description="Nobody answered before it lapsed: the chat stayed.")
    cancelled: int = Field(
        description="Withdrawn: by the requester, or because the chat closed, was escalated, "
        "taken by a supervisor or its agent left."
    )
    pending: int = Field(description="Requested in the range and still awaiting an answer.")


class SkillRow(BaseModel):
    skill: SkillRef | None = Field(description="null: transfers of chats without a skill.")
    transfers: int = Field(description="Accepted transfers.")
    with_repeat: int
    repeat_share: float | None
    outcomes: Outcomes
    accept_median_s: float | None
    accept_p90_s: float | None


class AgentRow(BaseModel):
    agent: Ref | None = Field(
        description="The receiver; null for a cold transfer nobody has taken yet, and for "
        "transfers accepted by an agent deleted since."
    )
    transfers: int = Field(description="Transfers this agent accepted (or was routed, cold).")
    with_repeat: int
    repeat_share: float | None
    declined: int = Field(description="Transfers offered to them that they declined.")
    expired: int = Field(description="Transfers offered to them that lapsed unanswered.")
    accept_median_s: float | None
    accept_p90_s: float | None


class ConversationLine(BaseModel):
    handled: int = Field(description="Conversations opened in the range, closed, handled.")
    transferred: int = Field(description="Of those, transferred at least once.")
    transfer_rate: float | None = Field(
        description="transferred / handled, as the conversation report computes it."
    )
    ping_pong: int = Field(
        description="Transferred ones that came back to an agent who had held them before, "
        "someone else in between."
    )
    ping_pong_share: float | None = Field(description="ping_pong / transferred.")


class ConversationSkillRow(ConversationLine):
    skill: SkillRef | None = Field(description="The skill they arrived with; null: none.")


class ConversationAgentRow(ConversationLine):
    agent: Ref | None = Field(description="Their last agent; null: never assigned.")


class Conversations(BaseModel):
    total: ConversationLine
    by_skill: list[ConversationSkillRow] = Field(
        description="By the skill the conversations arrived with, most transferred first."
    )
    by_agent: list[ConversationAgentRow] = Field(
        description="By their last agent, most transferred first."
    )


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
    outcomes: Outcomes = Field(
        description="Transfers that ended in the range (by `decided_at`), by outcome, and "
        "those requested in it still pending."
    )
    accept_median_s: float | None = Field(
        description="Time from request to acceptance of accepted warm transfers and "
        "escalation offers: median, seconds."
    )
    accept_p90_s: float | None = Field(description="The same: 90th percentile, seconds.")
    by_skill: list[SkillRow] = Field(description="Most transfers first.")
    by_agent: list[AgentRow] = Field(description="Per receiving agent, most transfers first.")
    conversations: Conversations = Field(
        description="Conversations opened in the range and closed, as the conversation "
        "report counts them: transfer rate and ping-pong."
    )


REPORT_EXAMPLE: dict[str, Any] = {
    "since": "2026-11-01T00:00:00Z",
    "until": "2026-12-01T00:00:00Z",
    "total": 5,
    "with_repeat": 2,
    "repeat_share": 0.4,
    "by_kind": {"warm": 3, "cold": 1, "escalation": 1},
    "outcomes": {"accepted": 5, "declined": 1, "expired": 1, "cancelled": 0, "pending": 0},
    "accept_median_s": 42.5,
    "accept_p90_s": 88.1,
    "by_skill": [
        {
            "skill": {"id": 2, "name": "Billing"},
            "transfers": 3,
            "with_repeat": 1,
            "repeat_share": 0.3333,
            "outcomes": {"accepted": 3, "declined": 1, "expired": 0, "cancelled": 0, "pending": 0},
            "accept_median_s": 40.0,
            "accept_p90_s": 56.0,
        }
    ],
    "by_agent": [
        {
            "agent": {"id": "43c0575e-f184-4654-8e60-44d05abd7c72", "name": "Bo"},
            "transfers": 3,
            "with_repeat": 1,
            "repeat_share": 0.3333,
            "declined": 1,
            "expired": 0,
            "accept_median_s": 40.0,
            "accept_p90_s": 56.0,
        }
    ],
    "conversations": {
        "total": {
            "handled": 60,
            "transferred": 5,
            "transfer_rate": 0.0833,
            "ping_pong": 1,
            "ping_pong_share": 0.2,
        },
        "by_skill": [
            {
                "skill": {"id": 2, "name": "Billing"},
                "handled": 30,
                "transferred": 3,
                "transfer_rate": 0.1,
                "ping_pong": 1,
                "ping_pong_share": 0.3333,
            }
        ],
        "by_agent": [
            {
                "agent": {"id": "43c0575e-f184-4654-8e60-44d05abd7c72", "name": "Bo"},
                "handled": 20,
                "transferred": 3,
                "transfer_rate": 0.15,
                "ping_pong": 1,
                "ping_pong_share": 0.3333,
            }
        ],
    },
}


# The CSV form: one table in long format, a line per group of each section, so a spreadsheet
# can filter and pivot it; a column that does not apply to a line is empty.
CSV_COLUMNS = [
    "section",
    "group_by",
    "group",
    "name",
    "transfers",
    "with_repeat",
    "repeat_share",
    "accepted",
    "declined",
    "expired",
    "cancelled",
    "pending",
    "accept_median_s",
    "accept_p90_s",
    "handled",
    "transferred",
    "transfer_rate",
    "ping_pong",
    "ping_pong_share",
]


def csv_lines(report: TransferReport) -> list[dict[str, Any]]:
    """The report as CSV lines (docs/api.md#transfer-report): the transfers in total, by skill
    and by agent, then the conversations likewise. On agent lines `declined` and `expired` are
    the agent's own declines and lapses, and `accepted` is empty (it is `transfers`)."""

    def transfer_figures(row: TotalLike) -> dict[str, Any]:
        return {
            "transfers": row.transfers,
            "with_repeat": row.with_repeat,
            "repeat_share": row.repeat_share,
            "accept_median_s": row.accept_median_s,
            "accept_p90_s": row.accept_p90_s,
        }

    lines: list[dict[str, Any]] = [
        {
            "section": "transfers",
            "group_by": "total",
            **transfer_figures(TotalLike.of(report)),
            **report.outcomes.model_dump(),
        }
    ]
    for s in report.by_skill:
        lines.append({
            "section": "transfers",
            "group_by": "skill",
            "group": None if s.skill is None else s.skill.id,
            "name": None if s.skill is None else s.skill.name,
            **transfer_figures(TotalLike.of(s)),
            **s.outcomes.model_dump(),
        })  # fmt: skip
    for a in report.by_agent:
        lines.append({
            "section": "transfers",
            "group_by": "agent",
            "group": None if a.agent is None else a.agent.id,
            "name": None if a.agent is None else a.agent.name,
            **transfer_figures(TotalLike.of(a)),
            "declined": a.declined,
            "expired": a.expired,
        })  # fmt: skip
    conversations = report.conversations
    lines.append(
        {"section": "conversations", "group_by": "total", **conversations.total.model_dump()}
    )
    for c in conversations.by_skill:
        lines.append({
            "section": "conversations",
            "group_by": "skill",
            "group": None if c.skill is None else c.skill.id,
            "name": None if c.skill is None else c.skill.name,
            **c.model_dump(exclude={"skill"}),
        })  # fmt: skip
    for g in conversations.by_agent:
        lines.append({
            "section": "conversations",
            "group_by": "agent",
            "group": None if g.agent is None else g.agent.id,
            "name": None if g.agent is None else g.agent.name,
            **g.model_dump(exclude={"agent"}),
        })  # fmt: skip
    return lines


class TotalLike(BaseModel):
    """The transfer figures every transfer line has, whichever row it comes from."""

    transfers: int
    with_repeat: int
    repeat_share: float | None
    accept_median_s: float | None
    accept_p90_s: float | None

    @classmethod
    def of(cls, row: TransferReport | SkillRow | AgentRow) -> TotalLike:
        if isinstance(row, TransferReport):
            return cls(
                transfers=row.total,
                with_repeat=row.with_repeat,
                repeat_share=row.repeat_share,
                accept_median_s=row.accept_median_s,
                accept_p90_s=row.accept_p90_s,
            )
        return cls.model_validate(row.model_dump(include=set(cls.model_fields)))
