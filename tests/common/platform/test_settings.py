"""Settings: production refuses unsafe configuration; development falls back to local defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common.platform.retry_policy import retry_policy
from common.platform.settings import Settings

LONG_SECRET = "x" * 40
_LEAKY_ENV = ("ENVIRONMENT", "JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "VAR_DIR")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's or CI's variables out of these settings."""
    for name in _LEAKY_ENV:
        monkeypatch.delenv(name, raising=False)


def build(**values: Any) -> Settings:
    """Settings from explicit values only, never from a .env file."""
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_production_names_every_missing_setting(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        build(environment="production", var_dir=tmp_path)

    message = str(caught.value)
    for name in ("JWT_SECRET_KEY", "DATABASE_URL", "REDIS_URL"):
        assert name in message


def test_production_names_only_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        build(
            environment="production",
            var_dir=tmp_path,
            jwt_secret_key=LONG_SECRET,
            database_url="postgresql://db/bookchat",
        )

    message = str(caught.value)
    assert "REDIS_URL" in message
    assert "JWT_SECRET_KEY" not in message and "DATABASE_URL" not in message


def test_production_refuses_a_short_secret(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        build(
            environment="production",
            var_dir=tmp_path,
            jwt_secret_key="too-short",
            database_url="postgresql://db/bookchat",
            redis_url="redis://cache:6379/0",
        )


def test_production_accepts_a_complete_configuration(tmp_path: Path) -> None:
    settings = build(
        environment="production",
        var_dir=tmp_path,
        jwt_secret_key=LONG_SECRET,
        database_url="postgresql://db/bookchat",
        redis_url="redis://cache:6379/0",
    )

    assert settings.sqlalchemy_url == "postgresql://db/bookchat"
    assert settings.jwt_secret() == LONG_SECRET
    assert not (tmp_path / "jwt-secret").exists()


def test_production_is_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("JWT_SECRET_KEY", "short")

    with pytest.raises(ValidationError) as caught:
        build(var_dir=tmp_path)

    assert "DATABASE_URL" in str(caught.value)


def test_development_defaults_to_sqlite_under_var_dir(tmp_path: Path) -> None:
    settings = build(var_dir=tmp_path / "var")

    assert settings.environment == "development"
    assert settings.database_url is None
    expected = (tmp_path / "var" / "bookchat.db").resolve()
    assert settings.sqlalchemy_url == f"sqlite:///{expected}"
    assert settings.qdrant_path == tmp_path / "var" / "qdrant"
    assert settings.uses_openai is False


def test_jwt_secret_is_generated_once_and_persisted(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    first = build(var_dir=var_dir).jwt_secret()
    key_file = var_dir / "jwt-secret"

    again = build(var_dir=var_dir).jwt_secret()

    assert first == again
    assert len(first) >= 32
    assert key_file.read_text().strip() == first
    assert key_file.stat().st_mode & 0o777 == 0o600
    assert build(var_dir=tmp_path / "other").jwt_secret() != first


def test_database_time_outs_default_and_refuse_nonsense(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = build(var_dir=tmp_path)
    assert settings.database_connect_timeout_seconds == 5
    assert settings.database_statement_timeout_seconds == 10.0

    monkeypatch.setenv("DATABASE_STATEMENT_TIMEOUT_SECONDS", "30")
    assert build(var_dir=tmp_path).database_statement_timeout_seconds == 30.0
    with pytest.raises(ValidationError, match="database_statement_timeout_seconds"):
        build(var_dir=tmp_path, database_statement_timeout_seconds=0)


def test_the_requeue_cap_is_also_read_under_its_old_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert build(var_dir=tmp_path).job_max_requeue_delay_seconds == 300.0

    monkeypatch.setenv("JOB_MAX_COUNTDOWN_SECONDS", "120")
    assert build(var_dir=tmp_path).job_max_requeue_delay_seconds == 120.0
    monkeypatch.setenv("JOB_MAX_REQUEUE_DELAY_SECONDS", "60")
    assert build(var_dir=tmp_path).job_max_requeue_delay_seconds == 60.0  # the new name wins
    assert retry_policy(build(var_dir=tmp_path)).max_requeue_delay_s == 60.0


def test_settings_are_never_written_after_load(tmp_path: Path) -> None:
    settings = build(var_dir=tmp_path)

    with pytest.raises(ValidationError, match="frozen"):
        settings.redis_url = "redis://127.0.0.1:6379/0"
    # A command that finds a Redis passes a copy down; the loaded settings stay as read.
    found = settings.model_copy(update={"redis_url": "redis://127.0.0.1:6379/0"})
    assert (settings.redis_url, found.redis_url) == (None, "redis://127.0.0.1:6379/0")
