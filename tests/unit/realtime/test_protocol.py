"""Unit tests for `app.realtime.protocol`: turning client text into frames, and errors into
`error` frames. Sans-I/O: no socket, no loop.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import Unauthorized, WarmlineError
from app.realtime.protocol import (
    CLIENT_TYPES,
    CLOSE_TOO_BIG,
    MAX_JSON_DEPTH,
    Accept,
    Barge,
    Close,
    Decline,
    Escalate,
    Frame,
    FrameTooLarge,
    Hello,
    HelloRequired,
    Internal,
    InvalidFrame,
    InvalidJson,
    Leave,
    Monitor,
    OriginNotAllowed,
    Ping,
    Pong,
    Read,
    Reassign,
    Resume,
    SendMessage,
    Status,
    Tags,
    Take,
    Transfer,
    TransferAccept,
    TransferCancel,
    TransferDecline,
    Typing,
    UnknownType,
    Unmonitor,
    Whisper,
    error_frame,
    parse,
)

MAX_BYTES = 16 * 1024
FIELD_NAMES = [
    "token",
    "resume",
    "conversations",
    "conversation_id",
    "client_msg_id",
    "text",
    "skill",
    "page_url",
    "state",
    "seq",
    "status",
    "other",
]
CONV = "6f1c1d3e-8a7b-4b8e-9c1a-2f3e4d5c6b7a"
CONV_ID = UUID(CONV)


def frame(**fields: Any) -> str:
    return json.dumps(fields)


def frame_id(value: object) -> str | None:
    """Short test ids: a frame's type instead of its whole JSON text."""
    if isinstance(value, str) and value.startswith("{"):
        return str(json.loads(value)["type"])
    return None


def parse_error(text: str, *, max_bytes: int = MAX_BYTES) -> WarmlineError:
    """The error `parse` raises for `text`; fails the test if it parses."""
    with pytest.raises(WarmlineError) as excinfo:
        parse(text, max_bytes=max_bytes)
    return excinfo.value


def error_fields(error: WarmlineError) -> list[str]:
    errors: list[dict[str, str]] = error.details.get("errors", [])
    return [e["field"] for e in errors]


def nested(levels: int) -> dict[str, Any]:
    """A `ping` frame whose objects nest exactly `levels` deep (the frame itself is level 1)."""
    inner: dict[str, Any] = {"leaf": 1}
    for _ in range(levels - 2):
        inner = {"x": inner}
    return {"type": "ping", "x": inner} if levels > 1 else {"type": "ping"}


VALID_FRAMES: list[tuple[str, type[Frame]]] = [
    (frame(type="hello", token="tok"), Hello),
    (frame(type="hello", token="tok", resume={CONV: 7}), Hello),
    (frame(type="resume", conversations={CONV: 0}), Resume),
    (frame(type="message", client_msg_id="m1", text="hi"), SendMessage),
    (
        frame(
            type="message",
            conversation_id=CONV,
            client_msg_id="m2",
            text="hello",
            skill="billing",
            page_url="https://example.com/pricing",
        ),
        SendMessage,
    ),
    (frame(type="typing", conversation_id=CONV, state="start"), Typing),
    (frame(type="typing", conversation_id=CONV, state="stop"), Typing),
    (frame(type="read", conversation_id=CONV, seq=12), Read),
    (frame(type="close", conversation_id=CONV), Close),
    (frame(type="close", conversation_id=CONV, tags=["vip"], disposition="resolved"), Close),
    (frame(type="tags", conversation_id=CONV, tags=["refund", "vip"]), Tags),
    (frame(type="tags", conversation_id=CONV, tags=[]), Tags),
    (frame(type="status", status="online"), Status),
    (frame(type="status", status="away"), Status),
    (frame(type="accept", offer_id=CONV), Accept),
    (frame(type="decline", offer_id=CONV), Decline),
    (frame(type="decline", offer_id=CONV, reason="at lunch"), Decline),
    (frame(type="take", conversation_id=CONV), Take),
    (frame(type="transfer", conversation_id=CONV, to={"agent_id": CONV}), Transfer),
    (frame(type="transfer", conversation_id=CONV, to={"skill": "tech"}, note="n"), Transfer),
    (frame(type="transfer", conversation_id=CONV, to={"supervisors": True}), Transfer),
    (frame(type="transfer", conversation_id=CONV, mode="cold"), Transfer),
    (frame(type="escalate", conversation_id=CONV, reason="angry"), Escalate),
    (frame(type="transfer_accept", transfer_id=CONV), TransferAccept),
    (frame(type="transfer_decline", transfer_id=CONV, reason="busy"), TransferDecline),
    (frame(type="transfer_cancel", transfer_id=CONV), TransferCancel),
    (frame(type="internal", conversation_id=CONV, client_msg_id="i1", text="psst"), Internal),
    (frame(type="monitor", conversation_id=CONV), Monitor),
    (frame(type="unmonitor", conversation_id=CONV), Unmonitor),
    (frame(type="whisper", conversation_id=CONV, client_msg_id="w1", text="psst"), Whisper),
    (frame(type="barge", conversation_id=CONV), Barge),
    (frame(type="leave", conversation_id=CONV), Leave),
    (frame(type="reassign", conversation_id=CONV, agent_id=CONV), Reassign),
    (frame(type="ping"), Ping),
    (frame(type="pong"), Pong),
]


