"""Service level of a skill's queue: is the first reply coming within the target?

Pure: no I/O, no clock (the caller passes the waits it measured at `now`).
`routing.oversight` measures, for each skill, the longest wait of its queued chats and of its
assigned chats whose customer has had no agent reply yet, and asks `state()` how that stands
against the skill's target (`Skill.sla_first_response_seconds`). Reference:
docs/api.md#supervisor-overview.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta

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
