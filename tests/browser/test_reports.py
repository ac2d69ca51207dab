"""The console's Reports panel (docs/console.md#reports) in headless Chromium against a real server.

Six closed conversations of known figures are written straight into `conversation_metrics` (the
rows the close would have written; tests/integration/test_reports.py checks that the close
writes them right), on three days of the browser's time zone. Each figure the panel must show
was worked out by hand below, with the interpolated percentiles of docs/metrics.md#reports.

The browser runs in a fixed-offset zone chosen so that it is about noon there when the test
runs: "today" then holds the morning's chats whatever the hour, and no day boundary is near.

| chat | local day, time | skill, last agent | wait | 1st reply | handle | SLA | CSAT | other |
|---|---|---|---|---|---|---|---|---|
| a | today 09:05 | Billing, Ann | 10 | 20 | 600 | met | 5 | FCR pending; refund |
| b | today 09:40 | Billing, Ann | 30 | 70 | 300 | missed | 3 | FCR pending |
| c | today 10:15 | Billing, none | (90) | - | - | missed | - | abandoned |
| d | yesterday 14:00 | Tech, Bob | 5 | 20 | 595 | met | 4 | moved, escalated; refund, bug |
| e | yesterday 15:00 | Tech, Bob | 61 | - | 140 | missed | - | |
| f | 3 days ago 11:00 | Billing, Ann | 20 | 24 | 200 | met | - | FCR resolved; refund |

(wait, 1st reply and handle in seconds; tags after the semicolon). The effort question was asked
after a, b and d: a answered 6 (easy), d 3, b not at all.

Last 7 days: 6 chats, 5 handled; waits 5 10 20 30 61: median 20 s, p90 30 + 31 x 0.6 = 48.6 s;
first replies 20 20 24 70: median 22 s, p90 24 + 46 x 0.7 = 56.2 s; handle 140 200 300 595 600:
median 300 s, p90 595 + 5 x 0.6 = 598 s; SLA 3 of 6; CSAT 2 of 3 ratings, 3 of 5 rated; FCR 1 of
3 decided (a, b pending; d, e not candidates); abandoned 1 of 6; transferred 1 of 5; escalated 1
of 6; CES 1 easy of 2 answers, 2 answers of 3 asked. Today: waits 10 30 (median 20, p90 28),
replies 20 70 (median 45, p90 65), SLA 1 of 3, CES 1 of 1 answer, 1 of 2 asked.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Locator, Route, expect
from sqlalchemy import select

from app.store.db import Database
from app.store.models import Agent, ConversationMetrics, Role, Skill
from tests.browser.console import Console
from tests.conftest import Backend
from tests.e2e.harness import Server, create_agent

pytestmark = [pytest.mark.browser, pytest.mark.asyncio]


@dataclass(frozen=True)
class Desk:
    """What the test seeded: the browser's zone, its today, and the ids of the groups."""

    zone: str
    today: date
    billing: int
    tech: int
    supervisor: str
    agent: str


def noon_zone(now: datetime) -> tuple[str, int]:
    """A fixed-offset zone where it is now between 12:00 and 12:59, and its offset in hours.
    `Etc/GMT-5` is UTC+5 (the tz database's POSIX-style names invert the sign)."""
    offset = 12 - now.hour
    return ("Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"), offset


# What only the browser does (the tabs, the CSV, errors, the mocked sections) runs on SQLite;
# the figures by day, hour, skill, agent and tag on both backends (PostgreSQL computes them in
# SQL, with its own time zones).
SQLITE_ONLY = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


@pytest_asyncio.fixture
async def server(backend: Backend) -> AsyncIterator[Server]:
    started = await Server(backend).start()
    try:
        yield started
    finally:
        await started.stop()


