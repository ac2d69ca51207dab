"""The conversations API for other systems (docs/api.md#conversations-api): the list with its
filters, search and cursor pages, one conversation, its transcript (JSON and text), its CSAT,
and the NDJSON export; from a real server on both backends.

One server per backend for the whole module: the chats the transcripts are read from are made
over the WebSockets once; the many conversations that pagination and the export need are
written straight into the store, each test under a tag (or a time window) of its own, so tests
do not see each other's rows.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from alembic import command

from app.auth import keys as key_service
from app.store.db import Database, alembic_config
from app.store.models import (
    Conversation,
    ConversationEvent,
    ConversationState,
    Role,
    SenderType,
    Visibility,
    Visitor,
)
from tests.conftest import REDIS_URL, Backend, _pg_admin, _redis_host_port, pg_url, require
from tests.e2e.harness import Client, Server, create_agent
from tests.e2e.test_attachments import png
from tests.e2e.test_attachments import upload as upload_file

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]

T0 = datetime(2020, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """A backend for the whole module (the conftest's `backend` is one per test)."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('conversations-api') / 'w.db'}"
        command.upgrade(alembic_config(url), "head")
        yield Backend("sqlite", url, None)
        return
    template: str = request.getfixturevalue("pg_template")
    require("Redis", *_redis_host_port())
    name = f"warmline_t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield Backend("postgres", pg_url(name), REDIS_URL)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@dataclass
class World:
    """The server, the callers, and two chats made over the WebSockets."""

    backend: Backend
    server: Server
    keys: dict[str, str]  # scopes' name → API key
    ann: Client  # agent, held `chat` (closed, rated)
    bob: Client  # agent, holds `open_chat`
    sue: Client  # supervisor
    chat: str
    open_chat: str
    upload: str  # the attachment id sent in `chat`

    def http(self, token: str | None) -> httpx.AsyncClient:
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.AsyncClient(base_url=f"{self.server.http}/api/v1", headers=headers)

    async def get(self, token: str | None, path: str, **params: Any) -> httpx.Response:
        async with self.http(token) as http:
            return await http.get(path, params=params)


async def make_key(backend: Backend, scopes: list[str]) -> str:
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            issued = await key_service.create_api_key(
                session, name="warehouse", scopes=scopes, created_by=None, now=datetime.now(UTC)
            )
        return issued.key
    finally:
        await db.dispose()


async def agent(server: Server, backend: Backend, name: str, role: Role = Role.AGENT) -> Client:
    client = await Client.agent(
        server, await create_agent(backend, name=name, role=role, skills={"billing": 3})
    )
    await client.connect()
    return client


async def visitor(server: Server, **body: Any) -> Client:
    async with httpx.AsyncClient(base_url=server.http) as http:
        response = await http.post("/api/v1/visitor/sessions", json=body)
        assert response.status_code == 201, response.text
    client = Client(server, "visitor", response.json()["token"])
    await client.connect()
    return client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(shared_backend: Backend) -> AsyncIterator[World]:
    backend = shared_backend
    server = await Server(backend, heartbeat_interval="30", heartbeat_timeout="60").start()
    try:
        keys = {
            "read": await make_key(backend, ["conversations:read", "transcripts:read"]),
            "internal": await make_key(
                backend, ["conversations:read", "transcripts:read", "transcripts:internal"]
            ),
            "meta": await make_key(backend, ["conversations:read"]),
        }
        ann = await agent(server, backend, "Ann")
        sue = await agent(server, backend, "Sue", Role.SUPERVISOR)
        await sue.send({"type": "status", "status": "away"})  # never routed a chat
        assert (await sue.next("status"))["status"] == "away"
        ada = await visitor(server, name="Ada", email="ada@example.com")
        chat = (
            await ada.message("My parcel 1042 never arrived, I want a refund", skill="billing")
        )["conversation_id"]
        await ann.event("agent.joined", conversation_id=chat)
        upload = (await upload_file(ann, png(), "receipt.png"))["id"]
        await ann.message(
            "Sorry Ada, refund on its way", conversation_id=chat, attachments=[upload]
        )
        await ann.send(
            {
                "type": "internal",
                "conversation_id": chat,
                "client_msg_id": "n1",
                "text": "zebra vip",
            }
        )
        await ann.next("ack", client_msg_id="n1")
        await sue.send(
            {"type": "whisper", "conversation_id": chat, "client_msg_id": "w1", "text": "okapi ok"}
        )
        await sue.next("ack", client_msg_id="w1")
        await ann.send(
            {
                "type": "close",
                "conversation_id": chat,
                "tags": ["Refund", "late"],
                "disposition": "resolved",
            }
        )
        await ann.event("conversation.closed", conversation_id=chat)
        async with httpx.AsyncClient(base_url=server.http) as http:
            rated = await http.put(
                f"/api/v1/visitor/conversations/{chat}/rating",
                json={"score": 4, "comment": "Quick"},
                headers={"Authorization": f"Bearer {ada.token}"},
            )
            assert rated.status_code == 200, rated.text
        # Bob comes online after: the second chat goes to him (Ann is free again, but Bob has
        # never been given a chat: routing's tie-break after the load ratio).
        await ann.send({"type": "status", "status": "away"})
        assert (await ann.next("status"))["status"] == "away"
        bob = await agent(server, backend, "Bob")
        bea = await visitor(server, name="Bea")
        open_chat = (await bea.message("Where is the invoice?", skill="billing"))["conversation_id"]
        await bob.event("agent.joined", conversation_id=open_chat)
        yield World(backend, server, keys, ann, bob, sue, chat, open_chat, upload)
    finally:
        await server.stop()


# --- rows written straight into the store ----------------------------------------------------


async def insert(
    backend: Backend,
    count: int,
    *,
    tag: str,
    created: datetime,
    closed: datetime | None = None,
    step: timedelta = timedelta(seconds=1),
    text: str = "hello there",
    note: str | None = None,
) -> list[str]:
    """`count` conversations tagged `tag`, created `step` apart from `created` (and closed
    likewise from `closed`), each with its opening, one visitor message (and a note)."""
    db = Database(backend.database_url)
    ids: list[str] = []
    try:
        async with db.write() as session:
            for i in range(count):
                guest = Visitor(token_hash=uuid.uuid4().hex * 2, name=f"Guest {i}")
                session.add(guest)
                await session.flush()
                at = created + i * step
                ended = None if closed is None else closed + i * step
                c = Conversation(
                    visitor_id=guest.id,
                    state=ConversationState.QUEUED if ended is None else ConversationState.CLOSED,
                    created_at=at,
                    queued_at=at,
                    closed_at=ended,
                    closed_by=None if ended is None else SenderType.VISITOR,
                    tags=[tag],
                )
                session.add(c)
                await session.flush()
                events = [
                    ("conversation.opened", SenderType.SYSTEM, {}, Visibility.ALL),
                    ("message", SenderType.VISITOR, {"text": text}, Visibility.ALL),
                ]
                if note is not None:
                    events.append(("note", SenderType.AGENT, {"text": note}, Visibility.AGENTS))
                if ended is not None:
                    events.append(
                        (
                            "conversation.closed",
                            SenderType.VISITOR,
                            {"by": "visitor"},
                            Visibility.ALL,
                        )
                    )
                for seq, (kind, sender, body, visibility) in enumerate(events, start=1):
                    session.add(
                        ConversationEvent(
                            conversation_id=c.id,
                            seq=seq,
                            kind=kind,
                            sender_type=sender,
                            sender_id=guest.id if sender is SenderType.VISITOR else None,
                            sender_name=guest.name if sender is SenderType.VISITOR else "Ann",
                            visibility=visibility,
                            body=body,
                            created_at=at,
                        )
                    )
                c.last_seq = len(events)
                ids.append(str(c.id))
    finally:
        await db.dispose()
    return ids


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    return body


def fields(response: httpx.Response) -> set[str]:
    return {e["field"] for e in problem(response, 422, "invalid_request")["errors"]}


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["data"]]


