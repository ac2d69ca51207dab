"""Unit tests for `app.handoff.repeats`: after a transfer, did the customer have to say again
what they had already said? Pure inputs, no loop, no database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.handoff.facts import Fact
from app.handoff.repeats import SENTENCE, Repeat, repeats, repeats_after_transfer
from app.handoff.statements import Quote
from app.handoff.summary import EventView, SummaryInput, VisitorView, build_summary

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
TRANSFER = "transfer.accepted"


def chat(*lines: tuple[str, str]) -> tuple[list[EventView], int]:
    """Events from `(who, text)` lines: "visitor", "agent", "note" or "transfer" (the transfer
    event; its seq is returned). Seq 1 is the opening event."""
    events = [EventView(1, "conversation.opened", "system", None, None, "all", {}, T0)]
    transfer_seq = 0
    for who, text in lines:
        seq = len(events) + 1
        at = T0 + timedelta(minutes=seq)
        if who == "transfer":
            transfer_seq = seq
            body = {"transfer_id": "t1", "agent": {"id": "b", "name": "Lee"}}
            events.append(EventView(seq, TRANSFER, "system", None, None, "agents", body, at))
        elif who == "note":
            body = {"text": text}
            events.append(EventView(seq, "note", "agent", "a", "Dana", "agents", body, at))
        else:
            name = "Ada" if who == "visitor" else "Dana"
            events.append(EventView(seq, "message", who, who, name, "all", {"text": text}, at))
    return events, transfer_seq


def found(*lines: tuple[str, str]) -> list[tuple[int, str, str, tuple[int, ...]]]:
    events, transfer_seq = chat(*lines)
    return [
        (r.seq, r.fact_kind, r.value, r.original_seqs)
        for r in repeats_after_transfer(events, transfer_seq)
    ]


class TestFacts:
    def test_restated_order_number_after_transfer(self) -> None:
        """The order number given before the transfer, given again after it, is a repeat."""
        assert found(
            ("visitor", "My order 12345 never arrived."),
            ("transfer", ""),
            ("agent", "Hi, I'm Lee. How can I help?"),
            ("visitor", "As I said, order 12345 never came."),
        ) == [(5, "order", "12345", (2,))]

    def test_other_spellings_of_the_same_number(self) -> None:
        """`ORD-12345` restates `#12345`; `0044 …` restates `+44 …`; case does not matter."""
        assert found(
            ("visitor", "Order #12345, call +44 20 7946 0958 or mail Ada@Example.com"),
            ("transfer", ""),
            ("visitor", "ORD-12345 again; 0044 20 7946 0958; ada@example.com"),
        ) == [
            (4, "order", "ORD-12345", (2,)),
            (4, "email", "ada@example.com", (2,)),
            (4, "phone", "0044 20 7946 0958", (2,)),
        ]

    def test_a_new_different_order_number_is_no_repeat(self) -> None:
        """Giving another order number is new information, not a repeat."""
        assert (
            found(
                ("visitor", "My order 12345 never arrived."),
                ("transfer", ""),
                ("visitor", "I also have order 67890 missing."),
            )
            == []
        )

    def test_answering_the_new_agents_question_again(self) -> None:
        """A bare number answering "what is your order number?" after the transfer counts."""
        assert found(
            ("visitor", "My order 12345 never arrived."),
            ("transfer", ""),
            ("agent", "What is your order number?"),
            ("visitor", "12345"),
        ) == [(5, "order", "12345", (2,))]

    def test_bare_restatement_of_a_known_number(self) -> None:
        """ "it's still 12345" restates the known order number even unasked."""
        assert found(
            ("visitor", "ticket 4821 is about my invoice"),
            ("transfer", ""),
            ("visitor", "It's still 4821."),
        ) == [(4, "ticket", "4821", (2,))]

    def test_repeats_before_the_transfer_do_not_count(self) -> None:
        """Saying something twice before the transfer is nobody's failure."""
        assert (
            found(
                ("visitor", "My order 12345 never arrived."),
                ("visitor", "Order 12345, did you see it?"),
                ("transfer", ""),
                ("visitor", "Thanks for taking over."),
            )
            == []
        )

    def test_agents_and_notes_never_count(self) -> None:
        """Only the customer can repeat themselves; agents restating facts is good service."""
        assert (
            found(
                ("visitor", "My order 12345 never arrived."),
                ("transfer", ""),
                ("agent", "I see order 12345 never arrived."),
                ("note", "order 12345 again"),
            )
            == []
        )

    def test_all_the_earlier_seqs_are_cited(self) -> None:
        """Every message that gave the fact before the transfer is cited."""
        assert found(
            ("visitor", "order 12345"),
            ("visitor", "yes, order 12345"),
            ("transfer", ""),
            ("visitor", "order 12345!!"),
        ) == [(5, "order", "12345", (2, 3))]


