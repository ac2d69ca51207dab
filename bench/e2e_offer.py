"""End-to-end benchmark: from a visitor's first message to the chosen agent's `offer` frame.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). It
starts real `warmline serve` processes with the e2e harness (`tests/e2e/harness.py`) on a
database of its own (dropped at the end, also on failure), with
`WARMLINE_OFFER_AUTO_ACCEPT=false`, and puts agents online over WebSocket, all with one skill.
Per chat it measures the time from the moment the visitor's `message` frame is written to the
moment the chosen agent's socket receives the matching `offer` (matched by the
`conversation_id` of the visitor's ack). Three scenarios, in one run:

- baseline: one visitor at a time, each after the previous one's offer and a pause (so that
  no chat overlaps the previous one's queue-position push);
- burst: N visitors at once, each opening a session over REST, connecting and sending its
  first message (with `--sockets-first`, all sessions and sockets are opened before, and only
  the first messages go at once);
- sustained: visitors arriving at a steady rate, each doing the same as in the burst.

Agents never answer an offer: an accepted chat would add the accept, the replay of its log and
the close to the load being measured. Capacity is freed by the visitors instead: at the end of
each phase every visitor closes their conversation, which cancels the pending offer
(`offer_withdrawn`) and frees the agent's slot. So each phase must fit in the agents' slots
(agents x capacity); the script refuses otherwise.

Prints markdown tables on stdout (progress goes to stderr). Run from the repository root, with
PostgreSQL and Redis where the e2e tests find them (tests/conftest.py):

    .venv/bin/python bench/e2e_offer.py [--backend postgres|sqlite] [--nodes 1|2] [...]

Figures belong in docs/performance.md with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import math
import os
import platform
import resource
import signal
import socket
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the e2e harness lives in tests/, which is not installed

import asyncpg  # type: ignore[import-untyped]  # noqa: E402 # asyncpg ships no type information
import httpx  # noqa: E402
import orjson  # noqa: E402
import websockets  # noqa: E402
from alembic import command  # noqa: E402
from websockets.asyncio.client import ClientConnection  # noqa: E402

from app.auth.tokens import hash_password  # noqa: E402
from app.store.db import alembic_config  # noqa: E402
from tests.conftest import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, REDIS_URL, Backend, pg_url  # noqa: E402
from tests.e2e import harness  # noqa: E402
from tests.e2e.harness import PASSWORD, Client, Server, create_agent  # noqa: E402

T = TypeVar("T")

SKILL = "bench"
TEXT = "Hello, I was charged twice for my order"
PONG = '{"type":"pong"}'
# Offers must outlive the run: an expiry would re-offer the chat to another agent.
SERVER_OFFER_TIMEOUT = "600"
# Idle sockets (visitors waiting for the cleanup) must not be closed for silence; the interval
# (also the housekeeping period, which runs a routing pass) stays at its default of 10 s.
HEARTBEAT_TIMEOUT = "120"
WELCOME_TIMEOUT = 60.0  # a hello waits for a database connection under the burst's load
ACK_TIMEOUT = 60.0
OFFER_WAIT = 60.0  # how long a phase waits for its last offer before counting it missing
CLOSE_TIMEOUT = 30.0
# What is in flight at once during setup and cleanup (not measured), for a 2-core machine.
AGENTS_CREATED_IN_FLIGHT = 10
# One at a time: a login's Argon2 check (~0.13 s) runs on the server's event loop, so logins are
# serial anyway, and on SQLite it holds the write lock meanwhile: with 4 in flight one login
# was starved past the harness's 5 s HTTP timeout.
LOGINS_IN_FLIGHT = 1
CONNECTS_IN_FLIGHT = 10
CLOSES_IN_FLIGHT = 20
LAG_PROBE = 0.01  # seconds between two probes of the bench's own event-loop lag
PG_PROBE = 0.02  # seconds between two samples of pg_stat_activity (with --pg-activity)
# Server log lines worth counting per phase.
NOTES = {
    "race retried": "lost a race; retrying",
    "lock conflict retried": "hit a lock conflict; retrying",
    "db unavailable": "database unavailable",
    "outbox overflow": "outbox overflow",
    "warnings": "[warning",
    "errors": "[error",
}


def log(message: str) -> None:
    print(f"[e2e_offer {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (as numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


async def bounded(limit: int, jobs: Iterable[Awaitable[T]]) -> list[T]:
    """Await every job, at most `limit` at a time; results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Awaitable[T]) -> T:
        async with gate:
            return await job

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def socket_of(client: Client) -> ClientConnection:
    if client.ws is None:
        raise RuntimeError(f"{client.role} socket is not connected")
    return client.ws


