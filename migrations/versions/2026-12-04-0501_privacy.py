"""Privacy: visitor erasure and the retention policy (docs/api.md).

Adds when a visitor was erased and when a conversation was redacted, the audit record of
erasures, the retention policy's single row, and the record of retention runs.

Revision ID: d4b2f6a81c32
Revises: c3a1e5f70b21
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'd4b2f6a81c32'
down_revision: str | None = 'c3a1e5f70b21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _mode() -> sa.Enum:
    return sa.Enum(
        'purge', 'anonymise', name='retention_mode', native_enum=False, create_constraint=True,
        length=16,
    )


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redacted_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('erasures',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('visitor_id', sa.Uuid(), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('conversations', sa.Integer(), nullable=False),
    sa.Column('conversations_closed', sa.Integer(), nullable=False),
    sa.Column('events_redacted', sa.Integer(), nullable=False),
    sa.Column('attachments_deleted', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasures'))
    )
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasures_visitor_id'), ['visitor_id'], unique=False)
    op.create_table('retention_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('closed_after_days', sa.Integer(), nullable=True),
    sa.Column('mode', _mode(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=True),
    sa.CheckConstraint('closed_after_days IS NULL OR closed_after_days >= 1', name=op.f('ck_retention_settings_closed_after_positive')),
    sa.CheckConstraint('id = 1', name=op.f('ck_retention_settings_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_settings'))
    )
    op.create_table('retention_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('trigger', sa.String(length=16), nullable=False),
    sa.Column('node', sa.String(length=128), nullable=False),
    sa.Column('mode', _mode(), nullable=False),
    sa.Column('closed_after_days', sa.Integer(), nullable=False),
    sa.Column('cutoff', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('batches', sa.Integer(), nullable=False),
    sa.Column('conversations', sa.Integer(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('attachments', sa.Integer(), nullable=False),
    sa.Column('visitors', sa.Integer(), nullable=False),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_runs'))
    )
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.create_index('ix_retention_runs_started', ['started_at'], unique=False)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('retention_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_retention_runs_started')
    op.drop_table('retention_runs')
    op.drop_table('retention_settings')
    with op.batch_alter_table('erasures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasures_visitor_id'))
    op.drop_table('erasures')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('redacted_at')
    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
