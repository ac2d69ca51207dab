"""Quality review errors (docs/api.md#quality-reviews). Must not import FastAPI or Starlette."""

from __future__ import annotations

from collections.abc import Sequence

from app.errors import Conflict, WarmlineError
from app.quality.scoring import Problem


class InvalidReview(WarmlineError):
    """A review or rubric refused field by field: rendered as a request validation failure
    (422 `invalid_request` with `errors`), so a client reads it as any malformed body."""

    code = "invalid_request"
    status_code = 422

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(
            "The request is not valid.",
            errors=[
                {"field": ".".join(str(part) for part in where), "problem": what}
                for where, what in problems
            ],
        )


class ConversationNotClosed(Conflict):
    code = "not_closed"


class AlreadyReviewed(Conflict):
    code = "already_reviewed"
