"""Both attachment stores pass one suite: a directory, and an S3 bucket over the real S3 API
(moto's server on 127.0.0.1; the store does not know it is not AWS)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from app.files import FileMissing, FileStore, FileStoreUnavailable, open_store
from tests.conftest import S3

pytestmark = [pytest.mark.integration]


@pytest_asyncio.fixture(params=["local", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FileStore]:
    if request.param == "local":
        made = open_store((tmp_path / "files").as_uri())
    else:
        s3: S3 = request.getfixturevalue("s3")
        made = open_store(f"s3://{s3.bucket}/attachments", s3_endpoint_url=s3.endpoint_url)
    try:
        yield made
    finally:
        await made.close()


def scratch(store: FileStore, data: bytes) -> Path:
    path = store.scratch_dir() / f"test-{os.urandom(6).hex()}"
    path.write_bytes(data)
    return path


async def read_all(store: FileStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.read(key)])


@pytest.mark.asyncio
class TestFileStore:
    async def test_what_is_put_is_read_back_whole(self, store: FileStore) -> None:
        """Bytes come back exactly, across many chunks, and the scratch file is consumed."""
        data = os.urandom(300 * 1024 + 7)
        source = scratch(store, data)
        await store.put("ab/one", source, content_type="application/pdf")
        assert not source.exists()
        assert await read_all(store, "ab/one") == data

    async def test_a_missing_key_is_file_missing(self, store: FileStore) -> None:
        """Reading what is not there says so (the API answers 404), not a store outage."""
        with pytest.raises(FileMissing):
            await read_all(store, "zz/none")

    async def test_delete_removes_and_is_idempotent(self, store: FileStore) -> None:
        """A deleted blob is gone; deleting it again is not an error."""
        await store.put("cd/two", scratch(store, b"bytes"), content_type="text/plain")
        await store.delete("cd/two")
        await store.delete("cd/two")
        with pytest.raises(FileMissing):
            await read_all(store, "cd/two")

    async def test_ping_answers(self, store: FileStore) -> None:
        """/readyz reports a working store as ok."""
        await store.ping()


@pytest.mark.asyncio
class TestUnavailable:
    async def test_an_unreachable_s3_endpoint_is_unavailable(self, s3: S3) -> None:
        """Nothing listening: ping and put fail as 503s, and the scratch file is not left over."""
        store = open_store(f"s3://{s3.bucket}", s3_endpoint_url="http://127.0.0.1:9")
        try:
            with pytest.raises(FileStoreUnavailable):
                await store.ping()
            source = scratch(store, b"data")
            with pytest.raises(FileStoreUnavailable):
                await store.put("k", source, content_type="text/plain")
            assert not source.exists()
        finally:
            await store.close()

    async def test_a_missing_bucket_is_unavailable(self, s3: S3) -> None:
        """A bucket that does not exist is a configuration problem /readyz must show."""
        store = open_store("s3://no-such-bucket-here", s3_endpoint_url=s3.endpoint_url)
        try:
            with pytest.raises(FileStoreUnavailable, match="no-such-bucket-here"):
                await store.ping()
        finally:
            await store.close()

    async def test_an_unusable_directory_is_unavailable(self, tmp_path: Path) -> None:
        """An attachment directory that cannot be created (a file is in the way) fails /readyz,
        and so does an upload into it."""
        (tmp_path / "taken").write_text("not a directory")
        store = open_store((tmp_path / "taken" / "files").as_uri())
        with pytest.raises(FileStoreUnavailable):
            await store.ping()


class TestStoreUrls:
    def test_unknown_urls_are_refused(self) -> None:
        """A typo in WARMLINE_ATTACHMENT_STORE stops the start with the accepted forms."""
        with pytest.raises(ValueError, match="s3://bucket"):
            open_store("ftp://host/files")
        with pytest.raises(ValueError, match="no bucket"):
            open_store("s3:///prefix")

    @pytest.mark.asyncio
    async def test_local_keys_cannot_leave_the_directory(self, tmp_path: Path) -> None:
        """A key is Warmline's own, but even a bad one cannot reach outside the root."""
        store = open_store(str(tmp_path / "files"))
        with pytest.raises(ValueError, match="leaves the store"):
            await read_all(store, "../../etc/passwd")
