"""Unit tests for `app.handoff.summary` (with `digest`, `statements` and `sentiment`): the
context summary built from scripted conversations, and properties of random ones.

Every scripted conversation is checked for the promises of the issue: every fact the customer
gave is in the summary with its source seq, `text()` holds `TEXT_WORD_LIMIT`, nothing in the
summary is absent from the conversation, and building is deterministic (also with the events
shuffled: the builder reads them in seq order). Pure inputs, no loop, no database.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.handoff import digest
from app.handoff.sentences import clip, sentences, similarity, word_count, words
from app.handoff.sentiment import (
    DEFAULT_SCORER,
    IMPROVING,
    STEADY,
    WORSENING,
    LexiconScorer,
    trend,
)
from app.handoff.statements import (
    DID,
    NOTED,
    PROMISED,
    Action,
    AgentLine,
    Quote,
    agent_actions,
    key_sentences,
    open_questions,
)
from app.handoff.summary import (
    TEXT_WORD_LIMIT,
    EarlierConversation,
    EventView,
    Summary,
    SummaryInput,
    VisitorView,
    build_summary,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
AGENTS_ONLY = "agents"


class Chat:
    """A conversation written event by event, one minute apart unless told otherwise."""

    def __init__(
        self,
        *,
        name: str | None = "Ada",
        page: str | None = "https://shop.example.com/help",
        priority: int = 0,
        verified: bool = False,
        skill_source: str = "none",
        opened: bool = True,
    ) -> None:
        self.events: list[EventView] = []
        self.clock = T0
        self.name = name
        self.uploads = 0
        if opened:
            self.add(
                "conversation.opened",
                body={
                    "visitor": {"id": "v1", "name": name, "verified": verified},
                    "priority": priority,
                    "page_url": page,
                    "skill": {"id": None, "source": skill_source, "matched": []},
                },
                minutes=0,
            )

    def add(
        self,
        kind: str,
        sender: str = "system",
        body: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        visibility: str = "all",
        minutes: float = 1,
    ) -> int:
        seq = len(self.events) + 1
        sender_id = None if sender == "system" else f"{sender}:{name}"
        event = EventView(seq, kind, sender, sender_id, name, visibility, body or {}, self.clock)
        self.events.append(event)
        self.clock += timedelta(minutes=minutes)
        return seq

    def says(self, text: str) -> int:
        return self.add("message", "visitor", {"text": text}, name=self.name)

    def replies(self, text: str, agent: str = "Dana") -> int:
        return self.add("message", "agent", {"text": text}, name=agent)

    def file(self, name: str, content_type: str = "image/png", size: int = 81234) -> dict[str, Any]:
        """An attachment as a `message` body names it, with a fresh deterministic id."""
        self.uploads += 1
        return {
            "id": f"00000000-0000-4000-8000-{self.uploads:012d}",
            "name": name,
            "content_type": content_type,
            "size": size,
            "image": content_type.startswith("image/"),
        }

    def sends(self, *files: Mapping[str, Any], text: str = "") -> int:
        """The customer sends files, with `text` or (by default) alone."""
        body = {"text": text, "attachments": list(files)}
        return self.add("message", "visitor", body, name=self.name)

    def hands(self, *files: Mapping[str, Any], text: str = "", agent: str = "Dana") -> int:
        """An agent sends files, with `text` or (by default) alone."""
        return self.add("message", "agent", {"text": text, "attachments": list(files)}, name=agent)

    def note(self, text: str, agent: str = "Dana") -> int:
        return self.add("note", "agent", {"text": text}, name=agent, visibility=AGENTS_ONLY)

    def private(self, text: str, agent: str = "Dana") -> int:
        body = {"text": text}
        return self.add("transfer.chat", "agent", body, name=agent, visibility=AGENTS_ONLY)

    def queued(self, reason: str = "new") -> int:
        return self.add("conversation.queued", body={"reason": reason}, minutes=0)

    def offline(self) -> int:
        return self.add("conversation.offline", body={"reason": "no_agents", "opens_at": None})

    def assigned(self, agent: str = "Dana") -> int:
        seq = self.add("conversation.assigned", body={"agent": {"id": agent, "name": agent}})
        self.add("agent.joined", body={"agent": {"id": agent, "name": agent}}, minutes=0)
        return seq

    def left(self, agent: str = "Dana", reason: str = "agent_disconnected") -> int:
        body = {"agent": {"id": agent, "name": agent}, "reason": reason}
        return self.add("agent.left", body=body, minutes=0)

    def closed(self) -> int:
        return self.add("conversation.closed", "visitor", {"by": "visitor"}, name=self.name)

    def wait(self, minutes: float) -> None:
        self.clock += timedelta(minutes=minutes)

    def transfer(
        self,
        to: Mapping[str, Any],
        *,
        kind: str = "warm",
        by: str = "Dana",
        note: str | None = None,
        reason: str | None = None,
        tid: str = "t1",
    ) -> int:
        body = {
            "transfer_id": tid,
            "kind": kind,
            "from_agent": {"id": by, "name": by},
            "to": to,
            "note": note,
            "reason": reason,
        }
        return self.add("transfer.requested", "agent", body, name=by, visibility=AGENTS_ONLY)

    def accepted(self, agent: str, tid: str = "t1") -> int:
        body = {"transfer_id": tid, "agent": {"id": agent, "name": agent}}
        return self.add("transfer.accepted", body=body, visibility=AGENTS_ONLY)

    def declined(self, agent: str, reason: str | None, tid: str = "t1") -> int:
        body = {"transfer_id": tid, "agent": {"id": agent, "name": agent}, "reason": reason}
        return self.add("transfer.declined", body=body, visibility=AGENTS_ONLY)

    def expired(self, tid: str = "t1") -> int:
        return self.add("transfer.expired", body={"transfer_id": tid}, visibility=AGENTS_ONLY)

    def escalated(self, reason: str, by: str, rule: str | None = None) -> int:
        body = {"reason": reason, "by": by, "rule": rule}
        return self.add("conversation.escalated", body=body, visibility=AGENTS_ONLY)

    def summarized(self) -> int:
        return self.add("handoff.summary", body={"version": 1}, visibility=AGENTS_ONLY)

    def input(self, **changes: Any) -> SummaryInput:
        visitor = VisitorView("v1", self.name, None, None, False, 0, {})
        return replace(
            SummaryInput(events=tuple(self.events), visitor=visitor, now=self.clock), **changes
        )


@dataclass(frozen=True)
class Script:
    """A scripted conversation and the facts its customer gave: `(kind, value, seq)`."""

    source: SummaryInput
    facts: list[tuple[str, str, int]] = field(default_factory=list)
    superseded: list[tuple[str, str, str]] = field(default_factory=list)  # kind, old, new


SCRIPTS: dict[str, Callable[[], Script]] = {}


def script(function: Callable[[], Script]) -> Callable[[], Script]:
    SCRIPTS[function.__name__] = function
    return function


@script
def billing_double_charge() -> Script:
    chat = Chat(page="https://shop.example.com/billing/invoices", skill_source="page")
    s2 = chat.says("Hi, I was charged twice for my order #48213. Both charges were $49.99.")
    chat.queued()
    chat.wait(4)
    chat.assigned("Dana")
    chat.replies("Hi Ada, I'm sorry about that. Let me look into it.")
    s7 = chat.says("The second charge appeared on 2026-11-18 on my Visa card.")
    chat.replies("I've found the duplicate charge. I will refund $49.99 today.")
    chat.says("Thank you!")
    return Script(
        chat.input(skill_name="Billing"),
        facts=[("order", "48213", s2), ("amount", "$49.99", s2), ("date", "2026-11-18", s7)],
    )


@script
def technical_fault() -> Script:
    chat = Chat(page="https://app.example.com/settings/sync")
    chat.says(
        "The desktop app keeps crashing when I open the sync settings. "
        "I tried restarting the computer, reinstalling the app and clearing the cache."
    )
    chat.queued()
    chat.assigned("Lee")
    chat.replies("Thanks for trying those steps. Which version do you have?", "Lee")
    s6 = chat.says("Version 4.2 on Windows 11. My ticket from last week is TCK-20931.")
    chat.replies("I've escalated TCK-20931 to our engineers.", "Lee")
    s8 = chat.says("It still shows an error after the update.")
    del s8
    return Script(
        chat.input(skill_name="Technical"),
        facts=[("ticket", "TCK-20931", s6)],
    )


@script
def angry_customer() -> Script:
    chat = Chat()
    s2 = chat.says("Hello, I have a question about my order 55120.")
    chat.queued()
    chat.wait(20)
    chat.assigned()
    chat.says("It still has not arrived and it has been two weeks.")
    chat.replies("I understand. Let me check the shipment.")
    chat.says("This is ridiculous, I have been waiting forever!")
    chat.says("Worst service ever. Absolutely unacceptable!!")
    return Script(chat.input(), facts=[("order", "55120", s2)])


@script
def three_orders_one_corrected() -> Script:
    chat = Chat()
    s2 = chat.says("I have three orders that never arrived: 10001, 10002 and 10003.")
    chat.queued()
    chat.assigned()
    chat.replies("Could you give me the order numbers one by one?")
    s6 = chat.says("Order 10001, order 10002 and order 10003.")
    s7 = chat.says("Sorry, I meant 10004, not 10002.")
    return Script(
        chat.input(),
        facts=[
            ("order", "10001", s2),
            ("order", "10002", s2),
            ("order", "10003", s2),
            ("order", "10001", s6),
            ("order", "10002", s6),
            ("order", "10003", s6),
            ("order", "10004", s7),
        ],
        superseded=[("order", "10002", "10004")],
    )


@script
def transferred_twice_with_notes() -> Script:
    chat = Chat()
    s2 = chat.says("My invoice INV is wrong, the amount should be EUR 120 not EUR 210.")
    chat.queued()
    chat.assigned("Dana")
    chat.replies("I see invoice total EUR 210. I'll get a billing specialist.")
    chat.note("Customer says invoice total is wrong; needs billing adjustment.")
    chat.transfer({"agent": {"id": "lee", "name": "Lee"}}, note="Invoice total dispute", tid="t1")
    chat.private("Can you take this? It's an invoice correction.")
    chat.private("Sorry, I'm on a call.", "Lee")
    chat.declined("Lee", "on a call", tid="t1")
    chat.transfer({"skill": {"id": 1, "name": "Billing"}}, note="Invoice EUR 120 vs 210", tid="t2")
    chat.accepted("Kim", tid="t2")
    chat.assigned("Kim")
    chat.summarized()
    chat.replies("Hi, I'm Kim from billing. I have the context.", "Kim")
    chat.transfer({"supervisors": True}, kind="escalation", by="Kim", note=None, tid="t3")
    chat.expired(tid="t3")
    return Script(
        chat.input(),
        facts=[("amount", "EUR 120", s2), ("amount", "EUR 210", s2)],
        superseded=[("amount", "EUR 210", "EUR 120")],  # "should be X not Y" corrects Y
    )


@script
def escalation_by_phrase() -> Script:
    chat = Chat()
    s2 = chat.says("My refund for order 77310 was declined again.")
    chat.queued()
    chat.assigned()
    chat.replies("I'm sorry, refunds take up to 10 days.")
    chat.says("That is not good enough. Let me talk to a manager.")
    chat.escalated("asked for a manager", "visitor")
    return Script(chat.input(), facts=[("order", "77310", s2)])


@script
def german() -> Script:
    chat = Chat(name="Jörg")
    s2 = chat.says(
        "Guten Tag, meine Bestellung 40512 ist nicht angekommen. "
        "Ich habe am 12.11.2026 bezahlt, 89,90 € per Kreditkarte."
    )
    chat.queued()
    chat.assigned()
    s5 = chat.says("Meine E-Mail ist joerg@beispiel.de und Telefon 0171 2345678.")
    s6 = chat.says("Ich meinte Bestellnummer 40521.")
    return Script(
        chat.input(),
        facts=[
            ("order", "40512", s2),
            ("date", "12.11.2026", s2),
            ("amount", "89,90 €", s2),
            ("email", "joerg@beispiel.de", s5),
            ("phone", "0171 2345678", s5),
            ("order", "40521", s6),
        ],
        superseded=[("order", "40512", "40521")],
    )


@script
def spanish() -> Script:
    chat = Chat(name="Lucía")
    s2 = chat.says("Hola, mi número de pedido es 88123 y me cobraron 30,00 € dos veces.")
    chat.queued()
    chat.assigned()
    chat.replies("¿Me puede dar su correo electrónico?")
    s6 = chat.says("Claro: lucia.garcia@ejemplo.es. ¿Cuándo recibiré el reembolso?")
    return Script(
        chat.input(),
        facts=[
            ("order", "88123", s2),
            ("amount", "30,00 €", s2),
            ("email", "lucia.garcia@ejemplo.es", s6),
        ],
    )


@script
def japanese() -> Script:
    chat = Chat(name="山田")
    s2 = chat.says("注文番号は１２３４５です。商品がまだ届きません。")
    chat.queued()
    chat.assigned()
    chat.replies("ご連絡ありがとうございます。確認いたします。")
    s6 = chat.says("メールはtaro@example.jpです。電話は090-1234-5678です。いつ届きますか？")
    s7 = chat.says("すみません、12345ではなく12346です。")
    return Script(
        chat.input(),
        facts=[
            ("order", "１２３４５", s2),
            ("email", "taro@example.jp", s6),
            ("phone", "090-1234-5678", s6),
            ("order", "12346", s7),
        ],
        superseded=[("order", "１２３４５", "12346")],
    )


@script
def very_long_chat() -> Script:
    chat = Chat()
    first = chat.says("My sync keeps failing with an error on every device since Monday.")
    chat.queued()
    chat.assigned()
    facts = [("order", "30000", chat.says("It started after order 30000 was upgraded."))]
    for i in range(160):
        chat.replies(f"Step {i}: please open the settings page and tell me what you see there.")
        if i % 40 == 0:
            value = f"user{i}@example.com"
            facts.append(("email", value, chat.says(f"Here is another address: {value}.")))
        else:
            chat.says(f"I see the same screen as before with the spinning wheel, attempt {i}.")
    chat.says("Are you still there? Why is nobody answering?")
    del first
    return Script(
        chat.input(transfer_note="Long troubleshooting, nothing worked yet. " * 5), facts=facts
    )


@script
def vip_verified() -> Script:
    chat = Chat(name="Grace", priority=2, verified=True)
    s2 = chat.says("I need to change the delivery address for order ORD-99102 today.")
    chat.queued()
    chat.assigned()
    visitor = VisitorView(
        "v1", "Grace Hopper", "grace@navy.example", "CUST-0042", True, 2, {"plan": "enterprise"}
    )
    return Script(chat.input(visitor=visitor), facts=[("order", "ORD-99102", s2)])


@script
def offline_message() -> Script:
    chat = Chat()
    s2 = chat.says("Do you ship to Canada? I want to order the Trail Pack 40.")
    chat.offline()
    chat.wait(90)
    s5 = chat.says("Also, can I pay in CAD 120 or only USD?")
    return Script(
        chat.input(catalogue=("Trail Pack 40", "Trail Pack")),
        facts=[("product", "Trail Pack 40", s2), ("amount", "CAD 120", s5)],
    )


@script
def email_and_phone() -> Script:
    chat = Chat()
    s2 = chat.says(
        "Please call me back at +44 20 7946 0958 or email ada.lovelace+support@example.co.uk."
    )
    chat.queued()
    chat.assigned()
    s5 = chat.says("Or my US number (555) 123-4567 works too.")
    return Script(
        chat.input(),
        facts=[
            ("phone", "+44 20 7946 0958", s2),
            ("email", "ada.lovelace+support@example.co.uk", s2),
            ("phone", "(555) 123-4567", s5),
        ],
    )


@script
def agent_promises() -> Script:
    chat = Chat()
    s2 = chat.says("My password reset email never arrived for account ada@example.org.")
    chat.queued()
    chat.assigned()
    chat.replies("I've reset your password manually. We'll email you a new link by Friday.")
    chat.replies("I will also send you a confirmation text within 24 hours.")
    chat.replies("Is there anything else I can help with?")
    return Script(chat.input(), facts=[("email", "ada@example.org", s2)])


@script
def open_question_unanswered() -> Script:
    chat = Chat()
    chat.says("My parcel shows delivered but it is not here.")
    chat.queued()
    chat.assigned()
    chat.replies("Sorry to hear that, I'm checking with the courier.")
    chat.says("How long will the investigation take? Will I get a replacement?")
    return Script(chat.input())


@script
def open_question_answered() -> Script:
    chat = Chat()
    chat.says("Can I change my plan to annual billing? The monthly plan costs too much.")
    chat.queued()
    chat.assigned()
    chat.replies("Yes, you can switch at any time from the billing page.")
    return Script(chat.input())


@script
def only_agent_notes() -> Script:
    chat = Chat(opened=False)
    chat.note("Customer called about order 12345, I've refunded the shipping fee.")
    chat.note("Follow up: they want a callback tomorrow.")
    return Script(chat.input())


@script
def empty_chat() -> Script:
    return Script(Chat(opened=False).input())


@script
def one_message() -> Script:
    chat = Chat(page=None)
    s2 = chat.says("hi")
    del s2
    return Script(chat.input())


@script
def cold_transfer_back_to_queue() -> Script:
    chat = Chat()
    s2 = chat.says("I want to upgrade to the Pro plan and pay £300 for the year.")
    chat.queued()
    chat.assigned("Dana")
    chat.replies("That's sales, I'll send you to the right team.")
    chat.transfer({"skill": {"id": 2, "name": "Sales"}}, kind="cold", note="Wants annual Pro")
    chat.left("Dana", "transferred")
    chat.queued("transferred")
    chat.wait(5)
    return Script(chat.input(skill_name="Sales"), facts=[("amount", "£300", s2)])


@script
def escalation_by_rule_with_history() -> Script:
    chat = Chat()
    s2 = chat.says("The app still fails to load my photos. This is terrible.")
    chat.queued()
    chat.assigned()
    chat.replies("Sorry, could you try logging out and in?")
    chat.says("I did that already, it is still broken and I am really upset.")
    chat.escalated("negative sentiment over the last 3 messages", "rule", "sentiment")
    earlier = (
        EarlierConversation("c-1", T0 - timedelta(days=30), T0 - timedelta(days=30), "Tech", "Lee"),
        EarlierConversation("c-2", T0 - timedelta(days=3), None, None, None),
    )
    del s2
    return Script(chat.input(earlier=earlier))


@script
def tickets_dates_and_links() -> Script:
    chat = Chat()
    s2 = chat.says(
        "Case #4821 was opened on Nov 20 and ticket 5590 on 20 November 2026. "
        "The error is on https://app.example.com/reports?id=7."
    )
    chat.queued()
    chat.assigned()
    return Script(
        chat.input(),
        facts=[
            ("ticket", "4821", s2),
            ("date", "Nov 20", s2),
            ("ticket", "5590", s2),
            ("date", "20 November 2026", s2),
            ("url", "https://app.example.com/reports?id=7", s2),
        ],
    )


@script
def amounts_in_many_currencies() -> Script:
    chat = Chat()
    s2 = chat.says("I paid $12.50, then 12,50 €, then EUR 40 and £3 and ¥5,000 for add-ons.")
    return Script(
        chat.input(),
        facts=[
            ("amount", "$12.50", s2),
            ("amount", "12,50 €", s2),
            ("amount", "EUR 40", s2),
            ("amount", "£3", s2),
            ("amount", "¥5,000", s2),
        ],
    )


@script
def answers_a_question_with_a_bare_number() -> Script:
    chat = Chat()
    chat.says("My package is lost.")
    chat.queued()
    chat.assigned()
    chat.replies("What is your order number, please?")
    s6 = chat.says("62981")
    chat.replies("And a phone number where we can reach you?")
    s8 = chat.says("5550199")
    return Script(chat.input(), facts=[("order", "62981", s6), ("phone", "5550199", s8)])


@script
def photo_without_text() -> Script:
    chat = Chat()
    chat.sends(chat.file("photo-of-the-box.png"))
    s3 = chat.says("The box arrived crushed and the lamp inside is broken. Order 48213.")
    chat.queued()
    chat.assigned("Dana")
    chat.replies("I'm sorry to see that. I've logged the damage from your photo.")
    chat.sends(chat.file("photo-of-the-lamp.jpg", "image/jpeg", 120422))
    return Script(chat.input(), facts=[("order", "48213", s3)])


@script
def agent_sends_a_form() -> Script:
    chat = Chat()
    chat.says("I want to return the kettle. Can you send me the returns form?")
    chat.queued()
    chat.assigned("Dana")
    chat.replies("Of course. What is your order number, please?")
    chat.hands(chat.file("returns-form.pdf", "application/pdf", 48211))
    s7 = chat.says("62981")
    chat.hands(chat.file("label.pdf", "application/pdf", 9120), text="I've attached the label.")
    return Script(chat.input(), facts=[("order", "62981", s7)])


@script
def several_files() -> Script:
    chat = Chat()
    chat.says("My invoice for order 10002 is wrong, the amount should be $40 not $90.")
    chat.queued()
    chat.assigned("Dana Smith")
    chat.hands(chat.file("invoice-10002.pdf", "application/pdf", 30211), agent="Dana Smith")
    chat.sends(
        chat.file("bank statement march.png"),
        chat.file("receipt.jpg", "image/jpeg", 51234),
        chat.file("email from shop.pdf", "application/pdf", 10240),
        text="Here is everything I have.",
    )
    chat.sends(*(chat.file(f"screenshot-{i}.png") for i in range(1, 5)))
    chat.hands(chat.file("credit-note.pdf", "application/pdf", 22000), agent="Dana Smith")
    return Script(chat.input())


@script
def files_and_a_transfer() -> Script:
    chat = Chat()
    chat.sends(chat.file("error-screen.png"), text="The app shows this error when I log in.")
    chat.queued()
    chat.assigned("Dana")
    chat.hands(chat.file("reset-guide.pdf", "application/pdf", 70000))
    chat.add(  # a file the agents shared privately is not something the customer sent or got
        "message",
        "agent",
        {"text": "", "attachments": [chat.file("internal-log.txt", "text/plain", 512)]},
        name="Dana",
        visibility=AGENTS_ONLY,
    )
    chat.says("I tried the guide, it still fails. What else can I do?")
    chat.transfer({"agent": {"id": "lee", "name": "Lee"}}, note="Login error, guide did not help")
    chat.accepted("Lee")
    chat.assigned("Lee")
    chat.summarized()
    return Script(chat.input(skill_name="Technical"))


# --------------------------------------------------------------------------------------
# Checks that hold for every conversation


@cache
def built(name: str) -> tuple[Script, Summary]:
    scripted = SCRIPTS[name]()
    return scripted, build_summary(scripted.source)


def texts(source: SummaryInput) -> dict[int, str]:
    return {e.seq: str(e.body.get("text", "")) for e in source.events}


def customer_seqs(source: SummaryInput) -> set[int]:
    return {
        e.seq
        for e in source.events
        if e.kind == "message" and e.sender_type == "visitor" and e.visibility == "all"
    }


def worded_seqs(source: SummaryInput) -> set[int]:
    """The customer's customer-facing messages with words: a message of files alone has none."""
    said = texts(source)
    return {seq for seq in customer_seqs(source) if said[seq].strip()}


