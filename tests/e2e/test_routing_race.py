"""The routing race of issue 3: two `warmline serve` processes on one PostgreSQL + Redis,
50 agents, 2,000 chats arriving at once. What must hold afterwards is checked in the database:
no chat assigned twice, no agent over capacity, every chat assigned or still queued, and as
many chats assigned as there are slots. The agents' own sockets must agree with the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import func, select

from app.auth.tokens import hash_password
from app.store.db import Database
from app.store.models import (
    Agent,
    AgentConnection,
    AgentSkill,
    AgentStatus,
    Conversation,
    ConversationEvent,
    ConversationState,
    Skill,
    Visibility,
)
from tests.conftest import Backend
from tests.e2e.harness import PASSWORD, Client, Closed, Server, create_agent

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio]
T = TypeVar("T")

CHATS = 2_000
AGENTS = 50
EARLY_AGENTS = 40  # online before the chats arrive; the other 10 connect during the race
LATE_AGENTS_EVERY = 1.5  # seconds between two late agents' connects, from the race's start
CAPACITIES = (2, 3, 4, 5, 6)  # cycled over the agents: 10 of each, 200 slots in all
# Agent i holds SKILL_SETS[i % 4] (proficiencies 1-5): both skills, billing only, tech only,
# or none. Agent 0 holds both, so creating it first creates both skills.
SKILL_SETS: tuple[tuple[str, ...], ...] = (("billing", "tech"), ("billing",), ("tech",), ())
# Chat i asks for CHAT_SKILLS[i % 3]: no skill, billing or tech.
CHAT_SKILLS: tuple[str | None, ...] = (None, "billing", "tech")
# What is in flight at once, for a 2-core machine that also runs both servers, PostgreSQL and
# Redis. The race itself is the message phase.
AGENTS_CREATED_IN_FLIGHT = 10
LOGINS_IN_FLIGHT = 4  # an Argon2 check each, on the server's event loop
SESSIONS_IN_FLIGHT = 50
CONNECTS_IN_FLIGHT = 100
MESSAGES_IN_FLIGHT = 100
ACK_TIMEOUT = 60.0
WELCOME_TIMEOUT = 60.0
SETTLE_TIMEOUT = 45.0  # longer than one housekeeping round (heartbeat_interval +20 %)
SETTLE_STABLE = 10.0
AGENT_SYNC_TIMEOUT = 30.0
# Idle sockets (visitors between their hello and their message, agents between chats) must
# outlive every phase of the test. The interval is also the period of each node's housekeeping
# round, which runs a routing pass too.
HOUSEKEEPING = {"heartbeat_interval": "30", "heartbeat_timeout": "120"}

OPENED, MESSAGE, QUEUED = "conversation.opened", "message", "conversation.queued"
ASSIGNED, JOINED = "conversation.assigned", "agent.joined"
# Server log lines worth counting in the summary (retries are normal under a race, but
# `database unavailable` is what refuses a frame).
NOTES = ("lost a race; retrying", "hit a lock conflict; retrying", "database unavailable")


def _enough_file_descriptors(needed: int) -> None:
    """Every visitor socket is open during the race: raise the soft limit if it is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        assert target >= needed, f"need {needed} file descriptors, the hard limit is {hard}"


