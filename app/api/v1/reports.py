"""`/api/v1/reports/conversations`: service levels over closed conversations, by day, hour,
skill, agent or tag, in JSON or CSV (docs/api.md#reports; every figure: docs/metrics.md#reports).

Read-only, for supervisors, admins and keys with `reports:read`. Reads the per-conversation
figures kept in `conversation_metrics` (`app/reports`), never the event logs.
"""

from __future__ import annotations

import csv
import io
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.access import Principal, Requires
from app.api.deps import NowDep, SessionDep, SettingsDep
from app.api.errors import responses
from app.api.spreadsheet import cell
from app.api.v1.report_query import (
    CSV_TYPE,
    MAX_REPORT_DAYS,
    AcceptHeader,
    Format,
    Since,
    Until,
    check_zone,
    csv_download,
    report_window,
    wants_csv,
)
from app.reports import repository
from app.reports.figures import GroupBy, Line, Totals, line

router = APIRouter(tags=["reports"])
ReportsAccess = Annotated[Principal, Depends(Requires("reports:read", staff=True))]


LINE_EXAMPLE: dict[str, Any] = {
    "group": "2026-12-01",
    "name": None,
    "volume": 120,
    "handled": 104,
    "answered": 101,
    "abandoned": 9,
    "abandon_rate": 0.0796,
    "offline": 7,
    "wait_median_s": 14.25,
    "wait_p90_s": 71.9,
    "first_response_median_s": 31.5,
    "first_response_p90_s": 88.2,
    "handle_median_s": 412.0,
    "handle_p90_s": 1190.4,
    "transferred": 8,
    "transfer_rate": 0.0769,
    "escalated": 2,
    "escalation_rate": 0.0167,
    "fcr_decided": 96,
    "fcr_resolved": 80,
    "fcr_rate": 0.8333,
    "sla_counted": 108,
    "sla_met": 88,
    "sla_attainment": 0.8148,
    "sla_target_percent": None,
    "csat_responses": 41,
    "csat_satisfied": 35,
    "csat": 0.8537,
    "csat_response_rate": 0.3942,
    "effort_asked": 98,
    "effort_responses": 37,
    "effort_easy": 30,
    "ces": 0.8108,
    "effort_response_rate": 0.3776,
}


class ReportLine(BaseModel):
    """One group's figures; each defined in docs/metrics.md#reports."""

    group: str | None = Field(
        description="The day (`YYYY-MM-DD`) or hour (`YYYY-MM-DDTHH:00`) of opening in `tz`, "
        "the skill id, the agent id or the tag; null: no skill, no agent, no tag."
    )
    name: str | None = Field(description="The skill's or agent's name; null otherwise.")
    volume: int = Field(description="Conversations opened in the range and closed.")
    handled: int = Field(description="Of those, assigned to an agent at least once.")
    answered: int = Field(description="Those an agent wrote to the visitor in.")
    abandoned: int = Field(description="Left by the visitor while waiting, never assigned.")
    abandon_rate: float | None = Field(description="abandoned / conversations that queued.")
    offline: int = Field(description="Arrived when nobody could take them (a message left).")
    wait_median_s: float | None = Field(description="Queue wait of handled ones: median, s.")
    wait_p90_s: float | None = Field(description="Queue wait: 90th percentile, seconds.")
    first_response_median_s: float | None
    first_response_p90_s: float | None
    handle_median_s: float | None
    handle_p90_s: float | None
    transferred: int = Field(description="Handled ones with at least one transfer.")
    transfer_rate: float | None = Field(description="transferred / handled.")
    escalated: int = Field(description="Conversations escalated at least once.")
    escalation_rate: float | None = Field(description="escalated / volume.")
    fcr_decided: int = Field(description="Handled ones whose first-contact resolution is known.")
    fcr_resolved: int = Field(description="Of those, resolved on first contact.")
    fcr_rate: float | None = Field(description="fcr_resolved / fcr_decided.")
    sla_counted: int = Field(description="Conversations the first-response target applies to.")
    sla_met: int = Field(description="Of those, answered within their skill's target.")
    sla_attainment: float | None = Field(description="sla_met / sla_counted.")
    sla_target_percent: int | None = Field(
        description="By skill: the skill's goal for sla_attainment, in per cent; else null."
    )
    csat_responses: int = Field(description="Handled ones the visitor rated.")
    csat_satisfied: int = Field(description="Of those, rated 4 or 5.")
    csat: float | None = Field(description="csat_satisfied / csat_responses.")
    csat_response_rate: float | None = Field(description="csat_responses / handled.")
    effort_asked: int = Field(
        description="Handled ones whose close asked the effort question (the survey was on)."
    )
    effort_responses: int = Field(description="Of those, answered by the visitor.")
    effort_easy: int = Field(description="Of the answers, 5 to 7 (agree that it was easy).")
    ces: float | None = Field(
        description="Customer effort score: effort_easy / effort_responses; null: no answers."
    )
    effort_response_rate: float | None = Field(description="effort_responses / effort_asked.")


