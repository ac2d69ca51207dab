"""Cells of the CSV downloads (the conversation, transfer and quality reports), made safe to
open in a spreadsheet.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula: an agent, skill or tag named `=HYPERLINK(...)`
would run in the supervisor's spreadsheet (CSV injection). Such cells get a leading `'`, which
spreadsheets show as text and do not display. Numbers are left alone (a negative figure is a
number, not a formula); `None` is an empty cell. Reference: docs/api.md#reports.
"""

from __future__ import annotations

from typing import Final

_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """`value` as a CSV cell: "" for None, text that would be a formula quoted, else as is."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value
