"""One WebSocket session, visitor or agent: hello, frames in, events out, heartbeats.

Owns the socket's bounded outbox and its per-conversation delivery cursor: every conversation
event reaches the socket exactly once and in `seq` order, whatever the bus does, because the
writer fills any gap from the store before sending and skips what it already sent. The reader
never awaits the client's speed: a socket whose outbox overflows is closed with 1013 and
resumes by `seq`. One unit of work per inbound frame. Spec: docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from typing import Any, Literal

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from app.auth import service as auth_service
from app.bus.base import BusUnavailable, Listening, Payload
from app.chat import events as kinds
from app.chat import repository as chat_repository
from app.chat import service as chat_service
from app.chat import transfers as chat_transfers
from app.chat.errors import ConversationNotFound
from app.chat.events import StoredEvent, iso
from app.chat.service import Actor, Outcome
from app.errors import Forbidden, ServiceUnavailable, WarmlineError
from app.handoff import service as handoff_service
from app.realtime import handoff_frames, oversight_frames
from app.realtime import protocol as p
from app.realtime.hub import Hub, PresenceEntry
from app.routing import presence
from app.routing.estimate import WaitEstimate
from app.store.models import AgentStatus, Conversation, ConversationState, SenderType, Skill

log = logging.getLogger(__name__)

Role = Literal["visitor", "agent"]
# Events are read from the store in pages of this size when catching up.
REPLAY_PAGE = 500
# Seconds a close handshake may take before the socket is dropped.
CLOSE_TIMEOUT = 2.0


class HelloUnavailable(ServiceUnavailable):
    """The database failed during the hello: close with 1013 so the client retries."""

    close_code = p.CLOSE_TRY_AGAIN


class Connection:
    def __init__(self, hub: Hub, websocket: WebSocket, role: Role) -> None:
        self.hub = hub
        self.ws = websocket
        self.role = role
        self.settings = hub.settings
        self.actor: Actor | None = None
        self.outbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue(
            maxsize=self.settings.outbox_size
        )
        # Per conversation: the last seq this socket has been sent (or skipped as not visible).
        self.delivered: dict[uuid.UUID, int] = {}
        # Conversations whose events this socket is sent, live or as a replay.
        self.following: set[uuid.UUID] = set()
        # Conversations a supervisor monitors on this socket (`monitor`): followed live until
        # `unmonitor` or `conversation.closed`, whoever holds them. Per socket, not stored.
        self.monitoring: set[uuid.UUID] = set()
        # Bus subscriptions of the conversations this socket is part of now.
        self.live: dict[uuid.UUID, Listening] = {}
        # Serialises (un)subscribing: `bus.listen` awaits, and two follows of one conversation
        # (a join notice and the handler that caused it) must not both subscribe.
        self._subscriptions = asyncio.Lock()
        # The last queue frame sent per conversation, to send only changes.
        self._queue_sent: dict[uuid.UUID, tuple[Any, ...]] = {}
        self._torn_down = False
        self.personal: Listening | None = None
        self.presence_id: uuid.UUID | None = None
        self._writer: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._closed = asyncio.Event()
        self._close_lock = asyncio.Lock()
        self.include_internal = role == "agent"
        self._counted = False  # in warmline_connections (past the hello)

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> None:
        # This socket's task and the tasks it starts log with its id (docs/operations.md#logging).
        structlog.contextvars.bind_contextvars(connection_id=uuid.uuid4().hex)
        try:
            if not self._origin_allowed():
                await self.ws.accept()
                error = p.OriginNotAllowed(
                    f"Origin {self.ws.headers.get('origin')!r} may not connect to this server."
                )
                await self._close_now(error.close_code or p.CLOSE_ORIGIN, error)
                return
            await self.ws.accept()
            try:
                await self._handshake()
            except WarmlineError as error:
                await self._close_now(error.close_code or p.CLOSE_INTERNAL, error)
                return
            self.hub.connections.add(self)
            self.hub.db.metrics.connections.labels(self.role).inc()
            self._counted = True
            self._writer = asyncio.create_task(self._write_loop(), name="realtime.writer")
            await self._read_loop()
        except WebSocketDisconnect:
            pass
        finally:
            await self._cleanup()

    async def _cleanup(self) -> None:
        self.hub.connections.discard(self)
        if self._counted:
            self._counted = False
            self.hub.db.metrics.connections.labels(self.role).dec()
        self._closed.set()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        for task in tuple(self._background):
            task.cancel()
        async with self._subscriptions:
            self._torn_down = True  # a follow still in flight must not subscribe now
            for handle in tuple(self.live.values()):
                with contextlib.suppress(Exception):
                    await handle.close()
            self.live.clear()
            if self.personal is not None:
                with contextlib.suppress(Exception):
                    await self.personal.close()
        if self.presence_id is not None:
            connection_id = self.presence_id
            self.presence_id = None
            self.hub.presence.pop(connection_id, None)

            async def gone(session: AsyncSession) -> None:
                await presence.disconnect(
                    session, connection_id=connection_id, now=self.hub.clock()
                )

            with contextlib.suppress(Exception):
                await self.hub.unit(gone)

    async def shutdown(self) -> None:
        """Close because the server is stopping; the client reconnects (to any node)."""
        await self.close(p.CLOSE_GOING_AWAY, "server shutting down; reconnect and resume")

    async def close(self, code: int, reason: str) -> None:
        async with self._close_lock:
            if self._closed.is_set():
                return
            self._closed.set()
            if self._writer is not None and self._writer is not asyncio.current_task():
                self._writer.cancel()
            await self._close_socket(code, reason)

    async def _close_now(self, code: int, error: WarmlineError | str) -> None:
        reason = error if isinstance(error, str) else f"{error.code}: {error.message}"
        if isinstance(error, WarmlineError):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.ws.send_text(p.encode(p.error_frame(error))), CLOSE_TIMEOUT
                )
        self._closed.set()
        await self._close_socket(code, reason)

    async def _close_socket(self, code: int, reason: str) -> None:
        # RFC 6455 limits a close reason to 123 bytes.
        reason_bytes = reason.encode()[:123]
        with contextlib.suppress(Exception):
            if self.ws.application_state is WebSocketState.CONNECTED:
                await asyncio.wait_for(
                    self.ws.close(code, reason_bytes.decode(errors="ignore")), CLOSE_TIMEOUT
                )

    def _origin_allowed(self) -> bool:
        origin = self.ws.headers.get("origin")
        if origin is None:
            return True  # not a browser: origin checks protect browsers' users, tokens the rest
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        host = self.ws.headers.get("host")
        if host is None:
            return False
        scheme = "https" if self.ws.url.scheme in ("wss", "https") else "http"
        return origin in (f"{scheme}://{host}", f"{'wss' if scheme == 'https' else 'ws'}://{host}")

    # -- hello ----------------------------------------------------------------------------

    async def _handshake(self) -> None:
        """Read and check the hello.

        Raises:
            WarmlineError: with a `close_code`; the caller sends it as an error frame and closes.
        """
        try:
            message = await asyncio.wait_for(self.ws.receive(), self.settings.hello_timeout)
        except TimeoutError:
            raise p.HelloRequired("No hello received in time.") from None
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        text = message.get("text")
        if text is None:
            raise p.HelloRequired("The first frame must be a text hello.")
        try:
            frame = p.parse(text, max_bytes=self.settings.max_frame_bytes)
        except WarmlineError as error:
            if error.close_code is not None:
                raise
            raise p.HelloRequired(
                f"The first frame must be a valid hello: {error.message}"
            ) from None
        if not isinstance(frame, p.Hello):
            raise p.HelloRequired(f"The first frame must be hello, not {frame.type}.")
        try:
            await self._authenticate(frame.token)
        except ServiceUnavailable:
            # Not the token's fault: the client keeps its token and retries later.
            raise HelloUnavailable(
                "The chat service cannot reach its database; retry soon."
            ) from None
        assert self.actor is not None  # noqa: S101 - set by _authenticate
        actor_id = str(self.actor.id)
        # `agent_id` or `visitor_id` too, so log searches use the same key as the REST API.
        structlog.contextvars.bind_contextvars(
            role=self.role, actor_id=actor_id, **{f"{self.role}_id": actor_id}
        )
        try:
            await self._welcome(frame.resume)
        except (ServiceUnavailable, BusUnavailable):
            # The database or Redis failed while setting up: retryable, never a bad token.
            raise HelloUnavailable(
                "The chat service cannot reach its database or event bus; retry soon."
            ) from None

    async def _authenticate(self, token: str) -> None:
        now = self.hub.clock()
        if self.role == "visitor":

            async def visitor(session: AsyncSession) -> Actor:
                found = await auth_service.authenticate_visitor(session, token=token, now=now)
                return Actor(SenderType.VISITOR, found.id, found.name)

            self.actor = await self.hub.unit(visitor)
            return

        connection_id = uuid.uuid4()

        async def agent(session: AsyncSession) -> Actor:
            found = await auth_service.authenticate_agent(session, token=token, now=now)
            # Known to the hub before the row commits: a housekeeping tick in between must
            # neither delete the row as orphaned nor re-create it.
            self.hub.presence[connection_id] = PresenceEntry(found.id, now)
            await presence.connect(
                session, agent=found, connection_id=connection_id, node=self.hub.node, now=now
            )
            return Actor(SenderType.AGENT, found.id, found.name)

        try:
            self.actor = await self.hub.unit(agent)
        except BaseException:
            self.hub.presence.pop(connection_id, None)
            raise
        self.presence_id = connection_id

    async def _welcome(self, resume: dict[uuid.UUID, int]) -> None:
        actor = self._actor()
        # Subscribe first, then read: anything committed after the read arrives as a notice,
        # anything before it is in the catch-up that follows (docs/protocol.md#resume).
        self.personal = await self.hub.bus.listen(f"{self.role}:{actor.id}", self._on_personal)

        async def snapshot(
            session: AsyncSession,
        ) -> tuple[list[Conversation], list[uuid.UUID], list[WarmlineError]]:
            current: list[Conversation]
            if actor.kind is SenderType.VISITOR:
                open_one = await chat_repository.open_of_visitor(session, actor.id, lock=False)
                current = [] if open_one is None else [open_one]
            else:
                current = await chat_repository.assigned_to(session, actor.id, lock=False)
                # Chats they barged into (a supervisor): followed again after a reconnect.
                current.extend(await chat_service.barged_into(session, actor.id))
                # Chats offered to them in a pending transfer: they read those live too.
                for transfer in await chat_transfers.pending_for_receiver(session, actor.id):
                    offered = await chat_repository.get(session, transfer.conversation_id)
                    if (
                        offered is not None
                        and offered not in current
                        and await chat_service.is_live(session, actor=actor, conversation=offered)
                    ):
                        current.append(offered)
            seen = {c.id for c in current}
            denied: list[WarmlineError] = []
            replay_only: list[uuid.UUID] = []
            for conversation_id in resume:
                if conversation_id in seen:
                    continue
                conversation = await chat_repository.get(session, conversation_id)
                if conversation is None or not await chat_service.may_read(
                    session, actor=actor, conversation=conversation
                ):
                    denied.append(
                        ConversationNotFound(
                            "No such conversation.", conversation_id=str(conversation_id)
                        )
                    )
                    continue
                current.append(conversation)
                seen.add(conversation.id)
                if not await chat_service.is_live(session, actor=actor, conversation=conversation):
                    replay_only.append(conversation.id)
            return current, replay_only, denied

        conversations, replay_only, denied = await self.hub.read(snapshot)
        for conversation in conversations:
            # A seq from the future (a confused client) would hide events yet to come: clamp it.
            self.delivered[conversation.id] = min(
                resume.get(conversation.id, 0), conversation.last_seq
            )
            self.following.add(conversation.id)
            if conversation.id not in replay_only:
                await self._listen(conversation.id)
        summaries = await self.hub.read(lambda s: self._summaries(s, conversations))
        await self.ws.send_text(
            p.encode(
                {
                    "type": "welcome",
                    "protocol": p.PROTOCOL_VERSION,
                    "node": self.hub.node,
                    "heartbeat_interval": self.settings.heartbeat_interval,
                    "heartbeat_timeout": self.settings.heartbeat_timeout,
                    "max_frame_bytes": self.settings.max_frame_bytes,
                    "session": {"role": self.role, "id": str(actor.id), "name": actor.name},
                    "conversations": summaries,
                }
            )
        )
        for error in denied:
            await self.ws.send_text(p.encode(p.error_frame(error)))
        for conversation in conversations:
            self._enqueue(("catchup", conversation.id))
        if actor.kind is SenderType.VISITOR:
            self.hub.queue_moved()  # a queued visitor hears their position right away
        if actor.kind is SenderType.AGENT:
            # Offers pending from before this socket (another tab, a reconnect) are shown again.
            for offer in await self.hub.read(
                lambda s: chat_service.pending_offer_frames(s, actor.id)
            ):
                self._enqueue(("frame", offer))
            for offer in await self.hub.read(
                lambda s: handoff_service.pending_offer_frames(s, actor.id)
            ):
                self._enqueue(("frame", offer))
            await self._route_and_publish()

    async def _summaries(
        self, session: AsyncSession, conversations: list[Conversation]
    ) -> list[dict[str, Any]]:
        result = []
        for conversation in conversations:
            visitor, agent = await chat_repository.names(
                session, visitor_id=conversation.visitor_id, agent_id=conversation.agent_id
            )
            result.append(
                {
                    "id": str(conversation.id),
                    "state": conversation.state.value,
                    "last_seq": conversation.last_seq,
                    "visitor_read_seq": conversation.visitor_read_seq,
                    "agent_read_seq": conversation.agent_read_seq,
                    "visitor": None
                    if visitor is None
                    else {"id": str(visitor.id), "name": visitor.name},
                    "agent": None
                    if agent is None
                    else {"id": str(agent.id), "name": agent.name, "avatar_url": agent.avatar_url},
                    "created_at": iso(conversation.created_at),
                    "closed_at": None
                    if conversation.closed_at is None
                    else iso(conversation.closed_at),
                }
            )
        return result

    # -- subscriptions ----------------------------------------------------------------------

    async def _listen(self, conversation_id: uuid.UUID) -> None:
        async with self._subscriptions:
            if conversation_id in self.live or self._torn_down:
                return
            self.live[conversation_id] = await self.hub.bus.listen(
                f"conv:{conversation_id}", self._on_conversation
            )

    async def _unlisten(self, conversation_id: uuid.UUID) -> None:
        async with self._subscriptions:
            handle = self.live.pop(conversation_id, None)
            if handle is not None:
                await handle.close()

    async def follow(self, conversation_id: uuid.UUID) -> None:
        """Start receiving a conversation this socket just became part of.

        Continues from what this socket was already sent of it (nothing: from seq 1)."""
        if conversation_id in self.live:
            return
        await self._listen(conversation_id)
        if self._actor().is_agent:
            try:
                live = await self._is_live(conversation_id)
            except Exception:
                # Not followed, so not subscribed either: reconcile() follows only what is not
                # in `live`, and a subscription left behind would keep it from ever following
                # this chat. Its next housekeeping round tries again (the database back).
                await self._unlisten(conversation_id)
                raise
            if not live:
                # Its offer ended (or it moved on) while this socket subscribed: the withdrawal
                # notice found nothing to undo, so it is undone here.
                await self._unlisten(conversation_id)
                return
        self.following.add(conversation_id)
        self.delivered.setdefault(conversation_id, 0)
        self._enqueue(("catchup", conversation_id))

    def catch_up_all(self) -> None:
        """After a bus outage: re-read every followed conversation from the store, and follow
        conversations this socket joined meanwhile (their join notice was lost)."""
        for conversation_id in tuple(self.live):
            self._enqueue(("catchup", conversation_id))
        self._spawn(self._follow_current())

    async def _follow_current(self) -> None:
        actor = self._actor()

        async def current(session: AsyncSession) -> list[uuid.UUID]:
            if actor.kind is SenderType.VISITOR:
                found = await chat_repository.open_of_visitor(session, actor.id, lock=False)
                return [] if found is None else [found.id]
            held = await chat_repository.assigned_to(session, actor.id, lock=False)
            return [c.id for c in [*held, *await chat_service.barged_into(session, actor.id)]]

        for conversation_id in await self.hub.read(current):
            await self.follow(conversation_id)

    def reconcile(self, heads: list[chat_service.ConversationHead]) -> None:
        """Follow what this socket is part of but missed; catch up where the log is ahead."""
        actor = self._actor()
        for head in heads:
            mine = (
                (head.agent_id == actor.id and head.state is ConversationState.ASSIGNED)
                or (actor.id in head.participants and head.state is not ConversationState.CLOSED)
                if actor.is_agent
                else head.visitor_id == actor.id and head.state is not ConversationState.CLOSED
            )
            if mine and head.id not in self.live:
                self._spawn(self.follow(head.id))
            elif head.id in self.following and self.delivered.get(head.id, 0) < head.last_seq:
                self._enqueue(("catchup", head.id))

    def queue_update(self, positions: dict[uuid.UUID, tuple[int, WaitEstimate | None]]) -> None:
        """Tell a visitor where their queued conversation stands, when that changed."""
        for conversation_id in self.following:
            entry = positions.get(conversation_id)
            if entry is None:
                self._queue_sent.pop(conversation_id, None)
                continue
            position, estimate = entry
            wait = (
                None
                if estimate is None
                else {
                    "seconds": estimate.seconds,
                    "low_seconds": estimate.low_seconds,
                    "high_seconds": estimate.high_seconds,
                }
            )
            key = (position, None if wait is None else tuple(wait.values()))
            if self._queue_sent.get(conversation_id) == key:
                continue
            self._queue_sent[conversation_id] = key
            self._enqueue(
                (
                    "frame",
                    {
                        "type": "queue",
                        "conversation_id": str(conversation_id),
                        "position": position,
                        "estimated_wait": wait,
                    },
                )
            )

    def _on_personal(self, _channel: str, payload: Payload) -> None:
        kind = payload.get("t")
        if kind == "join":
            conversation_id = uuid.UUID(payload["conversation_id"])
            self._spawn(self.follow(conversation_id))
        elif kind == "offer":
            self._enqueue(("frame", payload["offer"]))
        elif kind == "frame":
            # A frame for this agent alone, already in its wire form (watchdog alerts,
            # transfer offers and their outcomes).
            frame = payload["frame"]
            self._enqueue(("frame", frame))
            if frame.get("type") == "transfer_withdrawn":
                # Their offer ended without them: they stop reading the chat, unless it is
                # (still or again) theirs.
                self._spawn(self.unfollow_unless_live(uuid.UUID(frame["conversation_id"])))
        elif kind == "offer_withdrawn":
            self._enqueue(
                (
                    "frame",
                    {
                        "type": "offer_withdrawn",
                        "offer_id": payload["offer_id"],
                        "reason": payload["reason"],
                    },
                )
            )

    def _on_conversation(self, channel: str, payload: Payload) -> None:
        kind = payload.get("t")
        actor = self._actor()
        if kind == "event":
            self._enqueue(("event", payload["event"]))
        elif kind == "typing":
            sender = payload["sender"]
            if not (sender["type"] == actor.kind.value and sender["id"] == str(actor.id)):
                self._enqueue(
                    ("frame", {"type": "typing", **{k: v for k, v in payload.items() if k != "t"}})
                )
        elif kind == "read":
            self._enqueue(
                ("frame", {"type": "read", **{k: v for k, v in payload.items() if k != "t"}})
            )

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        task.add_done_callback(_log_failure)

    def _enqueue(self, item: tuple[Any, ...]) -> None:
        if self._closed.is_set():
            return
        try:
            self.outbox.put_nowait(item)
        except asyncio.QueueFull:
            log.warning("outbox overflow: closing a slow client with 1013")
            self._spawn(
                self.close(
                    p.CLOSE_TRY_AGAIN, "slow_consumer: outbox overflow; reconnect and resume"
                )
            )

    # -- writer -----------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        interval = self.settings.heartbeat_interval
        try:
            while True:
                # Jitter keeps thousands of sockets from pinging in lockstep.
                timeout = interval * random.uniform(0.9, 1.0)  # noqa: S311 - not crypto
                try:
                    item = await asyncio.wait_for(self.outbox.get(), timeout)
                except TimeoutError:
                    await self._send({"type": "ping"})
                    continue
                await self._deliver(item)
        except asyncio.CancelledError:
            raise
        except (WebSocketDisconnect, RuntimeError, OSError):
            self._closed.set()
        except ServiceUnavailable as exc:
            # The database could not be read while catching up (down, or no connection came
            # free in time): nothing is lost, the client resumes from what it has.
            log.warning("socket closed to resume later: %s", exc.message)
            await self.close(p.CLOSE_TRY_AGAIN, "unavailable: database; reconnect and resume")
        except Exception:
            log.exception("socket writer failed")
            await self.close(p.CLOSE_INTERNAL, "internal_error")

    async def _deliver(self, item: tuple[Any, ...]) -> None:
        match item:
            case ("frame", frame):
                await self._send(frame)
            case ("catchup", conversation_id):
                await self._catch_up(conversation_id, up_to=None)
            case ("unfollow", conversation_id):
                await self._stop_following(conversation_id)
            case ("rewind", conversation_id, seq):
                self.delivered[conversation_id] = seq
                self.following.add(conversation_id)
                await self._catch_up(conversation_id, up_to=None)
            case ("event", wire):
                conversation_id = uuid.UUID(wire["conversation_id"])
                if conversation_id not in self.following:
                    return  # not (or no longer) a conversation of this socket
                seq = wire["seq"]
                done = self.delivered[conversation_id]
                if seq <= done:
                    return  # already sent, by a catch-up or an earlier notice
                if seq > done + 1:
                    await self._catch_up(conversation_id, up_to=seq - 1)
                    if conversation_id not in self.following:
                        return  # the gap held this socket's leaving
                if wire["visibility"] == "all" or self.include_internal:
                    await self._send(wire)
                self.delivered[conversation_id] = seq
                await self._after_event(conversation_id, wire)

    async def _catch_up(self, conversation_id: uuid.UUID, *, up_to: int | None) -> None:
        while conversation_id in self.following:
            after = self.delivered[conversation_id]
            if up_to is not None and after >= up_to:
                return

            async def page(session: AsyncSession, after: int = after) -> list[dict[str, Any]]:
                rows = await chat_repository.events_between(
                    session,
                    conversation_id,
                    after_seq=after,
                    up_to_seq=up_to,
                    include_internal=True,
                    limit=REPLAY_PAGE,
                )
                return [StoredEvent.of(row).wire() for row in rows]

            events = await self.hub.read(page)
            for wire in events:
                if wire["visibility"] == "all" or self.include_internal:
                    await self._send(wire)
                self.delivered[conversation_id] = wire["seq"]
                await self._after_event(conversation_id, wire)
                if conversation_id not in self.following:
                    return
            if len(events) < REPLAY_PAGE:
                if conversation_id not in self.live:
                    # A replay of a conversation this socket is not part of now: sent up to
                    # the present, once; nothing after.
                    self.following.discard(conversation_id)
                return

    async def _is_live(self, conversation_id: uuid.UUID) -> bool:
        """Whether this socket monitors the conversation or, in the store, its actor is part
        of it now (holds it, barged into it, or is offered its pending transfer)."""
        if conversation_id in self.monitoring:
            return True  # until unmonitor or conversation.closed, whoever holds it
        actor = self._actor()

        async def live(session: AsyncSession) -> bool:
            conversation = await chat_repository.get(session, conversation_id)
            return conversation is not None and await chat_service.is_live(
                session, actor=actor, conversation=conversation
            )

        return await self.hub.read(live)

    async def unfollow_unless_live(self, conversation_id: uuid.UUID) -> None:
        """Stop following a conversation this socket is no longer part of (an offer withdrawn,
        a monitoring stopped); events already queued for it are still sent."""
        if conversation_id in self.live and not await self._is_live(conversation_id):
            # Whatever is queued for it is still sent up to now; nothing after.
            self._enqueue(("unfollow", conversation_id))

    async def _after_event(self, conversation_id: uuid.UUID, wire: dict[str, Any]) -> None:
        """Stop following a conversation this socket is no longer part of.

        A closed conversation is final. An `agent.left` naming this agent may be history (a
        replay of a chat that came back to them later), so the store decides."""
        actor = self._actor()
        kind = wire["kind"]
        if kind == kinds.CLOSED or (
            actor.is_agent
            and conversation_id in self.live  # a replay-only conversation runs to its end
            and (
                (
                    kind in (kinds.AGENT_LEFT, kinds.SUPERVISOR_LEFT)
                    and wire["sender"]["id"] == str(actor.id)
                )
                # A transfer ended: a receiver who did not get the chat stops reading it.
                or kind in TRANSFER_ENDS
            )
            and not await self._is_live(conversation_id)
        ):
            await self._stop_following(conversation_id)

    async def _stop_following(self, conversation_id: uuid.UUID) -> None:
        # The cursor stays: if the conversation comes back, delivery resumes after it.
        self.following.discard(conversation_id)
        self.monitoring.discard(conversation_id)
        await self._unlisten(conversation_id)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.ws.send_text(p.encode(frame))

    # -- reader -----------------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while not self._closed.is_set():
            try:
                message = await asyncio.wait_for(self.ws.receive(), self.settings.heartbeat_timeout)
            except TimeoutError:
                await self.close(
                    p.CLOSE_HEARTBEAT, "heartbeat_timeout: no frame from the client in time"
                )
                return
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is None:
                self._reply_error(p.InvalidFrame("Binary frames are not part of the protocol."))
                continue
            try:
                frame = p.parse(text, max_bytes=self.settings.max_frame_bytes)
            except WarmlineError as error:
                if error.close_code is not None:
                    self._reply_error(error)
                    await self._drain_then_close(error.close_code, f"{error.code}: {error.message}")
                    return
                self._reply_error(error)
                continue
            ref = getattr(frame, "client_msg_id", None)
            conversation = self._conversation_of(frame)
            with structlog.contextvars.bound_contextvars(
                **({} if conversation is None else {"conversation_id": conversation})
            ):
                try:
                    await self._handle(frame)
                except WarmlineError as error:
                    self._reply_error(error, ref=ref)
                    if error.close_code is not None:
                        await self._drain_then_close(
                            error.close_code, f"{error.code}: {error.message}"
                        )
                        return
                except Exception:
                    log.exception("frame handler failed")
                    self._reply_error(
                        _Internal("Something went wrong on the server; try again."), ref=ref
                    )

    def _conversation_of(self, frame: p.ClientFrame) -> str | None:
        """The conversation a frame is about, for its log lines: the one it names, else a
        visitor's only conversation on this socket."""
        named = getattr(frame, "conversation_id", None)
        if named is not None:
            return str(named)
        if self.role == "visitor" and len(self.following) == 1:
            return str(next(iter(self.following)))
        return None

    async def _drain_then_close(self, code: int, reason: str) -> None:
        # Give the writer a moment to send the error frame before the close.
        for _ in range(20):
            if self.outbox.empty():
                break
            await asyncio.sleep(0.01)
        await self.close(code, reason)

    def send_frame(self, frame: dict[str, Any]) -> None:
        """Queue a frame for this socket, in order with everything else it is sent."""
        self._enqueue(("frame", frame))

    def _reply_error(self, error: WarmlineError, *, ref: str | None = None) -> None:
        self._enqueue(("frame", p.error_frame(error, ref=ref)))

    def _actor(self) -> Actor:
        assert self.actor is not None  # noqa: S101 - only called after the hello
        return self.actor

    async def _handle(self, frame: p.ClientFrame) -> None:
        match frame:
            case p.SendMessage():
                await self._on_message(frame)
            case p.Typing():
                await self._on_typing(frame)
            case p.Read():
                await self._on_read(frame)
            case p.Close():
                await self._on_close(frame)
            case p.Tags():
                await self._on_tags(frame)
            case p.Status():
                await self._on_status(frame)
            case p.Resume():
                await self._on_resume(frame.conversations)
            case p.Accept():
                await self._on_accept(frame)
            case p.Decline():
                await self._on_decline(frame)
            case p.Take():
                await self._on_take(frame)
            case p.Monitor() | p.Unmonitor() | p.Whisper() | p.Barge() | p.Leave() | p.Reassign():
                await oversight_frames.handle(self, frame)
            case (
                p.Transfer()
                | p.Escalate()
                | p.TransferAccept()
                | p.TransferDecline()
                | p.TransferCancel()
                | p.Internal()
            ):
                await handoff_frames.handle(self, frame)
            case p.Ping():
                self._enqueue(("frame", {"type": "pong"}))
            case p.Pong():
                pass
            case p.Hello():
                raise p.InvalidFrame("hello was already received on this socket.")

    async def _on_message(self, frame: p.SendMessage) -> None:
        actor = self._actor()
        p.check_text(
            frame.text,
            max_chars=self.settings.max_message_chars,
            may_be_empty=bool(frame.attachments),
        )
        if actor.is_agent and (frame.skill is not None or frame.page_url is not None):
            raise p.InvalidFrame("skill and page_url are only for a visitor's first message.")
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            skill_id = await _skill_id(session, frame.skill) if frame.skill else None
            return await chat_service.send_message(
                session,
                actor=actor,
                conversation_id=frame.conversation_id,
                client_msg_id=frame.client_msg_id,
                text=frame.text,
                now=now,
                skill_id=skill_id,
                page_url=frame.page_url,
                offers=self.hub.offers,
                attachment_ids=frame.attachments,
            )

        outcome = await self.hub.unit(work)
        ack = outcome.ack
        assert ack is not None  # noqa: S101 - send_message always acks
        self._enqueue(
            (
                "frame",
                {
                    "type": "ack",
                    "client_msg_id": ack.client_msg_id,
                    "conversation_id": str(ack.conversation_id),
                    "seq": ack.seq,
                    "duplicate": ack.duplicate,
                },
            )
        )
        await self.hub.publish(outcome)
        # The rest of the frame's lines name the conversation, also one this message opened
        # (it had no id when the frame's lines were bound).
        with structlog.contextvars.bound_contextvars(conversation_id=str(ack.conversation_id)):
            # A conversation this message opened: follow it. Its catch-up reads the store, so
            # whatever was published before the subscription is still delivered, once.
            if ack.conversation_id not in self.live and actor.kind is SenderType.VISITOR:
                try:
                    await self.follow(ack.conversation_id)
                except BusUnavailable:
                    log.warning(
                        "could not follow a new conversation; the bus reconnect will resync"
                    )
            if actor.kind is SenderType.VISITOR and not ack.duplicate and frame.text:
                await self._after_customer_message(ack.conversation_id, frame.text)

    async def _after_customer_message(self, conversation_id: uuid.UUID, text: str) -> None:
        """What a customer's message may set off (an escalation it asks for, a mood it reveals,
        a fact it repeats after a transfer), in its own unit of work once the message is stored
        and acked: nothing here can hold up or undo the message."""
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await handoff_service.after_customer_message(
                session,
                conversation_id=conversation_id,
                text=text,
                now=now,
                ttl=self.hub.transfer_ttl,
            )

        try:
            outcome = await self.hub.unit(work)
        except ServiceUnavailable:
            log.warning("escalation and repeat checks skipped for a message: database unavailable")
            return
        except Exception:
            # The message is stored and acked: its sender is not answered with this failure.
            log.exception("escalation and repeat checks failed for a message")
            return
        await self.hub.publish(outcome)

    async def _on_typing(self, frame: p.Typing) -> None:
        actor = self._actor()

        async def check(session: AsyncSession) -> None:
            conversation = await chat_repository.get(session, frame.conversation_id)
            if conversation is None or not await chat_service.may_write(
                session, actor=actor, conversation=conversation
            ):
                raise ConversationNotFound(
                    "No such open conversation of yours.",
                    conversation_id=str(frame.conversation_id),
                )

        await self.hub.read(check)
        await self.hub.publish_ephemeral(
            f"conv:{frame.conversation_id}",
            {
                "t": "typing",
                "conversation_id": str(frame.conversation_id),
                "sender": {"type": actor.kind.value, "id": str(actor.id), "name": actor.name},
                "state": frame.state,
            },
        )

    async def _on_read(self, frame: p.Read) -> None:
        actor = self._actor()

        async def work(session: AsyncSession) -> tuple[uuid.UUID, int] | None:
            return await chat_service.mark_read(
                session, actor=actor, conversation_id=frame.conversation_id, seq=frame.seq
            )

        moved = await self.hub.unit(work)
        if moved is not None:
            conversation_id, seq = moved
            await self.hub.publish_ephemeral(
                f"conv:{conversation_id}",
                {
                    "t": "read",
                    "conversation_id": str(conversation_id),
                    "reader": {"type": actor.kind.value, "id": str(actor.id)},
                    "seq": seq,
                },
            )

    async def _on_close(self, frame: p.Close) -> None:
        actor = self._actor()
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await chat_service.close(
                session,
                actor=actor,
                conversation_id=frame.conversation_id,
                now=now,
                offers=self.hub.offers,
                tags=frame.tags,
                disposition=frame.disposition,
            )

        await self.hub.publish(await self.hub.unit(work))

    async def _on_tags(self, frame: p.Tags) -> None:
        actor = self._actor()
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            event = await chat_service.set_tags(
                session,
                actor=actor,
                conversation_id=frame.conversation_id,
                tags=frame.tags,
                now=now,
            )
            return Outcome(
                conversation_id=frame.conversation_id, events=[] if event is None else [event]
            )

        await self.hub.publish(await self.hub.unit(work))

    async def _on_status(self, frame: p.Status) -> None:
        actor = self._actor()
        if not actor.is_agent:
            raise Forbidden("Only agents have a status.")
        status = AgentStatus(frame.status)

        async def work(session: AsyncSession) -> None:
            await presence.set_status(session, agent_id=actor.id, status=status)

        await self.hub.unit(work)
        self._enqueue(("frame", {"type": "status", "status": status.value}))
        if status is AgentStatus.ONLINE:
            await self._route_and_publish()

    async def _on_accept(self, frame: p.Accept) -> None:
        actor = self._actor()
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await chat_service.accept_offer(
                session, actor=actor, offer_id=frame.offer_id, now=now
            )

        outcome = await self.hub.unit(work)
        self._enqueue(
            (
                "frame",
                {
                    "type": "accepted",
                    "offer_id": str(frame.offer_id),
                    "conversation_id": str(outcome.conversation_id),
                },
            )
        )
        await self.hub.publish(outcome)

    async def _on_take(self, frame: p.Take) -> None:
        actor = self._actor()
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            # An offline chat (any agent), an escalated one or, for a supervisor, any open one.
            return await handoff_service.take(
                session,
                actor=actor,
                conversation_id=frame.conversation_id,
                now=now,
                ttl=self.hub.transfer_ttl,
            )

        outcome = await self.hub.unit(work)
        self._enqueue(("frame", {"type": "taken", "conversation_id": str(frame.conversation_id)}))
        await self.hub.publish(outcome)

    async def _on_decline(self, frame: p.Decline) -> None:
        actor = self._actor()
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await chat_service.decline_offer(
                session,
                actor=actor,
                offer_id=frame.offer_id,
                reason=frame.reason,
                now=now,
                offers=self.hub.offers,
            )

        await self.hub.publish(await self.hub.unit(work))

    async def _route_and_publish(self) -> None:
        now = self.hub.clock()

        async def work(session: AsyncSession) -> Outcome:
            return await chat_service.assign_waiting(session, now=now, offers=self.hub.offers)

        await self.hub.publish(await self.hub.unit(work))

    async def _on_resume(self, conversations: dict[uuid.UUID, int]) -> None:
        actor = self._actor()

        async def check(session: AsyncSession) -> list[tuple[uuid.UUID, bool, int]]:
            allowed = []
            for conversation_id in conversations:
                conversation = await chat_repository.get(session, conversation_id)
                if conversation is None or not await chat_service.may_read(
                    session, actor=actor, conversation=conversation
                ):
                    raise ConversationNotFound(
                        "No such conversation.", conversation_id=str(conversation_id)
                    )
                live = await chat_service.is_live(session, actor=actor, conversation=conversation)
                allowed.append((conversation_id, live, conversation.last_seq))
            return allowed

        for conversation_id, live, last_seq in await self.hub.read(check):
            if live:
                await self._listen(conversation_id)
            # The writer owns the cursor; a resume may move it back (a client lost its copy).
            seq = min(conversations[conversation_id], last_seq)
            self._enqueue(("rewind", conversation_id, seq))


TRANSFER_ENDS = frozenset(
    {
        kinds.TRANSFER_ACCEPTED,
        kinds.TRANSFER_DECLINED,
        kinds.TRANSFER_EXPIRED,
        kinds.TRANSFER_CANCELLED,
    }
)


class _Internal(WarmlineError):
    code = "internal_error"
    status_code = 500


async def _skill_id(session: AsyncSession, slug: str) -> int:
    skill = await session.scalar(select(Skill.id).where(Skill.slug == slug))
    if skill is None:
        raise p.InvalidFrame(f"Unknown skill {slug!r}.", field="skill")
    return skill


def _log_failure(task: asyncio.Task[None]) -> None:
    if task.cancelled() or task.exception() is None:
        return
    failure = task.exception()
    if isinstance(failure, ServiceUnavailable):
        # The database is down (hub.read logged why), not an incident of this process: a
        # follow that failed is retried by the first housekeeping round's reconcile() once the
        # database is back. (An unfollow_unless_live that failed is not: the socket keeps
        # that chat until it reconnects.)
        log.warning("connection task stopped: %s", failure.message)
        return
    log.error("connection task failed", exc_info=failure)
