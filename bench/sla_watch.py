"""Benchmark of one round of the SLA breach detector (`chat.breaches.watch()`) over many open
conversations and a long history.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). On a
PostgreSQL database of its own (dropped at the end), migrated to head, it COPY-loads seeded,
deterministic data: `--closed` closed conversations of the past (history the detector must not
read), and `--open` open ones, opened over the last `--spread` seconds, each with a realistic log
(opening, the visitor's message, queueing, assignment, a few messages); a tenth are queued, the
rest assigned, most answered within the target, and every one already marked breached when it
missed its target (so a round finds them all judged: the steady state). Then it times rounds
that record nothing (each in a transaction rolled back) and prints one JSON object with the
median and best wall time in milliseconds and PostgreSQL's `EXPLAIN (ANALYZE, BUFFERS)` of the
scan of the open conversations.

Run from the repository root: `.venv/bin/python bench/sla_watch.py [--open N] [--closed N]
[--repeats N]`. Figures belong in docs/performance.md#sla-breach-detector with the machine.
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
from sqlalchemy import select, text  # noqa: E402

from app.chat import breaches  # noqa: E402
from app.store.db import Database, alembic_config  # noqa: E402
from app.store.models import Agent, Conversation, Skill  # noqa: E402
from tests.conftest import PG_ADMIN_DB, PG_HOST, PG_PORT, PG_USER, pg_url  # noqa: E402

SEED = 20261204
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SKILLS = 20
TARGET = 60
VISITOR_COLUMNS = ["id", "token_hash", "attributes", "priority", "created_at", "last_seen_at"]
CONVERSATION_COLUMNS = [
    "id", "visitor_id", "state", "skill_id", "agent_id", "priority", "assignment_epoch",
    "last_seq", "visitor_read_seq", "agent_read_seq", "created_at", "queued_at", "assigned_at",
    "closed_at", "watchdog_level", "transfer_count", "tags", "sla_breached_at",
]  # fmt: skip
EVENT_COLUMNS = [
    "conversation_id", "seq", "kind", "sender_type", "sender_id", "visibility", "body",
    "created_at",
]  # fmt: skip


async def _pg_admin(statement: str) -> None:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database=PG_ADMIN_DB)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def database() -> Iterator[str]:
    """A migrated PostgreSQL database of the bench's own, dropped afterwards."""
    name = f"warmline_bench_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        command.upgrade(alembic_config(pg_url(name)), "head")
        yield pg_url(name)
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def log(message: str) -> None:
    print(f"[sla_watch] {message}", file=sys.stderr, flush=True)


def conversation(
    rng: random.Random, opened: datetime, *, closed: bool, agent: uuid.UUID
) -> tuple[tuple[Any, ...], tuple[Any, ...], list[tuple[Any, ...]]]:
    """A visitor, their conversation and its log, opened at `opened`."""
    cid, vid = uuid.uuid4(), uuid.uuid4()
    skill = rng.randint(1, SKILLS)
    queued = not closed and rng.random() < 0.1
    reply = timedelta(seconds=rng.choice([5, 20, 40, 55, 75, 200]))
    events: list[tuple[str, str, uuid.UUID | None, dict[str, Any], datetime]] = [
        ("conversation.opened", "system", None, {"skill": {"id": skill}}, opened),
        ("message", "visitor", None, {"text": "…"}, opened),
        ("conversation.queued", "system", None, {"reason": "new"}, opened),
    ]
    answered_at = None
    if not queued:
        assigned = opened + timedelta(seconds=2)
        events.append(("conversation.assigned", "system", None, {}, assigned))
        if opened + reply <= NOW:
            answered_at = opened + reply
            events.append(("message", "agent", agent, {"text": "…"}, answered_at))
            for i in range(rng.randint(0, 8)):
                at = answered_at + timedelta(seconds=10 * (i + 1))
                who = ("visitor", None) if i % 2 == 0 else ("agent", agent)
                events.append(("message", who[0], who[1], {"text": "…"}, at))
    closed_at = events[-1][4] + timedelta(seconds=30) if closed else None
    if closed_at is not None:
        events.append(("conversation.closed", "agent", agent, {"by": "agent"}, closed_at))
    waited = (answered_at or closed_at or NOW) - opened
    breached_at = (
        opened + timedelta(seconds=TARGET + 1) if waited.total_seconds() > TARGET else None
    )
    state = "closed" if closed else ("queued" if queued else "assigned")
    row = (
        cid, vid, state, skill, None if queued else agent, 0, 0 if queued else 1, len(events),
        0, 0, opened, opened, None if queued else opened + timedelta(seconds=2), closed_at, 0, 0,
        "[]", breached_at,
    )  # fmt: skip
    visitor = (vid, uuid.uuid4().hex, "{}", 0, opened, opened)
    logged = [
        (cid, seq, kind, sender, who, "all", json.dumps(body), at)
        for seq, (kind, sender, who, body, at) in enumerate(events, start=1)
    ]
    return visitor, row, logged