class TestList:
    async def test_items_carry_the_metadata(self, world: World) -> None:
        """An item has the state, skill, visitor, agents who held it, tags, disposition,
        times, message count, CSAT and last seq."""
        [item] = (
            await world.get(world.keys["meta"], "/conversations", tag="refund", q="parcel")
        ).json()["data"]
        assert item["id"] == world.chat
        assert item["state"] == "closed"
        assert item["skill"]["slug"] == "billing"
        assert item["visitor"]["name"] == "Ada"
        assert item["visitor"]["email"] == "ada@example.com"
        assert item["agent"]["name"] == "Ann"
        assert [a["name"] for a in item["agents"]] == ["Ann"]
        assert item["tags"] == ["refund", "late"]
        assert item["disposition"] == "resolved"
        assert item["message_count"] == 2
        assert item["csat"]["score"] == 4
        assert item["csat"]["comment"] == "Quick"
        assert item["closed_by"] == "agent"
        assert item["closed_at"].endswith("Z")
        assert item["last_seq"] >= 10

    async def test_filters(self, world: World) -> None:
        """Each filter narrows the list: status (repeatable), agent, skill, tags (all of them),
        visitor, created and closed bounds."""
        key = world.keys["meta"]

        async def listed(**params: Any) -> set[str]:
            return set(ids(await world.get(key, "/conversations", limit=100, **params)))

        both = {world.chat, world.open_chat}
        assert both <= await listed()
        assert world.chat in await listed(status="closed")
        assert world.open_chat not in await listed(status="closed")
        assert both <= await listed(status=["closed", "assigned"])
        ann_id = (await world.get(world.ann.token, "/auth/me")).json()["id"]
        bob_id = (await world.get(world.bob.token, "/auth/me")).json()["id"]
        assert await listed(agent_id=ann_id) == {world.chat}
        assert await listed(agent_id=bob_id) == {world.open_chat}
        chat = (await world.get(key, f"/conversations/{world.chat}")).json()
        assert both <= await listed(skill_id=chat["skill"]["id"])
        assert await listed(skill_id=2147480000) == set()
        assert await listed(tag=["refund", "LATE "]) == {world.chat}
        assert await listed(tag=["refund", "vip"]) == set()
        assert await listed(visitor_id=chat["visitor"]["id"]) == {world.chat}
        created = datetime.fromisoformat(chat["created_at"].replace("Z", "+00:00"))
        closed = datetime.fromisoformat(chat["closed_at"].replace("Z", "+00:00"))
        assert world.chat in await listed(created_after=created.isoformat())
        assert world.chat not in await listed(created_before=created.isoformat())
        assert world.chat in await listed(
            created_before=(created + timedelta(seconds=1)).isoformat()
        )
        assert world.chat in await listed(closed_after=closed.isoformat())
        assert await listed(closed_before=closed.isoformat()) & both == set()
        # A time without an offset is UTC.
        naive = (closed + timedelta(seconds=1)).replace(tzinfo=None).isoformat()
        assert world.chat in await listed(closed_before=naive)

    async def test_search(self, world: World) -> None:
        """`q` finds the words of messages; notes and whispers only for callers who may read
        them; LIKE's wildcards are plain characters."""
        meta, internal = world.keys["meta"], world.keys["internal"]

        async def found(token: str, q: str) -> set[str]:
            return set(ids(await world.get(token, "/conversations", q=q)))

        assert world.chat in await found(meta, "parcel")
        assert world.chat in await found(meta, "PARCEL refund")
        assert world.chat in await found(meta, "refund on its way")  # the agent's words
        assert await found(meta, "parcel invoice") == set()  # both words, one message
        assert await found(meta, "zebra") == set()  # an internal note
        assert await found(meta, "okapi") == set()  # a whisper
        assert await found(internal, "zebra") == {world.chat}
        assert await found(internal, "okapi") == {world.chat}
        assert await found(world.ann.token, "zebra") == {world.chat}
        assert await found(meta, "%") == set()
        assert await found(meta, "_") == set()
        assert fields(await world.get(meta, "/conversations", q="   ")) == {"query.q"}

    async def test_an_agent_lists_only_their_conversations(self, world: World) -> None:
        """A plain agent's session lists the conversations they hold or held; a supervisor's
        and a key's list them all."""
        assert set(ids(await world.get(world.bob.token, "/conversations", limit=100))) == {
            world.open_chat
        }
        assert set(ids(await world.get(world.ann.token, "/conversations", limit=100))) == {
            world.chat
        }
        everything = set(ids(await world.get(world.sue.token, "/conversations", limit=100)))
        assert {world.chat, world.open_chat} <= everything

    @pytest.mark.parametrize("sort", ["-created_at", "created_at"])
    async def test_pages_neither_repeat_nor_skip_with_inserts_between(
        self, world: World, sort: str
    ) -> None:
        """Paging 25 conversations 4 at a time while new ones are created between requests
        (newest, oldest, and one sharing a time with a row already read): every conversation
        there at the start comes exactly once, in order, with no duplicate."""
        tag = f"page{sort.strip('-')}{uuid.uuid4().hex[:6]}"
        start = datetime.now(UTC) - timedelta(hours=1)
        # Pairs sharing a created_at: the id breaks the tie.
        first = await insert(world.backend, 12, tag=tag, created=start, step=timedelta(0))
        rest = await insert(world.backend, 13, tag=tag, created=start + timedelta(seconds=5))
        original = set(first + rest)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"tag": tag, "limit": 4, "sort": sort}
            if cursor:
                params["cursor"] = cursor
            response = await world.get(world.keys["meta"], "/conversations", **params)
            body = response.json()
            seen += ids(response)
            pages += 1
            await insert(world.backend, 1, tag=tag, created=datetime.now(UTC))
            await insert(world.backend, 1, tag=tag, created=start - timedelta(days=1))
            await insert(world.backend, 1, tag=tag, created=start)
            if not body["has_more"]:
                assert body["next_cursor"] is None
                break
            cursor = body["next_cursor"]
        assert len(seen) == len(set(seen)), "a conversation came twice"
        assert original <= set(seen), "a conversation was skipped"
        assert pages >= 7
        created = [
            (await world.get(world.keys["meta"], f"/conversations/{cid}")).json()["created_at"]
            for cid in seen[:9]
        ]
        assert created == sorted(created, reverse=sort.startswith("-"))

    async def test_sorted_by_close_time(self, world: World) -> None:
        """`closed_at` sorts closed conversations by their close, those still open after them
        (and before them with `-closed_at`), by id."""
        tag = f"closing{uuid.uuid4().hex[:6]}"
        closed = await insert(world.backend, 5, tag=tag, created=T0, closed=T0 + timedelta(hours=1))
        still_open = await insert(world.backend, 3, tag=tag, created=T0)
        for sort, expected in (
            ("closed_at", closed + sorted(still_open)),
            ("-closed_at", sorted(still_open, reverse=True) + closed[::-1]),
        ):
            seen: list[str] = []
            cursor = None
            while True:
                params: dict[str, Any] = {"tag": tag, "limit": 3, "sort": sort}
                if cursor:
                    params["cursor"] = cursor
                response = await world.get(world.keys["meta"], "/conversations", **params)
                seen += ids(response)
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
            assert seen == expected, sort

    async def test_bad_cursors_and_parameters_are_422_naming_the_field(self, world: World) -> None:
        """A tampered cursor, one of another sort, and out-of-range parameters: 422 naming the
        field."""
        key = world.keys["meta"]
        first = (await world.get(key, "/conversations", limit=1)).json()
        cursor = first["next_cursor"]
        assert cursor is not None
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        for bad in (
            "not-a-cursor!",
            cursor[:-3],
            base64.urlsafe_b64encode(b'{"s": "-created_at"}').decode(),
            base64.urlsafe_b64encode(orjson.dumps({**raw, "k": "yesterday"})).decode(),
            base64.urlsafe_b64encode(orjson.dumps({**raw, "i": "42"})).decode(),
            base64.urlsafe_b64encode(orjson.dumps({**raw, "s": "priority"})).decode(),
        ):
            response = await world.get(key, "/conversations", cursor=bad)
            assert fields(response) == {"query.cursor"}, bad
        other_sort = await world.get(key, "/conversations", cursor=cursor, sort="created_at")
        assert fields(other_sort) == {"query.cursor"}
        assert fields(await world.get(key, "/conversations", limit=0)) == {"query.limit"}
        assert fields(await world.get(key, "/conversations", limit=101)) == {"query.limit"}
        assert fields(await world.get(key, "/conversations", sort="id")) == {"query.sort"}
        assert fields(await world.get(key, "/conversations", status="gone")) == {"query.status.0"}
        assert fields(await world.get(key, "/conversations", created_after="soon")) == {
            "query.created_after"
        }
        assert fields(await world.get(key, "/conversations", tag=" ")) == {"query.tag"}

    async def test_access(self, world: World) -> None:
        """No token is 401; a key without `conversations:read` is 403."""
        problem(await world.get(None, "/conversations"), 401, "invalid_token")
        only_transcripts = await make_key(world.backend, ["transcripts:read"])
        problem(await world.get(only_transcripts, "/conversations"), 403, "forbidden")
        problem(await world.get(only_transcripts, f"/conversations/{world.chat}"), 403, "forbidden")


