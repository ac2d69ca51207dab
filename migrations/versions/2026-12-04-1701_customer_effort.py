"""customer effort: the visitor's 7-point effort answer and its report figures

The effort question (CES 2.0) is switched on in the routing settings row (`effort_survey`, off by
default); a chat that closes while it is on says so in its `conversation.closed`. The visitor's
answer is kept on the conversation (`effort`, 1-7, and when) like the CSAT rating, and in its
figures for reports (`conversation_metrics.effort_asked`, `effort`): docs/metrics.md. No backfill:
no conversation closed before this revision was asked the question, which the defaults say.

Revision ID: b8f2d3e4c5a6
Revises: a7e1c2d3b4f5
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'b8f2d3e4c5a6'
down_revision: str | None = 'a7e1c2d3b4f5'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('effort_survey', sa.Boolean(), server_default=sa.text('false'), nullable=False)
        )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('effort', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('effort_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_check_constraint(op.f('ck_conversations_effort_range'), 'effort IS NULL OR effort BETWEEN 1 AND 7')
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('effort_asked', sa.Boolean(), server_default=sa.text('false'), nullable=False)
        )
        batch_op.add_column(sa.Column('effort', sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f('ck_conversation_metrics_effort_range'), 'effort IS NULL OR effort BETWEEN 1 AND 7')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_conversation_metrics_effort_range'), type_='check')
        batch_op.drop_column('effort')
        batch_op.drop_column('effort_asked')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_conversations_effort_range'), type_='check')
        batch_op.drop_column('effort_at')
        batch_op.drop_column('effort')
    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        batch_op.drop_column('effort_survey')
