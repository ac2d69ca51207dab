"""The shape of a stored conversation event, as plain data, and its wire form.

Kinds (docs/protocol.md#event-kinds): `conversation.opened`, `message`, `conversation.queued`,
`conversation.assigned`, `agent.joined`, `agent.left`, `conversation.closed`,
`conversation.offline`, and, visible to agents only, `routing.decided`, `routing.step`,
`conversation.offered`, `offer.declined`, `offer.expired`, `conversation.unanswered`,
`sla.breached`, and the handoff kinds below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from app.store.models import ConversationEvent, SenderType, Visibility

OPENED = "conversation.opened"
MESSAGE = "message"
QUEUED = "conversation.queued"
ASSIGNED = "conversation.assigned"
AGENT_JOINED = "agent.joined"
AGENT_LEFT = "agent.left"
CLOSED = "conversation.closed"
OFFERED = "conversation.offered"  # agents only
ROUTING_DECIDED = "routing.decided"  # agents only: who was chosen and why
OFFER_DECLINED = "offer.declined"  # agents only
OFFER_EXPIRED = "offer.expired"  # agents only
OFFLINE = "conversation.offline"  # nobody can take it now: the visitor may leave a message
ROUTING_STEP = "routing.step"  # agents only: an escalation step came into force
UNANSWERED = "conversation.unanswered"  # agents only: the watchdog flagged a late reply
# Handoff (docs/handoff.md), agents only: a transfer's life, the context summary, the private
# talk of a pending transfer, internal notes, escalations, and a customer repeating themselves.
TRANSFER_REQUESTED = "transfer.requested"
TRANSFER_ACCEPTED = "transfer.accepted"
TRANSFER_DECLINED = "transfer.declined"
TRANSFER_EXPIRED = "transfer.expired"
TRANSFER_CANCELLED = "transfer.cancelled"
TRANSFER_CHAT = "transfer.chat"
NOTE = "note"
SUMMARY = "handoff.summary"
SUMMARY_EXTRA = "handoff.summary_extra"
ESCALATED = "conversation.escalated"
REPEAT = "handoff.repeat"
RATED = "conversation.rated"  # the visitor rated the closed chat (CSAT 1-5)
# the visitor answered the effort question of the closed chat (CES 2.0, 1-7)
EFFORT_RATED = "conversation.effort_rated"
# Supervisor oversight (docs/handoff.md#supervisor-oversight): a supervisor's private word to
# the agent holding the chat (agents only), and a supervisor barging in and leaving (seen by all).
WHISPER = "whisper"
SUPERVISOR_JOINED = "supervisor.joined"
SUPERVISOR_LEFT = "supervisor.left"
TAGGED = "conversation.tagged"  # agents only: the chat's tags changed
DISPOSITION = "conversation.disposition"  # agents only: how the agent who closed it says it ended
# Agents only: the first agent reply missed the target of the skill the chat arrived needing
# (recorded once, live, by chat.breaches; docs/metrics.md#sla-breaches).
SLA_BREACHED = "sla.breached"


def iso(value: datetime) -> str:
    """A UTC timestamp as the protocol writes it: ISO 8601 with a `Z`."""
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    conversation_id: UUID
    seq: int
    kind: str
    sender_type: SenderType
    sender_id: UUID | None
    sender_name: str | None
    client_msg_id: str | None
    visibility: Visibility
    body: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, row: ConversationEvent) -> StoredEvent:
        return cls(
            conversation_id=row.conversation_id,
            seq=row.seq,
            kind=row.kind,
            sender_type=row.sender_type,
            sender_id=row.sender_id,
            sender_name=row.sender_name,
            client_msg_id=row.client_msg_id,
            visibility=row.visibility,
            body=dict(row.body),
            created_at=row.created_at,
        )

    def wire(self) -> dict[str, Any]:
        """The `event` frame every participant receives (docs/protocol.md#event)."""
        return {
            "type": "event",
            "conversation_id": str(self.conversation_id),
            "seq": self.seq,
            "kind": self.kind,
            "sender": {
                "type": self.sender_type.value,
                "id": None if self.sender_id is None else str(self.sender_id),
                "name": self.sender_name,
            },
            "client_msg_id": self.client_msg_id,
            "visibility": self.visibility.value,
            "body": self.body,
            "created_at": iso(self.created_at),
        }
