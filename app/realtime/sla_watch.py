"""The node's loop of the SLA breach detector (task `routing.watch_sla`).

Every `WARMLINE_SLA_WATCH_INTERVAL` seconds (jittered), one unit of work runs
`chat.breaches.watch()` and its events are published after the commit, so that the agents
holding the chats and the supervisors watching them see `sla.breached` live. Every node runs it:
the conditional UPDATE in `chat.breaches` records each breach once. Must not decide anything
itself. Reference: docs/operations.md#sla-breach-detector.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat import breaches
from app.chat.outcome import Outcome
from app.errors import ServiceUnavailable
from app.realtime.hub import LOOP_RESTART_DELAY, Hub

log = logging.getLogger(__name__)
TASK_NAME = "routing.watch_sla"


class SlaWatch:
    """Runs the detector on `hub`'s database and bus until stopped."""

    def __init__(self, hub: Hub, *, interval: float) -> None:
        self.hub = hub
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name=TASK_NAME)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def round(self) -> int:
        """One round: record what breached and publish it. Returns how many were recorded."""
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await breaches.watch(session, now=now)

        try:
            outcome = await self.hub.unit(work)
        except ServiceUnavailable:
            return 0  # logged by the unit; the next round tries again
        if outcome.events:
            log.info("recorded %d SLA breaches", len(outcome.events))
        await self.hub.publish(outcome)
        return len(outcome.events)

    async def _supervise(self) -> None:
        while True:
            try:
                while True:
                    # Jitter spreads the nodes' rounds, so they rarely contend for one row.
                    await asyncio.sleep(self.interval * random.uniform(0.8, 1.2))  # noqa: S311 - not crypto
                    await self.round()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A dead detector is an incident, not a silence: logged, then started again.
                log.exception("background loop %s crashed; restarting", TASK_NAME)
                await asyncio.sleep(LOOP_RESTART_DELAY)