def sent_files(source: SummaryInput) -> list[tuple[int, str]]:
    """(seq, id) of every file of a customer-facing message, in seq order."""
    return [
        (e.seq, str(item["id"]))
        for e in sorted(source.events, key=lambda e: e.seq)
        if e.kind == "message" and e.visibility == "all"
        for item in e.body.get("attachments", [])
    ]


def norm(value: str) -> str:
    """Digits only for values with three or more digits, else case-folded words."""
    value = unicodedata.normalize("NFKC", value)
    digits = "".join(c for c in value if c.isdigit())
    return digits if len(digits) >= 3 else " ".join(value.casefold().split())


def assert_traceable(source: SummaryInput, summary: Summary) -> None:
    """Every item of `summary` occurs in the event(s) it cites."""
    by_seq = {e.seq: e for e in source.events}
    text = texts(source)
    customer = customer_seqs(source)
    for fact in summary.facts:
        assert fact.seqs == tuple(sorted(set(fact.seqs)))
        assert fact.value in text[fact.seqs[0]], fact
        for seq in fact.seqs:
            assert seq in customer, fact
            if norm(fact.value).isdigit():
                assert norm(fact.value) in norm(text[seq]), fact
            else:
                assert norm(fact.value) in " ".join(text[seq].casefold().split()), fact
        if fact.superseded_by is not None:
            assert any(f.value == fact.superseded_by and f.kind == fact.kind for f in summary.facts)
    for quote in (*summary.problem, *summary.open_questions):
        assert quote.seq in customer
        assert quote.text in text[quote.seq]
    for action in summary.actions:
        event = by_seq[action.seq]
        assert event.sender_type == "agent"
        assert action.text in text[action.seq]
        assert action.internal == (event.visibility != "all")
    if summary.note is not None:
        if summary.note.seq is None:
            assert summary.note.text == (source.transfer_note or "").strip()
        else:
            assert by_seq[summary.note.seq].body["note"] == summary.note.text
    for item in summary.history:
        assert by_seq[item.seq].kind == item.kind
    for seq in (*summary.customer.seqs, *summary.origin.seqs):
        assert by_seq[seq].kind == "conversation.opened"
    for seq in summary.timings.seqs:
        assert seq in by_seq
    assert {seq for seq, _ in summary.sentiment.scores} == worded_seqs(source)
    assert [(f.seq, f.id) for f in summary.files] == sent_files(source)
    for sent in summary.files:
        event = by_seq[sent.seq]
        (named,) = [a for a in event.body["attachments"] if a["id"] == sent.id]
        name = named["name"] if named["name"].strip() else None  # a blank name is no name
        assert (sent.name, sent.content_type, sent.size, sent.image) == (
            name, named["content_type"], named["size"], named["image"]
        )  # fmt: skip
        assert sent.sender == ("customer" if event.sender_type == "visitor" else "agent")
        assert sent.sender_name == (None if sent.sender == "customer" else event.sender_name)
    assert {e.id for e in summary.earlier} == {e.id for e in source.earlier}
    everything = "\n".join(text.values())
    names = "".join(str(f.name) for f in summary.files)
    if '"' not in everything + names:  # else the quotes of the text cannot be told apart
        for quoted in re.findall(r'"([^"]*)"', summary.text()):
            assert quoted.removesuffix("…") in everything, quoted


