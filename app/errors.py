"""The one base class for errors a client may see.

`api/errors.py` renders a `WarmlineError` as an RFC 9457 problem detail; `realtime/protocol.py`
renders it as an `error` frame, and closes the socket only when `close_code` is set. Every
`code` is listed in docs/protocol.md#errors. Must not import FastAPI or Starlette.
"""

from __future__ import annotations

from typing import Any, ClassVar


class WarmlineError(Exception):
    """An error a client may see, with a stable machine-readable `code`."""

    code: ClassVar[str] = "bad_request"
    status_code: ClassVar[int] = 400
    close_code: ClassVar[int | None] = None  # None: report the error and keep the socket open

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(WarmlineError):
    code = "not_found"
    status_code = 404


class Unauthorized(WarmlineError):
    code = "unauthorized"
    status_code = 401
    close_code = 4001


class Forbidden(WarmlineError):
    code = "forbidden"
    status_code = 403


class Conflict(WarmlineError):
    code = "conflict"
    status_code = 409


class ServiceUnavailable(WarmlineError):
    """A dependency (database, bus) does not answer; the request may be retried."""

    code = "unavailable"
    status_code = 503


class InvalidData(WarmlineError):
    """A value the store cannot hold (caught at the edges where possible; this is the net)."""

    code = "invalid_data"
    status_code = 422