@pytest_asyncio.fixture
async def desk(server: Server) -> Desk:
    zone, offset = noon_zone(datetime.now(UTC))
    today = (datetime.now(UTC) + timedelta(hours=offset)).date()
    mia = await create_agent(server.backend, name="Mia", role=Role.SUPERVISOR)
    dana = await create_agent(server.backend, name="Dana")
    ann_email = await create_agent(server.backend, name="Ann", skills={"billing": 3})
    bob_email = await create_agent(server.backend, name="Bob", skills={"tech": 3})
    db = Database(server.backend.database_url)
    try:
        async with db.write() as session:
            skills = {s.slug: s for s in await session.scalars(select(Skill))}
            skills["billing"].sla_first_response_seconds = 30
            skills["billing"].sla_target_percent = 80
            skills["tech"].sla_first_response_seconds = 60
            skills["tech"].sla_target_percent = 90
            agents = {
                a.email: a.id
                for a in await session.scalars(
                    select(Agent).where(Agent.email.in_([ann_email, bob_email]))
                )
            }
            ann, bob = agents[ann_email], agents[bob_email]
            billing, tech = skills["billing"].id, skills["tech"].id

            def at(days_ago: int, hour: int, minute: int) -> datetime:
                local = datetime.combine(today - timedelta(days=days_ago), datetime.min.time())
                return (local + timedelta(hours=hour - offset, minutes=minute)).replace(tzinfo=UTC)

            def row(
                opened: datetime,
                skill: int,
                agent: uuid.UUID | None,
                *,
                sla: bool,
                wait: int,
                reply: int | None = None,
                handle: int | None = None,
                csat: int | None = None,
                moved: int = 0,
                escalated: int = 0,
                candidate: bool = False,
                tags: tuple[str, ...] = (),
                effort: int | None = None,
                effort_asked: bool = False,
            ) -> None:
                handled = agent is not None
                session.add(
                    ConversationMetrics(
                        conversation_id=uuid.uuid4(),
                        opened_at=opened,
                        closed_at=opened + timedelta(seconds=handle or wait),
                        skill_id=skill,
                        first_agent_id=agent,
                        last_agent_id=agent,
                        closed_by="agent" if handled else "visitor",
                        offline=False,
                        handled=handled,
                        answered=reply is not None,
                        abandoned=not handled,
                        queue_wait_ms=wait * 1000,
                        first_response_ms=None if reply is None else reply * 1000,
                        handle_ms=None if handle is None else handle * 1000,
                        transfers=moved,
                        escalations=escalated,
                        fcr_candidate=candidate,
                        next_contact_at=None,
                        sla_met=sla,
                        sla_target_seconds=30 if skill == billing else 60,
                        csat=csat,
                        tags=list(tags),
                        disposition=None,
                        effort_asked=effort_asked or effort is not None,
                        effort=effort,
                    )
                )

            row(at(0, 9, 5), billing, ann, wait=10, reply=20, handle=600, sla=True, csat=5,
                candidate=True, tags=("refund",), effort=6)  # fmt: skip
            row(at(0, 9, 40), billing, ann, wait=30, reply=70, handle=300, sla=False, csat=3,
                candidate=True, effort_asked=True)  # fmt: skip
            row(at(0, 10, 15), billing, None, wait=90, sla=False)
            row(at(1, 14, 0), tech, bob, wait=5, reply=20, handle=595, sla=True, csat=4,
                moved=1, escalated=1, tags=("refund", "bug"), effort=3)  # fmt: skip
            row(at(1, 15, 0), tech, bob, wait=61, handle=140, sla=False)
            row(at(3, 11, 0), billing, ann, wait=20, reply=24, handle=200, sla=True,
                candidate=True, tags=("refund",))  # fmt: skip
    finally:
        await db.dispose()
    return Desk(zone, today, billing, tech, mia, dana)


async def open_reports(browser: Browser, server: Server, desk: Desk) -> Console:
    console = await Console.open(browser, server, timezone_id=desk.zone)
    await console.login(desk.supervisor)
    await console.t("tab-supervisor").click()
    await console.t("tab-reports").click()
    await expect(console.t("rp-table")).to_be_visible()
    return console


def total(console: Console, key: str) -> Locator:
    return console.t(f"rp-total-{key}")


def row(console: Console, group: str | int) -> Locator:
    return console.page.locator(f'[data-test=rp-row][data-group="{group}"]')


def col(where: Locator, field: str) -> Locator:
    return where.locator(f'[data-col="{field}"]')


async def choose(console: Console, *, period: str | None = None, group: str | None = None) -> None:
    """Pick a period and/or grouping and wait for the answer to be on screen."""
    async with console.page.expect_response(lambda r: "/reports/conversations" in r.url):
        if period is not None:
            await console.t("rp-period").select_option(period)
        if group is not None:
            await console.t("rp-group").select_option(group)
    await expect(console.t("reports")).not_to_have_attribute("aria-busy", "true")