async def hello(client: Client) -> None:
    """`Client.connect()` with more patience for the welcome than the harness's 10 s."""
    await client.connect(hello=False)
    await client.send({"type": "hello", "token": client.token})
    client.welcome = await client.next("welcome", timeout=WELCOME_TIMEOUT)


# -- the agents ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """An offer as the agent's socket received it."""

    at: float  # time.perf_counter() right after the frame was read off the socket
    agent: int
    offer_id: str


@dataclass
class Floor:
    """The agents: one reader per socket, which stamps every offer the moment it arrives and
    answers pings. Agents never accept or decline."""

    clients: list[Client] = field(default_factory=list)
    node_of: list[int] = field(default_factory=list)
    pumps: list[asyncio.Task[None]] = field(default_factory=list)
    offers: dict[str, Seen] = field(default_factory=dict)  # by conversation id, first copy
    withdrawn: set[str] = field(default_factory=set)  # offer ids
    other_frames: Counter[str] = field(default_factory=Counter)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def staff(self, backend: Backend, nodes: list[Server], count: int, capacity: int) -> None:
        """Create `count` agents with the one skill, log them in (alternating nodes), connect."""
        # `create_agent` hashes the shared password with Argon2 (~0.1 s of CPU each): once.
        password_hash = hash_password(PASSWORD)
        with mock.patch.object(harness, "hash_password", return_value=password_hash):

            def agent(i: int) -> Awaitable[str]:
                return create_agent(
                    backend, name=f"Agent{i:03d}", skills={SKILL: 3}, capacity=capacity
                )

            first = await agent(0)  # creates the skill: the others only look it up
            rest = await bounded(AGENTS_CREATED_IN_FLIGHT, (agent(i) for i in range(1, count)))
        emails = [first, *rest]
        self.node_of = [i % len(nodes) for i in range(count)]
        self.clients = await bounded(
            LOGINS_IN_FLIGHT,
            (Client.agent(nodes[n], email) for n, email in zip(self.node_of, emails, strict=True)),
        )
        await bounded(CONNECTS_IN_FLIGHT, (hello(c) for c in self.clients))
        self.pumps = [
            asyncio.create_task(self._pump(i, c), name=f"agent-{i}")
            for i, c in enumerate(self.clients)
        ]

    async def _pump(self, index: int, client: Client) -> None:
        ws = socket_of(client)
        try:
            async for raw in ws:
                at = time.perf_counter()
                frame = orjson.loads(raw)
                kind = frame["type"]
                if kind == "offer":
                    cid = frame["conversation_id"]
                    if cid not in self.offers:
                        self.offers[cid] = Seen(at, index, frame["offer_id"])
                        self.changed.set()
                elif kind == "ping":
                    await ws.send(PONG)
                elif kind == "offer_withdrawn":
                    self.withdrawn.add(frame["offer_id"])
                    self.changed.set()
                else:
                    self.other_frames[frame.get("code") or kind] += 1
        except websockets.ConnectionClosed as closed:
            self.other_frames[f"agent socket closed {closed.rcvd}"] += 1
        self.other_frames["agent socket ended"] += 1

    async def until(self, done: Callable[[], bool], within: float) -> bool:
        """Wait until `done()` is true (re-checked at each offer or withdrawal), or time out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not done():
            self.changed.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True

    async def leave(self) -> None:
        for pump in self.pumps:
            pump.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.close()


# -- the visitors ----------------------------------------------------------------------------


@dataclass
class Visit:
    """One visitor and their first message."""

    client: Client
    cmid: str = field(default_factory=lambda: uuid.uuid4().hex)
    sent: float = 0.0  # time.perf_counter() right after the message frame was written
    acked: float = 0.0
    conversation_id: str | None = None
    failure: str | None = None
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        """Read until the socket ends: the ack, the `conversation.closed`; answer pings."""
        ws = socket_of(self.client)
        try:
            async for raw in ws:
                at = time.perf_counter()
                frame = orjson.loads(raw)
                kind = frame["type"]
                if kind == "ack" and frame["client_msg_id"] == self.cmid:
                    self.acked, self.conversation_id = at, frame["conversation_id"]
                    self.answered.set()
                elif kind == "error":
                    self.failure = self.failure or frame["code"]
                    self.answered.set()
                elif kind == "ping":
                    await ws.send(PONG)
                elif kind == "event" and frame["kind"] == "conversation.closed":
                    self.closed.set()
        except websockets.ConnectionClosed as closed:
            self.failure = self.failure or f"closed {closed.rcvd}"
        finally:
            self.answered.set()
            self.closed.set()


class Visitors:
    """Visitors arriving on the first node: REST session, socket, first message."""

    def __init__(self, node: Server, http: httpx.AsyncClient) -> None:
        self.node = node
        self.http = http
        self.count = 0

    async def enter(self) -> Visit:
        """A visitor session over REST and a socket, hello answered; nothing sent yet."""
        self.count += 1
        response = await self.http.post(
            "/api/v1/visitor/sessions", json={"name": f"Visitor{self.count}"}
        )
        response.raise_for_status()
        visit = Visit(Client(self.node, "visitor", response.json()["token"]))
        await hello(visit.client)
        visit.pump = asyncio.create_task(visit._read())
        return visit

    async def write(self, visit: Visit) -> Visit:
        """Send the first message (stamped once written) and wait for its ack."""
        frame = {"type": "message", "client_msg_id": visit.cmid, "text": TEXT, "skill": SKILL}
        await visit.client.send(frame)
        visit.sent = time.perf_counter()
        try:
            await asyncio.wait_for(visit.answered.wait(), ACK_TIMEOUT)
        except TimeoutError:
            visit.failure = "no ack"
        return visit

    async def arrive(self) -> Visit:
        try:
            visit = await self.enter()
        except Exception as exc:  # a failed arrival is counted; the run goes on
            return Visit(Client(self.node, "visitor", ""), failure=type(exc).__name__)
        return await self.write(visit)

    async def leave(self, visits: Sequence[Visit], floor: Floor) -> None:
        """Each visitor closes their conversation (cancelling its pending offer) and their
        socket; returns once every agent was told its offer is withdrawn: slots are free."""

        async def one(visit: Visit) -> None:
            if visit.conversation_id is not None and visit.client.ws is not None:
                with contextlib.suppress(Exception):
                    await visit.client.send(
                        {"type": "close", "conversation_id": visit.conversation_id}
                    )
                    await asyncio.wait_for(visit.closed.wait(), CLOSE_TIMEOUT)
            with contextlib.suppress(Exception):
                await visit.client.close()
            if visit.pump is not None:
                visit.pump.cancel()
                await asyncio.gather(visit.pump, return_exceptions=True)

        await bounded(CLOSES_IN_FLIGHT, (one(v) for v in visits))
        offer_ids = {
            floor.offers[v.conversation_id].offer_id
            for v in visits
            if v.conversation_id in floor.offers
        }
        if not await floor.until(lambda: offer_ids <= floor.withdrawn, CLOSE_TIMEOUT):
            log(f"{len(offer_ids - floor.withdrawn)} offers not withdrawn after the cleanup")


# -- measuring -------------------------------------------------------------------------------


def _cpu_of(pid: int) -> float:
    """CPU seconds (user + system) of a process, from /proc (0 where there is none)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()  # fields from the 3rd on: utime is the 14th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> float:
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    ticks = [int(x) for x in first]
    idle = ticks[3] + ticks[4]  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Result:
    name: str
    visits: list[Visit]
    floor: Floor
    wall: float = 0.0
    lag_max_ms: float = 0.0
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)  # servers, bench, rest of the machine
    notes: Counter[str] = field(default_factory=Counter)
    pg: Counter[str] = field(default_factory=Counter)  # backends seen in each state, summed
    pg_samples: int = 0

    @property
    def acked(self) -> list[Visit]:
        return [v for v in self.visits if v.conversation_id is not None]

    def latencies(self, *, node: int | None = None) -> list[float]:
        """Milliseconds from message written to offer received, per offered chat."""
        out = []
        for visit in self.acked:
            seen = self.floor.offers.get(visit.conversation_id or "")
            if seen is not None and (node is None or self.floor.node_of[seen.agent] == node):
                out.append((seen.at - visit.sent) * 1000)
        return out

    @property
    def ack_ms(self) -> list[float]:
        return [(v.acked - v.sent) * 1000 for v in self.acked]

    @property
    def window(self) -> float:
        """Seconds from the first message written to the last."""
        sent = [v.sent for v in self.visits if v.sent]
        return max(sent) - min(sent) if sent else 0.0

    @property
    def spread(self) -> Counter[int]:
        """Offers of this phase per agent (by index)."""
        return Counter(
            self.floor.offers[v.conversation_id].agent
            for v in self.acked
            if v.conversation_id in self.floor.offers
        )

    @property
    def failures(self) -> Counter[str]:
        return Counter(v.failure for v in self.visits if v.failure)


