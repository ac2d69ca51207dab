"""Each process's cache of active webhook subscriptions, read by the outbox on every event.

`chat.log.append_event` is synchronous and runs for every event written, so the outbox cannot
ask the database who subscribes: it reads this cache, a dict in memory. With no active endpoint
the cost per event is one dictionary lookup.

The cache is per database engine (a process may hold several, in tests), loaded before the node
serves (`Dispatcher.load()`), refreshed by the node's `webhooks.deliver` loop every
`REFRESH_SECONDS`, and updated at once on the node that serves an admin's change. So a change
made on one node reaches the others' outboxes within `REFRESH_SECONDS`: a new endpoint misses
the events other nodes write in that window, a disabled or deleted one may still get rows
written for it (never sent: the dispatcher only sends to active endpoints). docs/api.md#webhooks.
Writes made by a process that never loaded the cache (the CLI, tests of the store alone) queue
no webhooks.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Iterable, Mapping

from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession

# How stale another node's view of the endpoints may be. A query of a handful of rows every
# two seconds costs nothing; a shorter window only narrows a race that exists anyway.
REFRESH_SECONDS = 2.0


class Subscriptions:
    """Active endpoints of one database and the event types each subscribes to."""

    def __init__(self) -> None:
        self._by_type: dict[str, tuple[uuid.UUID, ...]] = {}
        self._endpoints: dict[uuid.UUID, frozenset[str]] = {}

    def replace(self, endpoints: Mapping[uuid.UUID, Iterable[str]]) -> None:
        """Take the database's view (a refresh)."""
        self._endpoints = {eid: frozenset(types) for eid, types in endpoints.items()}
        self._index()

    def put(self, endpoint_id: uuid.UUID, types: Iterable[str] | None) -> None:
        """This node changed an endpoint: active with `types`, or gone/disabled (None)."""
        if types is None:
            self._endpoints.pop(endpoint_id, None)
        else:
            self._endpoints[endpoint_id] = frozenset(types)
        self._index()

    def _index(self) -> None:
        by_type: dict[str, list[uuid.UUID]] = {}
        for eid, types in sorted(self._endpoints.items()):
            for type_ in types:
                by_type.setdefault(type_, []).append(eid)
        # Swapped in one assignment: a reader sees the old index or the new one.
        self._by_type = {t: tuple(ids) for t, ids in by_type.items()}

    def __bool__(self) -> bool:
        return bool(self._by_type)

    def subscribers(self, event_type: str) -> tuple[uuid.UUID, ...]:
        return self._by_type.get(event_type, ())


_REGISTRY: weakref.WeakKeyDictionary[Engine, Subscriptions] = weakref.WeakKeyDictionary()


def register(engine: Engine) -> Subscriptions:
    """The cache of `engine` (the sync engine behind a `Database`'s write engine)."""
    found = _REGISTRY.get(engine)
    if found is None:
        found = _REGISTRY[engine] = Subscriptions()
    return found


def of_session(session: AsyncSession) -> Subscriptions | None:
    """The cache of the engine `session` writes to, if this process loaded one."""
    bind = session.bind
    engine = getattr(bind, "sync_engine", None)
    if engine is None:
        return None
    return _REGISTRY.get(engine)
