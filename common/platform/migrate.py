"""Schema migrations with Alembic, run by `bookchat migrate` and on start-up."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from common.platform.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic config pointing at bookchat's migrations and the given database."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_database(settings: Settings, revision: str = "head") -> None:
    """Bring the database schema up to `revision`."""
    if settings.sqlalchemy_url.startswith("sqlite"):
        settings.var_dir.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(settings.sqlalchemy_url), revision)