async def _bounded(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await every job, at most `limit` at a time; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


async def _create_agents(backend: Backend) -> list[tuple[str, int]]:
    """The 50 agents (email, capacity), created through the store by `create_agent`."""

    def agent(i: int) -> Awaitable[str]:
        skills = {slug: 1 + (i + n) % 5 for n, slug in enumerate(SKILL_SETS[i % 4])}
        return create_agent(
            backend, name=f"Agent{i:02d}", capacity=CAPACITIES[i % len(CAPACITIES)], skills=skills
        )

    first = await agent(0)  # creates both skills: the others only look them up
    rest = await _bounded(AGENTS_CREATED_IN_FLIGHT, (agent(i) for i in range(1, AGENTS)))
    return [(email, CAPACITIES[i % len(CAPACITIES)]) for i, email in enumerate([first, *rest])]


async def _connect(client: Client) -> dict[str, Any]:
    """`Client.connect()` with more patience for the welcome than the harness's 10 s: a hello
    waits for a database connection, and an agent's for their row, under the race's load."""
    await client.connect(hello=False)
    await client.send({"type": "hello", "token": client.token})
    client.welcome = await client.next("welcome", timeout=WELCOME_TIMEOUT)
    return client.welcome


async def _pump(agent: Client) -> None:
    """Keep reading an agent socket: records every event and answers the server's pings."""
    while True:
        await agent.quiet(5.0)


def _pumps_alive(agents: Agents) -> None:
    """Raise what ended an agent socket's reader (a close, a seq out of order), if any did."""
    for pump in agents.pumps:
        if pump.done():
            pump.result()


@dataclass
class Agents:
    """The 50 agents: logged in first, connected (in two waves) later."""

    clients: list[Client] = field(default_factory=list)
    capacities: list[int] = field(default_factory=list)
    welcomes: dict[int, dict[str, Any]] = field(default_factory=dict)  # by index, once connected
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    async def connect(self, i: int, *, after: float = 0.0) -> None:
        """Connect agent `i` (which runs a routing pass on its node) and keep reading."""
        await asyncio.sleep(after)
        self.welcomes[i] = await _connect(self.clients[i])
        self.pumps.append(asyncio.create_task(_pump(self.clients[i])))

    @property
    def ids(self) -> list[str]:
        return [self.welcomes[i]["session"]["id"] for i in range(len(self.clients))]

    @property
    def capacity(self) -> dict[str, int]:
        return dict(zip(self.ids, self.capacities, strict=True))


async def _agents_online(backend: Backend, nodes: list[Server], agents: Agents) -> None:
    """Create the agents and log them in, alternating nodes (25 on each); connect the early
    ones. They have no chats yet."""
    created = await _create_agents(backend)
    agents.capacities = [capacity for _, capacity in created]
    agents.clients = await _bounded(
        LOGINS_IN_FLIGHT,
        (Client.agent(nodes[i % 2], email) for i, (email, _) in enumerate(created)),
    )
    await asyncio.gather(*(agents.connect(i) for i in range(EARLY_AGENTS)))
    assert all(agents.welcomes[i]["conversations"] == [] for i in range(EARLY_AGENTS))


async def _visitors_ready(nodes: list[Server], visitors: list[Client]) -> None:
    """2,000 visitor sessions over HTTP, then a socket each (hello answered), alternating
    nodes. Appended to `visitors` as they come, so that the caller can close them all."""
    https = [httpx.AsyncClient(base_url=node.http, timeout=60) for node in nodes]
    try:

        async def session(i: int) -> Client:
            response = await https[i % 2].post(
                "/api/v1/visitor/sessions", json={"name": f"Visitor{i}"}
            )
            assert response.status_code == 201, response.text
            return Client(nodes[i % 2], "visitor", response.json()["token"])

        visitors.extend(await _bounded(SESSIONS_IN_FLIGHT, (session(i) for i in range(CHATS))))
    finally:
        for http in https:
            await http.aclose()
    welcomes = await _bounded(CONNECTS_IN_FLIGHT, (_connect(v) for v in visitors))
    assert all(w["conversations"] == [] for w in welcomes)


async def _first_message(visitor: Client, *, client_msg_id: str, skill: str | None) -> Any:
    """Send a visitor's first message; return its ack, or what came instead (an error frame
    naming it, a close, a timeout). The socket is closed afterwards."""
    frame: dict[str, Any] = {"type": "message", "client_msg_id": client_msg_id, "text": "hi"}
    if skill is not None:
        frame["skill"] = skill
    loop = asyncio.get_running_loop()
    deadline = loop.time() + ACK_TIMEOUT
    try:
        await visitor.send(frame)
        while True:
            # The harness's own frame reader (answers pings, checks seqs); `next()` would wait
            # its whole timeout on an error frame instead of returning it.
            got = await visitor._read(max(0.0, deadline - loop.time()))
            if got["type"] in ("ack", "error") and client_msg_id in (
                got.get("client_msg_id"),
                got.get("ref"),
            ):
                return got
    except TimeoutError:
        return {"type": "timeout"}
    except Closed as closed:
        return {"type": "closed", "code": closed.code, "reason": closed.reason}
    finally:
        await visitor.close()


async def _assigned_count(db: Database) -> int:
    async with db.read() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Conversation)
            .where(Conversation.state == ConversationState.ASSIGNED)
        )
    return int(count or 0)