def assert_deterministic(source: SummaryInput, summary: Summary) -> None:
    again = build_summary(source)
    assert again == summary
    assert json.dumps(again.to_json()) == json.dumps(summary.to_json())
    assert again.text() == summary.text()
    shuffled = list(source.events)
    random.Random(7).shuffle(shuffled)
    for events in (shuffled, list(reversed(source.events))):
        assert build_summary(replace(source, events=tuple(events))) == summary


@pytest.mark.parametrize("name", sorted(SCRIPTS))
class TestEveryScriptedConversation:
    def test_every_fact_the_customer_gave_is_in_the_summary(self, name: str) -> None:
        """Each fact the script's customer gave is in the summary, citing its message."""
        scripted, summary = built(name)
        for kind, value, seq in scripted.facts:
            matches = [f for f in summary.facts if f.kind == kind and f.value == value]
            assert matches, (kind, value, summary.facts)
            assert seq in matches[0].seqs
        for kind, old, new in scripted.superseded:
            (fact,) = [f for f in summary.facts if f.kind == kind and f.value == old]
            assert fact.superseded_by == new
        expected_current = {(k, v) for k, v, _ in scripted.facts} - {
            (k, old) for k, old, _ in scripted.superseded
        }
        assert {(f.kind, f.value) for f in summary.current_facts} >= expected_current

    def test_text_holds_the_length_limit(self, name: str) -> None:
        """`text()` never has more than `TEXT_WORD_LIMIT` words, however long the chat."""
        _, summary = built(name)
        text = summary.text()
        assert word_count(text) <= TEXT_WORD_LIMIT
        assert len(text.split()) <= TEXT_WORD_LIMIT
        assert text.startswith("Customer: ")

    def test_nothing_in_the_summary_is_absent_from_the_conversation(self, name: str) -> None:
        """Facts, quotes, actions, notes and history all occur in the events they cite."""
        scripted, summary = built(name)
        assert_traceable(scripted.source, summary)

    def test_building_is_deterministic(self, name: str) -> None:
        """The same input, in any event order, builds the same summary, JSON and text."""
        scripted, summary = built(name)
        assert_deterministic(scripted.source, summary)

    def test_json_is_stable_and_serialisable(self, name: str) -> None:
        """`to_json()` survives a JSON round trip unchanged."""
        _, summary = built(name)
        body = summary.to_json()
        assert json.loads(json.dumps(body)) == body
        assert body["version"] == 1
        assert list(body) == [
            "version", "built_at", "through_seq", "customer", "origin", "problem", "facts",
            "actions", "open_questions", "files", "note", "sentiment", "timings", "history",
            "earlier",
        ]  # fmt: skip


