"""The bus contract, one suite for both implementations: in-process and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import redis.asyncio as aioredis

from app.bus.base import Bus, Payload, create_bus
from app.bus.redis import KEY_PREFIX, RedisBus
from tests.conftest import REDIS_URL, _redis_host_port, require

pytestmark = [pytest.mark.integration, pytest.mark.asyncio]


@pytest_asyncio.fixture(params=["memory", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    if request.param == "redis":
        require("Redis", *_redis_host_port())
    instance = create_bus(REDIS_URL if request.param == "redis" else None)
    await instance.start()
    try:
        yield instance
    finally:
        await instance.stop()


def channel() -> str:
    return f"conv:{uuid.uuid4()}"


async def receive(queue: asyncio.Queue[Payload], timeout: float = 5.0) -> Payload:
    return await asyncio.wait_for(queue.get(), timeout)


class TestBusContract:
    async def test_listener_receives_in_publish_order(self, bus: Bus) -> None:
        """Payloads published on a channel reach its listener, in order."""
        name = channel()
        async with bus.subscribe(name) as queue:
            for i in range(20):
                await bus.publish(name, {"i": i})
            assert [(await receive(queue))["i"] for _ in range(20)] == list(range(20))

    async def test_channels_are_isolated(self, bus: Bus) -> None:
        """A listener hears only its own channel."""
        mine, other = channel(), channel()
        async with bus.subscribe(mine) as queue:
            await bus.publish(other, {"x": 1})
            await bus.publish(mine, {"x": 2})
            assert await receive(queue) == {"x": 2}
            assert queue.empty()

    async def test_every_listener_of_a_channel_hears_it(self, bus: Bus) -> None:
        """Two listeners on one channel both receive each payload."""
        name = channel()
        async with bus.subscribe(name) as first, bus.subscribe(name) as second:
            await bus.publish(name, {"n": 1})
            assert await receive(first) == {"n": 1}
            assert await receive(second) == {"n": 1}

    async def test_closed_listener_hears_nothing_more(self, bus: Bus) -> None:
        """After a listener closes, payloads no longer reach it; others keep listening."""
        name = channel()
        heard: list[Payload] = []
        handle = await bus.listen(name, lambda _c, p: heard.append(p))
        async with bus.subscribe(name) as queue:
            await bus.publish(name, {"n": 1})
            await receive(queue)
            await handle.close()
            await bus.publish(name, {"n": 2})
            assert await receive(queue) == {"n": 2}
        assert heard == [{"n": 1}]

    async def test_a_failing_listener_does_not_silence_the_bus(self, bus: Bus) -> None:
        """A listener that raises, or a payload that is not an object, is logged and skipped;
        other listeners and later payloads are unaffected."""
        name = channel()

        def broken(_channel: str, _payload: Payload) -> None:
            raise RuntimeError("listener bug")

        handle = await bus.listen(name, broken)
        try:
            async with bus.subscribe(name) as queue:
                await bus.publish(name, {"n": 1})
                assert await receive(queue) == {"n": 1}
                await bus.publish(name, {"n": 2})
                assert await receive(queue) == {"n": 2}
        finally:
            await handle.close()


class TestRedisBus:
    @pytest_asyncio.fixture
    async def admin(self) -> AsyncIterator[aioredis.Redis]:
        require("Redis", *_redis_host_port())
        client = aioredis.Redis.from_url(REDIS_URL)
        try:
            yield client
        finally:
            await client.aclose()

    async def test_a_foreign_payload_does_not_kill_the_reader(self, admin: aioredis.Redis) -> None:
        """A non-object or non-JSON message on a Warmline channel is dropped; the node keeps
        hearing the next ones."""
        bus = RedisBus(REDIS_URL)
        await bus.start()
        try:
            name = channel()
            async with bus.subscribe(name) as queue:
                await admin.publish(KEY_PREFIX + name, b'"just a string"')
                await admin.publish(KEY_PREFIX + name, b"not json")
                await bus.publish(name, {"still": "alive"})
                assert await receive(queue) == {"still": "alive"}
        finally:
            await bus.stop()

    async def test_two_nodes_hear_each_other(self, admin: aioredis.Redis) -> None:
        """A payload published by one process reaches listeners in another."""
        node_a, node_b = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
        await node_a.start()
        await node_b.start()
        try:
            name = channel()
            async with node_b.subscribe(name) as queue:
                await node_a.publish(name, {"from": "a"})
                assert await receive(queue) == {"from": "a"}
        finally:
            await node_a.stop()
            await node_b.stop()

    async def test_one_upstream_subscription_per_channel(self, admin: aioredis.Redis) -> None:
        """Many local listeners share one Redis subscription, dropped with the last listener."""
        bus = RedisBus(REDIS_URL)
        await bus.start()
        try:
            name = channel()
            key = KEY_PREFIX + name
            async with bus.subscribe(name), bus.subscribe(name):
                assert dict(await admin.pubsub_numsub(key))[key.encode()] == 1
            await asyncio.sleep(0.1)
            assert dict(await admin.pubsub_numsub(key))[key.encode()] == 0
        finally:
            await bus.stop()

    async def test_recovers_after_losing_its_connection(self, admin: aioredis.Redis) -> None:
        """When Redis drops the pub/sub connection, the bus reconnects by itself, re-subscribes,
        and tells its listeners to catch up from the store."""
        name_tag = f"warmline-test-{uuid.uuid4().hex[:8]}"
        bus = RedisBus(REDIS_URL, client_name=name_tag)
        reconnected = asyncio.Event()

        async def on_reconnect() -> None:
            reconnected.set()

        bus.on_reconnect(on_reconnect)
        await bus.start()
        try:
            name = channel()
            async with bus.subscribe(name) as queue:
                ours = [c for c in await admin.client_list(_type="pubsub") if c["name"] == name_tag]
                assert len(ours) == 1
                assert await admin.client_kill_filter(_id=ours[0]["id"]) == 1
                await asyncio.wait_for(reconnected.wait(), 10)
                key = KEY_PREFIX + name
                for _ in range(50):
                    if dict(await admin.pubsub_numsub(key))[key.encode()] == 1:
                        break
                    await asyncio.sleep(0.05)
                await admin.publish(key, b'{"after": "reconnect"}')
                assert await receive(queue) == {"after": "reconnect"}
        finally:
            await bus.stop()