async def _settle(db: Database, expected: int) -> None:
    """Wait until `expected` chats are assigned, or the count has not moved for SETTLE_STABLE
    seconds, or SETTLE_TIMEOUT ran out. The assertions that follow tell which."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    last, changed = -1, start
    while (now := loop.time()) - start < SETTLE_TIMEOUT:
        count = await _assigned_count(db)
        if count == expected:
            return
        if count != last:
            last, changed = count, now
        elif now - changed >= SETTLE_STABLE:
            return
        await asyncio.sleep(0.5)


@dataclass
class Stored:
    """What the database holds after the race."""

    status: dict[str, AgentStatus]
    disconnected_at: dict[str, Any]
    capacity: dict[str, int]
    skills: dict[str, set[str]]
    sockets: Counter[str]
    slug: dict[int, str]
    # Rows: id, state, agent_id, skill_id, last_seq, assignment_epoch, created_at, assigned_at.
    conversations: list[Any]
    log: dict[str, list[ConversationEvent]]


async def _stored(db: Database) -> Stored:
    async with db.read() as s:
        agents = (
            await s.execute(select(Agent.id, Agent.status, Agent.capacity, Agent.disconnected_at))
        ).all()
        skills: dict[str, set[str]] = defaultdict(set)
        with_slugs = select(AgentSkill.agent_id, Skill.slug).join(
            Skill, Skill.id == AgentSkill.skill_id
        )
        for agent_id, slug in (await s.execute(with_slugs)).all():
            skills[str(agent_id)].add(slug)
        slugs = {int(i): str(slug) for i, slug in await s.execute(select(Skill.id, Skill.slug))}
        sockets = Counter(str(a) for a in await s.scalars(select(AgentConnection.agent_id)))
        conversations = (
            await s.execute(
                select(
                    Conversation.id,
                    Conversation.state,
                    Conversation.agent_id,
                    Conversation.skill_id,
                    Conversation.last_seq,
                    Conversation.assignment_epoch,
                    Conversation.created_at,
                    Conversation.assigned_at,
                )
            )
        ).all()
        log: dict[str, list[ConversationEvent]] = defaultdict(list)
        events = select(ConversationEvent).order_by(
            ConversationEvent.conversation_id, ConversationEvent.seq
        )
        for event in await s.scalars(events):
            log[str(event.conversation_id)].append(event)
    return Stored(
        status={str(a.id): a.status for a in agents},
        disconnected_at={str(a.id): a.disconnected_at for a in agents},
        capacity={str(a.id): a.capacity for a in agents},
        skills=skills,
        sockets=sockets,
        slug=slugs,
        conversations=list(conversations),
        log=log,
    )


def _check_database(
    stored: Stored, agents: Agents, skill_of_chat: dict[str, str | None], expected: int
) -> dict[str, list[str]]:
    """Assert the invariants of the race on what is stored; return each agent's chats."""
    assert stored.capacity == agents.capacity

    # Exactly the acked chats, each assigned or still queued, with the skill asked for.
    assert len(stored.conversations) == CHATS
    assert {str(c.id) for c in stored.conversations} == set(skill_of_chat)
    states = Counter(c.state for c in stored.conversations)
    assert set(states) <= {ConversationState.ASSIGNED, ConversationState.QUEUED}, states
    held: dict[str, list[str]] = defaultdict(list)
    for c in stored.conversations:
        cid = str(c.id)
        assert (stored.slug[c.skill_id] if c.skill_id else None) == skill_of_chat[cid], cid
        if c.state is ConversationState.ASSIGNED:
            held[str(c.agent_id)].append(cid)
            if c.skill_id is not None:  # only an agent with the chat's skill may hold it
                assert stored.slug[c.skill_id] in stored.skills[str(c.agent_id)], cid
            assert c.assignment_epoch == 1, cid
        else:
            assert c.agent_id is None, cid
            assert c.assignment_epoch == 0, cid

    # The log: dense seqs; one agent.joined per assigned chat, naming its holder; none for a
    # queued chat. Agents-only events (routing notes) may come between the visible ones.
    for c in stored.conversations:
        cid, events = str(c.id), stored.log[str(c.id)]
        assert [e.seq for e in events] == list(range(1, c.last_seq + 1)), cid
        joined = [e for e in events if e.kind == JOINED]
        visible = [e for e in events if e.visibility is Visibility.ALL]
        if c.state is ConversationState.ASSIGNED:
            assert len(joined) == 1, f"{cid} has {len(joined)} agent.joined events"
            assert joined[0].sender_id == c.agent_id, cid
            assert [e.kind for e in visible] == [OPENED, MESSAGE, QUEUED, ASSIGNED, JOINED], cid
            assert visible[3].body["agent"]["id"] == str(c.agent_id), cid
            assert visible[3].body["epoch"] == 1, cid
        else:
            assert joined == [], f"queued {cid} has agent.joined events"
            assert [e.kind for e in visible] == [OPENED, MESSAGE, QUEUED], cid

    # No agent over capacity; every slot filled.
    over = {a: (len(h), agents.capacity[a]) for a, h in held.items() if len(h) > agents.capacity[a]}
    assert not over, f"agents over capacity (held, capacity): {over}"
    free = {
        f"agent {i} {a}": (agents.capacity[a] - len(held[a]), _presence_of(stored, a))
        for i, a in enumerate(agents.ids)
        if len(held[a]) < agents.capacity[a]
    }
    assert states[ConversationState.ASSIGNED] == expected, (
        f"{states[ConversationState.ASSIGNED]} assigned, expected {expected}; "
        f"free slots (free, presence): {free}"
    )

    # Every agent stayed present and online throughout: one socket each, never closed.
    absent = {
        f"agent {i} {a}": _presence_of(stored, a)
        for i, a in enumerate(agents.ids)
        if _presence_of(stored, a) != (AgentStatus.ONLINE, 1, None)
    }
    assert not absent, (
        f"agents whose socket is open but who are not present (status, rows, disconnected_at): "
        f"{absent}"
    )
    return held


