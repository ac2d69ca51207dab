"""Settings: one `Settings` object, read from `WARMLINE_*` environment variables.

Built once by `create_app(settings)` or the CLI and handed down; domain cores never see it.
Reference: docs/operations.md#configuration.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_SECRET = "dev-insecure-secret-change-me"  # noqa: S105 - the well-known default refused outside dev

# HS256 keys shorter than this are guessable offline from one token.
MIN_IDENTITY_SECRET_CHARS = 32

DEFAULT_DATABASE_URL = f"sqlite+aiosqlite:///{Path('warmline.db').resolve()}"
DEFAULT_ATTACHMENT_STORE = Path("warmline-files").resolve().as_uri()
# Attachments: 10 MB covers phone photos and PDFs; the hard ceiling keeps one upload from
# filling a disk or holding a worker for minutes.
DEFAULT_ATTACHMENT_MAX_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENT_MAX_BYTES = 512 * 1024 * 1024


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Every knob of a Warmline process. Environment variables win over defaults."""

    model_config = SettingsConfigDict(env_prefix="WARMLINE_", env_file=None, extra="ignore")

    env: Literal["dev", "test", "production"] = "dev"
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    secret_key: str = DEV_SECRET
    # Shared with the host site's backend, which signs visitors' identity tokens (HS256) with
    # it. Unset: identity tokens are refused and no visitor is verified or prioritised.
    identity_secret: SecretStr | None = None
    # Origins (scheme://host[:port]) allowed to open WebSockets besides the server's own origin.
    # "*" allows any origin. Comma-separated in the environment.
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Seconds between server heartbeats. A socket that sends nothing for `heartbeat_timeout`
    # seconds is considered dead; 10 s + 25 s keeps detection under the 30 s promised in
    # docs/protocol.md while tolerating one lost heartbeat on a mobile network.
    heartbeat_interval: float = Field(default=10.0, gt=0)
    heartbeat_timeout: float = Field(default=25.0, gt=0)
    # How long an agent whose every socket dropped keeps their chats before they are re-queued.
    agent_grace_period: float = Field(default=60.0, ge=0)
    # Largest WebSocket text frame accepted, in bytes (messages are chat text, not files).
    max_frame_bytes: int = Field(default=16 * 1024, ge=1024)
    max_message_chars: int = Field(default=4000, ge=1)
    # Frames buffered per socket before the server gives up on a slow client (close 1013).
    outbox_size: int = Field(default=256, ge=8)
    # Seconds a client has after connecting to send its `hello`.
    hello_timeout: float = Field(default=10.0, gt=0)
    # Routing: with auto-accept (the default until the agent console lands) a chosen agent gets
    # the chat at once; without it they get an offer to accept or decline within the timeout.
    offer_auto_accept: bool = True
    offer_timeout: float = Field(default=30.0, gt=0)
    # Seconds a warm transfer or an escalation waits for its receiver (docs/handoff.md).
    transfer_timeout: float = Field(default=60.0, gt=0)
    # A deployment's own sentiment scorer, as "package.module:name" (an object with
    # `score(text) -> float` in [-1, 1], or a class making one); unset: the built-in lexicon.
    sentiment_scorer: str | None = None
    # An external summarizer (docs/handoff.md#external-summarizer), as "package.module:name";
    # unset: the deterministic context summary stands alone.
    summarizer: str | None = None
    # Where attachments are kept: `file:///a/directory` (the default, next to the database) or
    # `s3://bucket/prefix` (docs/operations.md#attachments).
    attachment_store: str = DEFAULT_ATTACHMENT_STORE
    # For an S3-compatible store that is not AWS (MinIO, Ceph, R2…), and the bucket's region.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    attachment_max_bytes: int = Field(
        default=DEFAULT_ATTACHMENT_MAX_BYTES, ge=1024, le=MAX_ATTACHMENT_MAX_BYTES
    )
    # MIME types accepted, comma-separated; empty: the default list. app/files/types.py lists
    # those Warmline recognises, and the app refuses to start with one it does not.
    attachment_types: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Webhooks (docs/api.md#webhooks). Whether endpoints may be on private, loopback or
    # link-local addresses: true by default, since a self-hosted Warmline usually calls systems
    # on its own network; false where admins must not reach the internal network through it.
    webhook_allow_private: bool = True
    # Whether this node sends deliveries (every node by default; they share the work). Off, the
    # node still queues them with its events, for the other nodes to send.
    webhook_dispatch: bool = True
    # Seconds an endpoint has to answer one delivery.
    webhook_timeout: float = Field(default=10.0, gt=0, le=60)
    # The first retry's delay in seconds; later ones are multiples of it (app/webhooks/schedule).
    webhook_retry_base: float = Field(default=10.0, gt=0)
    agent_session_ttl_hours: int = Field(default=12, ge=1)
    # Requests per second each API key may make on average, and how many it may make at once
    # after a quiet spell; beyond, 429 with Retry-After (docs/api.md#rate-limits). With Redis
    # configured every node shares one budget per key.
    api_rate_limit: float = Field(default=20.0, gt=0)
    api_rate_burst: int = Field(default=100, ge=1)
    # Seconds between two runs of the retention policy on each node (docs/operations.md#retention).
    retention_interval: float = Field(default=3600.0, gt=0)
    # Seconds between two rounds of the SLA breach detector on each node
    # (docs/operations.md#sla-breach-detector): a breach is recorded at most this late; a round
    # is a few index scans, so a second costs little.
    sla_watch_interval: float = Field(default=1.0, gt=0, le=60)
    # First-contact resolution: a visitor who opens another conversation within this many
    # seconds of a close means it was not resolved (docs/metrics.md#per-conversation).
    fcr_window: int = Field(default=86_400, ge=1)
    node_name: str | None = None
    # Unset: `/metrics` is open, like /healthz (docs/operations.md#metrics). Set: scrapes must
    # send it as a bearer token.
    metrics_token: SecretStr | None = None
    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("attachment_types", mode="before")
    @classmethod
    def _split_types(cls, value: object) -> object:
        return _split_csv(value)

    @model_validator(mode="after")
    def _enforce_secrets(self) -> Settings:
        if self.env == "production" and self.secret_key == DEV_SECRET:
            msg = "WARMLINE_SECRET_KEY must be set to a non-default value in production"
            raise ValueError(msg)
        if (
            self.identity_secret is not None
            and len(self.identity_secret.get_secret_value()) < MIN_IDENTITY_SECRET_CHARS
        ):
            msg = "WARMLINE_IDENTITY_SECRET must be at least 32 characters (HS256 wants a long key)"
            raise ValueError(msg)
        if self.heartbeat_timeout <= self.heartbeat_interval:
            msg = "WARMLINE_HEARTBEAT_TIMEOUT must be longer than WARMLINE_HEARTBEAT_INTERVAL"
            raise ValueError(msg)
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
