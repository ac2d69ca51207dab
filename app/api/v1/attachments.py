"""Attachments over REST: the limits, uploading a file, downloading one (docs/api.md#attachments).

Uploads are the raw file as the request body (`Content-Type` is the declared type, `filename`
a query parameter), streamed to the file store's scratch space while counted and hashed, so a
file larger than the limit is refused as soon as it passes it and never held in memory. The
first bytes decide the type (`app.files.types.sniff`). No database session is held while bytes
move: a short unit of work checks the sender before, another records the upload after. A message
frame then sends the upload (docs/protocol.md#message).

Downloads are streamed from the store with the sniffed type, `nosniff`, a sandboxing CSP and a
`Content-Disposition` carrying the file's name, to whoever may read the conversation.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field

from app.api.access import limit_key
from app.api.deps import BearerDep, NowDep, get_db, get_settings, unit
from app.api.errors import responses
from app.auth import keys as key_service
from app.auth import service as auth_service
from app.auth.errors import InvalidToken
from app.chat import attachments
from app.chat import service as chat_service
from app.chat.outcome import Actor
from app.errors import Forbidden, InvalidData, WarmlineError
from app.files import FileStore
from app.files import types as filetypes
from app.files.base import discard
from app.store.models import Attachment, Role, SenderType

router = APIRouter(prefix="/attachments", tags=["attachments"])
visitor_router = APIRouter(prefix="/visitor/attachments", tags=["visitors"])

# Downloaded files may be cached by the reader's browser only; an hour bounds how long a copy
# outlives a revoked right to read it (a visitor erased, an agent removed).
CACHE_CONTROL = "private, max-age=3600"
# A served file can neither run scripts nor load anything, even if opened as a page.
FILE_CSP = "default-src 'none'; sandbox"


class FileTooLarge(WarmlineError):
    code = "file_too_large"
    status_code = 413


class UnsupportedFileType(WarmlineError):
    code = "unsupported_file_type"
    status_code = 415


class EmptyFile(InvalidData):
    code = "empty_file"


class FileTypeOut(BaseModel):
    mime: str
    extensions: list[str]
    label: str = Field(description="A short name for people: PNG, PDF, Word…")
    image: bool = Field(description="Shown inline as a picture.")


class Limits(BaseModel):
    max_bytes: int = Field(description="The largest file accepted, in bytes.")
    max_per_message: int = Field(description="Files one message may carry.")
    max_unsent: int = Field(description="Uploads a sender may hold before sending them.")
    types: list[FileTypeOut] = Field(description="The types accepted, decided by content.")


class AttachmentOut(BaseModel):
    id: uuid.UUID = Field(description="Send it in a message frame's `attachments`.")
    name: str = Field(description="The file's name, made safe (no folders, a matching extension).")
    content_type: str = Field(description="The type its content shows, not the one declared.")
    size: int
    image: bool
    sha256: str
    created_at: datetime
    conversation_id: uuid.UUID | None = Field(description="Set once a message carries it.")
    seq: int | None = Field(description="The message that carries it.")


def _out(row: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=row.id,
        name=row.filename,
        content_type=row.content_type,
        size=row.size,
        image=filetypes.is_image(row.content_type),
        sha256=row.sha256,
        created_at=row.created_at,
        conversation_id=row.conversation_id,
        seq=row.seq,
    )


def _files(request: Request) -> FileStore:
    files: FileStore = request.app.state.files
    return files


@dataclass(frozen=True, slots=True)
class _Who:
    actor: Actor
    sees_all: bool  # a supervisor or an admin


async def _who(
    request: Request,
    credentials: BearerDep,
    now: datetime,
    *,
    visitor: bool,
    key_scope: str | None = None,
) -> _Who:
    """Authenticate in a unit of its own, closed before any bytes move. An API key is let in
    only where `key_scope` is given and it holds that scope; it then reads any file sent in a
    conversation (as the transcripts it can read link to them)."""
    if credentials is None:
        kind = "the visitor token" if visitor else "an agent session token"
        raise InvalidToken(f"Send {kind} as `Authorization: Bearer <token>`.")
    token = credentials.credentials
    async with unit(get_db(request)) as session:
        if not visitor and key_service.is_api_key(token):
            key = await key_service.authenticate_api_key(session, token=token, now=now)
            if key_scope is None:
                raise Forbidden("Uploads are an agent's, at the console; API keys cannot upload.")
            if key_scope not in key_service.effective_scopes(key.scopes):
                raise Forbidden(f"This needs the scope `{key_scope}`.", required_scope=key_scope)
            await limit_key(request, key)
            return _Who(Actor(SenderType.SYSTEM, key.id, key.name), sees_all=True)
        if visitor:
            found = await auth_service.authenticate_visitor(session, token=token, now=now)
            return _Who(Actor(SenderType.VISITOR, found.id, found.name), sees_all=False)
        agent = await auth_service.authenticate_agent(session, token=token, now=now)
        return _Who(
            Actor(SenderType.AGENT, agent.id, agent.name), sees_all=agent.role is not Role.AGENT
        )


@dataclass(slots=True)
class _Received:
    path: Path
    size: int
    sha256: str
    head: bytes


async def _receive(request: Request, *, scratch: Path, max_bytes: int) -> _Received:
    """Stream the body to a scratch file, refusing it as soon as it passes `max_bytes`."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise FileTooLarge(
            f"The file is {int(declared)} bytes; the limit is {max_bytes}.", limit=max_bytes
        )

    def create() -> BinaryIO:
        # delete=False: the file outlives this handle; `put` moves it into the store.
        handle: BinaryIO = open(  # noqa: SIM115 - closed below, on every path
            scratch / f"upload-{uuid.uuid4().hex}", "xb"
        )
        return handle

    handle = await asyncio.to_thread(create)
    path = Path(handle.name)
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                raise FileTooLarge(
                    f"The file is larger than the limit of {max_bytes} bytes.", limit=max_bytes
                )
            digest.update(chunk)
            if len(head) < filetypes.HEAD_BYTES:
                head += chunk[: filetypes.HEAD_BYTES - len(head)]
            await asyncio.to_thread(handle.write, chunk)
        await asyncio.to_thread(handle.close)
    except BaseException:
        # Refused, or the client went away mid-upload: nothing of it stays behind.
        await asyncio.to_thread(handle.close)
        discard(path)
        raise
    return _Received(path, size, digest.hexdigest(), head)


