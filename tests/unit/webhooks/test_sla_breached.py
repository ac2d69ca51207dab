"""The `sla.breached` event outside the conversation: its webhook (`conversation.sla_breached`,
app/webhooks/events.py) and its Prometheus counter (app/metrics.py). Pure, no server."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from prometheus_client.parser import text_string_to_metric_families

from app.chat import events as kinds
from app.metrics import Metrics, exposition
from app.webhooks import events
from app.webhooks.events import StoredFacts, webhook_event

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
CID = uuid.UUID("11111111-2222-3333-4444-555555555555")
BODY = {
    "target_seconds": 60,
    "waited_seconds": 61,
    "answered": False,
    "skill": {"id": 3, "slug": "billing"},
}


def facts(body: dict[str, object]) -> StoredFacts:
    return StoredFacts(
        conversation_id=CID,
        seq=7,
        kind=kinds.SLA_BREACHED,
        sender_type="system",
        sender_id=None,
        sender_name=None,
        visibility="agents",
        body=body,
        created_at=T0,
    )


class TestWebhook:
    def test_kind_and_type(self) -> None:
        """The pure module names the chat log's kind, and endpoints may subscribe to the type."""
        assert events.SLA_BREACHED == kinds.SLA_BREACHED == "sla.breached"
        assert "conversation.sla_breached" in events.EVENT_TYPES

    def test_payload(self) -> None:
        """A staff-only event still becomes its webhook, with the figures and nothing else."""
        event = webhook_event(facts(BODY))
        assert event is not None
        assert event.payload() == {
            "id": events.event_id(CID, 7),
            "type": "conversation.sla_breached",
            "created_at": "2026-12-04T09:00:00Z",
            "conversation_id": str(CID),
            "seq": 7,
            "data": BODY,
        }

    def test_no_skill(self) -> None:
        """A chat that needed no skill says `skill: null`."""
        event = webhook_event(facts({**BODY, "skill": None}))
        assert event is not None
        assert event.data["skill"] is None


class TestCounter:
    def test_breaches_by_skill(self) -> None:
        """Each committed breach counts under its skill's slug; a chat without a skill under
        ''."""
        metrics = Metrics()
        metrics.event_committed(kinds.SLA_BREACHED, "system", BODY)
        metrics.event_committed(kinds.SLA_BREACHED, "system", BODY)
        metrics.event_committed(kinds.SLA_BREACHED, "system", {**BODY, "skill": None})
        metrics.event_committed(kinds.MESSAGE, "agent", {})
        text = exposition(metrics, Metrics().registry).decode()
        samples = {
            (s.name, s.labels.get("skill")): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "warmline_sla_breaches_total"
        }
        assert samples == {
            ("warmline_sla_breaches_total", "billing"): 2,
            ("warmline_sla_breaches_total", ""): 1,
        }
