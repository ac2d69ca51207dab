"""conversation_metrics: each closed conversation's figures for reports, backfilled from the logs

One row per closed conversation (docs/metrics.md#per-conversation), written from now on in the
transaction of each close. The upgrade measures every conversation already closed from its event
log, in batches of BATCH, with the same pure `app.reports.measures.measure()` the application
uses (a pure module with no I/O: importing it here cannot reach the database or the settings),
then stores each visitor's next contact on their earlier conversations. The downgrade drops the
table: its rows are derived data, rebuilt by the next upgrade.

Revision ID: f6d4b8c03e54
Revises: e5c3a7b92d43
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from app.reports.measures import Event, arrival_skill, measure

revision: str = 'f6d4b8c03e54'
down_revision: str | None = 'e5c3a7b92d43'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500
# What chats without a skill (or of a deleted skill) are measured against: app/routing/sla.py.
DEFAULT_TARGET_SECONDS = 60

_conversations = sa.table(
    'conversations', sa.column('id', sa.Uuid()), sa.column('state', sa.String())
)
_events = sa.table(
    'conversation_events',
    sa.column('conversation_id', sa.Uuid()),
    sa.column('seq', sa.BigInteger()),
    sa.column('kind', sa.String()),
    sa.column('sender_type', sa.String()),
    sa.column('sender_id', sa.Uuid()),
    sa.column('visibility', sa.String()),
    sa.column('body', sa.JSON()),
    sa.column('created_at', sa.DateTime(timezone=True)),
)
_skills = sa.table(
    'skills', sa.column('id', sa.Integer()), sa.column('sla_first_response_seconds', sa.Integer())
)
_metrics = sa.table(
    'conversation_metrics',
    *(
        sa.column(name, kind)
        for name, kind in (
            ('conversation_id', sa.Uuid()),
            ('opened_at', sa.DateTime(timezone=True)),
            ('closed_at', sa.DateTime(timezone=True)),
            ('skill_id', sa.Integer()),
            ('first_agent_id', sa.Uuid()),
            ('last_agent_id', sa.Uuid()),
            ('closed_by', sa.String()),
            ('offline', sa.Boolean()),
            ('handled', sa.Boolean()),
            ('answered', sa.Boolean()),
            ('abandoned', sa.Boolean()),
            ('queue_wait_ms', sa.BigInteger()),
            ('first_response_ms', sa.BigInteger()),
            ('handle_ms', sa.BigInteger()),
            ('transfers', sa.Integer()),
            ('escalations', sa.Integer()),
            ('fcr_candidate', sa.Boolean()),
            ('sla_met', sa.Boolean()),
            ('sla_target_seconds', sa.Integer()),
            ('csat', sa.Integer()),
            ('tags', sa.JSON()),
            ('disposition', sa.String()),
        )
    ),
)

# The visitor's next conversation after each one closed (the FCR repeat contact).
NEXT_CONTACT = """
UPDATE conversation_metrics SET next_contact_at = (
    SELECT min(later.created_at)
    FROM conversations AS this
    JOIN conversations AS later
      ON later.visitor_id = this.visitor_id AND later.id <> this.id
     AND later.created_at >= this.closed_at
    WHERE this.id = conversation_metrics.conversation_id
)
"""


def _utc(value: datetime) -> datetime:
    # SQLite keeps no time zone: its values come back naive, and are UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _backfill(bind: sa.Connection) -> None:
    sqlite = bind.dialect.name == 'sqlite'

    def stored(value: datetime) -> datetime:
        # As app/store/models.py UTCDateTime writes it: UTC, naive on SQLite.
        return value.replace(tzinfo=None) if sqlite else value

    targets: dict[int, int] = {
        row.id: row.sla_first_response_seconds for row in bind.execute(sa.select(_skills))
    }
    last = None
    while True:
        query = sa.select(_conversations.c.id).where(_conversations.c.state == 'closed')
        if last is not None:
            query = query.where(_conversations.c.id > last)
        ids = list(bind.scalars(query.order_by(_conversations.c.id).limit(BATCH)))
        if not ids:
            return
        last = ids[-1]
        logs: dict[Any, list[Event]] = {cid: [] for cid in ids}
        for row in bind.execute(
            sa.select(_events)
            .where(_events.c.conversation_id.in_(ids))
            .order_by(_events.c.conversation_id, _events.c.seq)
        ):
            logs[row.conversation_id].append(
                Event(
                    seq=row.seq,
                    kind=row.kind,
                    sender_type=row.sender_type,
                    sender_id=row.sender_id,
                    visibility=row.visibility,
                    at=_utc(row.created_at),
                    body=row.body if isinstance(row.body, dict) else {},
                )
            )
        values = []
        for cid, events in logs.items():
            if not any(e.kind == 'conversation.closed' for e in events):
                continue  # a conversation closed without its close event: nothing to measure
            skill = arrival_skill(events)
            target = targets.get(skill, DEFAULT_TARGET_SECONDS) if skill is not None else DEFAULT_TARGET_SECONDS
            m = measure(events, sla_target_seconds=target)
            values.append(
                {
                    'conversation_id': cid,
                    'opened_at': stored(m.opened_at),
                    'closed_at': stored(m.closed_at),
                    'skill_id': m.skill_id,
                    'first_agent_id': m.first_agent_id,
                    'last_agent_id': m.last_agent_id,
                    'closed_by': m.closed_by,
                    'offline': m.offline,
                    'handled': m.handled,
                    'answered': m.answered,
                    'abandoned': m.abandoned,
                    'queue_wait_ms': m.queue_wait_ms,
                    'first_response_ms': m.first_response_ms,
                    'handle_ms': m.handle_ms,
                    'transfers': m.transfers,
                    'escalations': m.escalations,
                    'fcr_candidate': m.fcr_candidate,
                    'sla_met': m.sla_met,
                    'sla_target_seconds': target,
                    'csat': m.csat,
                    'tags': list(m.tags),
                    'disposition': m.disposition,
                }
            )
        if values:
            bind.execute(sa.insert(_metrics), values)


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    op.create_table('conversation_metrics',
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('skill_id', sa.Integer(), nullable=True),
    sa.Column('first_agent_id', sa.Uuid(), nullable=True),
    sa.Column('last_agent_id', sa.Uuid(), nullable=True),
    sa.Column('closed_by', sa.String(length=16), nullable=False),
    sa.Column('offline', sa.Boolean(), nullable=False),
    sa.Column('handled', sa.Boolean(), nullable=False),
    sa.Column('answered', sa.Boolean(), nullable=False),
    sa.Column('abandoned', sa.Boolean(), nullable=False),
    sa.Column('queue_wait_ms', sa.BigInteger(), nullable=True),
    sa.Column('first_response_ms', sa.BigInteger(), nullable=True),
    sa.Column('handle_ms', sa.BigInteger(), nullable=True),
    sa.Column('transfers', sa.Integer(), nullable=False),
    sa.Column('escalations', sa.Integer(), nullable=False),
    sa.Column('fcr_candidate', sa.Boolean(), nullable=False),
    sa.Column('next_contact_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sla_met', sa.Boolean(), nullable=True),
    sa.Column('sla_target_seconds', sa.Integer(), nullable=False),
    sa.Column('csat', sa.Integer(), nullable=True),
    sa.Column('tags', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), server_default=sa.text("'[]'"), nullable=False),
    sa.Column('disposition', sa.String(length=64), nullable=True),
    sa.CheckConstraint('csat IS NULL OR csat BETWEEN 1 AND 5', name=op.f('ck_conversation_metrics_csat_range')),
    sa.PrimaryKeyConstraint('conversation_id', name=op.f('pk_conversation_metrics'))
    )
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_metrics_agent_opened', ['last_agent_id', 'opened_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_opened', ['opened_at'], unique=False)
        batch_op.create_index('ix_conversation_metrics_skill_opened', ['skill_id', 'opened_at'], unique=False)
    _backfill(op.get_bind())
    op.execute(NEXT_CONTACT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('conversation_metrics', schema=None) as batch_op:
        batch_op.drop_index('ix_conversation_metrics_skill_opened')
        batch_op.drop_index('ix_conversation_metrics_opened')
        batch_op.drop_index('ix_conversation_metrics_agent_opened')
    op.drop_table('conversation_metrics')