@SQLITE_ONLY
async def test_an_agent_has_no_reports(browser: Browser, server: Server, desk: Desk) -> None:
    """An agent's console has neither the Supervisor tab nor the Reports tab, and the API the
    panel reads refuses the agent's token."""
    dana = await Console.login_as(browser, server, desk.agent)
    try:
        await expect(dana.t("tab-chats")).to_be_visible()
        await expect(dana.t("tab-supervisor")).to_have_count(0)
        await expect(dana.t("tab-reports")).to_have_count(0)
        status = await dana.page.evaluate(
            """async () => (await fetch('/api/v1/reports/conversations', {headers:
            {Authorization: 'Bearer ' + sessionStorage['warmline-console:token']}})).status"""
        )
        assert status == 403
    finally:
        await dana.close()


async def test_the_week_by_day_then_by_skill(browser: Browser, server: Server, desk: Desk) -> None:
    mia = await open_reports(browser, server, desk)
    try:
        # the default: the last 7 days of the browser's zone, by day
        await expect(mia.t("rp-range")).to_contain_text(desk.zone)
        expected = {
            "volume": ("6", "5 handled · 0 offline"),
            "wait": ("20 s", "p90 49 s"),
            "first_response": ("22 s", "p90 56 s"),
            "sla": ("50%", "3 of 6 within target"),
            "csat": ("66.7%", "3 ratings · 60% rated"),
            "fcr": ("33.3%", "1 of 3 decided"),
            "abandoned": ("16.7%", "1 chat"),
            "transferred": ("20%", "1 chat"),
            "escalated": ("16.7%", "1 chat"),
            "handle": ("5 min 00 s", "p90 9 min 58 s"),
            "ces": ("50%", "2 answers · 66.7% answered"),
        }
        for key, (value, sub) in expected.items():
            await expect(total(mia, key).locator("[data-test=value]")).to_have_text(value)
            await expect(total(mia, key).locator("[data-test=sub]")).to_have_text(sub)

        days = [(desk.today - timedelta(days=n)).isoformat() for n in (3, 1, 0)]
        await expect(mia.t("rp-row")).to_have_count(3)
        for i, day in enumerate(days):
            await expect(mia.t("rp-row").nth(i)).to_have_attribute("data-group", day)
        today = row(mia, days[2])
        for field, text in {
            "volume": "3",
            "abandon_rate": "33.3%",
            "wait_median_s": "20 s",
            "wait_p90_s": "28 s",
            "first_response_median_s": "45 s",
            "first_response_p90_s": "1 min 05 s",
            "sla_attainment": "33.3%",
            "csat": "50%",
            "fcr_rate": "—",  # both candidates are within their window: pending
            "handle_median_s": "7 min 30 s",
            "ces": "100%",
            "effort_response_rate": "50%",
        }.items():
            await expect(col(today, field)).to_have_text(text)
        await expect(col(row(mia, days[0]), "fcr_rate")).to_have_text("100%")
        table = mia.t("rp-table")
        await expect(table.locator("caption")).to_contain_text("Conversations by day")
        # the group, then 15 figures (no Offline column when no message was left offline) and
        # the 2 of customer effort (asked in this period)
        await expect(table.locator("thead th[scope=col]")).to_have_count(18)
        await expect(table.locator("tbody th[scope=row]")).to_have_count(3)
        await expect(col(mia.t("rp-total-row"), "volume")).to_have_text("6")

        # by skill: each with its goal, Billing below its 80 % in red
        await choose(mia, group="skill")
        await expect(mia.t("rp-row")).to_have_count(2)
        billing, tech = row(mia, desk.billing), row(mia, desk.tech)
        await expect(billing.locator("th")).to_have_text("Billing")
        await expect(col(billing, "volume")).to_have_text("4")
        await expect(col(billing, "sla_attainment")).to_have_text("50% / 80%")
        await expect(col(billing, "sla_attainment")).to_have_class("rp-num rp-bad")
        await expect(col(tech, "wait_median_s")).to_have_text("33 s")
        await expect(col(tech, "wait_p90_s")).to_have_text("55 s")
        await expect(col(tech, "transfer_rate")).to_have_text("50%")

        # sorting by a figure: highest first, then the other way
        sort = mia.t("rp-sort-wait_median_s")
        await sort.click()
        await expect(mia.t("rp-row").first).to_have_attribute("data-group", str(desk.tech))
        header = mia.page.locator('th[data-col="wait_median_s"]')
        await expect(header).to_have_attribute("aria-sort", "descending")
        await mia.t("rp-sort-wait_median_s").click()
        await expect(mia.t("rp-row").first).to_have_attribute("data-group", str(desk.billing))
        await expect(header).to_have_attribute("aria-sort", "ascending")

        # by agent and by tag: the chat nobody took, the untagged ones
        await choose(mia, group="agent")
        await expect(mia.t("rp-row")).to_have_count(3)
        # by name, whatever the ids; the chat nobody took last
        await expect(mia.t("rp-row").locator("th")).to_have_text(["Ann", "Bob", "No agent"])
        await choose(mia, group="tag")
        await expect(col(row(mia, "refund"), "volume")).to_have_text("3")
        await expect(col(row(mia, "bug"), "volume")).to_have_text("1")
        await expect(col(row(mia, ""), "volume")).to_have_text("3")
        await expect(row(mia, "").locator("th")).to_have_text("No tag")
    finally:
        await mia.close()


