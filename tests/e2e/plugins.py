"""A deployment's plug-ins as the e2e tests load them by name (WARMLINE_SUMMARIZER,
WARMLINE_SENTIMENT_SCORER): small, deterministic, and each with one visible effect."""

from __future__ import annotations

from collections.abc import Sequence

from app.handoff.summary import EventView, Summary


class CountingSummarizer:
    """Says how much it read and who the customer is."""

    async def extra(self, summary: Summary, transcript: Sequence[EventView]) -> str | None:
        said = sum(1 for e in transcript if e.kind == "message" and e.sender_type == "visitor")
        return f"Read {said} customer messages from {summary.customer.name}."


class BrokenSummarizer:
    """Fails as a remote service would."""

    async def extra(self, summary: Summary, transcript: Sequence[EventView]) -> str | None:
        raise ConnectionError("summarizer service unreachable")


class MehScorer:
    """Reads "meh" as the angriest word there is."""

    def score(self, text: str) -> float:
        return -1.0 if "meh" in text.lower() else 0.0


class FailingScorer:
    """A scorer whose model server is down."""

    def score(self, text: str) -> float:
        raise TimeoutError("sentiment model unreachable")
