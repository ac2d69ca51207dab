"""What happens to conversations as time passes: escalation steps, the unanswered-message
watchdog, and chats held by agents who were deactivated.

Run by every node's timers (realtime.hub) in short units of work; rows are claimed with
`SKIP LOCKED`, so two nodes never act on one conversation twice. Like `chat.service`, these
write events, flush and never commit, and return an `Outcome` to publish after the commit.
Rules: docs/routing.md#escalation-steps and docs/routing.md#stuck-chat-watchdog.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import events as kinds
from app.chat.events import iso
from app.chat.log import append_event
from app.chat.service import (
    DEFAULT_OFFERS,
    Outcome,
    advance_step,
    assign_waiting,
    requeue_agent_chats,
    take_back,
    try_assign,
)
from app.routing import repository as routing_repository
from app.routing.service import OfferPolicy
from app.store.models import Agent, Visibility

# How many rows one timer round handles; the next round (a second later) takes the rest.
BATCH = 100


async def advance_steps(
    session: AsyncSession,
    *,
    now: datetime,
    offers: OfferPolicy = DEFAULT_OFFERS,
    limit: int = BATCH,
) -> Outcome:
    """Record the escalation steps that came into force and route each chat under its new step:
    a widened target may include an agent with room right now."""
    policy, _ = await routing_repository.load_policy(session)
    outcome = Outcome()
    for conversation in await routing_repository.due_steps(session, now=now, limit=limit):
        outcome.events.extend(advance_step(session, conversation, policy, now=now))
        await session.flush()
        outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    await session.flush()
    return outcome


async def watch_unanswered(
    session: AsyncSession,
    *,
    now: datetime,
    offers: OfferPolicy = DEFAULT_OFFERS,
    limit: int = BATCH,
) -> Outcome:
    """Alert the agent, then the supervisors, about a customer waiting for a reply; and, when
    the policy says so, take the chat back to the front of the queue for someone else."""
    policy, watchdog = await routing_repository.load_policy(session)
    outcome = Outcome()
    stages: list[tuple[int, timedelta | None, str]] = [
        (1, watchdog.alert_after, "agent"),
        (2, watchdog.supervisors_after, "supervisors"),
    ]
    supervisors: list[uuid.UUID] | None = None
    for level, after, audience in stages:
        if after is None:
            continue
        for conversation in await routing_repository.unanswered(
            session, before=now - after, below_level=level, limit=limit
        ):
            conversation.watchdog_level = level
            waiting_since = conversation.awaiting_reply_since or now
            body: dict[str, Any] = {
                "alerted": audience,
                "agent_id": str(conversation.agent_id),
                "waiting_since": iso(waiting_since),
                "waited_seconds": int((now - waiting_since).total_seconds()),
            }
            outcome.events.append(
                append_event(
                    session,
                    conversation,
                    kind=kinds.UNANSWERED,
                    now=now,
                    body=body,
                    visibility=Visibility.AGENTS,
                )
            )
            frame = {
                "type": "alert",
                "alert": "unanswered",
                "conversation_id": str(conversation.id),
                **body,
            }
            if audience == "agent":
                targets = [conversation.agent_id]
            else:
                if supervisors is None:
                    supervisors = await routing_repository.online_supervisors(session)
                targets = list(supervisors)
            outcome.notices.extend(
                (f"agent:{target}", {"t": "frame", "frame": frame})
                for target in targets
                if target is not None
            )
        await session.flush()
    if watchdog.requeue_after is not None:
        for conversation in await routing_repository.unanswered(
            session, before=now - watchdog.requeue_after, below_level=3, limit=limit
        ):
            agent_id = conversation.agent_id
            if agent_id is None:  # pragma: no cover - assigned chats have an agent (CHECK)
                continue
            agent = await session.get(Agent, agent_id)
            outcome.merge(
                await take_back(
                    session,
                    conversation,
                    policy,
                    agent=agent,
                    agent_id=agent_id,
                    reason="unanswered",
                    why="The customer went unanswered.",
                    now=now,
                    passed_over=True,
                )
            )
            await session.flush()
            outcome.merge(await try_assign(session, conversation, now=now, offers=offers))
    await session.flush()
    return outcome


async def requeue_from_inactive(
    session: AsyncSession, *, now: datetime, offers: OfferPolicy = DEFAULT_OFFERS
) -> Outcome:
    """Chats held by deactivated agents go back to the queue: nobody could answer them."""
    outcome = Outcome()
    for agent_id in await routing_repository.held_by_inactive_agents(session, limit=BATCH):
        outcome.merge(
            await requeue_agent_chats(
                session, agent_id=agent_id, reason="agent_deactivated", now=now
            )
        )
    outcome.merge(await assign_waiting(session, now=now, offers=offers))
    return outcome
