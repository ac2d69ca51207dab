"""The REST API of the agent console and the supervisor view (docs/api.md#canned-responses,
#dispositions, #conversation-context, #team, #supervisor-overview), from a real server on both
backends, with chats made the way customers and agents make them: over the WebSockets."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from app.store.db import Database
from app.store.models import Conversation, ConversationParticipant, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def console_server(backend: Backend) -> Server:
    # No housekeeping round during a test (it routes too); a client left idle while others are
    # set up (argon2 hashes) must not be dropped on a loaded machine.
    return await Server(backend, heartbeat_interval="30", heartbeat_timeout="60").start()


@asynccontextmanager
async def api(server: Server, client: Client | None = None) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP to /api/v1, as `client`'s agent (or anonymously)."""
    headers = {} if client is None else {"Authorization": f"Bearer {client.token}"}
    async with httpx.AsyncClient(base_url=f"{server.http}/api/v1", headers=headers) as http:
        yield http


async def login(
    server: Server, backend: Backend, name: str, role: Role = Role.AGENT, **kw: Any
) -> Client:
    return await Client.agent(server, await create_agent(backend, name=name, role=role, **kw))


async def online(
    server: Server, backend: Backend, name: str, role: Role = Role.AGENT, **kw: Any
) -> Client:
    """An agent logged in with a socket open (so, `online` and connected)."""
    client = await login(server, backend, name, role, **kw)
    await client.connect()
    return client


async def visitor(server: Server, **body: Any) -> Client:
    """A visitor session with the fields given (name, email, attributes), socket open."""
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.post("/api/v1/visitor/sessions", json=body)
        assert response.status_code == 201, response.text
    client = Client(server, "visitor", response.json()["token"])
    await client.connect()
    return client


async def chat(customer: Client, holder: Client | None, text: str, **extra: Any) -> str:
    """The customer's first message; the id of the chat it opens, once `holder` got it."""
    cid: str = (await customer.message(text, **extra))["conversation_id"]
    if holder is not None:
        await holder.event("agent.joined", conversation_id=cid)
    return cid


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code), body
    return body


def invalid(response: httpx.Response) -> dict[str, str]:
    """A 422's field paths, with their problems."""
    return {e["field"]: e["problem"] for e in problem(response, 422, "invalid_request")["errors"]}


