"""Warm and cold transfers, escalation to supervisors, and the context summary stored with
them (docs/handoff.md): the units of work the rest of the app calls, gathered here.

Every function runs inside the caller's unit of work, flushes, never commits, and returns an
`Outcome` (events stored, notices to publish after the commit), like `chat.service`. The order
of locks is the conversation's row, then the transfer's, then agents' rows, as everywhere.

The code lives in modules that import downwards only, each from those listed before it:
`summaries` (the sentiment scorer, the context summary, the "repeated themselves" check;
docs/handoff.md#context-summary), `transfers` (`Target`, `Started`, opening a pending transfer
and moving the chat; docs/handoff.md#warm-transfer), `escalation` (docs/handoff.md#escalation),
then `requests` (an agent starts a warm or cold transfer; docs/handoff.md#cold-transfer),
`answers` (accept, decline, cancel, expiry, internal notes; docs/handoff.md#how-it-ends) and
`oversight` (supervisors: monitor, whisper, barge and leave, take over any chat, reassign;
docs/handoff.md#supervisor-oversight).
"""

from __future__ import annotations

from app.handoff.answers import accept, cancel, decline, expire_due, internal_message
from app.handoff.escalation import (
    after_customer_message,
    escalate,
    escalate_by_agent,
    escalation_policy,
    supervisor_take,
    watch_rules,
)
from app.handoff.oversight import barge, check_monitor, leave, reassign, take, take_over, whisper
from app.handoff.requests import request_transfer
from app.handoff.summaries import (
    EARLIER_LIMIT,
    REPEAT_WINDOW,
    add_extra,
    build,
    for_extra,
    load_scorer,
    use_scorer,
)
from app.handoff.transfers import (
    OPEN,
    SUPERVISOR_ROLES,
    Started,
    Target,
    offer_frame,
    pending_offer_frames,
)

__all__ = [
    "EARLIER_LIMIT",
    "OPEN",
    "REPEAT_WINDOW",
    "SUPERVISOR_ROLES",
    "Started",
    "Target",
    "accept",
    "add_extra",
    "after_customer_message",
    "barge",
    "build",
    "cancel",
    "check_monitor",
    "decline",
    "escalate",
    "escalate_by_agent",
    "escalation_policy",
    "expire_due",
    "for_extra",
    "internal_message",
    "leave",
    "load_scorer",
    "offer_frame",
    "pending_offer_frames",
    "reassign",
    "request_transfer",
    "supervisor_take",
    "take",
    "take_over",
    "use_scorer",
    "watch_rules",
    "whisper",
]
