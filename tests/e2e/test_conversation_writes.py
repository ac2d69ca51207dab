"""The write side of the conversations API (docs/api.md#changing-conversations), on both
backends: a key tags open and closed conversations and closes chats as the system signed with its
name; what it stores reaches the sockets as a frame's would (the widget sees the close, the
queue moves); an agent's session has the frames' rules; refused requests change nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text

from app.store.db import Database
from app.store.models import Conversation, Role
from tests.conftest import Backend
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.test_access import make_key
from tests.e2e.webhook_receiver import Receiver, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]

WRITE = ["conversations:write", "conversations:read", "transcripts:read", "transcripts:internal"]


@pytest_asyncio.fixture
async def server(backend: Backend) -> AsyncIterator[Server]:
    srv = await Server(backend, heartbeat_interval="30", heartbeat_timeout="60").start()
    try:
        yield srv
    finally:
        await srv.stop()


def api(server: Server, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"{server.http}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in problem(response, 422, "invalid_request")["errors"]]


async def chat(
    server: Server, agent: Client, *, name: str = "Ada", text_: str = "My parcel is late"
) -> tuple[Client, str]:
    """A visitor's new chat, given to `agent` (connected, offers off)."""
    visitor = await Client.visitor(server, name=name)
    await visitor.connect()
    conversation_id = str((await visitor.message(text_))["conversation_id"])
    await agent.event("agent.joined", conversation_id=conversation_id)
    return visitor, conversation_id


async def agent(server: Server, backend: Backend, name: str, **kwargs: Any) -> Client:
    client = await Client.agent(server, await create_agent(backend, name=name, **kwargs))
    await client.connect()
    return client


async def stored(backend: Backend, conversation_id: str) -> dict[str, Any]:
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            row = await session.get(Conversation, uuid.UUID(conversation_id))
            assert row is not None
            return {
                "state": row.state.value,
                "tags": row.tags,
                "disposition": row.disposition,
                "last_seq": row.last_seq,
            }
    finally:
        await db.dispose()


async def require_disposition(backend: Backend) -> None:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            await session.execute(text("UPDATE routing_settings SET require_disposition = true"))
    finally:
        await db.dispose()


def signed_by_key(event: dict[str, Any], name: str = "CRM sync") -> bool:
    """The event is the system's doing, signed with the key's name (wire or transcript form)."""
    key: dict[str, Any] = event["body"].get("api_key") or {}
    return (
        event["sender"] == {"type": "system", "id": None, "name": name}
        and key.get("name") == name
        and bool(key.get("id"))
    )