async def test_periods(browser: Browser, server: Server, desk: Desk) -> None:
    mia = await open_reports(browser, server, desk)
    try:
        # today, by hour: the two morning hours of the browser's zone
        await choose(mia, period="today", group="hour")
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("3")
        await expect(mia.t("rp-row")).to_have_count(2)
        day = desk.today.isoformat()
        await expect(col(row(mia, f"{day}T09:00"), "volume")).to_have_text("2")
        await expect(col(row(mia, f"{day}T10:00"), "abandon_rate")).to_have_text("100%")

        # yesterday: Bob's two tech chats
        await choose(mia, period="yesterday")
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("2")

        # custom dates: the one day three days ago, by skill
        first = (desk.today - timedelta(days=3)).isoformat()
        await choose(mia, period="custom", group="skill")
        await mia.t("rp-from").fill(first)
        async with mia.page.expect_response(lambda r: "/reports/conversations" in r.url):
            await mia.t("rp-to").fill(first)
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("1")
        await expect(total(mia, "fcr").locator("[data-test=value]")).to_have_text("100%")
        # nobody was asked the effort question that day: no effort tile, no effort columns
        await expect(total(mia, "ces")).to_have_count(0)
        await expect(mia.page.locator('th[data-col="ces"]')).to_have_count(0)
        await mia.t("rp-to").fill((desk.today - timedelta(days=5)).isoformat())
        await expect(mia.t("rp-status")).to_have_text("The last day is before the first.")

        # a period with nothing in it
        empty = (desk.today - timedelta(days=20)).isoformat()
        await mia.t("rp-from").fill(empty)
        await mia.t("rp-to").fill(empty)
        await expect(mia.t("rp-empty")).to_have_text(
            "No closed conversations opened in this period."
        )
        await expect(mia.t("rp-table")).to_have_count(0)
        await expect(mia.t("rp-transfers-empty")).to_be_visible()
    finally:
        await mia.close()


async def downloaded(console: Console, button: str) -> tuple[str, str]:
    """Click a Download CSV button; the file name the browser was given, and the file's text."""
    async with console.page.expect_download() as started:
        await console.t(button).click()
    download = await started.value
    path = await download.path()
    await expect(console.t("rp-status")).to_have_text("CSV downloaded.")
    return download.suggested_filename, path.read_text(encoding="utf-8")


