"""Unit tests for `app.handoff.mentions` and `app.handoff.facts`: what counts as an order or
ticket number, email, phone number, amount, date, product or link in chat text (in several
languages), and how mentions across messages become facts, corrections included.
"""

from __future__ import annotations

import pytest

from app.handoff.facts import Fact, Said, asked_kind, collect
from app.handoff.mentions import Scan, amount_key, extract, key_of, phone_key


def found(
    text: str, catalogue: tuple[str, ...] = (), asked: str | None = None
) -> list[tuple[str, str]]:
    mentions = extract(text, catalogue, asked=asked)
    for m in mentions:
        assert text[m.start : m.end] == m.value  # verbatim, offsets intact
    return [(m.kind, m.value) for m in mentions]


def keys(text: str) -> list[tuple[str, str]]:
    return [(m.kind, m.key) for m in extract(text)]


class TestOrderAndTicketNumbers:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("my order #12345 is late", "12345"),
            ("order 12345 is late", "12345"),
            ("Order number: 12345", "12345"),
            ("the order no. 12345", "12345"),
            ("my order number is 12345.", "12345"),
            ("ORD-12345 is late", "ORD-12345"),
            ("it's #12345", "12345"),
            ("Meine Bestellnummer ist 12345.", "12345"),
            ("Bestellung 12345 fehlt", "12345"),
            ("mi número de pedido es 12345", "12345"),
            ("ma commande 12345", "12345"),
            ("注文番号は12345です", "12345"),
            ("注文番号は１２３４５です", "１２３４５"),
        ],
    )
    def test_order_numbers(self, text: str, value: str) -> None:
        """Order numbers with a keyword in several languages, a prefix, or a `#`."""
        assert found(text) == [("order", value)]

    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("ticket 4821 is still open", "4821"),
            ("case #4821", "4821"),
            ("TCK-4821", "TCK-4821"),
            ("Ticketnummer 4821", "4821"),
            ("mi caso 4821", "4821"),
            ("reference: AB-4821", "AB-4821"),
            ("お問い合わせ番号は4821です", "4821"),
        ],
    )
    def test_ticket_numbers(self, text: str, value: str) -> None:
        """Ticket and case numbers, with a keyword or a prefix."""
        assert found(text) == [("ticket", value)]

    def test_a_list_after_one_keyword(self) -> None:
        """ "orders 10001, 10002 and 10003" names three orders; a quantity ends the list."""
        assert found("orders 10001, 10002 and 10003 and 4 more") == [
            ("order", "10001"),
            ("order", "10002"),
            ("order", "10003"),
        ]

    def test_long_bare_numbers_in_a_sentence_about_orders(self) -> None:
        """In a sentence about orders, five-digit numbers are order numbers; years are not."""
        assert found("Three orders never arrived: 10001 and 10002. My order from 2024.") == [
            ("order", "10001"),
            ("order", "10002"),
        ]
        assert found("Order or ticket, it was 10001.") == []  # which one? nobody knows

    def test_keys_ignore_prefix_dashes_and_width(self) -> None:
        """`ORD-12345`, `#12345` and the same in full-width digits are one order."""
        assert keys("ORD-12345 #12345 order １２３４５") == [("order", "12345")] * 3
        assert key_of("ticket", "TCK-4821") == key_of("ticket", "4821") == "4821"
        assert key_of("phone", "+49 30 1234567") == "+49301234567"
        assert key_of("product", "Trail  PACK") == "trail pack"

    @pytest.mark.parametrize(
        "text",
        [
            "I ordered 2 items for my son",
            "order 12 boxes",
            "the order of events",
            "in case you wonder",
            "version 3.2.1 crashed",
            "I waited 10 minutes at 3pm",
            "&#12345; is an entity",
        ],
    )
    def test_no_false_order_numbers(self, text: str) -> None:
        """Quantities, versions, times and words are not order numbers."""
        assert found(text) == []

    def test_bare_numbers_only_when_asked(self) -> None:
        """A bare number is an order number only in answer to "what is your order number?"."""
        assert found("62981") == []
        assert found("62981", asked="order") == [("order", "62981")]
        assert found("it is 4821", asked="ticket") == [("ticket", "4821")]
        assert found("5550199", asked="phone") == [("phone", "5550199")]
        assert found("12", asked="phone") == []


