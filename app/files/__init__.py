"""Where attachments' bytes live: a directory on local disk or an S3-compatible bucket.

Owns the `FileStore` interface and its two implementations, chosen by the URL in
`WARMLINE_ATTACHMENT_STORE` (`file://…` or `s3://bucket/prefix`), and the file-type rules
(`types`): what may be uploaded, what it really is, and how it is served safely. Knows nothing of
conversations or who may read what: `app.chat.attachments` keeps the records and the rules,
`app.api.v1.attachments` the HTTP side. Reference: docs/api.md#attachments,
docs/operations.md#attachments.
"""

from __future__ import annotations

from app.files.base import FileMissing, FileStore, FileStoreUnavailable, open_store

__all__ = ["FileMissing", "FileStore", "FileStoreUnavailable", "open_store"]
