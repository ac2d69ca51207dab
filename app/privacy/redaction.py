"""What an erasure leaves of each stored event: the pure rules, no I/O.

A redacted event keeps its `seq`, kind, sender type and id, visibility and time, so the log stays
dense and every timing and count read from it stays true; what people wrote goes. A `message`
becomes `{"text": "", "redacted": true}` (its files are gone too); the other kinds that carry
free text (notes, whispers, the transfer channel, transfer notes, escalation reasons, summaries
and the facts they quote, the rating's comment, the page and name of `conversation.opened`)
keep their structure with the text emptied and `"redacted": true` added. Kinds that carry no
text are left as they are. Redacting twice gives the same body: erasure is idempotent.
Reference: docs/protocol.md#conversationredacted.
"""

from __future__ import annotations

from typing import Any

from app.chat import events as kinds

# The agents-only event an erasure (or the retention policy) writes in each conversation it
# changed: a client holding a copy of the log learns which seqs to fetch again.
REDACTED = "conversation.redacted"

# Kinds whose `text` is someone's words: emptied, the rest of the body kept.
_TEXT_KINDS = frozenset({kinds.NOTE, kinds.WHISPER, kinds.TRANSFER_CHAT, kinds.SUMMARY_EXTRA})


def redact_body(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The body of an event of `kind` once its words are removed (the same object's content
    when there is nothing to remove)."""
    if kind == kinds.MESSAGE:
        return {"text": "", "redacted": True}
    out = dict(body)
    if kind in _TEXT_KINDS:
        out["text"] = ""
    elif kind == kinds.SUMMARY:
        # The summary quotes the customer (facts: emails, order numbers; what they asked).
        out["text"] = ""
        out["summary"] = None
    elif kind == kinds.REPEAT:
        out["repeats"] = [
            {k: v for k, v in repeat.items() if k != "value"}
            for repeat in body.get("repeats") or []
            if isinstance(repeat, dict)
        ]
    elif kind == kinds.TRANSFER_REQUESTED:
        out["note"] = None
        out["reason"] = None
    elif kind == kinds.ESCALATED:
        out["reason"] = ""
    elif kind == kinds.RATED:
        out["comment"] = None
    elif kind == kinds.OPENED:
        visitor = body.get("visitor")
        if isinstance(visitor, dict):
            out["visitor"] = {**visitor, "name": None}
        out["page_url"] = None
    else:
        return out
    out["redacted"] = True
    return out