class TestOneConversation:
    async def test_metadata_with_timings(self, world: World) -> None:
        """The item's fields, plus the queue wait and the first response."""
        response = await world.get(world.keys["meta"], f"/conversations/{world.chat}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["id"] == world.chat
        assert body["message_count"] == 2
        assert body["timings"]["queue_wait_seconds"] >= 0
        assert body["timings"]["first_response_seconds"] > 0
        still_waiting = (await insert(world.backend, 1, tag="wait", created=T0))[0]
        waiting = (await world.get(world.keys["meta"], f"/conversations/{still_waiting}")).json()
        assert waiting["timings"] == {"queue_wait_seconds": None, "first_response_seconds": None}
        assert waiting["agent"] is None
        assert waiting["agents"] == []
        assert waiting["csat"] is None

    async def test_unknown_and_unreadable_are_the_same_404(self, world: World) -> None:
        """An unknown id, and another agent's conversation for a plain agent, are both 404
        `conversation_not_found`; a malformed id is 422."""
        for path in ("", "/transcript", "/csat"):
            unknown = await world.get(
                world.keys["internal"], f"/conversations/{uuid.uuid4()}{path}"
            )
            problem(unknown, 404, "conversation_not_found")
            theirs = await world.get(world.bob.token, f"/conversations/{world.chat}{path}")
            problem(theirs, 404, "conversation_not_found")
            mine = await world.get(world.ann.token, f"/conversations/{world.chat}{path}")
            assert mine.status_code == 200, mine.text
        assert fields(await world.get(world.keys["meta"], "/conversations/42")) == {
            "path.conversation_id"
        }

    async def test_csat(self, world: World) -> None:
        """The rating when rated; 404 `csat_not_found` otherwise."""
        response = await world.get(world.keys["meta"], f"/conversations/{world.chat}/csat")
        assert response.status_code == 200, response.text
        assert response.json()["score"] == 4
        assert response.json()["comment"] == "Quick"
        missing = await world.get(world.keys["meta"], f"/conversations/{world.open_chat}/csat")
        problem(missing, 404, "csat_not_found")


class TestTranscript:
    async def test_without_internal_scope_no_agents_only_event(self, world: World) -> None:
        """A key with `transcripts:read` alone gets the events visible to the visitor, in seq
        order: no note, no whisper, no routing, no tags."""
        response = await world.get(world.keys["read"], f"/conversations/{world.chat}/transcript")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["internal"] is False
        events = body["events"]
        assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
        assert {e["visibility"] for e in events} == {"all"}
        kinds = [e["kind"] for e in events]
        assert "note" not in kinds
        assert "whisper" not in kinds
        assert "routing.decided" not in kinds
        assert kinds[0] == "conversation.opened"
        assert "conversation.rated" in kinds
        said = [e for e in events if e["kind"] == "message"]
        assert said[0]["sender"]["type"] == "visitor"
        assert said[0]["sender"]["name"] == "Ada"
        assert said[1]["sender"] == {
            "type": "agent",
            "id": (await world.get(world.ann.token, "/auth/me")).json()["id"],
            "name": "Ann",
        }
        [picture] = said[1]["body"]["attachments"]
        assert picture["id"] == world.upload
        assert picture["download_url"] == f"/api/v1/attachments/{world.upload}"
        assert "zebra" not in response.text
        assert "okapi" not in response.text

    async def test_with_internal_scope_every_event(self, world: World) -> None:
        """`transcripts:internal` (a key granted it, an agent's session) adds notes,
        whispers, routing, tags and the disposition: every seq from 1 to last_seq."""
        for token in (world.keys["internal"], world.ann.token, world.sue.token):
            response = await world.get(token, f"/conversations/{world.chat}/transcript")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["internal"] is True
            kinds = [e["kind"] for e in body["events"]]
            for kind in ("note", "whisper", "routing.decided", "conversation.tagged"):
                assert kind in kinds, kind
            assert [e["seq"] for e in body["events"]] == list(range(1, len(kinds) + 1))
            whisper = body["events"][kinds.index("whisper")]
            assert whisper["visibility"] == "agents"
            assert whisper["body"]["text"] == "okapi ok"

    async def test_text(self, world: World) -> None:
        """`format=text`: a plain-text download, a line per event; the same visibility rule."""
        path = f"/conversations/{world.chat}/transcript"
        plain = await world.get(world.keys["read"], path, format="text")
        assert plain.status_code == 200, plain.text
        assert plain.headers["content-type"].startswith("text/plain")
        assert "attachment" in plain.headers["content-disposition"]
        lines = plain.text.splitlines()
        assert any(
            line.startswith("[") and " UTC] Visitor Ada: My parcel 1042 never arrived" in line
            for line in lines
        )
        assert any(
            "Agent Ann: Sorry Ada, refund on its way [file: receipt.png" in line for line in lines
        )
        assert any("* Ann joined the chat." in line for line in lines)
        assert "zebra" not in plain.text
        assert "okapi" not in plain.text
        internal = await world.get(world.keys["internal"], path, format="text")
        assert "Internal note, Agent Ann: zebra vip" in internal.text
        assert "Whisper to Ann, Agent Sue: okapi ok" in internal.text
        assert fields(await world.get(world.keys["read"], path, format="pdf")) == {"query.format"}

    async def test_scope(self, world: World) -> None:
        """A key without `transcripts:read` cannot read transcripts nor export."""
        response = await world.get(world.keys["meta"], f"/conversations/{world.chat}/transcript")
        problem(response, 403, "forbidden")
        problem(
            await world.get(world.keys["meta"], "/conversations/export", since=T0.isoformat()),
            403,
            "forbidden",
        )


class TestExport:
    async def test_streams_every_closed_conversation_in_batches(self, world: World) -> None:
        """More conversations than one batch: each closed one in the window exactly once, as
        NDJSON, by close time then id; open ones and those outside the window are left out;
        notes only with `transcripts:internal`."""
        since = T0 + timedelta(days=30)
        tag = f"export{uuid.uuid4().hex[:6]}"
        before = await insert(
            world.backend,
            2,
            tag=tag,
            created=since - timedelta(days=1),
            closed=since - timedelta(seconds=2),
        )
        # 130 rows, three sharing each close time: the batch boundary (100) splits a tie.
        inside: list[str] = []
        for i in range(44):
            inside += await insert(
                world.backend,
                3,
                tag=tag,
                created=since,
                closed=since + timedelta(minutes=i),
                step=timedelta(0),
                note="internal words",
            )
        after = await insert(
            world.backend, 2, tag=tag, created=since, closed=since + timedelta(days=1)
        )
        await insert(world.backend, 2, tag=tag, created=since)  # still open
        until = since + timedelta(hours=12)
        params = {"since": since.isoformat(), "until": until.isoformat()}
        async with (
            world.http(world.keys["read"]) as http,
            http.stream("GET", "/conversations/export", params=params) as response,
        ):
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/x-ndjson"
            rows = [orjson.loads(line) async for line in response.aiter_lines() if line]
        assert len(rows) == 132
        order = [(r["closed_at"], r["id"]) for r in rows]
        assert order == sorted(order)
        got = [r["id"] for r in rows]
        assert len(set(got)) == len(got)
        assert set(inside) <= set(got)
        assert not (set(before) | set(after)) & set(got)
        closes = [r["closed_at"] for r in rows]
        assert closes == sorted(closes)
        sample = next(r for r in rows if r["id"] == inside[0])
        assert [e["kind"] for e in sample["events"]] == [
            "conversation.opened",
            "message",
            "conversation.closed",
        ]
        assert sample["internal"] is False
        assert sample["tags"] == [tag]
        async with world.http(world.keys["internal"]) as http:
            response = await http.get("/conversations/export", params=params)
        lines = [orjson.loads(line) for line in response.text.splitlines()]
        sample = next(r for r in lines if r["id"] == inside[0])
        assert "note" in [e["kind"] for e in sample["events"]]
        # An agent's session exports only the agent's own.
        async with world.http(world.ann.token) as http:
            response = await http.get("/conversations/export", params={"since": T0.isoformat()})
        assert [orjson.loads(line)["id"] for line in response.text.splitlines()] == [world.chat]

    async def test_needs_since(self, world: World) -> None:
        """`since` is required and must be a time; `until`, when given, later than `since`."""
        response = await world.get(world.keys["read"], "/conversations/export")
        assert fields(response) == {"query.since"}
        response = await world.get(world.keys["read"], "/conversations/export", since="then")
        assert fields(response) == {"query.since"}
        response = await world.get(
            world.keys["read"], "/conversations/export", since=T0.isoformat(), until=T0.isoformat()
        )
        assert fields(response) == {"query.until"}
