"""Conversation listing and message search for the REST API (docs/api.md).

Keyset pages of conversations by creation or close time (`created_at, id`, `closed_at, id`), a
visitor's conversations, who held a conversation (their `agent.joined` events), and, on
PostgreSQL only, a GIN index over the words of every event's `text` (messages, notes, whispers)
for `q=` (`to_tsvector('simple', …)`, queried with `websearch_to_tsquery`; app/chat/search.py
writes the same expression). SQLite searches with LIKE and has no such index. The GIN index is
not in app/store/models.py: it is an expression index of one dialect, which the models cannot
state for both; tests/integration/test_migrations.py ignores it when comparing.

Revision ID: e5c3a7b92d43
Revises: d4b2f6a81c32
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = 'e5c3a7b92d43'
down_revision: str | None = 'd4b2f6a81c32'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Must stay the expression of app/chat/search.py `TSVECTOR`, character for character in
# meaning: PostgreSQL uses an expression index only for the same expression.
SEARCH_INDEX = "ix_conversation_events_text_search"
SEARCH_EXPRESSION = "to_tsvector('simple'::regconfig, coalesce(body ->> 'text', ''))"


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.create_index('ix_conversations_created', ['created_at', 'id'], unique=False)
        batch_op.create_index('ix_conversations_closed', ['closed_at', 'id'], unique=False)
        batch_op.create_index('ix_conversations_visitor', ['visitor_id', 'created_at'], unique=False)
    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.create_index(
            'ix_conversation_events_joined',
            ['sender_id', 'conversation_id'],
            unique=False,
            postgresql_where=sa.text("kind = 'agent.joined'"),
            sqlite_where=sa.text("kind = 'agent.joined'"),
        )
    if postgres:
        op.execute(
            f"CREATE INDEX {SEARCH_INDEX} ON conversation_events USING gin ({SEARCH_EXPRESSION})"
        )


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
        op.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")
    with op.batch_alter_table('conversation_events', schema=None) as batch_op:
        batch_op.drop_index(
            'ix_conversation_events_joined',
            postgresql_where=sa.text("kind = 'agent.joined'"),
            sqlite_where=sa.text("kind = 'agent.joined'"),
        )
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index('ix_conversations_visitor')
        batch_op.drop_index('ix_conversations_closed')
        batch_op.drop_index('ix_conversations_created')
