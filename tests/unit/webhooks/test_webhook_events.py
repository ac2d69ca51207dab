"""The pure parts of webhooks: which stored events become which webhook, their payloads, the
signature, the retry schedule and the URL guard (app/webhooks/{events,signing,schedule,urls}.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.chat import events as kinds
from app.webhooks import events, schedule, signing, urls
from app.webhooks.events import StoredFacts, webhook_event

T0 = datetime(2026, 12, 4, 5, 0, tzinfo=UTC)
CID = uuid.UUID("11111111-2222-3333-4444-555555555555")
AGENT = {"id": "a1", "name": "Dana", "avatar": None}


def stored(
    kind: str,
    body: dict[str, Any] | None = None,
    *,
    sender: str = "system",
    visibility: str = "all",
    seq: int = 4,
) -> StoredFacts:
    return StoredFacts(
        conversation_id=CID,
        seq=seq,
        kind=kind,
        sender_type=sender,
        sender_id=None if sender == "system" else uuid.UUID(int=7),
        sender_name=None if sender == "system" else "Ada",
        visibility=visibility,
        body=body or {},
        created_at=T0,
    )


def mapped(kind: str, body: dict[str, Any] | None = None, **kw: Any) -> tuple[str, dict[str, Any]]:
    event = webhook_event(stored(kind, body, **kw))
    assert event is not None
    return event.type, event.data


class TestKinds:
    def test_kind_names_match_the_chat_log(self) -> None:
        """The pure module's copies of the stored kinds are the chat log's names."""
        for name in (
            "OPENED",
            "MESSAGE",
            "QUEUED",
            "ASSIGNED",
            "AGENT_LEFT",
            "CLOSED",
            "OFFLINE",
            "TRANSFER_REQUESTED",
            "TRANSFER_ACCEPTED",
            "ESCALATED",
            "RATED",
        ):
            assert getattr(events, name) == getattr(kinds, name), name


class TestMapping:
    def test_opened_is_conversation_created(self) -> None:
        """`conversation.opened` becomes `conversation.created` with the visitor and skill."""
        body = {
            "visitor": {"id": "v1", "name": "Ada", "verified": True},
            "priority": 1,
            "page_url": "https://shop.example.com/cart",
            "skill": {"id": 3, "source": "page", "matched": ["/cart"]},
        }
        assert mapped(kinds.OPENED, body) == (
            "conversation.created",
            {
                "visitor": {"id": "v1", "name": "Ada", "verified": True},
                "priority": 1,
                "page_url": "https://shop.example.com/cart",
                "skill_id": 3,
            },
        )

    def test_messages_of_visitor_and_agent(self) -> None:
        """Visitor and agent messages are `message.created`, with sender, text and files."""
        body = {
            "text": "Order 1042",
            "attachments": [
                {"id": "f1", "filename": "a.png", "content_type": "image/png", "size": 9, "x": 1}
            ],
        }
        type_, data = mapped(kinds.MESSAGE, body, sender="visitor")
        assert type_ == "message.created"
        assert data == {
            "sender": {"type": "visitor", "id": str(uuid.UUID(int=7)), "name": "Ada"},
            "text": "Order 1042",
            "attachments": [
                {"id": "f1", "filename": "a.png", "content_type": "image/png", "size": 9}
            ],
        }
        assert mapped(kinds.MESSAGE, {"text": "Hi"}, sender="agent")[0] == "message.created"

    @pytest.mark.parametrize(
        ("kind", "visibility", "sender"),
        [
            (kinds.NOTE, "agents", "agent"),
            (kinds.WHISPER, "agents", "agent"),
            (kinds.TRANSFER_CHAT, "agents", "agent"),
            (kinds.MESSAGE, "agents", "agent"),
            (kinds.MESSAGE, "all", "system"),
            (kinds.SUMMARY, "agents", "system"),
            (kinds.ROUTING_DECIDED, "agents", "system"),
            (kinds.AGENT_JOINED, "all", "system"),
        ],
    )
    def test_internal_content_is_never_sent(self, kind: str, visibility: str, sender: str) -> None:
        """Notes, whispers, the transfer channel, agents-only messages, summaries and routing
        reasons are no webhook."""
        assert (
            webhook_event(stored(kind, {"text": "secret"}, visibility=visibility, sender=sender))
            is None
        )

    def test_assigned_says_how(self) -> None:
        """`conversation.assigned` names the agent and how: routing, offer, transfer, reassign."""
        assert mapped(kinds.ASSIGNED, {"agent": AGENT, "epoch": 1})[1] == {
            "agent": {"id": "a1", "name": "Dana"},
            "via": "routing",
            "transfer_id": None,
            "by": None,
        }
        assert mapped(kinds.ASSIGNED, {"agent": AGENT, "offer_id": "o"})[1]["via"] == "offer"
        assert mapped(kinds.ASSIGNED, {"agent": AGENT, "transfer_id": "t"})[1]["via"] == "transfer"
        by = {"agent": AGENT, "by": {"id": "s", "name": "Sam"}}
        assert mapped(kinds.ASSIGNED, by)[1]["via"] == "reassign"

    def test_transfers(self) -> None:
        """A warm transfer accepted, a cold transfer made and a supervisor's reassign or take
        over are `conversation.transferred`; the transfer's note never travels."""
        warm = mapped(kinds.TRANSFER_ACCEPTED, {"transfer_id": "t1", "agent": AGENT})
        assert warm == (
            "conversation.transferred",
            {
                "kind": "warm",
                "transfer_id": "t1",
                "from_agent": None,
                "to_agent": {"id": "a1", "name": "Dana"},
                "to_skill_id": None,
            },
        )
        cold_body = {
            "transfer_id": "t2",
            "kind": "cold",
            "from_agent": AGENT,
            "to": {"skill": {"id": 5, "name": "Billing"}},
            "note": "angry customer",
        }
        type_, cold = mapped(kinds.TRANSFER_REQUESTED, cold_body, visibility="agents")
        assert type_ == "conversation.transferred"
        assert cold["kind"] == "cold"
        assert cold["to_skill_id"] == 5
        assert "angry" not in str(cold)
        warm_asked = {**cold_body, "kind": "warm"}
        assert webhook_event(stored(kinds.TRANSFER_REQUESTED, warm_asked)) is None
        moved = mapped(kinds.AGENT_LEFT, {"agent": AGENT, "reason": "reassigned"})[1]
        assert moved["kind"] == "reassign"
        assert mapped(kinds.AGENT_LEFT, {"agent": AGENT, "reason": "taken_over"})[1]["kind"] == (
            "take_over"
        )
        for reason in ("transferred", "agent_disconnected", "unanswered"):
            assert (
                webhook_event(stored(kinds.AGENT_LEFT, {"agent": AGENT, "reason": reason})) is None
            )

    def test_the_others(self) -> None:
        """Queued, escalated (without the agents' reason), closed, rated and offline."""
        assert mapped(kinds.QUEUED, {"reason": "new"}) == ("conversation.queued", {"reason": "new"})
        escalated = mapped(
            kinds.ESCALATED,
            {"by": "agent", "reason": "rude", "rule": None, "phrase": "manager", "agent": AGENT},
            visibility="agents",
        )
        assert escalated == (
            "conversation.escalated",
            {"by": "agent", "rule": None, "agent": {"id": "a1", "name": "Dana"}},
        )
        assert mapped(kinds.CLOSED, {"by": "agent"}) == (
            "conversation.closed",
            {"by": "agent", "api_key": None},
        )
        key = {"id": "k1", "name": "CRM sync"}
        assert mapped(kinds.CLOSED, {"by": "system", "api_key": key}) == (
            "conversation.closed",
            {"by": "system", "api_key": key},
        )
        assert mapped(kinds.RATED, {"score": 5, "comment": "great"}) == (
            "csat.submitted",
            {"score": 5, "comment": "great"},
        )
        assert mapped(kinds.OFFLINE, {"reason": "closed_hours", "opens_at": None}) == (
            "offline_message.created",
            {"reason": "closed_hours", "opens_at": None},
        )

    def test_payload_and_stable_id(self) -> None:
        """The payload's fields; the id depends only on the conversation and seq."""
        event = webhook_event(stored(kinds.CLOSED, {"by": "visitor"}, seq=9))
        assert event is not None
        assert event.payload() == {
            "id": events.event_id(CID, 9),
            "type": "conversation.closed",
            "created_at": "2026-12-04T05:00:00Z",
            "conversation_id": str(CID),
            "seq": 9,
            "data": {"by": "visitor", "api_key": None},
        }
        assert events.event_id(CID, 9) == events.event_id(CID, 9) != events.event_id(CID, 10)
        assert events.event_id(CID, 9).startswith("evt_")


