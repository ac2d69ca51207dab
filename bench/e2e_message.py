"""End-to-end benchmark: a visitor's message in a chat an agent holds, to its ack and to the agent.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). Like
`bench/e2e_offer.py`, whose helpers it imports, it starts real `warmline serve` processes with
the e2e harness (`tests/e2e/harness.py`) on a database of its own (dropped at the end, also on
failure) and puts agents online over WebSocket, all with one skill; offers keep their default
(auto-accept: a chat is assigned to the chosen agent at once). Each visitor opens a chat with a
first message and waits until the agent holding it has received that message (the replay from
seq 1 that an assignment sends), which is setup and not measured. Then each visitor sends
`--messages` messages one after the other, each once the previous one is acked (and, with
`--pause`, that many seconds more). Per message:

- ack: from the moment the `message` frame is written to the moment the visitor's socket reads
  the matching `ack`;
- agent: from the same moment to the moment the holding agent's socket reads the `message`
  event (matched by `client_msg_id`).

Three phases, in one run, after a warm-up that is not counted:

- one at a time: `--serial` visitors, one after the other, each sending all of its messages
  (their chats are open meanwhile, but nobody else writes);
- idle: the concurrent phase's chats open for `--idle` seconds before they talk, nobody
  writing: the CPU the servers use for their timers and heartbeats alone;
- concurrent: `--visitors` visitors at once, each sending its messages one after the other.

Messages per second: acked messages over the time from the phase's first message written to its
last ack (pauses included). Server CPU per message: the Warmline processes' CPU over the
phase, divided by the messages acked (timers included).

A visitor's next message waits on the server for whatever the node still does after the
previous message's ack on that socket (frames of one socket are handled in order): without a
pause, the ack of each message after the first also holds that work; with `--pause` longer
than it, the ack shows the message's own path only.

Each phase ends with every visitor closing their chat, which frees the agents' slots; so a phase
must fit in the agents' slots (agents x capacity). Agents never write: an agent's reply would add
its own unit of work to the load measured. The message text is neutral and names no escalation
phrase, so no chat is escalated by what it says. Keep a phase under two minutes: past
`unanswered_alert_seconds` (120 s by default) the watchdog alerts the agents of customers still
waiting for a reply (counted as `alert` frames).

Prints markdown tables on stdout (progress goes to stderr). Run from the repository root, with
PostgreSQL and Redis where the e2e tests find them (tests/conftest.py):

    .venv/bin/python bench/e2e_message.py [--backend postgres|sqlite] [--nodes 1|2] [...]

Figures belong in docs/performance.md with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import orjson
import websockets

# The sibling benchmark (sys.path[0] is bench/ when run as a script); importing it also puts the
# repository root on sys.path, for `tests` below.
from e2e_offer import (
    CONNECTS_IN_FLIGHT,
    HEARTBEAT_TIMEOUT,
    LAG_PROBE,
    NOTES,
    PONG,
    SKILL,
    Floor,
    _cpu_of,
    _machine_busy,
    _ms,
    _ratio,
    _self_cpu,
    _stop,
    backend_for,
    bounded,
    hello,
    percentile,
    socket_of,
)
from typing_extensions import override

from tests.conftest import Backend
from tests.e2e.harness import Client, Server

# Neutral words only (none in the sentiment lexicon) and no escalation phrase: the message must
# cost what an ordinary message costs, on any version.
TEXT = "Message {k}: could you look at the delivery address on order 48213, please?"
ACK_TIMEOUT = 60.0
DELIVERY_WAIT = 30.0  # how long a phase waits for the agents to receive its last message
READY_WAIT = 60.0  # how long the setup waits for every chat to reach its agent
CLOSE_TIMEOUT = 30.0
CLOSES_IN_FLIGHT = 20


def log(message: str) -> None:
    print(f"[e2e_message {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the agents ------------------------------------------------------------------------------


@dataclass
class Desk(Floor):
    """The agents (`Floor.staff` logs them in): one reader per socket, which stamps every
    visitor's `message` event the moment it arrives and answers pings. Agents never write."""

    received: dict[str, float] = field(default_factory=dict)  # by client_msg_id, first copy
    holder: dict[str, int] = field(default_factory=dict)  # conversation id -> agent index
    closed: set[str] = field(default_factory=set)  # conversation ids

    @override
    async def _pump(self, index: int, client: Client) -> None:
        ws = socket_of(client)
        try:
            async for raw in ws:
                at = time.perf_counter()
                frame = orjson.loads(raw)
                kind = frame["type"]
                if kind == "event":
                    event = frame["kind"]
                    if event == "message" and frame["sender"]["type"] == "visitor":
                        cmid = frame["client_msg_id"]
                        if cmid not in self.received:
                            self.received[cmid] = at
                            self.holder.setdefault(frame["conversation_id"], index)
                            self.changed.set()
                    elif event == "conversation.closed":
                        self.closed.add(frame["conversation_id"])
                        self.changed.set()
                elif kind == "ping":
                    await ws.send(PONG)
                else:
                    self.other_frames[frame.get("code") or kind] += 1
        except websockets.ConnectionClosed as closed:
            self.other_frames[f"agent socket closed {closed.rcvd}"] += 1
        self.other_frames["agent socket ended"] += 1


