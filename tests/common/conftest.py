"""Fixtures for tests of common/: a migrated database on each supported engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from common.platform.db import make_engine, make_session_factory
from common.platform.migrate import upgrade_database
from tests.support.stack import make_settings


@pytest.fixture(scope="module")
def engine(
    database_url: str, redis_base_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """An engine on a database migrated once for this module."""
    settings = make_settings(tmp_path_factory.mktemp("db"), f"{redis_base_url}/0", database_url)
    upgrade_database(settings)
    built = make_engine(settings)
    yield built
    built.dispose()


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One session per test, rolled back afterwards so tests leave nothing behind."""
    factory: sessionmaker[Session] = make_session_factory(engine)
    with factory() as opened:
        yield opened
        opened.rollback()
