"""The plain-text transcript of `GET /api/v1/conversations/{id}/transcript?format=text`
(docs/api.md#get-apiv1conversationsidtranscript): a header, then one line per event,
`[2026-12-04 10:31:05 UTC] Visitor Ann: …`, with a sentence for what was not said.

Pure formatting of what the route read; the visibility rule was applied to `events` already.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from app.chat import events as kinds
from app.chat.transcripts import ConversationInfo
from app.store.models import ConversationEvent, SenderType

_WHO = {SenderType.VISITOR: "Visitor", SenderType.AGENT: "Agent"}


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(size: int) -> str:
    if size < 1024:  # noqa: PLR2004 - bytes below one kilobyte
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _name(body: dict[str, Any], key: str = "agent") -> str:
    ref = body.get(key)
    return str(ref.get("name") or "someone") if isinstance(ref, dict) else "someone"


def _said(body: dict[str, Any]) -> str:
    parts = [str(body.get("text") or "")]
    parts += [
        f"[file: {f.get('name')}, {_size(int(f.get('size') or 0))}]"
        for f in body.get("attachments") or []
        if isinstance(f, dict)
    ]
    return " ".join(p for p in parts if p)


def _offline(b: dict[str, Any]) -> str:
    why = {"outside_hours": "outside business hours", "no_agents": "nobody online"}
    return f"Nobody could answer ({why.get(str(b.get('reason')), b.get('reason'))})."


def _requested(b: dict[str, Any]) -> str:
    to = b.get("to") or {}
    target = (
        _name(to, "agent")
        if "agent" in to
        else _name(to, "skill")
        if "skill" in to
        else "the supervisors"
        if to.get("supervisors")
        else "the queue"
    )
    note = f": {b['note']}" if b.get("note") else ""
    return f"{str(b.get('kind', '')).capitalize()} transfer to {target} requested{note}."


def _tagged(b: dict[str, Any]) -> str:
    return f"Tags: {', '.join(b.get('tags') or []) or 'none'}."


def _rated(b: dict[str, Any]) -> str:
    comment = f': "{b["comment"]}"' if b.get("comment") else ""
    return f"Rated {b.get('score')} out of 5{comment}."


# What happened, for events that are not somebody's words.
_SENTENCES: dict[str, Callable[[dict[str, Any]], str]] = {
    kinds.OPENED: lambda b: "The conversation was opened.",
    kinds.QUEUED: lambda b: "Waiting for an agent.",
    kinds.OFFLINE: _offline,
    kinds.ASSIGNED: lambda b: f"Assigned to {_name(b)}.",
    kinds.AGENT_JOINED: lambda b: f"{_name(b)} joined the chat.",
    kinds.AGENT_LEFT: lambda b: f"{_name(b)} left the chat ({b.get('reason')}).",
    kinds.CLOSED: lambda b: f"The chat was closed by the {b.get('by', 'system')}.",
    kinds.RATED: _rated,
    kinds.EFFORT_RATED: lambda b: (
        f"Customer effort: {b.get('score')} of 7 (7: strongly agrees it was made easy)."
    ),
    kinds.TAGGED: _tagged,
    kinds.DISPOSITION: lambda b: f"Disposition: {b.get('label') or b.get('disposition')}.",
    kinds.TRANSFER_REQUESTED: _requested,
    kinds.TRANSFER_ACCEPTED: lambda b: f"Transfer accepted by {_name(b)}.",
    kinds.TRANSFER_DECLINED: lambda b: f"Transfer declined: {b.get('reason')}",
    kinds.TRANSFER_EXPIRED: lambda b: f"Transfer expired: {b.get('reason')}",
    kinds.TRANSFER_CANCELLED: lambda b: f"Transfer cancelled: {b.get('reason')}",
    kinds.ESCALATED: lambda b: f"Escalated to the supervisors: {b.get('reason')}",
    kinds.SUMMARY: lambda b: (
        "Context summary:\n    " + "\n    ".join(str(b.get("text") or "").splitlines())
    ),
    kinds.SUMMARY_EXTRA: lambda b: f"Summary notes: {b.get('text')}",
    kinds.SUPERVISOR_JOINED: lambda b: f"{_name(b)} (supervisor) joined the chat.",
    kinds.SUPERVISOR_LEFT: lambda b: f"{_name(b)} (supervisor) left the chat.",
    kinds.UNANSWERED: lambda b: "The customer is waiting for a reply.",
    kinds.SLA_BREACHED: lambda b: (
        f"First-reply SLA breached: {b.get('waited_seconds')} s against a target of "
        f"{b.get('target_seconds')} s."
    ),
}
# Somebody's words, with what kind of words they are when not to the visitor.
_SPOKEN = {
    kinds.MESSAGE: "",
    kinds.NOTE: "Internal note, ",
    kinds.TRANSFER_CHAT: "Transfer chat, ",
}


def _line(event: ConversationEvent) -> str:
    body = dict(event.body or {})
    stamp = f"[{_stamp(event.created_at)}]"
    who = f"{_WHO.get(event.sender_type, 'System')} {event.sender_name or ''}".rstrip()
    if event.kind in _SPOKEN:
        return f"{stamp} {_SPOKEN[event.kind]}{who}: {_said(body)}"
    if event.kind == kinds.WHISPER:
        return f"{stamp} Whisper to {_name(body, 'to')}, {who}: {_said(body)}"
    sentence = _SENTENCES.get(event.kind)
    said = sentence(body) if sentence else f"({event.kind})"
    key = body.get("api_key")
    if isinstance(key, dict):  # done by another system through the REST API
        said = f"{said} (API key {key.get('name')})"
    return f"{stamp} * {said}"


def plain_transcript(
    info: ConversationInfo, events: Sequence[ConversationEvent], *, internal: bool
) -> str:
    c = info.conversation
    visitor = info.visitor
    who = " ".join(
        p
        for p in (
            (visitor.name if visitor else None) or "(no name)",
            f"<{visitor.email}>" if visitor and visitor.email else None,
        )
        if p
    )
    head = [
        f"Conversation {c.id}",
        f"Visitor: {who}",
        f"Skill: {info.skill.name if info.skill else '-'}",
        f"Agents: {', '.join(p.name or str(p.id) for p in info.held_by) or '-'}",
        f"Started: {_stamp(c.created_at)}",
        f"Closed: {_stamp(c.closed_at) if c.closed_at else '-'}",
        "Agents-only events included." if internal else "Agents-only events left out.",
        "",
    ]
    return "\n".join(head + [_line(e) for e in events]) + "\n"
