"""Routing queries: candidate agents with their load, queued conversations, atomic claims.

An agent's load is their assigned chats plus their pending offers plus the warm transfers
offered to them by name or skill: an offered slot is taken until the offer is accepted,
declined or expires.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Uuid,
    and_,
    bindparam,
    event,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from app.routing.intake import SkillRule
from app.routing.policy import EscalationStep, OfferMode, RoutingPolicy, WatchdogPolicy
from app.store.models import (
    Agent,
    AgentConnection,
    AgentSkill,
    AgentStatus,
    Conversation,
    ConversationState,
    EscalationStepRow,
    EscalationStepSkill,
    Offer,
    OfferState,
    Role,
    RoutingSettings,
    Skill,
    Transfer,
    TransferState,
    Visitor,
)
from app.store.models import OfferMode as StoredOfferMode


def load_of(
    agent_id: InstrumentedAttribute[uuid.UUID] | ColumnElement[uuid.UUID] | uuid.UUID,
) -> ColumnElement[int]:
    """Assigned chats plus pending offers of an agent (correlated when given `Agent.id`)."""
    # An alias, so that inside a query over conversations this never correlates to the outer
    # conversation row.
    held = aliased(Conversation)
    chats = (
        select(func.count())
        .select_from(held)
        .where(held.agent_id == agent_id, held.state == ConversationState.ASSIGNED)
        .scalar_subquery()
    )
    offers = (
        select(func.count())
        .where(Offer.agent_id == agent_id, Offer.state == OfferState.PENDING)
        .scalar_subquery()
    )
    # A warm transfer offered to one agent holds a slot for them until it ends.
    transfers = (
        select(func.count())
        .where(Transfer.to_agent_id == agent_id, Transfer.state == TransferState.PENDING)
        .scalar_subquery()
    )
    return chats + offers + transfers


# Built once: constructing these expressions, not running them, was a fifth of a node's CPU in
# a burst of first messages (measured with py-spy, docs/performance.md). Expressions are
# immutable, so sharing them between queries is safe, and it lets SQLAlchemy's statement cache
# recognise the queries that use them.
_AGENT_LOAD = load_of(Agent.id)
_LOAD_BY_ID = load_of(bindparam("load_agent_id", type_=Uuid))


def _connected() -> ColumnElement[bool]:
    return exists().where(AgentConnection.agent_id == Agent.id)


def _passed_over(conversation_id: uuid.UUID) -> ColumnElement[bool]:
    """The agent declined this chat or let an offer of it expire: never offered it again."""
    return exists().where(
        Offer.conversation_id == conversation_id,
        Offer.agent_id == Agent.id,
        Offer.state.in_([OfferState.DECLINED, OfferState.EXPIRED]),
    )


async def candidate_rows(
    session: AsyncSession, *, skill_id: int | None, conversation_id: uuid.UUID | None = None
) -> list[tuple[Agent, int, bool]]:
    """Online, active, connected agents (with the skill, when one is required, and not passed
    over for this conversation): agent, load, connected."""
    query = select(Agent, _AGENT_LOAD, _connected()).where(
        Agent.is_active.is_(True), Agent.status == AgentStatus.ONLINE, _connected()
    )
    if skill_id is not None:
        query = query.where(
            exists().where(AgentSkill.agent_id == Agent.id, AgentSkill.skill_id == skill_id)
        )
    if conversation_id is not None:
        query = query.where(~_passed_over(conversation_id))
    rows = (await session.execute(query)).all()
    return [(agent, int(n), bool(c)) for agent, n, c in rows]


async def proficiencies(
    session: AsyncSession, agent_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[int, int]]:
    result: dict[uuid.UUID, dict[int, int]] = {a: {} for a in agent_ids}
    if not agent_ids:
        return result
    rows = await session.execute(
        select(AgentSkill.agent_id, AgentSkill.skill_id, AgentSkill.proficiency).where(
            AgentSkill.agent_id.in_(agent_ids)
        )
    )
    for agent_id, skill_id, level in rows:
        result[agent_id][skill_id] = level
    return result


class Busy:
    """Another router holds the agent's row right now (only with `skip_locked`)."""


BUSY = Busy()


