"""Routing policy, escalation steps, business hours, offline conversations, watchdog,
verified visitor identity and priority.

Adds the single-row `routing_settings` (with its defaults row), per-skill escalation steps and
their related skills, `skills.business_hours`, and on conversations: the step in force, when
the next one is due, the offline state and reason, and the unanswered-message watchdog.

Revision ID: f8862ef8439d
Revises: 91476e66712a
Create Date: 2026-11-23 18:14:51.729941
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'f8862ef8439d'
down_revision: str | None = '91476e66712a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    op.create_table('routing_settings',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('offer_mode', sa.Enum('single', 'broadcast', name='offer_mode', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('broadcast_size', sa.Integer(), nullable=False),
    sa.Column('preferred_agent_wait_seconds', sa.Integer(), nullable=False),
    sa.Column('unanswered_alert_seconds', sa.Integer(), nullable=True),
    sa.Column('unanswered_supervisor_seconds', sa.Integer(), nullable=True),
    sa.Column('unanswered_requeue_seconds', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('broadcast_size BETWEEN 1 AND 20', name=op.f('ck_routing_settings_broadcast_size_range')),
    sa.CheckConstraint('id = 1', name=op.f('ck_routing_settings_single_row')),
    sa.CheckConstraint('preferred_agent_wait_seconds >= 0', name=op.f('ck_routing_settings_preferred_wait_positive')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_settings'))
    )
    op.create_table('escalation_steps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=True),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('after_seconds', sa.Integer(), nullable=False),
    sa.Column('min_proficiency', sa.Integer(), nullable=False),
    sa.Column('include_supervisors', sa.Boolean(), nullable=False),
    sa.CheckConstraint('after_seconds >= 0', name=op.f('ck_escalation_steps_after_positive')),
    sa.CheckConstraint('min_proficiency BETWEEN 1 AND 5', name=op.f('ck_escalation_steps_min_proficiency_range')),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_escalation_steps_skill_id_skills'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_escalation_steps'))
    )
    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_steps_skill_id'), ['skill_id'], unique=False)

    op.create_table('escalation_step_skills',
    sa.Column('step_id', sa.Integer(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_escalation_step_skills_skill_id_skills'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['step_id'], ['escalation_steps.id'], name=op.f('fk_escalation_step_skills_step_id_escalation_steps'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('step_id', 'skill_id', name=op.f('pk_escalation_step_skills'))
    )
    with op.batch_alter_table('escalation_step_skills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escalation_step_skills_skill_id'), ['skill_id'], unique=False)

    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('step_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('next_step_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('offline_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('awaiting_reply_since', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('watchdog_level', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.create_index('ix_conversations_awaiting_reply', ['state', 'awaiting_reply_since'], unique=False)
        batch_op.create_index('ix_conversations_next_step', ['state', 'next_step_at'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_conversations_step_id_escalation_steps'), 'escalation_steps', ['step_id'], ['id'], ondelete='SET NULL')
        batch_op.drop_constraint(op.f('ck_conversations_conversation_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_conversations_conversation_state'), "state IN ('queued', 'assigned', 'offline', 'closed')")

    settings = sa.table(
        'routing_settings',
        sa.column('id', sa.Integer()),
        sa.column('offer_mode', sa.String()),
        sa.column('broadcast_size', sa.Integer()),
        sa.column('preferred_agent_wait_seconds', sa.Integer()),
        sa.column('unanswered_alert_seconds', sa.Integer()),
        sa.column('unanswered_supervisor_seconds', sa.Integer()),
        sa.column('unanswered_requeue_seconds', sa.Integer()),
        sa.column('updated_at', sa.DateTime(timezone=True)),
    )
    op.bulk_insert(settings, [{
        'id': 1, 'offer_mode': 'single', 'broadcast_size': 3, 'preferred_agent_wait_seconds': 30,
        'unanswered_alert_seconds': 120, 'unanswered_supervisor_seconds': 300,
        'unanswered_requeue_seconds': None, 'updated_at': datetime.now(UTC),
    }])

    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_id', sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('priority', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.create_index(batch_op.f('ix_visitors_external_id'), ['external_id'], unique=False)

    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.add_column(sa.Column('business_hours', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True))



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('skills', schema=None) as batch_op:
        batch_op.drop_column('business_hours')

    with op.batch_alter_table('visitors', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_visitors_external_id'))
        batch_op.drop_column('priority')
        batch_op.drop_column('verified_at')
        batch_op.drop_column('external_id')

    # An offline conversation is an open one waiting for an agent: it goes back to the queue.
    op.execute("UPDATE conversations SET state = 'queued' WHERE state = 'offline'")
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_conversations_conversation_state'), type_='check')
        batch_op.create_check_constraint(op.f('ck_conversations_conversation_state'), "state IN ('queued', 'assigned', 'closed')")
        batch_op.drop_constraint(batch_op.f('fk_conversations_step_id_escalation_steps'), type_='foreignkey')
        batch_op.drop_index('ix_conversations_next_step')
        batch_op.drop_index('ix_conversations_awaiting_reply')
        batch_op.drop_column('watchdog_level')
        batch_op.drop_column('awaiting_reply_since')
        batch_op.drop_column('offline_reason')
        batch_op.drop_column('next_step_at')
        batch_op.drop_column('step_id')

    with op.batch_alter_table('escalation_step_skills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_step_skills_skill_id'))

    op.drop_table('escalation_step_skills')
    with op.batch_alter_table('escalation_steps', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escalation_steps_skill_id'))

    op.drop_table('escalation_steps')
    op.drop_table('routing_settings')
