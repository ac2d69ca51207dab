"""The customer effort question (CES) end to end: an admin switches it on in the routing
policy, a chat that closes then asks it (`effort_asked` in its `conversation.closed`), the
visitor answers it over REST, and the answer is stored on the conversation, in its log, in its
report figures and in the conversations API; bad answers and answers to a question that was
not asked are refused with a problem detail and store nothing (docs/api.md#visitor-conversations).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from app.chat import events as kinds
from app.store.db import Database
from app.store.models import Conversation, ConversationEvent, ConversationMetrics, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
EFFORT_FIGURES = ("effort_asked", "effort_responses", "effort_easy", "ces", "effort_response_rate")


def bearer(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.token}"}


def problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code, response.json()


async def closed_chat(server: Server, ann: Client) -> tuple[Client, str, dict[str, Any]]:
    """A chat of Ada's that Ann answers and closes; the visitor's `conversation.closed`."""
    ada = await Client.visitor(server, name="Ada")
    await ada.connect()
    cid = (await ada.message("My parcel is late"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=cid)
    await ann.message("It arrives tomorrow.", conversation_id=cid)
    await ann.send({"type": "close", "conversation_id": cid})
    closed = await ada.event("conversation.closed", conversation_id=cid)
    return ada, cid, closed


async def stored(backend: Backend, cid: str) -> tuple[Any, list[str], Any]:
    """The conversation's effort, its effort events' kinds and its figures' (asked, effort)."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            row = await session.get(Conversation, uuid.UUID(cid))
            assert row is not None
            events = list(
                await session.scalars(
                    select(ConversationEvent.kind).where(
                        ConversationEvent.conversation_id == row.id,
                        ConversationEvent.kind == kinds.EFFORT_RATED,
                    )
                )
            )
            figures = await session.get(ConversationMetrics, row.id)
            assert figures is not None
            return row.effort, events, (figures.effort_asked, figures.effort)
    finally:
        await db.dispose()