class TestTags:
    async def test_a_key_tags_an_open_and_then_a_closed_conversation(
        self, server: Server, backend: Backend
    ) -> None:
        """Open: the holder's socket gets `conversation.tagged` signed with the key's name, the
        visitor nothing. Closed: tags and disposition still change, appended after
        `conversation.closed`; a resume after the close replays them; the transcript (JSON and
        text) says which key did it."""
        dana = await agent(server, backend, "Dana")
        ada, cid = await chat(server, dana)
        key = await make_key(backend, WRITE, name="CRM sync")
        async with api(server, key) as http:
            changed = await http.patch(f"/conversations/{cid}", json={"tags": ["Refund ", "VIP"]})
            assert changed.status_code == 200, changed.text
            assert changed.json()["tags"] == ["refund", "vip"]
            assert changed.json()["state"] == "assigned"
            tagged = await dana.event("conversation.tagged", conversation_id=cid)
            assert tagged["visibility"] == "agents"
            assert signed_by_key(tagged)
            assert {k: tagged["body"][k] for k in ("tags", "added", "removed")} == {
                "tags": ["refund", "vip"],
                "added": ["refund", "vip"],
                "removed": [],
            }
            # The same set in another order is no change: nothing written.
            before = await stored(backend, cid)
            same = await http.patch(f"/conversations/{cid}", json={"tags": ["vip", "refund"]})
            assert same.status_code == 200
            assert (await stored(backend, cid))["last_seq"] == before["last_seq"]

            await dana.send({"type": "close", "conversation_id": cid})
            closed = await dana.event("conversation.closed", conversation_id=cid)
            await ada.event("conversation.closed", conversation_id=cid)

            after = await http.patch(
                f"/conversations/{cid}",
                json={"tags": ["refund", "Late parcel"], "disposition": "follow_up"},
            )
            assert after.status_code == 200, after.text
            assert (after.json()["state"], after.json()["tags"], after.json()["disposition"]) == (
                "closed",
                ["refund", "late parcel"],
                "follow_up",
            )
            assert after.json()["closed_by"] == "agent"
            assert await stored(backend, cid) == {
                "state": "closed",
                "tags": ["refund", "late parcel"],
                "disposition": "follow_up",
                "last_seq": closed["seq"] + 2,
            }

            # Nothing is live after the close; a resume after it replays what came since.
            late = [f for f in await ada.quiet(0.3) if f.get("seq", 0) > closed["seq"]]
            assert late == []
            await dana.send({"type": "resume", "conversations": {cid: closed["seq"]}})
            retagged = await dana.event("conversation.tagged", seq=closed["seq"] + 1)
            disposed = await dana.event("conversation.disposition", seq=closed["seq"] + 2)
            assert signed_by_key(retagged)
            assert retagged["body"]["added"] == ["late parcel"]
            assert retagged["body"]["removed"] == ["vip"]
            assert signed_by_key(disposed)
            assert disposed["body"]["disposition"] == "follow_up"

            transcript = (await http.get(f"/conversations/{cid}/transcript")).json()
            kinds = [(e["kind"], e["sender"]["type"]) for e in transcript["events"]][-4:]
            assert kinds == [
                ("conversation.tagged", "system"),  # before the close, by the key
                ("conversation.closed", "agent"),
                ("conversation.tagged", "system"),
                ("conversation.disposition", "system"),
            ]
            assert all(signed_by_key(e) for e in transcript["events"][-2:])
            assert transcript["events"][-1]["body"]["api_key"]["id"]
            plain = (await http.get(f"/conversations/{cid}/transcript?format=text")).text
            assert "* Disposition: Needs follow-up. (API key CRM sync)" in plain, plain
        await dana.close()
        await ada.close()


