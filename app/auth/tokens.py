"""Opaque bearer tokens and password hashes.

Tokens are 256 random bits, shown to their holder once; the store keeps only their SHA-256, so
a leaked database does not leak live sessions. Passwords are hashed with Argon2id.
"""

from __future__ import annotations

import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

VISITOR_TOKEN_PREFIX = "wlv_"  # noqa: S105 - a prefix, not a secret
AGENT_TOKEN_PREFIX = "wla_"  # noqa: S105 - a prefix, not a secret
API_KEY_PREFIX = "wlk_"


def new_token(prefix: str) -> str:
    """A fresh token; the prefix tells a human (and a secret scanner) what it is."""
    return prefix + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# Verified against when the email is unknown, so that a wrong email and a wrong password take
# the same time and an attacker cannot list accounts by timing the login. The hash of a random
# password nobody kept, with the hasher's current cost parameters (tests/unit/auth/test_tokens.py
# checks they still match); a literal, because hashing at import cost every process start ~0.1 s.
# (S105: the hash of a password nobody has, not a secret.)
DUMMY_PASSWORD_HASH = (
    "$argon2id$v=19$m=65536,t=3,p=4$TW5rXTEK2/jriUSv/qgZSw"  # noqa: S105
    "$sEjGUSzkthDKnUJ1HBwvq04amGCTuq+kNd0Xa7VWnME"
)