class TestParseValidFrames:
    @pytest.mark.parametrize(("text", "kind"), VALID_FRAMES, ids=frame_id)
    def test_each_frame_type_parses_into_its_class(self, text: str, kind: type[Frame]) -> None:
        """Every client frame type in the protocol is accepted and becomes its own frame class."""
        assert type(parse(text, max_bytes=MAX_BYTES)) is kind

    def test_every_client_type_is_covered(self) -> None:
        """The valid frames above include every type the server accepts."""
        assert {json.loads(text)["type"] for text, _ in VALID_FRAMES} == CLIENT_TYPES

    def test_fields_are_converted(self) -> None:
        """Conversation ids arrive as UUIDs and sequence numbers as ints."""
        parsed = parse(frame(type="hello", token="tok", resume={CONV: 7}), max_bytes=MAX_BYTES)
        assert parsed == Hello(type="hello", token="tok", resume={CONV_ID: 7})

    def test_optional_fields_default(self) -> None:
        """A message without a conversation opens one; a hello without resume replays nothing."""
        message = parse(frame(type="message", client_msg_id="m1", text="hi"), max_bytes=MAX_BYTES)
        assert isinstance(message, SendMessage)
        assert (message.conversation_id, message.skill, message.page_url) == (None, None, None)
        hello = parse(frame(type="hello", token="tok"), max_bytes=MAX_BYTES)
        assert isinstance(hello, Hello)
        assert hello.resume == {}

    def test_frame_of_exactly_max_bytes_is_accepted(self) -> None:
        """The size limit is inclusive: a frame of exactly `max_bytes` bytes is parsed."""
        text = frame(type="ping")
        assert isinstance(parse(text, max_bytes=len(text)), Ping)


