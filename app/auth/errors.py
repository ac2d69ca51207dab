"""Authentication errors, shared by HTTP and WebSocket."""

from __future__ import annotations

from app.errors import Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"


class InvalidToken(Unauthorized):
    code = "invalid_token"