class TestClose:
    async def test_a_key_closes_a_chat_the_widget_sees_it_and_the_queue_moves(
        self, backend: Backend
    ) -> None:
        """With offers on and Ann at capacity, Bea waits; a key closes Ada's chat: Ada's widget
        gets `conversation.closed` (the system's, naming the key), Ann's chat ends and Bea's
        is offered to her at once, and the `conversation.closed` webhook names the key."""
        server = await Server(
            backend,
            offer_auto_accept="false",
            offer_timeout="30",
            heartbeat_interval="30",
            heartbeat_timeout="60",
        ).start()
        try:
            async with Receiver() as receiver:
                admin_key = await make_key(backend, ["admin"], name="admin")
                async with api(server, admin_key) as admin:
                    hook = await admin.post(
                        "/webhooks", json={"url": receiver.url, "events": ["conversation.closed"]}
                    )
                    assert hook.status_code == 201, hook.text
                ann = await agent(server, backend, "Ann", capacity=1)
                ada = await Client.visitor(server, name="Ada")
                await ada.connect()
                cid = str((await ada.message("Where is my parcel?"))["conversation_id"])
                offer = await ann.next("offer", conversation_id=cid)
                await ann.send({"type": "accept", "offer_id": offer["offer_id"]})
                await ann.event("agent.joined", conversation_id=cid)
                bea = await Client.visitor(server, name="Bea")
                await bea.connect()
                waiting = str((await bea.message("Hello?"))["conversation_id"])
                await bea.event("conversation.queued", conversation_id=waiting)

                key = await make_key(backend, WRITE, name="CRM sync")
                async with api(server, key) as http:
                    closed = await http.post(
                        f"/conversations/{cid}/close",
                        json={"tags": ["Shipping"], "disposition": "resolved"},
                    )
                    assert closed.status_code == 200, closed.text
                    body = closed.json()
                    assert (body["state"], body["closed_by"], body["tags"]) == (
                        "closed",
                        "system",
                        ["shipping"],
                    )
                    assert body["disposition"] == "resolved"

                    seen = await ada.event("conversation.closed", conversation_id=cid)
                    assert seen["body"]["by"] == "system"
                    assert signed_by_key(seen)
                    ended = await ann.event("conversation.closed", conversation_id=cid)
                    assert ended["seq"] == seen["seq"]
                    labels = [e["kind"] for e in ann.events[cid]][-3:]
                    assert labels == [
                        "conversation.tagged",
                        "conversation.disposition",
                        "conversation.closed",
                    ]
                    assert {e["kind"] for e in ada.events[cid]}.isdisjoint(labels[:2])
                    # Ann's capacity is free: the waiting chat is offered to her at once.
                    await ann.next("offer", conversation_id=waiting)

                    again = await http.post(f"/conversations/{cid}/close")
                    problem(again, 409, "conversation_closed")

                await wait_for(lambda: bool(receiver.ok()), what="the close's webhook")
                [hooked] = [r.json() for r in receiver.ok()]
                assert hooked["type"] == "conversation.closed"
                assert hooked["conversation_id"] == cid
                assert hooked["data"]["by"] == "system"
                assert hooked["data"]["api_key"]["name"] == "CRM sync"
            for client in (ann, ada, bea):
                await client.close()
        finally:
            await server.stop()

    async def test_an_agent_closes_over_rest_only_a_chat_they_hold(
        self, server: Server, backend: Backend
    ) -> None:
        """A session acts as its agent: another agent gets 404 (they may not read it), a
        supervisor who does not hold it 403; the holder closes it with labels, as the `close`
        frame would, and their load drops; afterwards the agent may not relabel it (409) but
        a supervisor may."""
        dana = await agent(server, backend, "Dana", capacity=2)
        ada, cid = await chat(server, dana)
        sam = await agent(server, backend, "Sam", capacity=0)
        sue = await agent(server, backend, "Sue", role=Role.SUPERVISOR, capacity=0)

        async with api(server, sam.token) as http:
            problem(await http.post(f"/conversations/{cid}/close"), 404, "conversation_not_found")
            problem(
                await http.patch(f"/conversations/{cid}", json={"tags": ["x"]}),
                404,
                "conversation_not_found",
            )
        async with api(server, sue.token) as http:
            problem(await http.post(f"/conversations/{cid}/close"), 403, "not_participant")
        assert (await stored(backend, cid))["state"] == "assigned"

        async with api(server, dana.token) as http:
            tagged = await http.patch(f"/conversations/{cid}", json={"tags": ["Parcel"]})
            assert tagged.status_code == 200, tagged.text
            event = await dana.event("conversation.tagged", conversation_id=cid)
            assert event["sender"]["name"] == "Dana"
            assert "api_key" not in event["body"]

            closed = await http.post(
                f"/conversations/{cid}/close", json={"disposition": "resolved"}
            )
            assert closed.status_code == 200, closed.text
            assert closed.json()["closed_by"] == "agent"
            seen = await ada.event("conversation.closed", conversation_id=cid)
            assert seen["sender"]["name"] == "Dana"
            assert seen["body"] == {"by": "agent"}
            await dana.event("conversation.closed", conversation_id=cid)
            team = (await http.get("/team")).json()
            assert next(a["load"] for a in team["agents"] if a["name"] == "Dana") == 0

            problem(await http.post(f"/conversations/{cid}/close"), 409, "conversation_closed")
            problem(
                await http.patch(f"/conversations/{cid}", json={"tags": ["late"]}),
                409,
                "conversation_closed",
            )
        async with api(server, sue.token) as http:
            reviewed = await http.patch(
                f"/conversations/{cid}", json={"tags": ["late"], "disposition": "not_resolved"}
            )
            assert reviewed.status_code == 200, reviewed.text
        after = await stored(backend, cid)
        assert (after["tags"], after["disposition"]) == (["late"], "not_resolved")
        for client in (dana, sam, sue, ada):
            await client.close()

    async def test_a_required_disposition_is_required_of_a_key_too(
        self, server: Server, backend: Backend
    ) -> None:
        """With dispositions required, a key's close without one is 422
        `disposition_required` and an unknown one is 422 naming `body.disposition`; neither
        changes anything. With one offered it closes."""
        await require_disposition(backend)
        dana = await agent(server, backend, "Dana")
        ada, cid = await chat(server, dana)
        key = await make_key(backend, WRITE, name="CRM sync")
        async with api(server, key) as http:
            required = problem(
                await http.post(f"/conversations/{cid}/close", json={"tags": ["x"]}),
                422,
                "disposition_required",
            )
            assert "resolved" in required["dispositions"]
            unknown = await http.post(
                f"/conversations/{cid}/close", json={"disposition": "made_up"}
            )
            assert fields(unknown) == ["body.disposition"]
            assert await stored(backend, cid) == {
                "state": "assigned",
                "tags": [],
                "disposition": None,
                "last_seq": (await stored(backend, cid))["last_seq"],
            }
            closed = await http.post(
                f"/conversations/{cid}/close", json={"disposition": "no_response"}
            )
            assert closed.status_code == 200, closed.text
        disposed = await dana.event("conversation.disposition", conversation_id=cid)
        assert signed_by_key(disposed)
        assert disposed["body"]["disposition"] == "no_response"
        await ada.event("conversation.closed", conversation_id=cid)
        await dana.close()
        await ada.close()


