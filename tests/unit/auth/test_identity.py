"""Unit tests for `app.auth.identity.verify_identity`: what a host site's signed token can and
cannot vouch for. Tokens are minted here with PyJWT, as a host site's backend would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from app.auth.identity import InvalidIdentity, Priority, verify_identity

SECRET = "a-shared-secret-of-at-least-32-characters"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def mint(secret: str = SECRET, algorithm: str = "HS256", **claims: Any) -> str:
    payload: dict[str, Any] = {"sub": "user-42", "exp": int((NOW + timedelta(hours=1)).timestamp())}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, secret, algorithm)


def refusal(token: str) -> str:
    with pytest.raises(InvalidIdentity) as raised:
        verify_identity(token, secret=SECRET, now=NOW)
    return str(raised.value)


class TestValidTokens:
    def test_minimal_token_verifies_the_user(self) -> None:
        """`sub` and `exp` are enough: the visitor is that user, at normal priority."""
        identity = verify_identity(mint(), secret=SECRET, now=NOW)
        assert identity.external_id == "user-42"
        assert identity.priority is Priority.NORMAL
        assert identity.name is None

    def test_vip_with_profile_and_attributes(self) -> None:
        """Name, email, priority and attributes come from the signed claims."""
        token = mint(
            name="Ada",
            email="ada@example.com",
            priority="vip",
            attributes={"plan": "enterprise", "seats": 40, "trial": False},
        )
        identity = verify_identity(token, secret=SECRET, now=NOW)
        assert identity.priority is Priority.VIP
        assert identity.email == "ada@example.com"
        assert dict(identity.attributes) == {"plan": "enterprise", "seats": 40, "trial": False}

    def test_small_clock_skew_is_tolerated(self) -> None:
        """A token that expired a few seconds ago by Warmline's clock still passes."""
        token = mint(exp=int((NOW - timedelta(seconds=10)).timestamp()))
        assert verify_identity(token, secret=SECRET, now=NOW).external_id == "user-42"


class TestRefusals:
    def test_wrong_secret(self) -> None:
        """A token signed with another key is refused: the widget cannot mint its own."""
        assert "signature" in refusal(mint(secret="someone-else-s-secret-32-characters!!"))

    def test_expired(self) -> None:
        """Past its expiry (beyond the skew allowance) a token is refused."""
        assert "expired" in refusal(mint(exp=int((NOW - timedelta(minutes=5)).timestamp())))

    def test_lifetime_over_a_day(self) -> None:
        """A token valid for a week would be worth stealing: refused."""
        assert "24 hours" in refusal(mint(exp=int((NOW + timedelta(days=7)).timestamp())))

    def test_not_yet_valid(self) -> None:
        """A token whose nbf lies in the future is refused."""
        assert "nbf" in refusal(mint(nbf=int((NOW + timedelta(minutes=5)).timestamp())))

    @pytest.mark.parametrize("claim", ["sub", "exp"])
    def test_required_claims(self, claim: str) -> None:
        """Without `sub` or `exp` there is nothing to vouch for, or no end to it."""
        claims: dict[str, Any] = {claim: None}
        assert repr(claim) in refusal(mint(**claims))

    def test_other_algorithms_are_refused(self) -> None:
        """Only HS256: a token cannot pick `none` or another algorithm."""
        unsigned = jwt.encode({"sub": "x", "exp": 2_000_000_000}, "", algorithm="none")
        assert "malformed" in refusal(unsigned)
        hs512 = mint(secret=SECRET * 2, algorithm="HS512")  # long enough for HS512
        assert "malformed" in refusal(hs512)

    @pytest.mark.parametrize(
        ("claims", "fragment"),
        [
            ({"priority": "urgent"}, '"priority"'),
            ({"priority": 2}, '"priority"'),
            ({"sub": ""}, "'sub'"),
            ({"sub": "x" * 129}, "'sub'"),
            ({"name": 7}, "'name'"),
            ({"attributes": ["plan"]}, '"attributes"'),
            ({"attributes": {"nested": {"a": 1}}}, "'nested'"),
            ({"attributes": {f"k{i}": i for i in range(51)}}, "50"),
            ({"exp": "tomorrow"}, "'exp'"),
        ],
    )
    def test_malformed_claims(self, claims: dict[str, Any], fragment: str) -> None:
        """Each malformed claim is refused with a message naming it."""
        assert fragment in refusal(mint(**claims))

    def test_garbage(self) -> None:
        """Something that is not a JWT at all gets a clear refusal."""
        assert "malformed" in refusal("not-a-token")