def parsed(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def store(backend: Backend, *rows: Any, **conversation: Any) -> None:
    """Write what no endpoint of this build writes yet (a barge-in, labels of a past chat)."""
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            session.add_all(rows)
            cid = conversation.pop("id", None)
            if cid is not None:
                await session.execute(
                    update(Conversation)
                    .where(Conversation.id == uuid.UUID(cid))
                    .values(**conversation)
                )
    finally:
        await db.dispose()


async def poll(
    read: Callable[[], Awaitable[dict[str, Any]]],
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 20,
) -> dict[str, Any]:
    """Read again every 0.1 s until `until` holds (the console polls the same way)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        answer = await read()
        if until(answer):
            return answer
        assert loop.time() < deadline, f"never reached: {answer}"
        await asyncio.sleep(0.1)


EVERY_VARIABLE = (
    "{{visitor.name}}|{{ visitor.first_name }}|{{visitor.email}}|{{agent.name}}|"
    "{{agent.first_name}}|{{conversation.id}}|{{skill.name}}"
)


class TestCannedResponses:
    async def test_admin_crud(self, backend: Backend) -> None:
        """Admins create, change and delete canned responses; supervisors read them but do not
        write; agents neither read the admin list nor write; no token is 401."""
        server = await console_server(backend)
        try:
            root = await login(server, backend, "Root", Role.ADMIN, skills={"billing": 1})
            lee = await login(server, backend, "Lee", Role.SUPERVISOR)
            dana = await login(server, backend, "Dana")
            async with api(server, root) as admin, api(server, lee) as sup:
                created = await admin.post(
                    "/admin/canned-responses",
                    json={
                        "shortcut": "refund",
                        "title": " Refund on its way ",
                        "text": "Hi {{visitor.first_name}}, the refund is on its way.",
                        "skill": "billing",
                    },
                )
                assert created.status_code == 201, created.text
                item = created.json()
                assert (item["shortcut"], item["title"]) == ("refund", "Refund on its way")
                assert item["skill"] == {
                    "id": item["skill"]["id"],
                    "slug": "billing",
                    "name": "Billing",
                }
                url = f"/admin/canned-responses/{item['id']}"
                assert (await sup.get(url)).json() == item
                assert (await sup.get("/admin/canned-responses")).json() == [item]

                changed = await admin.patch(
                    url, json={"shortcut": "refund-ok", "text": "Done, {{agent.first_name}}."}
                )
                assert changed.status_code == 200, changed.text
                assert changed.json()["shortcut"] == "refund-ok"
                assert changed.json()["text"] == "Done, {{agent.first_name}}."
                assert changed.json()["title"] == "Refund on its way"
                assert changed.json()["skill"]["slug"] == "billing"
                assert parsed(changed.json()["updated_at"]) >= parsed(item["updated_at"])
                assert (await admin.patch(url, json={"skill": None})).json()["skill"] is None

                for response in (
                    await sup.post(
                        "/admin/canned-responses", json={"shortcut": "s", "title": "S", "text": "s"}
                    ),
                    await sup.patch(url, json={"title": "Mine"}),
                    await sup.delete(url),
                ):
                    assert problem(response, 403, "forbidden")["required_role"] == "admin"
                async with api(server, dana) as agent:
                    problem(await agent.get("/admin/canned-responses"), 403, "forbidden")
                    problem(await agent.get(url), 403, "forbidden")
                    problem(await agent.delete(url), 403, "forbidden")
                async with api(server) as anonymous:
                    problem(await anonymous.get("/canned-responses"), 401, "invalid_token")
                assert (await sup.get(url)).json()["title"] == "Refund on its way"

                assert (await admin.delete(url)).status_code == 204
                problem(await sup.get(url), 404, "canned_response_not_found")
                problem(await admin.delete(url), 404, "canned_response_not_found")
                assert (await sup.get("/admin/canned-responses")).json() == []
        finally:
            await server.stop()

    async def test_refusals_change_nothing(self, backend: Backend) -> None:
        """Malformed fields, an unknown skill, a text too long or naming an unknown variable,
        and a shortcut another reply has are refused, on create and on change, and the stored
        replies stay as they were."""
        server = await console_server(backend)
        try:
            root = await login(server, backend, "Root", Role.ADMIN, skills={"billing": 1})
            async with api(server, root) as admin:
                refund = (
                    await admin.post(
                        "/admin/canned-responses",
                        json={"shortcut": "refund", "title": "Refund", "text": "On its way."},
                    )
                ).json()
                bye = (
                    await admin.post(
                        "/admin/canned-responses",
                        json={"shortcut": "bye", "title": "Goodbye", "text": "Bye!"},
                    )
                ).json()

                async def create(**body: Any) -> httpx.Response:
                    return await admin.post(
                        "/admin/canned-responses", json={"title": "X", "text": "x", **body}
                    )

                assert set(invalid(await create(shortcut="Re fund!", title=""))) == {
                    "body.shortcut",
                    "body.title",
                }
                assert set(invalid(await create(shortcut="x" * 33))) == {"body.shortcut"}
                assert set(invalid(await create(shortcut="long", text="x" * 4001))) == {"body.text"}
                assert invalid(await create(shortcut="x", skill="nope")) == {
                    "body.skill": "no skill has slug 'nope'"
                }
                unknown = problem(
                    await create(shortcut="x", text="Order {{order.id}} for {{visitor.name}}"),
                    422,
                    "unknown_variable",
                )
                assert unknown["variables"] == ["order.id"]
                assert "visitor.name" in unknown["known"]
                taken = problem(await create(shortcut="refund"), 409, "shortcut_taken")
                assert taken["shortcut"] == "refund"

                bye_url = f"/admin/canned-responses/{bye['id']}"
                problem(
                    await admin.patch(bye_url, json={"shortcut": "refund"}), 409, "shortcut_taken"
                )
                problem(
                    await admin.patch(bye_url, json={"text": "{{visitor.nickname}}"}),
                    422,
                    "unknown_variable",
                )
                assert invalid(await admin.patch(bye_url, json={"title": None})) == {
                    "body.title": "Value error, may be left out, but not null"
                }
                problem(
                    await admin.patch(
                        f"/admin/canned-responses/{uuid.uuid4()}", json={"title": "Y"}
                    ),
                    404,
                    "canned_response_not_found",
                )
                assert (await admin.get("/admin/canned-responses")).json() == [bye, refund]
        finally:
            await server.stop()

    async def test_list_order_and_search(self, backend: Backend) -> None:
        """An agent sees the replies of the chat's skill first, then those of their own skills,
        then the rest, each group by shortcut; `q` matches a shortcut's start (with or without
        `/`) or a title or text anywhere, ignoring case."""
        server = await console_server(backend)
        try:
            root = await login(
                server, backend, "Root", Role.ADMIN, skills={"billing": 1, "technical": 1}
            )
            dana = await login(server, backend, "Dana", skills={"billing": 5})
            async with api(server, root) as admin:
                for shortcut, title, text, skill in (
                    ("hello", "Greeting", "Hi {{visitor.name}}!", None),
                    ("reset", "Password reset", "Use the PASSWORD link.", "technical"),
                    ("refund", "Refund", "Your refund is on its way.", "billing"),
                    ("bye", "Goodbye", "Anything else? 100% happy to help.", None),
                ):
                    response = await admin.post(
                        "/admin/canned-responses",
                        json={"shortcut": shortcut, "title": title, "text": text, "skill": skill},
                    )
                    assert response.status_code == 201, response.text
            async with api(server, dana) as agent:

                async def shortcuts(**params: str) -> list[str]:
                    response = await agent.get("/canned-responses", params=params)
                    assert response.status_code == 200, response.text
                    return [c["shortcut"] for c in response.json()]

                assert await shortcuts() == ["refund", "bye", "hello", "reset"]
                assert await shortcuts(skill="technical") == ["reset", "refund", "bye", "hello"]
                assert await shortcuts(skill="no-such-skill") == ["refund", "bye", "hello", "reset"]
                assert await shortcuts(q="/re") == ["refund", "reset"]
                assert await shortcuts(q="/RE") == ["refund", "reset"]
                assert await shortcuts(q="re") == ["refund", "hello", "reset"]  # "Greeting"
                assert await shortcuts(q="password") == ["reset"]
                assert await shortcuts(q="good") == ["bye"]
                assert await shortcuts(q="100%") == ["bye"]
                assert await shortcuts(q="%") == ["bye"]  # a literal %, not a wildcard
                assert await shortcuts(q="_") == []
                assert await shortcuts(q="way", skill="technical") == ["refund"]
                full = (await agent.get("/canned-responses", params={"q": "hello"})).json()
                assert full[0]["text"] == "Hi {{visitor.name}}!"  # listed as stored
                assert set(full[0]) == {"id", "shortcut", "title", "text", "skill", "updated_at"}
                assert await shortcuts(limit="2") == ["refund", "bye"]
        finally:
            await server.stop()

    async def test_render_fills_every_variable(self, backend: Backend) -> None:
        """Rendered for a chat, each variable takes the chat's value; a visitor without name
        or email and a chat without skill get the fallbacks; an agent who never held the chat
        cannot render for it (404, as if it did not exist), a supervisor can."""
        server = await console_server(backend)
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            dana = await online(server, backend, "Dana Reyes", skills={"billing": 5})
            sam = await login(server, backend, "Sam", skills={"billing": 5})
            lee = await login(server, backend, "Lee Park", Role.SUPERVISOR)
            async with api(server, root) as admin:
                created = await admin.post(
                    "/admin/canned-responses",
                    json={"shortcut": "all", "title": "All", "text": EVERY_VARIABLE},
                )
                canned_id = created.json()["id"]
            ada = await visitor(server, name="Ada Lovelace", email="ada@example.com")
            named = await chat(ada, dana, "Hello, about my invoice", skill="billing")
            anonymous = await visitor(server)
            unnamed = await chat(anonymous, dana, "Hello?")
            url = f"/canned-responses/{canned_id}/render"
            async with api(server, dana) as agent:
                first = await agent.get(url, params={"conversation_id": named})
                assert first.status_code == 200, first.text
                assert first.json() == {
                    "text": f"Ada Lovelace|Ada|ada@example.com|Dana Reyes|Dana|{named}|Billing"
                }
                second = await agent.get(url, params={"conversation_id": unnamed})
                assert second.json() == {"text": f"there|there||Dana Reyes|Dana|{unnamed}|support"}
                problem(
                    await agent.get(
                        f"/canned-responses/{uuid.uuid4()}/render",
                        params={"conversation_id": named},
                    ),
                    404,
                    "canned_response_not_found",
                )
                assert invalid(await agent.get(url)) == {"query.conversation_id": "Field required"}
            async with api(server, sam) as stranger:
                refused = problem(
                    await stranger.get(url, params={"conversation_id": named}),
                    404,
                    "conversation_not_found",
                )
                assert refused["conversation_id"] == named
                problem(
                    await stranger.get(url, params={"conversation_id": str(uuid.uuid4())}),
                    404,
                    "conversation_not_found",
                )
            async with api(server, lee) as supervisor:
                as_lee = await supervisor.get(url, params={"conversation_id": named})
                assert as_lee.json()["text"].split("|")[3:5] == ["Lee Park", "Lee"]
        finally:
            await server.stop()


class TestDispositions:
    async def test_read_and_replace(self, backend: Backend) -> None:
        """Every agent reads the dispositions (the defaults at first); an admin replaces the
        list and whether one is required; malformed or repeated codes, an empty or too long
        list, and non-admins are refused without changing it."""
        server = await console_server(backend)
        try:
            root = await login(server, backend, "Root", Role.ADMIN)
            lee = await login(server, backend, "Lee", Role.SUPERVISOR)
            dana = await login(server, backend, "Dana")
            async with api(server, root) as admin, api(server, dana) as agent:
                defaults = (await agent.get("/dispositions")).json()
                assert defaults["required"] is False
                assert [d["code"] for d in defaults["dispositions"]] == [
                    "resolved",
                    "follow_up",
                    "not_resolved",
                    "no_response",
                    "spam",
                ]
                new = {
                    "dispositions": [
                        {"code": "solved", "label": " Solved "},
                        {"code": "call_back_2", "label": "Call back"},
                    ],
                    "required": True,
                }
                put = await admin.put("/admin/dispositions", json=new)
                assert put.status_code == 200, put.text
                expected = {
                    "dispositions": [
                        {"code": "solved", "label": "Solved"},
                        {"code": "call_back_2", "label": "Call back"},
                    ],
                    "required": True,
                }
                assert put.json() == expected
                assert (await agent.get("/dispositions")).json() == expected

                twice = {
                    "dispositions": [
                        {"code": "a", "label": "A"},
                        {"code": "b", "label": "B"},
                        {"code": "a", "label": "A again"},
                    ],
                    "required": False,
                }
                assert invalid(await admin.put("/admin/dispositions", json=twice)) == {
                    "body.dispositions.2.code": "disposition 0 has this code"
                }
                malformed = {
                    "dispositions": [
                        {"code": "Bad Code", "label": "x"},
                        {"code": "x" * 65, "label": "x"},
                        {"code": "ok", "label": ""},
                        {"code": "ok2", "label": "y" * 65},
                    ],
                    "required": False,
                }
                assert set(invalid(await admin.put("/admin/dispositions", json=malformed))) == {
                    "body.dispositions.0.code",
                    "body.dispositions.1.code",
                    "body.dispositions.2.label",
                    "body.dispositions.3.label",
                }
                empty = {"dispositions": [], "required": False}
                assert set(invalid(await admin.put("/admin/dispositions", json=empty))) == {
                    "body.dispositions"
                }
                many: dict[str, Any] = {
                    "dispositions": [{"code": f"c{i}", "label": "L"} for i in range(31)],
                    "required": False,
                }
                assert set(invalid(await admin.put("/admin/dispositions", json=many))) == {
                    "body.dispositions"
                }
                thirty = {**many, "dispositions": many["dispositions"][:30]}
                assert (await admin.put("/admin/dispositions", json=thirty)).status_code == 200
                await admin.put("/admin/dispositions", json=new)
                async with api(server, lee) as sup:
                    problem(await sup.put("/admin/dispositions", json=twice), 403, "forbidden")
                problem(await agent.put("/admin/dispositions", json=new), 403, "forbidden")
                assert (await agent.get("/dispositions")).json() == expected
        finally:
            await server.stop()


@dataclass
class Handed:
    """Ada's second chat, handed by Ann to Bob with a warm transfer; Lee present in it."""

    ann: Client
    bob: Client
    lee: Client
    before: str
    now: str
    summary: dict[str, Any]