def test_there_are_at_least_twenty_scripted_conversations() -> None:
    """The acceptance criterion asks for 20 conversations of different kinds."""
    assert len(SCRIPTS) >= 20


# --------------------------------------------------------------------------------------
# What each kind of conversation shows


def summary_of(name: str) -> Summary:
    return built(name)[1]


def customer_quotes(summary: Summary) -> list[Quote]:
    return [*summary.problem, *summary.open_questions]


class TestBilling:
    def test_problem_is_in_the_customers_words_without_the_greeting(self) -> None:
        """The opening sentence is quoted verbatim, its "Hi," left out."""
        summary = summary_of("billing_double_charge")
        assert summary.problem[0] == Quote(2, "I was charged twice for my order #48213.")
        assert 'Problem: "I was charged twice for my order #48213."' in summary.text()

    def test_origin_topic_and_timings(self) -> None:
        """The page, the skill and how it was found, and the minutes waited and handled."""
        summary = summary_of("billing_double_charge")
        assert summary.origin.page_url == "https://shop.example.com/billing/invoices"
        assert (summary.origin.skill, summary.origin.skill_source) == ("Billing", "page")
        assert (summary.timings.waited_s, summary.timings.waiting_now) == (240, False)
        assert summary.timings.handled_s == 5 * 60
        assert "Times: waited 4m; handled 5m" in summary.text()

    def test_agent_actions_and_promises(self) -> None:
        """ "I've found…" is something done; "I will refund…" a promise, shown first."""
        summary = summary_of("billing_double_charge")
        assert [(a.kind, a.text) for a in summary.actions] == [
            (DID, "I've found the duplicate charge."),
            (PROMISED, "I will refund $49.99 today."),
        ]
        assert 'Agents: promised "I will refund $49.99 today."' in summary.text()


class TestTechnicalFault:
    def test_steps_tried_are_part_of_the_problem(self) -> None:
        """What the customer already tried is kept, so nobody asks them to try it again."""
        problem = [q.text for q in summary_of("technical_fault").problem]
        assert problem[:2] == [
            "The desktop app keeps crashing when I open the sync settings.",
            "I tried restarting the computer, reinstalling the app and clearing the cache.",
        ]

    def test_ticket_and_escalation_by_the_agent(self) -> None:
        """The ticket the customer gave is a fact; the agent's "I've escalated" an action."""
        scripted, summary = built("technical_fault")
        (seq,) = [seq for _, _, seq in scripted.facts]
        assert [(f.kind, f.value, f.seqs) for f in summary.facts] == [
            ("ticket", "TCK-20931", (seq,))
        ]
        assert summary.actions[0].text == "I've escalated TCK-20931 to our engineers."


class TestAngryCustomer:
    def test_sentiment_worsens(self) -> None:
        """Neutral at first, angry at the end: worsening, with both averages."""
        mood = summary_of("angry_customer").sentiment
        assert mood.trend == WORSENING
        assert mood.last < mood.first - 0.5
        assert len(mood.scores) == 4
        assert "Mood: worsening" in summary_of("angry_customer").text()


class TestCorrections:
    def test_three_orders_and_one_corrected(self) -> None:
        """10002 is superseded by 10004 ("I meant 10004, not 10002"); the others stay."""
        scripted, summary = built("three_orders_one_corrected")
        facts = {f.value: f for f in summary.facts}
        assert facts["10002"].superseded_by == "10004"
        assert facts["10002"].seqs == (
            *[seq for _, value, seq in scripted.facts if value == "10002"],
            facts["10004"].seqs[0],
        )
        assert [f.value for f in summary.current_facts] == ["10001", "10003", "10004"]
        assert "Facts: order 10001; order 10003; order 10004 (was 10002)" in summary.text()

    def test_german_correction(self) -> None:
        """ "Ich meinte Bestellnummer 40521" corrects the order number given before."""
        facts = {f.value: f for f in summary_of("german").facts}
        assert facts["40512"].superseded_by == "40521"
        assert facts["40521"].current


