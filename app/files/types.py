"""What may be uploaded, what a file really is, and how it is served without harm.

The type a client declares is never trusted: the first bytes decide (`sniff`). Only types on the
deployment's list are accepted; a file whose bytes match none of them is refused, whatever its
name says. Served files carry the sniffed type, `nosniff`, a sandboxing CSP and a
`Content-Disposition` with the sanitised name (`inline` only for raster images a browser can
show; SVG is never accepted: it is a document that runs scripts). Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from urllib.parse import quote

import filetype  # type: ignore[import-untyped] # no stubs; three calls, typed below

# Bytes `sniff` looks at: every signature filetype knows sits in the first 8 KB, and so does
# enough of a text file to tell it from a binary one.
HEAD_BYTES = 8192
NAME_MAX = 200


@dataclass(frozen=True, slots=True)
class FileType:
    mime: str
    extensions: tuple[str, ...]  # the first is the one added to a name that has none of them
    label: str  # what the widget's "allowed" line says
    image: bool = False  # previewable inline by every current browser


_OOXML = "application/vnd.openxmlformats-officedocument"
_ODF = "application/vnd.oasis.opendocument"
KNOWN: dict[str, FileType] = {
    t.mime: t
    for t in (
        FileType("image/png", (".png",), "PNG", image=True),
        FileType("image/jpeg", (".jpg", ".jpeg"), "JPEG", image=True),
        FileType("image/gif", (".gif",), "GIF", image=True),
        FileType("image/webp", (".webp",), "WebP", image=True),
        FileType("image/heic", (".heic",), "HEIC"),
        FileType("application/pdf", (".pdf",), "PDF"),
        FileType("text/plain", (".txt", ".log", ".md"), "text"),
        FileType("text/csv", (".csv",), "CSV"),
        FileType(f"{_OOXML}.wordprocessingml.document", (".docx",), "Word"),
        FileType(f"{_OOXML}.spreadsheetml.sheet", (".xlsx",), "Excel"),
        FileType(f"{_OOXML}.presentationml.presentation", (".pptx",), "PowerPoint"),
        FileType(f"{_ODF}.text", (".odt",), "OpenDocument text"),
        FileType(f"{_ODF}.spreadsheet", (".ods",), "OpenDocument sheet"),
        FileType("application/zip", (".zip",), "ZIP"),
        FileType("audio/mpeg", (".mp3",), "MP3"),
        FileType("video/mp4", (".mp4",), "MP4"),
    )
}
# Accepted unless WARMLINE_ATTACHMENT_TYPES says otherwise: pictures and the documents customers
# send support (screenshots, invoices, logs, spreadsheets). Archives, audio and video are opt-in.
DEFAULT_TYPES: tuple[str, ...] = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "application/pdf",
    "text/plain",
    "text/csv",
    f"{_OOXML}.wordprocessingml.document",
    f"{_OOXML}.spreadsheetml.sheet",
    f"{_OOXML}.presentationml.presentation",
    f"{_ODF}.text",
    f"{_ODF}.spreadsheet",
)
_TEXT_BY_EXTENSION = {
    ext: t.mime for t in KNOWN.values() if t.mime.startswith("text/") for ext in t.extensions
}


def _looks_like_text(head: bytes) -> bool:
    """UTF-8 without NUL bytes (a multi-byte character cut by the end of `head` is fine)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def sniff(head: bytes, *, filename: str) -> str | None:
    """The type of a file from its first bytes (`HEAD_BYTES` of them), or None if unknown.

    Binary formats are recognised by their signatures alone. A file with no signature is text
    only if it is UTF-8 without NUL bytes *and* named like text (`.txt`, `.csv`…).
    """
    guessed: object = filetype.guess_mime(head) if head else None
    if isinstance(guessed, str):
        return guessed
    suffix = PurePosixPath(filename.lower()).suffix
    if head and suffix in _TEXT_BY_EXTENSION and _looks_like_text(head):
        return _TEXT_BY_EXTENSION[suffix]
    return None


def safe_name(raw: str | None, *, mime: str | None = None) -> str:
    """A file name safe to store and to show: no directories, no control or bidi characters,
    at most `NAME_MAX` characters, and an extension that matches the sniffed type (a PNG named
    `invoice.pdf` becomes `invoice.pdf.png`, so nobody opens it with the wrong program)."""
    name = PureWindowsPath(PurePosixPath(raw or "").name).name
    name = "".join(
        ch for ch in unicodedata.normalize("NFC", name) if unicodedata.category(ch)[0] != "C"
    ).strip(" .")
    if not name:
        name = "file"
    known = KNOWN.get(mime or "")
    if known is not None and PurePosixPath(name.lower()).suffix not in known.extensions:
        name = f"{name}{known.extensions[0]}"
    if len(name) > NAME_MAX:
        stem, suffix = name[: -len(PurePosixPath(name).suffix) or None], PurePosixPath(name).suffix
        name = stem[: NAME_MAX - len(suffix)] + suffix
    return name


def is_image(mime: str) -> bool:
    known = KNOWN.get(mime)
    return known is not None and known.image


def served_type(mime: str) -> str:
    """The Content-Type to serve: text gets an explicit charset so no browser guesses one."""
    return f"{mime}; charset=utf-8" if mime.startswith("text/") else mime


def content_disposition(name: str, *, inline: bool) -> str:
    """RFC 6266: an ASCII fallback name and the real one in RFC 5987 encoding."""
    fallback = "".join(
        ch if ch.isascii() and ch.isprintable() and ch not in '"\\;' else "_" for ch in name
    )
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def accepted(configured: list[str]) -> tuple[str, ...]:
    """The types a deployment accepts: `configured` (WARMLINE_ATTACHMENT_TYPES), or the default
    list when it is empty.

    Raises:
        ValueError: a configured type is not one Warmline can recognise.
    """
    if not configured:
        return DEFAULT_TYPES
    unknown = [mime for mime in configured if mime not in KNOWN]
    if unknown:
        msg = f"WARMLINE_ATTACHMENT_TYPES names unknown types {unknown}; known: {sorted(KNOWN)}"
        raise ValueError(msg)
    return tuple(dict.fromkeys(configured))


def describe(types: tuple[str, ...] | list[str]) -> list[dict[str, object]]:
    """The accepted types as the widget shows them: MIME type, extensions, label, image."""
    return [
        {
            "mime": KNOWN[m].mime,
            "extensions": list(KNOWN[m].extensions),
            "label": KNOWN[m].label,
            "image": KNOWN[m].image,
        }
        for m in types
    ]
