"""Privacy over REST (docs/api.md#privacy): a visitor's export and erasure, and the retention
policy's settings and runs, against a real server on both backends, with chats made over the
WebSockets as customers and agents make them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select, update

from app.auth.keys import create_api_key
from app.store.db import Database
from app.store.models import (
    Attachment,
    Conversation,
    ConversationEvent,
    Role,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from app.webhooks.events import EVENT_TYPES
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.test_attachments import png, upload
from tests.e2e.webhook_receiver import Receiver, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def start(backend: Backend) -> Server:
    # No housekeeping round or scheduled retention run during a test: the tests ask for runs.
    return await Server(
        backend, heartbeat_interval="30", heartbeat_timeout="60", retention_interval="3600"
    ).start()


@asynccontextmanager
async def api(server: Server, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def agent(server: Server, backend: Backend, name: str, role: Role = Role.AGENT) -> Client:
    return await Client.agent(server, await create_agent(backend, name=name, role=role))


async def customer(server: Server, **body: Any) -> tuple[Client, str]:
    """A visitor session (socket open) and the visitor's id."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.post("/api/v1/visitor/sessions", json=body)
        assert response.status_code == 201, response.text
    client = Client(server, "visitor", response.json()["token"])
    await client.connect()
    return client, response.json()["visitor_id"]


async def api_key(backend: Backend, *scopes: str) -> str:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            issued = await create_api_key(
                session, name="crm", scopes=list(scopes), created_by=None, now=datetime.now(UTC)
            )
        return issued.key
    finally:
        await db.dispose()


async def rows(backend: Backend, model: Any, *where: Any) -> list[Any]:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            return list(await session.scalars(select(model).where(*where)))
    finally:
        await db.dispose()


async def age(backend: Backend, conversation_id: str, days: int) -> None:
    """Move a conversation's times `days` back, as if it had happened then."""
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            row = await session.get(Conversation, uuid.UUID(conversation_id))
            assert row is not None
            back = timedelta(days=days)
            await session.execute(
                update(Conversation)
                .where(Conversation.id == row.id)
                .values(
                    created_at=row.created_at - back,
                    closed_at=None if row.closed_at is None else row.closed_at - back,
                )
            )
    finally:
        await db.dispose()


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def texts(document: dict[str, Any]) -> list[str]:
    return [
        event["body"].get("text", "")
        for conversation in document["conversations"]
        for event in conversation["events"]
        if event["kind"] == "message"
    ]


@dataclass
class Scene:
    """Ada (two chats: one closed, rated, with a file and a note; one open) and Bob."""

    ann: Client
    lee: Client
    key: str
    ada: Client
    ada_id: str
    bob_id: str
    first: str
    second: str
    other: str
    file_id: str