class TestEmailsAndLinks:
    @pytest.mark.parametrize(
        ("text", "value"),
        [
            ("write to ada@example.com.", "ada@example.com"),
            ("Ada.Lovelace+support@mail.example.co.uk", "Ada.Lovelace+support@mail.example.co.uk"),
            ("メールはtaro@example.jpです", "taro@example.jp"),
            ("(ada@example.org)", "ada@example.org"),
        ],
    )
    def test_emails(self, text: str, value: str) -> None:
        """Emails are found in any script, without trailing punctuation."""
        assert found(text) == [("email", value)]

    def test_email_key_is_case_insensitive(self) -> None:
        """`Ada@Example.com` and `ada@example.com` are the same address."""
        assert keys("Ada@Example.com ada@example.com") == [("email", "ada@example.com")] * 2

    def test_links_lose_trailing_punctuation_and_hide_their_numbers(self) -> None:
        """A link is one fact; the digits inside it are not order or phone numbers."""
        assert found("see https://shop.example.com/orders/12345?x=1.") == [
            ("url", "https://shop.example.com/orders/12345?x=1")
        ]


class TestPhoneNumbers:
    @pytest.mark.parametrize(
        ("text", "value", "key"),
        [
            ("call +44 20 7946 0958", "+44 20 7946 0958", "+442079460958"),
            ("call 0044 20 7946 0958", "0044 20 7946 0958", "+442079460958"),
            ("+1 (555) 123-4567", "+1 (555) 123-4567", "+15551234567"),
            ("555-123-4567", "555-123-4567", "5551234567"),
            ("(555) 123-4567", "(555) 123-4567", "5551234567"),
            ("030 1234567", "030 1234567", "0301234567"),
            ("Telefon 0171 2345678.", "0171 2345678", "01712345678"),
            ("電話は090-1234-5678です", "090-1234-5678", "09012345678"),
            ("call me at 5551234", "5551234", "5551234"),
        ],
    )
    def test_phone_numbers(self, text: str, value: str, key: str) -> None:
        """International and national formats, at least seven digits."""
        (mention,) = extract(text)
        assert (mention.kind, mention.value, mention.key) == ("phone", value, key)

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("order 1234567", [("order", "1234567")]),
            ("on 2026-11-20", [("date", "2026-11-20")]),
            ("20/11/2026", [("date", "20/11/2026")]),
            ("code 123456", []),
            ("we have 1000000 users", []),
            ("+44 12", []),
            ("call (555 123 4567", []),
        ],
    )
    def test_not_phone_numbers(self, text: str, expected: list[tuple[str, str]]) -> None:
        """Order numbers, dates, short codes and plain large numbers are not phones."""
        assert found(text) == expected

    def test_key(self) -> None:
        """`00` is read as `+`; separators do not matter."""
        assert phone_key("0049 (30) 123-4567") == phone_key("+49 30 1234567") == "+49301234567"


class TestAmounts:
    @pytest.mark.parametrize(
        ("text", "value", "key"),
        [
            ("I paid $12.50.", "$12.50", "USD 12.50"),
            ("it was 12,50 € each", "12,50 €", "EUR 12.50"),
            ("EUR 40 please", "EUR 40", "EUR 40.00"),
            ("just £3", "£3", "GBP 3.00"),
            ("¥5,000", "¥5,000", "JPY 5000.00"),
            ("5000円です", "5000円", "JPY 5000.00"),
            ("40 euros", "40 euros", "EUR 40.00"),
            ("1.250,00 EUR", "1.250,00 EUR", "EUR 1250.00"),
            ("$1,250.99", "$1,250.99", "USD 1250.99"),
            ("US$ 20", "US$ 20", "USD 20.00"),
        ],
    )
    def test_amounts_with_a_currency(self, text: str, value: str, key: str) -> None:
        """Symbols and codes before or after, decimal commas and points, thousands."""
        (mention,) = extract(text)
        assert (mention.kind, mention.value, mention.key) == ("amount", value, key)

    def test_amount_keys(self) -> None:
        """The same amount written two ways has one key."""
        assert amount_key("$", "12.5") == amount_key("USD", "12.50") == "USD 12.50"

    def test_numbers_without_currency_are_not_amounts(self) -> None:
        """A price needs its currency: "12.50" alone says nothing."""
        assert found("it costs 12.50") == []


class TestDates:
    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("2026-11-20", "2026-11-20"),
            ("20/11/2026", "2026-11-20"),
            ("11/20/2026", "2026-11-20"),
            ("20.11.26", "2026-11-20"),
            ("Nov 20", "--11-20"),
            ("November 20th, 2026", "2026-11-20"),
            ("20 November 2026", "2026-11-20"),
            ("20. November 2026", "2026-11-20"),
            ("am 3. März", "--03-03"),
            ("20 de noviembre de 2026", "2026-11-20"),
            ("2026年11月20日", "2026-11-20"),
            ("11月20日", "--11-20"),
        ],
    )
    def test_dates(self, text: str, key: str) -> None:
        """ISO, numeric, month names (English, German, Spanish) and Japanese dates."""
        (mention,) = [m for m in extract(text) if m.kind == "date"]
        assert mention.key == key

    @pytest.mark.parametrize("text", ["2026-13-45", "45/45/2026", "Friday", "in May"])
    def test_impossible_or_incomplete_dates(self, text: str) -> None:
        """Impossible dates and lone month or day names are not dates."""
        assert [m for m in extract(text) if m.kind == "date"] == []