async def handed_chat(server: Server, backend: Backend) -> Handed:
    """Ada (with pre-chat answers) had a chat with Ann, rated 4 and labelled; her new one was
    transferred to Bob, and Lee barged in."""
    ann = await online(server, backend, "Ann", skills={"billing": 5})
    lee = await online(server, backend, "Lee", Role.SUPERVISOR, capacity=0)
    ada = await visitor(
        server,
        name="Ada Lovelace",
        email="ada@example.com",
        attributes={"topic": "billing", "plan": "pro", "seats": 3},
    )
    before = await chat(ada, ann, "Where is my invoice for March?", skill="billing")
    await ann.message("Here it is.", conversation_id=before)
    await ann.send({"type": "close", "conversation_id": before})
    await ada.event("conversation.closed", conversation_id=before)
    async with httpx.AsyncClient(base_url=server.http) as http:
        rated = await http.put(
            f"/api/v1/visitor/conversations/{before}/rating",
            json={"score": 4},
            headers={"Authorization": f"Bearer {ada.token}"},
        )
        assert rated.status_code == 200, rated.text
    await store(backend, id=before, tags=["invoice"], disposition="resolved")

    now = await chat(ada, ann, "I was charged twice for order ORD-48213.", skill="billing")
    await ann.message("Sorry, let me check.", conversation_id=now)
    bob = await online(server, backend, "Bob", skills={"billing": 3})
    await ann.send(
        {
            "type": "transfer",
            "conversation_id": now,
            "to": {"agent_id": bob.welcome["session"]["id"]},
            "note": "Refund over my limit",
        }
    )
    offer = await bob.next("transfer_offer")
    await bob.send({"type": "transfer_accept", "transfer_id": offer["transfer_id"]})
    await bob.next("transfer_accepted", transfer_id=offer["transfer_id"])
    summary = await bob.event("handoff.summary", conversation_id=now)
    await store(
        backend,
        ConversationParticipant(
            conversation_id=uuid.UUID(now), agent_id=uuid.UUID(lee.welcome["session"]["id"])
        ),
    )
    return Handed(ann, bob, lee, before, now, summary)


