"""The `effort.submitted` webhook (app/webhooks/events.py): what endpoints get when a visitor
answers the customer effort question, and that a redaction leaves it whole (it carries no words).
Pure, no server. docs/api.md#webhooks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from app.chat import events as kinds
from app.webhooks import events
from app.webhooks.events import StoredFacts, redact_payload, webhook_event

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CID = uuid.UUID("11111111-2222-3333-4444-555555555555")
ADA = uuid.UUID("99999999-2222-3333-4444-555555555555")


def answered(score: object) -> StoredFacts:
    return StoredFacts(
        conversation_id=CID,
        seq=9,
        kind=kinds.EFFORT_RATED,
        sender_type="visitor",
        sender_id=ADA,
        sender_name="Ada",
        visibility="all",
        body={"score": score},
        created_at=T0,
    )


class TestEffortSubmitted:
    def test_kind_and_type(self) -> None:
        """The pure module names the log's kind; endpoints may subscribe to the type."""
        assert events.EFFORT_RATED == kinds.EFFORT_RATED == "conversation.effort_rated"
        assert "effort.submitted" in events.EVENT_TYPES

    def test_payload(self) -> None:
        """Its own type, with the score and nothing else (not a csat.submitted: receivers of
        ratings get no effort answer they did not subscribe to)."""
        event = webhook_event(answered(6))
        assert event is not None
        assert event.payload() == {
            "id": events.event_id(CID, 9),
            "type": "effort.submitted",
            "created_at": "2026-12-04T09:00:00Z",
            "conversation_id": str(CID),
            "seq": 9,
            "data": {"score": 6},
        }

    def test_redaction_keeps_it(self) -> None:
        """A number, no words: an erasure's redaction returns it as it was."""
        event = webhook_event(answered(2))
        assert event is not None
        assert redact_payload(event.payload()) == event.payload()
