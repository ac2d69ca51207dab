"""Who may call what: the authorization matrix over every route of the OpenAPI document, and the
API keys admins make for other systems (docs/api.md#authentication, #api-keys).

The matrix is this file's own statement of the policy (`ACCESS`), checked against the live
server: every route the OpenAPI document lists must have an entry (a new route without one
fails here), and every caller — nobody, a bad or revoked key, a key of each scope, a visitor,
an agent, a supervisor, an admin — must be let in or turned away exactly as the entry says
(401 for a missing or dead credential, 403 for a live one that may not). "Let in" means the
route went past its access check: any answer but 401/403.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from app.auth import keys as key_service
from app.store.db import Database
from app.store.models import ApiKey, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

ROLE_SCOPES: dict[str, set[str]] = {
    "agent": {
        "conversations:read",
        "conversations:write",
        "transcripts:read",
        "transcripts:internal",
    },
}
ROLE_SCOPES["supervisor"] = ROLE_SCOPES["agent"] | {"reports:read", "privacy"}
ROLE_SCOPES["admin"] = set(key_service.SCOPES)
SCOPES = sorted(key_service.SCOPES)


@dataclass(frozen=True)
class Rule:
    """Who a route lets in.

    kind: `public` (anyone), `visitor` (a visitor token), `session` (an agent's, supervisor's or
    admin's session token; API keys are refused with 403 unless they hold `scope`),
    `staff_session` (a supervisor's or admin's session token only: agents and every API key get
    403), `scope` (a key with `scope`, or a session whose role carries it; `staff`: sessions of
    supervisors and admins only).
    """

    kind: str
    scope: str | None = None
    staff: bool = False


PUBLIC = Rule("public")
VISITOR = Rule("visitor")
SESSION = Rule("session")
STAFF_SESSION = Rule("staff_session")


def scope(name: str, *, staff: bool = False) -> Rule:
    return Rule("scope", name, staff)


ADMIN = scope("admin")
STAFF_READ = scope("reports:read", staff=True)
CONV_READ = scope("conversations:read")

ACCESS: dict[tuple[str, str], Rule] = {
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): SESSION,
    ("GET", "/api/v1/auth/me"): SESSION,
    ("POST", "/api/v1/visitor/sessions"): PUBLIC,
    ("GET", "/api/v1/visitor/conversations/{conversation_id}/transcript"): VISITOR,
    ("PUT", "/api/v1/visitor/conversations/{conversation_id}/rating"): VISITOR,
    ("PUT", "/api/v1/visitor/conversations/{conversation_id}/effort"): VISITOR,
    ("POST", "/api/v1/visitor/attachments"): VISITOR,
    ("GET", "/api/v1/visitor/attachments/{attachment_id}"): VISITOR,
    ("GET", "/api/v1/conversations/offline"): SESSION,
    ("GET", "/api/v1/conversations/{conversation_id}/routing"): SESSION,
    ("GET", "/api/v1/conversations/{conversation_id}/context"): SESSION,
    # The conversations API for other systems (docs/api.md#conversations-api).
    ("GET", "/api/v1/conversations"): CONV_READ,
    ("GET", "/api/v1/conversations/{conversation_id}"): CONV_READ,
    ("GET", "/api/v1/conversations/{conversation_id}/csat"): CONV_READ,
    ("GET", "/api/v1/conversations/{conversation_id}/transcript"): scope("transcripts:read"),
    ("GET", "/api/v1/conversations/export"): scope("transcripts:read"),
    ("PATCH", "/api/v1/conversations/{conversation_id}"): scope("conversations:write"),
    ("POST", "/api/v1/conversations/{conversation_id}/close"): scope("conversations:write"),
    ("GET", "/api/v1/skills"): CONV_READ,
    ("POST", "/api/v1/skills"): ADMIN,
    ("GET", "/api/v1/skills/{skill_id}"): CONV_READ,
    ("PATCH", "/api/v1/skills/{skill_id}"): ADMIN,
    ("DELETE", "/api/v1/skills/{skill_id}"): ADMIN,
    ("GET", "/api/v1/agents"): STAFF_READ,
    ("POST", "/api/v1/agents"): ADMIN,
    ("GET", "/api/v1/agents/{agent_id}"): STAFF_READ,
    ("PATCH", "/api/v1/agents/{agent_id}"): ADMIN,
    ("PUT", "/api/v1/agents/{agent_id}/skills"): ADMIN,
    ("GET", "/api/v1/skills/{skill_id}/escalation"): STAFF_READ,
    ("PUT", "/api/v1/skills/{skill_id}/escalation"): ADMIN,
    ("GET", "/api/v1/routing/escalation"): STAFF_READ,
    ("PUT", "/api/v1/routing/escalation"): ADMIN,
    ("GET", "/api/v1/routing/policy"): STAFF_READ,
    ("PATCH", "/api/v1/routing/policy"): ADMIN,
    ("GET", "/api/v1/escalations"): STAFF_READ,
    ("GET", "/api/v1/reports/transfers"): STAFF_READ,
    ("GET", "/api/v1/reports/conversations"): STAFF_READ,
    # Quality reviews (docs/api.md#quality-reviews): written by a supervisor's or admin's session.
    ("GET", "/api/v1/quality/rubric"): CONV_READ,
    ("PUT", "/api/v1/quality/rubric"): ADMIN,
    ("GET", "/api/v1/conversations/{conversation_id}/reviews"): STAFF_READ,
    ("POST", "/api/v1/conversations/{conversation_id}/reviews"): STAFF_SESSION,
    ("PUT", "/api/v1/quality/reviews/{review_id}"): STAFF_SESSION,
    ("DELETE", "/api/v1/quality/reviews/{review_id}"): STAFF_SESSION,
    ("GET", "/api/v1/quality/reviews"): STAFF_READ,
    ("GET", "/api/v1/quality/reviews/mine"): SESSION,
    ("GET", "/api/v1/reports/quality"): STAFF_READ,
    ("GET", "/api/v1/attachments/limits"): PUBLIC,
    ("POST", "/api/v1/attachments"): SESSION,
    ("GET", "/api/v1/attachments/{attachment_id}"): Rule("session", "transcripts:read"),
    ("GET", "/api/v1/canned-responses"): SESSION,
    ("GET", "/api/v1/canned-responses/{canned_id}/render"): SESSION,
    ("GET", "/api/v1/admin/canned-responses"): STAFF_READ,
    ("POST", "/api/v1/admin/canned-responses"): ADMIN,
    ("GET", "/api/v1/admin/canned-responses/{canned_id}"): STAFF_READ,
    ("PATCH", "/api/v1/admin/canned-responses/{canned_id}"): ADMIN,
    ("DELETE", "/api/v1/admin/canned-responses/{canned_id}"): ADMIN,
    ("GET", "/api/v1/dispositions"): CONV_READ,
    ("PUT", "/api/v1/admin/dispositions"): ADMIN,
    ("GET", "/api/v1/team"): SESSION,
    ("GET", "/api/v1/supervisor/overview"): STAFF_READ,
    ("GET", "/api/v1/api-keys/scopes"): ADMIN,
    ("GET", "/api/v1/api-keys"): ADMIN,
    ("POST", "/api/v1/api-keys"): ADMIN,
    ("GET", "/api/v1/api-keys/{key_id}"): ADMIN,
    ("PATCH", "/api/v1/api-keys/{key_id}"): ADMIN,
    ("DELETE", "/api/v1/api-keys/{key_id}"): ADMIN,
    ("GET", "/api/v1/visitors/{visitor_id}/export"): scope("privacy"),
    ("POST", "/api/v1/visitors/{visitor_id}/erase"): scope("privacy"),
    ("GET", "/api/v1/visitors/{visitor_id}/erasures"): scope("privacy"),
    ("GET", "/api/v1/privacy/retention"): ADMIN,
    ("PUT", "/api/v1/privacy/retention"): ADMIN,
    ("GET", "/api/v1/privacy/retention/runs"): ADMIN,
    ("POST", "/api/v1/privacy/retention/runs"): ADMIN,
    ("GET", "/api/v1/webhooks"): ADMIN,
    ("POST", "/api/v1/webhooks"): ADMIN,
    ("GET", "/api/v1/webhooks/{webhook_id}"): ADMIN,
    ("PATCH", "/api/v1/webhooks/{webhook_id}"): ADMIN,
    ("DELETE", "/api/v1/webhooks/{webhook_id}"): ADMIN,
    ("GET", "/api/v1/webhooks/{webhook_id}/secret"): ADMIN,
    ("POST", "/api/v1/webhooks/{webhook_id}/secret/rotate"): ADMIN,
    ("GET", "/api/v1/webhooks/{webhook_id}/deliveries"): ADMIN,
    ("POST", "/api/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"): ADMIN,
    ("POST", "/api/v1/webhooks/{webhook_id}/test"): ADMIN,
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # open unless WARMLINE_METRICS_TOKEN: tests/e2e/test_metrics.py
}


@dataclass
class Caller:
    name: str
    token: str | None
    # What the caller is: "none", "dead" (a token that authenticates nobody), "visitor",
    # "key" (with `scopes`) or a role.
    kind: str
    scopes: set[str] = field(default_factory=set)


def expected(rule: Rule, caller: Caller) -> int | None:
    """401, 403, or None (let in)."""
    if rule.kind == "public":
        return None
    if caller.kind in ("none", "dead"):
        return 401
    if rule.kind == "visitor":
        return None if caller.kind == "visitor" else 401
    if caller.kind == "visitor":
        return 401
    granted = set(SCOPES) if "admin" in caller.scopes else caller.scopes
    if rule.kind == "staff_session":
        return 403 if caller.kind in ("key", "agent") else None
    if rule.kind == "session":
        if caller.kind == "key":
            return None if rule.scope in granted else 403
        return None
    assert rule.scope is not None
    if caller.kind == "key":
        return None if rule.scope in granted else 403
    if rule.staff and caller.kind == "agent":
        return 403
    return None if rule.scope in ROLE_SCOPES[caller.kind] else 403


def concrete(path: str) -> str:
    """The path with each parameter filled with something that names nothing stored."""
    for name, value in {
        "{skill_id}": "2147480000",
        "{conversation_id}": str(uuid.uuid4()),
        "{agent_id}": str(uuid.uuid4()),
        "{attachment_id}": str(uuid.uuid4()),
        "{canned_id}": str(uuid.uuid4()),
        "{key_id}": str(uuid.uuid4()),
        "{visitor_id}": str(uuid.uuid4()),
        "{webhook_id}": str(uuid.uuid4()),
        "{delivery_id}": "2147480000",
        "{review_id}": "2147480000",
    }.items():
        path = path.replace(name, value)
    assert "{" not in path, f"give {path} a value for its parameter in concrete()"
    return path


async def make_key(
    backend: Backend, scopes: list[str], *, revoked: bool = False, name: str = "test"
) -> str:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            issued = await key_service.create_api_key(
                session, name=name, scopes=scopes, created_by=None, now=datetime.now(UTC)
            )
            if revoked:
                issued.row.revoked_at = datetime.now(UTC)
        return issued.key
    finally:
        await db.dispose()


async def callers(server: Server, backend: Backend) -> list[Caller]:
    result = [
        Caller("nobody", None, "none"),
        Caller("unknown key", "wlk_" + "x" * 43, "dead"),
        Caller("unknown session", "wla_" + "x" * 43, "dead"),
        Caller("revoked admin key", await make_key(backend, ["admin"], revoked=True), "dead"),
        Caller("visitor", (await Client.visitor(server)).token, "visitor"),
    ]
    for role in (Role.AGENT, Role.SUPERVISOR, Role.ADMIN):
        email = await create_agent(backend, name=role.value.title(), role=role)
        result.append(Caller(role.value, (await Client.agent(server, email)).token, role.value))
    for name in SCOPES:
        result.append(Caller(f"key {name}", await make_key(backend, [name]), "key", {name}))
    return result


async def test_every_route_lets_in_exactly_whom_the_matrix_says(
    postgres_backend: Backend,
) -> None:
    server = await Server(postgres_backend, heartbeat_timeout="60").start()
    try:
        async with httpx.AsyncClient(base_url=server.http, timeout=30) as http:
            document = (await http.get("/openapi.json")).json()
            listed = {
                (method.upper(), path): operation
                for path, operations in document["paths"].items()
                for method, operation in operations.items()
            }
            assert set(listed) - set(ACCESS) == set(), "routes without a matrix entry"
            assert set(ACCESS) - set(listed) == set(), "matrix entries for no route"

            # The document says what the server enforces (and the matrix agrees with both).
            for route, rule in ACCESS.items():
                said = listed[route].get("x-warmline-access")
                if rule.kind == "scope":
                    assert said == [
                        {"scope": rule.scope, "staff_only": rule.staff, "session_tokens": True}
                    ], route
                else:
                    assert said is None, route

            everyone = await callers(server, postgres_backend)
            wrong: list[str] = []
            for (method, path), rule in sorted(ACCESS.items()):
                if path == "/api/v1/auth/logout":
                    continue  # it ends the session it is called with: tested on its own below
                for caller in everyone:
                    headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
                    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
                    response = await http.request(
                        method, concrete(path), headers=headers, json=body
                    )
                    want = expected(rule, caller)
                    got = response.status_code
                    if want is None and got in (401, 403):
                        wrong.append(f"{method} {path} as {caller.name}: {got}, should let in")
                    elif want is not None and got != want:
                        wrong.append(f"{method} {path} as {caller.name}: {got}, want {want}")
                    elif want is not None:
                        problem = response.json()
                        assert response.headers["content-type"] == "application/problem+json"
                        assert problem["status"] == want
                        assert problem["code"] in (
                            ("invalid_token",) if want == 401 else ("forbidden",)
                        ), (method, path, caller.name, problem)
            assert wrong == [], "\n".join(wrong)

            # logout: a key is refused, a session is ended by it.
            for caller in everyone:
                if caller.kind in ("key", "visitor", "dead", "none"):
                    headers = {"Authorization": f"Bearer {caller.token}"} if caller.token else {}
                    got = (await http.post("/api/v1/auth/logout", headers=headers)).status_code
                    assert got == expected(SESSION, caller), caller.name
            agent = next(c for c in everyone if c.kind == "agent")
            bearer = {"Authorization": f"Bearer {agent.token}"}
            assert (await http.post("/api/v1/auth/logout", headers=bearer)).status_code == 204
            assert (await http.get("/api/v1/auth/me", headers=bearer)).status_code == 401
    finally:
        await server.stop()


async def test_an_admin_creates_uses_renames_and_revokes_a_key(backend: Backend) -> None:
    server = await Server(backend, heartbeat_timeout="60").start()
    try:
        admin = await Client.agent(
            server, await create_agent(backend, name="Root", role=Role.ADMIN)
        )
        supervisor = await Client.agent(
            server, await create_agent(backend, name="Sue", role=Role.SUPERVISOR)
        )
        as_admin = {"Authorization": f"Bearer {admin.token}"}
        async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http:
            scopes = (await http.get("/api-keys/scopes", headers=as_admin)).json()
            assert [s["scope"] for s in scopes] == list(key_service.SCOPES)

            created = await http.post(
                "/api-keys",
                headers=as_admin,
                json={"name": "  Warehouse  ", "scopes": ["reports:read", "reports:read"]},
            )
            assert created.status_code == 201, created.text
            key = created.json()
            assert key["key"].startswith("wlk_")
            assert key["key"].startswith(key["prefix"])
            assert (key["name"], key["scopes"], key["last_used_at"]) == (
                "Warehouse",
                ["reports:read"],
                None,
            )
            me = await http.get("/auth/me", headers=as_admin)
            assert key["created_by"] == me.json()["id"]

            # The key works where its scope lets it, records its use, and is never shown again.
            as_key = {"Authorization": f"Bearer {key['key']}"}
            assert (await http.get("/agents", headers=as_key)).status_code == 200
            assert (await http.post("/skills", headers=as_key, json={})).status_code == 403
            again = (await http.get(f"/api-keys/{key['id']}", headers=as_admin)).json()
            assert "key" not in again
            assert again["last_used_at"] is not None
            listed = (await http.get("/api-keys", headers=as_admin)).json()
            assert [k["id"] for k in listed] == [key["id"]]
            assert all("key" not in k and "key_hash" not in k for k in listed)

            renamed = await http.patch(
                f"/api-keys/{key['id']}", headers=as_admin, json={"name": "BI"}
            )
            assert renamed.status_code == 200
            assert renamed.json()["name"] == "BI"
            # Scopes never change: a key that needs others is another key.
            refused = await http.patch(
                f"/api-keys/{key['id']}", headers=as_admin, json={"scopes": ["admin"]}
            )
            assert refused.status_code == 422
            assert "body.scopes" in [e["field"] for e in refused.json()["errors"]]

            # A supervisor may not make keys: the key would outlive their role.
            denied = await http.post(
                "/api-keys",
                headers={"Authorization": f"Bearer {supervisor.token}"},
                json={"name": "x", "scopes": ["reports:read"]},
            )
            assert denied.status_code == 403

            revoked = await http.delete(f"/api-keys/{key['id']}", headers=as_admin)
            assert revoked.status_code == 204
            gone = await http.get("/agents", headers=as_key)
            assert gone.status_code == 401
            assert gone.json()["code"] == "invalid_token"
            assert "revoked" in gone.json()["detail"]
            assert (
                await http.delete(f"/api-keys/{key['id']}", headers=as_admin)
            ).status_code == 204
            active = (await http.get("/api-keys?active=true", headers=as_admin)).json()
            assert active == []
            kept = (await http.get("/api-keys", headers=as_admin)).json()
            assert kept[0]["revoked_at"] is not None
    finally:
        await server.stop()


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"name": "x", "scopes": []}, "body.scopes"),
    ({"name": "x", "scopes": ["transcripts:write"]}, "body.scopes.0"),
    ({"name": "   ", "scopes": ["admin"]}, "body.name"),
    ({"scopes": ["admin"]}, "body.name"),
    ({"name": "x", "scopes": ["admin"], "owner": "me"}, "body.owner"),
]


async def test_a_bad_key_request_names_its_field_and_stores_nothing(
    sqlite_backend: Backend,
) -> None:
    server = await Server(sqlite_backend, heartbeat_timeout="60").start()
    try:
        admin_key = await make_key(sqlite_backend, ["admin"])
        headers = {"Authorization": f"Bearer {admin_key}"}
        async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http:
            for body, field_name in BAD_BODIES:
                response = await http.post("/api-keys", headers=headers, json=body)
                assert response.status_code == 422, response.text
                assert field_name in [e["field"] for e in response.json()["errors"]], body
            missing = await http.get(f"/api-keys/{uuid.uuid4()}", headers=headers)
            assert (missing.status_code, missing.json()["code"]) == (404, "api_key_not_found")
        db = Database(sqlite_backend.database_url)
        try:
            async with db.read() as session:
                assert len((await session.scalars(select(ApiKey))).all()) == 1  # admin_key
        finally:
            await db.dispose()
    finally:
        await server.stop()


async def test_last_use_is_written_at_most_once_a_minute(sqlite_backend: Backend) -> None:
    server = await Server(sqlite_backend, heartbeat_timeout="60").start()
    try:
        key = await make_key(sqlite_backend, ["conversations:read"])
        headers = {"Authorization": f"Bearer {key}"}
        db = Database(sqlite_backend.database_url)
        try:
            async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http:
                assert (await http.get("/skills", headers=headers)).status_code == 200
                async with db.read() as session:
                    first = (await session.scalars(select(ApiKey))).one().last_used_at
                assert first is not None
                assert (await http.get("/skills", headers=headers)).status_code == 200
                async with db.read() as session:
                    assert (await session.scalars(select(ApiKey))).one().last_used_at == first
                # A minute later (moved back in the store), the next use is written.
                async with db.write() as session:
                    await session.execute(
                        update(ApiKey).values(last_used_at=first - timedelta(minutes=2))
                    )
                assert (await http.get("/skills", headers=headers)).status_code == 200
                async with db.read() as session:
                    later = (await session.scalars(select(ApiKey))).one().last_used_at
                assert later is not None
                assert later > first - timedelta(minutes=1)
        finally:
            await db.dispose()
    finally:
        await server.stop()


async def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_go_on(
    backend: Backend,
) -> None:
    # One request a second, three at once: the fourth in a row is refused. With Redis every
    # node shares the budget; without it, the process keeps it.
    server = await Server(
        backend, heartbeat_timeout="60", api_rate_limit="1", api_rate_burst="3"
    ).start()
    try:
        busy = {"Authorization": f"Bearer {await make_key(backend, ['conversations:read'])}"}
        other = {"Authorization": f"Bearer {await make_key(backend, ['conversations:read'])}"}
        async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", timeout=30) as http:
            statuses = [(await http.get("/skills", headers=busy)).status_code for _ in range(3)]
            assert statuses == [200, 200, 200]
            refused = await http.get("/skills", headers=busy)
            assert refused.status_code == 429
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["code"] == "rate_limited"
            wait = int(refused.headers["Retry-After"])
            assert 1 <= wait <= 2
            assert refused.json()["retry_after"] == wait
            # Another key has its own budget; a session token is not limited by keys' budgets.
            assert (await http.get("/skills", headers=other)).status_code == 200
            # Waiting as told is enough.
            await asyncio.sleep(wait)
            assert (await http.get("/skills", headers=busy)).status_code == 200
    finally:
        await server.stop()
