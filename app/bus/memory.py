"""In-process bus for the embedded default: one process, no broker.

Publishing calls every listener before `publish` returns. Must not be used by a deployment of
more than one process: other processes would never hear anything. A publish is timed (it runs
the listeners); a delivery is a function call, so `warmline_bus_delivery_seconds` stays empty.
"""

from __future__ import annotations

import time

from typing_extensions import override

from app.bus.base import Bus, Payload


class MemoryBus(Bus):
    @override
    async def start(self) -> None:
        return None

    @override
    async def stop(self) -> None:
        self._listeners.clear()

    @override
    async def publish(self, channel: str, payload: Payload) -> None:
        started = time.perf_counter()
        self._dispatch(channel, payload)
        self.metrics.bus_publish.observe(time.perf_counter() - started)

    @override
    async def ping(self) -> None:
        return None

    @override
    async def _subscribe_upstream(self, channel: str) -> None:
        return None

    @override
    async def _unsubscribe_upstream(self, channel: str) -> None:
        return None
