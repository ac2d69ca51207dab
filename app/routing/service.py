"""Routing service: loads the snapshot, asks `routing.core`, claims the chosen agent.

Never writes conversation events (that is `chat`'s job) and never commits. The invariant it
keeps: no agent is ever above capacity, even with several processes routing at once, because
the capacity check happens under a row lock on the agent (docs/architecture.md#routing).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.routing import repository
from app.routing.core import Candidate, Decision, Deferral, Presence, Waiting, plan
from app.routing.estimate import (
    DEFAULT_POLICY as DEFAULT_ESTIMATE,
)
from app.routing.estimate import (
    Capacity,
    CompletedChat,
    EstimatePolicy,
    WaitEstimate,
    estimate_queue,
)
from app.routing.hours import HoursError, is_open, next_opening, parse_hours
from app.routing.intake import Inference, infer_skill
from app.routing.policy import RoutingPolicy
from app.store.models import Agent, AgentStatus, Conversation, Role

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OfferPolicy:
    """How a chosen agent gets a chat: at once (`auto_accept`), or as an offer they accept or
    decline within `timeout`; a declined or expired offer goes to the next agent, never back."""

    auto_accept: bool = True
    timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Claim:
    """The agents locked for a chat: one, or up to `broadcast_size` in broadcast mode."""

    agents: tuple[Agent, ...]
    decision: Decision

    @property
    def agent(self) -> Agent:
        return self.agents[0]


def waiting_of(conversation: Conversation) -> Waiting:
    queued_at = conversation.queued_at or conversation.created_at
    return Waiting(
        id=conversation.id,
        skill_id=conversation.skill_id,
        priority=conversation.priority,
        queued_at=queued_at,
    )


async def claim_agent(
    session: AsyncSession,
    conversation: Conversation,
    *,
    now: datetime,
    policy: RoutingPolicy | None = None,
) -> Claim | None:
    """Choose the agent (or, in broadcast mode, agents) for a queued conversation and lock them.

    The caller must hold the conversation's row (it was read `FOR UPDATE` or updated in this
    transaction) and must assign or offer it before committing. Returns None when no agent can
    take it now. The choice and its reasons come from the pure planner (`core.plan`); they are
    re-checked here under the chosen agents' row locks. Without `policy`, the stored one.
    """
    if policy is None:
        policy, _ = await repository.load_policy(session)
    chat, candidates = await _snapshot(session, conversation)
    # Each failed claim corrects the snapshot with what the lock saw, and the plan is made
    # again: another router may have filled the best agent meanwhile, and the next best must
    # then get the chat now rather than at the next pass. Agents whose row another router holds
    # at this instant are set aside for this chat (`busy`), so that chats arriving together
    # spread over the free agents by the lowest-load rule instead of all queueing on the one
    # who looked least loaded; only when every eligible agent is busy does the claim wait.
    busy: set[uuid.UUID] = set()
    for _ in range(2 * len(candidates) + 1):
        visible = [_full(c) if c.id in busy else c for c in candidates]
        result = plan([chat], visible, policy, now)
        wait = False
        if not result.decisions:
            if not busy:
                return None
            # Every eligible agent is busy: wait for the best of them after all.
            busy.clear()
            result = plan([chat], candidates, policy, now)
            if not result.decisions:
                return None
            wait = True
        decision = result.decisions[0]
        refreshed: dict[uuid.UUID, Candidate] = {}
        claimed: list[Agent] = []
        for agent_id in decision.agent_ids:
            locked = await repository.try_lock_agent_load(session, agent_id, skip_locked=not wait)
            if isinstance(locked, repository.Busy):
                busy.add(agent_id)
                continue
            if locked is None:
                refreshed[agent_id] = _gone(agent_id, candidates)
                continue
            agent, load = locked
            planned = next(c for c in candidates if c.id == agent_id)
            # Re-checked under the lock: the agent may have gone away or filled up since the
            # snapshot the plan was made from, or, unless this claim had to wait, been given
            # another chat meanwhile (then the plan is made again with their new load, so that
            # chats arriving together go to the least loaded agents, not all to one).
            usable = agent.is_active and agent.status is AgentStatus.ONLINE
            if usable and load < agent.capacity and (wait or load <= planned.load):
                claimed.append(agent)
                continue
            refreshed[agent_id] = _candidate(
                agent, load, connected=planned.connected, proficiency=planned.proficiency
            )
        if claimed:
            # In broadcast mode, those still free hold the offer; the others were refreshed.
            return Claim(agents=tuple(claimed), decision=decision)
        candidates = [refreshed.get(c.id, c) for c in candidates]
    return None


async def choose_agent(
    session: AsyncSession,
    conversation: Conversation,
    *,
    skill_id: int | None,
    exclude: frozenset[uuid.UUID],
    now: datetime,
) -> Agent | None:
    """The best free agent for `conversation` if it needed `skill_id`, by the routing rules
    (lowest load ratio, then proficiency, then longest idle), never one in `exclude`; locked.

    A warm transfer to a skill uses this: the chat is judged as if it had just arrived (the
    first escalation step's reach), so a transfer goes to someone who really has the skill.
    """
    policy, _ = await repository.load_policy(session)
    _, candidates = await _snapshot(session, conversation)
    chat = Waiting(
        id=conversation.id,
        skill_id=skill_id,
        priority=conversation.priority,
        queued_at=now,
        excluded=exclude,
    )
    for _ in range(len(candidates) + 1):
        result = plan([chat], candidates, policy, now)
        if not result.decisions:
            return None
        agent_id = result.decisions[0].agent_ids[0]
        locked = await repository.lock_agent_load(session, agent_id)
        if locked is not None:
            agent, load = locked
            if agent.is_active and agent.status is AgentStatus.ONLINE and load < agent.capacity:
                return agent
        candidates = [_gone(agent_id, candidates) if c.id == agent_id else c for c in candidates]
    return None


def _full(candidate: Candidate) -> Candidate:
    """The candidate as the planner should see a busy agent: no room for this chat now."""
    return Candidate(
        id=candidate.id,
        presence=candidate.presence,
        connected=candidate.connected,
        capacity=candidate.capacity,
        load=max(candidate.load, candidate.capacity),
        proficiency=candidate.proficiency,
        idle_since=candidate.idle_since,
        is_supervisor=candidate.is_supervisor,
    )


async def policy_changed(session: AsyncSession, *, now: datetime) -> None:
    """Call after the admin API changed steps or settings: queued chats re-read their step."""
    repository.forget_policy(session)
    await repository.reschedule_queued_steps(session, now=now)


def _gone(agent_id: uuid.UUID, candidates: list[Candidate]) -> Candidate:
    old = next(c for c in candidates if c.id == agent_id)
    return Candidate(
        id=old.id,
        presence=Presence.OFFLINE,
        connected=False,
        capacity=old.capacity,
        load=old.load,
        proficiency=old.proficiency,
        idle_since=old.idle_since,
        is_supervisor=old.is_supervisor,
    )


def _candidate(
    agent: Agent, load: int, *, connected: bool, proficiency: dict[int, int]
) -> Candidate:
    return Candidate(
        id=agent.id,
        presence=Presence(agent.status.value) if agent.is_active else Presence.OFFLINE,
        connected=connected,
        capacity=agent.capacity,
        load=load,
        proficiency=proficiency,
        idle_since=agent.last_assigned_at,
        is_supervisor=agent.role in (Role.SUPERVISOR, Role.ADMIN),
    )


async def decide(
    session: AsyncSession,
    conversation: Conversation,
    *,
    now: datetime,
    policy: RoutingPolicy | None = None,
) -> Decision | Deferral:
    """What the planner decides for this conversation now, with its reasons (no locks taken:
    also what `GET /conversations/{id}/routing` shows for a chat still waiting)."""
    if policy is None:
        policy, _ = await repository.load_policy(session)
    chat, candidates = await _snapshot(session, conversation)
    result = plan([chat], candidates, policy, now)
    return result.decisions[0] if result.decisions else result.deferred[0]


async def _snapshot(
    session: AsyncSession, conversation: Conversation
) -> tuple[Waiting, list[Candidate]]:
    rows = await repository.agent_snapshot(session)
    skills = await repository.proficiencies(session, [agent.id for agent, _, _ in rows])
    candidates = [
        _candidate(agent, load, connected=connected, proficiency=skills[agent.id])
        for agent, load, connected in rows
    ]
    excluded, offered_to = await repository.offer_history(session, conversation.id)
    preferred = await repository.last_agent_of_visitor(
        session, conversation.visitor_id, before=conversation.id
    )
    base = waiting_of(conversation)
    chat = Waiting(
        id=base.id,
        skill_id=base.skill_id,
        priority=base.priority,
        queued_at=base.queued_at,
        excluded=excluded,
        preferred_agent=preferred,
        offered_to=offered_to,
    )
    return chat, candidates


def explain(outcome: Decision | Deferral) -> dict[str, object]:
    """A decision's reasons as stored in the `routing.decided` event and shown by the API."""
    reasons = outcome.reasons
    return {
        "agent_ids": [str(a) for a in outcome.agent_ids] if isinstance(outcome, Decision) else [],
        "rule": reasons.rule,
        "step": outcome.step.name or "default",
        "considered": [str(a) for a in reasons.considered],
        "passed_over": [
            {"reason": group.reason.value, "agent_ids": [str(a) for a in group.agent_ids]}
            for group in reasons.passed_over
        ],
    }


async def required_skill(
    session: AsyncSession,
    *,
    topic_skill_id: int | None,
    page_url: str | None,
    first_message: str,
) -> Inference:
    """The skill a conversation opened by `first_message` needs (docs/routing.md#required-skill)."""
    rules = await repository.skill_rules(session)
    return infer_skill(
        rules, topic_skill_id=topic_skill_id, page_url=page_url, first_message=first_message
    )


async def queue_snapshot(
    session: AsyncSession, *, now: datetime, policy: EstimatePolicy = DEFAULT_ESTIMATE
) -> dict[uuid.UUID, tuple[int, WaitEstimate | None]]:
    """Position and wait estimate of every queued conversation.

    Model: docs/routing.md#queue-position-and-estimated-wait.
    """
    queued = await repository.queued_heads(session)
    if not queued:
        return {}
    waiting = [waiting_of(c) for c in queued]
    completed = [
        CompletedChat(
            skill_id=skill_id,
            handle_seconds=max(0.0, (closed_at - assigned_at).total_seconds()),
            ended_at=closed_at,
        )
        for skill_id, assigned_at, closed_at in await repository.recently_closed(
            session, since=now - policy.window
        )
    ]
    capacity: dict[int | None, Capacity] = {}
    for skill_id in {w.skill_id for w in waiting}:
        rows = await repository.candidate_rows(session, skill_id=skill_id)
        capacity[skill_id] = Capacity(
            total_slots=sum(agent.capacity for agent, _, _ in rows),
            free_slots=sum(max(0, agent.capacity - load) for agent, load, _ in rows),
        )
    return estimate_queue(waiting, completed, capacity, now, policy=policy)


@dataclass(frozen=True, slots=True)
class Unavailable:
    """Why nobody can take a chat of a skill now.

    Attributes:
        reason: "outside_hours" (the skill's business hours) or "no_agents" (nobody online
            who has the skill, a related skill of one of its steps, or, when a step allows,
            is a supervisor).
        opens_at: When the skill's hours open next, when that is the reason.
    """

    reason: str
    opens_at: datetime | None = None


async def availability(
    session: AsyncSession, skill_id: int | None, *, now: datetime
) -> Unavailable | None:
    """Whether a chat needing `skill_id` can be served now: None when it can.

    Busy agents count as available (the chat waits in the queue for them); away and offline
    agents, and agents whose capacity is 0, do not. An agent within their grace period after a
    dropped connection is still online. Model: docs/routing.md#business-hours-and-offline-messages.
    """
    if skill_id is not None:
        raw = await repository.business_hours_of(session, skill_id)
        if raw is not None:
            try:
                hours = parse_hours(raw)
            except HoursError:
                # Stored hours were validated on the way in; if they no longer parse (a time
                # zone removed from the system's database), serving beats refusing.
                log.exception("skill %s has unreadable business hours; treating as open", skill_id)
            else:
                if not is_open(hours, now):
                    return Unavailable("outside_hours", next_opening(hours, now))
    # An agent with capacity 0 (monitoring only, or paused by an admin) can take no chat.
    online = [
        agent
        for agent, _, _ in await repository.agent_snapshot(session)
        if agent.status is AgentStatus.ONLINE and agent.capacity > 0
    ]
    if skill_id is None:
        return None if online else Unavailable("no_agents")
    policy, _ = await repository.load_policy(session)
    steps = policy.steps_for(skill_id)
    qualifying = {skill_id}.union(*(step.related_skills for step in steps))
    supervisors_qualify = any(step.include_supervisors for step in steps)
    levels = await repository.proficiencies(session, [agent.id for agent in online])
    for agent in online:
        if not qualifying.isdisjoint(levels[agent.id]):
            return None
        if supervisors_qualify and agent.role in (Role.SUPERVISOR, Role.ADMIN):
            return None
    return Unavailable("no_agents")