class TestProducts:
    CATALOGUE = ("Warmline Pro", "Pro", "Trail Pack 40")

    def test_whole_phrases_case_insensitive_longest_first(self) -> None:
        """Catalogue names match as whole phrases, any case, the longest where they overlap."""
        text = "I bought warmline  PRO and the trail pack 40, not the Professional plan."
        assert found(text, self.CATALOGUE) == [
            ("product", "warmline  PRO"),
            ("product", "trail pack 40"),
        ]
        assert [m.key for m in extract(text, self.CATALOGUE)] == ["warmline pro", "trail pack 40"]

    def test_in_text_without_spaces(self) -> None:
        """A name is found inside Japanese text."""
        assert found("ワームラインProを買いました", ("Pro",)) == [("product", "Pro")]

    def test_blank_names_are_ignored(self) -> None:
        """Empty catalogue entries match nothing."""
        assert found("anything", ("", "  ")) == []


class TestNonEnglishText:
    @pytest.mark.parametrize(
        "text",
        [
            "Ich habe am 12.11.2026 bezahlt, 89,90 € per Kreditkarte, Bestellung 40512.",
            "Hola, mi pedido 88123 no ha llegado; escríbame a lucia@ejemplo.es.",
            "注文番号は12345です。メールはtaro@example.jpです。",
            "Привет! Заказ #55555, телефон +7 495 123-45-67.",
            "مرحبا، رقم الطلب #77777",
        ],
    )
    def test_numbers_and_emails_are_still_found(self, text: str) -> None:
        """Whatever the language, numbers with a keyword or `#`, emails and phones come out."""
        mentions = extract(text)
        assert mentions
        assert all(text[m.start : m.end] == m.value for m in mentions)

    def test_a_span_is_taken_once(self) -> None:
        """A scan never records two facts over the same characters, nor an empty one."""
        scan = Scan("order 12345")
        scan.take("order", 6, 11, "12345")
        scan.take("phone", 0, 11, "12345")
        scan.take("order", 3, 3, "")
        assert [(m.kind, m.value) for m in scan.mentions()] == [("order", "12345")]

    def test_nothing_breaks_on_any_text(self) -> None:
        """Odd input yields no error."""
        for text in ["", "\n\n", "？？？", "#", "@", "+", "$", "ORD-", "ticket #", "\u200b"]:
            assert isinstance(extract(text), list)


class TestAskedKind:
    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("What is your order number?", "order"),
            ("Could you give me the case reference please", "ticket"),
            ("What phone number can we reach you on?", "phone"),
            ("Your order is on its way.", None),
            ("How are you?", None),
            ("Please share the order or ticket number?", "order"),
        ],
    )
    def test_what_the_agent_asked_for(self, text: str, kind: str | None) -> None:
        """A question or request naming a kind asks for it; the kind named first wins."""
        assert asked_kind(text) == kind


def facts(*messages: str | Said) -> list[tuple[str, str, tuple[int, ...], str | None]]:
    said = [m if isinstance(m, Said) else Said(2 * i + 2, m) for i, m in enumerate(messages)]
    return [(f.kind, f.value, f.seqs, f.superseded_by) for f in collect(said)]