# -- the visitors ----------------------------------------------------------------------------


@dataclass
class Sent:
    """One message: when it was written, acked and received by the agent."""

    cmid: str
    conversation_id: str | None = None
    sent: float = 0.0  # time.perf_counter() right after the message frame was written
    acked: float = 0.0
    failure: str | None = None


@dataclass
class Chat:
    """One visitor with a chat that an agent holds."""

    client: Client
    first: str = field(default_factory=lambda: uuid.uuid4().hex)  # the opening message
    conversation_id: str | None = None
    failure: str | None = None
    waiting: Sent | None = None  # the message whose ack is awaited
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    pump: asyncio.Task[None] | None = None

    async def _read(self) -> None:
        """Read until the socket ends: acks, errors, `conversation.closed`; answer pings."""
        ws = socket_of(self.client)
        try:
            async for raw in ws:
                at = time.perf_counter()
                frame = orjson.loads(raw)
                kind = frame["type"]
                waiting = self.waiting
                if kind == "ack" and waiting is not None and frame["client_msg_id"] == waiting.cmid:
                    waiting.acked, waiting.conversation_id = at, frame["conversation_id"]
                    self.conversation_id = self.conversation_id or frame["conversation_id"]
                    self.answered.set()
                elif kind == "error" and waiting is not None:
                    waiting.failure = waiting.failure or frame["code"]
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

    async def say(self, cmid: str, text: str, **extra: str) -> Sent:
        """Write one message (stamped once written) and wait for its ack."""
        sent = Sent(cmid)
        self.waiting = sent
        self.answered.clear()
        frame = {"type": "message", "client_msg_id": cmid, "text": text, **extra}
        await self.client.send(frame)
        sent.sent = time.perf_counter()
        try:
            await asyncio.wait_for(self.answered.wait(), ACK_TIMEOUT)
        except TimeoutError:
            sent.failure = "no ack"
        if not sent.acked and sent.failure is None:
            sent.failure = self.failure or "no ack"
        self.waiting = None
        return sent

    async def talk(self, count: int, *, pause: float = 0.0) -> list[Sent]:
        """`count` messages, each once the previous one is acked and `pause` seconds more."""
        out = []
        for k in range(count):
            if k and pause:
                await asyncio.sleep(pause)
            sent = await self.say(uuid.uuid4().hex, TEXT.format(k=k + 1))
            out.append(sent)
            if sent.failure is not None and self.failure is not None:
                break  # the socket is gone: the rest would fail the same way
        return out


