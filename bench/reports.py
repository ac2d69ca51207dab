"""Benchmark of the conversation report over 100,000 stored conversations.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). On a
database of its own (dropped at the end), migrated to head, it bulk-loads seeded, deterministic
`conversation_metrics` rows (the figures Warmline keeps per closed conversation) spread over 90
days, with 20 skills, 200 agents and a few tags, then times `reports.repository.totals()` (the
query `GET /api/v1/reports/conversations` runs, plus its total) for each `group_by`, over the
whole 90 days and over the last 7, and prints one JSON object: the median and best wall time
of each, in milliseconds.

Run from the repository root: `.venv/bin/python bench/reports.py [--rows N] [--repeats N]
[--backend postgres|sqlite]`. PostgreSQL by default (127.0.0.1:5432, as the tests). Figures
belong in docs/performance.md#reports-benchreportspy with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the test settings live in tests/, which is not installed

import asyncpg  # type: ignore[import-untyped]  # noqa: E402 # asyncpg ships no type information
from alembic import command  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from app.reports import repository  # noqa: E402
from app.reports.figures import GroupBy, line  # noqa: E402
from app.store.db import Database, alembic_config  # noqa: E402
from app.store.models import Agent, ConversationMetrics, Skill  # noqa: E402
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
        transfers = 1 if handled and rng.random() < 0.07 else 0
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
        batch: list[dict[str, Any]] = []
        if postgres:
            database = url.rsplit("/", 1)[1]
            conn = await asyncpg.connect(
                host=PG_HOST, port=PG_PORT, user=PG_USER, database=database
            )
            try:
                records = [
                    tuple(json.dumps(r[c]) if c == "tags" else r[c] for c in COLUMNS)
                    for r in rows(count, agents)
                ]
                await conn.copy_records_to_table(
                    "conversation_metrics", records=records, columns=COLUMNS
                )
                await conn.execute("ANALYZE conversation_metrics")
            finally:
                await conn.close()
            return
        async with db.write() as session:
            for row in rows(count, agents):
                batch.append(row)
                if len(batch) == 5_000:
                    await session.execute(insert(ConversationMetrics), batch)
                    batch = []
            if batch:
                await session.execute(insert(ConversationMetrics), batch)
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
    finally:
        await db.dispose()
    return results


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
