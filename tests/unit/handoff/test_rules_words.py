"""Unit tests for the fast paths of phrase matching in `app.handoff.rules` (ASCII text split by
one regex, configured phrases split once per process): the same words and matches as the
character-by-character scan. Pure inputs, no loop, no database.
"""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from app.handoff.rules import _scanned, _words, asks_for_manager


def folded(text: str) -> str:
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


class TestAsciiWords:
    @given(st.text(alphabet=st.characters(max_codepoint=127)))
    def test_ascii_text_splits_as_character_by_character(self, text: str) -> None:
        """For ASCII text, the regex fast path finds exactly the words of the scan."""
        assert _words(text) == _scanned(folded(text))

    @given(st.text(), st.sampled_from(["speak to a manager", "Your MANAGER", "ＡＢＣ", "人工"]))
    def test_phrases_split_once_match_as_before(self, text: str, phrase: str) -> None:
        """Matching with phrases split once per process is matching with them split anew."""
        wanted = _scanned(folded(phrase))
        words = _words(text)
        direct = any(
            words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1)
        )
        assert (asks_for_manager(text, [phrase]) == phrase) == (bool(wanted) and direct)