class Visitors:
    """Visitors on the first node: REST session, socket, a first message that opens a chat."""

    def __init__(self, node: Server, http: httpx.AsyncClient, desk: Desk) -> None:
        self.node = node
        self.http = http
        self.desk = desk
        self.count = 0
        self.left_out = 0  # chats of the last `open` that could not be opened or reached no agent

    async def _open(self) -> Chat:
        self.count += 1
        response = await self.http.post(
            "/api/v1/visitor/sessions", json={"name": f"Visitor{self.count}"}
        )
        response.raise_for_status()
        chat = Chat(Client(self.node, "visitor", response.json()["token"]))
        await hello(chat.client)
        chat.pump = asyncio.create_task(chat._read())
        opened = await chat.say(chat.first, "Hello, a question about my order", skill=SKILL)
        chat.failure = chat.failure or opened.failure
        return chat

    async def open(self, count: int) -> list[Chat]:
        """`count` chats, each held by an agent who has received its first message."""

        async def one() -> Chat:
            try:
                return await self._open()
            except Exception as exc:  # counted; the run goes on without this chat
                return Chat(Client(self.node, "visitor", ""), failure=type(exc).__name__)

        chats = await bounded(CONNECTS_IN_FLIGHT, (one() for _ in range(count)))
        ready = [c for c in chats if c.failure is None and c.conversation_id is not None]
        firsts = {c.first for c in ready}
        if not await self.desk.until(lambda: firsts <= self.desk.received.keys(), READY_WAIT):
            log(f"{len(firsts - self.desk.received.keys())} chats did not reach an agent")
        usable = [c for c in ready if c.first in self.desk.received]
        left_out = [c for c in chats if c not in usable]
        self.left_out = len(left_out)
        if left_out:
            failed = Counter(c.failure or "not received by an agent" for c in left_out)
            log(f"{len(left_out)} chats left out of the phase: {dict(failed)}")
            await self.close(left_out, agents_told=False)
        return usable

    async def close(self, chats: Sequence[Chat], *, agents_told: bool = True) -> None:
        """Each visitor closes their chat and their socket; returns once every agent was told
        (their slots are free), unless not `agents_told`."""

        async def one(chat: Chat) -> None:
            if chat.conversation_id is not None and chat.client.ws is not None:
                with contextlib.suppress(Exception):
                    await chat.client.send(
                        {"type": "close", "conversation_id": chat.conversation_id}
                    )
                    await asyncio.wait_for(chat.closed.wait(), CLOSE_TIMEOUT)
            with contextlib.suppress(Exception):
                await chat.client.close()
            if chat.pump is not None:
                chat.pump.cancel()
                await asyncio.gather(chat.pump, return_exceptions=True)

        await bounded(CLOSES_IN_FLIGHT, (one(c) for c in chats))
        ids = {c.conversation_id for c in chats if c.conversation_id is not None}
        if agents_told and not await self.desk.until(
            lambda: ids <= self.desk.closed, CLOSE_TIMEOUT
        ):
            log(f"{len(ids - self.desk.closed)} chats not seen closed by their agents")


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    chats: int
    desk: Desk
    sent: list[Sent] = field(default_factory=list)
    wall: float = 0.0
    lag_max_ms: float = 0.0
    cpu: tuple[float, float, float] = (0.0, 0.0, 0.0)  # servers, bench, rest of the machine
    notes: Counter[str] = field(default_factory=Counter)
    alerts: int = 0  # watchdog alerts the agents got during the phase
    left_out: int = 0  # chats that could not be opened for the phase

    @property
    def acked(self) -> list[Sent]:
        return [s for s in self.sent if s.acked]

    @property
    def ack_ms(self) -> list[float]:
        return [(s.acked - s.sent) * 1000 for s in self.acked]

    @property
    def agent_ms(self) -> list[float]:
        """Milliseconds from message written to the agent's socket reading it."""
        out = []
        for s in self.acked:
            at = self.desk.received.get(s.cmid)
            if at is not None:
                out.append((at - s.sent) * 1000)
        return out

    @property
    def rate(self) -> float:
        """Messages acked per second, from the first message written to the last ack."""
        acked = self.acked
        if not acked:
            return float("nan")
        span = max(s.acked for s in acked) - min(s.sent for s in acked)
        return len(acked) / span if span > 0 else float("nan")

    @property
    def server_cpu_ms(self) -> float:
        """The servers' CPU per acked message, in ms (everything they did in the phase)."""
        acked = len(self.acked)
        return self.cpu[0] * 1000 / acked if acked else float("nan")

    @property
    def failures(self) -> Counter[str]:
        failed = Counter(s.failure for s in self.sent if s.failure)
        if self.left_out:
            failed["chats not opened"] = self.left_out
        return failed


@contextlib.asynccontextmanager
async def measured(result: Result, servers: list[Server]) -> AsyncIterator[None]:
    """Time a phase; record the bench's own loop lag, CPU use and the servers' log notes."""
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
    alerts = result.desk.other_frames["alert"]
    servers_cpu, bench_cpu, busy = sum(map(_cpu_of, pids)), _self_cpu(), _machine_busy()
    prober = asyncio.create_task(probe())
    started = time.perf_counter()
    try:
        yield
    finally:
        result.wall = time.perf_counter() - started
        prober.cancel()
        await asyncio.gather(prober, return_exceptions=True)
        result.lag_max_ms = max(lags, default=0.0) * 1000
        servers_cpu = sum(map(_cpu_of, pids)) - servers_cpu
        bench_cpu = _self_cpu() - bench_cpu
        result.cpu = (servers_cpu, bench_cpu, _machine_busy() - busy - servers_cpu - bench_cpu)
        result.alerts = result.desk.other_frames["alert"] - alerts
        for server, start in zip(servers, lines, strict=True):
            for line in server.output[start:]:
                for note, marker in NOTES.items():
                    result.notes[note] += marker in line


