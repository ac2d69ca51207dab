"""`GET /api/v1/reports/conversations` over HTTP (docs/api.md#reports): the simulated day of
tests/integration/test_reports.py, reported in JSON and CSV by a supervisor, with the names and
targets of skills, and the requests it refuses."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from app.api.v1.reports import ReportLine
from app.store.db import Database
from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.integration.desk import Desk
from tests.integration.test_reports import START, TOTAL, simulate_day

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
DAY = {"since": "2026-12-01T00:00:00Z", "until": "2026-12-02T00:00:00Z"}


@asynccontextmanager
async def api(server: Server, client: Client) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {client.token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


def invalid(response: httpx.Response) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return {e["field"] for e in response.json()["errors"]}


class TestConversationReport:
    async def test_json_and_csv(self, backend: Backend) -> None:
        """By skill: the day's total and each skill's line with its name and target, as JSON;
        the same lines as CSV (by `Accept` or `format=csv`), a header first; hours in a zone."""
        db = Database(backend.database_url, pool_size=5)
        try:
            ids = await simulate_day(Desk(db, START))
        finally:
            await db.dispose()
        server = await Server(backend).start()
        try:
            boss = await Client.agent(
                server, await create_agent(backend, name="Boss", role=Role.SUPERVISOR)
            )
            async with api(server, boss) as http:
                response = await http.get(
                    "/reports/conversations", params={**DAY, "group_by": "skill"}
                )
                assert response.status_code == 200, response.text
                body = response.json()
                assert body["group_by"] == "skill"
                assert body["tz"] == "UTC"
                assert body["skill_id"] is None
                assert body["fcr_window_seconds"] == 86_400
                assert body["total"] == {
                    "group": None,
                    "name": None,
                    "sla_target_percent": None,
                    **TOTAL,
                }
                rows = {row["group"]: row for row in body["rows"]}
                billing = rows[str(ids["billing"])]
                assert (billing["name"], billing["sla_target_percent"]) == ("Billing", 80)
                assert (billing["volume"], billing["sla_attainment"]) == (4, 0.25)
                assert rows[str(ids["sales"])]["offline"] == 1
                assert [row["group"] for row in body["rows"]] == sorted(rows)

                by_accept = await http.get(
                    "/reports/conversations",
                    params={**DAY, "group_by": "skill"},
                    headers={"Accept": "text/csv"},
                )
                assert by_accept.status_code == 200, by_accept.text
                assert by_accept.headers["content-type"].startswith("text/csv")
                assert "attachment" in by_accept.headers["content-disposition"]
                lines = list(csv.DictReader(io.StringIO(by_accept.text)))
                assert by_accept.text.split("\r\n", 1)[0] == ",".join(ReportLine.model_fields)
                assert len(lines) == 3
                as_csv = {line["group"]: line for line in lines}[str(ids["billing"])]
                assert as_csv["volume"] == "4"
                assert as_csv["sla_attainment"] == "0.25"
                assert as_csv["csat"] == "0.5"
                by_format = await http.get(
                    "/reports/conversations", params={**DAY, "group_by": "skill", "format": "csv"}
                )
                assert by_format.text == by_accept.text

                of_billing = await http.get(
                    "/reports/conversations",
                    params={**DAY, "group_by": "tag", "skill_id": ids["billing"]},
                )
                assert of_billing.json()["skill_id"] == ids["billing"]
                assert of_billing.json()["total"]["volume"] == 4
                assert [(r["group"], r["volume"]) for r in of_billing.json()["rows"]] == [
                    ("refund", 1),
                    (None, 3),
                ]

                by_hour = await http.get(
                    "/reports/conversations",
                    params={**DAY, "group_by": "hour", "tz": "Europe/Paris"},
                )
                hours = [row["group"] for row in by_hour.json()["rows"]]
                assert hours == ["2026-12-01T10:00", "2026-12-01T11:00", "2026-12-01T13:00"]

        finally:
            await server.stop()

    async def test_refusals(self, backend: Backend) -> None:
        """422 for an unknown zone, an unknown grouping or an empty range; 403 for a plain
        agent (reports are for supervisors, admins and keys with `reports:read`)."""
        server = await Server(backend).start()
        try:
            boss = await Client.agent(
                server, await create_agent(backend, name="Boss", role=Role.SUPERVISOR)
            )
            agent = await Client.agent(server, await create_agent(backend, name="Al"))
            async with api(server, boss) as http:
                bad: dict[str, Any] = {**DAY, "tz": "Mars/Olympus"}
                assert invalid(await http.get("/reports/conversations", params=bad)) == {"query.tz"}
                for zone in ("America", "localtime", "../etc/passwd", ""):
                    bad = {**DAY, "tz": zone}
                    assert invalid(await http.get("/reports/conversations", params=bad)) == {
                        "query.tz"
                    }, zone
                bad = {**DAY, "group_by": "week"}
                assert "query.group_by" in invalid(
                    await http.get("/reports/conversations", params=bad)
                )
                bad = {"since": DAY["until"], "until": DAY["since"]}
                assert invalid(await http.get("/reports/conversations", params=bad)) == {
                    "query.until"
                }
            async with api(server, agent) as http:
                refused = await http.get("/reports/conversations", params=DAY)
                assert refused.status_code == 403
        finally:
            await server.stop()
