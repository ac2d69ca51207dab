"""Benchmark of the conversation and transfer reports over 100,000 stored conversations.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). On a
database of its own (dropped at the end), migrated to head, it bulk-loads seeded, deterministic
`conversation_metrics` rows (the figures Warmline keeps per closed conversation) spread over 90
days, with 20 skills, 200 agents and a few tags, then times `reports.repository.totals()` (the
query `GET /api/v1/reports/conversations` runs, plus its total) for each `group_by`, over the
whole 90 days and over the last 7, and prints one JSON object: the median and best wall time
of each, in milliseconds.

For the transfer report it also stores each conversation itself with a realistic log (about 14
events: opening, queueing, assignment, messages, close; a transfer adds its own) and the
`transfers` rows: 20 % of the handled conversations transferred (warm, cold, escalations), a
tenth of those back to their first agent (ping-pong), and declined, expired and cancelled
transfers in others; then times what `GET /api/v1/reports/transfers` runs (`transfers/...`):
the transfer queries, the ping-pong query alone, and the whole answer.

Run from the repository root: `.venv/bin/python bench/reports.py [--rows N] [--repeats N]
[--backend postgres|sqlite]`. PostgreSQL by default (127.0.0.1:5432, as the tests). Figures
belong in docs/performance.md#reports-benchreportspy with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the test settings live in tests/, which is not installed

import asyncpg  # type: ignore[import-untyped]  # noqa: E402 # asyncpg ships no type information
from alembic import command  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402

from app.api.v1 import handoff as transfer_api  # noqa: E402
from app.handoff import pingpong  # noqa: E402
from app.handoff import report as transfer_report  # noqa: E402
from app.reports import repository  # noqa: E402
from app.reports.figures import GroupBy, line  # noqa: E402
from app.store.db import Database, alembic_config  # noqa: E402
from app.store.models import (  # noqa: E402
    Agent,
    Conversation,
    ConversationEvent,
    ConversationMetrics,
    Skill,
    Transfer,
    Visitor,
)
from tests.conftest import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, pg_url  # noqa: E402

SEED = 20261204
END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 90
SKILLS = 20
AGENTS = 200
TAGS = ("refund", "billing", "bug", "shipping", "vip", "login", "cancel", "upgrade")
WINDOW = timedelta(hours=24)
COLUMNS = [c.key for c in ConversationMetrics.__table__.columns]


def log(message: str) -> None:
    print(f"[reports] {message}", file=sys.stderr, flush=True)


def rows(count: int, agents: Sequence[uuid.UUID]) -> Iterator[dict[str, Any]]:
    """Plausible figures: most chats answered within a minute, some abandoned or offline, busy
    hours in the day, a few transfers and escalations, a third rated."""
    rng = random.Random(SEED)
    start = END - timedelta(days=DAYS)
    for _ in range(count):
        day = rng.randrange(DAYS)
        hour = min(23, max(0, int(rng.gauss(14, 4))))
        opened = start + timedelta(days=day, hours=hour, seconds=rng.randrange(3600))
        offline = rng.random() < 0.05
        abandoned = not offline and rng.random() < 0.08
        handled = not abandoned and (not offline or rng.random() < 0.7)
        answered = handled and rng.random() < 0.97
        wait = None if offline else int(rng.expovariate(1 / 25_000))
        response = int(rng.expovariate(1 / 40_000)) if answered and not offline else None
        handle = int(rng.lognormvariate(12.5, 0.8)) if handled else None
        closed = opened + timedelta(milliseconds=(wait or 0) + (handle or 60_000))
        agent = rng.choice(agents) if handled else None
        # 20 %: a desk that transfers often (the usual range is 5-20 %), to load the report.
        transfers = 1 if handled and rng.random() < 0.2 else 0
        target = 60
        yield {
            "conversation_id": uuid.UUID(int=rng.getrandbits(128)),
            "opened_at": opened,
            "closed_at": closed,
            "skill_id": rng.randrange(1, SKILLS + 1) if rng.random() < 0.9 else None,
            "first_agent_id": agent,
            "last_agent_id": agent,
            "closed_by": rng.choice(("agent", "visitor")),
            "offline": offline,
            "handled": handled,
            "answered": answered,
            "abandoned": abandoned,
            "queue_wait_ms": wait,
            "first_response_ms": response,
            "handle_ms": handle,
            "transfers": transfers,
            "escalations": 1 if rng.random() < 0.01 else 0,
            "fcr_candidate": answered and transfers == 0,
            "next_contact_at": closed + timedelta(hours=rng.randrange(1, 200))
            if rng.random() < 0.15
            else None,
            "sla_met": None if offline or response is None else response <= target * 1000,
            "sla_target_seconds": target,
            "csat": rng.randint(1, 5) if handled and rng.random() < 0.3 else None,
            "tags": sorted(rng.sample(TAGS, rng.choice((0, 0, 1, 1, 2)))),
            "disposition": None,
        }


@dataclass
class Handoffs:
    """The stored conversations behind the metrics rows, their logs and their transfers, as
    COPY records (every NOT NULL column given: COPY applies no Python defaults)."""

    visitors: list[tuple[Any, ...]] = field(default_factory=list)
    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    transfers: list[tuple[Any, ...]] = field(default_factory=list)


VISITOR_COLUMNS = ["id", "token_hash", "attributes", "priority", "created_at", "last_seen_at"]
CONVERSATION_COLUMNS = [
    "id", "visitor_id", "state", "skill_id", "agent_id", "priority", "assignment_epoch",
    "last_seq", "visitor_read_seq", "agent_read_seq", "created_at", "queued_at", "assigned_at",
    "closed_at", "watchdog_level", "transfer_count", "tags",
]  # fmt: skip
EVENT_COLUMNS = [
    "conversation_id", "seq", "kind", "sender_type", "sender_id", "visibility", "body",
    "created_at",
]  # fmt: skip
TRANSFER_COLUMNS = [
    "id", "conversation_id", "kind", "state", "from_agent_id", "to_agent_id", "to_skill_id",
    "to_supervisors", "created_at", "decided_at", "receivers", "declined_by", "expires_at",
    "accepted_by", "skill_id",
]  # fmt: skip
TRANSFER_TTL = timedelta(seconds=60)


class Log:
    """One conversation's events in order, as `(kind, sender type, sender, body, at)`."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, uuid.UUID | None, dict[str, Any], datetime]] = []

    def add(self, what: str, at: datetime, sender: uuid.UUID | None = None, **body: Any) -> None:
        self.events.append((what, "system" if sender is None else "agent", sender, body, at))

    def visitor(self, at: datetime) -> None:
        self.events.append(("message", "visitor", None, {"text": "…"}, at))


