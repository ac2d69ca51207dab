"""sla breach: when a conversation's first reply passed its target

`conversations.sla_breached_at`, set once by the live breach detector (chat.breaches) in the
transaction of the conversation's `sla.breached` event; a partial index holding only the open
conversations not yet marked (the detector's scan), and two partial indexes on the event log for
its per-conversation lookups (the first agent reply; an arrival while offline).

No backfill: conversations still open when this runs are judged by the detector's first round
(it measures from their first message), and closed ones keep their verdict in
`conversation_metrics.sla_met` (docs/metrics.md#sla-breaches).

Revision ID: c9a3e4f5d6b7
Revises: b8f2d3e4c5a6
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'c9a3e4f5d6b7'
down_revision: str | None = 'b8f2d3e4c5a6'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN_UNMARKED = "sla_breached_at IS NULL AND state IN ('queued', 'assigned')"
_AGENT_REPLY = "kind = 'message' AND sender_type = 'agent'"
_OFFLINE = "kind = 'conversation.offline'"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('sla_breached_at', sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            'ix_conversations_sla_watch',
            ['created_at'],
            unique=False,
            postgresql_where=sa.text(_OPEN_UNMARKED),
            sqlite_where=sa.text(_OPEN_UNMARKED),
        )
    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_conversation_events_agent_reply',
            ['conversation_id', 'created_at'],
            unique=False,
            postgresql_where=sa.text(_AGENT_REPLY),
            sqlite_where=sa.text(_AGENT_REPLY),
        )
        batch_op.create_index(
            'ix_conversation_events_offline',
            ['conversation_id'],
            unique=False,
            postgresql_where=sa.text(_OFFLINE),
            sqlite_where=sa.text(_OFFLINE),
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_events_offline')
        batch_op.drop_index('ix_conversation_events_agent_reply')
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_sla_watch')
        batch_op.drop_column('sla_breached_at')
