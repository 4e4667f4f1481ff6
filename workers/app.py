"""The worker's Celery app: shared configuration, bookchat's tasks, and a heartbeat."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from celery import Celery, bootsteps, signals

from common.jobs.queue import make_celery, with_fast_lane
from common.jobs.worker_heartbeats import start_heartbeat
from common.platform.settings import Settings, get_settings
from workers.fast_lane import fast_lane_step
from workers.observability import connect_observability, serve_worker_metrics
from workers.resources import WorkerResources
from workers.tasks import register_tasks
from workers.watchdog import Watchdog


def create_worker_app(
    settings: Settings | None = None, resources: WorkerResources | None = None
) -> Celery:
    """Build the worker app from settings (and, for benchmarks, prepared resources)."""
    settings = settings or get_settings()
    app = make_celery(settings)
    resources = resources or WorkerResources(settings)
    register_tasks(app, resources)
    app.steps["worker"].add(_heartbeat_step(resources, settings))
    if settings.chat_fast_lane_threads:
        app.steps["consumer"].add(fast_lane_step(settings.chat_fast_lane_threads))
    _connect_signals(resources)
    connect_observability(settings, resources)
    return app


def _connect_signals(resources: WorkerResources) -> None:
    def hand_jobs_back(**_kwargs: Any) -> None:
        # Warm shutdown (Ctrl-C, SIGTERM): running attempts give their jobs back at once
        # instead of finishing, or of being killed and left to the watchdog.
        resources.shutting_down.set()

    def forget_parent_connections(**_kwargs: Any) -> None:
        # A forked pool child must not share the parent's database connections.
        if "sessions" in resources.__dict__:
            engine = resources.sessions.kw["bind"]
            engine.dispose(close=False)

    signals.worker_shutting_down.connect(hand_jobs_back, weak=False)
    signals.worker_process_init.connect(forget_parent_connections, weak=False)


def _heartbeat_step(
    resources: WorkerResources, settings: Settings
) -> type[bootsteps.StartStopStep]:
    class Heartbeat(bootsteps.StartStopStep):
        """Publish this worker's liveness and queues for /readyz, and run the watchdog."""

        def __init__(self, worker: Any, **kwargs: Any) -> None:
            super().__init__(worker, **kwargs)
            self.stop_event = threading.Event()
            self.watchdog: Watchdog | None = None

        def start(self, worker: Any) -> None:
            # Every chat worker answers the fast lane: in its pool or on its lane's threads.
            consumed = [q.name for q in worker.app.amqp.queues.consume_from.values()]
            queues = sorted(set(with_fast_lane(consumed)))
            name = worker.hostname or socket.gethostname()
            resources.worker_name = f"{name}:{os.getpid()}"
            start_heartbeat(resources.redis, name, queues, self.stop_event)
            self.watchdog = Watchdog(resources, worker.app)
            self.watchdog.start()
            if settings.worker_metrics_port:
                serve_worker_metrics(settings.worker_metrics_port)

        def stop(self, worker: Any) -> None:
            self.stop_event.set()
            if self.watchdog is not None:
                self.watchdog.stop()
            resources.leases.stop()

    return Heartbeat
