"""Unit tests for `app.config.Settings`: defaults, environment parsing and the refusals that
keep a misconfigured server from starting. Every test builds its own `Settings`.
"""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from app.bus.base import create_bus
from app.bus.memory import MemoryBus
from app.config import DEV_SECRET, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hide any WARMLINE_* variable of the machine running the tests."""
    for name in list(os.environ):
        if name.upper().startswith("WARMLINE_"):
            monkeypatch.delenv(name)


class TestDefaults:
    def test_database_defaults_to_local_sqlite(self) -> None:
        """With nothing configured, the server keeps its data in a local SQLite file."""
        settings = Settings()
        assert settings.database_url.startswith("sqlite+aiosqlite:///")
        assert settings.database_url.endswith("warmline.db")
        assert settings.is_sqlite

    def test_no_redis_means_in_process_bus(self) -> None:
        """Without a Redis URL, the server runs on the in-process bus and needs no broker."""
        settings = Settings()
        assert settings.redis_url is None
        assert isinstance(create_bus(settings.redis_url), MemoryBus)

    def test_dev_mode_with_default_secret(self) -> None:
        """Out of the box the server starts in dev mode with the well-known dev secret."""
        settings = Settings()
        assert settings.env == "dev"
        assert settings.secret_key == DEV_SECRET

    def test_no_extra_origins_by_default(self) -> None:
        """By default only the server's own origin may open WebSockets."""
        assert Settings().allowed_origins == []

    def test_default_heartbeat_detects_dead_sockets_within_30s(self) -> None:
        """The default heartbeat settings are accepted and detect a dead socket within 30 s."""
        settings = Settings()
        assert settings.heartbeat_interval < settings.heartbeat_timeout <= 30


class TestEnvironment:
    def test_allowed_origins_split_on_commas(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WARMLINE_ALLOWED_ORIGINS="a,b" allows both origins."""
        monkeypatch.setenv("WARMLINE_ALLOWED_ORIGINS", "a,b")
        assert Settings().allowed_origins == ["a", "b"]

    def test_allowed_origins_ignore_blanks_and_spaces(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Spaces around origins and empty items (a trailing comma) are ignored."""
        monkeypatch.setenv(
            "WARMLINE_ALLOWED_ORIGINS", " https://a.example , https://b.example:8443,, "
        )
        assert Settings().allowed_origins == ["https://a.example", "https://b.example:8443"]

    def test_allowed_origins_wildcard(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WARMLINE_ALLOWED_ORIGINS="*" is kept as the single wildcard entry."""
        monkeypatch.setenv("WARMLINE_ALLOWED_ORIGINS", "*")
        assert Settings().allowed_origins == ["*"]

    def test_allowed_origins_as_list_argument(self) -> None:
        """Origins passed in code as a list are kept as given."""
        assert Settings(allowed_origins=["https://a.example"]).allowed_origins == [
            "https://a.example"
        ]

    def test_redis_url_from_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WARMLINE_REDIS_URL switches the server to the Redis bus."""
        monkeypatch.setenv("WARMLINE_REDIS_URL", "redis://cache:6379/0")
        assert Settings().redis_url == "redis://cache:6379/0"

    def test_postgres_url_is_not_sqlite(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A PostgreSQL database URL from the environment is used as given."""
        url = "postgresql+asyncpg://warmline@db/warmline"
        monkeypatch.setenv("WARMLINE_DATABASE_URL", url)
        settings = Settings()
        assert settings.database_url == url
        assert not settings.is_sqlite


class TestSecretKey:
    def test_production_refuses_default_secret(self) -> None:
        """A production server will not start with the well-known dev secret."""
        with pytest.raises(ValidationError, match="WARMLINE_SECRET_KEY"):
            Settings(env="production")

    def test_production_refuses_default_secret_from_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """WARMLINE_ENV=production without WARMLINE_SECRET_KEY is refused."""
        monkeypatch.setenv("WARMLINE_ENV", "production")
        with pytest.raises(ValidationError, match="WARMLINE_SECRET_KEY"):
            Settings()

    def test_production_refuses_dev_secret_set_explicitly(self) -> None:
        """Setting the dev secret by hand in production is refused too."""
        with pytest.raises(ValidationError, match="WARMLINE_SECRET_KEY"):
            Settings(env="production", secret_key=DEV_SECRET)

    def test_production_accepts_own_secret(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Production starts once a secret of its own is configured."""
        monkeypatch.setenv("WARMLINE_ENV", "production")
        monkeypatch.setenv("WARMLINE_SECRET_KEY", "a-real-secret-from-the-vault")
        settings = Settings()
        assert settings.env == "production"
        assert settings.secret_key == "a-real-secret-from-the-vault"

    def test_unknown_env_is_refused(self) -> None:
        """A misspelt environment name is refused rather than treated as dev."""
        with pytest.raises(ValidationError, match="env"):
            Settings.model_validate({"env": "prod"})


class TestIdentitySecret:
    def test_unset_by_default(self) -> None:
        """Out of the box no identity secret is set, so no visitor can be verified."""
        assert Settings().identity_secret is None

    def test_short_secret_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An HS256 key short enough to guess from one token is refused at startup."""
        monkeypatch.setenv("WARMLINE_IDENTITY_SECRET", "short")
        with pytest.raises(ValidationError, match="WARMLINE_IDENTITY_SECRET"):
            Settings()

    def test_secret_is_not_printed(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The secret is read from the environment and kept out of reprs and logs."""
        monkeypatch.setenv("WARMLINE_IDENTITY_SECRET", "s" * 40)
        settings = Settings()
        assert settings.identity_secret is not None
        assert settings.identity_secret.get_secret_value() == "s" * 40
        assert "s" * 40 not in repr(settings)


class TestHeartbeat:
    def test_timeout_longer_than_interval_is_accepted(self) -> None:
        """A timeout longer than the heartbeat interval is accepted."""
        settings = Settings(heartbeat_interval=5, heartbeat_timeout=5.5)
        assert (settings.heartbeat_interval, settings.heartbeat_timeout) == (5.0, 5.5)

    @pytest.mark.parametrize(("interval", "timeout"), [(10.0, 10.0), (30.0, 25.0)])
    def test_timeout_not_longer_than_interval_is_refused(
        self, interval: float, timeout: float
    ) -> None:
        """A timeout equal to or shorter than the interval would drop healthy sockets: refused."""
        with pytest.raises(ValidationError, match="WARMLINE_HEARTBEAT_TIMEOUT"):
            Settings(heartbeat_interval=interval, heartbeat_timeout=timeout)

    def test_raising_only_the_interval_is_refused(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Raising WARMLINE_HEARTBEAT_INTERVAL past the default timeout is refused at start."""
        monkeypatch.setenv("WARMLINE_HEARTBEAT_INTERVAL", "30")
        with pytest.raises(ValidationError, match="WARMLINE_HEARTBEAT_TIMEOUT"):
            Settings()

    @pytest.mark.parametrize("field", ["heartbeat_interval", "heartbeat_timeout"])
    def test_non_positive_values_are_refused(self, field: str) -> None:
        """A zero heartbeat interval or timeout is refused."""
        with pytest.raises(ValidationError, match=field):
            Settings.model_validate({field: 0})
