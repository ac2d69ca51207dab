"""Service level: is the first reply coming within the target, for a queue and for one chat?

Pure: no I/O, no clock (the caller passes the waits it measured, or `now`).
`routing.oversight` measures, for each skill, the longest wait of its queued chats and of its
assigned chats whose customer has had no agent reply yet, and asks `state()` how that stands
against the skill's target (`Skill.sla_first_response_seconds`); and, per chat still awaiting
its first agent reply, asks `chat()`. The live breach detector (`chat.breaches`) asks
`breached()` and `first_reply_wait()`, the same rule `reports.measures` applies at the close
(`sla_met` is False exactly when `breached()` is true of the first-response time), so that a
chat that breached live never counts as met, and the other way round. References:
docs/api.md#supervisor-overview, docs/metrics.md#sla-breaches.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# A wait past three quarters of the target leaves a supervisor time to act before the breach
# (at the common 60 s target: 45 s, with 15 s to spare).
AT_RISK_SHARE = 0.75
# What chats that need no skill are measured against: the defaults a new skill gets
# (`Skill.sla_first_response_seconds`, `Skill.sla_target_percent`), the usual chat goal of
# 80 % answered within 60 s.
DEFAULT_TARGET_SECONDS = 60
DEFAULT_TARGET_PERCENT = 80


class SlaState(enum.StrEnum):
    OK = "ok"
    AT_RISK = "at_risk"
    BREACHED = "breached"


@dataclass(frozen=True, slots=True)
class SlaTarget:
    """The first agent reply should come within `seconds` for `percent` % of chats."""

    seconds: int = DEFAULT_TARGET_SECONDS
    percent: int = DEFAULT_TARGET_PERCENT


def state(longest_wait: timedelta | None, target: SlaTarget) -> SlaState:
    """How the longest current wait for a first reply stands against the target.

    Args:
        longest_wait: the longest of the waits still running (queued chats, and assigned chats
            not yet answered by an agent); None when nobody waits.
        target: the skill's target.

    Returns:
        `breached` past the target, `at_risk` from `AT_RISK_SHARE` of it on, `ok` otherwise.
    """
    if longest_wait is None:
        return SlaState.OK
    waited = longest_wait.total_seconds()
    if waited > target.seconds:
        return SlaState.BREACHED
    if waited >= target.seconds * AT_RISK_SHARE:
        return SlaState.AT_RISK
    return SlaState.OK


@dataclass(frozen=True, slots=True)
class ChatSla:
    """One chat awaiting its first agent reply, against its skill's target."""

    state: SlaState
    target_seconds: int
    # When the target runs out: past it (by a whole millisecond) the chat is breached.
    due_at: datetime


def target_seconds(skill_id: int | None, targets: Mapping[int, int]) -> int:
    """The first-reply target of a chat that arrived needing `skill_id` (None: no skill, or a
    skill deleted since): its skill's, or `DEFAULT_TARGET_SECONDS`."""
    if skill_id is None:
        return DEFAULT_TARGET_SECONDS
    return targets.get(skill_id, DEFAULT_TARGET_SECONDS)


def breached(wait: timedelta, seconds: int) -> bool:
    """Whether a first-reply wait misses a target of `seconds`: its whole milliseconds (rounded
    down, as reports keep them) exceed the target's. The rule of `reports.measures.sla_met`."""
    return wait // timedelta(milliseconds=1) > seconds * 1000


def first_reply_wait(
    *,
    asked: datetime,
    replied_at: datetime | None,
    closed_at: datetime | None,
    now: datetime,
) -> timedelta:
    """How long the customer waited for their first agent reply, as known at `now`.

    Args:
        asked: their first message (the conversation's opening).
        replied_at: the first agent message to them, if any.
        closed_at: when the conversation closed, if it did: an unanswered wait stops there.
        now: the moment of the judgement, for a wait still running.
    """
    if replied_at is not None:
        end = replied_at
    elif closed_at is not None:
        end = closed_at
    else:
        end = now
    return max(end - asked, timedelta())


def chat(
    asked: datetime, target: int, *, now: datetime, breached_at: datetime | None = None
) -> ChatSla:
    """Where a chat still awaiting its first agent reply stands against its target at `now`.

    Args:
        asked: the customer's first message.
        target: its skill's target, in seconds (`target_seconds()`).
        now: the moment of the judgement.
        breached_at: when the breach was recorded, if it was: breached whatever the clocks say.

    Returns:
        `breached` once the wait misses the target (`breached()`), `at_risk` from
        `AT_RISK_SHARE` of it on, `ok` before; and when it is due.
    """
    wait = max(now - asked, timedelta())
    if breached_at is not None or breached(wait, target):
        verdict = SlaState.BREACHED
    elif wait.total_seconds() >= target * AT_RISK_SHARE:
        verdict = SlaState.AT_RISK
    else:
        verdict = SlaState.OK
    return ChatSla(verdict, target, asked + timedelta(seconds=target))