class TestTransferHistory:
    def test_history_in_order(self) -> None:
        """Transfers, their outcomes, the earlier summary and the escalation, in seq order."""
        history = summary_of("transferred_twice_with_notes").history
        assert [(h.kind, h.by, h.to) for h in history] == [
            ("transfer.requested", "Dana", "Lee"),
            ("transfer.declined", "Lee", None),
            ("transfer.requested", "Dana", "Billing"),
            ("transfer.accepted", "Kim", None),
            ("handoff.summary", None, None),
            ("transfer.requested", "Kim", "supervisors"),
            ("transfer.expired", None, None),
        ]
        assert [h.seq for h in history] == sorted(h.seq for h in history)
        assert history[1].reason == "on a call"
        assert history[5].mode == "escalation"

    def test_note_of_the_latest_transfer_with_one(self) -> None:
        """Without a note given, the latest transfer that had a note supplies it, with its seq."""
        summary = summary_of("transferred_twice_with_notes")
        assert summary.note is not None
        assert summary.note.text == "Invoice EUR 120 vs 210"
        assert summary.note.seq == 12

    def test_given_note_wins(self) -> None:
        """The note of the transfer being made now replaces older ones; it has no seq yet."""
        source = built("transferred_twice_with_notes")[0].source
        summary = build_summary(replace(source, transfer_note="  Customer is a reseller  "))
        assert summary.note is not None
        assert (summary.note.text, summary.note.seq) == ("Customer is a reseller", None)

    def test_agents_only_events_never_speak_for_the_customer(self) -> None:
        """Notes and the private transfer chat feed agent actions, marked internal, and
        nothing else: no problem sentence, question or fact comes from them."""
        scripted, summary = built("transferred_twice_with_notes")
        private = {e.seq for e in scripted.source.events if e.visibility != "all"}
        assert {q.seq for q in customer_quotes(summary)}.isdisjoint(private)
        assert all(set(f.seqs).isdisjoint(private) for f in summary.facts)
        internal = [a for a in summary.actions if a.internal]
        notes = [e.seq for e in scripted.source.events if e.kind == "note"]
        assert [(a.kind, a.seq) for a in internal] == [(NOTED, seq) for seq in notes]

    def test_latest_history_is_shown_first_when_space_runs_out(self) -> None:
        """The text keeps the latest transfer steps and shows them in order."""
        text = summary_of("transferred_twice_with_notes").text()
        assert "History: accepted by Kim; escalation Kim to supervisors; transfer expired" in text


class TestEscalation:
    def test_by_the_visitors_phrase(self) -> None:
        """The visitor asked for a manager: the escalation is in the history and the text."""
        summary = summary_of("escalation_by_phrase")
        assert (summary.history[-1].kind, summary.history[-1].by) == (
            "conversation.escalated",
            "visitor",
        )
        assert "History: escalated by visitor: asked for a manager" in summary.text()

    def test_by_rule_with_earlier_conversations(self) -> None:
        """A rule escalation names its rule; earlier chats are listed newest first."""
        summary = summary_of("escalation_by_rule_with_history")
        assert summary.history[-1].rule == "sentiment"
        assert [e.id for e in summary.earlier] == ["c-2", "c-1"]
        assert "Earlier chats: 2, last 2026-11-17" in summary.text()
        earlier = summary.to_json()["earlier"]
        assert earlier[0] == {
            "id": "c-2",
            "opened_at": "2026-11-17T09:00:00Z",
            "closed_at": None,
            "skill_name": None,
            "agent_name": None,
        }


class TestNonEnglish:
    def test_spanish_question_stays_open(self) -> None:
        """An inverted question mark opens a question; it is open until an agent replies."""
        summary = summary_of("spanish")
        assert [q.text for q in summary.open_questions] == ["¿Cuándo recibiré el reembolso?"]

    def test_japanese_sentences_without_spaces(self) -> None:
        """Japanese splits at its full stop and question mark with no space; the full-width
        order number keeps its verbatim value and is corrected by "ではなく"."""
        summary = summary_of("japanese")
        assert [q.text for q in summary.problem] == [
            "注文番号は１２３４５です。",
            "商品がまだ届きません。",
        ]
        assert [q.text for q in summary.open_questions] == ["いつ届きますか？"]
        facts = {f.value: f for f in summary.facts}
        assert facts["１２３４５"].superseded_by == "12346"

    def test_german_facts(self) -> None:
        """Order, date, amount, email and phone are read from German text."""
        kinds = {(f.kind, f.value) for f in summary_of("german").facts}
        assert ("phone", "0171 2345678") in kinds
        assert ("date", "12.11.2026") in kinds


class TestLongChats:
    def test_three_hundred_messages(self) -> None:
        """A chat of 300+ messages keeps the limit; the JSON keeps every fact."""
        scripted, summary = built("very_long_chat")
        assert len(scripted.source.events) > 300
        assert word_count(summary.text()) <= TEXT_WORD_LIMIT
        assert len(summary.to_json()["facts"]) == len(scripted.facts)
        assert len(summary.problem) == 1
        assert [q.text for q in summary.open_questions] == [
            "Are you still there?",
            "Why is nobody answering?",
        ]

    def test_the_first_four_sections_always_fit_together(self) -> None:
        """Customer, problem, facts and open questions are capped to fit in the limit."""
        caps = digest.CUSTOMER_WORDS + digest.PROBLEM_WORDS + digest.FACTS_WORDS
        assert caps + digest.QUESTIONS_WORDS <= TEXT_WORD_LIMIT

    def test_lower_priority_sections_go_first(self) -> None:
        """Under a tighter limit, sections disappear from the bottom up."""
        summary = summary_of("billing_double_charge")
        labels = [line.split(":")[0] for line in summary.text().splitlines()]
        for limit in range(TEXT_WORD_LIMIT, 0, -1):
            shown = [line.split(":")[0] for line in digest.render(summary, limit).splitlines()]
            assert word_count(digest.render(summary, limit)) <= limit
            assert shown == [label for label in labels if label in shown]
            missing = [label for label in labels if label not in shown]
            if missing:
                assert labels.index(missing[0]) >= len(shown) - 1 or "Problem" not in missing
        assert digest.render(summary, 2).startswith("Customer: Ada")


class TestCustomer:
    def test_vip_verified_customer(self) -> None:
        """Name, email, verified external id, VIP flag and attributes from the visitor."""
        summary = summary_of("vip_verified")
        c = summary.customer
        assert (c.name, c.email, c.external_id, c.verified, c.flag) == (
            "Grace Hopper",
            "grace@navy.example",
            "CUST-0042",
            True,
            "VIP",
        )
        assert summary.to_json()["customer"]["attributes"] == {"plan": "enterprise"}
        first = summary.text().splitlines()[0]
        assert first == "Customer: Grace Hopper; VIP; verified id CUST-0042; grace@navy.example"

    def test_unverified_external_id_is_not_shown(self) -> None:
        """An external id nobody vouched for is not presented as the customer's."""
        source = built("vip_verified")[0].source
        visitor = replace(source.visitor, verified=False, priority=1)
        chat = Chat(priority=1)
        summary = build_summary(replace(source, visitor=visitor, events=tuple(chat.events)))
        assert summary.customer.external_id is None
        assert summary.customer.flag == "high"

    def test_verified_without_an_external_id(self) -> None:
        """A verified visitor without an external id is shown as verified."""
        chat = Chat(verified=True)
        summary = build_summary(chat.input())
        assert summary.customer.verified
        assert summary.text().splitlines()[0] == "Customer: Ada; verified"

    def test_anonymous_visitor(self) -> None:
        """A visitor without a name is an anonymous visitor."""
        chat = Chat(name=None)
        summary = build_summary(chat.input())
        assert summary.text().splitlines()[0] == "Customer: anonymous visitor"


class TestWaitingAndOffline:
    def test_offline_message_is_still_waiting(self) -> None:
        """An offline chat waits from its offline event until now; nobody handled it."""
        summary = summary_of("offline_message")
        assert summary.timings.waiting_now
        assert summary.timings.waited_s == 92 * 60
        assert summary.timings.handled_s == 0
        assert "Times: waiting 1h32m" in summary.text()

    def test_cold_transfer_waits_again(self) -> None:
        """Back in the queue after a cold transfer: handled time stops, waiting resumes."""
        summary = summary_of("cold_transfer_back_to_queue")
        assert summary.timings.waiting_now
        assert summary.timings.handled_s == 3 * 60
        assert summary.history[0].mode == "cold"

    def test_closed_chat_stops_the_clocks(self) -> None:
        """After the close, later `now`s add nothing."""
        chat = Chat()
        chat.says("My order 12345 is late.")
        chat.queued()
        chat.assigned()
        chat.closed()
        early = build_summary(chat.input())
        late = build_summary(chat.input(now=chat.clock + timedelta(days=3)))
        assert early.timings == late.timings

    @pytest.mark.parametrize(
        ("minutes", "shown"),
        [
            (0.5, "waiting 30s"),
            (59, "waiting 59m"),
            (61, "waiting 1h01m"),
            (50 * 60, "waiting 2d2h"),
        ],
    )
    def test_durations_read_at_a_glance(self, minutes: float, shown: str) -> None:
        """Seconds, minutes, hours and minutes, or days and hours."""
        chat = Chat()
        chat.says("Is anyone there to help with my refund?")
        chat.queued()
        chat.wait(minutes)
        assert f"Times: {shown}" in build_summary(chat.input()).text()

    def test_catalogue_products(self) -> None:
        """The longest catalogue name matching wins, case-insensitively."""
        facts = summary_of("offline_message").facts
        assert ("product", "Trail Pack 40") in {(f.kind, f.value) for f in facts}
        assert not any(f.value == "Trail Pack" for f in facts)


