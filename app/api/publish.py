"""Announcing what a REST request changed, once its unit of work has committed.

A request's transaction commits when the handler returns and before the response is sent
(`SessionDep` has `scope="function"`); `BackgroundTasks` run after the response, so an outcome
handed to `Publisher.after_commit()` is published only once it is stored, and never when the
commit fails (no response is sent then, and its background tasks never run). This is the REST
side of "stored before delivered" (docs/architecture.md#data-flow-of-one-message). Must not
decide anything: the services do, and return the `Outcome` to announce.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import BackgroundTasks, Depends, Request

from app.chat.service import Outcome
from app.routing.service import OfferPolicy


class Hub(Protocol):
    """What a request needs of `app.realtime.hub.Hub` (`app.api` may not import `app.realtime`:
    the two are independent siblings of the layer contract)."""

    @property
    def offers(self) -> OfferPolicy: ...

    async def publish(self, outcome: Outcome) -> None: ...


class Publisher:
    """The node's hub, seen from one request: its offer policy, and publishing after commit."""

    def __init__(self, hub: Hub, background: BackgroundTasks) -> None:
        self._hub = hub
        self._background = background

    @property
    def offers(self) -> OfferPolicy:
        """How routing passes run by this request give chats to agents (as the hub's do)."""
        return self._hub.offers

    def after_commit(self, outcome: Outcome) -> None:
        """Publish `outcome` after the response is sent, hence after the commit.

        Nothing is published when the outcome is empty. A bus failure loses only notices; the
        hub's reconciliation delivers from the store what they would have.
        """
        if outcome.events or outcome.notices:
            self._background.add_task(self._hub.publish, outcome)


def get_publisher(request: Request, background: BackgroundTasks) -> Publisher:
    hub: Hub = request.app.state.hub
    return Publisher(hub, background)


PublisherDep = Annotated[Publisher, Depends(get_publisher)]
