"""When a failed delivery is tried again: exponential backoff with jitter, about a day in all.

Pure: no clock, no randomness (`jitter` is drawn by the caller, in [-1, 1]).
docs/api.md#retries.
"""

from __future__ import annotations

from datetime import datetime, timedelta

# Multiples of the base delay (`WARMLINE_WEBHOOK_RETRY_BASE`, 10 s by default) before each
# retry: 10 s, 30 s, 2 min, 10 min, 30 min, 1 h, 3 h, 6 h, 12 h. Quick retries ride out a
# deploy or a blip; the long tail covers a receiver down for most of a day.
RETRY_MULTIPLES: tuple[int, ...] = (1, 3, 12, 60, 180, 360, 1080, 2160, 4320)
# Attempts in all: the first, then one per delay.
MAX_ATTEMPTS = len(RETRY_MULTIPLES) + 1
# Each delay varies by up to this share either way, so that deliveries that failed together
# (a receiver's outage) do not all come back in the same second.
JITTER = 0.2


def next_attempt(
    *, attempts: int, now: datetime, base_seconds: float, jitter: float
) -> datetime | None:
    """When to try again after `attempts` failed attempts, or None: give up (failed)."""
    if attempts >= MAX_ATTEMPTS:
        return None
    delay = base_seconds * RETRY_MULTIPLES[max(attempts, 1) - 1] * (1 + JITTER * jitter)
    return now + timedelta(seconds=delay)