class Activity:
    """What the database's backends of the bench database are doing, sampled from
    `pg_stat_activity` (opt-in: the sampling is itself a little load)."""

    QUERY = (
        "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
        "WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle'"
    )

    def __init__(self, database: str) -> None:
        self.database = database
        self.conn: Any = None

    async def open(self) -> None:
        self.conn = await asyncpg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB
        )

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    async def sample(self, result: Result) -> None:
        """Until cancelled: count, per sample, the backends in each state."""
        while True:
            for state, kind, event in await self.conn.fetch(self.QUERY, self.database):
                if state == "active" and kind is None:
                    result.pg["running"] += 1
                elif state == "active":
                    result.pg[f"waiting on {kind}/{event}"] += 1
                else:
                    result.pg[state] += 1  # idle in transaction: the server holds it, not PG
            result.pg_samples += 1
            await asyncio.sleep(PG_PROBE)


@contextlib.asynccontextmanager
async def measured(
    result: Result, servers: list[Server], activity: Activity | None
) -> AsyncIterator[None]:
    """Time a phase; record the bench's own loop lag, CPU use, the servers' log notes, and
    what the database's backends did (with `activity`)."""
    log(f"{result.name}: measuring")
    loop = asyncio.get_running_loop()
    lags: list[float] = []

    async def probe() -> None:
        while True:
            before = loop.time()
            await asyncio.sleep(LAG_PROBE)
            lags.append(loop.time() - before - LAG_PROBE)

    pids = [s.process.pid for s in servers if s.process is not None]
    lines = [len(s.output) for s in servers]
    servers_cpu, bench_cpu, busy = sum(map(_cpu_of, pids)), _self_cpu(), _machine_busy()
    probers = [asyncio.create_task(probe())]
    if activity is not None:
        probers.append(asyncio.create_task(activity.sample(result)))
    started = time.perf_counter()
    try:
        yield
    finally:
        result.wall = time.perf_counter() - started
        for prober in probers:
            prober.cancel()
        await asyncio.gather(*probers, return_exceptions=True)
        result.lag_max_ms = max(lags, default=0.0) * 1000
        servers_cpu = sum(map(_cpu_of, pids)) - servers_cpu
        bench_cpu = _self_cpu() - bench_cpu
        result.cpu = (servers_cpu, bench_cpu, _machine_busy() - busy - servers_cpu - bench_cpu)
        for server, start in zip(servers, lines, strict=True):
            for line in server.output[start:]:
                for note, marker in NOTES.items():
                    result.notes[note] += marker in line