async def _upload(
    request: Request, who: _Who, filename: str | None, now: datetime
) -> AttachmentOut:
    db, files = get_db(request), _files(request)
    accepted: tuple[str, ...] = request.app.state.attachment_types
    async with unit(db, write=False) as session:
        # Before the bytes move: a sender over the cap sends none.
        await attachments.check_quota(session, actor=who.actor)
    received = await _receive(
        request, scratch=files.scratch_dir(), max_bytes=get_settings(request).attachment_max_bytes
    )
    stored = False
    key = ""
    try:
        if received.size == 0:
            raise EmptyFile("The file is empty.")
        mime = filetypes.sniff(received.head, filename=filename or "")
        if mime is None or mime not in accepted:
            what = "This file's type" if mime is None else f"{mime}"
            raise UnsupportedFileType(
                f"{what} is not accepted here (the content decides, not the name). Accepted: "
                + ", ".join(filetypes.KNOWN[m].label for m in accepted)
                + ".",
                detected=mime,
                accepted=list(accepted),
            )
        attachment_id = uuid.uuid4()
        # Sharded by the id's first two hex digits so no directory grows past a few thousand.
        key = f"{attachment_id.hex[:2]}/{attachment_id}"
        await files.put(key, received.path, content_type=mime)
        stored = True
        upload = attachments.Upload(
            id=attachment_id,
            filename=filetypes.safe_name(filename, mime=mime),
            content_type=mime,
            size=received.size,
            sha256=received.sha256,
            storage_key=key,
        )
        async with unit(db) as session:
            row = await attachments.record_upload(session, actor=who.actor, upload=upload, now=now)
        return _out(row)
    except BaseException:
        discard(received.path)
        if stored:
            # Not recorded (over the cap by a parallel upload, or the database failed): the
            # bytes must not stay behind without a row that would ever purge them.
            with contextlib.suppress(WarmlineError):
                await files.delete(key)
        raise


_FILENAME = Query(
    max_length=1000,
    description="The file's name as the sender knows it; made safe before it is stored.",
    examples=["invoice-2231.pdf"],
)
_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The file's bytes, as they are (not multipart).",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_UPLOAD_DESCRIPTION = (
    "Upload one file as the raw request body, then send it with a message frame's "
    "`attachments` within 24 hours (unsent uploads are deleted then). The content decides the "
    "type, whatever the name or `Content-Type` say; a type not accepted is refused with 415, a "
    "file over the limit with 413 as soon as it passes it. See `GET /api/v1/attachments/limits`."
)


