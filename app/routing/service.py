"""Routing service: loads the snapshot, asks `routing.core`, claims the chosen agent.

Never writes conversation events (that is `chat`'s job) and never commits. The invariant it
keeps: no agent is ever above capacity, even with several processes routing at once, because
the capacity check happens under a row lock on the agent (docs/architecture.md#routing).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from app.routing import repository
from app.routing.core import Candidate, Presence, Waiting, rank_agents
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
from app.routing.intake import Inference, infer_skill
from app.store.models import Agent, AgentStatus, Conversation


@dataclass(frozen=True, slots=True)
class OfferPolicy:
    """How a chosen agent gets a chat: at once (`auto_accept`), or as an offer they accept or
    decline within `timeout`; a declined or expired offer goes to the next agent, never back."""

    auto_accept: bool = True
    timeout: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Claim:
    agent: Agent
    load_after: int


def waiting_of(conversation: Conversation) -> Waiting:
    queued_at = conversation.queued_at or conversation.created_at
    return Waiting(
        id=conversation.id,
        skill_id=conversation.skill_id,
        priority=conversation.priority,
        queued_at=queued_at,
    )


async def claim_agent(
    session: AsyncSession, conversation: Conversation, *, now: datetime
) -> Claim | None:
    """Choose an agent for a queued conversation and lock them for it.

    The caller must hold the conversation's row (it was read `FOR UPDATE` or updated in this
    transaction) and must assign it before committing. Returns None when no agent can take it.
    """
    chat = waiting_of(conversation)
    rows = await repository.candidate_rows(
        session, skill_id=conversation.skill_id, conversation_id=conversation.id
    )
    if not rows:
        return None
    skills = await repository.proficiencies(session, [agent.id for agent, _, _ in rows])
    candidates = [
        Candidate(
            id=agent.id,
            presence=Presence(agent.status.value),
            connected=connected,
            capacity=agent.capacity,
            load=load,
            proficiency=skills[agent.id],
            idle_since=agent.last_assigned_at,
        )
        for agent, load, connected in rows
    ]
    for agent_id in rank_agents(chat, candidates, now):
        locked = await repository.lock_agent_load(session, agent_id)
        if locked is None:
            continue
        agent, load = locked
        # Re-checked under the lock: the agent may have gone away or filled up since the
        # candidate query.
        if agent.is_active and agent.status is AgentStatus.ONLINE and load < agent.capacity:
            return Claim(agent=agent, load_after=load + 1)
    return None


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
