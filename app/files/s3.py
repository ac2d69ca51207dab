"""Attachments in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2, …).

boto3's client is thread-safe and blocking; every call runs in a worker thread so the event loop
never waits on the network. Credentials come from boto3's standard chain (AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY, a shared config file, an instance or pod role): Warmline holds no S3
secret of its own. Blobs are private; Warmline streams them to readers it has checked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import gettempdir
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from typing_extensions import override

from app.files.base import CHUNK_BYTES, FileMissing, FileStore, FileStoreUnavailable, discard

if TYPE_CHECKING:
    from types_boto3_s3.client import S3Client

# A store that does not answer within these limits is reported unavailable (503) rather than
# holding an upload or a download open; retries are boto3's standard mode (3 attempts).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Store(FileStore):
    def __init__(
        self, *, bucket: str, prefix: str, endpoint_url: str | None, region: str | None
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.where = f"s3://{bucket}/{self.prefix}"
        config = Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={"mode": "standard"},
            # Path-style addressing works on every S3-compatible server; virtual hosts need DNS
            # set up for each bucket, which self-hosted MinIO or Ceph rarely have.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self.client: S3Client = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=config
        )

    def _key(self, key: str) -> str:
        return self.prefix + key

    @override
    def scratch_dir(self) -> Path:
        return Path(gettempdir())

    @override
    async def put(self, key: str, source: Path, *, content_type: str) -> None:
        try:
            # upload_file switches to a multipart upload for large files by itself.
            await asyncio.to_thread(
                self.client.upload_file,
                str(source),
                self.bucket,
                self._key(key),
                ExtraArgs={"ContentType": content_type},
            )
        except (BotoCoreError, ClientError) as exc:
            raise FileStoreUnavailable(
                "The attachment could not be stored; try again shortly."
            ) from exc
        finally:
            discard(source)

    @override
    async def read(self, key: str) -> AsyncIterator[bytes]:
        try:
            answer = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in MISSING:
                raise FileMissing("The attachment's file is gone from the store.") from exc
            raise FileStoreUnavailable("The attachment store cannot be read.") from exc
        except BotoCoreError as exc:
            raise FileStoreUnavailable("The attachment store cannot be read.") from exc
        body = answer["Body"]
        try:
            while chunk := await asyncio.to_thread(body.read, CHUNK_BYTES):
                yield chunk
        except (BotoCoreError, ClientError) as exc:
            raise FileStoreUnavailable("The attachment store stopped answering.") from exc
        finally:
            await asyncio.to_thread(body.close)

    @override
    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(
                self.client.delete_object, Bucket=self.bucket, Key=self._key(key)
            )
        except (BotoCoreError, ClientError) as exc:
            raise FileStoreUnavailable("The attachment store cannot be written.") from exc

    @override
    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self.client.head_bucket, Bucket=self.bucket)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            raise FileStoreUnavailable(f"{self.where}: {code}") from exc
        except BotoCoreError as exc:
            raise FileStoreUnavailable(f"{self.where}: {type(exc).__name__}") from exc

    @override
    async def close(self) -> None:
        self.client.close()
