"""The OpenAPI document describes `/api/v1` completely (docs/api.md#openapi): every operation
has a summary, declares each error it can answer as a problem detail, and shows an example of
every JSON body it accepts.

What a route can answer is read from what it depends on (the same objects that refuse the
request), not from the document, so a new route that forgets to declare an error fails here.
tests/e2e/test_openapi_fuzz.py checks the other half against a live server: that nothing is
answered that the document does not describe.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from app.api.access import get_principal
from app.api.deps import get_current_agent, get_current_visitor, get_session
from app.api.errors import PROBLEM_JSON
from app.config import Settings
from app.main import create_app

REF = "#/components/schemas/"


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # as in the document, prefix included
    route: APIRoute  # what serves it: its dependencies say what it can answer


def quiet_app() -> FastAPI:
    """The app, without a server: nothing is opened, no lifespan runs."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return create_app(Settings(env="test", database_url="sqlite+aiosqlite:///unused.db"))
    finally:
        # create_app configures logging for a server; this runs at collection, in pytest.
        root.handlers[:] = handlers
        root.setLevel(level)


def api_operations(app: FastAPI) -> list[Operation]:
    found: list[Operation] = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path_format
        if isinstance(route, APIRoute) and path is not None and path.startswith("/api/v1/"):
            found.extend(Operation(method, path, route) for method in sorted(route.methods or ()))
    return found


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from calls(sub)


def answers(route: APIRoute, operation: dict[str, Any]) -> set[int]:
    """The error statuses a route can answer, from what it depends on and what it is sent."""
    found = set()
    depends_on = set(calls(route.dependant))
    if get_current_agent in depends_on:
        found |= {401, 403}  # no or a dead session; an API key on a console route
    if get_current_visitor in depends_on:
        found |= {401}
    if get_principal in depends_on:
        found |= {401, 403, 429}  # every such route names a scope; keys have a budget
    if get_session in depends_on:
        found |= {503}  # the database does not answer
    parameters = operation.get("parameters", [])
    if parameters or "requestBody" in operation:
        found |= {422}  # each is validated
    if any(p["in"] == "path" for p in parameters):
        found |= {404}  # what the path names may not exist
    return found


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].removeprefix(REF)]
    return schema


def without_example(document: dict[str, Any], schema: dict[str, Any], where: str) -> list[str]:
    """Where an example is missing: none on the schema, nor (for an object) on a property."""
    schema = resolve(document, schema)
    if "examples" in schema or "example" in schema:
        return []
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return [m for s in options for m in without_example(document, s, where)]
    if "items" in schema:
        return without_example(document, schema["items"], f"{where}.0")
    properties = schema.get("properties")
    if not properties:
        return [where]
    return [
        m for name, p in properties.items() for m in without_example(document, p, f"{where}.{name}")
    ]


APP = quiet_app()
OPERATIONS = api_operations(APP)
DOCUMENT = APP.openapi()


def test_every_operation_of_the_document_is_checked() -> None:
    """The routes found are exactly the document's `/api/v1` operations (none left unchecked)."""
    listed = {
        (method.upper(), path)
        for path, operations in DOCUMENT["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
    }
    assert {(o.method, o.path) for o in OPERATIONS} == listed


@pytest.mark.parametrize("op", OPERATIONS, ids=[f"{o.method} {o.path}" for o in OPERATIONS])
class TestEveryOperation:
    def operation(self, op: Operation) -> dict[str, Any]:
        operation: dict[str, Any] = DOCUMENT["paths"][op.path][op.method.lower()]
        return operation

    def test_has_a_summary(self, op: Operation) -> None:
        """A short summary names what the operation does."""
        assert self.operation(op).get("summary", "").strip()

    def test_declares_every_error_it_can_answer(self, op: Operation) -> None:
        """401/403 where a credential is checked, 429 where an API key is, 422 where there are
        parameters or a body, 404 where the path names something, 503 where the database is
        used: each declared."""
        operation = self.operation(op)
        declared = {int(s) for s in operation["responses"] if s.isdigit()}
        assert answers(op.route, operation) - declared == set()

    def test_errors_are_problem_details(self, op: Operation) -> None:
        """Every error response is `application/problem+json` with the problem schema, as sent
        (not FastAPI's `application/json` validation body)."""
        for status, response in self.operation(op)["responses"].items():
            if int(status) < 400:
                continue
            assert set(response.get("content", {})) == {PROBLEM_JSON}, status
            want = "ValidationProblem" if status == "422" else "Problem"
            assert response["content"][PROBLEM_JSON]["schema"] == {"$ref": REF + want}, status

    def test_json_bodies_have_examples(self, op: Operation) -> None:
        """A JSON request body shows an example: named ones beside the body (`openapi_examples`),
        or one on the model, or one on each field."""
        body = self.operation(op).get("requestBody", {}).get("content", {})
        # A raw file upload (application/octet-stream) has no JSON to show.
        if "application/json" in body and "examples" not in body["application/json"]:
            assert without_example(DOCUMENT, body["application/json"]["schema"], "body") == []


class TestBodiesThatAreNotJson:
    """Bytes that do not decode as JSON text get the 422 every body operation declares (FastAPI
    alone answers 400, declared nowhere: found by tests/e2e/test_openapi_fuzz.py)."""

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        ("body", "problem"),
        [
            (b'{"email": "\xff"}', "The body is not UTF-8 text."),
            (b"[" * 100_000, "The body's JSON nests too deep to read."),
        ],
        ids=["not-utf-8", "too-deep"],
    )
    async def test_is_an_invalid_request_naming_the_body(self, body: bytes, problem: str) -> None:
        """The answer is a 422 `invalid_request` problem whose one error is the body."""
        transport = httpx.ASGITransport(app=APP)  # no lifespan: the body is refused before
        async with httpx.AsyncClient(transport=transport, base_url="http://warmline") as http:
            response = await http.post(
                "/api/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
            )
        assert response.status_code == 422
        assert response.headers["content-type"] == PROBLEM_JSON
        answer = response.json()
        assert answer["code"] == "invalid_request"
        assert answer["errors"] == [{"field": "body", "problem": problem}]