class TestContext:
    async def test_context_after_a_warm_transfer(self, backend: Backend) -> None:
        """The agent who received a chat sees its visitor with the pre-chat answers, the
        summary written at the transfer, the supervisor present, and the visitor's earlier
        chat with who held it, what it was about, its rating and labels."""
        server = await console_server(backend)
        try:
            handed = await handed_chat(server, backend)
            bob, now, before, summary_event = handed.bob, handed.now, handed.before, handed.summary
            async with api(server, bob) as as_bob:
                response = await as_bob.get(f"/conversations/{now}/context")
                assert response.status_code == 200, response.text
                context = response.json()
            assert context["id"] == now
            assert context["state"] == "assigned"
            assert context["agent"] == {"id": bob.welcome["session"]["id"], "name": "Bob"}
            assert context["skill"]["slug"] == "billing"
            assert context["transfer_count"] == 1
            assert context["escalated"] is None
            assert (context["tags"], context["disposition"]) == ([], None)
            assert [p["name"] for p in context["participants"]] == ["Lee"]
            seen = context["visitor"]
            assert (seen["name"], seen["email"], seen["verified"]) == (
                "Ada Lovelace",
                "ada@example.com",
                False,
            )
            assert seen["attributes"] == {"topic": "billing", "plan": "pro", "seats": 3}
            assert context["summary"]["seq"] == summary_event["seq"]
            assert "ORD-48213" in context["summary"]["text"]
            assert context["summary"]["text"] == summary_event["body"]["text"]
            assert isinstance(context["summary"]["data"], dict)
            [earlier] = context["earlier"]
            assert earlier["id"] == before
            assert earlier["agent_name"] == "Ann"
            assert earlier["preview"] == "Where is my invoice for March?"
            assert (earlier["rating"], earlier["disposition"], earlier["tags"]) == (
                4,
                "resolved",
                ["invoice"],
            )
            assert earlier["closed_at"] is not None

        finally:
            await server.stop()

    async def test_who_may_read_it(self, backend: Backend) -> None:
        """The agent a chat came from still reads its context, and the first chat's context
        lists the second as earlier; an agent who never held it gets 404 (as for a chat that
        does not exist); a supervisor reads any."""
        server = await console_server(backend)
        try:
            handed = await handed_chat(server, backend)
            ann, lee, now, before = handed.ann, handed.lee, handed.now, handed.before
            carl = await login(server, backend, "Carl", skills={"billing": 5})
            async with api(server, ann) as as_ann:
                assert (await as_ann.get(f"/conversations/{now}/context")).status_code == 200
                first = (await as_ann.get(f"/conversations/{before}/context")).json()
                assert first["summary"] is None
                assert [e["id"] for e in first["earlier"]] == [now]
            async with api(server, carl) as as_carl:
                refused = problem(
                    await as_carl.get(f"/conversations/{now}/context"),
                    404,
                    "conversation_not_found",
                )
                assert refused["conversation_id"] == now
            async with api(server, lee) as as_lee:
                assert (await as_lee.get(f"/conversations/{now}/context")).status_code == 200
                problem(
                    await as_lee.get(f"/conversations/{uuid.uuid4()}/context"),
                    404,
                    "conversation_not_found",
                )
        finally:
            await server.stop()

    async def test_escalated_chat_shows_why(self, backend: Backend) -> None:
        """After an escalation the context says when and why, and carries the summary written
        for the supervisors."""
        server = await console_server(backend)
        try:
            ann = await online(server, backend, "Ann")
            await online(server, backend, "Lee", Role.SUPERVISOR, capacity=0)
            ada = await visitor(server, name="Ada")
            cid = await chat(ada, ann, "This is the third time I write about order ORD-7.")
            await ann.send(
                {"type": "escalate", "conversation_id": cid, "reason": "Disputes the policy"}
            )
            await ann.next("transfer_started")
            summary_event = await ann.event("handoff.summary", conversation_id=cid)
            async with api(server, ann) as as_ann:
                context = (await as_ann.get(f"/conversations/{cid}/context")).json()
            assert context["escalated"]["reason"] == "Disputes the policy"
            assert parsed(context["escalated"]["at"]) >= parsed(context["created_at"])
            assert context["summary"]["seq"] == summary_event["seq"]
            assert context["earlier"] == []
        finally:
            await server.stop()