def handoffs(metrics: list[dict[str, Any]], agents: Sequence[uuid.UUID]) -> Handoffs:
    """Conversations, logs and transfers consistent with `metrics` (which this adjusts: the
    last agent of a transferred chat is its receiver, a ping-pong has two transfers)."""
    rng = random.Random(SEED + 1)
    out = Handoffs()
    for m in metrics:
        cid, opened, closed = m["conversation_id"], m["opened_at"], m["closed_at"]
        visitor = uuid.UUID(int=rng.getrandbits(128))
        out.visitors.append((visitor, visitor.hex, "{}", 0, opened, closed))
        log = Log()
        log.add("conversation.opened", opened, skill={"id": m["skill_id"]})
        log.visitor(opened + timedelta(seconds=1))
        log.add("conversation.queued", opened + timedelta(seconds=1))
        first = holder = m["first_agent_id"]
        at = opened + timedelta(milliseconds=m["queue_wait_ms"] or 0)
        if m["handled"]:
            log.add("conversation.assigned", at, agent={"id": str(first), "name": "A"})
            log.add("agent.joined", at, first)
        span = max(closed - at, timedelta(seconds=10))
        for i in range(8):  # the conversation itself: visitor and agent in turn
            when = at + span * (i + 1) / 12
            if i % 2 or holder is None:
                log.visitor(when)
            else:
                log.add("message", when, holder, text="…")
        if m["transfers"]:
            holder = _transfers(m, log, at=at, span=span, agents=agents, rng=rng, out=out)
        elif m["handled"] and rng.random() < 0.1:  # one that did not move the chat
            state = rng.choices(("declined", "expired", "cancelled"), (5, 3, 2))[0]
            to = rng.choice([a for a in agents if a != first])
            asked = at + span * 9 / 12
            out.transfers.append((
                uuid.UUID(int=rng.getrandbits(128)), cid, "warm", state, first, to, None, False,
                asked, asked + timedelta(seconds=20), json.dumps([str(to)]),
                json.dumps([str(to)] if state == "declined" else []), asked + TRANSFER_TTL,
                None, None,
            ))  # fmt: skip
            log.add("transfer.requested", asked, first, kind="warm")
            log.add(f"transfer.{state}", asked + timedelta(seconds=20))
        log.add("conversation.closed", closed)
        out.events.extend(
            (cid, seq, what, sender_type, sender, "all", json.dumps(body), when)
            for seq, (what, sender_type, sender, body, when) in enumerate(log.events, 1)
        )
        out.conversations.append((
            cid, visitor, "closed", m["skill_id"], holder, 0, 0, len(log.events), 0, 0, opened,
            opened, at if m["handled"] else None, closed, 0, m["transfers"], "[]",
        ))  # fmt: skip
    return out


