"""Webhooks end to end (docs/api.md#webhooks): real servers, a real HTTP receiver in the test
process, chats made over the WebSockets as customers and agents make them.

Retries are made fast with WARMLINE_WEBHOOK_RETRY_BASE (the schedule's first delay); nothing
waits on a fixed sleep: every wait polls the receiver or the delivery log.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store.models import Role
from app.webhooks import signing
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.webhook_receiver import Receiver, wait_for

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ALL_TYPES = [
    "conversation.created",
    "conversation.queued",
    "conversation.assigned",
    "conversation.transferred",
    "conversation.escalated",
    "conversation.closed",
    "message.created",
    "csat.submitted",
    "offline_message.created",
]
# Fast retries for tests: 0.05 s, 0.15 s, 0.6 s … instead of 10 s, 30 s, 2 min.
FAST = {"webhook_retry_base": "0.05", "heartbeat_interval": "30", "heartbeat_timeout": "60"}


@asynccontextmanager
async def api(server: Server, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


async def admin_token(server: Server, backend: Backend) -> str:
    email = await create_agent(backend, name="Root", role=Role.ADMIN, capacity=0)
    return (await Client.agent(server, email)).token


async def create_endpoint(
    http: httpx.AsyncClient, url: str, events: list[str] | None = None
) -> dict[str, Any]:
    created = await http.post(
        "/webhooks", json={"url": url, "events": events or ALL_TYPES, "description": "test"}
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def documented_verify() -> Any:
    """The `verify` function printed in docs/api.md#verifying-signatures, as a reader would
    paste it: the documentation's example must accept what Warmline sends."""
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    section = text.split("### Verifying signatures", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/api.md#verifying-signatures", "exec"), namespace)  # noqa: S102
    return namespace["verify"]


def verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """Every request answered 2xx, its signature checked the documented way (the server's own
    check and the example in the docs), as payloads."""
    docs_verify = documented_verify()
    payloads = []
    for request in receiver.ok():
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["user-agent"].startswith("Warmline-Webhooks/")
        assert signing.verify(
            secret, request.body, request.headers["warmline-signature"], now=int(time.time())
        ), request.headers
        assert docs_verify(secret, request.body, request.headers["warmline-signature"])
        payload = request.json()
        assert request.headers["warmline-event-id"] == payload["id"]
        assert request.headers["warmline-event-type"] == payload["type"]
        payloads.append(payload)
    return payloads


async def a_chat(server: Server, backend: Backend) -> tuple[Client, Client, str]:
    """An online agent holding a visitor's new chat."""
    agent = await Client.agent(server, await create_agent(backend, name="Ann"))
    await agent.connect()
    visitor = await Client.visitor(server, name="Ada")
    await visitor.connect()
    cid: str = (await visitor.message("Where is order 1042?"))["conversation_id"]
    await agent.event("agent.joined", conversation_id=cid)
    return agent, visitor, cid


async def a_chat_with_everything(server: Server, backend: Backend) -> str:
    """A chat an agent answers, with an internal note and a supervisor's whisper, closed by the
    agent and rated by the visitor."""
    ann, ada, cid = await a_chat(server, backend)
    await ann.message("It ships today", conversation_id=cid)
    note = {"conversation_id": cid, "text": "zebra internal"}
    await ann.send({"type": "internal", "client_msg_id": "n1", **note})
    await ann.next("ack", client_msg_id="n1")
    sue = await Client.agent(server, await create_agent(backend, name="Sue", role=Role.SUPERVISOR))
    await sue.connect()
    whisper = {"conversation_id": cid, "text": "okapi whisper"}
    await sue.send({"type": "whisper", "client_msg_id": "w1", **whisper})
    await sue.next("ack", client_msg_id="w1")
    await ann.send({"type": "close", "conversation_id": cid})
    await ada.event("conversation.closed", conversation_id=cid)
    async with httpx.AsyncClient(base_url=server.http) as visitor_http:
        rated = await visitor_http.put(
            f"/api/v1/visitor/conversations/{cid}/rating",
            json={"score": 5, "comment": "Quick"},
            headers={"Authorization": f"Bearer {ada.token}"},
        )
        assert rated.status_code == 200, rated.text
    return cid


async def check_retries(http: httpx.AsyncClient, flaky: Receiver) -> None:
    """A ping to an endpoint answering 500 twice is delivered at the third attempt."""
    second = await create_endpoint(http, flaky.url, ["csat.submitted"])
    ping = await http.post(f"/webhooks/{second['id']}/test")
    assert ping.status_code == 202, ping.text

    async def delivered() -> bool:
        log = await http.get(f"/webhooks/{second['id']}/deliveries")
        return bool(log.json()["data"][0]["status"] == "delivered")

    await wait_for(delivered, what="the ping delivered")
    [row] = (await http.get(f"/webhooks/{second['id']}/deliveries")).json()["data"]
    assert (row["attempts"], row["last_status_code"], row["event_type"]) == (
        3,
        200,
        "webhook.test",
    )
    assert row["last_error"] is None
    assert [r.status for r in flaky.received] == [500, 500, 200]
    assert len({r.headers["warmline-event-id"] for r in flaky.received}) == 1
    verified(flaky, second["secret"])


async def check_log(
    http: httpx.AsyncClient, endpoint_id: str, receiver: Receiver, payloads: list[dict[str, Any]]
) -> None:
    """The log is newest first, in pages; a manual retry sends the same event again."""
    page = await http.get(
        f"/webhooks/{endpoint_id}/deliveries", params={"limit": 4, "status": "delivered"}
    )
    first = page.json()
    assert first["data"][0]["event_type"] == "csat.submitted"
    rest = await http.get(
        f"/webhooks/{endpoint_id}/deliveries", params={"limit": 4, "cursor": first["next_cursor"]}
    )
    ids = [d["id"] for d in first["data"] + rest.json()["data"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == len(payloads)
    assert rest.json()["next_cursor"] is None
    again = await http.post(f"/webhooks/{endpoint_id}/deliveries/{ids[0]}/retry")
    assert again.status_code == 202, again.text
    await wait_for(lambda: len(receiver.received) == len(payloads) + 1, what="the retry")
    assert receiver.received[-1].json()["id"] == payloads[-1]["id"]


class TestWebhooks:
    async def test_events_signed_and_in_order(self, backend: Backend) -> None:
        """A chat's life reaches the endpoint as signed webhooks, in seq order, each event id
        once; internal notes and whispers never do; a ping answered 500 twice is delivered at
        the third attempt, and the log says so."""
        server = await Server(backend, **FAST).start()
        try:
            token = await admin_token(server, backend)
            async with (
                Receiver() as receiver,
                Receiver(plan=[500, 500]) as flaky,
                api(server, token) as http,
            ):
                endpoint = await create_endpoint(http, receiver.url)
                assert endpoint["secret"].startswith("whsec_")
                secret = (await http.get(f"/webhooks/{endpoint['id']}/secret")).json()
                assert secret == {"secret": endpoint["secret"]}
                cid = await a_chat_with_everything(server, backend)
                await wait_for(
                    lambda: any(r.json()["type"] == "csat.submitted" for r in receiver.ok()),
                    what="the rating's webhook",
                )
                payloads = verified(receiver, endpoint["secret"])
                types = [p["type"] for p in payloads]
                assert types == [
                    "conversation.created",
                    "message.created",
                    "conversation.queued",
                    "conversation.assigned",
                    "message.created",
                    "conversation.closed",
                    "csat.submitted",
                ], types
                assert all(p["conversation_id"] == cid for p in payloads)
                seqs = [p["seq"] for p in payloads]
                assert seqs == sorted(seqs)
                assert len({p["id"] for p in payloads}) == len(payloads)
                said = [p["data"] for p in payloads if p["type"] == "message.created"]
                assert [(m["sender"]["type"], m["text"]) for m in said] == [
                    ("visitor", "Where is order 1042?"),
                    ("agent", "It ships today"),
                ]
                raw = b"".join(r.body for r in receiver.received)
                assert b"zebra" not in raw
                assert b"okapi" not in raw
                assert payloads[-1]["data"] == {"score": 5, "comment": "Quick"}
                await check_retries(http, flaky)
                await check_log(http, endpoint["id"], receiver, payloads)
        finally:
            await server.stop()

    async def test_management_and_errors(self, sqlite_backend: Backend) -> None:
        """CRUD, secret rotation, and each route's refusals: 401 without a token, 403 for an
        agent or a key without `admin`, 404 for an unknown endpoint or delivery, 422 naming the
        field for a bad URL or an unknown event type, 409 to ping a disabled endpoint."""
        backend = sqlite_backend
        server = await Server(backend, **FAST).start()
        try:
            token = await admin_token(server, backend)
            agent = await Client.agent(server, await create_agent(backend, name="Ann"))
            async with api(server, token) as http:
                keys = {}
                for scopes in (["admin"], ["reports:read", "conversations:read"]):
                    made = await http.post("/api-keys", json={"name": "k", "scopes": scopes})
                    assert made.status_code == 201, made.text
                    keys[scopes[0]] = made.json()["key"]
                async with api(server, keys["admin"]) as by_key:
                    endpoint = await create_endpoint(by_key, "https://crm.example.com/hook")
                eid = endpoint["id"]
                assert endpoint["events"] == sorted(ALL_TYPES)
                listed = (await http.get("/webhooks")).json()
                assert [e["id"] for e in listed] == [eid]
                assert "secret" not in listed[0]
                changed = await http.patch(
                    f"/webhooks/{eid}",
                    json={"events": ["message.created"], "active": False, "description": "x"},
                )
                assert changed.status_code == 200, changed.text
                assert (changed.json()["events"], changed.json()["active"]) == (
                    ["message.created"],
                    False,
                )
                problem(await http.post(f"/webhooks/{eid}/test"), 409, "webhook_disabled")
                rotated = (await http.post(f"/webhooks/{eid}/secret/rotate")).json()["secret"]
                assert rotated != endpoint["secret"]
                assert (await http.get(f"/webhooks/{eid}/secret")).json()["secret"] == rotated

                for bad, field in (
                    ({"url": "ftp://x.example.com/", "events": ["message.created"]}, "body.url"),
                    (
                        {"url": "https://u:p@x.example.com/", "events": ["message.created"]},
                        "body.url",
                    ),
                    (
                        {"url": "https://x.example.com/", "events": ["message.sent"]},
                        "body.events.0",
                    ),
                    ({"url": "https://x.example.com/", "events": []}, "body.events"),
                ):
                    body = problem(await http.post("/webhooks", json=bad), 422, "invalid_request")
                    assert field in [e["field"] for e in body["errors"]], body
                body = problem(
                    await http.patch(f"/webhooks/{eid}", json={"url": "javascript:alert(1)"}),
                    422,
                    "invalid_request",
                )
                assert body["errors"][0]["field"] == "body.url"
                bad_cursor = await http.get(f"/webhooks/{eid}/deliveries", params={"cursor": "!"})
                problem(bad_cursor, 422, "invalid_request")

                unknown = uuid.uuid4()
                for method, path in (
                    ("GET", f"/webhooks/{unknown}"),
                    ("PATCH", f"/webhooks/{unknown}"),
                    ("DELETE", f"/webhooks/{unknown}"),
                    ("GET", f"/webhooks/{unknown}/secret"),
                    ("POST", f"/webhooks/{unknown}/secret/rotate"),
                    ("GET", f"/webhooks/{unknown}/deliveries"),
                    ("POST", f"/webhooks/{unknown}/test"),
                    ("POST", f"/webhooks/{unknown}/deliveries/1/retry"),
                ):
                    answer = await http.request(
                        method, path, json={} if method == "PATCH" else None
                    )
                    problem(answer, 404, "webhook_not_found")
                problem(
                    await http.post(f"/webhooks/{eid}/deliveries/999/retry"),
                    404,
                    "webhook_delivery_not_found",
                )
                for who, status, code in (
                    (None, 401, "invalid_token"),
                    (agent.token, 403, "forbidden"),
                    (keys["reports:read"], 403, "forbidden"),
                ):
                    async with api(server, who) as other:
                        for method, path in (
                            ("GET", "/webhooks"),
                            ("POST", "/webhooks"),
                            ("GET", f"/webhooks/{eid}/secret"),
                            ("GET", f"/webhooks/{eid}/deliveries"),
                            ("DELETE", f"/webhooks/{eid}"),
                        ):
                            answer = await other.request(
                                method,
                                path,
                                json={"url": "https://a.example.com", "events": ["message.created"]}
                                if method == "POST"
                                else None,
                            )
                            problem(answer, status, code)
                assert (await http.delete(f"/webhooks/{eid}")).status_code == 204
                problem(await http.get(f"/webhooks/{eid}"), 404, "webhook_not_found")
        finally:
            await server.stop()

    async def test_delivery_survives_a_kill(self, backend: Backend) -> None:
        """Events committed by a node that sends nothing (dispatch off) and is then killed are
        all delivered by the next node, each event id at least once, payloads intact."""
        first = await Server(backend, webhook_dispatch="false", **FAST).start()
        try:
            token = await admin_token(first, backend)
            async with Receiver() as receiver:
                async with api(first, token) as http:
                    endpoint = await create_endpoint(http, receiver.url, ["message.created"])
                _ann, ada, cid = await a_chat(first, backend)
                texts = [f"message {i}" for i in range(5)]
                for text in texts:
                    await ada.message(text, conversation_id=cid)
                await first.kill()
                assert receiver.received == []

                second = await Server(backend, **FAST).start()
                try:
                    wanted = ["Where is order 1042?", *texts]
                    await wait_for(
                        lambda: len({r.json()["id"] for r in receiver.ok()}) == len(wanted),
                        what="every message delivered after the restart",
                    )
                    payloads = verified(receiver, endpoint["secret"])
                    by_id = {p["id"]: p for p in payloads}
                    assert sorted(p["data"]["text"] for p in by_id.values()) == sorted(wanted)
                    assert {p["conversation_id"] for p in payloads} == {cid}
                finally:
                    await second.stop()
        finally:
            await first.stop(allow_errors=True)

    async def test_two_nodes_send_each_event_once(self, postgres_backend: Backend) -> None:
        """Two nodes on PostgreSQL and Redis, both sending: every event of chats written on
        either node reaches the endpoint exactly once when the endpoint always succeeds."""
        backend = postgres_backend
        one = await Server(backend, node_name="one", **FAST).start()
        two: Server | None = None
        try:
            token = await admin_token(one, backend)
            async with Receiver() as receiver:
                async with api(one, token) as http:
                    endpoint = await create_endpoint(http, receiver.url, ["message.created"])
                # Started after the endpoint exists: it loads it before serving (a node running
                # already would learn of it within its 2 s refresh).
                two = await Server(backend, node_name="two", **FAST).start()
                agent = await Client.agent(
                    one, await create_agent(backend, name="Ann", capacity=10)
                )
                await agent.connect()
                sent = 0
                visitors = []
                for server in (one, two, one, two):
                    visitor = await Client.visitor(server)
                    await visitor.connect()
                    visitors.append(visitor)
                for i, visitor in enumerate(visitors):
                    cid = (await visitor.message(f"hello {i}"))["conversation_id"]
                    sent += 1
                    for j in range(4):
                        await visitor.message(f"more {i}.{j}", conversation_id=cid)
                        sent += 1
                await wait_for(
                    lambda: len(receiver.ok()) >= sent, what="every message delivered", timeout=30
                )
                await asyncio.sleep(1.5)  # long enough for a second send to show up
                payloads = verified(receiver, endpoint["secret"])
                counts = Counter(p["id"] for p in payloads)
                assert len(counts) == sent
                assert set(counts.values()) == {1}, counts.most_common(3)
        finally:
            await one.stop()
            if two is not None:
                await two.stop()
