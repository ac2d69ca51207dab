"""The administration API (docs/api.md#administration): skills, escalation steps, the routing
policy and agents, over real HTTP, with the routing it sets off observed on agents' sockets."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.store.db import Database
from app.store.models import Role
from tests.conftest import Backend
from tests.e2e.harness import PASSWORD, Client, Server, count_rows, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

# Long enough that no housekeeping round (which also runs a routing pass) happens during a
# test: a chat that reaches an agent was routed by the admin request itself.
QUIET = {"heartbeat_interval": "30", "heartbeat_timeout": "60"}
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ALL_DAY = {"timezone": "UTC", "weekly": {day: [["00:00", "24:00"]] for day in DAYS}}
ADMIN_TABLES = (
    "skills",
    "agents",
    "agent_skills",
    "agent_sessions",
    "escalation_steps",
    "escalation_step_skills",
)


async def admin_rows(backend: Backend) -> dict[str, int]:
    """Row counts of what the admin API writes, with the harness's conversation tables."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            result = {
                table: int(
                    (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608 - fixed names
                )
                for table in ADMIN_TABLES
            }
    finally:
        await db.dispose()
    return {**result, **await count_rows(backend)}


@asynccontextmanager
async def api(server: Server, client: Client | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to /api/v1, as `client`'s agent (or anonymously)."""
    headers = {} if client is None else {"Authorization": f"Bearer {client.token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def login(server: Server, backend: Backend, name: str, role: Role, **kw: Any) -> Client:
    return await Client.agent(server, await create_agent(backend, name=name, role=role, **kw))


async def joined_by(client: Client, conversation_id: str, name: str) -> dict[str, Any]:
    """The `agent.joined` of `name` in a conversation (a socket that joins a conversation is
    sent its history first, with the joins of earlier agents)."""
    while True:
        event = await client.event("agent.joined", timeout=5, conversation_id=conversation_id)
        if event["body"]["agent"]["name"] == name:
            return event


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The response's problem detail, after checking its status, code and media type."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def stored(response: httpx.Response) -> dict[str, Any]:
    """A skill as stored: without `next_opening`, which is "now" while the desk is open."""
    assert response.status_code in (200, 201), response.text
    return {k: v for k, v in response.json().items() if k != "next_opening"}


def invalid(response: httpx.Response) -> dict[str, str]:
    """A 422's field paths, with their problems."""
    return {e["field"]: e["problem"] for e in problem(response, 422, "invalid_request")["errors"]}


class TestSkills:
    async def test_crud_round_trip(self, backend: Backend) -> None:
        """Admins create, read, change and delete skills; hours come back canonical with whether
        the desk is open; a taken slug is 409, a missing skill 404, a plain agent may read but
        not write (403), and no token is 401."""
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            dana = await login(server, backend, "Dana", Role.AGENT)
            async with api(server, root) as admin, api(server, dana) as agent:
                created = await admin.post(
                    "/skills",
                    json={
                        "slug": "billing",
                        "name": " Billing ",
                        "keywords": ["invoice", "credit card"],
                        "page_patterns": ["/billing*"],
                        "business_hours": {
                            "timezone": "UTC",
                            "weekly": {"mon": [["09:00", "17:00"]]},
                        },
                    },
                )
                assert created.status_code == 201, created.text
                skill = created.json()
                assert skill["name"] == "Billing"
                assert skill["business_hours"]["weekly"]["mon"] == [["09:00", "17:00"]]
                assert skill["business_hours"]["weekly"]["sun"] == []
                assert skill["business_hours"]["holidays"] == []
                assert isinstance(skill["open_now"], bool)
                assert skill["next_opening"] is not None
                url = f"/skills/{skill['id']}"

                listed = await agent.get("/skills")
                assert [s["slug"] for s in listed.json()] == ["billing"]
                assert stored(await agent.get(url)) == stored(created)

                changed = await admin.patch(
                    url, json={"name": "Payments", "business_hours": ALL_DAY}
                )
                assert changed.status_code == 200, changed.text
                assert (changed.json()["name"], changed.json()["open_now"]) == ("Payments", True)
                assert changed.json()["keywords"] == ["invoice", "credit card"]
                always = await admin.patch(url, json={"business_hours": None})
                assert always.json()["business_hours"] is None
                assert always.json()["open_now"] is True

                taken = await admin.post("/skills", json={"slug": "billing", "name": "Again"})
                assert problem(taken, 409, "slug_taken")["slug"] == "billing"
                other = await admin.post("/skills", json={"slug": "tech", "name": "Tech"})
                renamed = await admin.patch(
                    f"/skills/{other.json()['id']}", json={"slug": "billing"}
                )
                problem(renamed, 409, "slug_taken")

                refused = await agent.post("/skills", json={"slug": "x", "name": "X"})
                assert problem(refused, 403, "forbidden")["required_role"] == "admin"
                problem(await agent.patch(url, json={"name": "Mine"}), 403, "forbidden")
                problem(await agent.delete(url), 403, "forbidden")
                async with api(server) as anonymous:
                    problem(await anonymous.get("/skills"), 401, "invalid_token")

                assert (await admin.delete(url)).status_code == 204
                assert (
                    problem(await agent.get(url), 404, "skill_not_found")["skill_id"] == skill["id"]
                )
                problem(await admin.delete(url), 404, "skill_not_found")
                assert [s["slug"] for s in (await agent.get("/skills")).json()] == ["tech"]
        finally:
            await server.stop()


class TestAgents:
    async def test_create_read_update(self, backend: Backend) -> None:
        """Admins create agents who can then log in, and change them; supervisors may read the
        team with each agent's load and skills, plain agents may not (nor the routing policy);
        a taken email is 409, and the last active admin cannot be demoted."""
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            lee = await login(server, backend, "Lee", Role.SUPERVISOR)
            dana = await login(server, backend, "Dana", Role.AGENT)
            async with api(server, root) as admin, api(server, lee) as supervisor:
                skill = (await admin.post("/skills", json={"slug": "billing", "name": "B"})).json()
                created = await admin.post(
                    "/agents",
                    json={
                        "email": "Sam@Example.com",
                        "name": "Sam",
                        "password": "twelve chars!",
                        "capacity": 2,
                        "skills": [{"skill_id": skill["id"], "proficiency": 4}],
                    },
                )
                assert created.status_code == 201, created.text
                sam = created.json()
                assert (sam["email"], sam["role"], sam["status"], sam["load"]) == (
                    "sam@example.com",
                    "agent",
                    "offline",
                    0,
                )
                assert sam["skills"] == [
                    {"skill_id": skill["id"], "slug": "billing", "proficiency": 4}
                ]
                async with api(server) as anonymous:
                    signed_in = await anonymous.post(
                        "/auth/login",
                        json={"email": "sam@example.com", "password": "twelve chars!"},
                    )
                    assert signed_in.status_code == 200, signed_in.text

                again = await admin.post(
                    "/agents",
                    json={"email": "SAM@example.com", "name": "Sam 2", "password": PASSWORD},
                )
                assert problem(again, 409, "email_taken")["email"] == "sam@example.com"

                team = await supervisor.get("/agents")
                assert team.status_code == 200, team.text
                by_name = {a["name"]: a for a in team.json()}
                assert sorted(by_name) == ["Dana", "Lee", "Root", "Sam"]
                assert (by_name["Sam"]["skills"], by_name["Sam"]["load"]) == (sam["skills"], 0)
                async with api(server, dana) as agent:
                    problem(await agent.get("/agents"), 403, "forbidden")
                    problem(await agent.get(f"/agents/{sam['id']}"), 403, "forbidden")
                    problem(await agent.get("/routing/policy"), 403, "forbidden")
                problem(
                    await supervisor.patch(f"/agents/{sam['id']}", json={"capacity": 3}),
                    403,
                    "forbidden",
                )

                url = f"/agents/{sam['id']}"
                changed = await admin.patch(
                    url,
                    json={
                        "name": "Sam O.",
                        "avatar_url": "https://cdn.example/sam.png",
                        "role": "supervisor",
                    },
                )
                assert changed.status_code == 200, changed.text
                assert (changed.json()["name"], changed.json()["role"]) == ("Sam O.", "supervisor")
                assert (await supervisor.get(url)).json()[
                    "avatar_url"
                ] == "https://cdn.example/sam.png"
                cleared = await admin.put(f"{url}/skills", json={"skills": []})
                assert cleared.json()["skills"] == []

                missing = "/agents/00000000-0000-0000-0000-000000000000"
                problem(await supervisor.get(missing), 404, "agent_not_found")
                problem(await admin.patch(missing, json={"capacity": 1}), 404, "agent_not_found")

                problem(await admin.get("/agents/not-a-uuid"), 422, "invalid_request")
                me = (await admin.get("/auth/me")).json()
                problem(
                    await admin.patch(f"/agents/{me['id']}", json={"role": "agent"}),
                    409,
                    "last_admin",
                )
                problem(
                    await admin.patch(f"/agents/{me['id']}", json={"is_active": False}),
                    409,
                    "last_admin",
                )
        finally:
            await server.stop()


class TestEscalation:
    async def test_put_get_round_trip(self, backend: Backend) -> None:
        """A skill's steps and the default steps are replaced as a whole and read back in order
        with their related skills; a skill without steps of its own uses the defaults, and a
        deleted skill drops out of the steps that named it. Supervisors may read the routing
        configuration but not change it."""
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            lee = await login(server, backend, "Lee", Role.SUPERVISOR)
            async with api(server, root) as admin, api(server, lee) as supervisor:
                billing = (
                    await admin.post("/skills", json={"slug": "billing", "name": "B"})
                ).json()
                payments = (
                    await admin.post("/skills", json={"slug": "payments", "name": "P"})
                ).json()
                steps = [
                    {"name": "strict", "after_seconds": 0, "min_proficiency": 3},
                    {"name": "related", "after_seconds": 60, "related_skill_ids": [payments["id"]]},
                    {"name": "supervisors", "after_seconds": 300, "include_supervisors": True},
                ]
                url = f"/skills/{billing['id']}/escalation"
                put = await admin.put(url, json={"steps": steps})
                assert put.status_code == 200, put.text
                got = (await supervisor.get(url)).json()
                assert got == put.json()
                assert (got["skill_id"], got["uses_default_steps"]) == (billing["id"], False)
                assert [
                    (
                        s["position"],
                        s["name"],
                        s["after_seconds"],
                        s["min_proficiency"],
                        s["related_skill_ids"],
                        s["include_supervisors"],
                    )
                    for s in got["steps"]
                ] == [
                    (0, "strict", 0, 3, [], False),
                    (1, "related", 60, 1, [payments["id"]], False),
                    (2, "supervisors", 300, 1, [], True),
                ]
                other = (await supervisor.get(f"/skills/{payments['id']}/escalation")).json()
                assert (other["steps"], other["uses_default_steps"]) == ([], True)

                defaults = await admin.put(
                    "/routing/escalation",
                    json={
                        "steps": [
                            {"name": "anyone", "after_seconds": 120, "include_supervisors": True}
                        ]
                    },
                )
                assert defaults.status_code == 200, defaults.text
                read = (await supervisor.get("/routing/escalation")).json()
                assert read["skill_id"] is None
                assert [s["name"] for s in read["steps"]] == ["anyone"]

                # A deleted skill leaves the steps that named it as related.
                assert (await admin.delete(f"/skills/{payments['id']}")).status_code == 204
                related = (await supervisor.get(url)).json()["steps"]
                assert [s["related_skill_ids"] for s in related] == [[], [], []]

                shorter = await admin.put(url, json={"steps": steps[:1]})
                assert [s["name"] for s in shorter.json()["steps"]] == ["strict"]
                assert (await supervisor.get(url)).json()["steps"] == shorter.json()["steps"]
                emptied = (await admin.put(url, json={"steps": []})).json()
                assert (emptied["steps"], emptied["uses_default_steps"]) == ([], True)

                # Supervisors read the routing configuration; only admins change it.
                problem(await supervisor.put(url, json={"steps": []}), 403, "forbidden")
                assert (await supervisor.get("/routing/policy")).status_code == 200
                problem(await supervisor.patch("/routing/policy", json={}), 403, "forbidden")
                problem(await admin.get("/skills/999/escalation"), 404, "skill_not_found")
        finally:
            await server.stop()


class TestPolicy:
    async def test_patch_and_validation(self, backend: Backend) -> None:
        """The policy is read with the deployment's offer settings and changed field by field;
        watchdog thresholds out of order are refused, naming the field sent, and change nothing."""
        server = await Server(backend, offer_timeout="45").start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            async with api(server, root) as admin:
                policy = (await admin.get("/routing/policy")).json()
                assert policy["offer_mode"] == "single"
                assert (policy["offer_auto_accept"], policy["offer_timeout_seconds"]) == (True, 45)
                assert policy["unanswered_alert_seconds"] == 120
                assert policy["unanswered_supervisor_seconds"] == 300

                changed = await admin.patch(
                    "/routing/policy",
                    json={
                        "offer_mode": "broadcast",
                        "broadcast_size": 5,
                        "unanswered_requeue_seconds": 600,
                    },
                )
                assert changed.status_code == 200, changed.text
                after = changed.json()
                assert (after["offer_mode"], after["broadcast_size"]) == ("broadcast", 5)
                assert after["unanswered_requeue_seconds"] == 600
                assert (
                    after["preferred_agent_wait_seconds"] == policy["preferred_agent_wait_seconds"]
                )
                assert after["updated_at"] >= policy["updated_at"]
                assert (await admin.get("/routing/policy")).json() == after

                assert "body.unanswered_supervisor_seconds" in invalid(
                    await admin.patch("/routing/policy", json={"unanswered_supervisor_seconds": 60})
                )
                # The stored supervisor threshold (300) comes before this alert: the alert is
                # the field sent, so the one named.
                assert set(
                    invalid(
                        await admin.patch("/routing/policy", json={"unanswered_alert_seconds": 400})
                    )
                ) == {"body.unanswered_alert_seconds"}
                assert set(
                    invalid(
                        await admin.patch(
                            "/routing/policy",
                            json={
                                "broadcast_size": None,
                                "offer_mode": "everyone",
                                "unanswered_alert_seconds": 5,
                            },
                        )
                    )
                ) == {"body.broadcast_size", "body.offer_mode", "body.unanswered_alert_seconds"}
                assert (await admin.get("/routing/policy")).json() == after

                off = await admin.patch("/routing/policy", json={"unanswered_alert_seconds": None})
                assert off.json()["unanswered_alert_seconds"] is None
        finally:
            await server.stop()


class TestBadInput:
    async def test_refused_with_field_paths_and_nothing_changes(self, backend: Backend) -> None:
        """Malformed bodies, unknown skills and broken rules get a 422 naming each field, and
        no row is written."""
        server = await Server(backend).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            async with api(server, root) as admin:
                created = await admin.post("/skills", json={"slug": "billing", "name": "B"})
                sid, skill_before = created.json()["id"], stored(created)
                me = (await admin.get("/auth/me")).json()
                before = await admin_rows(backend)
                cases: list[tuple[str, str, Any, set[str]]] = [
                    (
                        "POST",
                        "/skills",
                        {"slug": "Billing", "name": ""},
                        {"body.slug", "body.name"},
                    ),
                    (
                        "POST",
                        "/skills",
                        {"slug": "a", "name": "A", "keywords": ["x" * 65, "?!"]},
                        {"body.keywords.0", "body.keywords.1"},
                    ),
                    (
                        "POST",
                        "/skills",
                        {"slug": "a", "name": "A", "keywords": ["k"] * 201},
                        {"body.keywords"},
                    ),
                    (
                        "POST",
                        "/skills",
                        {"slug": "a", "name": "A", "page_patterns": ["billing/*"]},
                        {"body.page_patterns.0"},
                    ),
                    (
                        "POST",
                        "/skills",
                        {
                            "slug": "a",
                            "name": "A",
                            "business_hours": {"timezone": "Mars/Olympus", "weekly": {}},
                        },
                        {"body.business_hours"},
                    ),
                    ("POST", "/skills", {"slug": "a", "name": "nul \u0000"}, {"body"}),
                    (
                        "PATCH",
                        f"/skills/{sid}",
                        {"name": None, "keywords": None},
                        {"body.name", "body.keywords"},
                    ),
                    (
                        "PATCH",
                        f"/skills/{sid}",
                        {
                            "business_hours": {
                                "timezone": "UTC",
                                "weekly": {"mon": [["18:00", "09:00"]]},
                            }
                        },
                        {"body.business_hours"},
                    ),
                    (
                        "POST",
                        "/agents",
                        {
                            "email": "not-an-email",
                            "name": "X",
                            "password": "short",
                            "capacity": 101,
                        },
                        {"body.email", "body.password", "body.capacity"},
                    ),
                    (
                        "POST",
                        "/agents",
                        {
                            "email": "x@example.com",
                            "name": "X",
                            "password": PASSWORD,
                            "skills": [{"skill_id": 999}, {"skill_id": sid, "proficiency": 6}],
                        },
                        {"body.skills.1.proficiency"},
                    ),
                    (
                        "POST",
                        "/agents",
                        {
                            "email": "x@example.com",
                            "name": "X",
                            "password": PASSWORD,
                            "skills": [{"skill_id": 999}],
                        },
                        {"body.skills.0.skill_id"},
                    ),
                    (
                        "PATCH",
                        f"/agents/{me['id']}",
                        {"capacity": -1, "is_active": None},
                        {"body.capacity", "body.is_active"},
                    ),
                    (
                        "PUT",
                        f"/agents/{me['id']}/skills",
                        {"skills": [{"skill_id": sid}, {"skill_id": sid}, {"skill_id": 999}]},
                        {"body.skills.1.skill_id", "body.skills.2.skill_id"},
                    ),
                    (
                        "PUT",
                        f"/skills/{sid}/escalation",
                        {"steps": [{"name": "s", "after_seconds": 0}] * 11},
                        {"body.steps"},
                    ),
                    (
                        "PUT",
                        f"/skills/{sid}/escalation",
                        {"steps": [{"name": "a", "after_seconds": -1, "min_proficiency": 0}]},
                        {"body.steps.0.after_seconds", "body.steps.0.min_proficiency"},
                    ),
                    (
                        "PUT",
                        f"/skills/{sid}/escalation",
                        {
                            "steps": [
                                {"name": "a", "after_seconds": 0},
                                {"name": "A", "after_seconds": 9, "related_skill_ids": [998]},
                                {"name": "c", "after_seconds": 9, "related_skill_ids": [sid]},
                            ]
                        },
                        {
                            "body.steps.1.name",
                            "body.steps.1.related_skill_ids",
                            "body.steps.2.related_skill_ids",
                        },
                    ),
                    (
                        "PUT",
                        "/routing/escalation",
                        {"steps": [{"name": "x", "after_seconds": 86401}]},
                        {"body.steps.0.after_seconds"},
                    ),
                    (
                        "PATCH",
                        "/routing/policy",
                        {"broadcast_size": 21, "preferred_agent_wait_seconds": 3601},
                        {"body.broadcast_size", "body.preferred_agent_wait_seconds"},
                    ),
                ]
                for method, url, body, fields in cases:
                    response = await admin.request(method, url, json=body)
                    assert set(invalid(response)) == fields, (method, url, response.text)
                nul = invalid(await admin.post("/skills", json={"slug": "a", "name": "nul \u0000"}))
                assert "NUL characters are not allowed (in name)" in nul["body"]
                hours = invalid(await admin.patch(f"/skills/{sid}", json=cases[7][2]))
                assert "opens 18:00 is not before closes 09:00" in hours["body.business_hours"]
                problem(await admin.get("/skills/0"), 422, "invalid_request")
                problem(await admin.get(f"/skills/{2**40}"), 422, "invalid_request")
                assert await admin_rows(backend) == before
                assert stored(await admin.get(f"/skills/{sid}")) == skill_before
        finally:
            await server.stop()


class TestRoutingSideEffects:
    async def test_more_capacity_or_a_new_skill_routes_a_waiting_chat_at_once(
        self, backend: Backend
    ) -> None:
        """A chat waits while nobody with its skill has room; giving an agent the skill, or
        room, hands it to them at once, without waiting for a housekeeping round."""
        server = await Server(backend, **QUIET).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            async with api(server, root) as admin:
                skill = (await admin.post("/skills", json={"slug": "billing", "name": "B"})).json()
                # Dana has the skill but her one slot is taken: chats of the skill wait for her.
                dana = await Client.agent(
                    server,
                    await create_agent(backend, name="Dana", skills={"billing": 3}, capacity=1),
                )
                await dana.connect()
                holder = await Client.visitor(server, name="Holder")
                await holder.connect()
                await holder.message("first in", skill="billing")
                await holder.event("agent.joined")
                sam = await Client.agent(
                    server, await create_agent(backend, name="Sam", capacity=1)
                )
                await sam.connect()
                sam_id = sam.welcome["session"]["id"]

                first = await Client.visitor(server, name="First")
                await first.connect()
                ack = await first.message("my invoice is wrong", skill="billing")
                await first.event("conversation.queued")
                skills = await admin.put(
                    f"/agents/{sam_id}/skills",
                    json={"skills": [{"skill_id": skill["id"], "proficiency": 2}]},
                )
                assert skills.status_code == 200, skills.text
                joined = await sam.event(
                    "agent.joined", timeout=5, conversation_id=ack["conversation_id"]
                )
                assert joined["body"]["agent"]["name"] == "Sam"

                second = await Client.visitor(server, name="Second")
                await second.connect()
                ack2 = await second.message("refund please", skill="billing")
                await second.event("conversation.queued")
                dana_id = dana.welcome["session"]["id"]
                raised = await admin.patch(f"/agents/{dana_id}", json={"capacity": 2})
                assert raised.status_code == 200, raised.text
                await dana.event("agent.joined", timeout=5, conversation_id=ack2["conversation_id"])
                assert (await second.event("agent.joined"))["body"]["agent"]["name"] == "Dana"
                team = {a["name"]: a["load"] for a in (await admin.get("/agents")).json()}
                assert (team["Dana"], team["Sam"]) == (2, 1)
        finally:
            await server.stop()

    async def test_deactivating_an_agent_requeues_their_chat_to_another(
        self, backend: Backend
    ) -> None:
        """A deactivated agent's chat goes back to the queue and on to another online agent at
        once; the deactivated agent's token stops working."""
        server = await Server(backend, **QUIET).start()
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            ann = await Client.agent(server, await create_agent(backend, name="Ann", capacity=1))
            await ann.connect()
            visitor = await Client.visitor(server)
            await visitor.connect()
            ack = await visitor.message("hello")
            conversation_id = ack["conversation_id"]
            await ann.event("agent.joined", conversation_id=conversation_id)
            bob = await Client.agent(server, await create_agent(backend, name="Bob", capacity=1))
            await bob.connect()
            async with api(server, root) as admin:
                ann_id = ann.welcome["session"]["id"]
                off = await admin.patch(f"/agents/{ann_id}", json={"is_active": False})
                assert off.status_code == 200, off.text
                assert (off.json()["is_active"], off.json()["load"]) == (False, 0)
                joined = await joined_by(bob, conversation_id, "Bob")
                left = await visitor.event("agent.left")
                assert left["body"]["reason"] == "agent_deactivated"
                assert (await visitor.event("agent.joined", seq=joined["seq"]))["body"]["agent"][
                    "name"
                ] == "Bob"
                async with api(server, ann) as deactivated:
                    problem(await deactivated.get("/auth/me"), 401, "invalid_token")
                assert (await admin.get(f"/agents/{ann_id}")).json()["is_active"] is False
        finally:
            await server.stop()
