"""What an erasure leaves of each event kind's body (app/privacy/redaction.py): the words go, the
structure stays, and redacting twice changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from app.chat import events as kinds
from app.privacy.redaction import redact_body

CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        kinds.MESSAGE,
        {"text": "Order 1042", "attachments": [{"id": "a", "name": "r.png"}]},
        {"text": "", "redacted": True},
    ),
    (
        kinds.NOTE,
        {"text": "angry customer", "transfer_id": "t"},
        {"text": "", "transfer_id": "t", "redacted": True},
    ),
    (
        kinds.WHISPER,
        {"text": "offer a refund", "to": {"id": "x", "name": "Ann"}},
        {"text": "", "to": {"id": "x", "name": "Ann"}, "redacted": True},
    ),
    (
        kinds.SUMMARY,
        {"transfer_id": "t", "text": "Ada, ada@example.com", "summary": {"facts": ["1042"]}},
        {"transfer_id": "t", "text": "", "summary": None, "redacted": True},
    ),
    (
        kinds.REPEAT,
        {
            "transfer_id": "t",
            "repeats": [{"seq": 9, "fact_kind": "order", "value": "1042", "original_seqs": [2]}],
        },
        {
            "transfer_id": "t",
            "repeats": [{"seq": 9, "fact_kind": "order", "original_seqs": [2]}],
            "redacted": True,
        },
    ),
    (
        kinds.TRANSFER_REQUESTED,
        {"transfer_id": "t", "kind": "warm", "note": "she wants a refund", "reason": None},
        {"transfer_id": "t", "kind": "warm", "note": None, "reason": None, "redacted": True},
    ),
    (
        kinds.ESCALATED,
        {"by": "agent", "reason": "Ada threatens to sue", "rule": None, "phrase": None},
        {"by": "agent", "reason": "", "rule": None, "phrase": None, "redacted": True},
    ),
    (
        kinds.RATED,
        {"score": 2, "comment": "slow"},
        {"score": 2, "comment": None, "redacted": True},
    ),
    (
        kinds.OPENED,
        {
            "visitor": {"id": "v", "name": "Ada", "verified": True},
            "page_url": "https://x/?e=a@b",
            "priority": 0,
        },
        {
            "visitor": {"id": "v", "name": None, "verified": True},
            "page_url": None,
            "priority": 0,
            "redacted": True,
        },
    ),
]


class TestRedactBody:
    @pytest.mark.parametrize(("kind", "body", "expected"), CASES, ids=[c[0] for c in CASES])
    def test_words_go_structure_stays(
        self, kind: str, body: dict[str, Any], expected: dict[str, Any]
    ) -> None:
        """Each kind that carries words keeps its other fields, with the words emptied."""
        assert redact_body(kind, body) == expected

    @pytest.mark.parametrize(("kind", "body", "expected"), CASES, ids=[c[0] for c in CASES])
    def test_twice_is_once(self, kind: str, body: dict[str, Any], expected: dict[str, Any]) -> None:
        """Redacting a redacted body gives it back unchanged (erasure is idempotent)."""
        assert redact_body(kind, redact_body(kind, body)) == expected

    def test_kinds_without_words_are_kept(self) -> None:
        """Events that carry no one's words are left exactly as they were."""
        for kind, body in (
            (kinds.QUEUED, {"reason": "new"}),
            (kinds.CLOSED, {"by": "agent"}),
            (kinds.AGENT_JOINED, {"agent": {"id": "a", "name": "Ann"}}),
            (kinds.TAGGED, {"tags": ["refund"], "added": ["refund"], "removed": []}),
        ):
            assert redact_body(kind, body) == body

    def test_the_input_is_not_changed(self) -> None:
        """The caller's dict is not modified (the ORM compares old and new)."""
        body = {"score": 2, "comment": "slow"}
        redact_body(kinds.RATED, body)
        assert body == {"score": 2, "comment": "slow"}