async def load(url: str, *, open_count: int, closed_count: int, spread: float) -> None:
    rng = random.Random(SEED)
    db = Database(url, pool_size=2)
    agent = uuid.UUID(int=1)
    try:
        async with db.write() as session:
            session.add_all(
                Skill(id=i, slug=f"skill-{i}", name=f"Skill {i}", sla_first_response_seconds=TARGET)
                for i in range(1, SKILLS + 1)
            )
            session.add(
                Agent(id=agent, email="a@example.com", name="A", password_hash="-", capacity=4)  # noqa: S106 - no login
            )
    finally:
        await db.dispose()
    visitors, rows, events = [], [], []
    for i in range(closed_count):
        opened = NOW - timedelta(days=90) + timedelta(seconds=i * 90 * 86_400 / closed_count)
        v, r, e = conversation(rng, opened, closed=True, agent=agent)
        visitors.append(v)
        rows.append(r)
        events.extend(e)
    for _ in range(open_count):
        opened = NOW - timedelta(seconds=rng.uniform(0, spread))
        v, r, e = conversation(rng, opened, closed=False, agent=agent)
        visitors.append(v)
        rows.append(r)
        events.extend(e)
    conn = await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=url.rsplit("/", 1)[1]
    )
    try:
        for table, columns, data in (
            ("visitors", VISITOR_COLUMNS, visitors),
            ("conversations", CONVERSATION_COLUMNS, rows),
            ("conversation_events", EVENT_COLUMNS, events),
        ):
            await conn.copy_records_to_table(table, records=data, columns=columns)
            await conn.execute(f"ANALYZE {table}")
            log(f"{table}: {len(data)} rows")
    finally:
        await conn.close()


async def measure(url: str, repeats: int) -> dict[str, Any]:
    db = Database(url, pool_size=2)
    try:
        times: list[float] = []
        recorded = 0
        for _ in range(repeats):
            async with db.read() as session:
                started = time.perf_counter()
                outcome = await breaches.watch(session, now=NOW)
                times.append((time.perf_counter() - started) * 1000)
                recorded = len(outcome.events)
                await session.rollback()
        async with db.read() as session:
            reply = breaches._first_reply()
            query = select(Conversation.id, Conversation.created_at, reply).where(
                Conversation.sla_breached_at.is_(None),
                breaches._OPEN_STATES,
                Conversation.created_at < NOW - timedelta(seconds=TARGET),
                ~breaches._arrived_offline(),
                ~breaches._replied_before(NOW - breaches.CLOSED_LOOKBACK),
            )
            compiled = query.compile(
                dialect=session.get_bind().dialect, compile_kwargs={"literal_binds": True}
            )
            plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
            explain = [row[0] for row in plan.all()]
    finally:
        await db.dispose()
    return {
        "round_ms_median": round(statistics.median(times), 2),
        "round_ms_best": round(min(times), 2),
        "recorded": recorded,
        "explain": explain,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=5_000, help="open conversations")
    parser.add_argument("--closed", type=int, default=100_000, help="closed conversations")
    parser.add_argument("--spread", type=float, default=1_800.0, help="seconds of open arrivals")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    with database() as url:
        asyncio.run(load(url, open_count=args.open, closed_count=args.closed, spread=args.spread))
        figures = asyncio.run(measure(url, args.repeats))
    figures.update(
        open=args.open, closed=args.closed, machine=platform.machine(), python=sys.version
    )
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
