"""An agent starts a transfer of the chat they hold: warm, to a named agent, the best agent of
a skill or the supervisors (docs/handoff.md#where-it-goes), or cold, back to a skill queue
(docs/handoff.md#cold-transfer).

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import service as chat_service
from app.chat import transfers
from app.chat.errors import NotParticipant, TransferPending, TransferTargetUnavailable
from app.chat.service import Actor, Outcome
from app.handoff.escalation import _after_move
from app.handoff.summaries import _summary_event, build
from app.handoff.transfers import (
    SUPERVISOR_ROLES,
    Started,
    Target,
    _online_supervisors,
    _open_transfer,
    _requested,
)
from app.routing import repository as routing_repository
from app.routing import service as routing_service
from app.store.models import (
    Agent,
    Conversation,
    Offer,
    OfferState,
    Skill,
    Transfer,
    TransferKind,
    TransferState,
)

# -- starting a transfer ----------------------------------------------------------------------


async def _skill(session: AsyncSession, slug: str) -> Skill:
    skill = await session.scalar(select(Skill).where(Skill.slug == slug))
    if skill is None:
        raise TransferTargetUnavailable(f"There is no skill {slug!r}.", skill=slug)
    return skill


def _to(target: Target, agent: Agent | None, skill: Skill | None) -> dict[str, Any]:
    if target.supervisors:
        return {"supervisors": True}
    if agent is not None and target.agent_id is not None:
        return {"agent": {"id": str(agent.id), "name": agent.name}}
    if skill is not None:
        return {"skill": {"id": skill.id, "name": skill.name}}
    return {}


async def _declined_before(session: AsyncSession, conversation_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(
        select(Transfer.declined_by).where(Transfer.conversation_id == conversation_id)
    )
    return {uuid.UUID(agent_id) for declined in rows for agent_id in declined or ()}


async def _named_receiver(session: AsyncSession, actor: Actor, agent_id: uuid.UUID) -> Agent:
    if agent_id == actor.id:
        raise TransferTargetUnavailable("You cannot transfer a chat to yourself.")
    locked = await routing_repository.lock_agent_load(session, agent_id)
    if locked is None or not locked[0].is_active:
        raise TransferTargetUnavailable("There is no such agent.", agent_id=str(agent_id))
    agent, load = locked
    if agent.status.value != "online" or not await routing_repository.is_connected(
        session, agent.id
    ):
        raise TransferTargetUnavailable(
            f"{agent.name} is not online; choose someone who is.",
            agent_id=str(agent_id),
            status=agent.status.value,
        )
    if load >= agent.capacity and agent.role not in SUPERVISOR_ROLES:
        raise TransferTargetUnavailable(
            f"{agent.name} is at capacity ({load} of {agent.capacity}).",
            agent_id=str(agent_id),
            load=load,
            capacity=agent.capacity,
        )
    return agent


async def request_transfer(
    session: AsyncSession,
    *,
    actor: Actor,
    conversation_id: uuid.UUID,
    target: Target,
    cold: bool,
    note: str | None,
    now: datetime,
    ttl: timedelta,
    offers: routing_service.OfferPolicy,
) -> tuple[Outcome, Started]:
    """The holding agent hands the chat on: warm (offered to a named agent, the best agent of a
    skill, or the supervisors, while the chat stays with them) or cold (back to a skill queue
    at the front, summary attached).

    Raises:
        ConversationNotFound, NotParticipant, ConversationClosed, TransferPending,
        TransferTargetUnavailable.
    """
    conversation = await chat_service.load_owned(session, actor, conversation_id)
    if not actor.is_agent:
        raise NotParticipant("Only the agent holding a chat can transfer it.")
    pending = await transfers.pending_of(session, conversation.id)
    if pending is not None:
        raise TransferPending(
            "This chat already has a transfer pending; cancel it first.",
            transfer_id=str(pending.id),
        )
    me = await session.get(Agent, actor.id)
    assert me is not None  # noqa: S101 - the holder's row is kept by its foreign key
    if cold:
        return await _cold(session, conversation, me, target, note, now=now, ttl=ttl, offers=offers)
    exclude = {actor.id} | await _declined_before(session, conversation.id)
    named: Agent | None = None
    skill: Skill | None = None
    if target.agent_id is not None:
        named = await _named_receiver(session, actor, target.agent_id)
        receivers = [named]
    elif target.skill is not None:
        skill = await _skill(session, target.skill)
        chosen = await routing_service.choose_agent(
            session, conversation, skill_id=skill.id, exclude=frozenset(exclude), now=now
        )
        if chosen is None:
            raise TransferTargetUnavailable(
                f"No agent with the skill {skill.name} is free now; try a cold transfer to "
                "queue the chat for them.",
                skill=skill.slug,
            )
        receivers = [chosen]
    else:
        receivers = await _online_supervisors(session, {actor.id})
        if not receivers:
            raise TransferTargetUnavailable(
                "No supervisor is online; escalate the chat to mark it for them."
            )
    single = receivers[0] if not target.supervisors else None
    return await _open_transfer(
        session,
        conversation,
        kind=TransferKind.WARM,
        from_agent=me,
        receivers=receivers,
        target=target,
        to=_to(target, named, skill),
        to_agent_id=None if single is None else single.id,
        to_skill_id=None if skill is None else skill.id,
        note=note,
        reason=None,
        now=now,
        ttl=ttl,
    )


async def _cold(
    session: AsyncSession,
    conversation: Conversation,
    me: Agent,
    target: Target,
    note: str | None,
    *,
    now: datetime,
    ttl: timedelta,
    offers: routing_service.OfferPolicy,
) -> tuple[Outcome, Started]:
    if target.agent_id is not None or target.supervisors:
        raise TransferTargetUnavailable(
            "A cold transfer goes to a skill queue; to hand the chat to a person, transfer it warm."
        )
    skill = None if target.skill is None else await _skill(session, target.skill)
    skill_id = conversation.skill_id if skill is None else skill.id
    if skill is None and skill_id is not None:
        skill = await session.get(Skill, skill_id)
    transfer = Transfer(
        id=uuid.uuid4(),
        conversation_id=conversation.id,
        kind=TransferKind.COLD,
        # Done when made (the chat is in the queue, at the front): never pending.
        state=TransferState.ACCEPTED,
        decided_at=now,
        from_agent_id=me.id,
        to_skill_id=skill_id,
        note=note,
        receivers=[],
        declined_by=[],
        created_at=now,
        expires_at=None,
    )
    session.add(transfer)
    outcome = Outcome(conversation_id=conversation.id)
    outcome.events.append(
        _requested(
            session,
            conversation,
            transfer,
            from_agent=me,
            to={} if skill is None else {"skill": {"id": skill.id, "name": skill.name}},
            now=now,
        )
    )
    summary = await build(session, conversation, now=now, note=note)
    outcome.events.append(
        _summary_event(session, conversation, summary, transfer_id=transfer.id, now=now)
    )
    conversation.skill_id = skill_id
    conversation.transfer_count += 1
    policy, _ = await routing_repository.load_policy(session)
    # `requeue` keeps the chat's place: it goes back in at the front.
    outcome.merge(
        chat_service.requeue(
            session, conversation, policy, agent=me, agent_id=me.id, reason="transferred", now=now
        )
    )
    # Not offered straight back to the agent who let it go.
    session.add(
        Offer(
            id=uuid.uuid4(),
            conversation_id=conversation.id,
            agent_id=me.id,
            state=OfferState.DECLINED,
            created_at=now,
            expires_at=now,
            decided_at=now,
        )
    )
    await session.flush()
    outcome.merge(await chat_service.try_assign(session, conversation, now=now, offers=offers))
    outcome.merge(await _after_move(session, conversation, now=now, ttl=ttl))
    started = Started(transfer.id, conversation.id, "cold", (), None)
    return outcome, started