class TestQuestionsAndActions:
    def test_unanswered_questions(self) -> None:
        """Questions after the last agent message are open."""
        summary = summary_of("open_question_unanswered")
        assert [q.text for q in summary.open_questions] == [
            "How long will the investigation take?",
            "Will I get a replacement?",
        ]

    def test_answered_question_is_not_open(self) -> None:
        """A question an agent replied to after is not open."""
        assert summary_of("open_question_answered").open_questions == ()

    def test_promises_and_questions(self) -> None:
        """Promises and things done are actions; an agent's question is not."""
        summary = summary_of("agent_promises")
        assert [(a.kind, a.text) for a in summary.actions] == [
            (DID, "I've reset your password manually."),
            (PROMISED, "We'll email you a new link by Friday."),
            (PROMISED, "I will also send you a confirmation text within 24 hours."),
        ]

    def test_bare_numbers_answer_what_the_agent_asked(self) -> None:
        """ "62981" after "What is your order number?" is an order number."""
        facts = summary_of("answers_a_question_with_a_bare_number").facts
        assert [(f.kind, f.value) for f in facts] == [("order", "62981"), ("phone", "5550199")]


class TestSmallChats:
    def test_only_agent_notes(self) -> None:
        """Notes alone make agent actions, never the customer's problem or facts."""
        summary = summary_of("only_agent_notes")
        assert summary.problem == ()
        assert summary.facts == ()
        assert [a.kind for a in summary.actions] == [NOTED, NOTED]
        assert all(a.internal for a in summary.actions)

    def test_empty_chat(self) -> None:
        """No events: a summary that says who the customer is, and nothing else."""
        summary = summary_of("empty_chat")
        assert summary.through_seq == 0
        assert summary.text() == "Customer: Ada"
        assert summary.sentiment.trend == STEADY
        assert summary.timings.open_s == 0

    def test_one_greeting(self) -> None:
        """ "hi" is no problem statement."""
        summary = summary_of("one_message")
        assert summary.problem == ()
        assert summary.open_questions == ()


def without_file_only_messages(source: SummaryInput) -> SummaryInput:
    """The same conversation with each message of files alone turned into an event the
    builder ignores (seqs unchanged)."""
    events = tuple(
        replace(e, kind="x.ignored") if e.kind == "message" and not e.body["text"] else e
        for e in source.events
    )
    return replace(source, events=events)


def files_line(summary: Summary) -> str:
    (line,) = [line for line in summary.text().splitlines() if line.startswith("Files:")]
    return line


class TestFiles:
    def test_a_photo_sent_alone_is_a_file_of_the_customer(self) -> None:
        """A photo with no text is a `files` item with its seq, sender, name, type, size, image
        flag and id, and the text names it, so nobody asks the customer for it again."""
        summary = summary_of("photo_without_text")
        assert [(f.seq, f.sender, f.sender_name, f.name) for f in summary.files] == [
            (2, "customer", None, "photo-of-the-box.png"),
            (8, "customer", None, "photo-of-the-lamp.jpg"),
        ]
        first = summary.files[0]
        assert (first.content_type, first.size, first.image) == ("image/png", 81234, True)
        assert first.id == "00000000-0000-4000-8000-000000000001"
        assert files_line(summary) == (
            "Files: photo-of-the-box.png (customer); photo-of-the-lamp.jpg (customer)"
        )

    @pytest.mark.parametrize("name", ["photo_without_text", "agent_sends_a_form", "several_files"])
    def test_files_alone_make_no_quote_and_no_score(self, name: str) -> None:
        """A message of files alone adds no problem sentence, question, fact, action or mood
        score: the summary is the one built without it, but for the files."""
        source, summary = built(name)[0].source, summary_of(name)
        quotes: list[Quote | Action] = [
            *summary.problem, *summary.open_questions, *summary.actions,
        ]  # fmt: skip
        assert all(q.text.strip() for q in quotes)
        alone = {e.seq for e in source.events if e.kind == "message" and not e.body["text"]}
        assert alone
        assert {q.seq for q in quotes}.isdisjoint(alone)
        assert {seq for seq, _ in summary.sentiment.scores}.isdisjoint(alone)
        other = build_summary(without_file_only_messages(source))
        assert replace(summary, files=other.files) == other

    def test_an_agents_form_answers_a_question_and_keeps_their_request(self) -> None:
        """A form an agent sends alone is theirs ("Dana"); it answers the question before it,
        and the order number the agent had asked for is still read from the bare reply."""
        summary = summary_of("agent_sends_a_form")
        assert [(f.sender, f.sender_name, f.name, f.image) for f in summary.files] == [
            ("agent", "Dana", "returns-form.pdf", False),
            ("agent", "Dana", "label.pdf", False),
        ]
        assert [(f.kind, f.value) for f in summary.facts] == [("order", "62981")]
        assert files_line(summary) == "Files: returns-form.pdf (Dana); label.pdf (Dana)"
        chat = Chat()
        chat.says("Can you send me the returns form please?")
        chat.assigned()
        assert len(build_summary(chat.input()).open_questions) == 1
        chat.hands(chat.file("returns-form.pdf", "application/pdf"))
        assert build_summary(chat.input()).open_questions == ()

    def test_more_files_than_fit_are_counted_the_customers_first(self) -> None:
        """`files` lists all nine in seq order; the text shows the customer's first (in seq
        order), then "and N more", within its cap."""
        summary = summary_of("several_files")
        assert len(summary.files) == 9
        assert [f.seq for f in summary.files] == sorted(f.seq for f in summary.files)
        assert summary.files[0].sender_name == "Dana Smith"
        line = files_line(summary)
        assert line == (
            "Files: bank statement march.png (customer); receipt.jpg (customer); and 7 more"
        )
        assert word_count(line) <= digest.FILES_WORDS

    def test_files_in_a_transferred_chat(self) -> None:
        """With a transfer, the files line comes after the open question and before the note;
        files agents shared privately are left out."""
        summary = summary_of("files_and_a_transfer")
        assert [(f.name, f.sender) for f in summary.files] == [
            ("error-screen.png", "customer"),
            ("reset-guide.pdf", "agent"),
        ]
        labels = [line.split(" ", 1)[0] for line in summary.text().splitlines()]
        assert labels[labels.index("Unanswered:") + 1 :][:2] == ["Files:", "Note:"]
        assert files_line(summary) == "Files: error-screen.png (customer); reset-guide.pdf (Dana)"
        body = summary.to_json()
        assert [f["name"] for f in body["files"]] == ["error-screen.png", "reset-guide.pdf"]
        assert body["files"][0] == {
            "seq": 2, "sender": "customer", "sender_name": None,
            "id": "00000000-0000-4000-8000-000000000001", "name": "error-screen.png",
            "content_type": "image/png", "size": 81234, "image": True,
        }  # fmt: skip

    def test_files_are_kept_when_the_first_four_sections_are_full(self) -> None:
        """With customer, problem, facts and questions at their caps, the files line still
        comes next, before the note and what agents did, which are dropped."""
        name = "Grace Brewster Murray Hopper"
        chat = Chat(name=name, priority=2, verified=True)
        chat.says(
            "My order ORD-10001 arrived damaged and the refund for ORD-10002 never arrived at "
            "all, which is wrong."
        )
        chat.says(
            "The replacement ORD-10003 was also broken when it came and the courier lost "
            "ORD-10004 completely."
        )
        chat.assigned()
        chat.replies("I've checked all of your orders and I will ask the warehouse today.")
        chat.sends(*(chat.file(f"photo of the damaged box {i}.png") for i in range(6)))
        chat.says(
            "Why has nobody answered my emails about ORD-10005 and ORD-10006 for three whole "
            "weeks now?"
        )
        chat.says("When will I finally get my $129.90 and $59.90 back for these broken orders?")
        visitor = VisitorView("v1", name, "grace@navy.example", "CUST-0042", True, 2, {})
        summary = build_summary(chat.input(visitor=visitor, transfer_note="Refund over my limit"))
        lines = summary.text().splitlines()
        assert [line.split(" ", 1)[0] for line in lines] == [
            "Customer:", "Problem:", "Facts:", "Unanswered:", "Files:",
        ]  # fmt: skip
        assert sum(word_count(line) for line in lines[:4]) >= 65
        assert (
            files_line(summary) == "Files: photo of the… (customer); photo… (customer); and 4 more"
        )
        assert word_count(summary.text()) <= TEXT_WORD_LIMIT

    def test_the_first_four_caps_leave_room_for_a_file_and_a_count(self) -> None:
        """The caps of customer, problem, facts and questions leave the files line at least
        one file and "and N more" in the fullest chat."""
        first_four = (
            digest.CUSTOMER_WORDS + digest.PROBLEM_WORDS + digest.FACTS_WORDS
            + digest.QUESTIONS_WORDS
        )  # fmt: skip
        assert TEXT_WORD_LIMIT - first_four >= word_count("Files: box.png (Dana Smith); and 9 more")

    def test_tight_budgets_count_the_files(self) -> None:
        """When not even one name fits, the line says how many files there are; when nothing
        fits, it is left out."""
        chat = Chat(opened=False)
        chat.sends(*(chat.file(f"screenshot-{i}.png") for i in range(1, 13)))
        summary = build_summary(chat.input())
        assert digest.render(summary, 8).splitlines()[1] == (
            "Files: screenshot-1.png (customer); and 11 more"
        )
        assert digest.render(summary, 7).splitlines()[1] == "Files: 12 files"
        assert digest.render(summary, 4) == "Customer: Ada"
        one = Chat(opened=False)
        one.hands(one.file("a signed returns form.pdf"), agent="Dana Smith")
        summary = build_summary(one.input())
        assert digest.render(summary, 6) == "Customer: Ada\nFiles: a… (Dana Smith)"
        assert digest.render(summary, 5) == "Customer: Ada\nFiles: 1 file"

    def test_sender_and_name_fallbacks(self) -> None:
        """An agent without a name is "agent", a file without a name "file"; long names and
        agents' names are clipped."""
        chat = Chat(opened=False)
        nameless = {"id": "f1", "content_type": "image/png", "size": 1, "image": True}
        chat.add("message", "agent", {"text": "", "attachments": [nameless]})
        chat.hands(chat.file("the signed returns form for you.pdf"), agent="Dana Maria Smith")
        summary = build_summary(chat.input())
        assert [(f.sender, f.sender_name, f.name) for f in summary.files] == [
            ("agent", None, None),
            ("agent", "Dana Maria Smith", "the signed returns form for you.pdf"),
        ]
        assert files_line(summary) == "Files: file (agent); the signed returns… (Dana Maria…)"

    def test_malformed_attachments_are_read_as_absent(self) -> None:
        """Attachments that are not a list, items without an id, and mistyped fields are
        read as absent, never as an error."""
        chat = Chat(opened=False)
        chat.add("message", "visitor", {"text": "", "attachments": "photo.png"}, name="Ada")
        odd = [
            "photo.png",
            {"name": "no-id.png"},
            {"id": "  ", "name": "blank-id.png"},
            {"id": "f9", "name": 7, "content_type": None, "size": True, "image": "yes"},
            {"id": "f10", "size": 3.5},
        ]
        chat.add("message", "visitor", {"text": "", "attachments": odd}, name="Ada")
        summary = build_summary(chat.input())
        assert [(f.id, f.name, f.content_type, f.size, f.image) for f in summary.files] == [
            ("f9", None, None, None, False),
            ("f10", None, None, None, False),
        ]
        assert summary.problem == ()
        assert summary.sentiment.scores == ()

    def test_every_limit_holds_with_many_files(self) -> None:
        """Rendering under every limit holds it, with files of long, spaced and CJK names."""
        chat = Chat(name="山田")
        chat.says("注文番号は12345です。商品が壊れて届きました。どうすればいいですか？")
        names = ["箱の写真.png", "x" * 200, "returns form (signed).pdf", "a; b, c.txt"]
        chat.sends(*(chat.file(name) for name in names * 3))
        chat.hands(chat.file("返品フォーム.pdf", "application/pdf"), agent="佐藤")
        summary = build_summary(chat.input())
        for limit in range(TEXT_WORD_LIMIT + 1):
            text = digest.render(summary, limit)
            assert word_count(text) <= limit
            assert all(len(word) <= 60 for word in text.split())