def _presence_of(stored: Stored, agent_id: str) -> tuple[AgentStatus, int, Any]:
    """(status, presence rows, disconnected_at) of an agent."""
    return stored.status[agent_id], stored.sockets[agent_id], stored.disconnected_at[agent_id]


# What an agent's socket was told: the chats whose log says the agent joined, and the seqs it
# received of each chat.
_View = tuple[set[str], dict[str, list[int]]]


async def _check_agents(
    agents: Agents, held: dict[str, list[str]], last_seq: dict[str, int]
) -> None:
    """Each agent's socket was told of exactly the chats the database gives the agent (an
    `agent.joined` naming them in each) and was sent each of their logs whole from seq 1, and
    of no other chat anything."""
    expected: dict[str, _View] = {
        a: (set(held[a]), {cid: list(range(1, last_seq[cid] + 1)) for cid in held[a]})
        for a in agents.ids
    }

    def seen() -> dict[str, _View]:
        return {
            agent_id: (
                {
                    cid
                    for cid, log in client.events.items()
                    if any(e["kind"] == JOINED and e["sender"]["id"] == agent_id for e in log)
                },
                {cid: [e["seq"] for e in log] for cid, log in client.events.items()},
            )
            for agent_id, client in zip(agents.ids, agents.clients, strict=True)
        }

    loop = asyncio.get_running_loop()
    deadline = loop.time() + AGENT_SYNC_TIMEOUT
    while (views := seen()) != expected and loop.time() < deadline:
        _pumps_alive(agents)
        await asyncio.sleep(0.5)
    _pumps_alive(agents)
    wrong = {a: (views[a], expected[a]) for a in agents.ids if views[a] != expected[a]}
    assert not wrong, f"agents told otherwise than the database (got, expected): {wrong}"


async def _race(visitors: list[Client], agents: Agents, wanted: dict[str, str | None]) -> Any:
    """Every visitor sends their first message, MESSAGES_IN_FLIGHT at a time, while the late
    agents connect, each connect running a routing pass on its node. Returns, per visitor, the
    ack or what came instead."""
    late = (
        agents.connect(i, after=LATE_AGENTS_EVERY * (i - EARLY_AGENTS + 1))
        for i in range(EARLY_AGENTS, AGENTS)
    )
    firsts = (
        _first_message(v, client_msg_id=cmid, skill=wanted[cmid])
        for v, cmid in zip(visitors, wanted, strict=True)
    )
    outcomes, connects = await asyncio.gather(
        _bounded(MESSAGES_IN_FLIGHT, firsts), asyncio.gather(*late, return_exceptions=True)
    )
    for failure in connects:  # raised once every late connect has ended: nothing left running
        if isinstance(failure, BaseException):
            raise failure
    return outcomes


def _check_acks(outcomes: list[Any], wanted: dict[str, str | None]) -> dict[str, str | None]:
    """Every first message acked, each into a conversation of its own; returns the skill each
    conversation was opened with."""
    failed = Counter(
        o.get("code") or o.get("reason") or o["type"] for o in outcomes if o["type"] != "ack"
    )
    assert not failed, f"{failed.total()} of {CHATS} first messages not acked: {failed}"
    assert all(o["seq"] == 2 and not o["duplicate"] for o in outcomes)
    skill_of_chat = {o["conversation_id"]: wanted[o["client_msg_id"]] for o in outcomes}
    assert len(skill_of_chat) == CHATS, "two visitors were acked into one conversation"
    return skill_of_chat


