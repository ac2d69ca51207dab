"""What may be uploaded and how it is named and served (app/files/types.py)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from app.files import types as ft

PNG = (
    b"\x89PNG\r\n\x1a\n"
    + struct.pack(">I", 13)
    + b"IHDR"
    + struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    + struct.pack(">I", zlib.crc32(b"IHDR"))
)
PDF = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n"


def docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


class TestSniff:
    @pytest.mark.parametrize(
        ("head", "name", "expected"),
        [
            (PNG, "photo.png", "image/png"),
            (PNG, "invoice.pdf", "image/png"),  # the bytes decide, not the name
            (PDF, "scan.pdf", "application/pdf"),
            (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "a.jpg", "image/jpeg"),
            (b"GIF89a\x01\x00\x01\x00", "a.gif", "image/gif"),
            (docx(), "letter.docx", f"{ft._OOXML}.wordprocessingml.document"),
            (b"order,amount\n2231,9.99\n", "orders.csv", "text/csv"),
            ("Grüße aus Köln\n".encode(), "notes.txt", "text/plain"),
        ],
    )
    def test_known_content_is_recognised(self, head: bytes, name: str, expected: str) -> None:
        """A file is what its bytes say it is."""
        assert ft.sniff(head, filename=name) == expected

    @pytest.mark.parametrize(
        ("head", "name"),
        [
            (b"<html><script>alert(1)</script>", "x.png"),  # HTML calling itself a picture
            (b'<svg xmlns="http://www.w3.org/2000/svg"><script/></svg>', "logo.svg"),
            (b"order,amount\n", "orders.html"),  # text, but not named like text
            (b"\x00\x01\x02binary", "notes.txt"),  # named like text, but binary
            (b"\xc3\x28 invalid utf-8 in the middle", "notes.txt"),
            (b"", "empty.txt"),
        ],
    )
    def test_unknown_or_disguised_content_is_not_recognised(self, head: bytes, name: str) -> None:
        """Without a known signature, only UTF-8 text named like text passes."""
        assert ft.sniff(head, filename=name) is None

    def test_a_character_cut_by_the_end_of_the_head_is_still_text(self) -> None:
        """The sniffed head may end inside a multi-byte character: still text."""
        head = ("a" * 10 + "é").encode()[:-1]
        assert ft.sniff(head, filename="log.txt") == "text/plain"

    def test_svg_and_html_are_not_acceptable_types(self) -> None:
        """Documents that run scripts are not on the list at all, so no setting enables them."""
        assert not [m for m in ft.KNOWN if "svg" in m or "html" in m or "javascript" in m]


class TestSafeName:
    @pytest.mark.parametrize(
        ("raw", "mime", "expected"),
        [
            ("../../etc/passwd.txt", "text/plain", "passwd.txt"),
            ("C:\\Users\\ada\\photo.png", "image/png", "photo.png"),
            ("invoice.pdf", "image/png", "invoice.pdf.png"),
            ("report", "application/pdf", "report.pdf"),
            ("evil\u202egnp.exe", "image/png", "evilgnp.exe.png"),  # no bidi override
            ("tab\tand\nnewline.txt", "text/plain", "tabandnewline.txt"),
            ("", "image/jpeg", "file.jpg"),
            (None, None, "file"),
            ("...", "image/gif", "file.gif"),
            ("Grüße.pdf", "application/pdf", "Grüße.pdf"),
        ],
    )
    def test_names_are_made_safe(self, raw: str | None, mime: str | None, expected: str) -> None:
        """No folders, no control or direction characters, an extension matching the type."""
        assert ft.safe_name(raw, mime=mime) == expected

    def test_long_names_keep_their_extension(self) -> None:
        """A name past the limit is cut before its extension."""
        name = ft.safe_name("x" * 500 + ".pdf", mime="application/pdf")
        assert len(name) == ft.NAME_MAX
        assert name.endswith(".pdf")


class TestServing:
    def test_disposition_carries_an_ascii_fallback_and_the_real_name(self) -> None:
        """Browsers that read filename* get the real name; others a safe ASCII one."""
        value = ft.content_disposition('Grüße "2".pdf', inline=False)
        assert value == (
            "attachment; filename=\"Gr__e _2_.pdf\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%222%22.pdf"
        )

    def test_pictures_are_inline_and_text_has_a_charset(self) -> None:
        """Raster images may show in a tab; text is never left to charset guessing."""
        assert ft.content_disposition("a.png", inline=True).startswith("inline;")
        assert ft.served_type("text/plain") == "text/plain; charset=utf-8"
        assert ft.served_type("image/png") == "image/png"
        assert ft.is_image("image/png")
        assert not ft.is_image("image/heic")  # most browsers cannot show it
        assert not ft.is_image("application/pdf")


class TestAccepted:
    def test_empty_means_the_default_list(self) -> None:
        """Without a setting, pictures and office documents are accepted; archives are not."""
        accepted = ft.accepted([])
        assert "image/png" in accepted
        assert "application/pdf" in accepted
        assert "application/zip" not in accepted

    def test_an_unknown_type_is_refused(self) -> None:
        """A typo fails at startup instead of silently accepting nothing."""
        with pytest.raises(ValueError, match="image/svg"):
            ft.accepted(["image/png", "image/svg+xml"])

    def test_duplicates_are_dropped_in_order(self) -> None:
        assert ft.accepted(["application/pdf", "image/png", "application/pdf"]) == (
            "application/pdf",
            "image/png",
        )
