"""The event bus: "something new happened on channel X", fanned out to every node.

Owns the `Bus` interface shared by the in-process and Redis implementations. The bus carries
notices, never the truth: whatever it delivers, a listener can always re-read from the store,
and replay always comes from the store (docs/architecture.md#bus). Channels are named
`"{scope}:{id}"` (`conv:…`, `agent:…`). Must not import the store or any domain.

Delivery is at most once and in publish order per channel for one publisher. Listener callbacks
run on the event loop and must not block: they hand work to a queue and return. Each bus times
its publishes and deliveries into the app's metrics (docs/metrics.md#prometheus-metrics).
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from app.metrics import Metrics

log = logging.getLogger(__name__)
Payload = dict[str, Any]
Callback = Callable[[str, Payload], None]
ReconnectCallback = Callable[[], Awaitable[None]]


class Listening:
    """A handle for one registered listener; `await close()` unregisters it."""

    def __init__(self, bus: Bus, channel: str, callback: Callback) -> None:
        self._bus = bus
        self.channel = channel
        self.callback = callback
        self._closed = False

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self._bus._remove(self)


class Bus(abc.ABC):
    """Fan-out of small JSON payloads by channel name.

    Args:
        metrics: the app's instruments; a private set when omitted (tools, tests).
    """

    def __init__(self, *, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        self._listeners: dict[str, set[Listening]] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect. Call once, before anything else."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Disconnect and drop every listener."""

    @abc.abstractmethod
    async def publish(self, channel: str, payload: Payload) -> None:
        """Send `payload` to every listener of `channel` on every node.

        Raises:
            BusUnavailable: the broker cannot be reached; the payload was not sent.
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `BusUnavailable` if the broker does not answer."""

    @abc.abstractmethod
    async def _subscribe_upstream(self, channel: str) -> None: ...

    @abc.abstractmethod
    async def _unsubscribe_upstream(self, channel: str) -> None: ...

    async def listen(self, channel: str, callback: Callback) -> Listening:
        """Register `callback` for `channel`. Returns once the subscription is live upstream,
        so a read of the store made after this returns cannot miss a later notice."""
        handle = Listening(self, channel, callback)
        listeners = self._listeners.setdefault(channel, set())
        first = not listeners
        listeners.add(handle)
        if first:
            try:
                await self._subscribe_upstream(channel)
            except BaseException:
                await self._remove(handle)
                raise
        return handle

    async def _remove(self, handle: Listening) -> None:
        listeners = self._listeners.get(handle.channel)
        if listeners is None:
            return
        listeners.discard(handle)
        if not listeners:
            del self._listeners[handle.channel]
            await self._unsubscribe_upstream(handle.channel)

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call `callback` after the bus lost its broker and came back: notices published in
        between are gone, so listeners must catch up from the store."""
        self._reconnect_callbacks.append(callback)

    def _dispatch(self, channel: str, payload: object) -> None:
        if not isinstance(payload, dict):
            log.warning("dropping a bus payload that is not an object on %s", channel)
            return
        for handle in tuple(self._listeners.get(channel, ())):
            try:
                handle.callback(channel, payload)
            except Exception:
                # One bad payload or listener must not silence the node's whole bus.
                log.exception("bus listener failed on %s", channel)

    @asynccontextmanager
    async def subscribe(
        self, channel: str, maxsize: int = 1000
    ) -> AsyncIterator[asyncio.Queue[Payload]]:
        """A queue receiving the channel's payloads while the block runs (tools and tests)."""
        queue: asyncio.Queue[Payload] = asyncio.Queue(maxsize=maxsize)

        def put(_channel: str, payload: Payload) -> None:
            queue.put_nowait(payload)

        handle = await self.listen(channel, put)
        try:
            yield queue
        finally:
            await handle.close()


class BusUnavailable(Exception):
    """The broker cannot be reached."""


def create_bus(
    redis_url: str | None, *, node: str = "warmline", metrics: Metrics | None = None
) -> Bus:
    """The Redis bus when a URL is given, else the in-process one."""
    if redis_url:
        from app.bus.redis import RedisBus  # noqa: PLC0415 - redis is only imported when used

        return RedisBus(
            redis_url, client_name=f"warmline:{node}".replace(" ", "_"), metrics=metrics
        )
    from app.bus.memory import MemoryBus  # noqa: PLC0415

    return MemoryBus(metrics=metrics)