class TestTeam:
    async def test_agents_and_queues(self, backend: Backend) -> None:
        """Any agent sees every active agent by name with status, connection, load and
        skills, and per skill how many chats wait, for how long, and who is online for it."""
        server = await console_server(backend)
        try:
            sam = await online(server, backend, "Sam", skills={"technical": 4}, capacity=1)
            dana = await online(server, backend, "Dana", skills={"billing": 5, "technical": 2})
            await login(server, backend, "Lee", Role.SUPERVISOR, skills={"billing": 3})
            await dana.send({"type": "status", "status": "away"})
            await dana.next("status")
            first = await visitor(server, name="Ada")
            await chat(first, sam, "My app crashes", skill="technical")
            second = await visitor(server, name="Bea")
            queued = (await second.message("Login broken", skill="technical"))["conversation_id"]
            await second.event("conversation.queued", conversation_id=queued)

            async with api(server, dana) as agent:
                response = await agent.get("/team")
                assert response.status_code == 200, response.text
                team = response.json()
            agents = {a["name"]: a for a in team["agents"]}
            assert [a["name"] for a in team["agents"]] == ["Dana", "Lee", "Sam"]
            assert {k: agents["Sam"][k] for k in ("status", "connected", "load", "capacity")} == {
                "status": "online",
                "connected": True,
                "load": 1,
                "capacity": 1,
            }
            assert (agents["Dana"]["status"], agents["Dana"]["connected"]) == ("away", True)
            assert agents["Dana"]["skills"] == [
                {"slug": "billing", "proficiency": 5},
                {"slug": "technical", "proficiency": 2},
            ]
            assert (agents["Lee"]["role"], agents["Lee"]["connected"]) == ("supervisor", False)
            skills = {s["slug"]: s for s in team["skills"]}
            assert [s["slug"] for s in team["skills"]] == ["billing", "technical"]
            assert skills["technical"]["waiting"] == 1
            assert skills["technical"]["longest_wait_seconds"] >= 0
            assert skills["technical"]["agents_online"] == 1  # Dana is away
            assert (skills["billing"]["waiting"], skills["billing"]["longest_wait_seconds"]) == (
                0,
                None,
            )
            assert skills["billing"]["agents_online"] == 0
        finally:
            await server.stop()


