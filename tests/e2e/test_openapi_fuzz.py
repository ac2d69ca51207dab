"""Schemathesis against the live OpenAPI document (docs/api.md#openapi): whatever a client sends,
the server answers without a server error, and only with a status, a content type and a body
that the document declares for that operation.

One server (PostgreSQL and Redis, the production pair) with a small world made over the real
protocol first: a closed, rated conversation with an attachment, an open one, a webhook with
deliveries, a canned response, a spare API key. Every operation of `/openapi.json` is then fed
`MAX_EXAMPLES` generated requests that fit the document (positive) and, where it takes
parameters or a body, as many that break it (negative: these must be refused as documented,
with 422), derandomized so that a run is repeatable. Path ids are drawn at random or from the
world, so routes are exercised past their lookups as well as answering 404.

Each request carries the credential its route accepts, so that it gets past the access check:
an admin API key on the routes that take one (`x-warmline-access`), an admin's session on the
console's routes, the world's visitor on the visitor's routes. Nothing is excluded.

Run alone: `.venv/bin/pytest tests/e2e/test_openapi_fuzz.py -q` (about a minute).
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.test_access import make_key
from tests.e2e.test_attachments import png, upload

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Requests per operation and mode: ~80 operations, ~1,400 requests in all, under a minute on two
# cores. Hypothesis tries simple and boundary values first, so few examples reach the edges.
MAX_EXAMPLES = 10
SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same requests on every run: a failure in CI reproduces locally
    database=None,  # nothing remembered between runs, for the same reason
    deadline=None,  # the server's time is not the test's subject
    suppress_health_check=list(HealthCheck),  # slow generation of big bodies is expected
)
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
HOOK_EVENTS = ["conversation.created", "message.created", "conversation.closed"]


@dataclass
class World:
    """The credentials for each kind of route, and the ids of things that exist."""

    key: str  # an admin API key
    session: str  # an admin's session token
    logout: str  # a session of its own for POST /auth/logout, which ends it
    visitor: str  # Ada's token: her conversation is `known["conversation_id"][0]`
    known: dict[str, list[str | int]] = field(default_factory=dict)


async def make_world(server: Server, backend: Backend) -> World:
    root = await create_agent(backend, name="Root", role=Role.ADMIN)
    world = World(
        key=await make_key(backend, ["admin"]),
        session=(await Client.agent(server, root)).token,
        logout=(await Client.agent(server, root)).token,
        visitor="",
    )
    ann = await Client.agent(server, await create_agent(backend, name="Ann", skills={"billing": 3}))
    await ann.connect()
    async with httpx.AsyncClient(
        base_url=f"{server.http}/api/v1", headers={"Authorization": f"Bearer {world.key}"}
    ) as http:

        async def post(path: str, body: dict[str, Any]) -> dict[str, Any]:
            response = await http.post(path, json=body)
            assert response.status_code == 201, response.text
            answer: dict[str, Any] = response.json()
            return answer

        # Before the chats, so that their events queue deliveries (sent by no one: see below).
        hook = await post("/webhooks", {"url": "https://crm.example.com/in", "events": HOOK_EVENTS})
        canned = await post(
            "/admin/canned-responses", {"shortcut": "hi", "title": "Hello", "text": "Hello!"}
        )
        spare = await post("/api-keys", {"name": "spare", "scopes": ["reports:read"]})

        ada = await Client.visitor(server, name="Ada")
        await ada.connect()
        chat = (await ada.message("My parcel never arrived", skill="billing"))["conversation_id"]
        await ann.event("agent.joined", conversation_id=chat)
        sent = (await upload(ann, png(), "receipt.png"))["id"]
        await ann.message("A refund is on its way", conversation_id=chat, attachments=[sent])
        await ann.send({"type": "close", "conversation_id": chat})
        await ann.event("conversation.closed", conversation_id=chat)
        rated = await http.put(
            f"/visitor/conversations/{chat}/rating",
            json={"score": 4},
            headers={"Authorization": f"Bearer {ada.token}"},
        )
        assert rated.status_code == 200, rated.text
        bea = await Client.visitor(server, name="Bea")
        await bea.connect()
        open_chat = (await bea.message("Where is my invoice?", skill="billing"))["conversation_id"]
        await ann.event("agent.joined", conversation_id=open_chat)

        about = (await http.get(f"/conversations/{chat}")).json()
        deliveries = (await http.get(f"/webhooks/{hook['id']}/deliveries")).json()["data"]
        assert deliveries, "the chats' events queued no webhook delivery"
    # Hypothesis fails a run in which the `random` module is used while it generates, and the
    # websockets clients draw their keepalive pings from it: the sockets are done with anyway.
    for client in (ann, ada, bea):
        await client.close()
    world.visitor = ada.token
    world.known = {
        "conversation_id": [chat, open_chat],
        "visitor_id": [about["visitor"]["id"]],
        "agent_id": [about["agent"]["id"]],
        "skill_id": [about["skill"]["id"]],
        "attachment_id": [sent],
        "canned_id": [canned["id"]],
        "key_id": [spare["id"]],
        "webhook_id": [hook["id"]],
        "delivery_id": [deliveries[0]["id"]],
    }
    return world


def credential(operation: Operation, world: World) -> str:
    if (
        operation.path.startswith("/api/v1/visitor/")
        and operation.path != "/api/v1/visitor/sessions"
    ):
        return world.visitor
    if "x-warmline-access" in operation.definition.raw:
        return world.key
    if operation.path == "/api/v1/auth/logout":
        return world.logout
    return world.session  # the console's routes, which refuse API keys; public routes ignore it


def cases(operation: Operation, mode: GenerationMode, world: World) -> st.SearchStrategy[Case[Any]]:
    """Generated requests; positive ones also with ids of things that exist, in the path and in
    the query (`conversation_id` of a canned response's rendering)."""
    strategy = operation.as_strategy(generation_mode=mode)
    in_path = [p.name for p in operation.path_parameters]
    in_query = [p.name for p in operation.query if p.name in world.known]
    if (
        mode is GenerationMode.NEGATIVE
        or not in_path + in_query
        or any(n not in world.known for n in in_path)
    ):
        return strategy
    names = in_path + in_query
    known = []
    for ids in itertools.product(*(world.known[n] for n in names)):
        values = dict(zip(names, ids, strict=True))
        known.append(
            operation.as_strategy(
                generation_mode=mode,
                path_parameters={n: values[n] for n in in_path} or None,
                query={n: values[n] for n in in_query} or None,
            )
        )
    return st.one_of(strategy, *known)


def probe(
    operation: Operation,
    mode: GenerationMode,
    world: World,
    session: requests.Session,
    answered: Counter[tuple[str, int]],
) -> Callable[[], None]:
    """A Hypothesis test of one operation in one mode; raises what it found."""
    headers = {"Authorization": f"Bearer {credential(operation, world)}"}

    @given(case=cases(operation, mode, world))
    @SETTINGS
    def run(case: Case[Any]) -> None:
        response = case.call_and_validate(session=session, headers=headers, checks=CHECKS)
        answered[(operation.label, response.status_code)] += 1

    return run


def explain(exc: BaseException) -> str:
    """What was found: schemathesis's report says it all; other groups (Hypothesis's "flaky",
    when a request failed once and passed when replayed) need their members."""
    if isinstance(exc, FailureGroup) or not isinstance(exc, BaseExceptionGroup):
        return str(exc)
    return f"{exc}" + "".join(f"\n- {explain(e)}" for e in exc.exceptions)


def destroys(operation: Operation) -> bool:
    return operation.method.upper() == "DELETE" or operation.path.endswith("/erase")


def fuzz(base_url: str, world: World) -> tuple[list[str], Counter[tuple[str, int]]]:
    """Every operation, each mode: the failures found (with a curl to reproduce each) and how
    often each operation answered each status. Runs in a thread: it blocks on HTTP."""
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=schemathesis.Config())
    failures: list[str] = []
    answered: Counter[tuple[str, int]] = Counter()
    with requests.Session() as session:
        everything = [op for methods in schema.values() for op in methods.values()]
        # Deletions and erasures last, so that the world's things exist for the other operations.
        for operation in sorted(everything, key=destroys):
            raw = operation.definition.raw
            modes = [GenerationMode.POSITIVE]
            if raw.get("parameters") or "requestBody" in raw:
                modes.append(GenerationMode.NEGATIVE)  # with nothing to break, nothing to try
            for mode in modes:
                try:
                    probe(operation, mode, world, session, answered)()
                # A check's failures come as schemathesis's FailureGroup, a BaseExceptionGroup.
                except (Exception, BaseExceptionGroup) as exc:
                    failures.append(f"{operation.label} [{mode.value}]: {explain(exc)}")
    return failures, answered


class TestOpenApiFuzz:
    @pytest.mark.timeout(300)
    async def test_no_server_error_and_every_answer_as_documented(
        self, postgres_backend: Backend
    ) -> None:
        """Generated requests, valid and not, to every operation get no 5xx and only answers
        whose status, content type and body the document declares for it."""
        server = await Server(
            postgres_backend,
            heartbeat_timeout="60",
            # ~1,300 requests in a minute from one key, far past the default budget.
            api_rate_limit="100000",
            api_rate_burst="100000",
            # The fuzzer subscribes endpoints at made-up addresses: they are stored, not called.
            webhook_dispatch="false",
        ).start()
        try:
            world = await make_world(server, postgres_backend)
            failures, answered = await asyncio.to_thread(fuzz, server.http, world)
        finally:
            await server.stop(allow_errors=True)
        errors = [line for line in server.output if "[error" in line or "Traceback" in line]
        assert failures == [], "\n\n".join(failures)
        assert errors == [], errors[:5]
        # Every operation was exercised past its access check at least once.
        exercised = {label for (label, status) in answered if status not in (401, 403)}
        assert {label for (label, _) in answered} - exercised == set()