def _transfers(
    m: dict[str, Any],
    log: Log,
    *,
    at: datetime,
    span: timedelta,
    agents: Sequence[uuid.UUID],
    rng: random.Random,
    out: Handoffs,
) -> uuid.UUID:
    """A transferred chat's accepted transfers and their events; returns its last holder."""
    first: uuid.UUID = m["first_agent_id"]
    chain = [first, rng.choice([a for a in agents if a != first])]
    if rng.random() < 0.1:
        chain.append(first)  # ping-pong: back to the first agent
    for n, (source, to) in enumerate(itertools.pairwise(chain)):
        asked = at + span * (9 + n) / 12
        kind = rng.choices(("warm", "cold", "escalation"), (80, 12, 8))[0]
        waited = timedelta(milliseconds=0 if kind == "cold" else int(rng.expovariate(1 / 25_000)))
        out.transfers.append((
            uuid.UUID(int=rng.getrandbits(128)), m["conversation_id"], kind, "accepted", source,
            to if kind == "warm" else None, None, kind == "escalation", asked, asked + waited,
            json.dumps([] if kind == "cold" else [str(to)]), "[]",
            None if kind == "cold" else asked + TRANSFER_TTL, to, m["skill_id"],
        ))  # fmt: skip
        log.add("transfer.requested", asked, source, kind=kind)
        log.add("handoff.summary", asked, text="…")
        log.add("transfer.accepted", asked + waited, to)
        log.add("agent.left", asked + waited, source, reason="transferred")
        log.add("conversation.assigned", asked + waited, agent={"id": str(to), "name": "B"})
        log.add("agent.joined", asked + waited, to)
    m["transfers"] = len(chain) - 1
    m["last_agent_id"] = chain[-1]
    m["fcr_candidate"] = False
    return chain[-1]


async def load(url: str, count: int, postgres: bool) -> None:
    db = Database(url, pool_size=2)
    try:
        async with db.write() as session:
            session.add_all(
                Skill(id=i, slug=f"skill-{i}", name=f"Skill {i}") for i in range(1, SKILLS + 1)
            )
            agents = [uuid.UUID(int=i + 1) for i in range(AGENTS)]
            session.add_all(
                Agent(id=a, email=f"a{i}@example.com", name=f"Agent {i}", password_hash="-")  # noqa: S106 - no login
                for i, a in enumerate(agents)
            )
        if postgres:
            database = url.rsplit("/", 1)[1]
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, database=database
            )
            try:
                metrics = list(rows(count, agents))
                stored = handoffs(metrics, agents)
                # The figures rows() gives; a column it does not know stays at its default.
                given = [c for c in COLUMNS if c in metrics[0]]
                records = [
                    tuple(json.dumps(r[c]) if c == "tags" else r[c] for c in given) for r in metrics
                ]
                await conn.copy_records_to_table(
                    "conversation_metrics", records=records, columns=given
                )
                for table, columns, data in (
                    ("visitors", VISITOR_COLUMNS, stored.visitors),
                    ("conversations", CONVERSATION_COLUMNS, stored.conversations),
                    ("conversation_events", EVENT_COLUMNS, stored.events),
                    ("transfers", TRANSFER_COLUMNS, stored.transfers),
                ):
                    await conn.copy_records_to_table(table, records=data, columns=columns)
                    await conn.execute(f"ANALYZE {table}")
                    log(f"{table}: {len(data)} rows")
                await conn.execute("ANALYZE conversation_metrics")
            finally:
                await conn.close()
            return
        metrics = list(rows(count, agents))
        stored = handoffs(metrics, agents)
        async with db.write() as session:
            for model, columns, data in (
                (ConversationMetrics, list(metrics[0]), [tuple(r.values()) for r in metrics]),
                (Visitor, VISITOR_COLUMNS, stored.visitors),
                (Conversation, CONVERSATION_COLUMNS, stored.conversations),
                (ConversationEvent, EVENT_COLUMNS, stored.events),
                (Transfer, TRANSFER_COLUMNS, stored.transfers),
            ):
                for start in range(0, len(data), 5_000):
                    batch = [
                        {c: _value(c, v) for c, v in zip(columns, record, strict=True)}
                        for record in data[start : start + 5_000]
                    ]
                    await session.execute(insert(model), batch)
    finally:
        await db.dispose()


