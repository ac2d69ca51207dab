"""Quality reviews: the versioned rubric, supervisors' reviews of closed conversations, and the
report over them (docs/metrics.md#quality-reviews, docs/api.md#quality-reviews).

Owns the writes of `quality_rubrics` and `quality_reviews`. The rules are the pure
`quality.scoring` (what a rubric and a review may hold, the overall score) and `quality.tally`
(the report's sums); this module loads, checks with them, and stores. Who may call what is the
API's business, except what only the data can tell: a review's agent must have held the chat,
and only its author (or an admin) changes it. Flushes, never commits. Must not import FastAPI,
Starlette or the bus.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.errors import ConversationNotFound
from app.errors import Conflict, Forbidden, NotFound
from app.quality import scoring
from app.quality.errors import AlreadyReviewed, ConversationNotClosed, InvalidReview
from app.quality.scoring import Criterion, Score
from app.quality.tally import Line, QualityGroupBy, Reviewed, tally
from app.store.models import (
    Agent,
    Conversation,
    ConversationEvent,
    ConversationState,
    QualityReview,
    QualityRubric,
    Role,
)

# Who held a conversation: the agents its log shows joining it (assignments, transfers, takes).
AGENT_JOINED = "agent.joined"


class ReviewNotFound(NotFound):
    code = "review_not_found"


class RubricChanged(Conflict):
    code = "rubric_changed"


@dataclass(frozen=True, slots=True)
class Rubric:
    version: int
    criteria: tuple[Criterion, ...]
    created_at: datetime


def _rubric(row: QualityRubric) -> Rubric:
    return Rubric(
        version=row.version,
        criteria=tuple(scoring.from_json(c) for c in row.criteria),
        created_at=row.created_at,
    )


async def current_rubric(session: AsyncSession, *, now: datetime) -> Rubric:
    """The rubric in force (the highest version). A database without any (made without the
    migration's seed, or emptied by hand) gets version 1, the default criteria, stored."""
    row = await session.scalar(
        select(QualityRubric).order_by(QualityRubric.version.desc()).limit(1)
    )
    if row is None:
        row = QualityRubric(
            version=1,
            criteria=[scoring.as_json(c) for c in scoring.DEFAULT_CRITERIA],
            created_by=None,
            created_at=now,
        )
        try:
            async with session.begin_nested():  # a savepoint: losing the race keeps the rest
                session.add(row)
        except IntegrityError:
            # Another request stored version 1 at the same moment: read theirs.
            row = await session.scalar(
                select(QualityRubric).order_by(QualityRubric.version.desc()).limit(1)
            )
            assert row is not None  # noqa: S101 - the conflicting row committed
    return _rubric(row)


async def rubric_versions(session: AsyncSession, versions: set[int]) -> dict[int, Rubric]:
    if not versions:
        return {}
    rows = await session.scalars(select(QualityRubric).where(QualityRubric.version.in_(versions)))
    return {row.version: _rubric(row) for row in rows}


async def set_rubric(
    session: AsyncSession, *, criteria: Sequence[Criterion], by: uuid.UUID | None, now: datetime
) -> Rubric:
    """Put `criteria` in force as a new version; the same criteria as in force: nothing changes
    (the version stays). Reviews already made keep the version they were scored against.

    Raises:
        InvalidReview: the rubric breaks a rule of `scoring.check_rubric()`.
    """
    problems = scoring.check_rubric(criteria)
    if problems:
        raise InvalidReview(problems)
    current = await current_rubric(session, now=now)
    if current.criteria == tuple(criteria):
        return current
    # Two admins saving at once: the second insert of the same version fails on the primary key
    # and its request answers 409, rather than one silently replacing the other's rubric.
    row = QualityRubric(
        version=current.version + 1,
        criteria=[scoring.as_json(c) for c in criteria],
        created_by=by,
        created_at=now,
    )
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise RubricChanged("Another admin changed the rubric just now; reload it.") from exc
    return _rubric(row)


async def holders(session: AsyncSession, conversation: Conversation) -> set[uuid.UUID]:
    """The agents who held the conversation at some time: those its log shows joining it, and
    the one it was left with."""
    joined = await session.scalars(
        select(ConversationEvent.sender_id)
        .where(
            ConversationEvent.conversation_id == conversation.id,
            ConversationEvent.kind == AGENT_JOINED,
            ConversationEvent.sender_id.is_not(None),
        )
        .distinct()
    )
    found = {agent_id for agent_id in joined if agent_id is not None}
    if conversation.agent_id is not None:
        found.add(conversation.agent_id)
    return found


async def _closed(session: AsyncSession, conversation_id: uuid.UUID) -> Conversation:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    if conversation.state is not ConversationState.CLOSED or conversation.closed_at is None:
        raise ConversationNotClosed(
            "Only closed conversations are reviewed; this one is still open.",
            state=conversation.state.value,
        )
    return conversation


def _scored(
    rubric: Rubric, scores: Sequence[Score]
) -> tuple[list[dict[str, object]], float | None]:
    problems = scoring.check_scores(rubric.criteria, scores)
    if problems:
        raise InvalidReview(problems)
    order = {c.key: i for i, c in enumerate(rubric.criteria)}
    stored: list[dict[str, object]] = [
        {"key": s.key, "value": s.value, "comment": s.comment}
        for s in sorted(scores, key=lambda s: order[s.key])
    ]
    return stored, scoring.overall(rubric.criteria, scores)


async def create_review(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID,
    reviewer: Agent,
    agent_id: uuid.UUID | None,
    scores: Sequence[Score],
    comment: str | None,
    now: datetime,
) -> QualityReview:
    """Review a closed conversation against the rubric in force.

    `agent_id` None: the agent it was left with (who closed it or last held it).

    Raises:
        ConversationNotFound: no such conversation.
        ConversationNotClosed: it is not closed yet.
        InvalidReview: the agent never held it (or nobody did), or the scores break a rule.
        AlreadyReviewed: this reviewer reviewed it already (change that review instead).
    """
    conversation = await _closed(session, conversation_id)
    held = await holders(session, conversation)
    if agent_id is None:
        if conversation.agent_id is None:
            raise InvalidReview(
                [(("body", "agent_id"), "no agent held this conversation: nobody to review")]
            )
        agent_id = conversation.agent_id
    elif agent_id not in held:
        raise InvalidReview([(("body", "agent_id"), "this agent never held the conversation")])
    rubric = await current_rubric(session, now=now)
    stored, score = _scored(rubric, scores)
    existing = await session.scalar(
        select(QualityReview.id).where(
            QualityReview.conversation_id == conversation.id,
            QualityReview.reviewer_id == reviewer.id,
        )
    )
    if existing is not None:
        raise AlreadyReviewed(
            "You reviewed this conversation already; change that review instead.",
            review_id=existing,
        )
    assert conversation.closed_at is not None  # noqa: S101 - _closed() checked
    row = QualityReview(
        conversation_id=conversation.id,
        agent_id=agent_id,
        reviewer_id=reviewer.id,
        rubric_version=rubric.version,
        scores=stored,
        comment=comment,
        score=score,
        conversation_closed_at=conversation.closed_at,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    try:
        # The same reviewer twice at once: the unique (conversation, reviewer) refuses the second.
        await session.flush()
    except IntegrityError as exc:
        raise AlreadyReviewed(
            "You reviewed this conversation already; change that review instead."
        ) from exc
    return row


async def get_review_or_raise(session: AsyncSession, review_id: int) -> QualityReview:
    row = await session.get(QualityReview, review_id)
    if row is None:
        raise ReviewNotFound("No such review.", review_id=review_id)
    return row


def _may_change(review: QualityReview, by: Agent) -> None:
    if review.reviewer_id != by.id and by.role is not Role.ADMIN:
        raise Forbidden("Only the review's author or an admin may change it.")


async def update_review(
    session: AsyncSession,
    *,
    review_id: int,
    by: Agent,
    scores: Sequence[Score],
    comment: str | None,
    now: datetime,
) -> QualityReview:
    """Replace a review's scores and comment, against the rubric version it was made with (so a
    rubric edited since cannot change what it measures). The agent and the reviewer stay.

    Raises:
        ReviewNotFound, Forbidden (neither its author nor an admin), InvalidReview.
    """
    review = await get_review_or_raise(session, review_id)
    _may_change(review, by)
    rubric = (await rubric_versions(session, {review.rubric_version}))[review.rubric_version]
    review.scores, review.score = _scored(rubric, scores)
    review.comment = comment
    review.updated_at = now
    await session.flush()
    return review


async def delete_review(session: AsyncSession, *, review_id: int, by: Agent) -> None:
    review = await get_review_or_raise(session, review_id)
    _may_change(review, by)
    await session.execute(delete(QualityReview).where(QualityReview.id == review.id))


async def reviews(
    session: AsyncSession,
    *,
    conversation_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[QualityReview]:
    """Reviews, newest conversation first, filtered by conversation, by agent reviewed, and by
    the conversation's close in `[since, until)`."""
    query = select(QualityReview)
    if conversation_id is not None:
        query = query.where(QualityReview.conversation_id == conversation_id)
    if agent_id is not None:
        query = query.where(QualityReview.agent_id == agent_id)
    if since is not None:
        query = query.where(QualityReview.conversation_closed_at >= since)
    if until is not None:
        query = query.where(QualityReview.conversation_closed_at < until)
    query = query.order_by(
        QualityReview.conversation_closed_at.desc(), QualityReview.id.desc()
    ).limit(limit)
    return list(await session.scalars(query))


async def agent_names(session: AsyncSession, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    found = await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
    return {row.id: row.name for row in found}


async def conversation_exists(session: AsyncSession, conversation_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(func.count()).select_from(Conversation).where(Conversation.id == conversation_id)
    )
    return bool(found)


@dataclass(frozen=True, slots=True)
class Report:
    rows: dict[str | None, Line]
    total: Line
    # Criterion key -> its label in the latest rubric version it appears in.
    labels: dict[str, str]
    names: dict[str, str]


async def report(
    session: AsyncSession,
    *,
    since: datetime,
    until: datetime,
    group_by: QualityGroupBy,
    zone: str,
) -> Report:
    """The reviews of conversations closed in `[since, until)`, added up by `group_by`."""
    rows = list(
        await session.execute(
            select(
                QualityReview.agent_id,
                QualityReview.reviewer_id,
                QualityReview.conversation_closed_at,
                QualityReview.score,
                QualityReview.scores,
                QualityReview.rubric_version,
            ).where(
                QualityReview.conversation_closed_at >= since,
                QualityReview.conversation_closed_at < until,
            )
        )
    )
    versions = await rubric_versions(session, {row.rubric_version for row in rows})
    reviewed: list[Reviewed] = []
    for row in rows:
        criteria = versions[row.rubric_version].criteria
        scores = [Score(key=str(s["key"]), value=s.get("value")) for s in row.scores]
        reviewed.append(
            Reviewed(
                agent_id=row.agent_id,
                reviewer_id=row.reviewer_id,
                closed_at=row.conversation_closed_at,
                overall=row.score,
                fractions=scoring.fractions(criteria, scores),
                not_applicable=frozenset(s.key for s in scores if s.value is None),
            )
        )
    # The labels of the criteria reviewed and of the rubric in force (its criteria are the
    # columns a reader expects), each from the latest version that has it.
    latest = await session.scalar(
        select(QualityRubric).order_by(QualityRubric.version.desc()).limit(1)
    )
    if latest is not None:
        versions.setdefault(latest.version, _rubric(latest))
    labels: dict[str, str] = {}
    for version in sorted(versions):
        labels.update({c.key: c.label for c in versions[version].criteria})
    groups = tally(reviewed, group_by, zone)
    names: dict[str, str] = {}
    if group_by in (QualityGroupBy.AGENT, QualityGroupBy.REVIEWER):
        ids = [uuid.UUID(key) for key in groups if key is not None]
        if ids:
            found = await session.execute(select(Agent.id, Agent.name).where(Agent.id.in_(ids)))
            names = {str(agent_id): name for agent_id, name in found}
    elif group_by is QualityGroupBy.CRITERION:
        names = {key: labels[key] for key in groups if key is not None and key in labels}
    total = tally(reviewed, None, zone).get(None, Line(0, 0, None, {}))
    return Report(rows=groups, total=total, labels=labels, names=names)
