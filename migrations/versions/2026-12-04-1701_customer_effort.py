"""customer effort: the visitor's 7-point effort answer and its report figures

Placeholder in the chain, filled in by the change that owns it.

Revision ID: b8f2d3e4c5a6
Revises: a7e1c2d3b4f5
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'b8f2d3e4c5a6'
down_revision: str | None = 'a7e1c2d3b4f5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