async def measure(url: str, repeats: int) -> dict[str, Any]:
    db = Database(url, pool_size=2)
    results: dict[str, Any] = {}
    try:
        for days in (DAYS, 7):
            since, until = END - timedelta(days=days), END
            for group_by in (*GroupBy, None):
                times: list[float] = []
                groups = 0
                for _ in range(repeats):
                    async with db.read() as session:
                        started = time.perf_counter()
                        found = await repository.totals(
                            session,
                            since=since,
                            until=until,
                            group_by=group_by,
                            zone="UTC",
                            window=WINDOW,
                            now=END,
                        )
                        await repository.names(session, group_by, list(found))
                        _ = [line(t) for t in found.values()]
                        times.append((time.perf_counter() - started) * 1000)
                    groups = len(found)
                name = f"{days}d/{'total' if group_by is None else group_by.value}"
                results[name] = {
                    "groups": groups,
                    "median_ms": round(statistics.median(times), 1),
                    "best_ms": round(min(times), 1),
                }
                log(f"{name}: {results[name]}")
        for days in (DAYS, 7):
            since, until = END - timedelta(days=days), END
            for name, work in _transfer_work(since, until).items():
                times = []
                for _ in range(repeats):
                    async with db.read() as session:
                        started = time.perf_counter()
                        await work(session)
                        times.append((time.perf_counter() - started) * 1000)
                key = f"transfers/{days}d/{name}"
                results[key] = {
                    "median_ms": round(statistics.median(times), 1),
                    "best_ms": round(min(times), 1),
                }
                log(f"{key}: {results[key]}")
            async with db.read() as session:  # what was counted, to check the load is realistic
                counted = await transfer_report.transfer_report(session, since=since, until=until)
                rate = await transfer_api.conversation_figures(session, since=since, until=until)
            results[f"transfers/{days}d/counted"] = {
                "outcomes": dataclasses.asdict(counted.outcomes),
                "accept_median_ms": counted.accept.median_ms,
                "skills": len(counted.by_skill),
                "agents": len(counted.by_agent),
                **rate.total.model_dump(),
            }
            log(f"transfers/{days}d/counted: {results[f'transfers/{days}d/counted']}")
    finally:
        await db.dispose()
    return results


def _transfer_work(
    since: datetime, until: datetime
) -> dict[str, Callable[[AsyncSession], Awaitable[object]]]:
    """What `GET /api/v1/reports/transfers` runs, in parts and whole."""

    async def transfers(session: AsyncSession) -> object:
        return await transfer_report.transfer_report(session, since=since, until=until)

    async def ping_pong(session: AsyncSession) -> object:
        return await pingpong.bounced(session, since=since, until=until)

    async def conversations(session: AsyncSession) -> object:
        return await transfer_api.conversation_figures(session, since=since, until=until)

    async def whole(session: AsyncSession) -> object:
        return (await transfers(session), await conversations(session))

    return {
        "transfers": transfers,
        "ping_pong": ping_pong,
        "conversations": conversations,
        "whole": whole,
    }


def _value(column: str, value: Any) -> Any:
    # The COPY records carry JSON as text; the ORM insert wants the values themselves.
    if column in {"attributes", "tags", "body", "receivers", "declined_by"} and isinstance(
        value, str
    ):
        return json.loads(value)
    return value


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(kind: str) -> Iterator[str]:
    """A migrated database of the bench's own, removed afterwards whatever happens."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="warmline_bench_") as tmp:
            url = f"sqlite+aiosqlite:///{Path(tmp) / 'warmline.db'}"
            command.upgrade(alembic_config(url), "head")
            yield url
        return
    name = f"warmline_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        command.upgrade(alembic_config(pg_url(name)), "head")
        yield pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    with database(args.backend) as url:
        started = time.perf_counter()
        asyncio.run(load(url, args.rows, args.backend == "postgres"))
        log(f"loaded {args.rows} rows in {time.perf_counter() - started:.1f} s")
        results = asyncio.run(measure(url, args.repeats))
    print(
        json.dumps(
            {
                "backend": args.backend,
                "rows": args.rows,
                "days": DAYS,
                "repeats": args.repeats,
                "python": platform.python_version(),
                "machine": platform.machine(),
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
