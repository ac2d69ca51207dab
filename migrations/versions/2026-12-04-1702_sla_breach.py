"""sla breach: when a conversation's first reply passed its target

Placeholder in the chain, filled in by the change that owns it.

Revision ID: c9a3e4f5d6b7
Revises: b8f2d3e4c5a6
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'c9a3e4f5d6b7'
down_revision: str | None = 'b8f2d3e4c5a6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
