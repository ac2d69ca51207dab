"""quality reviews: a rubric and supervisors' scores of closed conversations

Placeholder in the chain, filled in by the change that owns it.

Revision ID: a7e1c2d3b4f5
Revises: f6d4b8c03e54
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'a7e1c2d3b4f5'
down_revision: str | None = 'f6d4b8c03e54'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
