"""Privacy errors a client may see (codes listed in docs/api.md#errors)."""

from __future__ import annotations

from app.errors import NotFound


class VisitorNotFound(NotFound):
    code = "visitor_not_found"
