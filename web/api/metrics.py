"""GET /metrics: Prometheus exposition of every local process, plus job and queue gauges.

Counters and histograms come from `common.platform.observability` (merged across the gunicorn and
worker processes that share PROMETHEUS_MULTIPROC_DIR). Jobs by kind and status and the queues'
depth and oldest wait are read at scrape time: the job rows are the truth (a counter bumped at
each transition would drift from them with every crash, watchdog rescue or operator retry), and
the reads are three GROUP BYs on indexed status columns plus one LLEN per queue.

The exposition is private (web/private_probes.py: a metrics token, an admin, or loopback) and
cached per process for METRICS_CACHE_SECONDS: a burst of scrapes costs one set of reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis
from flask import Response
from flask_openapi3 import APIBlueprint, Tag
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from common.admin.queue_overview import QUEUE_KINDS, queue_depth
from common.jobs.lifecycle import model_of
from common.platform.models import JobStatus, utcnow
from common.platform.observability import scrape_registry
from web.private_probes import probe_cache, require_private_reader
from web.resources import db, resources

bp = APIBlueprint("metrics", __name__, abp_tags=[Tag(name="health")])
# The classic text format (version 0.0.4), which every Prometheus scrapes.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True, eq=False)  # hashed by identity, as a registry needs
class JobGauges:
    """Jobs by kind and status, and per queue its depth and oldest waiting job, read once."""

    jobs: dict[tuple[str, str], int]
    depth: dict[str, int]
    oldest_age_s: dict[str, float]

    def collect(self) -> Iterator[Any]:
        """The gauges as Prometheus families."""
        from prometheus_client.core import GaugeMetricFamily

        jobs = GaugeMetricFamily(
            "bookchat_jobs",
            "Jobs by kind and status (from the job tables)",
            labels=["kind", "status"],
        )
        for (kind, status), count in sorted(self.jobs.items()):
            jobs.add_metric([kind, status], count)
        depth = GaugeMetricFamily(
            "bookchat_queue_depth", "Task messages waiting in the broker's queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "bookchat_queue_oldest_age_seconds",
            "Age of the oldest queued job handed to the broker (0 when none waits)",
            labels=["queue"],
        )
        for queue in QUEUE_KINDS:
            depth.add_metric([queue], self.depth[queue])
            oldest.add_metric([queue], self.oldest_age_s[queue])
        yield from (jobs, depth, oldest)


def read_job_gauges(session: Session, client: redis.Redis) -> JobGauges:
    """Count jobs by kind and status, and measure each queue (raises when a store is away)."""
    now = utcnow()
    jobs: dict[tuple[str, str], int] = {}
    depth: dict[str, int] = {}
    oldest: dict[str, float] = {}
    for queue, kind in QUEUE_KINDS.items():
        model = model_of(kind)
        rows = session.execute(select(model.status, func.count()).group_by(model.status))
        counts = {status: int(count) for status, count in rows.all()}
        for status in JobStatus:
            jobs[(kind.value, status.value)] = int(counts.get(status.value, 0))
        sent = session.scalar(
            select(func.min(model.enqueued_at)).where(model.status == JobStatus.QUEUED.value)
        )
        oldest[queue] = max((now - sent).total_seconds(), 0.0) if sent else 0.0
        depth[queue] = queue_depth(client, queue)
    return JobGauges(jobs, depth, oldest)


def _exposition() -> bytes:
    from prometheus_client import generate_latest

    gauges = read_job_gauges(db(), resources().redis)
    return bytes(generate_latest(scrape_registry(gauges)))


@bp.get("/metrics")
def metrics() -> Response:
    """Prometheus text exposition, for the metrics token, an admin, or this host's loopback."""
    require_private_reader()
    body: bytes = probe_cache("metrics").get(_exposition)
    return Response(body, content_type=TEXT_FORMAT, headers={"Cache-Control": "no-store"})