class TestEffortQuestion:
    async def test_asked_when_on_answered_and_stored(self, backend: Backend) -> None:
        """Switched on by an admin: the close asks it; 0, 8, "x", 5.5, true and a missing score
        are refused (422) and store nothing; 6 then 7 are stored, the latest counting, and the
        conversations API shows it next to the rating."""
        server = await Server(backend).start()
        try:
            root = await Client.agent(
                server, await create_agent(backend, name="Root", role=Role.ADMIN, capacity=0)
            )
            ann = await Client.agent(server, await create_agent(backend, name="Ann"))
            await ann.connect()
            async with httpx.AsyncClient(base_url=f"{server.http}/api/v1") as http:
                off = await http.get("/routing/policy", headers=bearer(root))
                assert off.json()["effort_survey"] is False
                on = await http.patch(
                    "/routing/policy", json={"effort_survey": True}, headers=bearer(root)
                )
                assert on.status_code == 200, on.text
                assert on.json()["effort_survey"] is True
                nulled = await http.patch(
                    "/routing/policy", json={"effort_survey": None}, headers=bearer(root)
                )
                assert nulled.status_code == 422

                ada, cid, closed = await closed_chat(server, ann)
                assert closed["body"]["effort_asked"] is True
                url = f"/visitor/conversations/{cid}/effort"
                for body in (
                    {"score": 0},
                    {"score": 8},
                    {"score": "x"},
                    {"score": 5.5},
                    {"score": True},
                    {"score": "6"},
                    {},
                ):
                    bad = await http.put(url, json=body, headers=bearer(ada))
                    problem(bad, 422, "invalid_request")
                assert await stored(backend, cid) == (None, [], (True, None))

                first = await http.put(url, json={"score": 6}, headers=bearer(ada))
                assert first.status_code == 200, first.text
                assert first.json()["score"] == 6
                again = await http.put(url, json={"score": 7}, headers=bearer(ada))
                assert again.status_code == 200, again.text
                # The same answer again (a widget's retry): answered as stored, nothing added.
                retry = await http.put(url, json={"score": 7}, headers=bearer(ada))
                assert retry.status_code == 200, retry.text
                assert retry.json()["answered_at"] == again.json()["answered_at"]
                assert await stored(backend, cid) == (
                    7,
                    [kinds.EFFORT_RATED, kinds.EFFORT_RATED],
                    (True, 7),
                )
                about = await http.get(f"/conversations/{cid}", headers=bearer(root))
                assert about.status_code == 200, about.text
                assert about.json()["effort"]["score"] == 7
                assert about.json()["csat"] is None  # answered without a rating
                text = await http.get(
                    f"/conversations/{cid}/transcript",
                    params={"format": "text"},
                    headers=bearer(root),
                )
                assert text.status_code == 200, text.text
                assert "Customer effort: 7 of 7" in text.text

                # The report, JSON (its total) and CSV: one chat asked, answered 7 (easy).
                report = await http.get("/reports/conversations", headers=bearer(root))
                assert report.status_code == 200, report.text
                total = report.json()["total"]
                assert {k: total[k] for k in EFFORT_FIGURES} == {
                    "effort_asked": 1,
                    "effort_responses": 1,
                    "effort_easy": 1,
                    "ces": 1.0,
                    "effort_response_rate": 1.0,
                }
                csv = await http.get(
                    "/reports/conversations", params={"format": "csv"}, headers=bearer(root)
                )
                header, day = csv.text.splitlines()
                assert (
                    dict(zip(header.split(","), day.split(","), strict=True)).items()
                    >= {
                        "effort_asked": "1",
                        "effort_responses": "1",
                        "effort_easy": "1",
                        "ces": "1.0",
                        "effort_response_rate": "1.0",
                    }.items()
                )
        finally:
            await server.stop()

    async def test_not_asked_when_off(self, backend: Backend) -> None:
        """Off (the default): the close does not ask, and an answer is refused with 409
        `effort_not_asked`, storing nothing; the CSAT rating works as before."""
        server = await Server(backend).start()
        try:
            ann = await Client.agent(server, await create_agent(backend, name="Ann"))
            await ann.connect()
            ada, cid, closed = await closed_chat(server, ann)
            assert "effort_asked" not in closed["body"]
            url = f"/api/v1/visitor/conversations/{cid}"
            async with httpx.AsyncClient(base_url=server.http) as http:
                refused = await http.put(f"{url}/effort", json={"score": 6}, headers=bearer(ada))
                problem(refused, 409, "effort_not_asked")
                rated = await http.put(f"{url}/rating", json={"score": 4}, headers=bearer(ada))
                assert rated.status_code == 200, rated.text
                # The same rating again (a widget's retry): answered as stored, nothing added.
                retry = await http.put(f"{url}/rating", json={"score": 4}, headers=bearer(ada))
                assert retry.status_code == 200, retry.text
                assert retry.json()["rated_at"] == rated.json()["rated_at"]
            assert await stored(backend, cid) == (None, [], (False, None))
            db = Database(backend.database_url)
            try:
                async with db.read() as session:
                    ratings = await session.scalar(
                        select(func.count()).where(
                            ConversationEvent.conversation_id == uuid.UUID(cid),
                            ConversationEvent.kind == kinds.RATED,
                        )
                    )
                assert ratings == 1
            finally:
                await db.dispose()
        finally:
            await server.stop()

    async def test_open_or_someone_elses_chat(self, backend: Backend) -> None:
        """Before the close: 409 `not_closed`; another visitor: 404; no token: 401."""
        server = await Server(backend).start()
        try:
            ann = await Client.agent(server, await create_agent(backend, name="Ann"))
            await ann.connect()
            ada = await Client.visitor(server, name="Ada")
            await ada.connect()
            cid = (await ada.message("Hello"))["conversation_id"]
            await ann.event("agent.joined", conversation_id=cid)
            eve = await Client.visitor(server, name="Eve")
            url = f"/api/v1/visitor/conversations/{cid}/effort"
            async with httpx.AsyncClient(base_url=server.http) as http:
                problem(
                    await http.put(url, json={"score": 6}, headers=bearer(ada)), 409, "not_closed"
                )
                problem(
                    await http.put(url, json={"score": 6}, headers=bearer(eve)),
                    404,
                    "conversation_not_found",
                )
                assert (await http.put(url, json={"score": 6})).status_code == 401
        finally:
            await server.stop()