class TestScorerIsPluggable:
    def test_custom_scorer_is_used_and_clamped(self) -> None:
        """Any `Scorer` may rate messages; out-of-range scores are clamped into [-1, 1]."""

        class Loud:
            def score(self, text: str) -> float:
                return 5.0 if "!" in text else -5.0

        source = built("angry_customer")[0].source
        summary = build_summary(replace(source, scorer=Loud()))
        assert [score for _, score in summary.sentiment.scores] == [-1.0, -1.0, 1.0, 1.0]
        assert summary.sentiment.trend == IMPROVING


class TestOddInput:
    def test_malformed_bodies_do_not_break_the_builder(self) -> None:
        """Bodies of unexpected shapes are read as absent, never as an error."""
        chat = Chat(opened=False)
        chat.add("conversation.opened", body={"visitor": "x", "priority": "2", "skill": [1]})
        chat.add("message", "visitor", {"text": 42}, name="Ada")
        chat.add("transfer.requested", "agent", {"to": None, "from_agent": "x"}, name="Dana")
        chat.add("transfer.declined", body={"agent": None, "reason": "  "})
        chat.add("conversation.escalated", body={"by": 3})
        summary = build_summary(chat.input())
        assert summary.problem == ()
        assert summary.origin.matched == ()
        assert summary.customer.priority == 0
        assert [(h.by, h.to, h.reason) for h in summary.history] == [
            (None, None, None),
            (None, None, None),
            (None, None, None),
        ]
        assert (
            "History: transfer agent to someone; declined by; escalated by rule" in summary.text()
        )

    def test_every_limit_holds_with_cjk_history(self) -> None:
        """Rendering under every limit holds it, also when items end in CJK text."""
        chat = Chat(name="山田")
        chat.says("注文番号は12345です。商品がまだ届きません。いつ届きますか？")
        for tid, (by, to) in enumerate([("佐藤", "鈴木"), ("鈴木", "高橋"), ("高橋", "田中")]):
            chat.transfer({"agent": {"id": to, "name": to}}, by=by, tid=str(tid))
            chat.declined(to, "忙しいです", tid=str(tid))
        summary = build_summary(chat.input())
        for limit in range(TEXT_WORD_LIMIT + 1):
            assert word_count(digest.render(summary, limit)) <= limit


# --------------------------------------------------------------------------------------
# The parts: sentences, statements, sentiment


class TestSentences:
    def test_split_on_latin_and_cjk_stops(self) -> None:
        """A "." needs a space after it ("$12.50" stays whole); CJK stops do not."""
        assert sentences("I paid $12.50. Then what?It broke") == [
            "I paid $12.50.",
            "Then what?It broke",
        ]
        assert sentences("届きません。いつですか？はい") == ["届きません。", "いつですか？", "はい"]
        assert sentences("line one\nline two\n\n...") == ["line one", "line two"]

    def test_word_count_reads_cjk_per_two_characters(self) -> None:
        """Space-separated words count one each; CJK runs one per two characters."""
        assert word_count("I was charged twice") == 4
        assert word_count("商品がまだ届きません") == 5
        assert word_count("") == 0

    def test_clip_is_a_prefix_with_an_ellipsis(self) -> None:
        """Clipping keeps whole words, marks the cut, and shortens overlong words."""
        assert clip("one two three four", 4) == "one two three four"
        assert clip("one two, three four", 2) == "one two…"
        assert clip("one two", 0) == ""
        long = "https://example.com/" + "x" * 80
        assert clip(long, 3) == long[:39] + "…"
        assert clip("商品がまだ届きません", 2) == "商品…"

    def test_words_and_similarity(self) -> None:
        """Words are case-folded; CJK becomes bigrams; similarity ignores stop words."""
        assert words("Hello WORLD") == ["hello", "world"]
        assert words("商品が") == ["商品", "品が"]
        assert words("x商y") == ["x", "商", "y"]
        assert similarity("Where is my order?", "where is MY order") == 1.0
        assert similarity("", "") == 0.0
        assert similarity("where is my refund", "where is my order") == 0.0


class TestKeySentences:
    def test_repeated_sentence_quoted_once(self) -> None:
        """A customer who says the same thing twice is quoted once."""
        messages = [
            Quote(2, "My card was charged twice for the same order."),
            Quote(4, "My card was charged twice for the same order!"),
            Quote(6, "The refund never arrived either."),
        ]
        assert [q.seq for q in key_sentences(messages)] == [2, 6]

    def test_at_most_the_limit_in_written_order(self) -> None:
        """The best sentences are chosen but returned in the order written."""
        messages = [
            Quote(2, "The printer is broken."),
            Quote(3, "My router shows an error light."),
            Quote(4, "The laptop cannot connect either."),
            Quote(5, "Scanning fails with a timeout."),
            Quote(6, "The modem crashed twice today."),
        ]
        chosen = key_sentences(messages, limit=3)
        # The opening (3 + one cue 2), the modem (two cues: 4), then the earliest of the
        # sentences with one cue (2 each); shown in the order written.
        assert [q.seq for q in chosen] == [2, 3, 6]


