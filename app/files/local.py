"""Attachments in a directory on local disk: the embedded default.

Blobs live at `<root>/<key>`; uploads in progress in `<root>/.incoming`, on the same file system,
so that `put` is one atomic `os.replace`. Several Warmline hosts need the directory shared (NFS)
or an S3-compatible store instead (docs/operations.md#attachments).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from typing_extensions import override

from app.files.base import CHUNK_BYTES, FileMissing, FileStore, FileStoreUnavailable, discard

INCOMING = ".incoming"


class LocalStore(FileStore):
    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        # Keys are Warmline's own, but a bug must not turn into reading outside the root.
        if self.root.resolve() not in path.parents:
            msg = f"attachment key {key!r} leaves the store"
            raise ValueError(msg)
        return path

    @override
    def scratch_dir(self) -> Path:
        incoming = self.root / INCOMING
        incoming.mkdir(parents=True, exist_ok=True)
        return incoming

    @override
    async def put(self, key: str, source: Path, *, content_type: str) -> None:
        target = self._path(key)

        def move() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)

        try:
            await asyncio.to_thread(move)
        except OSError as exc:
            discard(source)
            raise FileStoreUnavailable(
                "The attachment could not be stored; try again shortly."
            ) from exc

    @override
    async def read(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError as exc:
            raise FileMissing("The attachment's file is gone from the store.") from exc
        except OSError as exc:
            raise FileStoreUnavailable("The attachment store cannot be read.") from exc
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK_BYTES):
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    @override
    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)

    @override
    async def ping(self) -> None:
        probe = self.root / INCOMING / f"ping-{uuid.uuid4().hex}"

        def touch() -> None:
            probe.parent.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"ok")
            probe.unlink()

        try:
            await asyncio.to_thread(touch)
        except OSError as exc:
            raise FileStoreUnavailable(f"{self.where} is not writable: {exc.strerror}") from exc
