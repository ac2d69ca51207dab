"""CSV cells that a spreadsheet would run as formulas are quoted (app/api/spreadsheet.py)."""

from __future__ import annotations

import csv
import io

import pytest

from app.api.spreadsheet import cell


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ('=HYPERLINK("http://evil.example","Ann")', '\'=HYPERLINK("http://evil.example","Ann")'),
        ("+1 555 0100", "'+1 555 0100"),
        ("-vip", "'-vip"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Ann Lee", "Ann Lee"),
        ("2026-12-01", "2026-12-01"),
        ("", ""),
        (None, ""),
        (-3, -3),
        (-0.25, -0.25),
        (0, 0),
    ],
)
def test_cells(value: object, shown: object) -> None:
    assert cell(value) == shown


def test_a_row_reads_back_as_written_text() -> None:
    """What a supervisor's spreadsheet gets: the quoted name is text, the figures numbers."""
    out = io.StringIO()
    csv.writer(out).writerow([cell(v) for v in ("=cmd|' /C calc'!A0", 12, -1.5, None)])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == [
        "'=cmd|' /C calc'!A0",
        "12",
        "-1.5",
        "",
    ]
