"""Conversation listing and message search for the REST API (docs/api.md).

Revision ID: e5c3a7b92d43
Revises: d4b2f6a81c32
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'e5c3a7b92d43'
down_revision: str | None = 'd4b2f6a81c32'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