class TestParseErrors:
    @pytest.mark.parametrize("text", ["{", "not json", "", "{'type': 'ping'}", '{"type":"ping"}x'])
    def test_invalid_json(self, text: str) -> None:
        """Text that is not JSON is reported as invalid_json and the socket stays open."""
        error = parse_error(text)
        assert isinstance(error, InvalidJson)
        assert (error.code, error.close_code) == ("invalid_json", None)

    @pytest.mark.parametrize("text", ["[]", '[{"type": "ping"}]', "42", '"ping"', "null", "true"])
    def test_json_that_is_not_an_object(self, text: str) -> None:
        """Valid JSON that is not an object (array, number, string...) is an invalid frame."""
        error = parse_error(text)
        assert isinstance(error, InvalidFrame)
        assert error.code == "invalid_frame"

    @pytest.mark.parametrize("text", ["{}", '{"token": "t"}', '{"type": 1}', '{"type": null}'])
    def test_missing_or_non_string_type(self, text: str) -> None:
        """An object without a string `type` is an invalid frame."""
        assert isinstance(parse_error(text), InvalidFrame)

    def test_unknown_type(self) -> None:
        """A frame type the server does not know is reported as unknown_type, naming the type."""
        error = parse_error(frame(type="subscribe"))
        assert isinstance(error, UnknownType)
        assert error.code == "unknown_type"
        assert error.details == {"type": "subscribe"}

    def test_unknown_type_echo_is_truncated(self) -> None:
        """A huge unknown type name is echoed back cut to 64 characters."""
        error = parse_error(frame(type="x" * 500))
        assert isinstance(error, UnknownType)
        assert error.details == {"type": "x" * 64}

    @pytest.mark.parametrize(
        ("text", "field"),
        [
            (frame(type="read", conversation_id=CONV), "seq"),
            (frame(type="hello"), "token"),
            (frame(type="message", client_msg_id="m1"), "text"),
            (frame(type="typing", state="start"), "conversation_id"),
            (frame(type="status"), "status"),
        ],
        ids=frame_id,
    )
    def test_missing_required_field_is_named(self, text: str, field: str) -> None:
        """A frame missing a required field is invalid, and the error says which field."""
        error = parse_error(text)
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == [field]
        assert field in error.message

    @pytest.mark.parametrize(
        ("text", "field"),
        [
            (frame(type="read", conversation_id=CONV, seq="five"), "seq"),
            (frame(type="read", conversation_id=CONV, seq=-1), "seq"),
            (frame(type="read", conversation_id="not-a-uuid", seq=1), "conversation_id"),
            (frame(type="message", client_msg_id="m1", text=123), "text"),
            (frame(type="typing", conversation_id=CONV, state="maybe"), "state"),
            (frame(type="status", status="offline"), "status"),
            (frame(type="hello", token=["t"]), "token"),
            (frame(type="resume", conversations={CONV: "x"}), f"conversations.{CONV}"),
        ],
        ids=frame_id,
    )
    def test_wrong_type_is_named(self, text: str, field: str) -> None:
        """A field of the wrong type or out of range makes the frame invalid, naming the field."""
        error = parse_error(text)
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == [field]

    @pytest.mark.parametrize(
        ("text", "field"),
        [
            (frame(type="read", conversation_id=CONV, seq=True), "seq"),
            (frame(type="read", conversation_id=CONV, seq="5"), "seq"),
        ],
        ids=["bool-for-int", "string-for-int"],
    )
    def test_json_of_another_type_is_not_coerced(self, text: str, field: str) -> None:
        """A boolean or a string where the protocol wants a number is refused, not converted."""
        error = parse_error(text)
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == [field]

    def test_unknown_extra_field(self) -> None:
        """A field the frame type does not define is refused rather than silently dropped."""
        error = parse_error(frame(type="ping", colour="red"))
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == ["colour"]

    def test_client_msg_id_longer_than_64(self) -> None:
        """A client message id over 64 characters is refused; exactly 64 is fine."""
        assert isinstance(
            parse(frame(type="message", client_msg_id="m" * 64, text="hi"), max_bytes=MAX_BYTES),
            SendMessage,
        )
        error = parse_error(frame(type="message", client_msg_id="m" * 65, text="hi"))
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == ["client_msg_id"]

    def test_empty_text(self) -> None:
        """A message with empty text is refused."""
        error = parse_error(frame(type="message", client_msg_id="m1", text=""))
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == ["text"]

    def test_error_list_is_capped(self) -> None:
        """However broken a frame is, at most 20 problems are reported back."""
        fields = {f"extra{i}": i for i in range(50)}
        error = parse_error(frame(type="ping", **fields))
        assert isinstance(error, InvalidFrame)
        assert len(error_fields(error)) == 20

    def test_nesting_deeper_than_limit(self) -> None:
        """A frame nesting objects deeper than 8 levels is refused before validation."""
        error = parse_error(json.dumps(nested(MAX_JSON_DEPTH + 1)))
        assert isinstance(error, InvalidFrame)
        assert "errors" not in error.details
        assert str(MAX_JSON_DEPTH) in error.message

    def test_deep_arrays_count_too(self) -> None:
        """Arrays nest like objects: nine levels of arrays inside a frame are refused."""
        text = '{"type": "ping", "x": ' + "[" * 8 + "]" * 8 + "}"
        error = parse_error(text)
        assert isinstance(error, InvalidFrame)
        assert "errors" not in error.details

    def test_nesting_at_the_limit_reaches_validation(self) -> None:
        """A frame whose objects nest exactly 8 deep is within the limit, so the depth check
        lets it through and the client hears about the real problem (here: an unknown field)."""
        error = parse_error(json.dumps(nested(MAX_JSON_DEPTH)))
        assert isinstance(error, InvalidFrame)
        assert error_fields(error) == ["x"], error.message

    def test_extremely_deep_nesting_is_an_invalid_frame(self) -> None:
        """Nesting far past the limit is still valid JSON, so it is refused as invalid_frame
        like any other too-deep frame, not reported as invalid_json."""
        text = '{"type": "ping", "x": ' + "[" * 2000 + "]" * 2000 + "}"
        assert len(text.encode()) < MAX_BYTES
        error = parse_error(text)
        assert isinstance(error, InvalidFrame), error.message

    def test_frame_too_large(self) -> None:
        """A frame over the byte limit is refused with a fatal error that closes with 1009."""
        text = frame(type="message", client_msg_id="m1", text="x" * 100)
        error = parse_error(text, max_bytes=len(text) - 1)
        assert isinstance(error, FrameTooLarge)
        assert error.code == "frame_too_large"
        assert error.close_code == CLOSE_TOO_BIG == 1009

    def test_size_is_counted_in_utf8_bytes(self) -> None:
        """The limit is in bytes on the wire: 100 two-byte characters exceed a 150-byte limit."""
        text = '{"type":"message","client_msg_id":"m","text":"' + "é" * 100 + '"}'
        assert len(text) < 200 < len(text.encode())
        assert isinstance(parse_error(text, max_bytes=200), FrameTooLarge)

    def test_size_is_checked_before_json(self) -> None:
        """An oversized frame is refused as too large even if it is not JSON at all."""
        assert isinstance(parse_error("x" * 100, max_bytes=10), FrameTooLarge)

    @given(st.text(max_size=300))
    def test_any_text_parses_or_raises_a_protocol_error(self, text: str) -> None:
        """Whatever a client sends, the server answers with a frame or a protocol error, never
        an unexpected exception."""
        with contextlib.suppress(FrameTooLarge, InvalidJson, InvalidFrame, UnknownType):
            parse(text, max_bytes=256)

    @given(
        kind=st.sampled_from(sorted(CLIENT_TYPES)),
        fields=st.dictionaries(
            st.sampled_from(FIELD_NAMES),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=70)
                | st.just(CONV),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=40) | st.just(CONV), inner, max_size=3)
                ),
                max_leaves=10,
            ),
        ),
    )
    def test_any_json_object_parses_or_raises_a_protocol_error(
        self, kind: str, fields: dict[str, Any]
    ) -> None:
        """Any JSON object with a known type either parses or is refused with a protocol error."""
        with contextlib.suppress(FrameTooLarge, InvalidJson, InvalidFrame, UnknownType):
            parse(json.dumps({"type": kind, **fields}), max_bytes=MAX_BYTES)