@dataclass
class Desk:
    """A desk at work: Dana (billing, capacity 1) holds Ada's chat, escalated; Sam (technical,
    capacity 1, target 8 s) holds Bea's; Cy waits for technical, Di for anyone."""

    lee: Client
    dana: Client
    sam: Client
    billing: str
    technical: str
    waiting: str
    no_skill: str


async def busy_desk(server: Server, backend: Backend) -> Desk:
    root = await login(server, backend, "Root", Role.ADMIN, capacity=0)
    lee = await login(server, backend, "Lee", Role.SUPERVISOR, capacity=0)
    sam = await online(server, backend, "Sam", skills={"technical": 4}, capacity=1)
    dana = await online(server, backend, "Dana", skills={"billing": 5}, capacity=1)
    async with api(server, root) as admin:
        skills = {s["slug"]: s for s in (await admin.get("/skills")).json()}
        defaults = skills["technical"]
        assert (defaults["sla_first_response_seconds"], defaults["sla_target_percent"]) == (60, 80)
        short = await admin.patch(
            f"/skills/{defaults['id']}",
            json={"sla_first_response_seconds": 8, "sla_target_percent": 90},
        )
        assert short.status_code == 200, short.text
        assert (short.json()["sla_first_response_seconds"], short.json()["sla_target_percent"]) == (
            8,
            90,
        )
    billing = await chat(await visitor(server, name="Ada"), dana, "Refund please", skill="billing")
    technical = await chat(await visitor(server, name="Bea"), sam, "App crash", skill="technical")
    cy = await visitor(server, name="Cy")
    waiting = (await cy.message("Login broken", skill="technical"))["conversation_id"]
    await cy.event("conversation.queued", conversation_id=waiting)
    di = await visitor(server, name="Di")
    no_skill = (await di.message("Hello?"))["conversation_id"]
    await di.event("conversation.queued", conversation_id=no_skill)
    await dana.send({"type": "escalate", "conversation_id": billing, "reason": "Wants a manager"})
    await dana.next("transfer_started")
    return Desk(lee, dana, sam, billing, technical, waiting, no_skill)


