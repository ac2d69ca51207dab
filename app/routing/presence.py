"""Agent presence: which agents have a live socket, on which node, and since when they lack one.

Owns the `agent_connections` rows and agents' status. A node refreshes `seen_at` of its own
connections on a timer; rows that stop being refreshed belong to a dead node and are swept, so
presence survives a crashed process. Chats are re-queued by `chat.service` once an agent has
been without any socket for the grace period (docs/protocol.md#presence).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from datetime import datetime, timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.errors import NotFound
from app.store.models import Agent, AgentConnection, AgentStatus


async def _lock_agent(session: AsyncSession, agent_id: uuid.UUID) -> Agent | None:
    # Connects, disconnects and the grace sweep of one agent serialise on the agent's row, so
    # each sees the others' committed connection rows (READ COMMITTED re-reads per statement;
    # the grace sweep's re-check of a row changed meanwhile drops it).
    return await session.scalar(
        select(Agent)
        .where(Agent.id == agent_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def connect(
    session: AsyncSession,
    *,
    agent: Agent,
    node: str,
    now: datetime,
    connection_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Record a new socket of `agent` on `node`; an offline agent comes online."""
    connection_id = connection_id or uuid.uuid4()
    locked = await _lock_agent(session, agent.id) or agent
    session.add(
        AgentConnection(
            id=connection_id, agent_id=locked.id, node=node, connected_at=now, seen_at=now
        )
    )
    locked.disconnected_at = None
    if locked.status is AgentStatus.OFFLINE:
        locked.status = AgentStatus.ONLINE
    await session.flush()
    return connection_id


async def disconnect(session: AsyncSession, *, connection_id: uuid.UUID, now: datetime) -> None:
    """Forget one socket. If it was the agent's last, their grace period starts now."""
    agent_id = await session.scalar(
        select(AgentConnection.agent_id).where(AgentConnection.id == connection_id)
    )
    if agent_id is None:
        return
    await _lock_agent(session, agent_id)
    await session.execute(delete(AgentConnection).where(AgentConnection.id == connection_id))
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
    session: AsyncSession,
    *,
    node: str,
    live: Mapping[uuid.UUID, uuid.UUID] | None = None,
    now: datetime,
    restorable: AbstractSet[uuid.UUID] | None = None,
    sockets: Callable[[], tuple[Mapping[uuid.UUID, uuid.UUID], AbstractSet[uuid.UUID]]]
    | None = None,
) -> None:
    """Make the node's rows match its open sockets (`live`: connection id -> agent id).

    Refreshes `seen_at` of live connections; deletes this node's rows whose socket is gone (a
    disconnect that could not be written, say during a database outage); re-creates the rows
    of `restorable` sockets (default: every live one) that another node swept as stale while
    this one could not reach the database. An agent with a live socket is never left `offline`
    or in a grace period: whatever race put them there, this repairs it.

    `sockets`, when given, returns (live, restorable) and is called after the stored rows are
    read: a hello registers its socket before committing its row, so every row this read sees
    belongs to a socket the call reports (a snapshot taken earlier could miss a hello that
    committed in between, and its row would be deleted as gone).
    """
    stored = set(
        (
            await session.scalars(select(AgentConnection.id).where(AgentConnection.node == node))
        ).all()
    )
    if sockets is not None:
        live, restorable = sockets()
    if live is None:
        live = {}
    if restorable is None:
        restorable = set(live)
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
    for connection_id in (live.keys() - stored) & restorable:
        session.add(
            AgentConnection(
                id=connection_id,
                agent_id=live[connection_id],
                node=node,
                connected_at=now,
                seen_at=now,
            )
        )
    await session.flush()
    connected = sorted({live[c] for c in live if c in stored or c in restorable})
    if connected:
        await session.execute(
            update(Agent)
            .where(Agent.id.in_(connected), Agent.disconnected_at.is_not(None))
            .values(disconnected_at=None)
        )
        await session.execute(
            update(Agent)
            .where(Agent.id.in_(connected), Agent.status == AgentStatus.OFFLINE)
            .values(status=AgentStatus.ONLINE)
        )


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
    agent = await _lock_agent(session, agent_id)
    if agent is None:
        raise NotFound("This agent no longer exists.")
    agent.status = status
    await session.flush()
    return agent
