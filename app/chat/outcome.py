"""The building blocks every unit of work in `chat` (and in `handoff`) is written with: who acts
(`Actor`), the ack of a stored message (`Ack`), what was stored and what to announce once it is
committed (`Outcome`), and the small payloads several modules share (`join_notice`, `agent_ref`).

Nothing here touches the database: it holds no session, so it never flushes and never commits.
The notices in an `Outcome` are published only **after** the commit, so that nothing is
delivered that is not stored first (docs/architecture.md#data-flow-of-one-message).
Must not import FastAPI, Starlette or the bus.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from app.chat.events import StoredEvent
from app.store.models import Agent, SenderType


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting: a visitor or an agent (system actions have no actor)."""

    kind: SenderType
    id: uuid.UUID
    name: str | None

    @property
    def is_agent(self) -> bool:
        return self.kind is SenderType.AGENT


@dataclass(frozen=True, slots=True)
class Ack:
    conversation_id: uuid.UUID
    seq: int
    client_msg_id: str
    duplicate: bool


@dataclass(slots=True)
class Outcome:
    """What a unit of work stored, and what to announce once it is committed."""

    events: list[StoredEvent] = field(default_factory=list)
    # (channel, payload) pairs that are not conversation events: "join this conversation".
    notices: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    ack: Ack | None = None
    conversation_id: uuid.UUID | None = None

    def merge(self, other: Outcome) -> None:
        self.events.extend(other.events)
        self.notices.extend(other.notices)


def join_notice(conversation_id: uuid.UUID) -> dict[str, Any]:
    return {"t": "join", "conversation_id": str(conversation_id)}


def agent_ref(agent: Agent) -> dict[str, Any]:
    return {"id": str(agent.id), "name": agent.name, "avatar_url": agent.avatar_url}