async def overview_of(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/supervisor/overview")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def skill_line(view: dict[str, Any], slug: str | None) -> dict[str, Any]:
    line: dict[str, Any] = next(s for s in view["skills"] if s["slug"] == slug)
    return line


def sla_state(view: dict[str, Any], slug: str) -> str:
    state: str = skill_line(view, slug)["sla"]["state"]
    return state


class TestOverview:
    async def test_queues_agents_escalations(self, backend: Backend) -> None:
        """Supervisors see each queue (waiting, who is online and free for it, its target),
        the chats that need no skill as a queue of their own, every agent with the chats they
        hold, the escalated chats and the queue in order; agents are refused."""
        server = await console_server(backend)
        try:
            desk = await busy_desk(server, backend)
            async with api(server, desk.dana) as agent:
                refused = problem(await agent.get("/supervisor/overview"), 403, "forbidden")
                assert refused["required_role"] == "supervisor"
            async with api(server, desk.lee) as sup:
                view = await overview_of(sup)
            assert parsed(view["generated_at"]) >= parsed(view["queued"][0]["queued_at"])
            assert [s["name"] for s in view["skills"]] == ["Billing", "Technical", "No skill"]
            tech = skill_line(view, "technical")
            assert (tech["waiting"], tech["agents_online"], tech["agents_available"]) == (1, 1, 0)
            assert tech["longest_wait_seconds"] >= 0
            assert (tech["sla"]["target_seconds"], tech["sla"]["target_percent"]) == (8, 90)
            bill = skill_line(view, "billing")
            assert (bill["waiting"], bill["longest_wait_seconds"]) == (0, None)
            assert bill["sla"] == {"target_seconds": 60, "target_percent": 80, "state": "ok"}
            nobody = skill_line(view, None)
            assert (nobody["id"], nobody["name"], nobody["waiting"]) == (None, "No skill", 1)
            assert (nobody["agents_online"], nobody["agents_available"]) == (2, 0)

            agents = {a["name"]: a for a in view["agents"]}
            assert list(agents) == ["Dana", "Lee", "Root", "Sam"]
            [held] = agents["Dana"]["chats"]
            assert (held["id"], held["visitor_name"], held["escalated"]) == (
                desk.billing,
                "Ada",
                True,
            )
            assert held["awaiting_reply_since"] is not None
            assert [c["id"] for c in agents["Sam"]["chats"]] == [desk.technical]
            assert (agents["Sam"]["load"], agents["Sam"]["capacity"]) == (1, 1)
            assert (agents["Lee"]["chats"], agents["Lee"]["connected"]) == ([], False)
            [escalated] = view["escalated"]
            assert (escalated["id"], escalated["visitor_name"], escalated["state"]) == (
                desk.billing,
                "Ada",
                "assigned",
            )
            assert escalated["agent"] == {"id": desk.dana.welcome["session"]["id"], "name": "Dana"}
            assert escalated["reason"] == "Wants a manager"
            assert [(q["id"], q["visitor_name"], q["skill_slug"]) for q in view["queued"]] == [
                (desk.waiting, "Cy", "technical"),
                (desk.no_skill, "Di", None),
            ]
            assert [q["escalated"] for q in view["queued"]] == [False, False]
        finally:
            await server.stop()

    async def test_service_level_states(self, backend: Backend) -> None:
        """Against a short target (8 s), a queue is ok, then at risk from 6 s, then breached
        past 8 s while a chat waits, and ok again once every chat is answered; another skill
        with the 60 s target stays ok meanwhile."""
        server = await console_server(backend)
        try:
            desk = await busy_desk(server, backend)
            async with api(server, desk.lee) as sup:
                assert sla_state(await overview_of(sup), "technical") == "ok"
                # Sam answers his chat; Cy's, queued, keeps the clock running.
                await desk.sam.message("Looking into it.", conversation_id=desk.technical)
                at_risk = await poll(
                    lambda: overview_of(sup), lambda v: sla_state(v, "technical") != "ok"
                )
                assert sla_state(at_risk, "technical") == "at_risk"
                assert 6 <= skill_line(at_risk, "technical")["longest_wait_seconds"] <= 8
                breached = await poll(
                    lambda: overview_of(sup), lambda v: sla_state(v, "technical") == "breached"
                )
                assert skill_line(breached, "technical")["longest_wait_seconds"] >= 8
                assert sla_state(breached, "billing") == "ok"
                # Bea's chat closes: Sam is free and gets Cy's, whose clock runs until he writes.
                await desk.sam.send({"type": "close", "conversation_id": desk.technical})
                await desk.sam.event("agent.joined", conversation_id=desk.waiting)
                still = await overview_of(sup)
                assert skill_line(still, "technical")["waiting"] == 0
                assert sla_state(still, "technical") == "breached"
                await desk.sam.message("Hi Cy, I'm here.", conversation_id=desk.waiting)
                answered = await overview_of(sup)
                tech = skill_line(answered, "technical")
                assert (tech["sla"]["state"], tech["longest_wait_seconds"]) == ("ok", None)
                assert [q["id"] for q in answered["queued"]] == [desk.no_skill]
        finally:
            await server.stop()
