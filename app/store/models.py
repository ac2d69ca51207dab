"""Every ORM model of Warmline, on one metadata that drives Alembic.

Owns table shapes, constraints and indexes. Must not hold queries (those live in each domain's
`repository.py`) nor business rules. Relationships are not declared: every load is an explicit
query, so no lazy load can hide in an async path. Reference: docs/architecture.md#storage.
"""

from __future__ import annotations

import enum
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid
from typing_extensions import override

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python, on PostgreSQL and on SQLite.

    SQLite has no time zones and hands back naive values; this restores UTC on the way out and
    refuses naive values on the way in, so a local-time bug cannot be stored.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @override
    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to a UTC column"
            raise ValueError(msg)
        return value.astimezone(UTC)

    @override
    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONType = JSON().with_variant(JSONB(), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias), not a BIGINT one.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class AgentStatus(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


class ConversationState(enum.StrEnum):
    QUEUED = "queued"
    ASSIGNED = "assigned"
    # Nobody could take it when it arrived (outside hours, nobody online for its skill): a
    # message left for later, which agents pick up from their offline list.
    OFFLINE = "offline"
    CLOSED = "closed"


class SenderType(enum.StrEnum):
    VISITOR = "visitor"
    AGENT = "agent"
    SYSTEM = "system"


class Visibility(enum.StrEnum):
    ALL = "all"
    AGENTS = "agents"


class OfferState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class OfferMode(enum.StrEnum):
    SINGLE = "single"
    BROADCAST = "broadcast"


class TransferKind(enum.StrEnum):
    WARM = "warm"
    COLD = "cold"
    ESCALATION = "escalation"


class TransferState(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


def _enum(cls: type[enum.StrEnum], name: str) -> Enum:
    # Stored as VARCHAR with a CHECK constraint on both dialects: adding a state later is a
    # constraint change, not an ALTER TYPE that PostgreSQL cannot run inside a transaction.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


class Skill(Base):
    __tablename__ = "skills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    # Words and phrases that, in a first message, mean this skill is needed.
    keywords: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    # Globs on the path of the page a chat starts on ("/billing/*").
    page_patterns: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    # Weekly schedule, time zone and holidays (routing.hours JSON shape); NULL: always open.
    business_hours: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    # Service level: the first agent reply should come within this many seconds of the
    # customer's first message (the common chat goal: 80 % within 60 s). The supervisor view
    # shows a queue "at risk" and "breached" against it.
    sla_first_response_seconds: Mapped[int] = mapped_column(
        Integer, default=60, server_default=text("60")
    )
    sla_target_percent: Mapped[int] = mapped_column(Integer, default=80, server_default=text("80"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# The phrases a new deployment escalates on (docs/handoff.md#escalation); the same list as
# `app.handoff.rules.DEFAULT_PHRASES` (a unit test keeps the two equal).
DEFAULT_ESCALATION_PHRASES = (
    "speak to a manager",
    "talk to a manager",
    "speak to your manager",
    "talk to your manager",
    "speak to a supervisor",
    "talk to a supervisor",
    "speak to your supervisor",
    "talk to your supervisor",
    "your manager",
    "your supervisor",
    "escalate this",
)


# The outcomes a new deployment offers when an agent closes a chat.
DEFAULT_DISPOSITIONS = (
    {"code": "resolved", "label": "Resolved"},
    {"code": "follow_up", "label": "Needs follow-up"},
    {"code": "not_resolved", "label": "Not resolved"},
    {"code": "no_response", "label": "Customer stopped responding"},
    {"code": "spam", "label": "Spam or abuse"},
)


class RoutingSettings(Base):
    """The deployment's routing policy: one row (id 1), edited through the admin API."""

    __tablename__ = "routing_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("broadcast_size BETWEEN 1 AND 20", name="broadcast_size_range"),
        CheckConstraint("preferred_agent_wait_seconds >= 0", name="preferred_wait_positive"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    offer_mode: Mapped[OfferMode] = mapped_column(
        _enum(OfferMode, "offer_mode"), default=OfferMode.SINGLE
    )
    broadcast_size: Mapped[int] = mapped_column(Integer, default=3)
    preferred_agent_wait_seconds: Mapped[int] = mapped_column(Integer, default=30)
    # Stuck-chat watchdog: the customer has waited this long for the agent's reply.
    unanswered_alert_seconds: Mapped[int | None] = mapped_column(Integer, default=120)
    unanswered_supervisor_seconds: Mapped[int | None] = mapped_column(Integer, default=300)
    unanswered_requeue_seconds: Mapped[int | None] = mapped_column(Integer)
    # Escalation to supervisors (docs/handoff.md#escalation): a visitor's phrase, or a rule.
    # None disables a rule.
    escalation_phrases: Mapped[list[str]] = mapped_column(
        JSONType, default=lambda: list(DEFAULT_ESCALATION_PHRASES), server_default=text("'[]'")
    )
    escalate_wait_seconds: Mapped[int | None] = mapped_column(Integer, default=600)
    escalate_handle_seconds: Mapped[int | None] = mapped_column(Integer, default=1800)
    escalate_after_transfers: Mapped[int | None] = mapped_column(Integer, default=2)
    escalate_sentiment_below: Mapped[float | None] = mapped_column(Float, default=-0.5)
    escalate_sentiment_window: Mapped[int] = mapped_column(
        Integer, default=3, server_default=text("3")
    )
    # Product names the context summary recognises as facts the customer gave.
    product_catalogue: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    # What agents pick when they close a chat: [{"code": "resolved", "label": "Resolved"}, ...]
    # (docs/console.md#closing-a-chat); with `require_disposition`, a close without one is refused.
    dispositions: Mapped[list[dict[str, str]]] = mapped_column(
        JSONType,
        default=lambda: [dict(d) for d in DEFAULT_DISPOSITIONS],
        server_default=text("'[]'"),
    )
    require_disposition: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    # The customer effort question (CES, 1-7) after a chat, next to the CSAT rating: a chat that
    # closes while this is on asks it (docs/widget.md#after-the-chat, docs/metrics.md).
    effort_survey: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EscalationStepRow(Base):
    """One step of a skill's escalation (or of the default steps when `skill_id` is NULL)."""

    __tablename__ = "escalation_steps"
    __table_args__ = (
        CheckConstraint("after_seconds >= 0", name="after_positive"),
        CheckConstraint("min_proficiency BETWEEN 1 AND 5", name="min_proficiency_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    skill_id: Mapped[int | None] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(64))
    after_seconds: Mapped[int] = mapped_column(Integer)
    min_proficiency: Mapped[int] = mapped_column(Integer, default=1)
    include_supervisors: Mapped[bool] = mapped_column(Boolean, default=False)


class EscalationStepSkill(Base):
    """A related skill that qualifies agents once its step is in force."""

    __tablename__ = "escalation_step_skills"

    step_id: Mapped[int] = mapped_column(
        ForeignKey("escalation_steps.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("capacity >= 0 AND capacity <= 100", name="capacity_range"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.AGENT)
    password_hash: Mapped[str] = mapped_column(String(255))
    capacity: Mapped[int] = mapped_column(Integer, default=4)
    status: Mapped[AgentStatus] = mapped_column(
        _enum(AgentStatus, "agent_status"), default=AgentStatus.OFFLINE
    )
    avatar_url: Mapped[str | None] = mapped_column(String(512))
    # When the agent was last given a chat: "longest idle" tie-breaks routing.
    last_assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the agent's last socket went away; with the grace period it decides re-queueing.
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentSkill(Base):
    __tablename__ = "agent_skills"
    __table_args__ = (CheckConstraint("proficiency BETWEEN 1 AND 5", name="proficiency_range"),)

    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True
    )
    skill_id: Mapped[int] = mapped_column(
        ForeignKey("skills.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    proficiency: Mapped[int] = mapped_column(Integer, default=3)


class AgentSession(Base):
    """A console login. The token is shown once; only its SHA-256 is stored."""

    __tablename__ = "agent_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AgentConnection(Base):
    """One open agent socket on one node. Rows whose `seen_at` is stale belong to a dead node."""

    __tablename__ = "agent_connections"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    node: Mapped[str] = mapped_column(String(128))
    connected_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Visitor(Base):
    __tablename__ = "visitors"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # Set only from a valid identity token signed by the host site (auth.identity): the
    # user's id there, and the queue priority it vouches for (0 normal, 1 high, 2 VIP).
    external_id: Mapped[str | None] = mapped_column(String(128), index=True)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When their data was erased on request (docs/api.md#privacy): identity gone, token revoked.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        # A visitor has at most one conversation that is not closed.
        Index(
            "uq_conversations_visitor_open",
            "visitor_id",
            unique=True,
            postgresql_where=text("state <> 'closed'"),
            sqlite_where=text("state <> 'closed'"),
        ),
        Index("ix_conversations_queue", "state", "priority", "queued_at"),
        Index("ix_conversations_agent_state", "agent_id", "state"),
        Index("ix_conversations_next_step", "state", "next_step_at"),
        Index("ix_conversations_awaiting_reply", "state", "awaiting_reply_since"),
        # The SLA breach detector (chat.breaches) reads, every second, the open conversations
        # not yet marked breached, oldest first: a partial index that holds only those.
        Index(
            "ix_conversations_sla_watch",
            "created_at",
            postgresql_where=text("sla_breached_at IS NULL AND state IN ('queued', 'assigned')"),
            sqlite_where=text("sla_breached_at IS NULL AND state IN ('queued', 'assigned')"),
        ),
        # The REST list and export (docs/api.md#conversations-api): keyset pages by creation or by
        # close, and a visitor's conversations.
        Index("ix_conversations_created", "created_at", "id"),
        Index("ix_conversations_closed", "closed_at", "id"),
        Index("ix_conversations_visitor", "visitor_id", "created_at"),
        # Few rows are escalated: the supervisors' list reads a small partial index.
        Index(
            "ix_conversations_escalated",
            "escalated_at",
            postgresql_where=text("escalated_at IS NOT NULL"),
            sqlite_where=text("escalated_at IS NOT NULL"),
        ),
        # Assigned means someone holds it; queued means nobody does. A closed conversation keeps
        # the agent who last held it, for transcripts and reports.
        CheckConstraint(
            "(state <> 'assigned' OR agent_id IS NOT NULL)"
            " AND (state <> 'queued' OR agent_id IS NULL)",
            name="owner_matches_state",
        ),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("effort IS NULL OR effort BETWEEN 1 AND 7", name="effort_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    visitor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("visitors.id", ondelete="CASCADE"))
    state: Mapped[ConversationState] = mapped_column(
        _enum(ConversationState, "conversation_state"), default=ConversationState.QUEUED
    )
    skill_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id", ondelete="SET NULL"))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    # Bumped on every assignment: an action carrying an older epoch is from a previous owner.
    assignment_epoch: Mapped[int] = mapped_column(Integer, default=0)
    page_url: Mapped[str | None] = mapped_column(String(2048))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    visitor_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[SenderType | None] = mapped_column(_enum(SenderType, "closed_by"))
    # The escalation step in force (NULL: the default step) and when the next one is due.
    step_id: Mapped[int | None] = mapped_column(
        ForeignKey("escalation_steps.id", ondelete="SET NULL")
    )
    next_step_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why it went offline: "outside_hours", "no_agents".
    offline_reason: Mapped[str | None] = mapped_column(String(32))
    # The customer's oldest message the agent has not answered yet, and how far the
    # watchdog has gone about it (0 nothing, 1 agent alerted, 2 supervisors alerted).
    awaiting_reply_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    watchdog_level: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Escalated to supervisors (docs/handoff.md#escalation): marked until it closes.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalation_reason: Mapped[str | None] = mapped_column(String(500))
    # Transfers accepted (warm, escalation) or made (cold) so far.
    transfer_count: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # When it last entered the queue (`queued_at` keeps its place in line across re-queues):
    # the escalation rule on waiting counts from here.
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The visitor's satisfaction rating once the chat closed (CSAT, 1-5) and their comment.
    rating: Mapped[int | None] = mapped_column(Integer)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The visitor's customer effort answer (CES 2.0, 1 strongly disagree to 7 strongly agree
    # that the company made it easy), when the close asked it.
    effort: Mapped[int | None] = mapped_column(Integer)
    effort_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Labels agents put on the chat (lower-case, at most 20) and the outcome chosen at close.
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    disposition: Mapped[str | None] = mapped_column(String(64))
    # When its text and files were removed (an erasure or the retention policy's anonymising,
    # docs/api.md#privacy); the row, its timings and its log's seqs stay.
    redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When its first agent reply passed its skill's target (the live SLA breach, recorded once
    # by chat.breaches with its `sla.breached` event; docs/metrics.md#sla-breaches).
    sla_breached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConversationEvent(Base):
    """The append-only log of a conversation. `seq` is dense: 1, 2, 3… per conversation."""

    __tablename__ = "conversation_events"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # Resending a frame with the same client_msg_id must not store it twice.
        UniqueConstraint("conversation_id", "sender_type", "sender_id", "client_msg_id"),
        # Who held which conversations (the REST list's `agent_id` filter, an agent's own list):
        # their `agent.joined` events, a small share of the log.
        Index(
            "ix_conversation_events_joined",
            "sender_id",
            "conversation_id",
            postgresql_where=text("kind = 'agent.joined'"),
            sqlite_where=text("kind = 'agent.joined'"),
        ),
        # The SLA breach detector's lookups per open conversation: its first agent reply, and
        # whether it arrived offline (then it has no first-reply target). Small shares of the log.
        Index(
            "ix_conversation_events_agent_reply",
            "conversation_id",
            "created_at",
            postgresql_where=text("kind = 'message' AND sender_type = 'agent'"),
            sqlite_where=text("kind = 'message' AND sender_type = 'agent'"),
        ),
        Index(
            "ix_conversation_events_offline",
            "conversation_id",
            postgresql_where=text("kind = 'conversation.offline'"),
            sqlite_where=text("kind = 'conversation.offline'"),
        ),
        # Not here: the full-text GIN index on the events' text, PostgreSQL's alone (migration
        # 2026-12-04-0502; the models cannot state a one-dialect expression index).
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(48))
    sender_type: Mapped[SenderType] = mapped_column(_enum(SenderType, "sender_type"))
    sender_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # The sender's display name when the event was written: a transcript keeps the names of then.
    sender_name: Mapped[str | None] = mapped_column(String(128))
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    visibility: Mapped[Visibility] = mapped_column(
        _enum(Visibility, "visibility"), default=Visibility.ALL
    )
    body: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    """A file uploaded by a visitor or an agent (docs/api.md#attachments).

    Uploaded first, then sent: until a message carries it, `conversation_id` and `seq` are NULL
    and only its uploader may see it; unsent uploads are deleted after a day. The bytes live in
    the file store under `storage_key`; this row is what says who may read them.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_conversation", "conversation_id", "seq"),
        # The purge of unsent uploads and the per-uploader cap read only the unsent rows.
        Index(
            "ix_attachments_unsent",
            "uploader_id",
            "created_at",
            postgresql_where=text("conversation_id IS NULL"),
            sqlite_where=text("conversation_id IS NULL"),
        ),
        CheckConstraint("size >= 0", name="size_positive"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    uploader_type: Mapped[SenderType] = mapped_column(_enum(SenderType, "sender_type"))
    uploader_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # The message event that carries it.
    seq: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WebhookEndpoint(Base):
    """A URL another system gave for conversation events, and what it subscribes to
    (docs/api.md#webhooks). The secret signs every request; it is kept in clear because signing
    needs it, and shown only to admins."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str] = mapped_column(String(500), default="")
    # Webhook event types (app/webhooks/events.py EVENT_TYPES), sorted.
    events: Mapped[list[str]] = mapped_column(JSONType, default=list)
    secret: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDeliveryStatus(enum.StrEnum):
    PENDING = "pending"  # to send, or to send again at `next_attempt_at`
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt of the schedule failed


class WebhookDelivery(Base):
    """One webhook event for one endpoint: the outbox row written in the transaction of the
    conversation event it tells of, then the log of its attempts (docs/api.md#delivery-log)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        # An event reaches an endpoint through one row, whatever retries happen.
        UniqueConstraint("endpoint_id", "event_id"),
        # The dispatcher's claim: due pending rows, oldest first; a small partial index.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The claim's ordering check: an earlier pending event of the same conversation for
        # the same endpoint holds the later ones back.
        Index(
            "ix_webhook_deliveries_pending_order",
            "endpoint_id",
            "conversation_id",
            "seq",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # The delivery log of an endpoint, newest first (keyset on id).
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # No foreign key: a node's cache of subscriptions may name an endpoint deleted a moment
    # ago, and that must not fail the chat's own transaction. Deleting an endpoint deletes its
    # rows; a straggler written by a stale cache is never sent (the claim joins the endpoint).
    endpoint_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    event_id: Mapped[str] = mapped_column(String(40))
    event_type: Mapped[str] = mapped_column(String(64))
    # NULL for a test ping. Deleted with the conversation (a purge or an erasure).
    conversation_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int | None] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        _enum(WebhookDeliveryStatus, "webhook_delivery_status"),
        default=WebhookDeliveryStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    # Pending: when it is due (also the lease of a node sending it). NULL once it is done.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Offer(Base):
    """A conversation proposed to one agent, pending until accepted, declined or expired."""

    __tablename__ = "offers"
    __table_args__ = (Index("ix_offers_state_expires", "state", "expires_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("agents.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[OfferState] = mapped_column(
        _enum(OfferState, "offer_state"), default=OfferState.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Transfer(Base):
    """A warm or cold transfer, or an escalation to supervisors (docs/handoff.md)."""

    __tablename__ = "transfers"
    __table_args__ = (
        Index("ix_transfers_state_expires", "state", "expires_at"),
        Index("ix_transfers_state_decided", "state", "decided_at"),
        # At most one pending transfer per chat, whatever races the code loses.
        Index(
            "uq_transfers_one_pending",
            "conversation_id",
            unique=True,
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[TransferKind] = mapped_column(_enum(TransferKind, "transfer_kind"))
    state: Mapped[TransferState] = mapped_column(
        _enum(TransferState, "transfer_state"), default=TransferState.PENDING
    )
    from_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    to_agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    to_skill_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id", ondelete="SET NULL"))
    to_supervisors: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Agents the pending transfer is offered to, and those who declined it (ids as strings).
    receivers: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    declined_by: Mapped[list[str]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Escalation reason, or why it was declined, expired or cancelled.
    reason: Mapped[str | None] = mapped_column(String(500))
    # Who took it (warm: the receiver who accepted; cold: whoever routing gave it to next).
    accepted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    # The skill the chat needed after it (for reports per skill).
    skill_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id", ondelete="SET NULL"))
    # The last event before the chat moved: the "repeated themselves" detector reads after it.
    moved_seq: Mapped[int | None] = mapped_column(BigInteger)
    # The first customer message after it that restated something already given.
    repeat_seq: Mapped[int | None] = mapped_column(BigInteger)


class ConversationParticipant(Base):
    """A supervisor or admin who barged into a chat: they write to the visitor beside the agent
    who holds it, without taking it (docs/console.md#supervisor-view). `left_at` NULL: present."""

    __tablename__ = "conversation_participants"
    __table_args__ = (
        Index(
            "uq_conversation_participants_present",
            "conversation_id",
            "agent_id",
            unique=True,
            postgresql_where=text("left_at IS NULL"),
            sqlite_where=text("left_at IS NULL"),
        ),
        Index("ix_conversation_participants_agent", "agent_id", "left_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"))
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CannedResponse(Base):
    """A saved reply agents insert with `/shortcut`; admins manage them. `text` may hold the
    variables of docs/console.md#canned-responses (`{{visitor.name}}`, `{{agent.name}}`, ...)."""

    __tablename__ = "canned_responses"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    shortcut: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    # Offered first to agents with this skill and in chats needing it; NULL: for everyone.
    skill_id: Mapped[int | None] = mapped_column(ForeignKey("skills.id", ondelete="SET NULL"))
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A key for other systems. Shown once at creation; only its SHA-256 is stored."""

    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class RetentionMode(enum.StrEnum):
    PURGE = "purge"  # delete old closed conversations, their events and files
    ANONYMISE = "anonymise"  # keep the rows, remove their text and files


class Erasure(Base):
    """One erasure of a visitor's data, as asked through the API (docs/api.md#privacy): the
    audit line of who asked and what went. Keeps no personal data itself."""

    __tablename__ = "erasures"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    # No foreign key: the record outlives whatever happens to the visitor's row later.
    visitor_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    # `principal.label` of the caller: `agent:<id>` or `api_key:<id>`.
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    conversations_closed: Mapped[int] = mapped_column(Integer, default=0)
    events_redacted: Mapped[int] = mapped_column(Integer, default=0)
    attachments_deleted: Mapped[int] = mapped_column(Integer, default=0)


class RetentionSettings(Base):
    """The retention policy: one row (id 1), edited by admins; no row means keep forever."""

    __tablename__ = "retention_settings"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(
            "closed_after_days IS NULL OR closed_after_days >= 1", name="closed_after_positive"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    # Conversations closed longer ago than this are purged or anonymised; NULL keeps them.
    closed_after_days: Mapped[int | None] = mapped_column(Integer)
    mode: Mapped[RetentionMode] = mapped_column(
        _enum(RetentionMode, "retention_mode"), default=RetentionMode.ANONYMISE
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[str | None] = mapped_column(String(64))


class RetentionRun(Base):
    """One run of the retention task on one node, with what it did."""

    __tablename__ = "retention_runs"
    __table_args__ = (Index("ix_retention_runs_started", "started_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # `schedule` (a node's hourly loop) or `request` (an admin's `POST .../runs`).
    trigger: Mapped[str] = mapped_column(String(16))
    node: Mapped[str] = mapped_column(String(128))
    mode: Mapped[RetentionMode] = mapped_column(_enum(RetentionMode, "retention_mode"))
    closed_after_days: Mapped[int] = mapped_column(Integer)
    # Conversations closed before this were due.
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime)
    batches: Mapped[int] = mapped_column(Integer, default=0)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    events: Mapped[int] = mapped_column(Integer, default=0)
    attachments: Mapped[int] = mapped_column(Integer, default=0)
    # Visitors not seen since the cutoff with nothing kept: deleted (purge) or made anonymous.
    visitors: Mapped[int] = mapped_column(Integer, default=0)
    # Why the run stopped early (the database went away), or NULL.
    error: Mapped[str | None] = mapped_column(String(500))


class ConversationMetrics(Base):
    """One closed conversation's figures (docs/metrics.md#per-conversation), written by
    `reports.service` in the transaction of the close and refreshed when it is rated or
    relabelled later; reports add these rows up instead of reading event logs.

    No foreign keys: the figures outlive the conversation (a retention purge deletes it, an
    erasure redacts it; aggregates are kept, holding no words and no visitor).
    """

    __tablename__ = "conversation_metrics"
    __table_args__ = (
        # Reports filter on the opening time and group by its hour or day, by skill or agent.
        Index("ix_conversation_metrics_opened", "opened_at"),
        Index("ix_conversation_metrics_skill_opened", "skill_id", "opened_at"),
        Index("ix_conversation_metrics_agent_opened", "last_agent_id", "opened_at"),
        CheckConstraint("csat IS NULL OR csat BETWEEN 1 AND 5", name="csat_range"),
        CheckConstraint("effort IS NULL OR effort BETWEEN 1 AND 7", name="effort_range"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    skill_id: Mapped[int | None] = mapped_column(Integer)
    first_agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    last_agent_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    closed_by: Mapped[str] = mapped_column(String(16))
    offline: Mapped[bool] = mapped_column(Boolean)
    handled: Mapped[bool] = mapped_column(Boolean)
    answered: Mapped[bool] = mapped_column(Boolean)
    abandoned: Mapped[bool] = mapped_column(Boolean)
    # Milliseconds; NULL where the figure does not apply.
    queue_wait_ms: Mapped[int | None] = mapped_column(BigInteger)
    first_response_ms: Mapped[int | None] = mapped_column(BigInteger)
    handle_ms: Mapped[int | None] = mapped_column(BigInteger)
    transfers: Mapped[int] = mapped_column(Integer)
    escalations: Mapped[int] = mapped_column(Integer)
    fcr_candidate: Mapped[bool] = mapped_column(Boolean)
    # When the visitor opened their next conversation: within WARMLINE_FCR_WINDOW of
    # `closed_at`, this one was not resolved on first contact.
    next_contact_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # NULL: not counted (offline, or a short abandon).
    sla_met: Mapped[bool | None] = mapped_column(Boolean)
    sla_target_seconds: Mapped[int] = mapped_column(Integer)
    csat: Mapped[int | None] = mapped_column(Integer)
    # The effort question was asked (its `conversation.closed` says so) and the latest answer.
    effort_asked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    effort: Mapped[int | None] = mapped_column(Integer)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list, server_default=text("'[]'"))
    disposition: Mapped[str | None] = mapped_column(String(64))


class QualityRubric(Base):
    """One version of the quality rubric (docs/metrics.md#quality-reviews): the criteria
    supervisors score closed conversations against. Never edited: an admin's change is a new
    version, and each review keeps the version it was scored against. The highest is in force."""

    __tablename__ = "quality_rubrics"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    # [{"key", "label", "description", "weight", "scale", "points", "allow_na"}, ...]
    criteria: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QualityReview(Base):
    """A supervisor's or admin's review of a closed conversation: a score per criterion of the
    rubric version in `rubric_version`, comments, and the overall score in per cent (NULL: every
    criterion n/a). One per reviewer and conversation; it goes with its conversation."""

    __tablename__ = "quality_reviews"
    __table_args__ = (
        UniqueConstraint("conversation_id", "reviewer_id"),
        # The report reads a range of close times; an agent's and a reviewer's lists, theirs.
        Index("ix_quality_reviews_closed", "conversation_closed_at"),
        Index("ix_quality_reviews_agent", "agent_id", "conversation_closed_at"),
        Index("ix_quality_reviews_reviewer", "reviewer_id", "conversation_closed_at"),
        CheckConstraint("score IS NULL OR score BETWEEN 0 AND 100", name="score_range"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE")
    )
    # The agent reviewed and the reviewer; NULL once their account is deleted.
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    reviewer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL")
    )
    rubric_version: Mapped[int] = mapped_column(ForeignKey("quality_rubrics.version"))
    # [{"key", "value" (null: n/a), "comment"}, ...] in the rubric's order.
    scores: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    comment: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    # The conversation's close, copied: the report's range is over it.
    conversation_closed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
