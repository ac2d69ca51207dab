"""The hook for an external summarizer (for example a language model) on top of the
deterministic context summary.

Not pure: an implementation may call out over the network, so `extra()` is async and may take
time or fail. `handoff.service` always builds and stores the deterministic `Summary` first; what
a `Summarizer` returns is extra prose shown beside it, never a replacement for its facts.
Implementations should bound their own time and return None rather than raise when they
cannot help: a transfer must never wait on, or fail because of, an optional summarizer.
Rules: docs/handoff.md#external-summarizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from app.handoff.summary import EventView, Summary


class Summarizer(Protocol):
    """Adds free text to a context summary."""

    async def extra(self, summary: Summary, transcript: Sequence[EventView]) -> str | None:
        """Extra prose for the receiving agent, or None to add nothing.

        Args:
            summary: The deterministic summary, already built.
            transcript: Every event of the conversation, agents-only ones included, in seq
                order. Send only what the deployment's privacy rules allow to a third party.
        """
        ...


class NoSummarizer:
    """The default: adds nothing, so the deterministic summary stands alone."""

    async def extra(self, summary: Summary, transcript: Sequence[EventView]) -> str | None:
        return None
