"""Request rate limits: a generic cell rate algorithm (GCRA) per key, in Redis when the
deployment has it (every node shares one budget per key) or in the process otherwise.

GCRA is a token bucket kept as a single number per key, the "theoretical arrival time" (TAT):
with an emission interval `T = 1 / rate` and a bucket of `burst` requests, a request at `now`
is allowed when `max(TAT, now) + T - burst * T <= now`, and then moves TAT on by `T`. A
refused request learns exactly when the next one would pass (`Retry-After`).

A limiter that cannot reach Redis lets the request through (and logs it): a rate limit
protects the service, and must not become the reason it refuses everyone.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from app.errors import WarmlineError

log = logging.getLogger(__name__)
# Keys a process remembers before it forgets those whose bucket has refilled.
MEMORY_KEYS = 100_000


class RateLimited(WarmlineError):
    """Too many requests: `retry_after` seconds until the next one passes."""

    code = "rate_limited"
    status_code = 429


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after: float  # seconds; 0 when allowed


def gcra(tat: float | None, now: float, *, rate: float, burst: int) -> tuple[Verdict, float]:
    """The decision for a request at `now` and the new TAT (unchanged when refused)."""
    interval = 1.0 / rate
    start = max(tat if tat is not None else now, now)
    new_tat = start + interval
    allow_at = new_tat - burst * interval
    if now < allow_at:
        return Verdict(allowed=False, retry_after=allow_at - now), start
    return Verdict(allowed=True, retry_after=0.0), new_tat


class Limiter(Protocol):
    async def hit(self, key: str, *, rate: float, burst: int) -> Verdict: ...

    async def aclose(self) -> None: ...


class MemoryLimiter:
    """One process's budgets (the embedded default: one process)."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def hit(self, key: str, *, rate: float, burst: int) -> Verdict:
        now = time.monotonic()
        verdict, tat = gcra(self._tat.get(key), now, rate=rate, burst=burst)
        self._tat[key] = tat
        if len(self._tat) > MEMORY_KEYS:  # forget keys whose bucket is full again
            self._tat = {k: v for k, v in self._tat.items() if v > now}
        return verdict

    async def aclose(self) -> None:
        self._tat.clear()


# The same arithmetic as `gcra`, atomic in Redis; the time is Redis's own, so every node
# agrees on it. Returns {allowed, retry_after_ms}.
_GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {0, allow_at - now}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
return {1, 0}
"""


class RedisLimiter:
    """Budgets shared by every node through Redis."""

    def __init__(self, url: str) -> None:
        self._redis: Redis = Redis.from_url(url)
        self._script = self._redis.register_script(_GCRA_SCRIPT)

    async def hit(self, key: str, *, rate: float, burst: int) -> Verdict:
        interval_ms = max(1, round(1000 / rate))
        try:
            allowed, retry_ms = await self._script(
                keys=[f"ratelimit:{key}"], args=[interval_ms, burst]
            )
        except (RedisError, OSError) as exc:
            log.warning("rate limit not checked: Redis did not answer (%s)", exc)
            return Verdict(allowed=True, retry_after=0.0)
        return Verdict(allowed=bool(allowed), retry_after=int(retry_ms) / 1000)

    async def aclose(self) -> None:
        await self._redis.aclose()


def create_limiter(redis_url: str | None) -> Limiter:
    return RedisLimiter(redis_url) if redis_url else MemoryLimiter()


async def enforce(limiter: Limiter, key: str, *, rate: float, burst: int) -> None:
    """Raises `RateLimited` when `key` is over its budget."""
    verdict = await limiter.hit(key, rate=rate, burst=burst)
    if not verdict.allowed:
        seconds = max(1, math.ceil(verdict.retry_after))
        raise RateLimited(
            f"Too many requests with this key; retry in {seconds} s.", retry_after=seconds
        )
