"""Mentions of facts in one piece of chat text: order and ticket numbers, emails, phone numbers,
amounts, dates, product names and links, each with its verbatim span and a normalised key.

Pure: no I/O, no clock, no randomness. `handoff.facts` turns the mentions of a whole chat into
facts (merging repeats, applying corrections); `handoff.repeats` compares mentions after a
transfer with the facts before it. Rules: docs/handoff.md#facts.

Language-agnostic where it can be. Boundaries are "not next to an ASCII letter or digit" rather
than `\\b`, so `注文番号は12345です` still yields 12345; full-width ASCII (U+FF01-U+FF5E) is read
as ASCII without moving any offset, so every `Mention.value` is a verbatim substring of the
text. Keywords before numbers are known in English, German, Spanish, French, Italian and
Japanese; emails, links, amounts with a currency, ISO and numeric dates, international phone
numbers and `#12345` need no keyword in any language.

The passes run in a fixed order and each masks what it took, so one span is one fact: emails,
links, catalogue products, amounts, dates, tickets, orders, phones, `#numbers`, numbers of five
digits or more in a sentence that names orders (or tickets), then (only when the caller knows
what was asked) other bare numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.handoff.sentences import sentence_spans

ORDER = "order"
TICKET = "ticket"
EMAIL = "email"
PHONE = "phone"
AMOUNT = "amount"
DATE = "date"
PRODUCT = "product"
URL = "url"
KINDS = (ORDER, TICKET, EMAIL, PHONE, AMOUNT, DATE, PRODUCT, URL)  # also the display order
ID_KINDS = (ORDER, TICKET)  # kinds a bare number may turn out to be

MASK = "\0"  # what a taken span becomes: no pattern matches it, no boundary check refuses it
# Full-width ASCII and the ideographic space, read as their ASCII forms (one char for one char).
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}

_A = r"(?<![A-Za-z0-9])"  # a boundary that works inside scripts written without spaces
_Z = r"(?![A-Za-z0-9])"

_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9_%+-][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
    r"\.[A-Za-z]{2,}(?![A-Za-z0-9-])"
)
_URL = re.compile(r"https?://[^\s<>\"'「」『』（）()、。，\0]+", re.IGNORECASE)
_URL_TAIL = ".,;:!?)]}'\"…"

_NUM = r"[0-9]{1,3}(?:[,.'\u00a0\u202f][0-9]{3})+(?:[.,][0-9]{1,2})?|[0-9]+(?:[.,][0-9]{1,2})?"
_CODES = "USD|EUR|GBP|JPY|CHF|CAD|AUD|INR|MXN|CNY|SEK|NOK|DKK|PLN|BRL"
_CURRENCY_WORDS = "euros?|dollars?|pounds?|yen|pesos?"
_AMOUNT = re.compile(
    rf"(?P<pre>US\$|[$€£¥₹]|{_A}(?:{_CODES}){_Z})\s?(?P<n1>{_NUM})(?![0-9])"
    rf"|(?<![0-9.,])(?P<n2>{_NUM})\s?(?P<post>[$€£¥₹円]|(?:{_CODES}|{_CURRENCY_WORDS})(?![A-Za-z]))",
    re.IGNORECASE,
)
_CURRENCY = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "円": "JPY"}
_CURRENCY |= {"euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "pound": "GBP"}
_CURRENCY |= {"pounds": "GBP", "yen": "JPY", "peso": "PESO", "pesos": "PESO"}

MONTHS_IN_YEAR = 12
MAX_DAY = 31
SHORT_YEAR = 2  # "20/11/26": two-digit years are this century's
CENTURY = 2000
_MONTHS: dict[str, int] = {}
for _number, _names in enumerate(
    (
        "january jan januar jänner enero",
        "february feb februar febrero",
        "march mar märz maerz marzo",
        "april apr abril",
        "may mai mayo",
        "june jun juni junio",
        "july jul juli julio",
        "august aug agosto",
        "september sep sept septiembre setiembre",
        "october oct oktober octubre",
        "november nov noviembre",
        "december dec dezember diciembre",
    ),
    start=1,
):
    _MONTHS |= dict.fromkeys(_names.split(), _number)
_MONTH = "|".join(sorted(_MONTHS, key=lambda name: (-len(name), name)))
_DAY = r"(?P<d>[0-9]{1,2})"
_YEAR = r"(?P<y>[0-9]{4})"
_DATES = (
    re.compile(rf"(?<![0-9])(?P<y>[0-9]{{4}})-(?P<m>[0-9]{{1,2}})-{_DAY}(?![0-9])"),
    re.compile(
        r"(?<![0-9./])(?P<a>[0-9]{1,2})([/.])(?P<b>[0-9]{1,2})\2(?P<y>[0-9]{4}|[0-9]{2})(?![0-9]|[./][0-9])"
    ),
    re.compile(rf"(?:{_YEAR}年)?(?P<m>[0-9]{{1,2}})月{_DAY}日"),
    re.compile(
        rf"(?<![A-Za-z])(?P<mn>{_MONTH})\.?\s+{_DAY}(?:st|nd|rd|th)?(?:,?\s+{_YEAR})?(?![0-9])",
        re.IGNORECASE,
    ),
    re.compile(
        rf"(?<![0-9]){_DAY}(?:st|nd|rd|th|\.)?\s+(?:de\s+)?(?P<mn>{_MONTH})(?![A-Za-z])"
        rf"(?:,?\s+(?:de\s+)?{_YEAR}(?![0-9]))?",
        re.IGNORECASE,
    ),
)

# An identifier: optional letter prefix, then a digit, then letters, digits and inner dashes.
_ID = r"(?:[A-Za-z]{1,6}-?)?[0-9][0-9A-Za-z]*(?:-[0-9A-Za-z]+)*"
_GAP_WORDS = "numbers?|num|nos?|nr|nummer|id|is|was|are|ist|lautet|war|es|era|fue|de|del|番号|は|が"
_GAP = rf"(?:[\s:：#№.=-]*(?:{_GAP_WORDS})(?![A-Za-z])){{0,3}}[\s:：#№.=-]*"
_LIST = r"\s*(?:[,;/&+、]\s*(?:(?:and|or|und|oder|y|o|et)\s+)?|(?:and|or|und|oder|y|o|et)\s+|と)"
_ORDER_WORDS = (
    rf"{_A}(?:orders?|bestellung(?:en)?|bestellnummer|auftrag(?:snummer)?|pedidos?"
    rf"|commandes?|ordine){_Z}|注文番号|注文|オーダー番号|オーダー"
)
_TICKET_WORDS = (
    rf"{_A}(?:tickets?|case|incident|reference|ref|ticketnummer|vorgang(?:snummer)?|caso"
    rf"|incidencia|referencia){_Z}|お問い合わせ番号|問い合わせ番号|受付番号|チケット番号|チケット"
)
_KEYED = {
    ORDER: re.compile(rf"(?:{_ORDER_WORDS}){_GAP}(?P<id>{_ID}){_Z}", re.IGNORECASE),
    TICKET: re.compile(rf"(?:{_TICKET_WORDS}){_GAP}(?P<id>{_ID}){_Z}", re.IGNORECASE),
}
_KEYWORDS = {
    ORDER: re.compile(_ORDER_WORDS, re.IGNORECASE),
    TICKET: re.compile(_TICKET_WORDS, re.IGNORECASE),
}
_NEXT_ID = re.compile(rf"{_LIST}#?\s?(?P<id>{_ID}){_Z}", re.IGNORECASE)
_PREFIXES = {ORDER: ("ORDER", "ORD", "PO"), TICKET: ("TICKET", "TCK", "TKT", "CASE", "INC", "REF")}
_PREFIXED = {
    kind: re.compile(rf"{_A}(?:{'|'.join(prefixes)})-?[0-9]{{3,}}{_Z}", re.IGNORECASE)
    for kind, prefixes in _PREFIXES.items()
}
_HASH = re.compile(r"(?<![A-Za-z0-9&#])#\s?(?P<id>[0-9]{4,})(?![0-9A-Za-z])")
_BARE = re.compile(r"(?<![A-Za-z0-9#@.+-])(?:[A-Za-z]{1,5}-?)?[0-9]{4,}(?![A-Za-z0-9@])")

_PHONE = re.compile(
    r"(?<![A-Za-z0-9+#$€£¥@./-])(?:\+|00)?\(?[0-9][0-9 ().\-/]{5,24}[0-9](?![0-9A-Za-z@])"
)
_PHONE_WORDS = re.compile(
    r"phone|tel|mobile|cell|call|number|reach|whatsapp|telefon|handy|rufnummer|tel[ée]fono"
    r"|m[óo]vil|celular|llam|電話|携帯",
    re.IGNORECASE,
)
_NANP = re.compile(r"\(?[0-9]{3}\)?[-. ][0-9]{3}[-. ][0-9]{4}")
_DATE_SHAPE = re.compile(r"[0-9]{1,4}([./-])[0-9]{1,2}\1[0-9]{1,4}")
PHONE_MIN_DIGITS = 7  # shorter numbers are extensions, codes or quantities, not numbers to call
PHONE_MAX_DIGITS = 15  # E.164: no phone number is longer
# A national number written as one run of digits needs its trunk 0 and this many digits (a
# shorter run that starts with 0 is as likely an account or order number).
NATIONAL_MIN_DIGITS = 9
PHONE_WORD_REACH = 30  # "call me on", "Telefon:", "電話番号は" sit right before the number
# A bare number in a sentence about an order is taken for one from this many digits: a
# four-digit number there is as likely a year ("my order from 2024").
CONTEXT_MIN_DIGITS = 5
ID_MIN_DIGITS = 3  # "order 12" is a quantity more often than an order number
ID_MIN_LENGTH = 4


@dataclass(frozen=True, slots=True)
class Mention:
    """One fact as written in one text: `value` is `text[start:end]` verbatim; `key` is its
    normalised form, equal for two ways of writing the same thing (`ORD-12345` and `12345`,
    `+49 30 123456` and `0049 30 123456`, `$12.50` and `USD 12.5`)."""

    kind: str
    value: str
    key: str
    start: int
    end: int


def ascii_view(text: str) -> str:
    """`text` with full-width ASCII read as ASCII; every offset is unchanged."""
    return text.translate(_FULLWIDTH)


def id_key(kind: str, value: str) -> str:
    """The key of an order or ticket number: upper case, no dashes, no known prefix."""
    key = re.sub(r"[\s-]", "", ascii_view(value)).upper()
    for prefix in _PREFIXES.get(kind, ()):
        if key.startswith(prefix) and key[len(prefix) :].isdigit():
            return key[len(prefix) :]
    return key


def phone_key(value: str) -> str:
    """`+` and the digits for an international number (`00` read as `+`), else the digits."""
    digits = re.sub(r"[^0-9]", "", ascii_view(value))
    if value.lstrip().startswith("+"):
        return f"+{digits}"
    if digits.startswith("00"):
        return f"+{digits[2:]}"
    return digits


def key_of(kind: str, value: str) -> str:
    """The key of a value already known to be of `kind` (as `Mention.key` would have it) for
    order and ticket numbers, emails and phone numbers; other kinds: the value case-folded."""
    if kind in ID_KINDS:
        return id_key(kind, value)
    if kind == PHONE:
        return phone_key(value)
    return " ".join(ascii_view(value).split()).casefold()


def amount_key(currency: str, number: str) -> str:
    """`"EUR 12.50"` for `("€", "12,50")`: the currency code and the amount to the cent.

    A last separator followed by one or two digits is the decimal point (`12,50`, `1.250,00`);
    every other separator groups thousands.
    """
    code = _CURRENCY.get(currency.casefold(), _CURRENCY.get(currency, currency.upper()))
    cents = re.search(r"[.,]([0-9]{1,2})$", number)
    whole = re.sub(r"[^0-9]", "", number[: cents.start()] if cents else number) or "0"
    return f"{code} {Decimal(f'{whole}.{cents.group(1) if cents else 0}'):.2f}"


def _date_key(match: re.Match[str]) -> str | None:
    """ISO `YYYY-MM-DD`, or `--MM-DD` without a year; None for an impossible date.

    Numeric `a/b/y` is read day first unless that cannot be a date (`11/20/2026`): most of
    the world writes the day first, and an ambiguous date keeps its verbatim value anyway.
    """
    groups = match.groupdict()
    if groups.get("a") is not None:
        a, b = int(groups["a"]), int(groups["b"])
        day, month = (b, a) if a <= MONTHS_IN_YEAR < b else (a, b)
    else:
        day = int(groups["d"])
        name = groups.get("mn")
        month = _MONTHS[name.casefold()] if name else int(groups["m"])
    if not (1 <= month <= MONTHS_IN_YEAR and 1 <= day <= MAX_DAY):
        return None
    year = groups.get("y")
    if year is None:
        return f"--{month:02d}-{day:02d}"
    full = int(year) + CENTURY if len(year) == SHORT_YEAR else int(year)
    return f"{full:04d}-{month:02d}-{day:02d}"


def _id_ok(value: str) -> bool:
    return sum(c.isdigit() for c in value) >= ID_MIN_DIGITS and len(value) >= ID_MIN_LENGTH


def _phone_ok(candidate: str, before: str) -> bool:
    digits = sum(c.isdigit() for c in candidate)
    if not PHONE_MIN_DIGITS <= digits <= PHONE_MAX_DIGITS or _DATE_SHAPE.fullmatch(candidate):
        return False
    if candidate.count("(") != candidate.count(")"):
        return False
    if candidate.startswith(("+", "00", "(")) or _NANP.fullmatch(candidate):
        return True
    if candidate.startswith("0") and (digits >= NATIONAL_MIN_DIGITS or not candidate.isdigit()):
        return True  # a national number with its trunk prefix: 030 1234567, 090-1234-5678
    return _PHONE_WORDS.search(before[-PHONE_WORD_REACH:]) is not None


class Scan:
    """The mentions of one text, found pass by pass; each pass sees only what earlier passes
    left (taken spans are masked with `MASK`)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.view = ascii_view(text)
        self.masked = self.view
        self.found: list[Mention] = []

    def take(self, kind: str, start: int, end: int, key: str) -> None:
        """Record `text[start:end]` as a mention, unless part of it was taken already."""
        if start >= end or MASK in self.masked[start:end]:
            return
        self.found.append(Mention(kind, self.text[start:end], key, start, end))
        self.masked = self.masked[:start] + MASK * (end - start) + self.masked[end:]

    def typed(self, catalogue: Sequence[str] = ()) -> None:
        """Every pass that needs no context, in order (see the module docstring)."""
        for match in _EMAIL.finditer(self.masked):
            self.take(EMAIL, match.start(), match.end(), match.group().casefold())
        for match in _URL.finditer(self.masked):
            end = match.end()
            while end > match.start() and self.masked[end - 1] in _URL_TAIL:
                end -= 1
            self.take(URL, match.start(), end, self.view[match.start() : end].casefold())
        self._products(catalogue)
        for match in _AMOUNT.finditer(self.masked):
            currency = match.group("pre") or match.group("post")
            key = amount_key(currency, match.group("n1") or match.group("n2"))
            self.take(AMOUNT, match.start(), match.end(), key)
        for pattern in _DATES:
            for match in pattern.finditer(self.masked):
                if (date := _date_key(match)) is not None:
                    self.take(DATE, match.start(), match.end(), date)
        for kind in (TICKET, ORDER):
            for match in _PREFIXED[kind].finditer(self.masked):
                self.take(kind, match.start(), match.end(), id_key(kind, match.group()))
            self._keyed(kind)
        for match in _PHONE.finditer(self.masked):
            text = match.group().rstrip(" ().-/")
            if _phone_ok(text, self.view[: match.start()]):
                self.take(PHONE, match.start(), match.start() + len(text), phone_key(text))
        for match in _HASH.finditer(self.masked):
            self.take(ORDER, match.start("id"), match.end("id"), id_key(ORDER, match["id"]))
        self._in_context()

    def _in_context(self) -> None:
        """Long bare numbers in a sentence about orders (or tickets, not both) are of that kind:
        "three orders never arrived: 10001, 10002 and 10003"."""
        for start, end in sentence_spans(self.view):
            kinds = [kind for kind, rx in _KEYWORDS.items() if rx.search(self.view, start, end)]
            if len(kinds) != 1:
                continue
            for first, last, text in self.bare(start, end):
                if sum(c.isdigit() for c in text) >= CONTEXT_MIN_DIGITS:
                    self.take(kinds[0], first, last, id_key(kinds[0], text))

    def _keyed(self, kind: str) -> None:
        for match in _KEYED[kind].finditer(self.masked):
            if not _id_ok(match["id"]):
                continue
            self.take(kind, match.start("id"), match.end("id"), id_key(kind, match["id"]))
            pos = match.end()
            while (more := _NEXT_ID.match(self.masked, pos)) is not None and _id_ok(more["id"]):
                self.take(kind, more.start("id"), more.end("id"), id_key(kind, more["id"]))
                pos = more.end()

    def _products(self, catalogue: Sequence[str]) -> None:
        names = sorted({" ".join(n.split()) for n in catalogue if n.strip()}, key=_longest_first)
        for name in names:
            parts = [re.escape(part) for part in name.split(" ")]
            head = _A if name[0].isascii() and name[0].isalnum() else ""
            tail = _Z if name[-1].isascii() and name[-1].isalnum() else ""
            pattern = re.compile(head + r"\s+".join(parts) + tail, re.IGNORECASE)
            for match in pattern.finditer(self.masked):
                self.take(PRODUCT, match.start(), match.end(), name.casefold())

    def bare(self, start: int = 0, end: int | None = None) -> list[tuple[int, int, str]]:
        """Untaken bare numbers (four digits or more, maybe a short letter prefix) between
        `start` and `end`, as `(start, end, verbatim)`; they are facts only in context."""
        stop = len(self.masked) if end is None else end
        return [(m.start(), m.end(), m.group()) for m in _BARE.finditer(self.masked, start, stop)]

    def asked(self, kind: str | None) -> None:
        """Bare numbers in a reply to an agent who asked for an order, ticket or phone number."""
        if kind in ID_KINDS:
            for start, end, text in self.bare():
                self.take(kind, start, end, id_key(kind, text))
        elif kind == PHONE:
            for match in _PHONE.finditer(self.masked):
                text = match.group().rstrip(" ().-/")
                digits = sum(c.isdigit() for c in text)
                if PHONE_MIN_DIGITS <= digits <= PHONE_MAX_DIGITS:
                    self.take(PHONE, match.start(), match.start() + len(text), phone_key(text))

    def mentions(self) -> list[Mention]:
        return sorted(self.found, key=lambda m: (m.start, m.end))


def _longest_first(name: str) -> tuple[int, str]:
    return (-len(name), name.casefold())


def extract(text: str, catalogue: Sequence[str] = (), *, asked: str | None = None) -> list[Mention]:
    """Every fact mentioned in `text`, in the order written.

    Args:
        text: One message.
        catalogue: Product names configured by the deployment, matched case-insensitively as
            whole phrases; the longest name wins where two overlap.
        asked: The kind an agent had just asked for (`"order"`, `"ticket"` or `"phone"`): bare
            numbers in the reply are then read as that kind. None reads no bare numbers.

    Returns:
        Non-overlapping mentions sorted by position.
    """
    scan = Scan(text)
    scan.typed(catalogue)
    scan.asked(asked)
    return scan.mentions()
