"""Attachments: files uploaded by visitors and agents, sent with messages.

One row per upload: who uploaded it, the conversation and message (seq) that carry it once sent,
its sanitised name, sniffed type, size, SHA-256 and where the file store keeps the bytes
(docs/api.md#attachments).

Revision ID: 1d2a978daf37
Revises: 5e2b8c0d7a11
Create Date: 2026-12-03 18:01:40
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '1d2a978daf37'
down_revision: str | None = '5e2b8c0d7a11'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    op.create_table('attachments',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('uploader_type', sa.Enum('visitor', 'agent', 'system', name='sender_type', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('uploader_id', sa.Uuid(), nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=True),
    sa.Column('seq', sa.BigInteger(), nullable=True),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('size >= 0', name=op.f('ck_attachments_size_positive')),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_attachments_conversation_id_conversations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments'))
    )
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.create_index('ix_attachments_conversation', ['conversation_id', 'seq'], unique=False)
        batch_op.create_index('ix_attachments_unsent', ['uploader_id', 'created_at'], unique=False, postgresql_where=sa.text('conversation_id IS NULL'), sqlite_where=sa.text('conversation_id IS NULL'))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_index('ix_attachments_unsent', postgresql_where=sa.text('conversation_id IS NULL'), sqlite_where=sa.text('conversation_id IS NULL'))
        batch_op.drop_index('ix_attachments_conversation')

    op.drop_table('attachments')