class TestErrorFrame:
    def test_code_and_message(self) -> None:
        """An error frame carries the error's code and message and nothing else by default."""
        assert error_frame(InvalidJson("Frame is not valid JSON.")) == {
            "type": "error",
            "code": "invalid_json",
            "message": "Frame is not valid JSON.",
        }

    def test_ref_echoes_client_msg_id(self) -> None:
        """When the error answers a client message, its id is echoed back as `ref`."""
        built = error_frame(InvalidFrame("Bad."), ref="m1")
        assert built["ref"] == "m1"

    def test_no_ref_when_not_given(self) -> None:
        """Without a client message to answer, the frame has no `ref` key at all."""
        assert "ref" not in error_frame(InvalidFrame("Bad."), ref=None)

    def test_details_when_present(self) -> None:
        """Details attached to the error are passed to the client under `details`."""
        built = error_frame(UnknownType("Unknown frame type.", type="subscribe"))
        assert built["details"] == {"type": "subscribe"}

    def test_no_details_when_empty(self) -> None:
        """An error without details sends no `details` key."""
        assert "details" not in error_frame(InvalidJson("Bad."))

    def test_parse_error_round_trip(self) -> None:
        """The error from a bad frame becomes an error frame naming the offending field."""
        error = parse_error(frame(type="read", conversation_id=CONV))
        built = error_frame(error, ref="m9")
        assert built["code"] == "invalid_frame"
        assert built["ref"] == "m9"
        assert built["details"]["errors"][0]["field"] == "seq"
        assert "fatal" not in built

    @pytest.mark.parametrize(
        "error",
        [
            FrameTooLarge("Too big."),
            HelloRequired("Say hello first."),
            OriginNotAllowed("Origin not allowed."),
            Unauthorized("Bad token."),
        ],
    )
    def test_fatal_for_errors_that_close_the_socket(self, error: WarmlineError) -> None:
        """Errors that close the socket are marked fatal, so the client knows not to retry."""
        assert error.close_code is not None
        assert error_frame(error)["fatal"] is True

    @pytest.mark.parametrize(
        "error",
        [InvalidJson("Bad."), InvalidFrame("Bad."), UnknownType("Bad."), WarmlineError("Bad.")],
    )
    def test_not_fatal_for_errors_that_keep_the_socket(self, error: WarmlineError) -> None:
        """Errors that keep the socket open carry no `fatal` key."""
        assert error.close_code is None
        assert "fatal" not in error_frame(error)


class TestTransferFrames:
    @pytest.mark.parametrize(
        "to",
        [
            {},
            {"agent_id": CONV, "skill": "tech"},
            {"skill": "tech", "supervisors": True},
            {"supervisors": False},
            {"skill": ""},
        ],
    )
    def test_a_transfer_names_exactly_one_target(self, to: dict[str, Any]) -> None:
        """An agent who names no target, two targets or an empty one is told, not guessed."""
        error = parse_error(frame(type="transfer", conversation_id=CONV, to=to))
        assert error.code == "invalid_frame"

    def test_a_warm_transfer_needs_a_target(self) -> None:
        error = parse_error(frame(type="transfer", conversation_id=CONV))
        assert error.code == "invalid_frame"
        assert "needs `to`" in error.message

    def test_a_transfer_note_is_bounded(self) -> None:
        error = parse_error(
            frame(type="transfer", conversation_id=CONV, to={"skill": "x"}, note="n" * 1001)
        )
        assert error_fields(error) == ["note"]
