"""Dialect-specific predicates of the conversations list (docs/api.md#conversations-api): the
words of `q` in a conversation's events, and a tag among its tags.

PostgreSQL searches with full-text search: `to_tsvector('simple', text)` against
`websearch_to_tsquery('simple', q)` (whole words, case-insensitive, no stemming, so "refund"
does not find "refunds"; quoted phrases, `or` and `-word` work), served by the GIN expression
index of migration 2026-12-04-0502, whose expression `TSVECTOR` must stay. SQLite, which has no
such index, falls back to LIKE: every word of `q` must appear in one event's text, as a
substring, case-insensitive for ASCII letters; `%`, `_` and `\\` are escaped, quotes dropped.

Which events are searched is the caller's to say (`kinds`, `internal`): visitors' messages for
everyone, internal notes only for callers allowed to read them. Must not decide access itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, bindparam, exists, func, select, text

from app.store.models import Conversation, ConversationEvent, Visibility

# The indexed expression (migration 2026-12-04-0502): written out as in the index, since
# PostgreSQL uses an expression index only for the same expression, never for a bind parameter.
TSVECTOR = "to_tsvector('simple'::regconfig, coalesce(conversation_events.body ->> 'text', ''))"
# A longer query is refused by the API; the fallback also caps the number of LIKE terms.
MAX_QUERY_CHARS = 200
MAX_FALLBACK_TERMS = 8


def _like_escaped(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def fallback_terms(query: str) -> list[str]:
    """The words the LIKE fallback looks for: split on whitespace, quotes dropped."""
    terms = [t.strip("\"'") for t in query.split()]
    return [t for t in terms if t][:MAX_FALLBACK_TERMS]


def text_matches(dialect: str, query: str) -> ColumnElement[bool]:
    """An event's `body.text` matches `query` (the conversation_events table, unaliased)."""
    if dialect == "postgresql":
        return text(
            f"{TSVECTOR} @@ websearch_to_tsquery('simple'::regconfig, :search_q)"
        ).bindparams(bindparam("search_q", query))  # type: ignore[return-value] # a boolean SQL fragment, used inside where()
    said = func.coalesce(func.json_extract(ConversationEvent.body, "$.text"), "")
    terms = fallback_terms(query) or [query]
    return and_(*(said.like(f"%{_like_escaped(t)}%", escape="\\") for t in terms))


def conversation_mentions(
    dialect: str, query: str, *, kinds: Sequence[str], internal: bool
) -> ColumnElement[bool]:
    """The conversation has an event of one of `kinds` whose text matches `query`; without
    `internal`, only events visible to the visitor count."""
    match = select(ConversationEvent.id).where(
        ConversationEvent.conversation_id == Conversation.id,
        ConversationEvent.kind.in_(kinds),
        text_matches(dialect, query),
    )
    if not internal:
        match = match.where(ConversationEvent.visibility == Visibility.ALL)
    return exists(match)


def has_tag(dialect: str, tag: str, index: int) -> ColumnElement[bool]:
    """The conversation's `tags` (a JSON list of normalised tags) hold `tag`. `index` tells
    the bind parameters of several tags apart."""
    name = f"tag_{index}"
    if dialect == "postgresql":
        return text(f"conversations.tags @> CAST(:{name} AS jsonb)").bindparams(
            bindparam(name, json.dumps([tag]))
        )  # type: ignore[return-value] # a boolean SQL fragment, used inside where()
    return text(
        f"EXISTS (SELECT 1 FROM json_each(conversations.tags) WHERE json_each.value = :{name})"  # noqa: S608 - `name` is ours; the tag is bound
    ).bindparams(bindparam(name, tag))  # type: ignore[return-value] # as above