async def _shut_down(
    nodes: list[Server], agents: Agents, visitors: list[Client], db: Database
) -> None:
    """Close every socket, then stop both nodes (each fails the test if it logged an error)."""
    for pump in agents.pumps:
        pump.cancel()
    await asyncio.gather(*agents.pumps, return_exceptions=True)  # failures were checked before
    for client in [*visitors, *agents.clients]:
        with contextlib.suppress(Exception):
            await client.close()
    await db.dispose()
    stopped = await asyncio.gather(*(node.stop() for node in nodes), return_exceptions=True)
    for result in stopped:
        if isinstance(result, BaseException):
            raise result


class TestRoutingRace:
    @pytest.mark.timeout(300)
    async def test_two_nodes_two_thousand_chats_fifty_agents(
        self, postgres_backend: Backend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """2,000 visitors, half on each of two nodes, send their first message at once (100 in
        flight) to 50 agents (25 per node, capacities 2 to 6: 200 slots). 40 agents are online
        before; the other 10 connect during the race, one every 1.5 s, and each connect runs a
        routing pass over the queue on its node, competing with the claims of the new chats
        (so do the nodes' housekeeping rounds, every 24 to 36 s).

        Skills are mixed (agents with both skills, one, or none; chats asking for billing, tech
        or nothing), yet the expected number of assignments is exact: the 667 chats without a
        skill, which any agent may take, outnumber the 200 slots, so a router that never leaves
        an agent idle while a chat they may take waits fills every slot: 200 assigned, 1,800
        queued. Checked from the database: each chat once, acked, assigned or queued; no agent
        above capacity or given a chat of a skill they lack; one `agent.joined` per assigned
        chat, naming its holder, none for a queued one; dense seqs; and every agent, whose
        socket stays open throughout, still present (one presence row, no grace period) and
        online. Then from each agent's socket: it was told of exactly the chats the database
        gives the agent, each log whole.
        """
        backend = postgres_backend
        # `create_agent` hashes the (shared) password with Argon2, ~0.2 s of CPU each time:
        # hash it once for all 50 agents. Logging in still verifies it on the server.
        password_hash = hash_password(PASSWORD)
        monkeypatch.setattr("tests.e2e.harness.hash_password", lambda _: password_hash)
        _enough_file_descriptors(CHATS + 4 * AGENTS + 512)
        started = time.perf_counter()
        wanted = {f"first-{i}": CHAT_SKILLS[i % len(CHAT_SKILLS)] for i in range(CHATS)}
        skill_less = sum(1 for skill in wanted.values() if skill is None)
        expected = min(CHATS, AGENTS * sum(CAPACITIES) // len(CAPACITIES))
        assert skill_less >= expected  # the premise of the exact expectation (docstring)

        nodes = [Server(backend, node_name=f"node-{n}", **HOUSEKEEPING) for n in "ab"]
        db = Database(backend.database_url)
        agents = Agents()
        visitors: list[Client] = []
        try:
            for node in nodes:
                await node.start()
            # Agents come online while the visitors open their sessions and sockets.
            await asyncio.gather(
                _agents_online(backend, nodes, agents), _visitors_ready(nodes, visitors)
            )
            assert sum(agents.capacities) == expected
            ready = time.perf_counter()
            print(f"race test: setup took {ready - started:.1f}s")  # noqa: T201

            outcomes = await _race(visitors, agents, wanted)
            raced = time.perf_counter()
            print(f"race test: the {CHATS} first messages took {raced - ready:.1f}s")  # noqa: T201
            skill_of_chat = _check_acks(outcomes, wanted)
            nodes_of_agents = Counter(w["node"] for w in agents.welcomes.values())
            assert nodes_of_agents == {"node-a": AGENTS // 2, "node-b": AGENTS // 2}

            await _settle(db, expected)
            _pumps_alive(agents)  # every agent socket is still open
            stored = await _stored(db)
            held = _check_database(stored, agents, skill_of_chat, expected)
            last_seq = {str(c.id): c.last_seq for c in stored.conversations}
            await _check_agents(agents, held, last_seq)
            assigned = sum(len(h) for h in held.values())
            # Assigned by a routing pass over the queue rather than when the chat was opened.
            from_queue = sum(
                1 for c in stored.conversations if c.assigned_at not in (None, c.created_at)
            )
            notes = {n: sum(n in line for x in nodes for line in x.output) for n in NOTES}
            print(  # noqa: T201
                f"capacity={expected} assigned={assigned} (from the queue: {from_queue}) "
                f"queued={CHATS - assigned} "
                f"setup={ready - started:.1f}s race={raced - ready:.1f}s "
                f"checks={time.perf_counter() - raced:.1f}s server notes={notes}"
            )
        finally:
            await _shut_down(nodes, agents, visitors, db)
