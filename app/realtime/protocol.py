"""The WebSocket wire protocol, version 1: frames, parsing, error frames and close codes.

Sans-I/O: turns text into validated frames and errors into frames; it never touches a socket
or the store. The specification is docs/protocol.md; keep the two in step.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from app.chat.attachments import MAX_PER_MESSAGE as MAX_ATTACHMENTS
from app.chat.labels import MAX_TAG_CHARS, MAX_TAGS
from app.errors import WarmlineError

PROTOCOL_VERSION = 1

# Close codes (docs/protocol.md#close-codes). 1xxx are RFC 6455's own; 4xxx are Warmline's.
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001  # the server is shutting down: reconnect (to any node) and resume
CLOSE_TOO_BIG = 1009
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013  # the client read too slowly and its outbox overflowed: resume
CLOSE_UNAUTHORIZED = 4001
CLOSE_HELLO_REQUIRED = 4002
CLOSE_ORIGIN = 4003
CLOSE_HEARTBEAT = 4008

ClientMsgId = Annotated[str, Field(min_length=1, max_length=64)]
# Strict: `true` or "5" is not a seq (lax mode would read them as 1 and 5).
Seq = Annotated[int, Field(ge=0, le=2**53, strict=True)]


class Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Hello(Frame):
    type: Literal["hello"]
    token: Annotated[str, Field(min_length=1, max_length=256)]
    # Last seq seen per conversation; the server replays everything after it.
    resume: Annotated[dict[uuid.UUID, Seq], Field(max_length=100)] = Field(default_factory=dict)


class Resume(Frame):
    type: Literal["resume"]
    conversations: Annotated[dict[uuid.UUID, Seq], Field(min_length=1, max_length=100)]


class SendMessage(Frame):
    type: Literal["message"]
    conversation_id: uuid.UUID | None = None
    client_msg_id: ClientMsgId
    # Ids of the sender's uploads (POST …/attachments) sent with this message, in order.
    # Declared before `text`, whose check reads it.
    attachments: Annotated[list[uuid.UUID], Field(max_length=MAX_ATTACHMENTS)] = Field(
        default_factory=list
    )
    # May be empty only when the message carries attachments.
    text: str
    # Visitor only, and only when this message opens a conversation.
    skill: Annotated[str | None, Field(max_length=64)] = None
    page_url: Annotated[str | None, Field(max_length=2048)] = None

    @field_validator("attachments")
    @classmethod
    def _each_once(cls, value: list[uuid.UUID]) -> list[uuid.UUID]:
        if len(set(value)) != len(value):
            raise ValueError("an attachment is listed twice")
        return value

    @field_validator("text")
    @classmethod
    def _says_something(cls, value: str, info: ValidationInfo) -> str:
        if not value and not info.data.get("attachments"):
            raise ValueError("a message needs text or attachments")
        return value


class Typing(Frame):
    type: Literal["typing"]
    conversation_id: uuid.UUID
    state: Literal["start", "stop"]


class Read(Frame):
    type: Literal["read"]
    conversation_id: uuid.UUID
    seq: Seq


# One label as sent; the server trims, collapses spaces and lower-cases it (app.chat.labels).
Tag = Annotated[str, Field(min_length=1, max_length=2 * MAX_TAG_CHARS)]


class Close(Frame):
    type: Literal["close"]
    conversation_id: uuid.UUID
    # Agents only: the chat's tags from now on, and how it ended (a code the deployment offers).
    tags: Annotated[list[Tag] | None, Field(max_length=MAX_TAGS)] = None
    disposition: Annotated[str | None, Field(min_length=1, max_length=64)] = None


class Tags(Frame):
    type: Literal["tags"]
    conversation_id: uuid.UUID
    tags: Annotated[list[Tag], Field(max_length=MAX_TAGS)]


class Status(Frame):
    type: Literal["status"]
    status: Literal["online", "away"]


class Accept(Frame):
    type: Literal["accept"]
    offer_id: uuid.UUID


class Decline(Frame):
    type: Literal["decline"]
    offer_id: uuid.UUID
    reason: Annotated[str | None, Field(max_length=500)] = None


class Take(Frame):
    """An agent picks up an offline conversation (a message left for later)."""

    type: Literal["take"]
    conversation_id: uuid.UUID


class TransferTo(Frame):
    """Where a transfer goes: exactly one of `agent_id`, `skill`, `supervisors: true`."""

    agent_id: uuid.UUID | None = None
    skill: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    supervisors: Literal[True] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> TransferTo:
        given = [self.agent_id is not None, self.skill is not None, self.supervisors is not None]
        if sum(given) != 1:
            raise ValueError("give exactly one of agent_id, skill, supervisors")
        return self


class Transfer(Frame):
    """The holding agent hands the chat on (docs/handoff.md#warm-transfer)."""

    type: Literal["transfer"]
    conversation_id: uuid.UUID
    to: TransferTo | None = None
    mode: Literal["warm", "cold"] = "warm"
    note: Annotated[str | None, Field(max_length=1000)] = None

    @model_validator(mode="after")
    def _target(self) -> Transfer:
        if self.mode == "warm" and self.to is None:
            raise ValueError("a warm transfer needs `to`")
        return self


class Escalate(Frame):
    type: Literal["escalate"]
    conversation_id: uuid.UUID
    reason: Annotated[str | None, Field(max_length=500)] = None


class TransferAccept(Frame):
    type: Literal["transfer_accept"]
    transfer_id: uuid.UUID


class TransferDecline(Frame):
    type: Literal["transfer_decline"]
    transfer_id: uuid.UUID
    reason: Annotated[str | None, Field(max_length=500)] = None


class TransferCancel(Frame):
    type: Literal["transfer_cancel"]
    transfer_id: uuid.UUID


class Internal(Frame):
    """Agents-only text: a pending transfer's private talk, or an internal note."""

    type: Literal["internal"]
    conversation_id: uuid.UUID
    client_msg_id: ClientMsgId
    text: Annotated[str, Field(min_length=1)]


class Monitor(Frame):
    """A supervisor follows a chat read-only (docs/protocol.md#monitor)."""

    type: Literal["monitor"]
    conversation_id: uuid.UUID


class Unmonitor(Frame):
    type: Literal["unmonitor"]
    conversation_id: uuid.UUID


class Whisper(Frame):
    """A supervisor's private word to the agent holding the chat; never seen by the visitor."""

    type: Literal["whisper"]
    conversation_id: uuid.UUID
    client_msg_id: ClientMsgId
    text: Annotated[str, Field(min_length=1)]


class Barge(Frame):
    """A supervisor joins the chat beside its agent (docs/protocol.md#barge)."""

    type: Literal["barge"]
    conversation_id: uuid.UUID


class Leave(Frame):
    type: Literal["leave"]
    conversation_id: uuid.UUID


class Reassign(Frame):
    """A supervisor gives the chat to another agent (docs/protocol.md#reassign)."""

    type: Literal["reassign"]
    conversation_id: uuid.UUID
    agent_id: uuid.UUID


class Ping(Frame):
    type: Literal["ping"]


class Pong(Frame):
    type: Literal["pong"]


ClientFrame = Annotated[
    Hello
    | Resume
    | SendMessage
    | Typing
    | Read
    | Close
    | Tags
    | Status
    | Accept
    | Decline
    | Take
    | Transfer
    | Escalate
    | TransferAccept
    | TransferDecline
    | TransferCancel
    | Internal
    | Monitor
    | Unmonitor
    | Whisper
    | Barge
    | Leave
    | Reassign
    | Ping
    | Pong,
    Field(discriminator="type"),
]
_client_frame: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
CLIENT_TYPES = frozenset(
    {
        "hello",
        "resume",
        "message",
        "typing",
        "read",
        "close",
        "tags",
        "status",
        "accept",
        "decline",
        "take",
        "transfer",
        "escalate",
        "transfer_accept",
        "transfer_decline",
        "transfer_cancel",
        "internal",
        "monitor",
        "unmonitor",
        "whisper",
        "barge",
        "leave",
        "reassign",
        "ping",
        "pong",
    }
)
# Nesting deeper than this is refused before validation: no legitimate frame needs it.
MAX_JSON_DEPTH = 8


class InvalidJson(WarmlineError):
    code = "invalid_json"


class InvalidFrame(WarmlineError):
    code = "invalid_frame"
    status_code = 422


class UnknownType(WarmlineError):
    code = "unknown_type"


class FrameTooLarge(WarmlineError):
    code = "frame_too_large"
    status_code = 413
    close_code = CLOSE_TOO_BIG


class HelloRequired(WarmlineError):
    code = "hello_required"
    close_code = CLOSE_HELLO_REQUIRED


class OriginNotAllowed(WarmlineError):
    code = "origin_not_allowed"
    status_code = 403
    close_code = CLOSE_ORIGIN


def _depth(value: Any, limit: int) -> int:
    """How many objects/arrays deep `value` nests (the frame itself is 1); stops past `limit`."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend((v, depth + 1) for v in children if isinstance(v, dict | list))
    return deepest


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_contains_nul(v) for v in value)
    return False


def parse(text: str, *, max_bytes: int) -> ClientFrame:
    """Validate one client frame.

    Raises:
        FrameTooLarge, InvalidJson, InvalidFrame, UnknownType.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise FrameTooLarge(f"Frame of {size} bytes exceeds the limit of {max_bytes} bytes.")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        if "recursion" in str(exc) or "depth" in str(exc):
            # Valid JSON, just absurdly deep: the same answer as any frame over the depth limit.
            raise InvalidFrame(f"Frame nests deeper than {MAX_JSON_DEPTH} levels.") from None
        raise InvalidJson(f"Frame is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidFrame("A frame must be a JSON object.")
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise InvalidFrame(f"Frame nests deeper than {MAX_JSON_DEPTH} levels.")
    # A NUL cannot be stored (PostgreSQL text refuses it) and has no place in chat text. The
    # cheap test on the raw text spares the walk for nearly every frame.
    if ("\x00" in text or "\\u0000" in text) and _contains_nul(data):
        raise InvalidFrame("NUL characters are not allowed in a frame.")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise InvalidFrame("A frame needs a string field `type`.")
    if kind not in CLIENT_TYPES:
        raise UnknownType(f"Unknown frame type {kind!r}.", type=kind[:64])
    try:
        return _client_frame.validate_python(data)
    except ValidationError as exc:
        problems = [
            {
                "field": ".".join(str(p) for p in err["loc"][1:]) or "(frame)",
                "problem": err["msg"],
            }
            for err in exc.errors(include_url=False, include_input=False)
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        raise InvalidFrame(f"Invalid {kind} frame: {summary}", errors=problems[:20]) from None


def check_text(text: str, *, max_chars: int, may_be_empty: bool = False) -> None:
    """A chat text (message or internal) within the deployment's length limit and not blank
    (`may_be_empty`: a message carrying files may have no text at all, but not blank text).

    Raises:
        InvalidFrame.
    """
    if len(text) > max_chars:
        raise InvalidFrame(
            f"Message is {len(text)} characters; the limit is {max_chars}.", limit=max_chars
        )
    if not text.strip() and not (may_be_empty and text == ""):
        raise InvalidFrame("Message text is blank.")


def error_frame(error: WarmlineError, *, ref: str | None = None) -> dict[str, Any]:
    """The `error` frame for `error`; `ref` echoes the client_msg_id it answers, if any."""
    frame: dict[str, Any] = {"type": "error", "code": error.code, "message": error.message}
    if ref is not None:
        frame["ref"] = ref
    if error.details:
        frame["details"] = error.details
    if error.close_code is not None:
        frame["fatal"] = True
    return frame


def encode(frame: dict[str, Any]) -> str:
    return orjson.dumps(frame).decode()
