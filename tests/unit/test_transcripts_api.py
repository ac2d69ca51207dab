"""The pure parts of the conversations API (docs/api.md#conversations-api): the opaque cursor
and the plain-text transcript. The routes themselves are tested end to end in
tests/e2e/test_conversations_api.py."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from fastapi.exceptions import RequestValidationError

from app.api.v1.transcript_text import plain_transcript
from app.api.v1.transcripts import decode_cursor, encode_cursor
from app.chat.search import fallback_terms
from app.chat.transcripts import ConversationInfo, Keyset, Person
from app.store.models import (
    Conversation,
    ConversationEvent,
    ConversationState,
    SenderType,
    Visibility,
    Visitor,
)

AT = datetime(2026, 12, 4, 10, 31, 5, 123456, tzinfo=UTC)
ID = uuid.UUID("0b6f3c0e-4a4e-4b8e-9f7e-6c3f1d2a9b10")


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


class TestCursor:
    @pytest.mark.parametrize(
        "at",
        [
            Keyset("-created_at", AT, ID),
            Keyset("created_at", AT, ID),
            Keyset("closed_at", AT, ID),
            Keyset("-closed_at", None, ID),  # among the conversations not closed yet
        ],
    )
    def test_round_trip(self, at: Keyset) -> None:
        """A cursor gives back the keyset it was made from, to the microsecond, and is
        URL-safe without padding."""
        cursor = encode_cursor(at)
        assert "=" not in cursor
        assert "+" not in cursor
        assert "/" not in cursor
        assert decode_cursor(cursor, at.sort) == at

    @pytest.mark.parametrize(
        "cursor",
        [
            "",
            "not a cursor",
            "%%%",
            _b64({"s": "-created_at", "k": AT.isoformat()}),  # no id
            _b64({"s": "-created_at", "k": "noon", "i": str(ID)}),
            _b64({"s": "-created_at", "k": AT.isoformat(), "i": "7"}),
            _b64({"s": "-created_at", "k": None, "i": str(ID)}),  # created_at is never null
            _b64({"s": "priority", "k": AT.isoformat(), "i": str(ID)}),
            base64.urlsafe_b64encode(b"[1, 2]").decode(),
        ],
    )
    def test_tampered_is_a_validation_error_naming_cursor(self, cursor: str) -> None:
        """Anything but a cursor this API made is refused, naming `cursor`."""
        with pytest.raises(RequestValidationError) as raised:
            decode_cursor(cursor, "-created_at")
        assert [e["loc"] for e in raised.value.errors()] == [("query", "cursor")]

    def test_a_cursor_of_another_sort_is_refused(self) -> None:
        """A cursor continues the sort it was made for only."""
        with pytest.raises(RequestValidationError):
            decode_cursor(encode_cursor(Keyset("created_at", AT, ID)), "-created_at")


def _event(
    seq: int, kind: str, sender: SenderType, name: str | None, **body: Any
) -> ConversationEvent:
    return ConversationEvent(
        conversation_id=ID,
        seq=seq,
        kind=kind,
        sender_type=sender,
        sender_id=None,
        sender_name=name,
        visibility=Visibility.ALL,
        body=body,
        created_at=AT,
    )


class TestPlainTranscript:
    def test_lines(self) -> None:
        """A header, then one line per event: who said what, or what happened."""
        conversation = Conversation(
            id=ID, visitor_id=ID, state=ConversationState.CLOSED, created_at=AT, closed_at=AT
        )
        info = ConversationInfo(
            conversation=conversation,
            visitor=Visitor(name="Ann", email="ann@example.com"),
            skill=None,
            agent=Person(ID, "Dana"),
            held_by=[Person(ID, "Dana")],
        )
        events = [
            _event(1, "conversation.opened", SenderType.SYSTEM, None),
            _event(2, "message", SenderType.VISITOR, "Ann", text="Hello?"),
            _event(3, "agent.joined", SenderType.SYSTEM, "Dana", agent={"name": "Dana"}),
            _event(
                4,
                "message",
                SenderType.AGENT,
                "Dana",
                text="",
                attachments=[{"name": "a.pdf", "size": 2048}],
            ),
            _event(5, "note", SenderType.AGENT, "Dana", text="VIP"),
            _event(6, "whisper", SenderType.AGENT, "Sue", text="ok", to={"name": "Dana"}),
            _event(7, "conversation.tagged", SenderType.AGENT, "Dana", tags=["a", "b"]),
            _event(8, "routing.decided", SenderType.SYSTEM, None),
            _event(9, "conversation.rated", SenderType.VISITOR, "Ann", score=5, comment="Great"),
        ]
        text = plain_transcript(info, events, internal=True)
        head, body = text.split("\n\n")
        assert head.splitlines()[:4] == [
            f"Conversation {ID}",
            "Visitor: Ann <ann@example.com>",
            "Skill: -",
            "Agents: Dana",
        ]
        assert body.splitlines() == [
            "[2026-12-04 10:31:05 UTC] * The conversation was opened.",
            "[2026-12-04 10:31:05 UTC] Visitor Ann: Hello?",
            "[2026-12-04 10:31:05 UTC] * Dana joined the chat.",
            "[2026-12-04 10:31:05 UTC] Agent Dana: [file: a.pdf, 2 KB]",
            "[2026-12-04 10:31:05 UTC] Internal note, Agent Dana: VIP",
            "[2026-12-04 10:31:05 UTC] Whisper to Dana, Agent Sue: ok",
            "[2026-12-04 10:31:05 UTC] * Tags: a, b.",
            "[2026-12-04 10:31:05 UTC] * (routing.decided)",
            '[2026-12-04 10:31:05 UTC] * Rated 5 out of 5: "Great".',
        ]


class TestFallbackTerms:
    def test_words_without_quotes(self) -> None:
        """The LIKE fallback looks for each word, quotes dropped, at most 8."""
        assert fallback_terms(' "late  parcel" 50% ') == ["late", "parcel", "50%"]
        assert fallback_terms(" ".join(str(i) for i in range(20))) == [str(i) for i in range(8)]
        assert fallback_terms('""') == []
