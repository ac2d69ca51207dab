"""Redis pub/sub bus: several Warmline processes, on several hosts, hear each other.

One pub/sub connection per process carries every channel this process listens to; the first
local listener of a channel subscribes upstream and the last one unsubscribes. If Redis goes
away the listener task reconnects with backoff, re-subscribes, and calls the reconnect
callbacks so that sockets catch up from the store (notices sent meanwhile are lost: Redis
pub/sub keeps nothing). Must not hold state that outlives a notice.

Each payload travels with the publisher's wall-clock time under `SENT_AT`, removed before the
listeners see it: the receiving node observes publish-to-receipt latency (skewed by the hosts'
clock difference across hosts; keep them on NTP). A node without this key in its payloads (an
older version, during a rolling deploy) is simply not measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from typing_extensions import override

from app.bus.base import Bus, BusUnavailable, Payload
from app.metrics import Metrics

log = logging.getLogger(__name__)

# Backoff between reconnect attempts: fast at first (a Redis restart takes about a second),
# capped so a long outage does not hammer the broker.
RECONNECT_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)
# How long `listen` waits for Redis to confirm a SUBSCRIBE before giving up.
SUBSCRIBE_CONFIRM_TIMEOUT = 5.0
# Commands on the publishing connection fail after this long instead of hanging a frame handler.
COMMAND_TIMEOUT = 3.0
KEY_PREFIX = "warmline:"
SENT_AT = "_sent_at"  # the publisher's time.time(), for warmline_bus_delivery_seconds


class RedisBus(Bus):
    def __init__(
        self, url: str, *, client_name: str = "warmline", metrics: Metrics | None = None
    ) -> None:
        super().__init__(metrics=metrics)
        self.url = url
        self.client_name = client_name
        self._client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._confirmed: dict[str, asyncio.Event] = {}
        self._connected = asyncio.Event()
        self._lock = asyncio.Lock()  # serialises (un)subscribe commands with reconnects

    @override
    async def start(self) -> None:
        self._client = aioredis.Redis.from_url(
            self.url,
            socket_timeout=COMMAND_TIMEOUT,
            socket_connect_timeout=COMMAND_TIMEOUT,
            health_check_interval=10,
            client_name=self.client_name,  # shows in CLIENT LIST: which node holds what
        )
        await self._connect_pubsub()
        self._task = asyncio.create_task(self._run(), name="bus.redis_listener")

    async def _connect_pubsub(self) -> aioredis.client.PubSub:
        assert self._client is not None  # noqa: S101 - start() sets it
        pubsub = self._client.pubsub()
        # A pub/sub connection idles between notices: no read timeout on it.
        await pubsub.connect()  # type: ignore[no-untyped-call] # redis-py leaves it unannotated
        connection: Any = pubsub.connection  # typed as None in redis-py's stubs, set by connect()
        if connection is not None:
            connection.socket_timeout = None
        self._pubsub = pubsub
        self._connected.set()
        return pubsub

    @override
    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._listeners.clear()
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore] # unannotated before redis 8.2
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._client.aclose()

    def _key(self, channel: str) -> str:
        return KEY_PREFIX + channel

    @override
    async def publish(self, channel: str, payload: Payload) -> None:
        assert self._client is not None  # noqa: S101
        started = time.perf_counter()
        try:
            await self._client.publish(
                self._key(channel), orjson.dumps({**payload, SENT_AT: time.time()})
            )
        except (RedisError, OSError) as exc:
            self.metrics.bus_publish_failures.inc()
            raise BusUnavailable(str(exc)) from exc
        self.metrics.bus_publish.observe(time.perf_counter() - started)

    @override
    async def ping(self) -> None:
        assert self._client is not None  # noqa: S101
        try:
            await self._client.ping()
        except (RedisError, OSError) as exc:
            raise BusUnavailable(str(exc)) from exc

    @override
    async def _subscribe_upstream(self, channel: str) -> None:
        confirmed = self._confirmed.setdefault(channel, asyncio.Event())
        async with self._lock:
            if self._pubsub is None or not self._connected.is_set():
                # The listener task re-subscribes every channel when it reconnects.
                return
            try:
                await self._pubsub.subscribe(self._key(channel))
            except (RedisError, OSError) as exc:
                raise BusUnavailable(str(exc)) from exc
        try:
            await asyncio.wait_for(confirmed.wait(), SUBSCRIBE_CONFIRM_TIMEOUT)
        except TimeoutError as exc:
            msg = f"Redis did not confirm the subscription to {channel}"
            raise BusUnavailable(msg) from exc

    @override
    async def _unsubscribe_upstream(self, channel: str) -> None:
        self._confirmed.pop(channel, None)
        async with self._lock:
            if self._pubsub is None or not self._connected.is_set():
                return
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.unsubscribe(self._key(channel))

    async def _run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._read_forever()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._connected.clear()
                delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
                log.warning("redis bus lost its connection (%s); reconnecting in %.2fs", exc, delay)
                attempt += 1
                await asyncio.sleep(delay)
                try:
                    await self._reconnect()
                except (RedisError, OSError) as retry_exc:
                    log.warning("redis bus reconnect failed: %s", retry_exc)
                    continue
                attempt = 0
                log.info("redis bus reconnected; asking listeners to catch up from the store")
                for callback in tuple(self._reconnect_callbacks):
                    try:
                        await callback()
                    except Exception:
                        log.exception("bus reconnect callback failed")

    async def _reconnect(self) -> None:
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore] # unannotated before redis 8.2
            self._pubsub = None
            pubsub = await self._connect_pubsub()
            for event in self._confirmed.values():
                event.clear()
            channels = [self._key(c) for c in self._listeners]
            if channels:
                await pubsub.subscribe(*channels)

    async def _read_forever(self) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise RedisConnectionError("no pub/sub connection")
        while True:
            if not pubsub.subscribed:
                # Nothing to read yet: redis-py returns at once when not subscribed.
                await asyncio.sleep(0.05)
                connection: Any = pubsub.connection  # None in redis-py's annotations
                if connection is None:
                    raise RedisConnectionError("pub/sub connection closed")
                continue
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            kind = message["type"]
            raw_channel = message["channel"]
            channel_key = raw_channel.decode() if isinstance(raw_channel, bytes) else raw_channel
            channel = channel_key.removeprefix(KEY_PREFIX)
            if kind == "subscribe":
                event = self._confirmed.get(channel)
                if event is not None:
                    event.set()
            elif kind == "message":
                try:
                    payload = orjson.loads(message["data"])
                except orjson.JSONDecodeError:
                    log.warning("dropping a malformed bus payload on %s", channel)
                    continue
                if isinstance(payload, dict):
                    sent_at = payload.pop(SENT_AT, None)
                    if isinstance(sent_at, int | float):
                        # Clock skew between hosts can make it negative: count it as 0.
                        self.metrics.bus_delivery.observe(max(time.time() - sent_at, 0.0))
                self._dispatch(channel, payload)
