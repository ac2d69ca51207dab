"""Warm and cold transfers, escalation to supervisors, the context summary's settings.

Adds to `transfers` who a pending one is offered to and who declined, its expiry, its reason,
who took it, the skill after it and the "repeated themselves" marks; to `conversations` the
escalation mark and the transfer count; to `routing_settings` the escalation phrases and rules
and the product catalogue (docs/handoff.md).

Revision ID: 3c1d7a9e2b40
Revises: f8862ef8439d
Create Date: 2026-12-03 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '3c1d7a9e2b40'
down_revision: str | None = 'f8862ef8439d'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
# The phrases a new deployment starts with (kept in step with app.handoff.rules.DEFAULT_PHRASES
# at the time of this migration; later changes to the defaults do not touch stored settings).
DEFAULT_PHRASES = [
    "speak to a manager", "talk to a manager", "speak to your manager", "talk to your manager",
    "speak to a supervisor", "talk to a supervisor", "speak to your supervisor",
    "talk to your supervisor", "your manager", "your supervisor", "escalate this",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('receivers', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('declined_by', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('accepted_by', sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column('skill_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('moved_seq', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('repeat_seq', sa.BigInteger(), nullable=True))
        batch_op.create_index('ix_transfers_state_expires', ['state', 'expires_at'], unique=False)
        batch_op.create_index('ix_transfers_state_decided', ['state', 'decided_at'], unique=False)
        batch_op.create_index('uq_transfers_one_pending', ['conversation_id'], unique=True, postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))
        batch_op.create_foreign_key(batch_op.f('fk_transfers_accepted_by_agents'), 'agents', ['accepted_by'], ['id'], ondelete='SET NULL')
        batch_op.create_foreign_key(batch_op.f('fk_transfers_skill_id_skills'), 'skills', ['skill_id'], ['id'], ondelete='SET NULL')

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('escalation_reason', sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column('transfer_count', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_conversations_escalated', ['escalated_at'], unique=False, postgresql_where=sa.text('escalated_at IS NOT NULL'), sqlite_where=sa.text('escalated_at IS NOT NULL'))

    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('escalation_phrases', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('escalate_wait_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('escalate_handle_seconds', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('escalate_after_transfers', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('escalate_sentiment_below', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('escalate_sentiment_window', sa.Integer(), server_default=sa.text('3'), nullable=False))
        batch_op.add_column(sa.Column('product_catalogue', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
    settings = sa.table(
        'routing_settings',
        sa.column('escalation_phrases', JSON_TYPE),
        sa.column('escalate_wait_seconds', sa.Integer()),
        sa.column('escalate_handle_seconds', sa.Integer()),
        sa.column('escalate_after_transfers', sa.Integer()),
        sa.column('escalate_sentiment_below', sa.Float()),
    )
    # The wait rule's clock starts now for chats already queued: switching the rules on must not
    # escalate every chat of a live deployment at the first tick.
    conversations = sa.table('conversations', sa.column('state', sa.String()), sa.column('waiting_since', sa.DateTime(timezone=True)))
    op.execute(conversations.update().where(conversations.c.state == 'queued').values(waiting_since=datetime.now(UTC)))
    op.execute(
        settings.update().values(
            escalation_phrases=DEFAULT_PHRASES,
            escalate_wait_seconds=600,
            escalate_handle_seconds=1800,
            escalate_after_transfers=2,
            escalate_sentiment_below=-0.5,
        )
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        for column in (
            'product_catalogue', 'escalate_sentiment_window', 'escalate_sentiment_below',
            'escalate_after_transfers', 'escalate_handle_seconds', 'escalate_wait_seconds',
            'escalation_phrases',
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_escalated')
        batch_op.drop_column('waiting_since')
        batch_op.drop_column('transfer_count')
        batch_op.drop_column('escalation_reason')
        batch_op.drop_column('escalated_at')
    # A pending transfer has no meaning without its receivers and expiry: it ends here.
    op.execute("UPDATE transfers SET state = 'cancelled' WHERE state = 'pending'")
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_transfers_skill_id_skills'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_transfers_accepted_by_agents'), type_='foreignkey')
        batch_op.drop_index('uq_transfers_one_pending')
        batch_op.drop_index('ix_transfers_state_decided')
        batch_op.drop_index('ix_transfers_state_expires')
        for column in (
            'repeat_seq', 'moved_seq', 'skill_id', 'accepted_by', 'reason', 'expires_at',
            'declined_by', 'receivers',
        ):
            batch_op.drop_column(column)
