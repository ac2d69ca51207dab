"""`/metrics` read by Prometheus's own parser after real chats, the metrics token, and the request
id on responses and in log lines (docs/metrics.md#prometheus-metrics, docs/operations.md#metrics).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.webhook_receiver import Receiver, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
WEBHOOKS = "warmline_webhook_attempts_total"


async def scrape(server: Server, token: str | None = None) -> Samples:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def json_lines(server: Server) -> list[dict[str, Any]]:
    lines = []
    for line in server.output:
        if line.startswith("{"):
            lines.append(orjson.loads(line))
    return lines


async def two_chats(server: Server, backend: Backend) -> tuple[Client, Client, Client, str]:
    """Ann (billing) declines Wes's billing chat, which waits; she accepts Sue's, answers once,
    Sue writes again and Ann escalates (nobody to offer it to). Returns Ann, Wes, Sue, Sue's
    conversation id."""
    ann = await Client.agent(server, await create_agent(backend, name="Ann", skills={"billing": 5}))
    await ann.connect()
    wes = await Client.visitor(server, name="Wes")
    await wes.connect()
    first = await wes.message("my invoice total looks odd", skill="billing")
    offer = await ann.next("offer", conversation_id=first["conversation_id"])
    await ann.send({"type": "decline", "offer_id": offer["offer_id"]})
    await ann.next("offer_withdrawn", offer_id=offer["offer_id"])

    sue = await Client.visitor(server, name="Sue")
    await sue.connect()
    chat = (await sue.message("hello there"))["conversation_id"]
    offer = await ann.next("offer", conversation_id=chat)
    await ann.send({"type": "accept", "offer_id": offer["offer_id"]})
    await sue.event("agent.joined")
    await ann.message("Hi Sue, how can I help?", conversation_id=chat)
    await sue.message("thanks, a question on delivery")
    await ann.send({"type": "escalate", "conversation_id": chat, "reason": "policy"})
    await ann.next("transfer_started")
    return ann, wes, sue, chat


def check_process_figures(samples: Samples, backend: Backend) -> None:
    assert value(samples, "warmline_messages_total", sender="visitor") == 3
    assert value(samples, "warmline_messages_total", sender="agent") == 1
    assert value(samples, "warmline_offers_made_total") == 2
    assert value(samples, "warmline_offers_declined_total") == 1
    assert value(samples, "warmline_offers_expired_total") == 0
    assert value(samples, "warmline_escalations_total", by="agent") == 1
    assert value(samples, "warmline_transfers_total", kind="escalation") == 0  # nobody online
    assert value(samples, "warmline_conversation_events_total", kind="conversation.opened") == 2
    assert value(samples, "warmline_connections", role="visitor") == 2
    assert value(samples, "warmline_connections", role="agent") == 1
    # Two routing decisions (one per chat), one chat taken from the queue.
    assert value(samples, "warmline_assignment_latency_seconds_count") == 2
    assert value(samples, "warmline_queue_wait_seconds_count") == 1
    assert value(samples, "warmline_db_statement_seconds_count") > 0
    assert value(samples, "warmline_db_transaction_seconds_count", mode="write") > 0
    assert value(samples, "warmline_bus_publish_seconds_count") > 0
    delivered = value(samples, "warmline_bus_delivery_seconds_count")
    assert (delivered > 0) if backend.redis_url else (delivered == 0)  # in-process: a call


def check_cluster_figures(samples: Samples) -> None:
    """Read from the database: the declined chat waits (never offered back to Ann)."""
    assert value(samples, "warmline_cluster_figures_up") == 1
    assert value(samples, "warmline_queue_depth", skill="billing") == 1
    assert value(samples, "warmline_queue_depth", skill="") == 0
    assert value(samples, "warmline_queue_oldest_wait_seconds", skill="billing") > 0
    assert value(samples, "warmline_queue_oldest_wait_seconds", skill="") == 0
    assert value(samples, "warmline_conversations_open", state="queued") == 1
    assert value(samples, "warmline_conversations_open", state="assigned") == 1
    assert value(samples, "warmline_agents", status="online") == 1


def no_errors_logged(server: Server) -> None:
    # The harness looks for "[error" in readable lines; in JSON it is a field.
    assert not [line for line in json_lines(server) if line["level"] in ("error", "critical")]


class TestMetrics:
    async def test_a_chat_is_counted_exactly(self, backend: Backend) -> None:
        """One chat declined and left waiting, one accepted, answered and escalated: the parsed
        exposition has exactly those messages, offers, connections, queue and agents."""
        server = await Server(
            backend,
            heartbeat_timeout="60",
            offer_auto_accept="false",
            log_json="true",
            # Logs a warning for each visitor message: a log line written while handling a frame.
            sentiment_scorer="tests.e2e.plugins:FailingScorer",
        ).start()
        try:
            ann, wes, sue, chat = await two_chats(server, backend)
            samples = await scrape(server)
            check_process_figures(samples, backend)
            check_cluster_figures(samples)
            await sue.close()
            await ann.close()
            samples = await scrape(server)
            assert value(samples, "warmline_connections", role="visitor") == 1
            assert value(samples, "warmline_connections", role="agent") == 0
            await wes.close()
        finally:
            await server.stop()
        no_errors_logged(server)
        # A frame's log lines carry its conversation and its socket's actor and connection: the
        # scorer's line about Sue's first message, which opened the chat, too (her second
        # message's checks may find the chat escalated already, and score nothing).
        about_chat = [
            line
            for line in json_lines(server)
            if line["event"].startswith("sentiment scorer") and line.get("conversation_id") == chat
        ]
        assert about_chat
        assert all(re.fullmatch(r"[0-9a-f]{32}", line["connection_id"]) for line in about_chat)
        by_visitor = [line for line in about_chat if line["role"] == "visitor"]
        assert by_visitor
        assert by_visitor[0]["visitor_id"] == by_visitor[0]["actor_id"]

    async def test_token_and_request_ids(self, backend: Backend) -> None:
        """With a metrics token, a scrape without it is refused (401 problem); every response
        carries a request id, echoed when well-formed, which the access log line names."""
        server = await Server(
            backend, heartbeat_timeout="60", metrics_token="scrape-me", log_json="true"
        ).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                refused = await http.get("/metrics")
                assert refused.status_code == 401
                assert refused.headers["content-type"] == "application/problem+json"
                assert refused.json()["code"] == "metrics_token_required"
                assert re.fullmatch(r"[0-9a-f]{32}", refused.headers["x-request-id"])
                wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
                assert wrong.status_code == 401

                missing = await http.get(
                    "/api/v1/no-such-thing", headers={"X-Request-Id": "edge-7f3a:01"}
                )
                assert missing.status_code == 404
                assert missing.headers["x-request-id"] == "edge-7f3a:01"
                unsafe = await http.get("/healthz", headers={"X-Request-Id": "a b\tc" + "x" * 200})
                assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["x-request-id"])
                for n in range(3):
                    anonymous = await http.get(f"/api/v1/conversations/{uuid.UUID(int=n)}")
                    assert anonymous.status_code == 401
            samples = await scrape(server, token="scrape-me")
            assert value(samples, "warmline_connections", role="visitor") == 0
            # Requests by route template and status: three paths of one route are one series,
            # a path that matched no route is "unmatched", never its own series.
            requests = "warmline_http_requests_total"
            assert value(samples, requests, method="GET", route="/metrics", status="401") == 2
            assert value(samples, requests, method="GET", route="/healthz", status="200") == 1
            assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
            route = "/api/v1/conversations/{conversation_id}"
            assert value(samples, requests, method="GET", route=route, status="401") == 3
            durations = "warmline_http_request_duration_seconds_count"
            assert value(samples, durations, method="GET", route=route) == 3
            assert not [key for key in samples if ("route", "/api/v1/no-such-thing") in key[1]]

            access = [
                line
                for line in json_lines(server)
                if line.get("request_id") == "edge-7f3a:01" and line["logger"] == "uvicorn.access"
            ]
            assert len(access) == 1
            assert "/api/v1/no-such-thing" in access[0]["event"]
        finally:
            await server.stop()
        no_errors_logged(server)

    async def test_webhook_attempts_by_outcome(self, backend: Backend) -> None:
        """An endpoint that answers 500 once and then 200: one attempt counted as retrying,
        one as delivered, none failed."""
        server = await Server(
            backend, heartbeat_timeout="60", webhook_retry_base="0.05", log_json="true"
        ).start()
        try:
            admin = await create_agent(backend, name="Root", role=Role.ADMIN, capacity=0)
            token = (await Client.agent(server, admin)).token
            async with (
                Receiver(plan=[500]) as receiver,
                httpx.AsyncClient(
                    base_url=server.http, headers={"Authorization": f"Bearer {token}"}
                ) as http,
            ):
                created = await http.post(
                    "/api/v1/webhooks", json={"url": receiver.url, "events": ["message.created"]}
                )
                assert created.status_code == 201, created.text
                visitor = await Client.visitor(server)
                await visitor.connect()
                chat = (await visitor.message("is anyone there?"))["conversation_id"]
                await wait_for(lambda: bool(receiver.ok()), what="the delivery")

                async def recorded() -> bool:
                    samples = await scrape(server)
                    return value(samples, WEBHOOKS, outcome="delivered") == 1

                await wait_for(recorded, what="the delivery's result recorded")
            samples = await scrape(server)
            assert value(samples, WEBHOOKS, outcome="retrying") == 1
            assert value(samples, WEBHOOKS, outcome="failed") == 0
        finally:
            await server.stop()
        # The dispatcher's log lines (httpx's line for each POST) name the conversation.
        posts = [
            line
            for line in json_lines(server)
            if line["logger"] == "httpx" and receiver.url in line["event"]
        ]
        assert len(posts) == 2
        assert {line.get("conversation_id") for line in posts} == {chat}
        assert len({line["webhook_delivery_id"] for line in posts}) == 1


async def test_workers_report_the_whole_serve(postgres_backend: Backend) -> None:
    """Under `serve --workers 2` whichever worker answers a scrape reports both workers'
    sockets and messages (prometheus_client's multiprocess mode), however the kernel spread the
    connections between them."""
    server = Server(postgres_backend, heartbeat_timeout="60", log_json="true")
    server.serve_args = ["--workers", "2"]
    await server.start()
    try:
        # The supervisor says "running" once the port is bound; the workers listen after.
        for _ in range(200):
            if sum("Application startup complete" in line for line in server.output) == 2:
                break
            await asyncio.sleep(0.1)
        visitors = [await Client.visitor(server, name=f"V{n}") for n in range(4)]
        for visitor in visitors:
            await visitor.connect()
            await visitor.message("hello")
        # Usually spread over both workers (the kernel chooses): the node names differ.
        nodes = {visitor.welcome["node"] for visitor in visitors}
        print(f"sockets on {len(nodes)} worker(s)")  # noqa: T201 - shown when the test fails
        for _ in range(6):
            samples = await scrape(server)
            assert value(samples, "warmline_connections", role="visitor") == 4
            assert value(samples, "warmline_messages_total", sender="visitor") == 4
            assert value(samples, "warmline_queue_depth", skill="") == 0  # offline: nobody on
            assert value(samples, "warmline_conversations_open", state="offline") == 4
            assert ("process_cpu_seconds_total", frozenset()) not in samples
        for visitor in visitors:
            await visitor.close()
        samples = await scrape(server)
        assert value(samples, "warmline_connections", role="visitor") == 0
    finally:
        await server.stop()
    no_errors_logged(server)