async def lock_agent_load(session: AsyncSession, agent_id: uuid.UUID) -> tuple[Agent, int] | None:
    """`try_lock_agent_load` that waits for the row instead of answering `BUSY`."""
    locked = await try_lock_agent_load(session, agent_id, skip_locked=False)
    assert not isinstance(locked, Busy)  # noqa: S101 - only skip_locked answers BUSY
    return locked


async def try_lock_agent_load(
    session: AsyncSession, agent_id: uuid.UUID, *, skip_locked: bool = True
) -> tuple[Agent, int] | Busy | None:
    """Lock the agent's row and count their load under the lock.

    With `skip_locked`, returns `BUSY` at once when another router holds the row, so that
    routers arriving together spread over the free agents instead of queueing on the one who
    looked least loaded. Without it, waits for the row: a router that found every eligible
    agent busy must still get one, or chats would stay queued while agents have room
    (measured: 3 of 5 free slots filled when 12 chats arrived at once). On PostgreSQL the count
    runs after the lock is taken (READ COMMITTED takes a fresh snapshot per statement), so it
    sees every assignment and offer committed before. On SQLite the whole write transaction is
    exclusive (BEGIN IMMEDIATE), so a row is never busy. Returns None if the agent no longer
    exists.
    """
    query = (
        select(Agent)
        .where(Agent.id == agent_id)
        .with_for_update(skip_locked=skip_locked)
        # Re-read the row under the lock: the candidate query's copy may predate a status change.
        .execution_options(populate_existing=True)
    )
    agent = await session.scalar(query)
    if agent is None:
        if skip_locked and await session.scalar(select(Agent.id).where(Agent.id == agent_id)):
            return BUSY
        return None
    load = await session.scalar(select(_LOAD_BY_ID), {"load_agent_id": agent_id})
    return agent, int(load or 0)


def _free_agent() -> ColumnElement[bool]:
    """An online, connected, active agent with room for one more chat (correlated to Agent)."""
    return and_(
        Agent.is_active.is_(True),
        Agent.status == AgentStatus.ONLINE,
        _connected(),
        Agent.capacity > _AGENT_LOAD,
    )


