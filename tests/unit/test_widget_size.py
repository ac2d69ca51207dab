"""Size budget of the visitor widget (docs/widget.md#size): it loads on every page of a
customer's site, so its JavaScript and CSS together stay under 25 KB gzipped."""

from __future__ import annotations

import gzip
from pathlib import Path

WIDGET = Path(__file__).resolve().parents[2] / "web_widget"
BUDGET = 25 * 1024


class TestWidgetSize:
    def test_javascript_and_css_fit_the_budget(self) -> None:
        """Each file gzipped on its own (as browsers fetch them), summed: under 25 KB."""
        files = sorted([*WIDGET.glob("*.js"), *WIDGET.glob("*.css")])
        assert {f.name for f in files} >= {"widget.js", "widget.css"}
        sizes = {f.name: len(gzip.compress(f.read_bytes(), compresslevel=9)) for f in files}
        assert sum(sizes.values()) < BUDGET, sizes