class Bench:
    def __init__(
        self,
        servers: list[Server],
        floor: Floor,
        visitors: Visitors,
        *,
        gap: float,
        activity: Activity | None,
    ) -> None:
        self.servers = servers
        self.floor = floor
        self.visitors = visitors
        self.gap = gap
        self.activity = activity

    def _result(self, name: str, visits: list[Visit]) -> Result:
        return Result(name, visits, self.floor)

    async def _offers(self, visits: Sequence[Visit]) -> None:
        wanted = {v.conversation_id for v in visits if v.conversation_id is not None}
        if not await self.floor.until(lambda: wanted <= self.floor.offers.keys(), OFFER_WAIT):
            log(f"{len(wanted - self.floor.offers.keys())} chats got no offer in time")

    async def one_at_a_time(self, name: str, samples: int) -> Result:
        """Chats one after the other, each after the previous one's offer and a pause. Offers
        stay pending until the end, as in the other phases: the chats spread over the agents
        (lowest load ratio first) instead of all going to the same idle agent."""
        result = self._result(name, [])
        async with measured(result, self.servers, self.activity):
            for _ in range(samples):
                visit = await self.visitors.arrive()
                result.visits.append(visit)
                await self._offers([visit])
                await asyncio.sleep(self.gap)
        await self.visitors.leave(result.visits, self.floor)
        await asyncio.sleep(self.gap)
        return result

    async def burst(self, count: int, *, sockets_first: bool) -> Result:
        visits: list[Visit] = []
        if sockets_first:
            visits = list(await asyncio.gather(*(self.visitors.enter() for _ in range(count))))
            await asyncio.sleep(self.gap)
        what = "first messages" if sockets_first else "visitors"
        result = self._result(f"burst: {count} {what} at once", [])
        async with measured(result, self.servers, self.activity):
            if sockets_first:
                result.visits = list(
                    await asyncio.gather(*(self.visitors.write(v) for v in visits))
                )
            else:
                arrivals = (self.visitors.arrive() for _ in range(count))
                result.visits = list(await asyncio.gather(*arrivals))
            await self._offers(result.visits)
        await self.visitors.leave(result.visits, self.floor)
        await asyncio.sleep(self.gap)
        return result

    async def sustained(self, rate: float, seconds: float) -> Result:
        count = round(rate * seconds)
        result = self._result(f"sustained: {rate:g} chats/s for {seconds:g} s", [])
        loop = asyncio.get_running_loop()
        async with measured(result, self.servers, self.activity):
            start = loop.time()
            arrivals = []
            for i in range(count):
                delay = start + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                arrivals.append(asyncio.create_task(self.visitors.arrive()))
            result.visits = list(await asyncio.gather(*arrivals))
            await self._offers(result.visits)
        await self.visitors.leave(result.visits, self.floor)
        await asyncio.sleep(self.gap)
        return result


