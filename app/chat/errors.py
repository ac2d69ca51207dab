"""Conversation errors a client may see (codes listed in docs/protocol.md#errors)."""

from __future__ import annotations

from app.errors import Conflict, Forbidden, NotFound, WarmlineError


class ConversationNotFound(NotFound):
    code = "conversation_not_found"


class NotParticipant(Forbidden):
    code = "not_participant"


class ConversationClosed(Conflict):
    code = "conversation_closed"


class OfferNotFound(NotFound):
    code = "offer_not_found"


class OfferNotPending(Conflict):
    code = "offer_not_pending"


class NotOffline(Conflict):
    code = "not_offline"


class AtCapacity(Conflict):
    code = "at_capacity"


class TransferNotFound(NotFound):
    code = "transfer_not_found"


class TransferNotPending(Conflict):
    code = "transfer_not_pending"


class TransferPending(Conflict):
    code = "transfer_pending"


class TransferTargetUnavailable(Conflict):
    code = "transfer_target_unavailable"


class AlreadyTaken(Conflict):
    code = "already_taken"


class AlreadyParticipant(Conflict):
    code = "already_participant"


class NotAssigned(Conflict):
    """The chat has no agent holding it (queued or offline): nobody to whisper to."""

    code = "not_assigned"


class AttachmentNotFound(NotFound):
    code = "attachment_not_found"


class TooManyUploads(WarmlineError):
    code = "too_many_uploads"
    status_code = 429


class CannedResponseNotFound(NotFound):
    code = "canned_response_not_found"


class ShortcutTaken(Conflict):
    code = "shortcut_taken"


class UnknownVariable(WarmlineError):
    """A canned response names a variable rendering cannot fill (docs/api.md#canned-responses)."""

    code = "unknown_variable"
    status_code = 422
