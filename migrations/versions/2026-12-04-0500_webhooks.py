"""Webhooks: endpoints, the outbox written with each event, and the delivery log (docs/api.md).

Revision ID: c3a1e5f70b21
Revises: 7a4c2e91d0b3
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'c3a1e5f70b21'
down_revision: str | None = '7a4c2e91d0b3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
