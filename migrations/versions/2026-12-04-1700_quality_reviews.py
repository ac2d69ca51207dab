"""quality reviews: a rubric and supervisors' scores of closed conversations

Two tables (docs/metrics.md#quality-reviews): `quality_rubrics`, the versions of the rubric
(never edited, the highest in force), seeded here with version 1, the default criteria
as `app.quality.scoring.DEFAULT_CRITERIA` stood when this revision was written (greeting,
empathy, accuracy, resolution), copied below so that a later change of those defaults cannot
change what this revision seeds; and `quality_reviews`, one per reviewer and closed
conversation, each keeping the rubric version it was scored against. The downgrade drops both.

Revision ID: a7e1c2d3b4f5
Revises: f6d4b8c03e54
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = 'a7e1c2d3b4f5'
down_revision: str | None = 'f6d4b8c03e54'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# app.quality.scoring.DEFAULT_CRITERIA, as JSON, on 2026-12-04.
SEED_CRITERIA: list[dict[str, object]] = [
    {
        'key': 'greeting',
        'label': 'Greeting',
        'description': 'Greeted the customer by name and introduced themselves promptly.',
        'weight': 1,
        'scale': 'points',
        'points': 5,
        'allow_na': False,
    },
    {
        'key': 'empathy',
        'label': 'Empathy',
        'description': "Acknowledged the customer's situation and kept a warm, respectful tone.",
        'weight': 2,
        'scale': 'points',
        'points': 5,
        'allow_na': True,
    },
    {
        'key': 'accuracy',
        'label': 'Accuracy',
        'description': 'Gave correct, complete information and followed policy.',
        'weight': 3,
        'scale': 'points',
        'points': 5,
        'allow_na': True,
    },
    {
        'key': 'resolution',
        'label': 'Resolution',
        'description': "The customer's issue was resolved, or handed on with a clear next step.",
        'weight': 3,
        'scale': 'yes_no',
        'points': None,
        'allow_na': True,
    },
]

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")  # fail fast rather than queue behind live traffic
    rubrics = op.create_table('quality_rubrics',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('criteria', JSON, nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['agents.id'], name=op.f('fk_quality_rubrics_created_by_agents'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_quality_rubrics'))
    )
    op.create_table('quality_reviews',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('reviewer_id', sa.Uuid(), nullable=True),
    sa.Column('rubric_version', sa.Integer(), nullable=False),
    sa.Column('scores', JSON, nullable=False),
    sa.Column('comment', sa.Text(), nullable=True),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('conversation_closed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('score IS NULL OR score BETWEEN 0 AND 100', name=op.f('ck_quality_reviews_score_range')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_quality_reviews_agent_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_quality_reviews_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['agents.id'], name=op.f('fk_quality_reviews_reviewer_id_agents'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['rubric_version'], ['quality_rubrics.version'], name=op.f('fk_quality_reviews_rubric_version_quality_rubrics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quality_reviews')),
    sa.UniqueConstraint('conversation_id', 'reviewer_id', name=op.f('uq_quality_reviews_conversation_id_reviewer_id'))
    )
    with op.batch_alter_table('quality_reviews', schema=None) as batch_op:
        batch_op.create_index('ix_quality_reviews_agent', ['agent_id', 'conversation_closed_at'], unique=False)
        batch_op.create_index('ix_quality_reviews_closed', ['conversation_closed_at'], unique=False)
        batch_op.create_index('ix_quality_reviews_reviewer', ['reviewer_id', 'conversation_closed_at'], unique=False)
    now = datetime.now(UTC)
    if op.get_bind().dialect.name == 'sqlite':
        now = now.replace(tzinfo=None)  # as app/store/models.py UTCDateTime stores it there
    op.bulk_insert(
        rubrics,
        [{'version': 1, 'criteria': SEED_CRITERIA, 'created_by': None, 'created_at': now}],
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table('quality_reviews', schema=None) as batch_op:
        batch_op.drop_index('ix_quality_reviews_reviewer')
        batch_op.drop_index('ix_quality_reviews_closed')
        batch_op.drop_index('ix_quality_reviews_agent')
    op.drop_table('quality_reviews')
    op.drop_table('quality_rubrics')
