"""A real HTTP server in the test process that receives webhooks (not a mock of the client).

Plain asyncio on 127.0.0.1, port chosen by the OS: it parses each HTTP/1.1 request (headers,
`Content-Length` body), records it, and answers with the next status of `plan` (then
`default`). It checks nothing itself: tests verify signatures with the documented algorithm.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    status: int  # what the receiver answered

    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = orjson.loads(self.body)
        return data


@dataclass
class Receiver:
    plan: list[int] = field(default_factory=list)  # statuses to answer first, in order
    default: int = 200
    received: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    async def __aenter__(self) -> Receiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def ok(self) -> list[Received]:
        """Requests answered 2xx."""
        return [r for r in self.received if 200 <= r.status < 300]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _version = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                status = self.plan.pop(0) if self.plan else self.default
                self.received.append(Received(method, path, headers, body, status))
                answer = b"ok" if status < 300 else b"nope"
                writer.write(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(answer)}\r\n"
                    "Content-Type: text/plain\r\n\r\n".encode()
                    + answer
                )
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()


async def wait_for(
    check: Callable[[], bool | Awaitable[bool]], *, timeout: float = 20, what: str = ""
) -> None:
    """Poll `check` every 0.05 s until it holds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        assert loop.time() < deadline, f"timed out waiting for {what or check}"
        await asyncio.sleep(0.05)
