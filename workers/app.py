"""The worker's Celery app: shared configuration, bookchat's tasks, and a heartbeat."""

from __future__ import annotations

import socket
import threading
from typing import Any

from celery import Celery, bootsteps

from common.heartbeat import start_heartbeat
from common.queue import make_celery
from common.settings import Settings, get_settings
from workers.resources import WorkerResources
from workers.tasks import register_tasks


def create_worker_app(
    settings: Settings | None = None, resources: WorkerResources | None = None
) -> Celery:
    """Build the worker app from settings (and, for benchmarks, prepared resources)."""
    settings = settings or get_settings()
    app = make_celery(settings)
    resources = resources or WorkerResources(settings)
    register_tasks(app, resources)
    app.steps["worker"].add(_heartbeat_step(resources))
    return app


def _heartbeat_step(resources: WorkerResources) -> type[bootsteps.StartStopStep]:
    class Heartbeat(bootsteps.StartStopStep):
        """Publish this worker's liveness and queues for /readyz."""

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.stop_event = threading.Event()

        def start(self, worker: Any) -> None:
            queues = sorted(q.name for q in worker.app.amqp.queues.consume_from.values())
            name = worker.hostname or socket.gethostname()
            start_heartbeat(resources.redis, name, queues, self.stop_event)

        def stop(self, worker: Any) -> None:
            self.stop_event.set()

    return Heartbeat
