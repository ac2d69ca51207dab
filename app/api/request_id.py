"""A request id on every HTTP response and in every log line written while serving it.

`RequestId` is pure ASGI (a `BaseHTTPMiddleware` would buffer nothing but would run the app in
another task, and streaming responses such as the NDJSON export must keep streaming untouched).
It wraps the whole application, outside Starlette's error middleware, so 500 responses carry the
id too. A well-formed incoming `X-Request-Id` (what a proxy or the caller chose) is kept; anything
else is replaced by a new one. WebSocket connections get a `connection_id` from
`realtime.connection` instead. Reference: docs/operations.md#logging.
"""

from __future__ import annotations

import re
import uuid
from typing import Final

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER: Final = "x-request-id"
_HEADER_BYTES: Final = HEADER.encode()
# Long enough for a UUID, a W3C trace id or a proxy's own id with a prefix; only characters
# that are safe in a header, a log line and a shell (no spaces, quotes or control characters).
MAX_LENGTH: Final = 128
_WELL_FORMED: Final = re.compile(rf"[A-Za-z0-9._:+/=@-]{{1,{MAX_LENGTH}}}")


def accepted(value: str | None) -> str | None:
    """`value` if it may be used as a request id as it is, else None."""
    if value is not None and _WELL_FORMED.fullmatch(value):
        return value
    return None


def new_id() -> str:
    return uuid.uuid4().hex


class RequestId:
    """ASGI middleware: choose the request's id, bind it for logging, add it to the response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope["headers"]:
            if name == _HEADER_BYTES:
                incoming = value.decode("latin-1")
                break
        request_id = accepted(incoming) or new_id()
        scope.setdefault("state", {})["request_id"] = request_id
        encoded = request_id.encode()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k != _HEADER_BYTES]
                headers.append((_HEADER_BYTES, encoded))
                message["headers"] = headers
            await send(message)

        # uvicorn writes its access line while the response starts, inside this block.
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            await self.app(scope, receive, send_with_id)