class ConversationReport(BaseModel):
    since: datetime
    until: datetime
    group_by: GroupBy
    tz: str = Field(description="The IANA time zone of the day and hour buckets.")
    skill_id: int | None = Field(description="The skill the report is limited to, or null.")
    fcr_window_seconds: int = Field(description="WARMLINE_FCR_WINDOW, which decides FCR.")
    total: ReportLine = Field(description="Every conversation of the range, counted once.")
    rows: list[ReportLine] = Field(
        description="One per group, by `group` ascending, the null group last. By tag, a "
        "conversation counts once in each of its tags."
    )


def _out(key: str | None, found: Line, named: repository.Named | None) -> ReportLine:
    return ReportLine(
        group=key,
        name=None if named is None else named.name,
        sla_target_percent=None if named is None else named.target_percent,
        **asdict(found),
    )


def _csv(rows: list[ReportLine]) -> str:
    out = io.StringIO()
    columns = list(ReportLine.model_fields)
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: cell(v) for k, v in row.model_dump().items()})
    return out.getvalue()


@router.get(
    "/reports/conversations",
    summary="Conversation report: volume, waits, responses, SLA, FCR and CSAT",
    description="Closed conversations opened in `[since, until)`, grouped by the day or hour "
    "they opened (in `tz`), their skill, their last agent or their tags: volume, answered, "
    "abandoned and offline; queue wait, first response and handle time (median and 90th "
    "percentile, interpolated as PostgreSQL's `percentile_cont`); transfer, escalation and "
    "first-contact resolution rates; SLA attainment against each skill's first-response "
    "target; CSAT (the share of 4-5 ratings) and its response rate; the customer effort score "
    "when the effort survey is on (the share of 5-7 answers on its 7-point scale) and its "
    "response rate. Every figure is defined "
    "in docs/metrics.md. Default: the last 7 days; at most "
    f"{MAX_REPORT_DAYS} days. `format=csv` or `Accept: text/csv` answers CSV (a header row, then "
    "one line per group; no total). Supervisors, admins and keys with `reports:read`.",
    response_model=ConversationReport,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "since": "2026-12-01T00:00:00Z",
                        "until": "2026-12-02T00:00:00Z",
                        "group_by": "day",
                        "tz": "UTC",
                        "skill_id": None,
                        "fcr_window_seconds": 86400,
                        "total": {**LINE_EXAMPLE, "group": None},
                        "rows": [LINE_EXAMPLE],
                    }
                },
                CSV_TYPE: {
                    "schema": {"type": "string"},
                    "example": ",".join(ReportLine.model_fields) + "\r\n2026-12-01,,120,104,…\r\n",
                },
            },
            "description": "JSON, or CSV with `format=csv` or `Accept: text/csv`.",
        },
        **responses(401, 403, 422, 503),
    },
)
async def conversation_report(
    *,
    _reader: ReportsAccess,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    since: Since = None,
    until: Until = None,
    group_by: Annotated[GroupBy, Query(description="How rows are grouped.")] = GroupBy.DAY,
    tz: Annotated[
        str,
        Query(
            max_length=64,
            description="IANA time zone of the day and hour buckets (e.g. `Europe/Paris`).",
        ),
    ] = "UTC",
    skill_id: Annotated[
        int | None,
        Query(
            ge=1,
            le=2**31 - 1,
            description="Only conversations that arrived needing this skill (with "
            "`group_by=tag`: the issue types of one skill's queue).",
        ),
    ] = None,
    format: Format = None,
    accept: AcceptHeader = None,
) -> ConversationReport | Response:
    since, until = report_window(since, until, now)
    check_zone(tz)
    window = timedelta(seconds=settings.fcr_window)
    found = {
        grouping: await repository.totals(
            session,
            since=since,
            until=until,
            group_by=grouping,
            zone=tz,
            window=window,
            now=now,
            skill_id=skill_id,
        )
        for grouping in (group_by, None)
    }
    groups, overall = found[group_by], found[None]
    named = await repository.names(session, group_by, list(groups))
    ordered = sorted(groups, key=lambda k: (k is None, k or ""))
    rows = [
        _out(key, line(groups[key]), None if key is None else named.get(key)) for key in ordered
    ]
    if wants_csv(format, accept):
        name = f"conversations-by-{group_by.value}-{since:%Y%m%d}-{until:%Y%m%d}.csv"
        return csv_download(_csv(rows), name)
    return ConversationReport(
        since=since,
        until=until,
        group_by=group_by,
        tz=tz,
        skill_id=skill_id,
        fcr_window_seconds=settings.fcr_window,
        total=_out(None, line(overall.get(None, Totals())), None),
        rows=rows,
    )