async def scene(server: Server, backend: Backend) -> Scene:
    ann = await agent(server, backend, "Ann")
    await ann.connect()
    lee = await agent(server, backend, "Lee", Role.SUPERVISOR)
    key = await api_key(backend, "privacy")
    ada, ada_id = await customer(
        server, name="Ada", email="ada@example.com", attributes={"plan": "pro"}
    )
    bob, bob_id = await customer(server, name="Bob")
    file = await upload(ada, png(), "receipt.png")
    first = (await ada.message("Order 1042 never came", attachments=[file["id"]]))[
        "conversation_id"
    ]
    await ann.event("agent.joined", conversation_id=first)
    await ann.message("Sorry Ada, resending it", conversation_id=first)
    note = {"type": "internal", "conversation_id": first, "client_msg_id": "n1"}
    await ann.send({**note, "text": "note: Ada is upset"})
    await ann.next("ack", client_msg_id="n1")
    await ann.send({"type": "close", "conversation_id": first})
    await ada.event("conversation.closed", conversation_id=first)
    async with httpx.AsyncClient(base_url=server.http) as http:
        rated = await http.put(
            f"/api/v1/visitor/conversations/{first}/rating",
            json={"score": 2, "comment": "Ada was unhappy"},
            headers={"Authorization": f"Bearer {ada.token}"},
        )
        assert rated.status_code == 200, rated.text
    second = (await ada.message("Still waiting, Ada here"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=second)
    other = (await bob.message("Bob's secret"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=other)
    return Scene(ann, lee, key, ada, ada_id, bob_id, first, second, other, file["id"])


async def timings(backend: Backend) -> dict[uuid.UUID, tuple[Any, ...]]:
    return {
        c.id: (c.created_at, c.assigned_at, c.closed_at, c.rating)
        for c in await rows(backend, Conversation)
    }


def check_export(response: httpx.Response, s: Scene) -> None:
    assert response.status_code == 200, response.text
    assert "attachment" in response.headers["content-disposition"]
    document = response.json()
    assert document["format"] == "warmline.visitor-export/1"
    visitor = document["visitor"]
    assert (visitor["name"], visitor["email"]) == ("Ada", "ada@example.com")
    assert visitor["attributes"] == {"plan": "pro"}
    assert [c["id"] for c in document["conversations"]] == [s.first, s.second]
    assert texts(document) == [
        "Order 1042 never came",
        "Sorry Ada, resending it",
        "Still waiting, Ada here",
    ]
    assert document["conversations"][0]["rating"]["comment"] == "Ada was unhappy"
    assert [a["id"] for a in document["attachments"]] == [s.file_id]
    assert document["attachments"][0]["download_url"] == f"/api/v1/attachments/{s.file_id}"
    assert "Bob" not in response.text
    assert "note: Ada is upset" not in response.text
    assert {e["kind"] for c in document["conversations"] for e in c["events"]} <= {
        "conversation.opened", "message", "conversation.queued",
        "conversation.assigned", "agent.joined", "conversation.closed",
        "conversation.rated",
    }  # fmt: skip


async def check_gone(server: Server, s: Scene) -> None:
    """Token, transcript access and the file are gone; so are the file's bytes."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        resumed = await http.post("/api/v1/visitor/sessions", json={"token": s.ada.token})
        problem(resumed, 401, "invalid_token")
        transcript = await http.get(
            f"/api/v1/visitor/conversations/{s.first}/transcript",
            headers={"Authorization": f"Bearer {s.ada.token}"},
        )
        problem(transcript, 401, "invalid_token")
        gone = await http.get(
            f"/api/v1/attachments/{s.file_id}",
            headers={"Authorization": f"Bearer {s.lee.token}"},
        )
        problem(gone, 404, "attachment_not_found")
    assert not [p for p in server.files_dir.rglob("*") if p.is_file()]


def check_erased_export(after: dict[str, Any], record: dict[str, Any]) -> None:
    visitor = after["visitor"]
    assert [visitor[k] for k in ("name", "email", "attributes", "external_id")] == [
        None,
        None,
        {},
        None,
    ]
    assert visitor["erased_at"] is not None
    assert texts(after) == ["", "", ""]
    assert after["attachments"] == []
    rating = after["conversations"][0]["rating"]
    assert (rating["score"], rating["comment"]) == (2, None)
    assert [e["id"] for e in after["erasures"]] == [record["id"]]


async def check_replay(s: Scene, record: dict[str, Any]) -> None:
    """A supervisor replaying the log gets the redacted text and the event saying so."""
    await s.lee.connect()
    await s.lee.send({"type": "resume", "conversations": {s.first: 0}})
    # A replay from the start runs to `conversation.closed`; a client holding the log resumes
    # after its last seq and learns what changed (docs/protocol.md#conversationredacted).
    end = await s.lee.event("conversation.closed", conversation_id=s.first)
    await s.lee.send({"type": "resume", "conversations": {s.first: end["seq"]}})
    redacted = await s.lee.event("conversation.redacted", conversation_id=s.first)
    assert redacted["visibility"] == "agents"
    assert (redacted["body"]["by"], redacted["body"]["erasure_id"]) == ("erasure", record["id"])
    replayed = s.lee.events[s.first]
    said = [e["body"] for e in replayed if e["kind"] in ("message", "note")]
    assert said == [{"text": "", "redacted": True}] * 3
    assert set(redacted["body"]["seqs"]) >= {e["seq"] for e in replayed if e["kind"] == "message"}
    assert all(e["sender"]["name"] is None for e in replayed if e["sender"]["type"] == "visitor")


class TestExportAndErase:
    async def test_export_then_erase(self, backend: Backend) -> None:
        """The export holds the visitor's identity, both their conversations with what was
        written both ways, their rating and their file, and nothing of another visitor or of the
        agents' notes. Erasing closes the open chat, removes identity, token, text and files,
        keeps rows and timings, is recorded, and shows in an agent's replay; erasing again
        changes nothing."""
        server = await start(backend)
        try:
            s = await scene(server, backend)
            before = await timings(backend)
            async with api(server, s.key) as http:
                check_export(await http.get(f"/visitors/{s.ada_id}/export"), s)

            async with api(server, s.lee.token) as http:
                erased = await http.post(f"/visitors/{s.ada_id}/erase")
            assert erased.status_code == 200, erased.text
            record = erased.json()
            assert record["requested_by"].startswith("agent:")
            assert (record["conversations"], record["conversations_closed"]) == (2, 1)
            assert record["attachments_deleted"] == 1
            assert record["events_redacted"] >= 5
            # The open chat ended for its agent, as a system close.
            closed = await s.ann.event("conversation.closed", conversation_id=s.second)
            assert closed["sender"]["type"] == "system"
            await check_gone(server, s)
            async with api(server, s.key) as http:
                check_erased_export((await http.get(f"/visitors/{s.ada_id}/export")).json(), record)
                bobs = (await http.get(f"/visitors/{s.bob_id}/export")).json()
            assert texts(bobs) == ["Bob's secret"]
            # Rows, timings and scores stay (the open one got its close time).
            after = await timings(backend)
            assert set(after) == set(before)
            for kept in (s.first, s.other):
                assert after[uuid.UUID(kept)] == before[uuid.UUID(kept)]
            await check_replay(s, record)

            # Again: harmless, recorded, nothing more to remove.
            async with api(server, s.key) as http:
                again = await http.post(f"/visitors/{s.ada_id}/erase")
                assert again.status_code == 200, again.text
                assert again.json()["requested_by"].startswith("api_key:")
                counts = ("events_redacted", "attachments_deleted", "conversations_closed")
                assert [again.json()[k] for k in counts] == [0, 0, 0]
                listed = await http.get(f"/visitors/{s.ada_id}/erasures")
            assert [e["id"] for e in listed.json()] == [record["id"], again.json()["id"]]
            log = await rows(
                backend, ConversationEvent, ConversationEvent.conversation_id == uuid.UUID(s.first)
            )
            assert sorted(e.seq for e in log) == list(range(1, len(log) + 1))  # still dense
            assert [e.kind for e in log].count("conversation.redacted") == 1
        finally:
            await server.stop()


class TestAccess:
    async def test_refusals(self, backend: Backend) -> None:
        """No token is 401; an agent's session, a key without the scope and a supervisor on
        the retention routes are 403; an unknown visitor is 404 `visitor_not_found`; a bad id
        or policy is 422 naming the field."""
        server = await start(backend)
        try:
            dana = await agent(server, backend, "Dana")
            lee = await agent(server, backend, "Lee", Role.SUPERVISOR)
            reader = await api_key(backend, "transcripts:read")
            _, ada_id = await customer(server, name="Ada")
            unknown = uuid.uuid4()
            routes = [
                ("GET", f"/visitors/{ada_id}/export"),
                ("POST", f"/visitors/{ada_id}/erase"),
                ("GET", f"/visitors/{ada_id}/erasures"),
            ]
            admin_routes = [
                ("GET", "/privacy/retention"),
                ("PUT", "/privacy/retention"),
                ("GET", "/privacy/retention/runs"),
                ("POST", "/privacy/retention/runs"),
            ]
            body = {"closed_after_days": 30, "mode": "purge"}
            async with api(server) as anonymous:
                for method, path in routes + admin_routes:
                    problem(await anonymous.request(method, path, json=body), 401, "invalid_token")
            for token in (dana.token, reader):
                async with api(server, token) as http:
                    for method, path in routes + admin_routes:
                        got = problem(await http.request(method, path, json=body), 403, "forbidden")
                        assert got["required_scope"] in {"privacy", "admin"}
            async with api(server, lee.token) as http:
                for method, path in admin_routes:
                    problem(await http.request(method, path, json=body), 403, "forbidden")
                for method, path in routes:
                    missing = await http.request(method, path.replace(ada_id, str(unknown)))
                    assert problem(missing, 404, "visitor_not_found")["visitor_id"] == str(unknown)
                    bad = problem(
                        await http.request(method, path.replace(ada_id, "nope")),
                        422,
                        "invalid_request",
                    )
                    assert [e["field"] for e in bad["errors"]] == ["path.visitor_id"]
            root = await agent(server, backend, "Root", Role.ADMIN)
            async with api(server, root.token) as http:
                for wrong, field in (
                    ({"closed_after_days": 0}, "body.closed_after_days"),
                    ({"closed_after_days": 30, "mode": "shred"}, "body.mode"),
                    ({"mode": "purge"}, "body.closed_after_days"),
                ):
                    bad = problem(
                        await http.put("/privacy/retention", json=wrong), 422, "invalid_request"
                    )
                    assert [e["field"] for e in bad["errors"]] == [field]
                policy = (await http.get("/privacy/retention")).json()
                assert (policy["closed_after_days"], policy["mode"]) == (None, "anonymise")
                problem(await http.post("/privacy/retention/runs"), 409, "retention_off")
                bad = problem(
                    await http.get("/privacy/retention/runs", params={"limit": 0}),
                    422,
                    "invalid_request",
                )
                assert [e["field"] for e in bad["errors"]] == ["query.limit"]
        finally:
            await server.stop()


def check_logged(server: Server) -> None:
    """Each run wrote its line, with its counts (docs/operations.md#retention)."""
    logged = [line for line in server.output if "privacy.retention run" in line]
    assert len(logged) == 3
    assert all(f"{field}=" in logged[-1] for field in ("batches", "events", "visitors", "node"))
    assert "mode=purge" in logged[-1]
    assert "conversations=1" in logged[-1]


class TestRetention:
    async def test_anonymise_then_purge(self, backend: Backend) -> None:
        """Anonymising removes the text and files of closed conversations older than the policy
        and keeps their rows; recent and open conversations (however old) are never touched; a
        second run finds nothing; purging then deletes the old conversation with its log. Every
        run is recorded."""
        server = await start(backend)
        try:
            ann = await agent(server, backend, "Ann")
            await ann.connect()
            root = await agent(server, backend, "Root", Role.ADMIN)
            chats: dict[str, str] = {}
            for name in ("old", "recent", "open"):
                client, _ = await customer(server, name=name)
                extra: dict[str, Any] = {}
                if name == "old":
                    extra["attachments"] = [(await upload(client, png(), "old.png"))["id"]]
                cid = (await client.message(f"{name} words", **extra))["conversation_id"]
                await ann.event("agent.joined", conversation_id=cid)
                if name != "open":
                    await ann.send({"type": "close", "conversation_id": cid})
                    await ann.event("conversation.closed", conversation_id=cid)
                chats[name] = cid
            await age(backend, chats["old"], 40)
            await age(backend, chats["open"], 400)
            await age(backend, chats["recent"], 10)

            async with api(server, root.token) as http:
                put = await http.put(
                    "/privacy/retention", json={"closed_after_days": 30, "mode": "anonymise"}
                )
                assert put.status_code == 200, put.text
                assert put.json()["updated_by"].startswith("agent:")
                run = await http.post("/privacy/retention/runs")
                assert run.status_code == 200, run.text
                assert run.json()["trigger"] == "request"
                assert (run.json()["mode"], run.json()["conversations"]) == ("anonymise", 1)
                assert run.json()["attachments"] == 1
                events = await rows(backend, ConversationEvent)
                said = {
                    str(e.conversation_id): e.body["text"] for e in events if e.kind == "message"
                }
                assert said == {chats["old"]: "", chats["recent"]: "recent words",
                                chats["open"]: "open words"}  # fmt: skip
                assert await rows(backend, Attachment) == []
                again = await http.post("/privacy/retention/runs")
                assert again.json()["conversations"] == 0

                await http.put(
                    "/privacy/retention", json={"closed_after_days": 30, "mode": "purge"}
                )
                purged = (await http.post("/privacy/retention/runs")).json()
                assert (purged["mode"], purged["conversations"]) == ("purge", 1)
                assert purged["events"] > 0
                left = {str(c.id) for c in await rows(backend, Conversation)}
                assert left == {chats["recent"], chats["open"]}
                assert not await rows(
                    backend,
                    ConversationEvent,
                    ConversationEvent.conversation_id == uuid.UUID(chats["old"]),
                )
                listed = (await http.get("/privacy/retention/runs")).json()
                assert [r["id"] for r in listed] == [
                    purged["id"],
                    again.json()["id"],
                    run.json()["id"],
                ]
                assert [r["mode"] for r in listed] == ["purge", "anonymise", "anonymise"]
        finally:
            await server.stop()
        check_logged(server)


# What Ada wrote, her name, her page and her file's name: none may survive an erasure in the
# webhook delivery log, sent or still to send.
ADAS_WORDS = (b"Lovelace", b"1042", b"ada@example.com", b"receipt", b"shop.example", b"grumpy")
WORDY_TYPES = {"conversation.created", "message.created", "csat.submitted"}


def keeps_words(payload: Any) -> list[bytes]:
    raw = orjson.dumps(payload)
    return [word for word in ADAS_WORDS if word in raw]


def sent_to(receiver: Receiver, conversation_id: str) -> list[dict[str, Any]]:
    """Payloads the receiver accepted for one conversation, in arrival order."""
    payloads = [r.json() for r in receiver.ok()]
    return [p for p in payloads if p["conversation_id"] == conversation_id]


async def deliveries(backend: Backend, conversation_id: str) -> list[WebhookDelivery]:
    found = await rows(
        backend, WebhookDelivery, WebhookDelivery.conversation_id == uuid.UUID(conversation_id)
    )
    return sorted(found, key=lambda d: d.id)


async def hooked(server: Server, backend: Backend, *receivers: Receiver) -> list[str]:
    """An endpoint per receiver, subscribed to every type; their ids."""
    ids = []
    async with api(server, await api_key(backend, "admin")) as admin:
        for receiver in receivers:
            created = await admin.post(
                "/webhooks", json={"url": receiver.url, "events": list(EVENT_TYPES)}
            )
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    return ids


async def ada_and_bob(server: Server, backend: Backend) -> tuple[str, str, str]:
    """Ada's closed and rated chat, full of her words, and Bob's open one: Ada's id and the two
    conversations."""
    ann = await agent(server, backend, "Ann")
    await ann.connect()
    ada, ada_id = await customer(server, name="Ada Lovelace", email="ada@example.com")
    bob, _ = await customer(server, name="Bob")
    file = await upload(ada, png(), "receipt.png")
    said = "Order 1042 never came, write to ada@example.com"
    page = "https://shop.example.com/orders"
    cid = (await ada.message(said, attachments=[file["id"]], page_url=page))["conversation_id"]
    await ann.event("agent.joined", conversation_id=cid)
    await ann.message("Sorry Ms Lovelace, resending 1042", conversation_id=cid)
    await ann.send({"type": "close", "conversation_id": cid})
    await ada.event("conversation.closed", conversation_id=cid)
    async with httpx.AsyncClient(base_url=server.http) as http:
        rated = await http.put(
            f"/api/v1/visitor/conversations/{cid}/rating",
            json={"score": 2, "comment": "grumpy about it"},
            headers={"Authorization": f"Bearer {ada.token}"},
        )
        assert rated.status_code == 200, rated.text
    other = (await bob.message("Bob's order 1042"))["conversation_id"]
    await ann.event("agent.joined", conversation_id=other)
    return ada_id, cid, other


def check_redacted(
    before: list[WebhookDelivery], after: list[WebhookDelivery], ada_id: str
) -> None:
    """Every stored payload of Ada's conversation lost her words and nothing else."""
    assert [(d.id, d.event_id, d.seq, d.status) for d in after] == [
        (d.id, d.event_id, d.seq, d.status) for d in before
    ]
    assert [
        (d.payload["type"], keeps_words(d.payload)) for d in after if keeps_words(d.payload)
    ] == []
    redacted = {d.payload["type"] for d in after if d.payload["data"].get("redacted")}
    assert redacted == WORDY_TYPES
    message = next(d.payload["data"] for d in after if d.payload["type"] == "message.created")
    assert (message["text"], message["attachments"]) == ("", [])
    assert message["sender"] == {"type": "visitor", "id": ada_id, "name": None}


class TestWebhookPayloads:
    async def test_erasure_redacts_the_delivery_log_and_what_is_still_to_send(
        self, backend: Backend
    ) -> None:
        """One endpoint received Ada's events, another fails so they wait. The erasure redacts
        every stored payload of her conversation in its own transaction (text, her name, her
        page, her file, her comment; ids, types, seqs and statuses stay), and the waiting ones
        go out redacted once the endpoint answers. Bob's payloads keep their words."""
        server = await start(backend)
        try:
            async with Receiver() as up, Receiver(default=500) as down:
                up_id, down_id = await hooked(server, backend, up, down)
                ada_id, cid, other = await ada_and_bob(server, backend)
                await wait_for(
                    lambda: any(p["type"] == "csat.submitted" for p in sent_to(up, cid)),
                    what="Ada's rating's webhook",
                )

                async def recorded() -> bool:
                    # Received is not yet recorded: the dispatcher marks a delivery delivered
                    # just after the endpoint's answer. The snapshot below must not race it.
                    return all(
                        d.status is WebhookDeliveryStatus.DELIVERED
                        for d in await deliveries(backend, cid)
                        if str(d.endpoint_id) == up_id
                    )

                await wait_for(recorded, what="Ada's deliveries to the working endpoint recorded")
                wordy = [p for p in sent_to(up, cid) if p["type"] in WORDY_TYPES]
                assert all(keeps_words(p) for p in wordy)  # what the erasure must remove
                before = await deliveries(backend, cid)
                waiting = [d for d in before if str(d.endpoint_id) == down_id]
                assert len(waiting) == len(sent_to(up, cid))
                assert {d.status for d in waiting} == {WebhookDeliveryStatus.PENDING}

                async with api(server, await api_key(backend, "privacy")) as http:
                    erased = await http.post(f"/visitors/{ada_id}/erase")
                    assert erased.status_code == 200, erased.text
                check_redacted(before, await deliveries(backend, cid), ada_id)

                async with api(server, await api_key(backend, "admin")) as admin:
                    log = (await admin.get(f"/webhooks/{up_id}/deliveries")).json()["data"]
                    adas = [row for row in log if row["conversation_id"] == cid]
                    assert adas
                    assert [keeps_words(row["payload"]) for row in adas] == [[] for _ in adas]
                    # The endpoint answers again: what waited goes out redacted, in order.
                    down.default = 200
                    retried = await admin.post(
                        f"/webhooks/{down_id}/deliveries/{waiting[0].id}/retry"
                    )
                    assert retried.status_code == 202, retried.text
                await wait_for(
                    lambda: len(sent_to(down, cid)) == len(waiting),
                    timeout=30,
                    what="the waiting deliveries",
                )
                late = sent_to(down, cid)
                assert [p["seq"] for p in late] == sorted(d.seq or 0 for d in waiting)
                assert [keeps_words(p) for p in late] == [[] for _ in late]
                # Another visitor's deliveries are not touched.
                bobs = await deliveries(backend, other)
                assert any(b"1042" in orjson.dumps(d.payload) for d in bobs)
        finally:
            await server.stop()
