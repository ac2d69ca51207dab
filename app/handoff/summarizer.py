"""The hook for an external summarizer (for example a language model) on top of the
deterministic context summary.

Not pure: an implementation may call out over the network, so `extra()` is async and may take
time or fail. `handoff.service` always builds and stores the deterministic `Summary` first; what
a `Summarizer` returns is extra prose shown beside it, never a replacement for its facts.
Implementations should bound their own time and return None rather than raise when they
cannot help: a transfer must never wait on, or fail because of, an optional summarizer.
Rules: docs/handoff.md#external-summarizer. A deployment names its implementation with
`WARMLINE_SUMMARIZER=package.module:name` (`load()`); the hub calls it after each summary is
stored, bounded by `EXTRA_TIMEOUT`, and stores what it returns as a `handoff.summary_extra`
event.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any, Protocol, cast

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


# Seconds the hub waits for `extra()` before giving up on it for that summary.
EXTRA_TIMEOUT = 15.0
# Longest extra text stored; more is cut (with an ellipsis).
EXTRA_MAX_CHARS = 2000


def load(spec: str | None) -> Summarizer:
    """The summarizer named by "package.module:name" (an object with an async `extra`, or a
    class making one), or `NoSummarizer` when `spec` is empty.

    Raises:
        ValueError: the spec names nothing importable, or nothing with `extra`.
    """
    if not spec:
        return NoSummarizer()
    module_name, _, attribute = spec.partition(":")
    try:
        found: Any = getattr(importlib.import_module(module_name), attribute or "summarizer")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"WARMLINE_SUMMARIZER={spec!r} cannot be imported: {exc}") from exc
    summarizer = found() if isinstance(found, type) else found
    if not callable(getattr(summarizer, "extra", None)):
        raise ValueError(f"WARMLINE_SUMMARIZER={spec!r} has no extra(summary, transcript).")
    return cast(Summarizer, summarizer)


def name_of(summarizer: Summarizer) -> str:
    """How a summarizer is named in the events it adds to: its class's qualified name."""
    kind = type(summarizer)
    return f"{kind.__module__}.{kind.__qualname__}"


def clip(text: str) -> str:
    text = text.strip()
    return text if len(text) <= EXTRA_MAX_CHARS else text[: EXTRA_MAX_CHARS - 1] + "\u2026"
