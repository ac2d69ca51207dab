"""Benchmark of the pure routing core: how fast `plan()` decides a large queue.

Not a test: it asserts nothing about speed (conventions: no timed performance assertions). It
builds a seeded, deterministic snapshot — 10,000 waiting chats and 500 agents with pseudo-random
skills, proficiencies, capacities, loads and presence, and a four-step escalation workflow per
skill — runs `plan()` several times, and prints one JSON object: wall time per plan, chats
decided, decisions per second, and the same for 1,000 chats as a baseline, with the ratio.

Run from the repository root: `.venv/bin/python bench/routing_core.py [--repeats N]`.
Figures belong in docs/performance.md with the machine they were measured on.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from app.routing.core import Candidate, Plan, Presence, Waiting, plan
from app.routing.policy import EscalationStep, OfferMode, RoutingPolicy

SEED = 20260101
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
SKILLS = 20
AGENTS = 500
CHATS = 10_000
BASELINE_CHATS = 1_000


def _uuid(rng: random.Random) -> UUID:
    return UUID(int=rng.getrandbits(128))


def build_agents(rng: random.Random, count: int) -> list[Candidate]:
    """A day-shift team: most online, some away, offline or between sockets, half busy."""
    agents = []
    for _ in range(count):
        capacity = rng.choice([1, 2, 3, 3, 4, 4, 5, 6])
        roll = rng.random()
        presence = (
            Presence.OFFLINE if roll < 0.05 else Presence.AWAY if roll < 0.15 else Presence.ONLINE
        )
        agents.append(
            Candidate(
                id=_uuid(rng),
                presence=presence,
                connected=rng.random() > 0.05,
                capacity=capacity,
                load=rng.randint(0, capacity),
                proficiency={
                    skill: rng.randint(1, 5)
                    for skill in rng.sample(range(1, SKILLS + 1), rng.randint(1, 4))
                },
                idle_since=None
                if rng.random() < 0.05
                else NOW - timedelta(seconds=rng.randint(0, 3_600)),
                is_supervisor=rng.random() < 0.02,
            )
        )
    return agents


def build_queue(rng: random.Random, count: int, agents: Sequence[Candidate]) -> list[Waiting]:
    """A backlog of up to half an hour: mostly normal priority, some declines and returners."""
    agent_ids = [a.id for a in agents]
    queue = []
    for _ in range(count):
        queue.append(
            Waiting(
                id=_uuid(rng),
                skill_id=None if rng.random() < 0.1 else rng.randint(1, SKILLS),
                priority=rng.choices([0, 1, 2], weights=[85, 12, 3])[0],
                queued_at=NOW - timedelta(seconds=rng.randint(0, 1_800)),
                excluded=frozenset(rng.sample(agent_ids, rng.randint(1, 2)))
                if rng.random() < 0.05
                else frozenset(),
                preferred_agent=rng.choice(agent_ids) if rng.random() < 0.1 else None,
                offered_to=frozenset({rng.choice(agent_ids)})
                if rng.random() < 0.02
                else frozenset(),
            )
        )
    return queue


def build_policy(rng: random.Random, mode: OfferMode) -> RoutingPolicy:
    """Per skill: strict at first, any level after a minute, two related skills after two,
    supervisors after five."""
    escalation = {}
    for skill in range(1, SKILLS + 1):
        related = frozenset(rng.sample([s for s in range(1, SKILLS + 1) if s != skill], 2))
        escalation[skill] = (
            EscalationStep(after=timedelta(0), min_proficiency=2, name="strict"),
            EscalationStep(after=timedelta(seconds=60), min_proficiency=1, name="any level"),
            EscalationStep(
                after=timedelta(seconds=120), related_skills=related, name="related skills"
            ),
            EscalationStep(
                after=timedelta(seconds=300),
                related_skills=related,
                include_supervisors=True,
                name="supervisors",
            ),
        )
    return RoutingPolicy(escalation=escalation, offer_mode=mode, broadcast_size=3)


def digest(result: Plan) -> str:
    """A fingerprint of who is offered what, to show every run planned the same."""
    offers = [(d.conversation_id.hex, [a.hex for a in d.agent_ids]) for d in result.decisions]
    return hashlib.sha256(json.dumps(offers).encode()).hexdigest()[:16]


def measure(
    queue: Sequence[Waiting],
    agents: Sequence[Candidate],
    policy: RoutingPolicy,
    repeats: int,
) -> dict[str, Any]:
    walls = []
    results = []
    for _ in range(repeats):
        started = time.perf_counter()
        results.append(plan(queue, agents, policy, NOW))
        walls.append(time.perf_counter() - started)
    result = results[0]
    median = statistics.median(walls)
    offers = sum(len(d.agent_ids) for d in result.decisions)
    return {
        "waiting_chats": len(queue),
        "agents": len(agents),
        "chats_decided": len(result.decisions),
        "chats_deferred": len(result.deferred),
        "offers": offers,
        "wall_seconds_per_plan": {
            "min": round(min(walls), 6),
            "median": round(median, 6),
            "max": round(max(walls), 6),
        },
        "decisions_per_second": round(len(result.decisions) / median, 1),
        "chats_planned_per_second": round(len(queue) / median, 1),
        "deterministic": len({digest(r) for r in results}) == 1,
        "plan_digest": digest(result),
    }


def run(repeats: int) -> dict[str, Any]:
    rng = random.Random(SEED)
    agents = build_agents(rng, AGENTS)
    queue = build_queue(rng, CHATS, agents)
    baseline_queue = build_queue(random.Random(SEED + 1), BASELINE_CHATS, agents)
    report: dict[str, Any] = {
        "benchmark": "routing_core.plan",
        "seed": SEED,
        "repeats": repeats,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    for mode in OfferMode:
        policy = build_policy(random.Random(SEED + 2), mode)
        full = measure(queue, agents, policy, repeats)
        baseline = measure(baseline_queue, agents, policy, repeats)
        report[mode.value] = {
            "full": full,
            "baseline": baseline,
            "wall_ratio_full_to_baseline": round(
                full["wall_seconds_per_plan"]["median"]
                / baseline["wall_seconds_per_plan"]["median"],
                2,
            ),
        }
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeats", type=int, default=5, help="plans per measurement")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.repeats), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
