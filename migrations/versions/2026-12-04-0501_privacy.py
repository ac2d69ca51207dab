"""Privacy: visitor erasure and the retention policy (docs/api.md).

Revision ID: d4b2f6a81c32
Revises: c3a1e5f70b21
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = 'd4b2f6a81c32'
down_revision: str | None = 'c3a1e5f70b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
