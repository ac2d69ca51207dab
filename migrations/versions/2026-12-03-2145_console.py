"""The agent console and supervisor view: canned responses, tags and a disposition on
conversations, the dispositions on offer, supervisors who barged into a chat, and each skill's
first-response service level (docs/console.md).

Revision ID: 7a4c2e91d0b3
Revises: 1d2a978daf37
Create Date: 2026-12-03 21:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '7a4c2e91d0b3'
down_revision: str | None = '1d2a978daf37'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
# The outcomes a deployment starts with (as app.store.models.DEFAULT_DISPOSITIONS at the time
# of this migration; later changes to the defaults do not touch stored settings).
DEFAULT_DISPOSITIONS = [
    {"code": "resolved", "label": "Resolved"},
    {"code": "follow_up", "label": "Needs follow-up"},
    {"code": "not_resolved", "label": "Not resolved"},
    {"code": "no_response", "label": "Customer stopped responding"},
    {"code": "spam", "label": "Spam or abuse"},
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    op.create_table('canned_responses',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('shortcut', sa.String(length=32), nullable=False),
    sa.Column('title', sa.String(length=128), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['agents.id'], name=op.f('fk_canned_responses_created_by_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_canned_responses_skill_id_skills'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_canned_responses')),
    sa.UniqueConstraint('shortcut', name=op.f('uq_canned_responses_shortcut'))
    )
    op.create_table('conversation_participants',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_conversation_participants_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_participants_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_participants'))
    )
    with op.batch_alter_table('conversation_participants', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_participants_agent', ['agent_id', 'left_at'], unique=False)
        batch_op.create_index('uq_conversation_participants_present', ['conversation_id', 'agent_id'], unique=True, postgresql_where=sa.text('left_at IS NULL'), sqlite_where=sa.text('left_at IS NULL'))

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tags', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('disposition', sa.String(length=64), nullable=True))

    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispositions', JSON_TYPE, server_default=sa.text("'[]'"), nullable=False))
        batch_op.add_column(sa.Column('require_disposition', sa.Boolean(), server_default=sa.text('false'), nullable=False))

    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sla_first_response_seconds', sa.Integer(), server_default=sa.text('60'), nullable=False))
        batch_op.add_column(sa.Column('sla_target_percent', sa.Integer(), server_default=sa.text('80'), nullable=False))

    settings = sa.table('routing_settings', sa.column('dispositions', JSON_TYPE))
    op.execute(settings.update().values(dispositions=DEFAULT_DISPOSITIONS))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.drop_column('sla_target_percent')
        batch_op.drop_column('sla_first_response_seconds')
    with op.batch_alter_table('routing_settings', schema=None) as batch_op:
        batch_op.drop_column('require_disposition')
        batch_op.drop_column('dispositions')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_column('disposition')
        batch_op.drop_column('tags')
    with op.batch_alter_table('conversation_participants', schema=None) as batch_op:
        batch_op.drop_index('uq_conversation_participants_present', postgresql_where=sa.text('left_at IS NULL'), sqlite_where=sa.text('left_at IS NULL'))
        batch_op.drop_index('ix_conversation_participants_agent')
    op.drop_table('conversation_participants')
    op.drop_table('canned_responses')
