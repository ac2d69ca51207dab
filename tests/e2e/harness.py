"""End-to-end harness: real `warmline serve` processes on free ports, real WebSocket clients.

`Server` runs the CLI in a subprocess (uvicorn on port 0, the port read from its log), so
tests exercise exactly what an operator runs. `Client` speaks protocol v1 as a third party
would, from docs/protocol.md: it answers server pings, records every event it receives, and
checks on the fly that events of a conversation arrive in increasing `seq`, never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import uuid
import weakref
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from sqlalchemy import select, text
from websockets.asyncio.client import ClientConnection

from app.auth.tokens import hash_password
from app.store.db import Database
from app.store.models import Agent, AgentSkill, Role, Skill
from tests.conftest import Backend

ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 30.0
RECV_TIMEOUT = 10.0
PASSWORD = "correct-horse-battery"
_RUNNING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class Server:
    """One Warmline process."""

    def __init__(self, backend: Backend, **settings: str) -> None:
        self.backend = backend
        self.env = {
            **os.environ,
            "WARMLINE_ENV": "test",
            "WARMLINE_DATABASE_URL": backend.database_url,
            "WARMLINE_LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
        self.env.pop("WARMLINE_REDIS_URL", None)
        if backend.redis_url:
            self.env["WARMLINE_REDIS_URL"] = backend.redis_url
        # Each server keeps its attachments in a directory of its own (kept across restarts of
        # this Server, removed with it), unless the test names a store.
        self.files_dir = Path(tempfile.mkdtemp(prefix="warmline-files-"))
        weakref.finalize(self, shutil.rmtree, self.files_dir, True)
        self.env["WARMLINE_ATTACHMENT_STORE"] = self.files_dir.as_uri()
        self.env.update({f"WARMLINE_{k.upper()}": v for k, v in settings.items()})
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0
        self.output: list[str] = []
        self._drain: asyncio.Task[None] | None = None
        # Every client made for this server, so that stop() leaves no socket open behind it.
        self.clients: list[Client] = []
        # More `warmline serve` flags, such as ["--workers", "2"].
        self.serve_args: list[str] = []

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> Server:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *self.serve_args,
            cwd=ROOT,
            env=self.env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self.process.stderr is not None
        try:
            await self._wait_until_running()
        except BaseException:
            # A server that never came up must not outlive the test that started it.
            self.process.kill()
            await self.process.wait()
            raise
        self._drain = asyncio.create_task(self._drain_output())
        return self

    async def _wait_until_running(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError("server did not start:\n" + "".join(self.output))
            line = await asyncio.wait_for(self.process.stderr.readline(), remaining)
            if not line:
                code = await self.process.wait()
                raise AssertionError(f"server exited with {code}:\n" + "".join(self.output))
            text = line.decode(errors="replace")
            self.output.append(text)
            match = _RUNNING.search(text)
            if match:
                self.port = int(match.group(1))
                return

    async def _drain_output(self) -> None:
        assert self.process is not None
        assert self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.output.append(line.decode(errors="replace"))

    async def stop(self, *, allow_errors: bool = False) -> None:
        """Shut down cleanly (SIGTERM). Fails the test if the server logged an error or a
        traceback meanwhile, unless `allow_errors`: a server-side failure is never silent."""
        await self._end(signal.SIGTERM)
        for client in self.clients:
            client.discard()
        # Shown by pytest only when the test failed: the server's side of the story.
        print(f"--- server :{self.port} log (last 60 lines) ---")  # noqa: T201
        print("".join(self.output[-60:]))  # noqa: T201
        if not allow_errors:
            errors = [line for line in self.output if "[error" in line or "Traceback" in line]
            assert not errors, f"server :{self.port} logged errors: {errors[:5]}"

    async def kill(self) -> None:
        """SIGKILL: no shutdown hooks run, as in a crash."""
        await self._end(signal.SIGKILL)

    async def _end(self, sig: signal.Signals) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(sig)
        try:
            await asyncio.wait_for(self.process.wait(), 15)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)


async def create_agent(
    backend: Backend,
    *,
    name: str = "Dana",
    skills: dict[str, int] | None = None,
    capacity: int = 4,
    role: Role = Role.AGENT,
) -> str:
    """Create an agent through the store and return their email (password: PASSWORD)."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com"
    db = Database(backend.database_url)
    try:
        async with db.write() as session:
            agent = Agent(
                name=name,
                email=email,
                role=role,
                password_hash=hash_password(PASSWORD),
                capacity=capacity,
            )
            session.add(agent)
            await session.flush()
            for slug, level in (skills or {}).items():
                skill = await session.scalar(select(Skill).where(Skill.slug == slug))
                if skill is None:
                    skill = Skill(slug=slug, name=slug.title())
                    session.add(skill)
                    await session.flush()
                session.add(AgentSkill(agent_id=agent.id, skill_id=skill.id, proficiency=level))
    finally:
        await db.dispose()
    return email