class Bench:
    def __init__(
        self, servers: list[Server], desk: Desk, visitors: Visitors, *, gap: float, pause: float
    ) -> None:
        self.servers = servers
        self.desk = desk
        self.visitors = visitors
        self.gap = gap
        self.pause = pause

    async def _delivered(self, result: Result) -> None:
        wanted = {s.cmid for s in result.acked}
        if not await self.desk.until(lambda: wanted <= self.desk.received.keys(), DELIVERY_WAIT):
            log(f"{len(wanted - self.desk.received.keys())} messages did not reach their agent")

    async def one_at_a_time(self, name: str, visitors: int, messages: int) -> Result:
        chats = await self.visitors.open(visitors)
        await asyncio.sleep(self.gap)
        result = Result(name, len(chats), self.desk, left_out=self.visitors.left_out)
        async with measured(result, self.servers):
            for chat in chats:
                result.sent += await chat.talk(messages, pause=self.pause)
            await self._delivered(result)
        await self.visitors.close(chats)
        await asyncio.sleep(self.gap)
        return result

    async def concurrent(
        self, visitors: int, messages: int, *, idle: float
    ) -> tuple[Result, Result | None]:
        """The chats talking at once; before that, with `idle`, as many seconds of the same
        chats open and nobody writing (what the node's timers and heartbeats cost alone)."""
        chats = await self.visitors.open(visitors)
        await asyncio.sleep(self.gap)
        quiet = None
        if idle > 0:
            quiet = Result(f"idle: {len(chats)} chats open for {idle:g} s", len(chats), self.desk)
            async with measured(quiet, self.servers):
                await asyncio.sleep(idle)
        result = Result(
            f"concurrent: {visitors} visitors at once",
            len(chats),
            self.desk,
            left_out=self.visitors.left_out,
        )
        async with measured(result, self.servers):
            talks = (c.talk(messages, pause=self.pause) for c in chats)
            for sent in await asyncio.gather(*talks):
                result.sent += sent
            await self._delivered(result)
        await self.visitors.close(chats)
        await asyncio.sleep(self.gap)
        return result, quiet


# -- reporting -------------------------------------------------------------------------------


def render(
    args: argparse.Namespace, results: list[Result], idle: Result | None, started: datetime
) -> str:
    base = percentile(results[0].ack_ms, 50)
    backend = "PostgreSQL + Redis" if args.backend == "postgres" else "SQLite + in-process bus"
    out = [
        f"### Message latency: {backend}, {args.nodes} node(s), {args.agents} agents x "
        f"capacity {args.capacity}, {args.messages} messages per visitor"
        + (f", {args.pause:g} s between an ack and the next message" if args.pause else ""),
        "",
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}. Ack: visitor's `message` frame written -> its `ack` read; "
        "agent: the same -> the holding agent's socket reads the `message` event. Ratios: to "
        "the first phase's ack p50.",
        "",
        "| phase | chats | messages | acked | ack p50 ms | ack p95 ms | ack p99 ms | ack max ms "
        "| agent p50 ms | agent p95 ms | agent p99 ms | ack p50/base | ack p95/base "
        "| ack p99/base |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        ack = [percentile(r.ack_ms, q) for q in (50, 95, 99, 100)]
        agent = [percentile(r.agent_ms, q) for q in (50, 95, 99)]
        out.append(
            f"| {r.name} | {r.chats} | {len(r.sent)} | {len(r.acked)} | "
            + " | ".join(_ms(p) for p in (*ack, *agent))
            + " | "
            + " | ".join(_ratio(p, base) for p in ack[:3])
            + " |"
        )
    out += [
        "",
        "| phase | messages/s | phase wall s | server CPU ms per message "
        "| CPU s: servers / bench / rest | bench loop lag max ms | received by agents "
        "| failures | server log notes |",
        "|---|--:|--:|--:|--|--:|--:|--|--|",
    ]
    for r in results:
        notes = ", ".join(f"{k} {v}" for k, v in r.notes.items() if v)
        if r.alerts:
            notes = ", ".join(filter(None, (notes, f"watchdog alerts {r.alerts}")))
        failures = ", ".join(f"{k} {v}" for k, v in r.failures.items()) or "none"
        out.append(
            f"| {r.name} | {r.rate:.1f} | {r.wall:.1f} | {r.server_cpu_ms:.1f} "
            f"| {r.cpu[0]:.1f} / {r.cpu[1]:.1f} / {r.cpu[2]:.1f} | {r.lag_max_ms:.0f} "
            f"| {len(r.agent_ms)} | {failures} | {notes or 'none'} |"
        )
    if args.nodes == 2:
        out += [
            "",
            "| phase | agent p50 ms, agent on the visitors' node | agent on the other node |",
            "|---|--:|--:|",
        ]
        for r in results:
            split: dict[int, list[float]] = {0: [], 1: []}
            for s in r.acked:
                at = r.desk.received.get(s.cmid)
                holder = r.desk.holder.get(s.conversation_id or "")
                if at is not None and holder is not None:
                    split[r.desk.node_of[holder]].append((at - s.sent) * 1000)
            out.append(
                f"| {r.name} | {_ms(percentile(split[0], 50))} ({len(split[0])}) "
                f"| {_ms(percentile(split[1], 50))} ({len(split[1])}) |"
            )
    if idle is not None:
        out += [
            "",
            f"{idle.name}, nobody writing: the servers used {idle.cpu[0] / idle.wall * 1000:.0f} "
            f"ms of CPU per second (bench {idle.cpu[1] / idle.wall * 1000:.0f}, rest of the "
            f"machine {idle.cpu[2] / idle.wall * 1000:.0f}).",
        ]
    if results and results[0].desk.other_frames:
        out += ["", f"Other frames on agent sockets: {dict(results[0].desk.other_frames)}"]
    return "\n".join(out)