@SQLITE_ONLY
async def test_csv_downloads(browser: Browser, server: Server, desk: Desk) -> None:
    """Each CSV is fetched with the session's token and saved by the browser, named after the
    period and the grouping, holding the figures of the period on screen."""
    mia = await open_reports(browser, server, desk)
    try:
        week = f"{(desk.today - timedelta(days=6)).isoformat()}_to_{desk.today.isoformat()}"
        await choose(mia, group="skill")
        await expect(mia.t("rp-row")).to_have_count(2)
        name, text = await downloaded(mia, "rp-csv")
        assert name == f"warmline-conversations-{week}-by-skill.csv"
        by_skill = {line["group"]: line for line in csv.DictReader(io.StringIO(text))}
        assert set(by_skill) == {str(desk.billing), str(desk.tech)}
        assert by_skill[str(desk.billing)]["name"] == "Billing"
        assert by_skill[str(desk.billing)]["volume"] == "4"
        assert by_skill[str(desk.billing)]["sla_attainment"] == "0.5"
        assert by_skill[str(desk.tech)]["wait_median_s"] == "33.0"

        # the transfer report's: no transfer recorded, but its conversations' side counts the
        # one transferred chat of the five handled (docs/api.md#transfer-report)
        name, text = await downloaded(mia, "rp-csv-transfers")
        assert name == f"warmline-transfers-{week}.csv"
        lines = {(ln["section"], ln["group_by"]): ln for ln in csv.DictReader(io.StringIO(text))}
        assert lines["transfers", "total"]["transfers"] == "0"
        assert lines["conversations", "total"]["handled"] == "5"
        assert lines["conversations", "total"]["transferred"] == "1"

        # the quality report's, by agent: nobody was reviewed, a header and no line
        name, text = await downloaded(mia, "rp-csv-quality")
        assert name == f"warmline-quality-{week}-by-agent.csv"
        header, *rest = text.splitlines()
        assert header.startswith("group,name,reviews,scored,average_score")
        assert rest == []

        # yesterday by hour: a one-day file name
        await choose(mia, period="yesterday", group="hour")
        name, text = await downloaded(mia, "rp-csv")
        yesterday = (desk.today - timedelta(days=1)).isoformat()
        assert name == f"warmline-conversations-{yesterday}-by-hour.csv"
        hours = [line["group"] for line in csv.DictReader(io.StringIO(text))]
        assert hours == [f"{yesterday}T14:00", f"{yesterday}T15:00"]
    finally:
        await mia.close()


@SQLITE_ONLY
async def test_errors_and_coming_back(browser: Browser, server: Server, desk: Desk) -> None:
    mia = await open_reports(browser, server, desk)
    try:
        # the server fails: the panel says why and offers to try again
        async def fail(route: Route) -> None:
            await route.fulfill(
                status=503, json={"status": 503, "detail": "The database cannot be reached."}
            )

        await mia.page.route("**/api/v1/reports/conversations*", fail)
        await mia.t("rp-refresh").click()
        status = mia.t("rp-status")
        await expect(status).to_contain_text("The database cannot be reached.")
        await expect(status).to_have_attribute("role", "alert")
        await mia.page.unroute("**/api/v1/reports/conversations*", fail)
        await status.get_by_role("button", name="Try again").click()
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("6")
        await expect(status).to_have_text("")

        # the choices survive a trip to the live view and back
        await choose(mia, period="yesterday", group="skill")
        await mia.t("tab-live").click()
        await expect(mia.t("supervisor")).to_be_visible()
        await mia.t("tab-reports").click()
        await expect(mia.t("rp-group")).to_have_value("skill")
        await expect(mia.t("rp-period")).to_have_value("yesterday")
        await expect(mia.t("rp-row")).to_have_count(1)
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("2")

        # a server whose time zone database lacks the browser's zone: the report in UTC, said
        async def zone_unknown(route: Route) -> None:
            if "tz=UTC" in route.request.url:
                await route.continue_()
                return
            problem = {"field": "query.tz", "problem": "not an IANA time zone name"}
            await route.fulfill(
                status=422, json={"status": 422, "code": "invalid_request", "errors": [problem]}
            )

        await mia.page.route("**/api/v1/reports/conversations*", zone_unknown)
        await mia.t("rp-refresh").click()
        await expect(mia.t("rp-range")).to_contain_text(
            f"UTC (the server does not know {desk.zone}: days and hours are UTC's)"
        )
        await expect(total(mia, "volume").locator("[data-test=value]")).to_have_text("2")
        await expect(mia.t("rp-status")).to_have_text("")
    finally:
        await mia.close()


