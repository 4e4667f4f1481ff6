"""What the web process holds: settings, the database, Redis, and a Celery client to send tasks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis
from celery import Celery
from flask import Flask, Response, current_app, g
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from common.jobs.events import JobEvents
from common.jobs.queue import make_celery
from common.platform.after_commit import commit
from common.platform.db import make_engine, make_session_factory
from common.platform.errors import BookchatError
from common.platform.redis_client import make_redis, redis_url
from common.platform.settings import Settings
from web.problems import error_problem, outage_problem
from web.stream_hub import StreamHub

log = logging.getLogger(__name__)


@dataclass
class WebResources:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    redis: redis.Redis
    events: JobEvents
    hub: StreamHub
    celery: Celery

    @classmethod
    def create(cls, settings: Settings) -> WebResources:
        """Build connections (lazily connected) from settings."""
        engine = make_engine(settings)
        # Requests share the pool for short commands (waiting for a free connection under
        # load); event streams and long-polls wait in the hub, on one connection of its own.
        client = make_redis(settings, pool_wait_seconds=settings.redis_pool_wait_seconds)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_session_factory(engine),
            redis=client,
            events=JobEvents(client, settings.event_retention_seconds),
            hub=StreamHub.from_url(
                redis_url(settings),
                client,
                connect_timeout=settings.redis_connect_timeout_seconds,
                read_timeout=settings.redis_socket_timeout_seconds,
            ),
            celery=make_celery(settings),
        )

    def close(self) -> None:
        """Release pools."""
        self.hub.close()
        self.engine.dispose()
        self.redis.close()


def resources() -> WebResources:
    """The current app's resources."""
    res: WebResources = current_app.extensions["bookchat"]
    return res


def db() -> Session:
    """This request's database session, opened on first use."""
    if "db" not in g:
        g.db = resources().sessions()
    session: Session = g.db
    return session


def _commit_session(response: Response) -> Response:
    # Commit before the response leaves, so a failed commit is an error and not a lie. Errors
    # raised here skip the app's handlers, so the database going away is answered here.
    session: Session | None = g.get("db")
    if session is not None and response.status_code < 400:
        try:
            commit(session)  # then send what waited for the commit (a job's id)
        except SQLAlchemyError as exc:
            unavailable = outage_problem(exc)
            if unavailable is None:
                raise
            return unavailable
        except BookchatError as exc:
            return error_problem(exc)
    return response


def _close_session(_exc: BaseException | None) -> None:
    session: Session | None = g.pop("db", None)
    if session is None:
        return
    try:
        session.rollback()
    except SQLAlchemyError as exc:
        # The response is decided; a connection that died meanwhile is the pool's to discard.
        log.warning("could not roll back the request's session: %s", type(exc).__name__)
    finally:
        session.close()


def init_app(app: Flask, res: WebResources) -> None:
    """Attach resources and the per-request session lifecycle."""
    app.extensions["bookchat"] = res
    app.after_request(_commit_session)
    app.teardown_request(_close_session)
