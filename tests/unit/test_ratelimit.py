"""The rate limit's arithmetic (GCRA), exactly: a burst, then one request per interval."""

from __future__ import annotations

import pytest

from app.api.ratelimit import MemoryLimiter, gcra


def test_a_full_bucket_lets_a_burst_through_then_one_per_interval() -> None:
    tat: float | None = None
    allowed = []
    for _ in range(6):  # six requests at t=0, rate 2/s, burst 4
        verdict, tat = gcra(tat, 0.0, rate=2.0, burst=4)
        allowed.append(verdict.allowed)
    assert allowed == [True, True, True, True, False, False]
    refused, same = gcra(tat, 0.0, rate=2.0, burst=4)
    assert refused.retry_after == pytest.approx(0.5)
    assert same == tat  # a refused request spends nothing
    # After the interval one more passes, and only one.
    passed, tat = gcra(tat, 0.5, rate=2.0, burst=4)
    assert passed.allowed
    assert not gcra(tat, 0.5, rate=2.0, burst=4)[0].allowed


def test_a_quiet_spell_refills_the_bucket_but_never_beyond_the_burst() -> None:
    tat: float | None = None
    for _ in range(4):
        _, tat = gcra(tat, 0.0, rate=2.0, burst=4)
    allowed = []
    for _ in range(6):  # an hour later: a full bucket of 4, not 7,200
        verdict, tat = gcra(tat, 3600.0, rate=2.0, burst=4)
        allowed.append(verdict.allowed)
    assert allowed == [True, True, True, True, False, False]


@pytest.mark.asyncio
async def test_the_memory_limiter_keeps_one_budget_per_key() -> None:
    limiter = MemoryLimiter()
    first = [(await limiter.hit("a", rate=0.001, burst=2)).allowed for _ in range(3)]
    assert first == [True, True, False]
    assert (await limiter.hit("b", rate=0.001, burst=2)).allowed