async def count_rows(backend: Backend) -> dict[str, int]:
    """Row counts of the tables a frame could touch, to prove bad input changed nothing."""
    db = Database(backend.database_url)
    try:
        async with db.read() as session:
            result = {}
            for table in ("conversations", "conversation_events", "visitors"):
                result[table] = int(
                    (await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()  # noqa: S608 - fixed names
                )
            return result
    finally:
        await db.dispose()


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed with {code}: {reason}")
        self.code = code
        self.reason = reason


class Client:
    """A protocol v1 client, visitor or agent."""

    def __init__(self, server: Server, role: str, token: str) -> None:
        self.server = server
        self.role = role
        self.token = token
        self.ws: ClientConnection | None = None
        self.welcome: dict[str, Any] = {}
        self.frames: list[dict[str, Any]] = []  # every non-ping frame, in arrival order
        self.events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._unread: list[dict[str, Any]] = []
        self.answer_pings = True
        server.clients.append(self)

    @classmethod
    async def visitor(
        cls,
        server: Server,
        *,
        name: str = "Ada",
        token: str | None = None,
        identity_token: str | None = None,
    ) -> Client:
        body: dict[str, Any] = {"name": name}
        if token:
            body["token"] = token
        if identity_token:
            body["identity_token"] = identity_token
        async with httpx.AsyncClient(base_url=server.http) as http:
            response = await http.post("/api/v1/visitor/sessions", json=body)
            assert response.status_code in (200, 201), response.text
        return cls(server, "visitor", response.json()["token"])

    @classmethod
    async def agent(cls, server: Server, email: str) -> Client:
        async with httpx.AsyncClient(base_url=server.http) as http:
            response = await http.post(
                "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
        return cls(server, "agent", response.json()["token"])

    async def connect(
        self, *, resume: dict[str, int] | None = None, origin: str | None = None, hello: bool = True
    ) -> dict[str, Any]:
        headers = {"Origin": origin} if origin else None
        self.ws = await websockets.connect(
            f"{self.server.ws}/ws/v1/{self.role}",
            additional_headers=headers,
            max_size=None,
            compression=None,
        )
        self._unread.clear()
        if not hello:
            return {}
        frame: dict[str, Any] = {"type": "hello", "token": self.token}
        if resume:
            frame["resume"] = resume
        await self.send(frame)
        self.welcome = await self.next("welcome")
        return self.welcome

    async def send(self, frame: dict[str, Any] | str) -> None:
        assert self.ws is not None
        await self.ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())

    async def message(
        self,
        text: str,
        *,
        conversation_id: str | None = None,
        client_msg_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Send a message and return its ack."""
        cmid = client_msg_id or uuid.uuid4().hex
        frame: dict[str, Any] = {"type": "message", "client_msg_id": cmid, "text": text, **extra}
        if conversation_id:
            frame["conversation_id"] = conversation_id
        await self.send(frame)
        return await self.next("ack", client_msg_id=cmid)

    async def _read(self, timeout: float) -> dict[str, Any]:
        """The next non-ping frame within `timeout` seconds (TimeoutError otherwise)."""
        assert self.ws is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                raw = await asyncio.wait_for(self.ws.recv(), max(0.0, deadline - loop.time()))
            except websockets.ConnectionClosed as exc:
                received = exc.rcvd
                raise Closed(
                    received.code if received else None, received.reason if received else ""
                ) from None
            frame: dict[str, Any] = orjson.loads(raw)
            if frame["type"] == "ping":
                if self.answer_pings:
                    await self.send({"type": "pong"})
                continue
            self.frames.append(frame)
            if frame["type"] == "event":
                log = self.events[frame["conversation_id"]]
                assert not log or frame["seq"] > log[-1]["seq"], (
                    f"{self.role} got seq {frame['seq']} after {log[-1]['seq']}"
                )
                log.append(frame)
            return frame

    async def next(self, type_: str, timeout: float = RECV_TIMEOUT, **match: Any) -> dict[str, Any]:
        """The next frame of a type (and matching fields); other frames stay readable."""
        for i, frame in enumerate(self._unread):
            if _matches(frame, type_, match):
                return self._unread.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(
                    f"{self.role}: no {type_} {match} within {timeout}s; got {self._unread[-5:]}"
                )
            try:
                frame = await self._read(remaining)
            except TimeoutError:
                continue
            if _matches(frame, type_, match):
                return frame
            self._unread.append(frame)

    async def event(self, kind: str, timeout: float = RECV_TIMEOUT, **match: Any) -> dict[str, Any]:
        return await self.next("event", timeout, kind=kind, **match)

    async def closed(self, timeout: float = RECV_TIMEOUT) -> Closed:
        """Read until the server closes the socket; return the close code and reason."""
        try:
            while True:
                await self._read(timeout)
        except Closed as closed:
            return closed

    async def quiet(self, seconds: float = 0.5) -> list[dict[str, Any]]:
        """Frames that arrive within `seconds` (to prove nothing more comes)."""
        got = list(self._unread)
        self._unread.clear()
        with contextlib.suppress(TimeoutError):
            loop = asyncio.get_running_loop()
            deadline = loop.time() + seconds
            while (remaining := deadline - loop.time()) > 0:
                got.append(await self._read(remaining))
        return got

    def seqs(self, conversation_id: str) -> list[int]:
        return [e["seq"] for e in self.events[conversation_id]]

    async def drop(self) -> None:
        """Vanish like a lost network: no close handshake from our side."""
        assert self.ws is not None
        self.ws.transport.abort()
        self.ws = None

    def discard(self) -> None:
        """Release the socket without a handshake (the server is gone): no transport leaks."""
        if self.ws is not None:
            self.ws.transport.abort()
            self.ws = None

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
            self.ws = None


def _matches(frame: dict[str, Any], type_: str, match: dict[str, Any]) -> bool:
    return frame.get("type") == type_ and all(frame.get(k) == v for k, v in match.items())
