"""The supervisors' frames: `monitor`, `unmonitor`, `whisper`, `barge`, `leave` and
`reassign` (docs/protocol.md#monitor, docs/handoff.md#supervisor-oversight). The extended
`take` stays with the other agents' frames in `connection.py`.

Kept out of `connection.py`, like `handoff_frames`: each handler runs one unit of work in
`handoff.service` (monitoring only reads: it stores nothing), answers the supervisor, and
publishes what was stored. Monitoring is this socket's alone: the set `Connection.monitoring`
makes the writer keep following the chat through events that would stop a non-holder, until
`unmonitor`, `conversation.closed` or the socket's end; it does not survive a reconnect.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.errors import NotParticipant
from app.chat.service import Outcome
from app.errors import Forbidden
from app.handoff import service as handoff
from app.realtime import protocol as p

if TYPE_CHECKING:
    from app.realtime.connection import Connection

OversightFrame = p.Monitor | p.Unmonitor | p.Whisper | p.Barge | p.Leave | p.Reassign


async def handle(conn: Connection, frame: OversightFrame) -> None:
    actor = conn.actor
    if actor is None or not actor.is_agent:
        raise Forbidden("Only supervisors and admins oversee chats.")
    hub = conn.hub
    now = hub.clock()
    cid = frame.conversation_id
    reply: dict[str, Any] | None = None
    outcome: Outcome
    match frame:
        case p.Monitor():
            await hub.read(lambda s: handoff.check_monitor(s, actor=actor, conversation_id=cid))
            # The answer first, then the log from seq 1 (or from where this socket is, when it
            # follows the chat already: it holds it, barged in, or monitors it).
            conn.send_frame({"type": "monitoring", "conversation_id": str(cid)})
            conn.monitoring.add(cid)
            await conn.follow(cid)
            return
        case p.Unmonitor():
            await _unmonitor(conn, cid)
            return
        case p.Whisper():
            p.check_text(frame.text, max_chars=conn.settings.max_message_chars)
            text = frame.text

            async def whisper(session: AsyncSession) -> Outcome:
                return await handoff.whisper(
                    session,
                    actor=actor,
                    conversation_id=cid,
                    client_msg_id=frame.client_msg_id,
                    text=text,
                    now=now,
                )

            outcome = await hub.unit(whisper)
            ack = outcome.ack
            assert ack is not None  # noqa: S101 - whisper always acks
            reply = {
                "type": "ack",
                "client_msg_id": ack.client_msg_id,
                "conversation_id": str(ack.conversation_id),
                "seq": ack.seq,
                "duplicate": ack.duplicate,
            }
        case p.Barge():

            async def barge(session: AsyncSession) -> Outcome:
                return await handoff.barge(session, actor=actor, conversation_id=cid, now=now)

            outcome = await hub.unit(barge)
            reply = {"type": "barged", "conversation_id": str(cid)}
        case p.Leave():
            # No answer of its own: the `supervisor.left` event is it, sent to this socket
            # before it stops following the chat.

            async def leave(session: AsyncSession) -> Outcome:
                return await handoff.leave(session, actor=actor, conversation_id=cid, now=now)

            outcome = await hub.unit(leave)
        case p.Reassign():
            to = frame.agent_id

            async def reassign(session: AsyncSession) -> Outcome:
                return await handoff.reassign(
                    session, actor=actor, conversation_id=cid, agent_id=to, now=now
                )

            outcome = await hub.unit(reassign)
            reply = {"type": "reassigned", "conversation_id": str(cid), "agent_id": str(to)}
    if reply is not None:
        conn.send_frame(reply)
    await hub.publish(outcome)


async def _unmonitor(conn: Connection, conversation_id: uuid.UUID) -> None:
    """Stop monitoring: the socket stops following the chat unless it is part of it (holds
    it, barged in, or is offered its transfer). Events already queued are still sent, then
    `monitoring_stopped`."""
    if conversation_id not in conn.monitoring:
        raise NotParticipant(
            "This socket is not monitoring that chat.", conversation_id=str(conversation_id)
        )
    conn.monitoring.discard(conversation_id)
    await conn.unfollow_unless_live(conversation_id)
    conn.send_frame({"type": "monitoring_stopped", "conversation_id": str(conversation_id)})
