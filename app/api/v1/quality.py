"""Quality reviews over REST: the rubric, reviews of closed conversations, and the quality report
(docs/api.md#quality-reviews; the scores: docs/metrics.md#quality-reviews).

Who may do what:
- the rubric: read by anyone with `conversations:read` (agents see what they are scored on),
  replaced by admins (`admin`);
- a review is written, changed and deleted by a supervisor's or an admin's session (a review has
  a person as its author; API keys cannot write one), changed or deleted by its author or an admin;
- reviews and the report are read by supervisors, admins and keys with `reports:read`; an agent
  reads the reviews of themselves at `/quality/reviews/mine`.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.access import AdminAccess, ConversationsRead, Principal, Requires
from app.api.body import RequestBody
from app.api.deps import CurrentAgent, NowDep, SessionDep
from app.api.errors import responses
from app.api.spreadsheet import cell
from app.api.v1.report_query import (
    CSV_TYPE,
    MAX_REPORT_DAYS,
    AcceptHeader,
    Format,
    Since,
    Until,
    check_zone,
    csv_download,
    report_window,
    wants_csv,
)
from app.chat.errors import ConversationNotFound
from app.errors import Forbidden
from app.quality import scoring
from app.quality import service as quality_service
from app.quality.scoring import Criterion, Scale, Score
from app.quality.tally import Line, QualityGroupBy
from app.store.models import Agent, QualityReview, Role

router = APIRouter(tags=["quality"])
StaffRead = Annotated[Principal, Depends(Requires("reports:read", staff=True))]
ReviewId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The review's id.")]
ConversationId = Annotated[uuid.UUID, Path(description="The conversation's id.")]
# Enough for a reviewer's paragraph on each point, not for pasting a transcript.
MAX_COMMENT = 2000
MAX_OVERALL_COMMENT = 5000
LIST_LIMIT = 200


async def reviewer(agent: CurrentAgent) -> Agent:
    """A supervisor's or an admin's session: who writes reviews."""
    if agent.role is Role.AGENT:
        raise Forbidden(
            "Only supervisors and admins review conversations.", required_role="supervisor"
        )
    return agent


Reviewer = Annotated[Agent, Depends(reviewer)]


class CriterionBody(BaseModel):
    key: Annotated[
        str,
        StringConstraints(min_length=1, max_length=32),
        Field(
            description="Lower-case letter, then letters, digits or `_`; unique in the rubric; "
            "how reviews and the report name it.",
            examples=["empathy"],
        ),
    ]
    label: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=80),
        Field(description="What reviewers read.", examples=["Empathy"]),
    ]
    description: Annotated[
        str,
        StringConstraints(strip_whitespace=True, max_length=500),
        Field(description="What a good score means.", examples=["Acknowledged the problem."]),
    ] = ""
    weight: Annotated[
        int,
        Field(
            strict=True,
            ge=1,
            le=scoring.MAX_WEIGHT,
            description="Its share of the overall score, relative to the others'.",
            examples=[2],
        ),
    ] = 1
    scale: Annotated[
        Scale,
        Field(
            description="`points`: 1 to `points`; `yes_no`: 0 (no) or 1 (yes).", examples=["points"]
        ),
    ]
    points: Annotated[
        int | None,
        Field(
            strict=True,
            ge=scoring.MIN_POINTS,
            le=scoring.MAX_POINTS,
            description="The top of a `points` scale; null for `yes_no`.",
            examples=[5],
        ),
    ] = None
    allow_na: bool = Field(
        default=False, description="Whether a reviewer may mark it not applicable (null)."
    )

    def criterion(self) -> Criterion:
        return Criterion(
            key=self.key,
            label=self.label,
            description=self.description,
            weight=self.weight,
            scale=self.scale,
            points=self.points,
            allow_na=self.allow_na,
        )

    @classmethod
    def of(cls, criterion: Criterion) -> CriterionBody:
        return cls.model_validate(scoring.as_json(criterion))


RUBRIC_EXAMPLE: dict[str, Any] = {
    "criteria": [scoring.as_json(c) for c in scoring.DEFAULT_CRITERIA],
}


class RubricIn(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [RUBRIC_EXAMPLE]})

    criteria: Annotated[
        list[CriterionBody],
        Field(min_length=1, max_length=scoring.MAX_CRITERIA, description="In the order shown."),
    ]


class RubricOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"version": 2, "created_at": "2026-12-04T17:00:00Z", **RUBRIC_EXAMPLE}]
        }
    )

    version: int = Field(description="Goes up by one at each change; reviews keep theirs.")
    created_at: datetime
    criteria: list[CriterionBody]


def _rubric_out(rubric: quality_service.Rubric) -> RubricOut:
    return RubricOut(
        version=rubric.version,
        created_at=rubric.created_at,
        criteria=[CriterionBody.of(c) for c in rubric.criteria],
    )


class ScoreIn(BaseModel):
    key: Annotated[
        str,
        StringConstraints(min_length=1, max_length=32),
        Field(description="The criterion's key.", examples=["empathy"]),
    ]
    value: Annotated[
        int | None,
        Field(
            strict=True,
            ge=-1000,
            le=1000,
            description="On the criterion's scale (`yes_no`: 0 or 1); null: not applicable.",
            examples=[4],
        ),
    ]
    comment: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, max_length=MAX_COMMENT),
        Field(description="Why this score.", examples=["Apologised for the delay."]),
    ] = None


REVIEW_IN_EXAMPLE: dict[str, Any] = {
    "scores": [
        {"key": "greeting", "value": 5, "comment": None},
        {"key": "empathy", "value": 3, "comment": "Could have acknowledged the wait."},
        {"key": "accuracy", "value": 5, "comment": None},
        {"key": "resolution", "value": None, "comment": "Customer left before the end."},
    ],
    "comment": "Good chat overall.",
}


class ReviewUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra={"examples": [REVIEW_IN_EXAMPLE]})

    scores: Annotated[
        list[ScoreIn],
        Field(
            max_length=scoring.MAX_CRITERIA,
            description="One per criterion of the rubric (null `value`: n/a), in any order.",
        ),
    ]
    comment: Annotated[
        str | None,
        StringConstraints(strip_whitespace=True, max_length=MAX_OVERALL_COMMENT),
        Field(description="The reviewer's overall comment.", examples=["Good chat overall."]),
    ] = None

    def marks(self) -> list[Score]:
        return [Score(key=s.key, value=s.value, comment=s.comment or None) for s in self.scores]


class ReviewIn(ReviewUpdate):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**REVIEW_IN_EXAMPLE, "agent_id": None}]}
    )

    agent_id: uuid.UUID | None = Field(
        default=None,
        description="The agent reviewed, one who held the chat; default: the agent it was "
        "left with (who closed it or held it last).",
        examples=[None],
    )


class ScoreOut(BaseModel):
    key: str
    label: str = Field(description="The criterion's label in the review's rubric version.")
    scale: Scale
    points: int | None
    weight: int
    value: int | None = Field(description="Null: not applicable.")
    percent: float | None = Field(
        description="The value as a share of its scale, 0-100 (lowest 0, highest 100); null: n/a."
    )
    comment: str | None


class ReviewOut(BaseModel):
    id: int
    conversation_id: uuid.UUID
    agent_id: uuid.UUID | None = Field(description="The agent reviewed.")
    agent_name: str | None
    reviewer_id: uuid.UUID | None
    reviewer_name: str | None
    rubric_version: int = Field(description="The rubric version it was scored against.")
    score: float | None = Field(
        description="Overall, 0-100: the weighted mean of the scored criteria's percentages "
        "(docs/metrics.md#quality-reviews); null when every criterion is n/a."
    )
    comment: str | None
    scores: list[ScoreOut]
    conversation_closed_at: datetime
    created_at: datetime
    updated_at: datetime


REVIEW_EXAMPLE: dict[str, Any] = {
    "id": 12,
    "conversation_id": "0b6f7a1e-3c1d-4e57-9a53-2f1f3f0c9d11",
    "agent_id": "5d0c1b8e-8d7f-4a4e-a1a6-7f0e3c2b9a10",
    "agent_name": "Ann",
    "reviewer_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
    "reviewer_name": "Sam",
    "rubric_version": 1,
    "score": 83.33,
    "comment": "Good chat overall.",
    "scores": [
        {
            "key": "empathy",
            "label": "Empathy",
            "scale": "points",
            "points": 5,
            "weight": 2,
            "value": 3,
            "percent": 50.0,
            "comment": "Could have acknowledged the wait.",
        }
    ],
    "conversation_closed_at": "2026-12-04T15:20:00Z",
    "created_at": "2026-12-04T17:00:00Z",
    "updated_at": "2026-12-04T17:00:00Z",
}


class ReviewList(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reviews": [REVIEW_EXAMPLE]}]})

    reviews: list[ReviewOut]


async def _reviews_out(session: AsyncSession, rows: list[QualityReview]) -> list[ReviewOut]:
    versions = await quality_service.rubric_versions(session, {r.rubric_version for r in rows})
    people = {r.agent_id for r in rows} | {r.reviewer_id for r in rows}
    names = await quality_service.agent_names(session, {p for p in people if p is not None})
    out = []
    for row in rows:
        criteria = {c.key: c for c in versions[row.rubric_version].criteria}
        scores = []
        for stored in row.scores:
            criterion = criteria[str(stored["key"])]
            value = stored.get("value")
            scores.append(
                ScoreOut(
                    key=criterion.key,
                    label=criterion.label,
                    scale=criterion.scale,
                    points=criterion.points,
                    weight=criterion.weight,
                    value=value,
                    percent=None
                    if value is None
                    else scoring.shown(100 * criterion.fraction(value)),
                    comment=stored.get("comment"),
                )
            )
        out.append(
            ReviewOut(
                id=row.id,
                conversation_id=row.conversation_id,
                agent_id=row.agent_id,
                agent_name=names.get(row.agent_id) if row.agent_id else None,
                reviewer_id=row.reviewer_id,
                reviewer_name=names.get(row.reviewer_id) if row.reviewer_id else None,
                rubric_version=row.rubric_version,
                score=scoring.shown(row.score),
                comment=row.comment,
                scores=scores,
                conversation_closed_at=row.conversation_closed_at,
                created_at=row.created_at,
                updated_at=row.updated_at,
            )
        )
    return out


@router.get(
    "/quality/rubric",
    summary="The quality rubric in force",
    description="The criteria supervisors score closed conversations against, and the version "
    "(docs/metrics.md#quality-reviews). Out of the box: greeting, empathy, accuracy "
    "(1-5) and resolution (yes/no).",
    responses=responses(503),
)
async def get_rubric(_reader: ConversationsRead, session: SessionDep, now: NowDep) -> RubricOut:
    return _rubric_out(await quality_service.current_rubric(session, now=now))


@router.put(
    "/quality/rubric",
    summary="Replace the quality rubric",
    description="The criteria sent become a new version of the rubric, in force for reviews "
    "made from now on; reviews made already keep the version they were scored against (their "
    "scores never change). Sending the criteria in force changes nothing. `409 rubric_changed`: "
    "another admin saved a version at the same moment. Admins only.",
    responses=responses(409, 422, 503),
)
async def put_rubric(
    body: RubricIn, admin: AdminAccess, session: SessionDep, now: NowDep
) -> RubricOut:
    rubric = await quality_service.set_rubric(
        session, criteria=[c.criterion() for c in body.criteria], by=admin.agent_id, now=now
    )
    return _rubric_out(rubric)


@router.get(
    "/conversations/{conversation_id}/reviews",
    summary="The quality reviews of a conversation",
    description="Every reviewer's review of the conversation, newest first. "
    "`404 conversation_not_found`: no such conversation.",
    responses={200: {"model": ReviewList}, **responses(404, 422, 503)},
)
async def conversation_reviews(
    conversation_id: ConversationId, _reader: StaffRead, session: SessionDep
) -> ReviewList:
    if not await quality_service.conversation_exists(session, conversation_id):
        raise ConversationNotFound("No such conversation.", conversation_id=str(conversation_id))
    rows = await quality_service.reviews(session, conversation_id=conversation_id)
    return ReviewList(reviews=await _reviews_out(session, rows))


@router.post(
    "/conversations/{conversation_id}/reviews",
    status_code=201,
    summary="Review a closed conversation",
    description="Score the conversation against the rubric in force: every criterion once "
    "(`value` null: not applicable, where the criterion allows it), each comment optional. The "
    "overall score is computed (docs/metrics.md#quality-reviews). One review per reviewer and "
    "conversation: change it with PUT. Errors: `404 conversation_not_found`, "
    "`409 not_closed` (still open; `state`), `409 already_reviewed` (yours exists; "
    "`review_id`), `422 invalid_request` (a score off its scale, an unknown, missing or "
    "repeated criterion, n/a where not allowed, an `agent_id` who never held the chat). "
    "A supervisor's or an admin's session (API keys cannot author reviews).",
    responses={
        201: {"model": ReviewOut, "content": {"application/json": {"example": REVIEW_EXAMPLE}}},
        **responses(401, 403, 404, 409, 422, 503),
    },
)
async def create_review(
    conversation_id: ConversationId,
    body: ReviewIn,
    by: Reviewer,
    session: SessionDep,
    now: NowDep,
) -> ReviewOut:
    row = await quality_service.create_review(
        session,
        conversation_id=conversation_id,
        reviewer=by,
        agent_id=body.agent_id,
        scores=body.marks(),
        comment=body.comment or None,
        now=now,
    )
    return (await _reviews_out(session, [row]))[0]


@router.put(
    "/quality/reviews/{review_id}",
    summary="Change a quality review",
    description="Replace the review's scores and comment, scored against the rubric version it "
    "was made with. Its author or an admin (`403` for another supervisor); "
    "`404 review_not_found`; `422` as for a new review.",
    responses={
        200: {"model": ReviewOut},
        **responses(401, 403, 404, 422, 503),
    },
)
async def update_review(
    review_id: ReviewId, body: ReviewUpdate, by: Reviewer, session: SessionDep, now: NowDep
) -> ReviewOut:
    row = await quality_service.update_review(
        session,
        review_id=review_id,
        by=by,
        scores=body.marks(),
        comment=body.comment or None,
        now=now,
    )
    return (await _reviews_out(session, [row]))[0]


@router.delete(
    "/quality/reviews/{review_id}",
    status_code=204,
    summary="Delete a quality review",
    description="Its author or an admin (`403` for another supervisor); `404 review_not_found`.",
    responses=responses(401, 403, 404, 422, 503),
)
async def delete_review(review_id: ReviewId, by: Reviewer, session: SessionDep) -> Response:
    await quality_service.delete_review(session, review_id=review_id, by=by)
    return Response(status_code=204)


ClosedSince = Annotated[
    AwareDatetime | None,
    Query(description="Conversations closed from (inclusive, ISO 8601 with a zone)."),
]
ClosedUntil = Annotated[
    AwareDatetime | None, Query(description="Conversations closed before (exclusive).")
]


@router.get(
    "/quality/reviews",
    summary="Quality reviews, of one agent or all",
    description="Reviews of conversations closed in `[since, until)` (each bound optional), "
    f"newest first, at most {LIST_LIMIT}; `agent_id`: only those of that agent.",
    responses={200: {"model": ReviewList}, **responses(422, 503)},
)
async def list_reviews(
    _reader: StaffRead,
    session: SessionDep,
    agent_id: Annotated[uuid.UUID | None, Query(description="The agent reviewed.")] = None,
    since: ClosedSince = None,
    until: ClosedUntil = None,
) -> ReviewList:
    rows = await quality_service.reviews(
        session, agent_id=agent_id, since=since, until=until, limit=LIST_LIMIT
    )
    return ReviewList(reviews=await _reviews_out(session, rows))


@router.get(
    "/quality/reviews/mine",
    summary="The quality reviews of me",
    description="The caller's own reviews (as the agent reviewed), newest first, at most "
    f"{LIST_LIMIT}, with every score and comment. Any agent's session.",
    responses={200: {"model": ReviewList}, **responses(401, 403, 422, 503)},
)
async def my_reviews(
    agent: CurrentAgent, session: SessionDep, since: ClosedSince = None, until: ClosedUntil = None
) -> ReviewList:
    rows = await quality_service.reviews(
        session, agent_id=agent.id, since=since, until=until, limit=LIST_LIMIT
    )
    return ReviewList(reviews=await _reviews_out(session, rows))


class QualityLine(BaseModel):
    group: str | None = Field(
        description="The agent's or reviewer's id, the criterion's key, or the day of the "
        "close (`YYYY-MM-DD` in `tz`); null: an agent or reviewer since deleted."
    )
    name: str | None = Field(description="The agent's, reviewer's or criterion's name.")
    reviews: int = Field(description="Reviews counted (by criterion: those holding it).")
    scored: int = Field(
        description="Of those, with a score (not every criterion n/a; by criterion: not n/a)."
    )
    average_score: float | None = Field(
        description="Mean overall score of the scored reviews, 0-100 (by criterion: mean "
        "percentage of that criterion)."
    )
    criteria: dict[str, float | None] = Field(
        description="Each criterion's mean percentage over the reviews that scored it, by key "
        "(empty by criterion)."
    )


class QualityReport(BaseModel):
    since: datetime
    until: datetime
    group_by: QualityGroupBy
    tz: str
    labels: dict[str, str] = Field(
        description="The label of each criterion key reviewed in the range or in the rubric in "
        "force (the latest version's label)."
    )
    total: QualityLine = Field(description="Every review of the range, counted once.")
    rows: list[QualityLine] = Field(description="By `group` ascending, null last.")


QUALITY_LINE_EXAMPLE: dict[str, Any] = {
    "group": "5d0c1b8e-8d7f-4a4e-a1a6-7f0e3c2b9a10",
    "name": "Ann",
    "reviews": 6,
    "scored": 6,
    "average_score": 81.94,
    "criteria": {"accuracy": 87.5, "empathy": 66.67, "greeting": 100.0, "resolution": 80.0},
}


def _line(key: str | None, found: Line, name: str | None) -> QualityLine:
    return QualityLine(
        group=key,
        name=name,
        reviews=found.reviews,
        scored=found.scored,
        average_score=found.average_score,
        criteria=found.criteria,
    )


def _csv(rows: list[QualityLine], keys: list[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["group", "name", "reviews", "scored", "average_score", *keys])
    for row in rows:
        cells = [row.group, row.name, row.reviews, row.scored, row.average_score]
        cells += [row.criteria.get(key) for key in keys]
        writer.writerow([cell(value) for value in cells])
    return out.getvalue()


@router.get(
    "/reports/quality",
    summary="Quality report: review scores per agent, criterion, reviewer or day",
    description="Quality reviews of conversations closed in `[since, until)`, grouped by the "
    "agent reviewed (the default), the reviewer, the criterion or the day of the close (in "
    "`tz`): reviews counted, the average overall score and each criterion's average "
    "percentage (docs/metrics.md#quality-reviews). Default: the last 7 days; at most "
    f"{MAX_REPORT_DAYS} days. `format=csv` or `Accept: text/csv` answers CSV (a header row, "
    "a column per criterion key; no total).",
    response_model=QualityReport,
    responses={
        200: {
            "content": {
                "application/json": {
                    "example": {
                        "since": "2026-12-01T00:00:00Z",
                        "until": "2026-12-08T00:00:00Z",
                        "group_by": "agent",
                        "tz": "UTC",
                        "labels": {c.key: c.label for c in scoring.DEFAULT_CRITERIA},
                        "total": {**QUALITY_LINE_EXAMPLE, "group": None, "name": None},
                        "rows": [QUALITY_LINE_EXAMPLE],
                    }
                },
                CSV_TYPE: {
                    "schema": {"type": "string"},
                    "example": "group,name,reviews,scored,average_score,accuracy,empathy\r\n"
                    "5d0c1b8e-…,Ann,6,6,81.94,87.5,66.67\r\n",
                },
            },
            "description": "JSON, or CSV with `format=csv` or `Accept: text/csv`.",
        },
        **responses(422, 503),
    },
)
async def quality_report(
    *,
    _reader: StaffRead,
    session: SessionDep,
    now: NowDep,
    since: Since = None,
    until: Until = None,
    group_by: Annotated[
        QualityGroupBy, Query(description="How rows are grouped.")
    ] = QualityGroupBy.AGENT,
    tz: Annotated[
        str, Query(max_length=64, description="IANA time zone of the day buckets.")
    ] = "UTC",
    format: Format = None,
    accept: AcceptHeader = None,
) -> QualityReport | Response:
    since, until = report_window(since, until, now)
    check_zone(tz)
    found = await quality_service.report(
        session, since=since, until=until, group_by=group_by, zone=tz
    )
    ordered = sorted(found.rows, key=lambda k: (k is None, k or ""))
    rows = [
        _line(key, found.rows[key], None if key is None else found.names.get(key))
        for key in ordered
    ]
    if wants_csv(format, accept):
        keys = sorted(found.labels) if group_by is not QualityGroupBy.CRITERION else []
        name = f"quality-by-{group_by.value}-{since:%Y%m%d}-{until:%Y%m%d}.csv"
        return csv_download(_csv(rows, keys), name)
    return QualityReport(
        since=since,
        until=until,
        group_by=group_by,
        tz=tz,
        labels=found.labels,
        total=_line(None, found.total, None),
        rows=rows,
    )
