"""Agent presence survives crashes and outages: rows follow the sockets a node really holds."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import pytest_asyncio
from sqlalchemy import select

from app.auth.tokens import hash_password
from app.routing import presence
from app.store.db import Database
from app.store.models import Agent, AgentConnection, AgentStatus
from tests.conftest import Backend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]
T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest_asyncio.fixture
async def db(backend: Backend) -> AsyncIterator[Database]:
    database = Database(backend.database_url)
    try:
        yield database
    finally:
        await database.dispose()


async def connected_agent(db: Database, node: str) -> tuple[uuid.UUID, uuid.UUID]:
    async with db.write() as session:
        agent = Agent(
            name="A",
            email=f"{uuid.uuid4().hex[:8]}@example.com",
            password_hash=hash_password("x" * 12),
            capacity=2,
        )
        session.add(agent)
        await session.flush()
        connection_id = await presence.connect(session, agent=agent, node=node, now=T0)
        return agent.id, connection_id


async def state(db: Database, agent_id: uuid.UUID) -> tuple[AgentStatus, datetime | None, int]:
    async with db.read() as session:
        agent = await session.get(Agent, agent_id)
        assert agent is not None
        rows = (
            await session.scalars(
                select(AgentConnection).where(AgentConnection.agent_id == agent_id)
            )
        ).all()
        return agent.status, agent.disconnected_at, len(rows)


class TestPresence:
    async def test_connect_brings_an_offline_agent_online(self, db: Database) -> None:
        """Opening a socket makes an offline agent online with one presence row."""
        agent_id, _ = await connected_agent(db, "n1")
        assert await state(db, agent_id) == (AgentStatus.ONLINE, None, 1)

    async def test_a_disconnect_that_was_never_written_is_repaired(self, db: Database) -> None:
        """A socket gone without its disconnect being stored (database down at that moment) is
        removed by the node's next tick, and the agent's grace period starts."""
        agent_id, _ = await connected_agent(db, "n1")
        async with db.write() as session:
            await presence.touch(session, node="n1", live={}, now=T0 + timedelta(seconds=10))
        status, disconnected_at, rows = await state(db, agent_id)
        assert (status, rows) == (AgentStatus.ONLINE, 0)
        assert disconnected_at == T0 + timedelta(seconds=10)

    async def test_rows_swept_during_an_outage_come_back(self, db: Database) -> None:
        """Another node swept this node's rows as stale (it could not refresh them) and the
        grace period turned the agent offline; the socket never closed, so the next tick
        restores the row and the agent is online again."""
        agent_id, connection_id = await connected_agent(db, "n1")
        async with db.write() as session:
            swept = await presence.sweep_stale(
                session, now=T0 + timedelta(minutes=5), stale_after=timedelta(seconds=40)
            )
            assert swept == 1
            gone = await presence.agents_past_grace(
                session, now=T0 + timedelta(minutes=7), grace=timedelta(seconds=60)
            )
            assert gone == [agent_id]
        assert (await state(db, agent_id))[0] is AgentStatus.OFFLINE
        async with db.write() as session:
            await presence.touch(
                session, node="n1", live={connection_id: agent_id}, now=T0 + timedelta(minutes=8)
            )
        assert await state(db, agent_id) == (AgentStatus.ONLINE, None, 1)

    async def test_live_rows_are_not_swept(self, db: Database) -> None:
        """Rows refreshed by their node survive another node's sweep."""
        agent_id, connection_id = await connected_agent(db, "n1")
        async with db.write() as session:
            await presence.touch(
                session, node="n1", live={connection_id: agent_id}, now=T0 + timedelta(seconds=30)
            )
            assert (
                await presence.sweep_stale(
                    session, now=T0 + timedelta(seconds=50), stale_after=timedelta(seconds=40)
                )
                == 0
            )
        assert (await state(db, agent_id))[2] == 1


class TestSelfHealing:
    async def test_a_connected_agent_is_never_left_offline(self, db: Database) -> None:
        """Whatever race left an agent with a live socket marked offline or in a grace period,
        the node's next tick puts them back online."""
        agent_id, connection_id = await connected_agent(db, "n1")
        async with db.write() as session:
            agent = await session.get(Agent, agent_id)
            assert agent is not None
            agent.status = AgentStatus.OFFLINE
            agent.disconnected_at = T0
        async with db.write() as session:
            await presence.touch(
                session, node="n1", live={connection_id: agent_id}, now=T0 + timedelta(seconds=5)
            )
        assert await state(db, agent_id) == (AgentStatus.ONLINE, None, 1)

    async def test_a_socket_still_in_its_hello_is_left_alone(self, db: Database) -> None:
        """A socket registered on the node whose row has not committed yet is neither deleted
        nor re-created by a tick (its own hello writes the row)."""
        agent_id, connection_id = await connected_agent(db, "n1")
        pending = uuid.uuid4()
        async with db.write() as session:
            await presence.touch(
                session,
                node="n1",
                live={connection_id: agent_id, pending: agent_id},
                restorable={connection_id},
                now=T0 + timedelta(seconds=5),
            )
            ids = set((await session.scalars(select(AgentConnection.id))).all())
        assert pending not in ids
        assert connection_id in ids