# Stored events whose webhook carries someone's words, with the words.
WORDY: list[tuple[StoredFacts, str]] = [
    (
        stored(
            kinds.OPENED,
            {
                "visitor": {"id": "v1", "name": "Ada Lovelace", "verified": False},
                "page_url": "https://shop.example.com/orders/1042",
                "skill": {"id": 2},
            },
        ),
        "Lovelace",
    ),
    (
        stored(
            kinds.MESSAGE,
            {
                "text": "Order 1042",
                "attachments": [{"id": "f1", "filename": "receipt.png", "size": 9}],
            },
            sender="visitor",
        ),
        "receipt",
    ),
    (stored(kinds.MESSAGE, {"text": "Resending 1042"}, sender="agent"), "1042"),
    (stored(kinds.RATED, {"score": 2, "comment": "grumpy"}), "grumpy"),
]


class TestRedaction:
    @pytest.mark.parametrize(("facts", "word"), WORDY, ids=lambda v: getattr(v, "kind", v))
    def test_words_go_structure_stays(self, facts: StoredFacts, word: str) -> None:
        """A payload's words, the visitor's name and page go; its id, type, seq and every
        field's place stay, with `data.redacted`; redacting twice is once."""
        event = webhook_event(facts)
        assert event is not None
        payload = event.payload()
        assert word in str(payload)
        redacted = events.redact_payload(payload)
        assert word not in str(redacted)
        assert "1042" not in str(redacted)
        assert {k: v for k, v in redacted.items() if k != "data"} == {
            k: v for k, v in payload.items() if k != "data"
        }
        assert set(redacted["data"]) == set(payload["data"]) | {"redacted"}
        assert redacted["data"]["redacted"] is True
        assert events.redact_payload(redacted) == redacted

    def test_the_senders_kept_but_not_the_visitors_name(self) -> None:
        """An agent's name stays (it is no visitor's data); the visitor's goes; ids stay."""
        said = {"text": "hi"}
        for sender, name in (("agent", "Ada"), ("visitor", None)):
            event = webhook_event(stored(kinds.MESSAGE, said, sender=sender))
            assert event is not None
            data = events.redact_payload(event.payload())["data"]
            assert data["sender"] == {"type": sender, "id": str(uuid.UUID(int=7)), "name": name}

    def test_payloads_without_words_are_left_as_they_are(self) -> None:
        """Queued, assigned, closed, offline, escalations and test pings carry no one's words."""
        for facts in (
            stored(kinds.QUEUED, {"reason": "new"}),
            stored(kinds.ASSIGNED, {"agent": AGENT}),
            stored(kinds.CLOSED, {"by": "visitor"}),
            stored(kinds.OFFLINE, {"reason": "no_agents", "opens_at": None}),
        ):
            event = webhook_event(facts)
            assert event is not None
            assert events.redact_payload(event.payload()) == event.payload()
        ping = events.ping_event(event_id="evt_x", now=T0, endpoint_id=CID).payload()
        assert events.redact_payload(ping) == ping