class TestCollect:
    def test_one_fact_per_key_citing_every_message(self) -> None:
        """The same order written three ways is one fact citing the three messages."""
        assert facts("order 12345", "ORD-12345 again", "yes, 12345") == [
            ("order", "12345", (2, 4, 6), None)
        ]

    def test_in_the_order_first_mentioned(self) -> None:
        """Facts come in the order the customer first gave them, whatever the input order."""
        said = [Said(4, "and ada@example.com"), Said(2, "order 12345 and $5")]
        assert [f.value for f in collect(said)] == ["12345", "$5", "ada@example.com"]

    @pytest.mark.parametrize(
        "correction",
        [
            "sorry, I meant 12354",
            "Correction: order 12354",
            "actually it's 12354",
            "It should be 12354.",
            "It's not 12345 but 12354.",
            "I meant 12354, not 12345",
            "Ich meinte 12354.",
            "Perdón, quise decir 12354.",
            "No es 12345 sino 12354.",
            "12345ではなく12354です。",
            "訂正：12354です。",
        ],
    )
    def test_corrections_supersede(self, correction: str) -> None:
        """A correction makes the new value current and marks the old one, keeping both."""
        got = facts("My order 12345 is missing.", correction)
        old = [f for f in got if f[1] == "12345"]
        new = [f for f in got if f[1] == "12354"]
        assert old[0][3] == "12354"
        assert new == [("order", "12354", (4,), None)]

    def test_correction_in_the_same_message(self) -> None:
        """ "order 12345 … sorry, I meant 12354" in one message."""
        assert facts("order 12345, sorry, I meant 12354") == [
            ("order", "12345", (2,), "12354"),
            ("order", "12354", (2,), None),
        ]

    def test_the_negated_value_is_the_one_corrected(self) -> None:
        """Of three orders, "I meant 10004, not 10002" corrects 10002, not the latest."""
        got = facts("orders 10001, 10002 and 10003", "I meant 10004, not 10002.")
        assert [(f[1], f[3]) for f in got] == [
            ("10001", None),
            ("10002", "10004"),
            ("10003", None),
            ("10004", None),
        ]

    def test_the_latest_of_the_kind_without_a_negation(self) -> None:
        """Without "not X", the most recently mentioned value of that kind is corrected."""
        got = facts("order 10001", "also order 10002", "sorry, I meant 10009")
        assert [(f[1], f[3]) for f in got] == [("10001", None), ("10002", "10009"), ("10009", None)]

    def test_corrections_keep_to_their_kind(self) -> None:
        """Correcting the email leaves the order number alone."""
        got = facts("order 12345, email ada@exmaple.com", "sorry I meant ada@example.com")
        assert [(f[0], f[1], f[3]) for f in got] == [
            ("order", "12345", None),
            ("email", "ada@exmaple.com", "ada@example.com"),
            ("email", "ada@example.com", None),
        ]

    def test_restating_a_superseded_value_in_a_correction_revives_it(self) -> None:
        """ "No wait, I meant 12345 after all" makes 12345 current again."""
        got = facts("order 12345", "sorry, I meant 12354", "no wait, I meant 12345 after all")
        assert [(f[1], f[3]) for f in got] == [("12345", None), ("12354", "12345")]

    def test_a_year_or_a_much_shorter_number_corrects_nothing(self) -> None:
        """ "Actually it's from 2024" is no correction of order 12345; nor is a PIN."""
        assert facts("order 12345", "Actually it's from 2024.", "sorry, I meant 123456789") == [
            ("order", "12345", (2,), None)
        ]
        got = facts("order 1234", "sorry, I meant 2024")  # same length: a year may be a typo fix
        assert [(f[1], f[3]) for f in got] == [("1234", "2024"), ("2024", None)]

    def test_a_number_in_the_correction_sets_the_kind(self) -> None:
        """ "not ticket 4821 but 4822" corrects the ticket, not the later order."""
        got = facts("ticket 4821 and order 55555", "Not ticket 4821 but 4822.")
        assert [(f[0], f[1], f[3]) for f in got] == [
            ("ticket", "4821", "4822"),
            ("order", "55555", None),
            ("ticket", "4822", None),
        ]

    def test_markers_without_values_change_nothing(self) -> None:
        """ "Actually it's fine" corrects nothing."""
        assert facts("order 12345", "Actually it's fine now.") == [("order", "12345", (2,), None)]

    def test_a_correction_with_nothing_before_is_just_a_fact(self) -> None:
        """A first value given in a correction has nothing to supersede."""
        assert facts("Correction: order 55555") == [("order", "55555", (2,), None)]

    def test_bare_number_after_a_marker_needs_a_known_kind(self) -> None:
        """ "I meant 12354" with no order or ticket given before is nothing; if the agent asked
        for an order number, it is one."""
        assert facts("sorry, I meant 12354") == []
        assert facts(Said(2, "sorry, I meant 12354", asked="order")) == [
            ("order", "12354", (2,), None)
        ]

    def test_bare_numbers_take_the_kind_of_the_known_key(self) -> None:
        """A bare 4821 after "ticket 4821" is the ticket again."""
        assert facts("ticket 4821 and order 55555", "4821 is urgent") == [
            ("ticket", "4821", (2, 4), None),
            ("order", "55555", (2,), None),
        ]

    def test_fact_type(self) -> None:
        """`current` is true until a correction supersedes the fact."""
        assert Fact("order", "1", (2,)).current
        assert not Fact("order", "1", (2,), superseded_by="2").current