class TestAgentActions:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("I've reset your password.", DID),
            ("Your refund has been issued.", DID),
            ("We just sent a replacement.", DID),
            ("Ich habe die Bestellung storniert.", DID),
            ("He enviado el reembolso.", DID),
            ("返金処理をしました。", DID),
            ("I will refund the second charge.", PROMISED),
            ("We'll email you by Friday.", PROMISED),
            ("You'll receive a label within 2 days.", PROMISED),
            ("Wir werden das prüfen.", PROMISED),
            ("Can I reset it for you?", None),
            ("I need your order number.", None),
            ("He will call you back.", None),
            ("He is on holiday.", None),
            ("Thanks.", None),
        ],
    )
    def test_done_and_promised(self, text: str, kind: str | None) -> None:
        """First-person past tense is done, first-person future a promise; questions, needs
        and other people's plans are neither."""
        got = agent_actions([AgentLine(3, text, "Dana", internal=False)])
        assert [a.kind for a in got] == ([kind] if kind else [])

    def test_latest_actions_are_kept(self) -> None:
        """At most the limit, the latest ones."""
        lines = [AgentLine(i, f"I've checked item {i}.", "Dana", False) for i in range(20)]
        assert [a.seq for a in agent_actions(lines, limit=3)] == [17, 18, 19]
        assert agent_actions(lines, limit=0) == ()

    def test_open_questions_limit(self) -> None:
        """Only the latest open questions are kept."""
        messages = [Quote(i, f"Question number {i}?") for i in range(10)]
        assert [q.seq for q in open_questions(messages, None, limit=2)] == [8, 9]
        assert open_questions(messages, None, limit=0) == ()
        assert open_questions(messages, 9) == (Quote(9, "Question number 9?"),)


class TestSentiment:
    @pytest.mark.parametrize(
        ("text", "sign"),
        [
            ("Thanks, that works now, great!", 1),
            ("This is terrible", -1),
            ("It is not working", -1),
            ("Not bad at all", 1),
            ("I am not happy", -1),
            ("My order number is 12345", 0),
            ("Das ist schlecht", 0),
        ],
    )
    def test_default_scorer_signs(self, text: str, sign: int) -> None:
        """Valences from the lexicon, turned around by a negator within three words."""
        score = DEFAULT_SCORER.score(text)
        assert -1.0 <= score <= 1.0
        assert (score > 0) - (score < 0) == sign

    def test_boosters_capitals_and_exclamations_intensify(self) -> None:
        """ "very", a shouted word and "!" all make a feeling stronger."""
        base = DEFAULT_SCORER.score("this is bad")
        assert DEFAULT_SCORER.score("this is very bad") < base
        assert DEFAULT_SCORER.score("this is BAD") < base
        assert DEFAULT_SCORER.score("this is bad!!") < base
        assert DEFAULT_SCORER.score("THIS IS BAD") == base  # all capitals is not shouting one word

    def test_custom_lexicon(self) -> None:
        """A deployment may give its own lexicon."""
        scorer = LexiconScorer({"Schlecht": -2.0})
        assert scorer.score("Das ist schlecht") < 0

    @pytest.mark.parametrize(
        ("scores", "direction"),
        [
            ([], STEADY),
            ([-0.9], STEADY),
            ([0.0, -0.5], WORSENING),
            ([-0.5, 0.0], IMPROVING),
            ([0.1, 0.0, 0.1, 0.0], STEADY),
            ([0.5, 0.5, 0.5, 0.0, -0.5, -0.5, -0.5], WORSENING),
        ],
    )
    def test_trend(self, scores: list[float], direction: str) -> None:
        """The first and last windows (up to three messages each) decide the direction."""
        assert trend(scores).direction == direction


# --------------------------------------------------------------------------------------
# Properties of random conversations

FILLERS = [
    "I really need help with this.",
    "The page keeps loading forever.",
    "It is not working but I tried everything.",
    "Thanks for looking into it.",
    "Das funktioniert leider nicht.",
    "No funciona la aplicación.",
    "アプリが動きません。",
    "Why does this happen?",
    "Great, that worked!",
    "This is absolutely ridiculous!!",
    "Let me check that for you.",
    "I've sent you an email with the details.",
    "We'll call you tomorrow.",
]
FACTS = st.one_of(
    st.integers(10000, 99999).map(lambda n: ("order", f"{n}", f"My order number is {n}.")),
    st.integers(1000, 9999).map(lambda n: ("ticket", f"TCK-{n}", f"Ticket TCK-{n} is open.")),
    st.integers(0, 9999).map(
        lambda n: ("email", f"user{n}@example.com", f"Write to user{n}@example.com please.")
    ),
    st.integers(0, 9999).map(
        lambda n: ("phone", f"+44 20 7946 {n:04d}", f"Call me on +44 20 7946 {n:04d} today.")
    ),
    st.tuples(st.integers(1, 999), st.integers(0, 99)).map(
        lambda t: ("amount", f"${t[0]}.{t[1]:02d}", f"I paid ${t[0]}.{t[1]:02d} for it.")
    ),
)
NOISE = st.text(alphabet=st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=120)
# Digits and the punctuation of facts, to stress the extractors with near-misses.
NUMERIC_NOISE = st.text(alphabet="0123456789 .,-/+#@()$€:;?!xyORDTCKorder年月日", max_size=60)
PIECE = st.one_of(
    st.sampled_from(FILLERS).map(lambda text: (None, None, text)),
    FACTS,
    NOISE.map(lambda text: (None, None, text)),
    NUMERIC_NOISE.map(lambda text: (None, None, text)),
)
FILE_NAMES = st.one_of(
    st.sampled_from(
        ["photo-of-the-box.png", "returns form (signed).pdf", "領収書のスキャン.jpg", "a; b, c.txt"]
    ),
    NOISE,
    st.text(alphabet="ab .-", min_size=50, max_size=200),  # up to the store's 200 characters
)
MESSAGE = st.tuples(
    st.sampled_from(["visitor", "visitor", "agent", "note"]),
    st.lists(PIECE, min_size=1, max_size=4),
    st.integers(0, 30),
    st.lists(FILE_NAMES, max_size=10),  # a message carries at most 10 files
    st.booleans(),  # with files: sent alone, with no text
)
CONVERSATION = st.lists(MESSAGE, max_size=40)


def random_chat(
    messages: list[tuple[str, list[tuple[str | None, str | None, str]], int, list[str], bool]],
) -> tuple[Chat, list[tuple[str, str, int]]]:
    chat = Chat()
    chat.queued()
    chat.assigned()
    given: list[tuple[str, str, int]] = []
    for who, pieces, minutes, names, alone in messages:
        chat.wait(minutes)
        files = [chat.file(name) for name in names]
        text = "" if files and alone else " ".join(text for _, _, text in pieces)
        if who == "visitor":
            seq = chat.sends(*files, text=text) if files else chat.says(text)
            if text:
                given += [(kind, value, seq) for kind, value, _ in pieces if kind and value]
        elif who == "agent" and files:
            chat.hands(*files, text=text)
        elif who == "agent":
            chat.replies(text)
        else:
            chat.note(text)
    return chat, given


PROPERTIES = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestProperties:
    @PROPERTIES
    @given(CONVERSATION)
    def test_limit_holds(self, messages: Any) -> None:
        """Whatever the conversation, the text holds the word limit and no word is huge."""
        chat, _ = random_chat(messages)
        text = build_summary(chat.input()).text()
        assert word_count(text) <= TEXT_WORD_LIMIT
        assert all(len(word) <= 60 for word in text.split())

    @PROPERTIES
    @given(CONVERSATION)
    def test_every_embedded_fact_is_found_and_traceable(self, messages: Any) -> None:
        """Every fact planted in a customer message is in the summary, citing that message,
        and every item of the summary occurs in the event it cites."""
        chat, given_facts = random_chat(messages)
        source = chat.input()
        summary = build_summary(source)
        for kind, value, seq in given_facts:
            assert any(
                f.kind == kind and norm(f.value) == norm(value) and seq in f.seqs
                for f in summary.facts
            ), (kind, value, seq, summary.facts)
        assert_traceable(source, summary)

    @PROPERTIES
    @given(CONVERSATION, st.randoms(use_true_random=False))
    def test_deterministic_in_any_event_order(self, messages: Any, rnd: random.Random) -> None:
        """The same events, shuffled, build the same summary and the same JSON."""
        chat, _ = random_chat(messages)
        source = chat.input()
        summary = build_summary(source)
        events = list(source.events)
        rnd.shuffle(events)
        again = build_summary(replace(source, events=tuple(events)))
        assert again == summary
        assert json.dumps(again.to_json()) == json.dumps(summary.to_json())