@router.get(
    "/limits",
    summary="What may be uploaded",
    description="The size limit and the accepted types, for a client to check a file before "
    "uploading it. Needs no token.",
)
async def limits(request: Request) -> Limits:
    accepted: tuple[str, ...] = request.app.state.attachment_types
    return Limits(
        max_bytes=get_settings(request).attachment_max_bytes,
        max_per_message=attachments.MAX_PER_MESSAGE,
        max_unsent=attachments.MAX_UNSENT,
        types=[FileTypeOut(**t) for t in filetypes.describe(accepted)],
    )


@router.post(
    "",
    summary="Upload a file (agent)",
    description=_UPLOAD_DESCRIPTION,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses=responses(401, 403, 413, 415, 422, 429, 503),
)
async def upload_as_agent(
    request: Request,
    credentials: BearerDep,
    now: NowDep,
    filename: Annotated[str | None, _FILENAME] = None,
) -> AttachmentOut:
    who = await _who(request, credentials, now, visitor=False)
    return await _upload(request, who, filename, now)


@visitor_router.post(
    "",
    summary="Upload a file (visitor)",
    description=_UPLOAD_DESCRIPTION,
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_UPLOAD_BODY,
    responses=responses(401, 413, 415, 422, 429, 503),
)
async def upload_as_visitor(
    request: Request,
    credentials: BearerDep,
    now: NowDep,
    filename: Annotated[str | None, _FILENAME] = None,
) -> AttachmentOut:
    who = await _who(request, credentials, now, visitor=True)
    return await _upload(request, who, filename, now)


async def _download(request: Request, who: _Who, attachment_id: uuid.UUID) -> Response:
    async with unit(get_db(request), write=False) as session:
        row = await chat_service.readable_attachment(
            session, actor=who.actor, attachment_id=attachment_id, sees_all=who.sees_all
        )
    etag = f'"{row.sha256}"'
    headers = {
        "Content-Disposition": filetypes.content_disposition(
            row.filename, inline=filetypes.is_image(row.content_type)
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": FILE_CSP,
        "Cache-Control": CACHE_CONTROL,
        "ETag": etag,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    chunks = _files(request).read(row.storage_key)
    # The first chunk is read before the response starts, so a file missing from the store is a
    # clean 404 problem rather than a response cut off after its headers.
    first = await anext(chunks, b"")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in chunks:
            yield chunk

    headers["Content-Length"] = str(row.size)
    return StreamingResponse(
        body(), media_type=filetypes.served_type(row.content_type), headers=headers
    )


_DOWNLOAD_DESCRIPTION = (
    "The file's bytes with its detected type, `X-Content-Type-Options: nosniff`, a sandboxing "
    "`Content-Security-Policy` and `Content-Disposition` (inline for pictures, attachment "
    "otherwise) carrying its name. `ETag` is its SHA-256."
)

# The file is served with its own type (found from its content when it was uploaded), one of
# those `GET /attachments/limits` lists: the document cannot name it in advance.
_FILE: dict[str, Any] = {
    "description": "The file, with the type found from its content.",
    "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
}


@router.get(
    "/{attachment_id}",
    summary="Download a file (agent)",
    description=_DOWNLOAD_DESCRIPTION + " An agent may download their own uploads and the files "
    "of conversations they may read; supervisors and admins, and API keys with "
    "`transcripts:read`, any file sent in a conversation.",
    response_class=Response,
    responses={200: _FILE, **responses(401, 403, 404, 422, 429, 503)},
)
async def download_as_agent(
    request: Request, attachment_id: uuid.UUID, credentials: BearerDep, now: NowDep
) -> Response:
    who = await _who(request, credentials, now, visitor=False, key_scope="transcripts:read")
    return await _download(request, who, attachment_id)


@visitor_router.get(
    "/{attachment_id}",
    summary="Download a file (visitor)",
    description=_DOWNLOAD_DESCRIPTION + " A visitor may download their own uploads and every "
    "file sent in their conversations.",
    response_class=Response,
    responses={200: _FILE, **responses(401, 403, 404, 422, 503)},
)
async def download_as_visitor(
    request: Request, attachment_id: uuid.UUID, credentials: BearerDep, now: NowDep
) -> Response:
    who = await _who(request, credentials, now, visitor=True)
    return await _download(request, who, attachment_id)
