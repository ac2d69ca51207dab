"""The `FileStore` interface, its errors, and the choice of implementation by URL.

A store keeps opaque blobs under keys that Warmline makes (never a user's file name). Writes are
whole-file and atomic: a reader sees a blob completely or not at all. A store does no access
control; callers check who may read a blob before they ask for it.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from app.errors import NotFound, ServiceUnavailable

# Bytes read from a store per step when streaming a blob out: large enough to keep the number
# of thread hops per megabyte low, small enough that many downloads at once stay cheap.
CHUNK_BYTES = 64 * 1024


def discard(path: Path) -> None:
    """Remove a scratch file if it is still there (quick: no need for a thread)."""
    path.unlink(missing_ok=True)


class FileStoreUnavailable(ServiceUnavailable):
    code = "file_store_unavailable"


class FileMissing(NotFound):
    """The record exists but its bytes do not (deleted from the store by hand, or lost)."""

    code = "file_missing"


class FileStore(abc.ABC):
    """Blobs by key. Implementations: `LocalStore` (a directory), `S3Store` (a bucket)."""

    #: Human-readable place, for logs and /readyz (never contains credentials).
    where: str

    @abc.abstractmethod
    def scratch_dir(self) -> Path:
        """A directory for an upload in progress. For a local store it is on the same file
        system as the blobs, so `put` can move the file into place atomically."""

    @abc.abstractmethod
    async def put(self, key: str, source: Path, *, content_type: str) -> None:
        """Store the file at `source` under `key`, consuming it (the file is moved or deleted).

        Raises:
            FileStoreUnavailable: the store cannot be written.
        """

    @abc.abstractmethod
    def read(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, in chunks.

        Raises:
            FileMissing: nothing is stored under `key` (raised on the first iteration).
            FileStoreUnavailable: the store cannot be read.
        """

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is not an error."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `FileStoreUnavailable` unless the store can be written and read."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most stores hold nothing
        """Release connections."""


def open_store(
    url: str, *, s3_endpoint_url: str | None = None, s3_region: str | None = None
) -> FileStore:
    """The store named by `url`: `file:///abs/dir`, a plain directory path, or
    `s3://bucket[/prefix]` (credentials from the standard AWS chain: environment, shared
    config, instance role).

    Raises:
        ValueError: the URL names no store Warmline knows.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        try:
            from app.files.s3 import S3Store  # noqa: PLC0415 - boto3 is only needed for S3
        except ImportError as exc:
            msg = "An s3:// attachment store needs boto3: pip install 'warmline[s3]'."
            raise ValueError(msg) from exc

        if not parts.netloc:
            msg = f"WARMLINE_ATTACHMENT_STORE={url!r} names no bucket (s3://bucket/prefix)."
            raise ValueError(msg)
        return S3Store(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint_url=s3_endpoint_url,
            region=s3_region,
        )
    if parts.scheme == "file":
        from app.files.local import LocalStore  # noqa: PLC0415 - symmetric with S3

        return LocalStore(Path(unquote(parts.path)))
    if parts.scheme == "" and url:
        from app.files.local import LocalStore  # noqa: PLC0415

        return LocalStore(Path(url).resolve())
    msg = f"WARMLINE_ATTACHMENT_STORE={url!r}: use file:///a/directory or s3://bucket/prefix."
    raise ValueError(msg)