class TestSentences:
    def test_near_duplicate_sentence(self) -> None:
        """The problem told again in nearly the same words is a repeat."""
        assert found(
            ("visitor", "The app crashes when I upload photos from my phone."),
            ("transfer", ""),
            ("visitor", "Like I said, the app crashes whenever I upload photos from my phone."),
        ) == [
            (
                4,
                SENTENCE,
                "Like I said, the app crashes whenever I upload photos from my phone.",
                (2,),
            )
        ]

    def test_different_sentences_are_not_repeats(self) -> None:
        """Sharing a few words is not saying the same thing."""
        assert (
            found(
                ("visitor", "The app crashes when I upload photos from my phone."),
                ("transfer", ""),
                ("visitor", "Can I get a refund for the annual plan instead?"),
                ("visitor", "My phone is new."),
            )
            == []
        )

    def test_japanese_near_duplicate(self) -> None:
        """Text without spaces is compared by character pairs."""
        got = found(
            ("visitor", "注文した商品がまだ届いていません。"),
            ("transfer", ""),
            ("visitor", "注文した商品がまだ届いていません！"),
        )
        assert [(seq, kind) for seq, kind, _, _ in got] == [(4, SENTENCE)]


class TestInputs:
    def test_from_a_summary_built_over_the_whole_chat(self) -> None:
        """A summary's facts and problem sentences serve as "before"; only what was said up
        to the transfer counts, even if the summary was built later."""
        events, transfer_seq = chat(
            ("visitor", "My order 12345 never arrived and the tracking page is blank."),
            ("transfer", ""),
            ("visitor", "My order 12345 never arrived and the tracking page is blank!"),
            ("visitor", "Also order 99999."),
            ("visitor", "Order 99999 is the other one."),
        )
        visitor = VisitorView("v", "Ada", None, None, False, 0, {})
        summary = build_summary(SummaryInput(events, visitor, T0 + timedelta(hours=1)))
        got = repeats(summary, events, transfer_seq)
        assert [(r.seq, r.fact_kind) for r in got] == [(4, "order"), (4, SENTENCE)]

    def test_from_facts_and_sentences(self) -> None:
        """A plain list of facts and sentences also works; facts after the transfer are not
        "before" even when listed."""
        events, transfer_seq = chat(
            ("visitor", "hello"),
            ("transfer", ""),
            ("visitor", "order 12345 and ada@example.com. My screen stays black all day!"),
        )
        before = [
            Fact("order", "12345", (2,)),
            Fact("email", "ada@example.com", (4,)),  # given after the transfer: not before
            Fact("amount", "$5", (2,)),
        ]
        got = repeats(
            before,
            events,
            transfer_seq,
            sentences=[Quote(2, "My screen stays black all day"), Quote(9, "hello there")],
        )
        assert got == [
            Repeat(4, "order", "12345", (2,)),
            Repeat(4, SENTENCE, "My screen stays black all day!", (2,)),
        ]

    def test_ordered_and_deterministic(self) -> None:
        """Repeats come by seq then kind, the same on every run and in any event order; a
        sentence that only restates facts is counted by its facts."""
        events, transfer_seq = chat(
            ("visitor", "order 12345, email ada@example.com"),
            ("transfer", ""),
            ("visitor", "ada@example.com and order 12345"),
            ("visitor", "order 12345"),
        )
        first = repeats_after_transfer(events, transfer_seq)
        assert first == repeats_after_transfer(list(reversed(events)), transfer_seq)
        assert [(r.seq, r.fact_kind) for r in first] == [(4, "order"), (4, "email"), (5, "order")]

    def test_no_transfer_content_no_repeats(self) -> None:
        """An empty conversation has nothing to repeat."""
        assert repeats_after_transfer([], 0) == []