# -- reporting -------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"  # NaN: no sample


def _ratio(value: float, base: float) -> str:
    return "-" if math.isnan(value) or math.isnan(base) or not base else f"{value / base:.2f}"


def render(args: argparse.Namespace, results: list[Result], started: datetime) -> str:
    base = percentile(results[0].latencies(), 50)
    backend = "PostgreSQL + Redis" if args.backend == "postgres" else "SQLite + in-process bus"
    out = [
        f"### Offer latency: {backend}, {args.nodes} node(s), {args.agents} agents x "
        f"capacity {args.capacity}",
        "",
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Latency: visitor's `message` frame written -> chosen "
        "agent's socket receives the `offer`. Ratios: to the baseline p50.",
        "",
        "| scenario | chats | offers | p50 ms | p90 ms | p99 ms | max ms "
        "| p50/base | p90/base | p99/base | max/base |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lat = r.latencies()
        points = [percentile(lat, q) for q in (50, 90, 99, 100)]
        out.append(
            f"| {r.name} | {len(r.visits)} | {len(lat)} | "
            + " | ".join(_ms(p) for p in points)
            + " | "
            + " | ".join(_ratio(p, base) for p in points)
            + " |"
        )
    out += [
        "",
        "| scenario | ack p50 ms | ack p90 ms | messages written over s | phase wall s "
        "| CPU s: servers / bench / rest | bench loop lag max ms | agents offered (most to one) "
        "| failures | server log notes |",
        "|---|--:|--:|--:|--:|--|--:|--:|--|--|",
    ]
    for r in results:
        notes = ", ".join(f"{k} {v}" for k, v in r.notes.items() if v) or "none"
        failures = ", ".join(f"{k} {v}" for k, v in r.failures.items()) or "none"
        out.append(
            f"| {r.name} | {_ms(percentile(r.ack_ms, 50))} | {_ms(percentile(r.ack_ms, 90))} "
            f"| {r.window:.2f} | {r.wall:.1f} | {r.cpu[0]:.1f} / {r.cpu[1]:.1f} / {r.cpu[2]:.1f} "
            f"| {r.lag_max_ms:.0f} | {len(r.spread)} ({max(r.spread.values(), default=0)}) "
            f"| {failures} | {notes} |"
        )
    if args.nodes == 2:
        out += [
            "",
            "| scenario | p50 ms, agent on the visitors' node | p50 ms, agent on the other node |",
            "|---|--:|--:|",
        ]
        for r in results:
            same, other = r.latencies(node=0), r.latencies(node=1)
            out.append(
                f"| {r.name} | {_ms(percentile(same, 50))} ({len(same)}) "
                f"| {_ms(percentile(other, 50))} ({len(other)}) |"
            )
    if any(r.pg_samples for r in results):
        out += [
            "",
            "| scenario | PostgreSQL backends of the bench database, on average over the phase |",
            "|---|---|",
        ]
        for r in results:
            states = ", ".join(f"{state} {n / r.pg_samples:.2f}" for state, n in r.pg.most_common())
            out.append(f"| {r.name} | {states or 'none busy'} ({r.pg_samples} samples) |")
    if results and results[0].floor.other_frames:
        out += ["", f"Other frames on agent sockets: {dict(results[0].floor.other_frames)}"]
    return "\n".join(out)


# -- setup -----------------------------------------------------------------------------------


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def backend_for(kind: str) -> Iterator[Backend]:
    """A migrated database of the bench's own, removed afterwards whatever happens."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="warmline_bench_") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'warmline.db'}"
            command.upgrade(alembic_config(url), "head")
            yield Backend("sqlite", url, None)
        return
    redis_host, _, redis_port = REDIS_URL.split("://", 1)[1].split("/", 1)[0].rpartition(":")
    for service, host, port in (
        ("PostgreSQL", PG_HOST, PG_PORT),
        ("Redis", redis_host or "127.0.0.1", int(redis_port or 6379)),
    ):
        if not _reachable(host, port):
            raise SystemExit(f"e2e_offer: {service} is not reachable at {host}:{port}")
    name = f"warmline_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        log(f"database {name}: migrating")
        command.upgrade(alembic_config(pg_url(name)), "head")
        yield Backend("postgres", pg_url(name), REDIS_URL)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        log(f"database {name}: dropped")


def _write_logs(servers: list[Server], path: Path) -> None:
    with path.open("w") as out:
        for n, server in enumerate(servers):
            out.write(f"===== node {n} :{server.port} =====\n")
            out.writelines(server.output)


async def _stop(servers: list[Server], log_path: str | None) -> None:
    for server in servers:
        # The harness prints the server's log tail on stdout: keep stdout for the tables.
        with contextlib.redirect_stdout(io.StringIO()):
            await server.stop(allow_errors=True)
    if log_path:
        await asyncio.to_thread(_write_logs, servers, Path(log_path))
    errors = [line for s in servers for line in s.output if "[error" in line or "Traceback" in line]
    for line in errors[:5]:
        log(f"server error: {line.rstrip()}")


async def run(args: argparse.Namespace, backend: Backend) -> str:
    this = asyncio.current_task()
    if this is not None:  # SIGTERM: stop the servers and drop the database, as on Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    started = datetime.now(UTC)
    servers = [
        Server(
            backend,
            node_name=f"bench-{n}",
            offer_auto_accept="false",
            offer_timeout=SERVER_OFFER_TIMEOUT,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
        )
        for n in range(args.nodes)
    ]
    floor = Floor()
    activity = None
    try:
        if args.pg_activity and backend.is_postgres:
            activity = Activity(backend.database_url.rsplit("/", 1)[1])
            await activity.open()
        for server in servers:
            await server.start()
        log(f"{args.nodes} node(s) up; {args.agents} agents coming online")
        await floor.staff(backend, servers, args.agents, args.capacity)
        limits = httpx.Limits(max_connections=args.burst + 10, max_keepalive_connections=100)
        async with httpx.AsyncClient(base_url=servers[0].http, timeout=60, limits=limits) as http:
            bench = Bench(
                servers, floor, Visitors(servers[0], http), gap=args.gap, activity=activity
            )
            if args.warmup:
                await bench.one_at_a_time("warm-up", args.warmup)
            log(f"baseline: {args.samples} chats, one at a time")
            results = [await bench.one_at_a_time("baseline: 1 at a time", args.samples)]
            log(f"burst: {args.burst} visitors")
            results.append(await bench.burst(args.burst, sockets_first=args.sockets_first))
            log(f"sustained: {args.rate:g} chats/s for {args.seconds:g} s")
            results.append(await bench.sustained(args.rate, args.seconds))
    finally:
        await floor.leave()
        await _stop(servers, args.server_log)
        if activity is not None:
            await activity.close()
    return render(args, results, started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--nodes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument("--samples", type=int, default=50, help="baseline chats")
    parser.add_argument("--burst", type=int, default=200, help="visitors in the burst")
    parser.add_argument(
        "--sockets-first",
        action="store_true",
        help="open the burst's sessions and sockets first; only the messages go at once",
    )
    parser.add_argument("--rate", type=float, default=20.0, help="sustained chats per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="sustained duration")
    parser.add_argument("--warmup", type=int, default=5, help="chats before the baseline")
    parser.add_argument(
        "--gap", type=float, default=0.5, help="seconds of quiet between chats and phases"
    )
    parser.add_argument("--server-log", metavar="PATH", help="write the servers' logs here")
    parser.add_argument(
        "--pg-activity",
        action="store_true",
        help="sample pg_stat_activity every 20 ms: what PostgreSQL's backends wait on",
    )
    args = parser.parse_args(argv)
    slots = args.agents * args.capacity
    if args.nodes == 2 and args.backend == "sqlite":
        parser.error("--nodes 2 needs --backend postgres (nodes share PostgreSQL and Redis)")
    if args.agents < 1 or args.capacity < 1 or args.samples < 1 or args.rate <= 0:
        parser.error("--agents, --capacity, --samples and --rate must be positive")
    if not 0 <= args.warmup <= slots:
        parser.error(f"--warmup needs 0 to agents x capacity = {slots}")
    for what, chats in (
        ("--samples", args.samples),
        ("--burst", args.burst),
        ("--rate x --seconds", round(args.rate * args.seconds)),
    ):
        if not 1 <= chats <= slots:
            parser.error(f"{what} is {chats:g} chats: needs 1 to agents x capacity = {slots}")
    try:
        with backend_for(args.backend) as backend:
            report = asyncio.run(run(args, backend))
    except (KeyboardInterrupt, asyncio.CancelledError):  # Ctrl-C, or SIGTERM (see `run`)
        log("interrupted: servers stopped, database removed")
        return 130
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
