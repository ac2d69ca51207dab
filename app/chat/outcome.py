"""The building blocks every unit of work in `chat` (and in `handoff`) is written with: who acts
(`Actor`, or `Integration` for another system through an API key, and `signed` for the sender of
what they cause), the ack of a stored message (`Ack`), what was stored and what to announce once
it is committed (`Outcome`), and the small payloads several modules share (`join_notice`,
`agent_ref`).

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
class Integration:
    """Another system acting through an API key (REST only: docs/api.md#changing-conversations).

    Its doings are written as the system's (`sender.type` stays one of the protocol's three),
    signed with the key's name as `sender.name` and `{"api_key": {"id", "name"}}` in the body,
    so transcripts and consoles say which integration did it. `sender.id` stays null: it names
    visitors and agents, and a key's id there would be taken for one of them.
    """

    key_id: uuid.UUID
    name: str

    def ref(self) -> dict[str, str]:
        return {"id": str(self.key_id), "name": self.name}


def signed(who: Actor | Integration | None, body: dict[str, Any]) -> dict[str, Any]:
    """`append_event`'s `body` and sender arguments for an event `who` causes (None: the
    system on its own)."""
    if who is None:
        return {"body": body, "sender_type": SenderType.SYSTEM}
    if isinstance(who, Integration):
        return {
            "body": {**body, "api_key": who.ref()},
            "sender_type": SenderType.SYSTEM,
            "sender_name": who.name,
        }
    return {"body": body, "sender_type": who.kind, "sender_id": who.id, "sender_name": who.name}


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