# -- setup -----------------------------------------------------------------------------------


async def run(args: argparse.Namespace, backend: Backend) -> str:
    this = asyncio.current_task()
    if this is not None:  # SIGTERM: stop the servers and drop the database, as on Ctrl-C
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, this.cancel)
    started = datetime.now(UTC)
    servers = [
        Server(backend, node_name=f"bench-{n}", heartbeat_timeout=HEARTBEAT_TIMEOUT)
        for n in range(args.nodes)
    ]
    desk = Desk()
    try:
        for server in servers:
            await server.start()
        log(f"{args.nodes} node(s) up; {args.agents} agents coming online")
        await desk.staff(backend, servers, args.agents, args.capacity)
        limits = httpx.Limits(max_connections=CONNECTS_IN_FLIGHT + 10)
        async with httpx.AsyncClient(base_url=servers[0].http, timeout=60, limits=limits) as http:
            visitors = Visitors(servers[0], http, desk)
            bench = Bench(servers, desk, visitors, gap=args.gap, pause=args.pause)
            if args.warmup:
                await bench.one_at_a_time("warm-up", args.warmup, args.messages)
            log(f"one at a time: {args.serial} visitors x {args.messages} messages")
            results = [await bench.one_at_a_time("one at a time", args.serial, args.messages)]
            log(f"concurrent: {args.visitors} visitors x {args.messages} messages")
            talked, idle = await bench.concurrent(args.visitors, args.messages, idle=args.idle)
            results.append(talked)
    finally:
        await desk.leave()
        await _stop(servers, args.server_log)
    return render(args, results, idle, started)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--nodes", type=int, choices=[1, 2], default=1)
    parser.add_argument("--agents", type=int, default=25)
    parser.add_argument("--capacity", type=int, default=4)
    parser.add_argument(
        "--serial", type=int, default=10, help="visitors talking one after the other"
    )
    parser.add_argument("--visitors", type=int, default=50, help="visitors talking at once")
    parser.add_argument("--messages", type=int, default=50, help="messages per visitor")
    parser.add_argument(
        "--idle",
        type=float,
        default=5.0,
        help="seconds measured with the concurrent phase's chats open before they talk",
    )
    parser.add_argument("--warmup", type=int, default=2, help="visitors before the phases")
    parser.add_argument(
        "--pause",
        type=float,
        default=0.0,
        help="seconds a visitor waits after an ack before its next message",
    )
    parser.add_argument("--gap", type=float, default=0.5, help="seconds of quiet between phases")
    parser.add_argument("--server-log", metavar="PATH", help="write the servers' logs here")
    args = parser.parse_args(argv)
    slots = args.agents * args.capacity
    if args.nodes == 2 and args.backend == "sqlite":
        parser.error("--nodes 2 needs --backend postgres (nodes share PostgreSQL and Redis)")
    if args.agents < 1 or args.capacity < 1 or args.messages < 1:
        parser.error("--agents, --capacity and --messages must be positive")
    if args.idle < 0 or args.pause < 0:
        parser.error("--idle and --pause must not be negative")
    for what, chats in (
        ("--warmup", args.warmup),
        ("--serial", args.serial),
        ("--visitors", args.visitors),
    ):
        if not (0 if what == "--warmup" else 1) <= chats <= slots:
            parser.error(f"{what} is {chats}: needs at most agents x capacity = {slots}")
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
