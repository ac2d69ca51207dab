"""Skills learn to recognise themselves: keywords and phrases for first messages, and page
path patterns. Existing skills get empty lists.

Revision ID: 91476e66712a
Revises: d7233aa2e4e8
Create Date: 2026-11-23 16:48:04.860552
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '91476e66712a'
down_revision: str | None = 'd7233aa2e4e8'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.add_column(sa.Column('keywords', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('page_patterns', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'[]'"), nullable=False))



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.drop_column('page_patterns')
        batch_op.drop_column('keywords')

