"""Verified visitor identity: a token the host site's backend signs for its logged-in user.

The widget cannot be trusted to say who a visitor is or that they are a VIP: anyone can edit
a page's JavaScript. The host site's backend, which knows its user, signs a short-lived JWT
(HS256, with the secret shared through `WARMLINE_IDENTITY_SECRET`) and the widget hands it to
`POST /api/v1/visitor/sessions`. Only what is inside a valid token is "verified": the user's id
on the host site, name, email, priority (normal, high, vip) and attributes.
Reference: docs/api.md#verified-identity.

Pure apart from PyJWT's signature check: the clock is the `now` given.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt

from app.errors import Unauthorized

# Clocks of the host site and Warmline may disagree a little.
LEEWAY = timedelta(seconds=30)
# A token is minted for a page view; a day is generous and bounds what a leaked one is worth.
MAX_LIFETIME = timedelta(hours=24)
MAX_ATTRIBUTES = 50
MAX_ID_CHARS = 128
MAX_ATTRIBUTE_NAME = 64
MAX_ATTRIBUTE_TEXT = 1000


class Priority(enum.IntEnum):
    """Queue priority: higher goes first, then longest waiting."""

    NORMAL = 0
    HIGH = 1
    VIP = 2


class InvalidIdentity(Unauthorized):
    code = "invalid_identity"


@dataclass(frozen=True, slots=True)
class Identity:
    """What a valid identity token vouches for."""

    external_id: str
    name: str | None = None
    email: str | None = None
    priority: Priority = Priority.NORMAL
    attributes: Mapping[str, str | int | float | bool | None] = field(default_factory=dict)


def verify_identity(token: str, *, secret: str, now: datetime) -> Identity:
    """The identity `token` vouches for, if it is signed with `secret` and current at `now`.

    Required claims: `sub` (the user's id on the host site) and `exp`. Optional: `iat`, `nbf`,
    `name`, `email`, `priority` ("normal", "high" or "vip"), `attributes` (flat object of
    scalars). Only HS256 is accepted, so a token cannot choose a weaker algorithm.

    Raises:
        InvalidIdentity: with the reason (bad signature, expired, missing or malformed claim).
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            # Time claims are checked below against the injected clock.
            options={
                "require": ["sub", "exp"],
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise InvalidIdentity("The identity token's signature does not match.") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidIdentity(f"The identity token lacks the {exc.claim!r} claim.") from None
    except jwt.InvalidTokenError as exc:
        raise InvalidIdentity(f"The identity token is malformed: {exc}.") from None
    instant = now.timestamp()
    exp = _number(claims, "exp")
    if exp is None or exp + LEEWAY.total_seconds() <= instant:
        raise InvalidIdentity("The identity token has expired; mint a new one.")
    if exp - instant > (MAX_LIFETIME + LEEWAY).total_seconds():
        raise InvalidIdentity("The identity token must expire within 24 hours.")
    nbf = _number(claims, "nbf")
    if nbf is not None and nbf - LEEWAY.total_seconds() > instant:
        raise InvalidIdentity("The identity token is not valid yet (nbf).")
    return Identity(
        external_id=_text(claims, "sub", MAX_ID_CHARS, required=True) or "",
        name=_text(claims, "name", 128),
        email=_text(claims, "email", 254),
        priority=_priority(claims.get("priority", "normal")),
        attributes=_attributes(claims.get("attributes", {})),
    )


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidIdentity(f"The identity token's {name!r} must be a number of seconds.")
    return float(value)


def _text(
    claims: Mapping[str, Any], name: str, limit: int, *, required: bool = False
) -> str | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > limit or "\x00" in value:
        raise InvalidIdentity(
            f"The identity token's {name!r} must be a non-empty string of at most {limit} "
            "characters."
        )
    return value


def _priority(value: object) -> Priority:
    if isinstance(value, str) and value.upper() in Priority.__members__:
        return Priority[value.upper()]
    raise InvalidIdentity('The identity token\'s "priority" must be "normal", "high" or "vip".')


def _attributes(value: object) -> dict[str, str | int | float | bool | None]:
    if not isinstance(value, dict) or len(value) > MAX_ATTRIBUTES:
        raise InvalidIdentity(
            f'The identity token\'s "attributes" must be an object of at most {MAX_ATTRIBUTES} '
            "entries."
        )
    result: dict[str, str | int | float | bool | None] = {}
    for key, item in value.items():
        if not isinstance(key, str) or len(key) > MAX_ATTRIBUTE_NAME:
            raise InvalidIdentity(
                f"Identity attribute names must be strings of at most {MAX_ATTRIBUTE_NAME} chars."
            )
        if item is not None and not isinstance(item, str | int | float | bool):
            raise InvalidIdentity(f"Identity attribute {key!r} must be a string, number or bool.")
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidIdentity(f"Identity attribute {key!r} must be a finite number.")
        if isinstance(item, str) and len(item) > MAX_ATTRIBUTE_TEXT:
            raise InvalidIdentity(
                f"Identity attribute {key!r} is longer than {MAX_ATTRIBUTE_TEXT} characters."
            )
        result[key] = item
    return result
