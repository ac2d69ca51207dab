"""Agent presence: which agents have a live socket, on which node, and since when they lack one.

Owns the `agent_connections` rows and agents' status. A node refreshes `seen_at` of its own
connections on a timer; rows that stop being refreshed belong to a dead node and are swept, so
presence survives a crashed process. Chats are re-queued by `chat.service` once an agent has
been without any socket for the grace period (docs/protocol.md#presence).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.store.models import Agent, AgentConnection, AgentStatus


async def connect(session: AsyncSession, *, agent: Agent, node: str, now: datetime) -> uuid.UUID:
    """Record a new socket of `agent` on `node`; an offline agent comes online."""
    connection_id = uuid.uuid4()
    session.add(
        AgentConnection(
            id=connection_id, agent_id=agent.id, node=node, connected_at=now, seen_at=now
        )
    )
    agent.disconnected_at = None
    if agent.status is AgentStatus.OFFLINE:
        agent.status = AgentStatus.ONLINE
    await session.flush()
    return connection_id


async def disconnect(session: AsyncSession, *, connection_id: uuid.UUID, now: datetime) -> None:
    """Forget one socket. If it was the agent's last, their grace period starts now."""
    agent_id = await session.scalar(
        delete(AgentConnection)
        .where(AgentConnection.id == connection_id)
        .returning(AgentConnection.agent_id)
    )
    if agent_id is not None:
        await _mark_if_unconnected(session, [agent_id], now)


async def _mark_if_unconnected(
    session: AsyncSession, agent_ids: list[uuid.UUID], now: datetime
) -> None:
    if not agent_ids:
        return
    await session.execute(
        update(Agent)
        .where(
            Agent.id.in_(agent_ids),
            Agent.disconnected_at.is_(None),
            ~exists().where(AgentConnection.agent_id == Agent.id),
        )
        .values(disconnected_at=now)
    )


async def touch(
    session: AsyncSession, *, node: str, live: Mapping[uuid.UUID, uuid.UUID], now: datetime
) -> None:
    """Make the node's rows match its open sockets (`live`: connection id -> agent id).

    Refreshes `seen_at` of live connections, deletes this node's rows whose socket is gone (a
    disconnect that could not be written, say during a database outage) and re-creates rows
    another node swept as stale while this one could not reach the database.
    """
    stored = set(
        (
            await session.scalars(select(AgentConnection.id).where(AgentConnection.node == node))
        ).all()
    )
    gone = stored - live.keys()
    if gone:
        agent_ids = list(
            (
                await session.scalars(
                    delete(AgentConnection)
                    .where(AgentConnection.id.in_(gone))
                    .returning(AgentConnection.agent_id)
                )
            ).all()
        )
        await _mark_if_unconnected(session, sorted(set(agent_ids)), now)
    if live:
        await session.execute(
            update(AgentConnection).where(AgentConnection.id.in_(list(live))).values(seen_at=now)
        )
    for connection_id in live.keys() - stored:
        session.add(
            AgentConnection(
                id=connection_id,
                agent_id=live[connection_id],
                node=node,
                connected_at=now,
                seen_at=now,
            )
        )
        # The socket never went away; only this node's view of the database did. An agent
        # turned offline meanwhile (grace period over) is online again, as on a fresh connect.
        await session.execute(
            update(Agent).where(Agent.id == live[connection_id]).values(disconnected_at=None)
        )
        await session.execute(
            update(Agent)
            .where(Agent.id == live[connection_id], Agent.status == AgentStatus.OFFLINE)
            .values(status=AgentStatus.ONLINE)
        )
    await session.flush()


async def sweep_stale(session: AsyncSession, *, now: datetime, stale_after: timedelta) -> int:
    """Delete connections no node has refreshed for `stale_after` (their node died)."""
    agent_ids = list(
        (
            await session.scalars(
                delete(AgentConnection)
                .where(AgentConnection.seen_at < now - stale_after)
                .returning(AgentConnection.agent_id)
            )
        ).all()
    )
    await _mark_if_unconnected(session, sorted(set(agent_ids)), now)
    return len(agent_ids)


async def agents_past_grace(
    session: AsyncSession, *, now: datetime, grace: timedelta
) -> list[uuid.UUID]:
    """Agents without a socket for longer than `grace`: turned offline, returned for re-queueing."""
    agents = list(
        (
            await session.scalars(
                select(Agent)
                .where(
                    Agent.disconnected_at.is_not(None),
                    Agent.disconnected_at <= now - grace,
                    Agent.status != AgentStatus.OFFLINE,
                    ~exists().where(AgentConnection.agent_id == Agent.id),
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
    )
    for agent in agents:
        agent.status = AgentStatus.OFFLINE
    await session.flush()
    return [agent.id for agent in agents]


async def set_status(session: AsyncSession, *, agent_id: uuid.UUID, status: AgentStatus) -> Agent:
    agent = await session.get(Agent, agent_id, with_for_update=True)
    if agent is None:
        msg = "agent vanished"
        raise LookupError(msg)
    agent.status = status
    await session.flush()
    return agent