class TestSigning:
    def test_header_verifies(self) -> None:
        """The header is `t=…,v1=<hex HMAC-SHA256 of "t.body">` and verifies with the secret."""
        body = b'{"id":"evt_1"}'
        value = signing.header("whsec_abc", body, 1_700_000_000)
        assert value.startswith("t=1700000000,v1=")
        assert len(value.split("v1=")[1]) == 64
        assert signing.verify("whsec_abc", body, value, now=1_700_000_100)

    def test_tampering_and_replays_fail(self) -> None:
        """Another body, another secret, a stale timestamp or a garbled header fail."""
        body = b"{}"
        value = signing.header("whsec_abc", body, 1000)
        assert not signing.verify("whsec_abc", b"{ }", value, now=1000)
        assert not signing.verify("whsec_xyz", body, value, now=1000)
        assert not signing.verify("whsec_abc", body, value, now=1000 + 301)
        assert not signing.verify("whsec_abc", body, "v1=00", now=1000)
        assert not signing.verify("whsec_abc", body, "garbage", now=1000)

    def test_known_vector(self) -> None:
        """Matches an independent computation (as openssl dgst -sha256 -hmac would)."""
        import hashlib
        import hmac

        expected = hmac.new(b"whsec_k", b"42.hello", hashlib.sha256).hexdigest()
        assert signing.signature("whsec_k", b"hello", 42) == expected


class TestSchedule:
    def test_backoff_then_give_up(self) -> None:
        """10 s, 30 s, 2 min … 12 h after each failure (without jitter), then no more."""
        delays = []
        for attempts in range(1, schedule.MAX_ATTEMPTS + 1):
            at = schedule.next_attempt(attempts=attempts, now=T0, base_seconds=10, jitter=0)
            delays.append(None if at is None else (at - T0).total_seconds())
        assert delays == [10, 30, 120, 600, 1800, 3600, 10800, 21600, 43200, None]
        total = timedelta(seconds=sum(d for d in delays if d is not None))
        assert timedelta(hours=22) < total < timedelta(hours=24)

    def test_jitter_bounds(self) -> None:
        """Jitter moves a delay by at most 20 % either way."""
        low = schedule.next_attempt(attempts=1, now=T0, base_seconds=10, jitter=-1)
        high = schedule.next_attempt(attempts=1, now=T0, base_seconds=10, jitter=1)
        assert low == T0 + timedelta(seconds=8)
        assert high == T0 + timedelta(seconds=12)


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "ftp://example.com/x",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "https://",
            "gopher://x",
        ],
    )
    def test_refused_always(self, url: str) -> None:
        """Other schemes, credentials and a missing host are refused, whatever the setting."""
        assert urls.problem(url, allow_private=True) is not None

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8080/hook",
            "http://localhost/hook",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.1.1]/",
            "http://100.64.0.1/",
        ],
    )
    def test_private_networks(self, url: str) -> None:
        """Private, loopback, link-local and CGNAT hosts pass only when allowed."""
        assert urls.problem(url, allow_private=True) is None
        assert urls.problem(url, allow_private=False) is not None

    def test_public(self) -> None:
        """A public name or address is fine either way (names are checked again when sent)."""
        for url in ("https://crm.example.com/hook", "http://93.184.216.34/x"):
            assert urls.problem(url, allow_private=False) is None
