"""What the three reports (conversations, transfers, quality) take and answer alike: the range
`[since, until)` and its rules, the time zone check, the JSON-or-CSV choice and the CSV
download. Reference: docs/api.md#reports.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import available_timezones

from fastapi import Header, Query
from fastapi.responses import Response
from pydantic import AwareDatetime

from app.api.v1.admin_agents import refuse

# The default window: a week smooths out the day-of-week swings of a support desk.
DEFAULT_REPORT_DAYS = 7
# A year (a leap one included) is the longest window: enough for year-on-year comparisons,
# and it keeps one request from scanning every conversation or transfer ever stored.
MAX_REPORT_DAYS = 366
CSV_TYPE = "text/csv"

Since = Annotated[
    AwareDatetime | None,
    Query(description="Start, inclusive: ISO 8601 with a time zone. Default: until - 7 d."),
]
Until = Annotated[
    AwareDatetime | None,
    Query(description="End, exclusive: ISO 8601 with a time zone. Default: now."),
]
Format = Annotated[
    Literal["json", "csv"] | None,
    Query(description="`csv` for CSV; default: by the Accept header, else JSON."),
]
AcceptHeader = Annotated[str | None, Header(include_in_schema=False)]


def report_window(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """A report's `[since, until)`: the last week by default; refused (422) unless
    `since < until` and the two are at most MAX_REPORT_DAYS apart."""
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


@functools.cache
def _zones() -> frozenset[str]:
    # The tz database's zone names, without the machine's own (`localtime`): a report must not
    # change with the server it runs on, and PostgreSQL must know the name too. A membership
    # test, not `ZoneInfo(tz)`, which also opens directories ("America") and odd paths.
    return frozenset(available_timezones() - {"localtime", "posixrules"})


def check_zone(tz: str) -> None:
    """Refuse (422 on `query.tz`) a name that is not an IANA time zone."""
    if tz not in _zones():
        refuse((("query", "tz"), "not an IANA time zone name"))


def wants_csv(format: str | None, accept: str | None) -> bool:
    """CSV when asked by `format=csv`, or without `format` by an Accept header naming it."""
    return format == "csv" or (format is None and accept is not None and CSV_TYPE in accept.lower())


def csv_download(text: str, filename: str) -> Response:
    """A CSV answer the browser saves as `filename`."""
    return Response(
        text,
        media_type=f"{CSV_TYPE}; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