BAD_CHANGES: list[tuple[Any, str]] = [
    ({}, "body"),
    ({"tags": None}, "body.tags"),
    ({"tags": "refund"}, "body.tags"),
    ({"tags": ["   "]}, "body.tags"),
    ({"tags": ["x" * 33]}, "body.tags"),
    ({"tags": [f"t{i}" for i in range(21)]}, "body.tags"),
    ({"tags": ["ok"], "colour": "red"}, "body.colour"),
    ({"disposition": ""}, "body.disposition"),
    ({"disposition": None}, "body.disposition"),
    ({"disposition": "resolved"}, "body.disposition"),  # the chat is open
    ([], "body"),
]
BAD_CLOSES: list[tuple[Any, str]] = [
    ({"tag": ["x"]}, "body.tag"),
    ({"tags": "refund"}, "body.tags"),
    ({"tags": ["\u3000"]}, "body.tags"),
    ({"disposition": "made_up"}, "body.disposition"),
]


class TestBadInput:
    async def test_bad_bodies_name_their_field_and_change_nothing(
        self, server: Server, backend: Backend
    ) -> None:
        """Each bad body is 422 `invalid_request` naming the field (unknown fields refused);
        an unknown conversation is 404; a key without `conversations:write` 403. The chat is
        untouched and no event reaches its agent."""
        dana = await agent(server, backend, "Dana")
        ada, cid = await chat(server, dana)
        before = await stored(backend, cid)
        key = await make_key(backend, WRITE, name="CRM sync")
        reader = await make_key(backend, ["conversations:read"], name="reader")
        async with api(server, key) as http:
            for body, field in BAD_CHANGES:
                response = await http.patch(f"/conversations/{cid}", json=body)
                assert fields(response) == [field], body
            for body, field in BAD_CLOSES:
                response = await http.post(f"/conversations/{cid}/close", json=body)
                assert fields(response) == [field], body
            problem(
                await http.patch(f"/conversations/{uuid.uuid4()}", json={"tags": []}),
                404,
                "conversation_not_found",
            )
            problem(
                await http.post(f"/conversations/{uuid.uuid4()}/close"),
                404,
                "conversation_not_found",
            )
        async with api(server, reader) as http:
            denied = problem(await http.post(f"/conversations/{cid}/close"), 403, "forbidden")
            assert denied["required_scope"] == "conversations:write"
        assert await stored(backend, cid) == before
        labelled = ("conversation.tagged", "conversation.disposition", "conversation.closed")
        assert [f for f in await dana.quiet(0.3) if f.get("kind") in labelled] == []
        await dana.close()
        await ada.close()
