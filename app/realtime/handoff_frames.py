"""The agent frames of handoff: `transfer`, `escalate`, `transfer_accept`, `transfer_decline`,
`transfer_cancel` and `internal` (docs/protocol.md#transfer, docs/handoff.md).

Kept out of `connection.py`: each handler runs one unit of work in `handoff.service`, answers
the agent, and publishes what was stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.chat.service import Outcome
from app.errors import Forbidden
from app.handoff import service as handoff
from app.realtime import protocol as p

if TYPE_CHECKING:
    from app.realtime.connection import Connection


async def handle(conn: Connection, frame: p.ClientFrame) -> None:
    actor = conn.actor
    if actor is None or not actor.is_agent:
        raise Forbidden("Only agents transfer, escalate or write internal messages.")
    hub = conn.hub
    now = hub.clock()
    ttl = hub.transfer_ttl
    reply: dict[str, Any] | None = None
    match frame:
        case p.Transfer():
            to = frame.to
            target = handoff.Target(
                agent_id=None if to is None else to.agent_id,
                skill=None if to is None else to.skill,
                supervisors=to is not None and bool(to.supervisors),
            )

            async def transfer(session: AsyncSession) -> tuple[Outcome, handoff.Started]:
                return await handoff.request_transfer(
                    session,
                    actor=actor,
                    conversation_id=frame.conversation_id,
                    target=target,
                    cold=frame.mode == "cold",
                    note=(frame.note or "").strip() or None,
                    now=now,
                    ttl=ttl,
                    offers=hub.offers,
                )

            outcome, started = await hub.unit(transfer)
            reply = started.frame()
        case p.Escalate():

            async def escalate(session: AsyncSession) -> tuple[Outcome, handoff.Started]:
                return await handoff.escalate_by_agent(
                    session,
                    actor=actor,
                    conversation_id=frame.conversation_id,
                    reason=frame.reason,
                    now=now,
                    ttl=ttl,
                )

            outcome, started = await hub.unit(escalate)
            reply = started.frame()
        case p.TransferAccept():

            async def accept(session: AsyncSession) -> Outcome:
                return await handoff.accept(
                    session, actor=actor, transfer_id=frame.transfer_id, now=now, ttl=ttl
                )

            outcome = await hub.unit(accept)
            reply = {
                "type": "transfer_accepted",
                "transfer_id": str(frame.transfer_id),
                "conversation_id": str(outcome.conversation_id),
            }
        case p.TransferDecline():

            async def decline(session: AsyncSession) -> Outcome:
                return await handoff.decline(
                    session,
                    actor=actor,
                    transfer_id=frame.transfer_id,
                    reason=frame.reason,
                    now=now,
                )

            outcome = await hub.unit(decline)
        case p.TransferCancel():

            async def cancel(session: AsyncSession) -> Outcome:
                return await handoff.cancel(
                    session, actor=actor, transfer_id=frame.transfer_id, now=now
                )

            outcome = await hub.unit(cancel)
        case p.Internal():
            p.check_text(frame.text, max_chars=conn.settings.max_message_chars)

            async def internal(session: AsyncSession) -> Outcome:
                return await handoff.internal_message(
                    session,
                    actor=actor,
                    conversation_id=frame.conversation_id,
                    client_msg_id=frame.client_msg_id,
                    text=frame.text,
                    now=now,
                )

            outcome = await hub.unit(internal)
            ack = outcome.ack
            assert ack is not None  # noqa: S101 - internal_message always acks
            reply = {
                "type": "ack",
                "client_msg_id": ack.client_msg_id,
                "conversation_id": str(ack.conversation_id),
                "seq": ack.seq,
                "duplicate": ack.duplicate,
            }
        case _:  # pragma: no cover - the connection dispatches only the frames above
            raise p.InvalidFrame("Not a handoff frame.")
    if reply is not None:
        conn.send_frame(reply)
    await hub.publish(outcome)