async def lock_queued(session: AsyncSession, *, limit: int) -> list[Conversation]:
    """Queued conversations without a pending offer that a free agent could take, in queue
    order, locked; rows another router holds are skipped.

    Chats no free agent may take under their escalation step in force are left out here, so
    that fifty of them cannot hide the chats behind them from every routing pass. The filter
    reads the step the conversation has recorded (`step_id`): its minimum proficiency, related
    skills and whether supervisors qualify, as `EscalationStep.qualification` does."""
    # Nested two levels deep, these must name what they correlate to: by default a subquery
    # only correlates to the query right around it (agents), not to conversations.
    passed_over = (
        exists()
        .where(
            Offer.conversation_id == Conversation.id,
            Offer.agent_id == Agent.id,
            Offer.state.in_([OfferState.DECLINED, OfferState.EXPIRED]),
        )
        .correlate(Conversation, Agent)
    )
    min_level = func.coalesce(
        select(EscalationStepRow.min_proficiency)
        .where(EscalationStepRow.id == Conversation.step_id)
        .correlate(Conversation)
        .scalar_subquery(),
        1,
    )
    related = (
        exists()
        .where(
            EscalationStepSkill.step_id == Conversation.step_id,
            EscalationStepSkill.skill_id == AgentSkill.skill_id,
        )
        .correlate(Conversation, AgentSkill)
    )
    qualifies_by_skill = (
        exists()
        .where(
            AgentSkill.agent_id == Agent.id,
            AgentSkill.proficiency >= min_level,
            or_(AgentSkill.skill_id == Conversation.skill_id, related),
        )
        .correlate(Conversation, Agent)
    )
    qualifies_as_supervisor = and_(
        Agent.role.in_([Role.SUPERVISOR, Role.ADMIN]),
        exists()
        .where(
            EscalationStepRow.id == Conversation.step_id,
            EscalationStepRow.include_supervisors.is_(True),
        )
        .correlate(Conversation),
    )
    # Some free agent who may take this very chat now and has not declined it or let an
    # offer of it expire.
    someone_for_it = (
        select(Agent.id)
        .where(
            _free_agent(),
            ~passed_over,
            or_(Conversation.skill_id.is_(None), qualifies_by_skill, qualifies_as_supervisor),
        )
        .correlate(Conversation)
        .exists()
    )
    offered = exists().where(
        Offer.conversation_id == Conversation.id, Offer.state == OfferState.PENDING
    )
    return list(
        (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.state == ConversationState.QUEUED,
                    ~offered,
                    someone_for_it,
                )
                .order_by(Conversation.priority.desc(), Conversation.queued_at, Conversation.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def pending_offers_of(session: AsyncSession, conversation_id: uuid.UUID) -> list[Offer]:
    """The conversation's pending offers (several in broadcast mode), locked."""
    return list(
        (
            await session.scalars(
                select(Offer)
                .where(Offer.conversation_id == conversation_id, Offer.state == OfferState.PENDING)
                .order_by(Offer.agent_id)
                .with_for_update()
                .execution_options(populate_existing=True)
            )
        ).all()
    )


async def get_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer | None:
    return await session.get(Offer, offer_id)


async def lock_offer(session: AsyncSession, offer_id: uuid.UUID) -> Offer | None:
    return await session.scalar(
        select(Offer)
        .where(Offer.id == offer_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def due_offers(session: AsyncSession, *, now: datetime, limit: int) -> list[Offer]:
    """Pending offers past their expiry, locked; rows another node is expiring are skipped."""
    return list(
        (
            await session.scalars(
                select(Offer)
                .where(Offer.state == OfferState.PENDING, Offer.expires_at <= now)
                .order_by(Offer.expires_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def pending_offers_for_agent(session: AsyncSession, agent_id: uuid.UUID) -> list[Offer]:
    return list(
        (
            await session.scalars(
                select(Offer)
                .where(Offer.agent_id == agent_id, Offer.state == OfferState.PENDING)
                .order_by(Offer.created_at)
            )
        ).all()
    )


async def skill_rules(session: AsyncSession) -> list[SkillRule]:
    """Every skill's recognition rules (a handful of rows: skills are a team's topics)."""
    rows = (await session.scalars(select(Skill).order_by(Skill.slug))).all()
    return [
        SkillRule(
            skill_id=skill.id,
            slug=skill.slug,
            keywords=tuple(skill.keywords or ()),
            page_patterns=tuple(skill.page_patterns or ()),
        )
        for skill in rows
    ]


async def queued_heads(session: AsyncSession) -> list[Conversation]:
    """Every queued conversation (for positions; the queue is short next to the log)."""
    return list(
        (
            await session.scalars(
                select(Conversation).where(Conversation.state == ConversationState.QUEUED)
            )
        ).all()
    )


async def recently_closed(
    session: AsyncSession, *, since: datetime
) -> list[tuple[int | None, datetime, datetime]]:
    """(skill, assigned_at, closed_at) of chats closed since `since` that an agent handled."""
    rows = await session.execute(
        select(Conversation.skill_id, Conversation.assigned_at, Conversation.closed_at).where(
            Conversation.state == ConversationState.CLOSED,
            Conversation.closed_at >= since,
            Conversation.assigned_at.is_not(None),
        )
    )
    return [(skill, assigned, closed) for skill, assigned, closed in rows if assigned and closed]


async def agent_snapshot(session: AsyncSession) -> list[tuple[Agent, int, bool]]:
    """Every active agent with their load and whether a socket of theirs is open: the planner
    sees them all, so that it can say why each one was passed over."""
    rows = (
        await session.execute(
            select(Agent, _AGENT_LOAD, _connected()).where(Agent.is_active.is_(True))
        )
    ).all()
    return [(agent, int(n), bool(c)) for agent, n, c in rows]


async def offer_history(
    session: AsyncSession, conversation_id: uuid.UUID
) -> tuple[frozenset[uuid.UUID], frozenset[uuid.UUID]]:
    """(agents passed over for this chat: declined or expired; agents holding an offer now)."""
    rows = (
        await session.execute(
            select(Offer.agent_id, Offer.state).where(Offer.conversation_id == conversation_id)
        )
    ).all()
    excluded = frozenset(a for a, s in rows if s in (OfferState.DECLINED, OfferState.EXPIRED))
    pending = frozenset(a for a, s in rows if s is OfferState.PENDING)
    return excluded, pending


async def last_agent_of_visitor(
    session: AsyncSession, visitor_id: uuid.UUID, *, before: uuid.UUID
) -> uuid.UUID | None:
    """The agent who last handled one of this visitor's earlier, closed conversations; for a
    verified visitor, those of the same user on any device (same `external_id`)."""
    external_id = await session.scalar(select(Visitor.external_id).where(Visitor.id == visitor_id))
    same_person = (
        Conversation.visitor_id == visitor_id
        if external_id is None
        else Conversation.visitor_id.in_(
            select(Visitor.id).where(Visitor.external_id == external_id)
        )
    )
    return await session.scalar(
        select(Conversation.agent_id)
        .where(
            same_person,
            Conversation.id != before,
            Conversation.state == ConversationState.CLOSED,
            Conversation.agent_id.is_not(None),
        )
        .order_by(Conversation.closed_at.desc())
        .limit(1)
    )


_POLICY_CACHE = "warmline.routing.policy"


async def routing_settings(session: AsyncSession) -> RoutingSettings:
    """The deployment's routing settings row (created with its defaults if missing)."""
    row = await session.get(RoutingSettings, 1)
    if row is None:
        row = RoutingSettings(id=1)
        session.add(row)
        await session.flush()
    return row


async def lock_routing_settings(session: AsyncSession) -> RoutingSettings:
    """The settings row, locked until the unit of work ends (created first if missing): two
    admins replacing the same list one after the other, never both at once."""
    await routing_settings(session)
    row = await session.scalar(
        select(RoutingSettings)
        .where(RoutingSettings.id == 1)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert row is not None  # noqa: S101 - created above if it was missing
    return row


async def load_policy(session: AsyncSession) -> tuple[RoutingPolicy, WatchdogPolicy]:
    """The routing and watchdog policies as stored, read once per unit of work."""
    cached = session.info.get(_POLICY_CACHE)
    if cached is not None:
        policy: tuple[RoutingPolicy, WatchdogPolicy] = cached
        return policy
    row = await routing_settings(session)
    related: dict[int, set[int]] = {}
    for step_id, skill_id in await session.execute(
        select(EscalationStepSkill.step_id, EscalationStepSkill.skill_id)
    ):
        related.setdefault(step_id, set()).add(skill_id)
    escalation: dict[int, list[EscalationStep]] = {}
    default_steps: list[EscalationStep] = []
    for step in await session.scalars(
        select(EscalationStepRow).order_by(
            EscalationStepRow.skill_id, EscalationStepRow.position, EscalationStepRow.id
        )
    ):
        value = EscalationStep(
            after=timedelta(seconds=step.after_seconds),
            min_proficiency=step.min_proficiency,
            related_skills=frozenset(related.get(step.id, ())),
            include_supervisors=step.include_supervisors,
            name=step.name,
            id=step.id,
        )
        if step.skill_id is None:
            default_steps.append(value)
        else:
            escalation.setdefault(step.skill_id, []).append(value)
    routing = RoutingPolicy(
        escalation={skill: tuple(steps) for skill, steps in escalation.items()},
        default_steps=tuple(default_steps),
        offer_mode=OfferMode.BROADCAST
        if row.offer_mode is StoredOfferMode.BROADCAST
        else OfferMode.SINGLE,
        broadcast_size=row.broadcast_size,
        preferred_agent_wait=timedelta(seconds=row.preferred_agent_wait_seconds),
    )

    def seconds(value: int | None) -> timedelta | None:
        return None if value is None else timedelta(seconds=value)

    watchdog = WatchdogPolicy(
        alert_after=seconds(row.unanswered_alert_seconds),
        supervisors_after=seconds(row.unanswered_supervisor_seconds),
        requeue_after=seconds(row.unanswered_requeue_seconds),
    )
    session.info[_POLICY_CACHE] = (routing, watchdog)
    return routing, watchdog


def forget_policy(session: AsyncSession) -> None:
    """Drop the unit of work's cached policy (after the admin API changed it), and, once this
    unit of work commits, have this process's caches of the settings row read it again
    (`settings_version()`)."""
    session.info.pop(_POLICY_CACHE, None)
    session.info[_SETTINGS_CHANGED] = True
    key = _settings_key(session)
    if not event.contains(session.sync_session, "after_commit", _bump_version):
        event.listen(session.sync_session, "after_commit", _bump_version)
    # Held by the listener's session until the commit: the key it bumps.
    session.info[_SETTINGS_KEY] = key


# -- this process's view of when the settings row changed -------------------------------------
# Caches of what is derived from the routing settings (the escalation policy, the product
# catalogue; `handoff.summaries.stored_settings()`) keep it for a few seconds per process, and
# so do not see a change made on another node before they expire. A change made here is seen at
# once: `forget_policy()` bumps the version of the database's settings when its unit of work
# commits (not before: a cache refilled between the change and its commit would hold the old
# row), and a cache filled under an older version is stale. Keyed by database URL, as one
# process may talk to several databases (tests do).
_SETTINGS_CHANGED = "warmline.routing.settings_changed"
_SETTINGS_KEY = "warmline.routing.settings_key"
_settings_versions: dict[str, int] = {}
_keys: weakref.WeakKeyDictionary[Engine, str] = weakref.WeakKeyDictionary()


def _settings_key(session: AsyncSession) -> str:
    engine = session.get_bind().engine
    key = _keys.get(engine)
    if key is None:  # rendering a URL costs more than the rest of a cache hit
        key = _keys[engine] = engine.url.render_as_string(hide_password=False)
    return key


def _bump_version(session: Session) -> None:
    key = session.info.pop(_SETTINGS_KEY, None)
    if isinstance(key, str):
        _settings_versions[key] = _settings_versions.get(key, 0) + 1


def settings_version(session: AsyncSession) -> tuple[str, int]:
    """The database this session is bound to, and how often this process has committed a
    change to its routing settings (through `forget_policy()`)."""
    key = _settings_key(session)
    return key, _settings_versions.get(key, 0)


def settings_changed_here(session: AsyncSession) -> bool:
    """Whether this unit of work changed the routing settings: it must read the row, not a
    cache of it."""
    return bool(session.info.get(_SETTINGS_CHANGED))


async def due_steps(session: AsyncSession, *, now: datetime, limit: int) -> list[Conversation]:
    """Queued conversations whose next escalation step is due, locked; others' rows skipped."""
    return list(
        (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.state == ConversationState.QUEUED,
                    Conversation.next_step_at <= now,
                )
                .order_by(Conversation.next_step_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def reschedule_queued_steps(session: AsyncSession, *, now: datetime) -> None:
    """Have every queued conversation's escalation step looked at again (the policy changed)."""
    await session.execute(
        update(Conversation)
        .where(Conversation.state == ConversationState.QUEUED)
        .values(next_step_at=now)
    )


async def unanswered(
    session: AsyncSession, *, before: datetime, below_level: int, limit: int
) -> list[Conversation]:
    """Assigned conversations whose customer has awaited a reply since before `before` and
    the watchdog has not yet taken to `below_level`, locked; others' rows skipped."""
    return list(
        (
            await session.scalars(
                select(Conversation)
                .where(
                    Conversation.state == ConversationState.ASSIGNED,
                    Conversation.awaiting_reply_since <= before,
                    Conversation.watchdog_level < below_level,
                )
                .order_by(Conversation.awaiting_reply_since)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
    )


async def held_by_inactive_agents(session: AsyncSession, *, limit: int) -> list[uuid.UUID]:
    """Deactivated agents who still hold chats: nobody could answer those chats."""
    rows = await session.scalars(
        select(Conversation.agent_id)
        .join(Agent, Agent.id == Conversation.agent_id)
        .where(Conversation.state == ConversationState.ASSIGNED, Agent.is_active.is_(False))
        .distinct()
        .limit(limit)
    )
    return [agent_id for agent_id in rows if agent_id is not None]


async def is_connected(session: AsyncSession, agent_id: uuid.UUID) -> bool:
    """Whether the agent has a socket open on some node."""
    found = await session.scalar(
        select(AgentConnection.id).where(AgentConnection.agent_id == agent_id).limit(1)
    )
    return found is not None


async def online_supervisors(session: AsyncSession) -> list[uuid.UUID]:
    """Supervisors and admins who are online with a socket open."""
    return list(
        (
            await session.scalars(
                select(Agent.id).where(
                    Agent.is_active.is_(True),
                    Agent.role.in_([Role.SUPERVISOR, Role.ADMIN]),
                    Agent.status == AgentStatus.ONLINE,
                    _connected(),
                )
            )
        ).all()
    )


async def business_hours_of(session: AsyncSession, skill_id: int) -> dict[str, object] | None:
    hours: dict[str, object] | None = await session.scalar(
        select(Skill.business_hours).where(Skill.id == skill_id)
    )
    return hours
