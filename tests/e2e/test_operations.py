"""What an operator sees: readiness, refusing an outdated schema, the CLI, several nodes."""

from __future__ import annotations

import asyncio
import os
import sys

import httpx
import pytest

from tests.conftest import Backend
from tests.e2e.harness import ROOT, Client, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]


async def run_cli(*args: str, database_url: str, **env: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=ROOT,
        env={**os.environ, "WARMLINE_DATABASE_URL": database_url, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


class TestStartup:
    async def test_ready_reports_its_dependencies(self, backend: Backend) -> None:
        """/healthz answers 200; /readyz answers 200 and names each dependency it checked."""
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                assert (await http.get("/healthz")).json() == {"status": "ok"}
                ready = await http.get("/readyz")
                assert ready.status_code == 200
                expected = {
                    "database": "ok",
                    **({"redis": "ok"} if backend.redis_url else {}),
                    "files": "ok",
                }
                assert ready.json()["checks"] == expected
                spec = (await http.get("/openapi.json")).json()
                assert "/api/v1/visitor/sessions" in spec["paths"]
        finally:
            await server.stop()

    async def test_refuses_to_start_on_an_unmigrated_database(self, unmigrated_sqlite: str) -> None:
        """`warmline serve` on an empty database exits non-zero and says to run `warmline migrate`;
        after the migration it starts."""
        code, out = await run_cli("serve", "--port", "0", database_url=unmigrated_sqlite)
        assert code == 2
        assert "warmline migrate" in out
        code, out = await run_cli("migrate", database_url=unmigrated_sqlite)
        assert code == 0, out
        server = await Server(Backend("sqlite", unmigrated_sqlite, None)).start()
        await server.stop()

    async def test_outdated_schema_is_named(self, unmigrated_sqlite: str) -> None:
        """A database at an older revision is refused with the revision it is at."""
        code, out = await run_cli("migrate", database_url=unmigrated_sqlite)
        assert code == 0, out
        code, out = await run_cli("migrate", "--downgrade", "base", database_url=unmigrated_sqlite)
        assert code == 0, out
        code, out = await run_cli("serve", "--port", "0", database_url=unmigrated_sqlite)
        assert code == 2
        assert "has no Warmline schema" in out or "is at revision" in out


class TestCli:
    async def test_agent_create_then_login(self, backend: Backend) -> None:
        """`warmline agent create` makes an agent who can log in with the given password and
        is routed chats for their skill."""
        code, out = await run_cli(
            "agent",
            "create",
            "--name",
            "Kim",
            "--email",
            "Kim@Example.com",
            "--skill",
            "billing:4",
            "--capacity",
            "2",
            database_url=backend.database_url,
            WARMLINE_AGENT_PASSWORD="a-long-enough-password",
        )
        assert code == 0, out
        code, out = await run_cli(
            "agent",
            "create",
            "--name",
            "Kim",
            "--email",
            "kim@example.com",
            database_url=backend.database_url,
            WARMLINE_AGENT_PASSWORD="a-long-enough-password",
        )
        assert code == 1
        assert "exists already" in out
        code, out = await run_cli(
            "agent",
            "create",
            "--name",
            "Short",
            "--email",
            "s@example.com",
            database_url=backend.database_url,
            WARMLINE_AGENT_PASSWORD="short",
        )
        assert code == 2
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                login = await http.post(
                    "/api/v1/auth/login",
                    json={"email": "kim@example.com", "password": "a-long-enough-password"},
                )
                assert login.status_code == 200, login.text
                assert login.json()["agent"]["capacity"] == 2
        finally:
            await server.stop()

    async def test_api_key_create_list_revoke(self, backend: Backend) -> None:
        """`warmline api-key create` prints a key that works at once within its scopes;
        `list` shows it by prefix, never whole; after `revoke` it answers 401."""
        code, out = await run_cli(
            "api-key",
            "create",
            "--name",
            "Warehouse",
            "--scope",
            "conversations:read",
            "--scope",
            "transcripts:read",
            database_url=backend.database_url,
        )
        assert code == 0, out
        (key,) = [line for line in out.splitlines() if line.startswith("wlk_")]
        code, out = await run_cli(
            "api-key",
            "create",
            "--name",
            "X",
            "--scope",
            "everything",
            database_url=backend.database_url,
        )
        assert code == 2
        assert "invalid choice" in out
        code, listing = await run_cli("api-key", "list", database_url=backend.database_url)
        assert code == 0, listing
        (line,) = [line for line in listing.splitlines() if line.endswith("Warehouse")]
        assert key[:12] in line
        assert key not in listing
        assert "active" in line
        assert "conversations:read,transcripts:read" in line
        server = await Server(backend).start()
        try:
            async with httpx.AsyncClient(
                base_url=server.http, headers={"Authorization": f"Bearer {key}"}
            ) as http:
                assert (await http.get("/api/v1/conversations")).status_code == 200
                assert (await http.get("/api/v1/agents")).status_code == 403
                code, out = await run_cli(
                    "api-key", "revoke", line.split()[0], database_url=backend.database_url
                )
                assert code == 0, out
                refused = await http.get("/api/v1/conversations")
                assert refused.status_code == 401
                assert refused.json()["code"] == "invalid_token"
        finally:
            await server.stop()
        code, out = await run_cli(
            "api-key", "revoke", "not-an-id", database_url=backend.database_url
        )
        assert code == 2
        assert "not a key id" in out

    async def test_demo_is_idempotent(self, backend: Backend) -> None:
        """`warmline demo` prints the logins and can run twice."""
        for _ in range(2):
            code, out = await run_cli("demo", database_url=backend.database_url)
            assert code == 0, out
            assert "dana@demo.warmline.dev" in out


class TestScaleOut:
    async def test_two_nodes_share_one_deployment(self, postgres_backend: Backend) -> None:
        """Two server processes on one PostgreSQL + Redis: the visitor on node A, the agent on
        node B; the chat is assigned across nodes and messages flow both ways, in one log."""
        node_a = await Server(postgres_backend, node_name="node-a").start()
        node_b = await Server(postgres_backend, node_name="node-b").start()
        try:
            agent = await Client.agent(node_b, await create_agent(postgres_backend, name="Bo"))
            assert (await agent.connect())["node"] == "node-b"
            visitor = await Client.visitor(node_a)
            assert (await visitor.connect())["node"] == "node-a"

            ack = await visitor.message("hello from node A")
            conversation_id = ack["conversation_id"]
            assert (await visitor.event("agent.joined"))["body"]["agent"]["name"] == "Bo"
            await agent.event("message", seq=ack["seq"])
            reply = await agent.message("hello from node B", conversation_id=conversation_id)
            got = await visitor.event("message", seq=reply["seq"])
            assert got["body"]["text"] == "hello from node B"
            await visitor.send(
                {"type": "typing", "conversation_id": conversation_id, "state": "start"}
            )
            typing = await agent.next("typing")
            assert typing["sender"]["type"] == "visitor"
            shared = [e["seq"] for e in agent.events[conversation_id] if e["visibility"] == "all"]
            assert shared == visitor.seqs(conversation_id)

            # The visitor moves to node B (their node went away) and resumes there.
            last = visitor.seqs(conversation_id)[-1]
            await visitor.close()
            await agent.message("still there?", conversation_id=conversation_id)
            moved = Client(node_b, "visitor", visitor.token)
            await moved.connect(resume={conversation_id: last})
            await moved.event("message", seq=last + 1)
            assert moved.seqs(conversation_id) == [last + 1]
        finally:
            await node_a.stop()
            await node_b.stop()


class TestCors:
    async def test_widget_origin_may_call_the_visitor_api(self, sqlite_backend: Backend) -> None:
        """A page on an allowed origin gets CORS approval for the visitor session call; other
        origins do not."""
        server = await Server(sqlite_backend, allowed_origins="https://shop.example").start()
        try:
            async with httpx.AsyncClient(base_url=server.http) as http:
                preflight = {
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type",
                }
                ok = await http.options(
                    "/api/v1/visitor/sessions",
                    headers={"Origin": "https://shop.example", **preflight},
                )
                assert ok.status_code == 200
                assert ok.headers["access-control-allow-origin"] == "https://shop.example"
                bad = await http.options(
                    "/api/v1/visitor/sessions",
                    headers={"Origin": "https://evil.example", **preflight},
                )
                assert "access-control-allow-origin" not in bad.headers
                # A page on the listed origin can read a download's file name and the request id.
                plain = await http.get("/healthz", headers={"Origin": "https://shop.example"})
                assert plain.headers["access-control-expose-headers"] == (
                    "Content-Disposition, X-Request-Id"
                )
        finally:
            await server.stop()
