"""Password hashing details that a login's timing depends on."""

from __future__ import annotations

from app.auth import tokens


class TestDummyHash:
    def test_costs_what_a_real_hash_costs(self) -> None:
        """The hash verified for an unknown email has the parameters real passwords get, so a
        wrong email takes as long as a wrong password (an argon2-cffi upgrade that changes the
        defaults fails here: make a new literal)."""
        real = tokens.hash_password("correct horse battery")
        assert not tokens._hasher.check_needs_rehash(tokens.DUMMY_PASSWORD_HASH)
        assert tokens.DUMMY_PASSWORD_HASH.split("$")[1:4] == real.split("$")[1:4]

    def test_no_password_opens_it(self) -> None:
        for guess in ("", "password", "warmline-demo", "correct horse battery"):
            assert not tokens.verify_password(tokens.DUMMY_PASSWORD_HASH, guess)
