"""Initial schema: agents, skills, visitors, conversations and their event log, offers,
transfers and API keys.

Revision ID: d7233aa2e4e8
Revises:
Create Date: 2026-11-23 15:30:25.066542
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'd7233aa2e4e8'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    op.create_table('agents',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('role', sa.Enum('agent', 'supervisor', 'admin', name='role', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('status', sa.Enum('online', 'away', 'offline', name='agent_status', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('avatar_url', sa.String(length=512), nullable=True),
    sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('disconnected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('capacity >= 0 AND capacity <= 100', name=op.f('ck_agents_capacity_range')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('email', name=op.f('uq_agents_email'))
    )
    op.create_table('skills',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_skills')),
    sa.UniqueConstraint('slug', name=op.f('uq_skills_slug'))
    )
    op.create_table('visitors',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=True),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('attributes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_visitors')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_visitors_token_hash'))
    )
    op.create_table('agent_connections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('node', sa.String(length=128), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_connections_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_connections'))
    )
    with op.batch_alter_table('agent_connections', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_connections_agent_id'), ['agent_id'], unique=False)

    op.create_table('agent_sessions',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_sessions_agent_id_agents'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_agent_sessions_token_hash'))
    )
    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_sessions_agent_id'), ['agent_id'], unique=False)

    op.create_table('agent_skills',
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=False),
    sa.Column('proficiency', sa.Integer(), nullable=False),
    sa.CheckConstraint('proficiency BETWEEN 1 AND 5', name=op.f('ck_agent_skills_proficiency_range')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_skills_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_agent_skills_skill_id_skills'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'skill_id', name=op.f('pk_agent_skills'))
    )
    with op.batch_alter_table('agent_skills', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agent_skills_skill_id'), ['skill_id'], unique=False)

    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['agents.id'], name=op.f('fk_api_keys_created_by_agents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_hash', name=op.f('uq_api_keys_key_hash'))
    )
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_keys_prefix'), ['prefix'], unique=False)

    op.create_table('conversations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('visitor_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.Enum('queued', 'assigned', 'closed', name='conversation_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=True),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('assignment_epoch', sa.Integer(), nullable=False),
    sa.Column('page_url', sa.String(length=2048), nullable=True),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('visitor_read_seq', sa.BigInteger(), nullable=False),
    sa.Column('agent_read_seq', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('assigned_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by', sa.Enum('visitor', 'agent', 'system', name='closed_by', native_enum=False, create_constraint=True, length=16), nullable=True),
    sa.CheckConstraint("(state <> 'assigned' OR agent_id IS NOT NULL) AND (state <> 'queued' OR agent_id IS NULL)", name=op.f('ck_conversations_owner_matches_state')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_conversations_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['skill_id'], ['skills.id'], name=op.f('fk_conversations_skill_id_skills'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['visitor_id'], ['visitors.id'], name=op.f('fk_conversations_visitor_id_visitors'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_agent_state', ['agent_id', 'state'], unique=False)
        batch_op.create_index('ix_conversations_queue', ['state', 'priority', 'queued_at'], unique=False)
        batch_op.create_index('uq_conversations_visitor_open', ['visitor_id'], unique=True, postgresql_where=sa.text("state <> 'closed'"), sqlite_where=sa.text("state <> 'closed'"))

    op.create_table('conversation_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.String(length=48), nullable=False),
    sa.Column('sender_type', sa.Enum('visitor', 'agent', 'system', name='sender_type', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('sender_id', sa.Uuid(), nullable=True),
    sa.Column('sender_name', sa.String(length=128), nullable=True),
    sa.Column('client_msg_id', sa.String(length=64), nullable=True),
    sa.Column('visibility', sa.Enum('all', 'agents', name='visibility', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('body', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_conversation_events_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation_events')),
    sa.UniqueConstraint('conversation_id', 'sender_type', 'sender_id', 'client_msg_id', name=op.f('uq_conversation_events_conversation_id_sender_type_sender_id_client_msg_id')),
    sa.UniqueConstraint('conversation_id', 'seq', name=op.f('uq_conversation_events_conversation_id_seq'))
    )
    op.create_table('offers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'accepted', 'declined', 'expired', 'cancelled', name='offer_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_offers_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_offers_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_offers'))
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offers_agent_id'), ['agent_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index('ix_offers_state_expires', ['state', 'expires_at'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('warm', 'cold', 'escalation', name='transfer_kind', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('state', sa.Enum('pending', 'accepted', 'declined', 'expired', 'cancelled', name='transfer_state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('from_agent_id', sa.Uuid(), nullable=True),
    sa.Column('to_agent_id', sa.Uuid(), nullable=True),
    sa.Column('to_skill_id', sa.Integer(), nullable=True),
    sa.Column('to_supervisors', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_transfers_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['from_agent_id'], ['agents.id'], name=op.f('fk_transfers_from_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_agent_id'], ['agents.id'], name=op.f('fk_transfers_to_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['to_skill_id'], ['skills.id'], name=op.f('fk_transfers_to_skill_id_skills'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transfers'))
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_transfers_conversation_id'), ['conversation_id'], unique=False)



def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_transfers_conversation_id'))

    op.drop_table('transfers')
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index('ix_offers_state_expires')
        batch_op.drop_index(batch_op.f('ix_offers_conversation_id'))
        batch_op.drop_index(batch_op.f('ix_offers_agent_id'))

    op.drop_table('offers')
    op.drop_table('conversation_events')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('uq_conversations_visitor_open', postgresql_where=sa.text("state <> 'closed'"), sqlite_where=sa.text("state <> 'closed'"))
        batch_op.drop_index('ix_conversations_queue')
        batch_op.drop_index('ix_conversations_agent_state')

    op.drop_table('conversations')
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_keys_prefix'))

    op.drop_table('api_keys')
    with op.batch_alter_table('agent_skills', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_skills_skill_id'))

    op.drop_table('agent_skills')
    with op.batch_alter_table('agent_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_sessions_agent_id'))

    op.drop_table('agent_sessions')
    with op.batch_alter_table('agent_connections', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agent_connections_agent_id'))

    op.drop_table('agent_connections')
    op.drop_table('visitors')
    op.drop_table('skills')
    op.drop_table('agents')
