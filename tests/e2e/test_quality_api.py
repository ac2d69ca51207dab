"""Quality reviews over HTTP (docs/api.md#quality-reviews): a supervisor reviews closed chats,
the agent reads their own, an admin changes the rubric without moving past scores, bad input is
a problem detail that stores nothing, and the report answers per agent in JSON and CSV.

The chats are those of tests/integration/test_quality.py (C1 Ann's, closed; C2 Bob's then
Ann's, closed; C3 Bob's, open), built through the services before the server starts.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from app.auth.tokens import hash_password
from app.store.db import Database
from app.store.models import Agent, QualityReview, QualityRubric, Role
from tests.conftest import Backend
from tests.e2e.harness import PASSWORD, Client, Server, create_agent
from tests.integration.desk import Desk
from tests.integration.test_quality import START

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
WEEK = {"since": "2026-11-30T00:00:00Z", "until": "2026-12-07T00:00:00Z"}
FULL = [
    {"key": "greeting", "value": 5},
    {"key": "empathy", "value": 3, "comment": "Could have acknowledged the wait."},
    {"key": "accuracy", "value": 4},
    {"key": "resolution", "value": 1},
]


@asynccontextmanager
async def api(server: Server, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def desk_day(backend: Backend) -> dict[str, Any]:
    db = Database(backend.database_url, pool_size=5)
    desk = Desk(db, START)
    try:
        billing = await desk.skill("billing")
        tech = await desk.skill("tech")
        ann = await desk.agent("Ann", billing)
        bob = await desk.agent("Bob", tech)
        ada, bea, cy = [await desk.visitor(n) for n in ("Ada", "Bea", "Cy")]
        c1 = await desk.open(ada, 0, billing)
        await desk.accept(ann, c1, 10)
        await desk.say(ann, c1, 20)
        await desk.close(ann, c1, 100)
        c2 = await desk.open(bea, 200, tech)
        await desk.accept(bob, c2, 210)
        await desk.say(bob, c2, 220)
        await desk.transfer(bob, ann, c2, 300, 360)
        await desk.close(ann, c2, 400)
        c3 = await desk.open(cy, 500, tech)
        await desk.accept(bob, c3, 510)
        async with db.write() as session:  # Ann logs in at the console in this test
            await session.execute(
                update(Agent)
                .where(Agent.id == ann.id)
                .values(password_hash=hash_password(PASSWORD))
            )
            ann_email = await session.scalar(select(Agent.email).where(Agent.id == ann.id))
        return {"ann": ann.id, "bob": bob.id, "ann_email": ann_email, "c1": c1, "c2": c2, "c3": c3}
    finally:
        await db.dispose()


async def stored(backend: Backend) -> tuple[int, int]:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            reviews = await session.scalar(select(func.count()).select_from(QualityReview))
            versions = await session.scalar(select(func.count()).select_from(QualityRubric))
        return int(reviews or 0), int(versions or 0)
    finally:
        await db.dispose()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def fields(response: httpx.Response) -> dict[str, str]:
    body = problem(response, 422, "invalid_request")
    return {e["field"]: e["problem"] for e in body["errors"]}


async def refusals(http: httpx.AsyncClient, w: dict[str, Any], first_id: int) -> None:
    """Bad reviews: each a problem detail naming what is wrong (the caller checks that nothing
    was stored)."""
    c1, c2, c3 = w["c1"], w["c2"], w["c3"]
    assert fields(
        await http.post(
            f"/conversations/{c2}/reviews",
            json={"scores": [*FULL[:3], {"key": "resolution", "value": 7}]},
        )
    ) == {"body.scores.3.value": "'resolution' is scored 0 (no) or 1 (yes)"}
    assert "body.scores.4.key" in fields(
        await http.post(
            f"/conversations/{c2}/reviews",
            json={"scores": [*FULL, {"key": "tone", "value": 1}]},
        )
    )
    assert fields(await http.post(f"/conversations/{c2}/reviews", json={"scores": FULL[1:]})) == {
        "body.scores": "every criterion needs a score (null for n/a); missing: greeting"
    }
    assert "body.scores.0.value" in fields(
        await http.post(
            f"/conversations/{c2}/reviews",
            json={"scores": [{"key": "greeting", "value": "5"}, *FULL[1:]]},
        )
    )
    assert fields(
        await http.post(
            f"/conversations/{c1}/reviews",
            json={"scores": FULL, "agent_id": str(w["bob"])},
        )
    ) == {"body.agent_id": "this agent never held the conversation"}
    still_open = await http.post(f"/conversations/{c3}/reviews", json={"scores": FULL})
    assert problem(still_open, 409, "not_closed")["state"] == "assigned"
    nowhere = await http.post(f"/conversations/{uuid.uuid4()}/reviews", json={"scores": FULL})
    problem(nowhere, 404, "conversation_not_found")
    again = await http.post(f"/conversations/{c1}/reviews", json={"scores": FULL})
    assert problem(again, 409, "already_reviewed")["review_id"] == first_id


async def as_admin(http: httpx.AsyncClient, backend: Backend, first: dict[str, Any]) -> None:
    """A rubric change refused, then made (past scores kept); the report; a delete."""
    c1 = first["conversation_id"]
    bad = await http.put(
        "/quality/rubric",
        json={"criteria": [{"key": "tone", "label": "Tone", "scale": "yes_no", "points": 5}]},
    )
    assert fields(bad) == {"body.criteria.0.points": "a yes/no criterion has no points"}
    changed = await http.put(
        "/quality/rubric",
        json={"criteria": [{"key": "tone", "label": "Tone", "scale": "yes_no"}]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert await stored(backend) == (2, 2)
    kept = (await http.get(f"/conversations/{c1}/reviews")).json()["reviews"][0]
    assert (kept["rubric_version"], kept["score"]) == (1, 80.56)
    assert [s["key"] for s in kept["scores"]] == [
        "greeting",
        "empathy",
        "accuracy",
        "resolution",
    ]

    report = await http.get("/reports/quality", params=WEEK)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["group_by"] == "agent"
    rows = {row["name"]: row for row in body["rows"]}
    assert rows["Ann"]["reviews"] == 1
    assert rows["Ann"]["average_score"] == 80.56
    assert rows["Bob"]["criteria"]["empathy"] == 50.0
    assert body["total"]["reviews"] == 2
    assert body["labels"]["tone"] == "Tone"

    as_csv = await http.get("/reports/quality", params={**WEEK, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.split("\r\n", 1)[0] == (
        "group,name,reviews,scored,average_score,accuracy,empathy,greeting,resolution,tone"
    )
    lines = {line["name"]: line for line in csv.DictReader(io.StringIO(as_csv.text))}
    assert lines["Ann"]["average_score"] == "80.56"
    assert lines["Ann"]["tone"] == ""
    bad_zone = await http.get("/reports/quality", params={**WEEK, "tz": "Mars/Base"})
    assert fields(bad_zone) == {"query.tz": "not an IANA time zone name"}

    assert (await http.delete(f"/quality/reviews/{first['id']}")).status_code == 204
    gone = await http.delete(f"/quality/reviews/{first['id']}")
    problem(gone, 404, "review_not_found")


async def test_review_lifecycle_and_report(postgres_backend: Backend) -> None:
    """A supervisor reviews C1 and C2 (80.56 each, the default rubric's example); the agent
    sees them at /mine; refusals store nothing; an admin's rubric change leaves both scores
    alone; the report per agent says Ann: 2 reviews, 80.56; CSV has a column per criterion."""
    w = await desk_day(postgres_backend)
    backend = postgres_backend
    server = await Server(backend).start()
    try:
        sam = await Client.agent(
            server, await create_agent(backend, name="Sam", role=Role.SUPERVISOR)
        )
        pat = await Client.agent(server, await create_agent(backend, name="Pat", role=Role.ADMIN))
        ann = await Client.agent(server, w["ann_email"])
        c1, c2 = w["c1"], w["c2"]

        async with api(server, ann.token) as http:
            rubric = (await http.get("/quality/rubric")).json()
            assert rubric["version"] == 1
            assert [c["key"] for c in rubric["criteria"]] == [
                "greeting",
                "empathy",
                "accuracy",
                "resolution",
            ]
            # An agent cannot review, nor read the team's reviews.
            refused = await http.post(f"/conversations/{c1}/reviews", json={"scores": FULL})
            assert problem(refused, 403, "forbidden")["required_role"] == "supervisor"
            assert (await http.get(f"/conversations/{c1}/reviews")).status_code == 403
        visitor = await Client.visitor(server)
        async with api(server, visitor.token) as http:
            got = await http.post(f"/conversations/{c1}/reviews", json={"scores": FULL})
            problem(got, 401, "invalid_token")

        async with api(server, sam.token) as http:
            made = await http.post(
                f"/conversations/{c1}/reviews", json={"scores": FULL, "comment": "Good chat"}
            )
            assert made.status_code == 201, made.text
            first = made.json()
            assert (first["agent_id"], first["agent_name"]) == (str(w["ann"]), "Ann")
            assert (first["reviewer_name"], first["rubric_version"]) == ("Sam", 1)
            assert first["score"] == 80.56
            assert [s["percent"] for s in first["scores"]] == [100.0, 50.0, 75.0, 100.0]
            assert first["scores"][1]["comment"] == "Could have acknowledged the wait."

            await refusals(http, w, first["id"])
            assert await stored(backend) == (1, 1)

            second = await http.post(
                f"/conversations/{c2}/reviews", json={"scores": FULL, "agent_id": str(w["bob"])}
            )
            assert second.status_code == 201, second.text
            assert second.json()["agent_name"] == "Bob"
            listed = (await http.get(f"/conversations/{c1}/reviews")).json()["reviews"]
            assert [r["id"] for r in listed] == [first["id"]]

        async with api(server, ann.token) as http:
            mine = (await http.get("/quality/reviews/mine")).json()["reviews"]
            assert [(r["id"], r["score"], r["comment"]) for r in mine] == [
                (first["id"], 80.56, "Good chat")
            ]
            # Ann may not change Sam's review (she is not even a reviewer).
            denied = await http.put(f"/quality/reviews/{first['id']}", json={"scores": FULL})
            problem(denied, 403, "forbidden")

        async with api(server, pat.token) as http:
            await as_admin(http, backend, first)
    finally:
        await server.stop()