TRANSFERS = {
    "since": "2026-11-28T00:00:00Z",
    "until": "2026-12-05T00:00:00Z",
    "total": 4,
    "with_repeat": 1,
    "repeat_share": 0.25,
    "by_kind": {"warm": 3, "cold": 1, "escalation": 0},
    "outcomes": {"accepted": 4, "declined": 2, "expired": 1, "cancelled": 0, "pending": 1},
    "accept_median_s": 42.5,
    "accept_p90_s": 95.0,
    "bounce_median_s": 75,  # a figure this console does not know: shown, labelled by its name
    "by_skill": [
        {
            "skill": {"id": 2, "name": "Billing"},
            "transfers": 4,
            "with_repeat": 1,
            "repeat_share": 0.25,
            "outcomes": {"accepted": 4, "declined": 2, "expired": 1, "cancelled": 0, "pending": 1},
            "accept_median_s": 42.5,
            "accept_p90_s": 95.0,
        }
    ],
    "by_agent": [
        {
            "agent": {"id": "5d0c2b8e-8a3f-4f0e-b1d4-7e6a9c3f2e18", "name": "Ann"},
            "transfers": 3,
            "with_repeat": 1,
            "repeat_share": 0.3333,
            "declined": 2,
            "expired": 0,
            "accept_median_s": 30.0,
            "accept_p90_s": 61.0,
        },
        {
            "agent": None,
            "transfers": 1,
            "with_repeat": 0,
            "repeat_share": 0.0,
            "declined": 0,
            "expired": 1,
            "accept_median_s": None,
            "accept_p90_s": None,
        },
    ],
    "conversations": {
        "total": {
            "handled": 20,
            "transferred": 4,
            "transfer_rate": 0.2,
            "ping_pong": 1,
            "ping_pong_share": 0.25,
        },
        "by_skill": [],
        "by_agent": [],
    },
}
QUALITY = {
    "since": "2026-11-28T00:00:00Z",
    "until": "2026-12-05T00:00:00Z",
    "group_by": "agent",
    "tz": "UTC",
    "labels": {"greeting": "Greeting", "accuracy": "Accuracy"},
    "total": {
        "group": None,
        "name": None,
        "reviews": 3,
        "scored": 3,
        "average_score": 76.85,
        "criteria": {"greeting": 83.33, "accuracy": 91.67},
    },
    "rows": [
        {
            "group": "5d0c2b8e-8a3f-4f0e-b1d4-7e6a9c3f2e18",
            "name": "Ann",
            "reviews": 2,
            "scored": 2,
            "average_score": 65.28,
            "criteria": {"greeting": 75.0, "accuracy": 87.5},
        }
    ],
}


@SQLITE_ONLY
async def test_transfer_and_quality_sections(browser: Browser, server: Server, desk: Desk) -> None:
    """The transfer and quality sections render the documented shapes (answered here by the
    browser, so that this test holds the panel to docs/api.md whatever the server's data):
    times to accept, outcomes, ping-pong, per agent, a field the panel does not know yet, and
    the quality averages per criterion."""
    console = await Console.open(browser, server, timezone_id=desk.zone)
    await console.page.route(
        "**/api/v1/reports/transfers*", lambda route: route.fulfill(json=TRANSFERS)
    )
    await console.page.route(
        "**/api/v1/reports/quality*", lambda route: route.fulfill(json=QUALITY)
    )
    try:
        await console.login(desk.supervisor)
        await console.t("tab-supervisor").click()
        await console.t("tab-reports").click()
        for key, value, sub in [
            ("tr-total", "4", "warm 3 · cold 1 · escalation 0"),
            ("tr-accept", "43 s", "p90 1 min 35 s"),
            ("tr-outcomes", "3", "declined 2 · expired 1 · cancelled 0 · pending 1"),
            ("tr-repeat", "1", "25% of transfers"),
            ("tr-pingpong", "25%", "1 of 4 transferred chats"),
        ]:
            await expect(total(console, key).locator("[data-test=value]")).to_have_text(value)
            await expect(total(console, key).locator("[data-test=sub]")).to_have_text(sub)
        unknown = total(console, "tr-bounce_median_s")
        await expect(unknown).to_contain_text("Bounce median")
        await expect(unknown.locator("[data-test=value]")).to_have_text("1 min 15 s")
        agents = console.t("rp-transfers-agent-row")
        await expect(agents).to_have_count(2)
        await expect(agents.first.locator("th")).to_have_text("Ann")
        await expect(col(agents.first, "declined")).to_have_text("2")
        await expect(col(agents.first, "accept_median_s")).to_have_text("30 s")
        await expect(agents.last.locator("th")).to_have_text("Not taken yet or agent deleted")
        await expect(col(agents.last, "accept_median_s")).to_have_text("—")
        skills = console.t("rp-transfers-skill-row")
        await expect(col(skills.first, "expired")).to_have_text("1")

        quality = console.t("rp-quality")
        await expect(quality).to_be_visible()
        await expect(total(console, "qa-score").locator("[data-test=value]")).to_have_text("76.9")
        await expect(total(console, "qa-greeting").locator("[data-test=value]")).to_have_text(
            "83.3"
        )
        ann = console.t("rp-quality-row").first
        await expect(ann.locator("th")).to_have_text("Ann")
        await expect(col(ann, "accuracy")).to_have_text("87.5")
        await expect(col(ann, "average_score")).to_have_text("65.3")
    finally:
        await console.close()
