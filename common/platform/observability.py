"""bookchat's Prometheus metrics, shared by the web server and the workers.

prometheus_client chooses where samples live when it is first imported: with
PROMETHEUS_MULTIPROC_DIR set, every process (each gunicorn worker, each Celery pool process)
writes its own memory-mapped files there and a scrape merges them. So this module imports it
lazily, after the supervisor (`cli.processes.child_env`) or the test session has set the
folder, and `instruments()` refuses to run in the wrong mode rather than report half the
numbers. Web and workers on one host share the folder (`bookchat dev`, the tests); a worker on
another host serves its own /metrics (WORKER_METRICS_PORT) for Prometheus to scrape.
"""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: HTTP requests are milliseconds, jobs wait and run for seconds to minutes.
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
JOB_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)


@dataclass(frozen=True)
class Instruments:
    """Every metric bookchat's processes record (scrape-time gauges are in `web.api.metrics`)."""

    http_requests: Counter
    http_duration: Histogram
    open_streams: Gauge
    job_queue_wait: Histogram
    job_run: Histogram
    job_end_to_end: Histogram
    llm_requests: Counter
    llm_prompt_tokens: Counter
    llm_completion_tokens: Counter
    llm_rate_limited: Counter
    llm_errors: Counter
    llm_retries: Counter
    llm_requeues: Counter
    llm_limiter_waits: Counter
    llm_limiter_wait_seconds: Counter
    llm_circuit_opened: Counter


def metrics_dir() -> Path | None:
    """The multiprocess folder of this process, or None in single-process mode."""
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


def default_metrics_dir(var_dir: Path) -> Path:
    """Where the processes of one `var/` share their metrics by default."""
    return var_dir / "prometheus"


def reset_metrics_dir(path: Path) -> None:
    """An empty folder for a fresh set of processes (old files would add stale samples)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


_CREATING = threading.Lock()


def instruments() -> Instruments:
    """The metrics, created on first use (after the multiprocess folder is known)."""
    # Worker threads ask at once; registering the same metric twice raises.
    with _CREATING:
        return _create_instruments()


@functools.cache
def _create_instruments() -> Instruments:
    from prometheus_client import Counter, Gauge, Histogram, values

    folder = metrics_dir()
    if folder is not None:
        if values.ValueClass.__name__ != "MmapedValue":
            raise RuntimeError(
                f"prometheus_client was imported before {MULTIPROC_ENV} was set; set it first"
            )
        folder.mkdir(parents=True, exist_ok=True)
    http = ("method", "route", "status")
    return Instruments(
        http_requests=Counter(
            "bookchat_http_requests", "HTTP requests served, by route and status", http
        ),
        http_duration=Histogram(
            "bookchat_http_request_duration_seconds",
            "Time to produce an HTTP response (to its first byte for streams)",
            http,
            buckets=HTTP_BUCKETS,
        ),
        open_streams=Gauge(
            "bookchat_http_open_streams",
            "Server-Sent Event streams open now",
            multiprocess_mode="livesum",
        ),
        job_queue_wait=Histogram(
            "bookchat_job_queue_wait_seconds",
            "From a job's creation to the start of the attempt that finished it",
            ("kind",),
            buckets=JOB_BUCKETS,
        ),
        job_run=Histogram(
            "bookchat_job_run_seconds",
            "Run time of the attempt that finished a job",
            ("kind", "status"),
            buckets=JOB_BUCKETS,
        ),
        job_end_to_end=Histogram(
            "bookchat_job_end_to_end_seconds",
            "From a job's creation to its completion, failure or cancellation",
            ("kind", "status"),
            buckets=JOB_BUCKETS,
        ),
        llm_requests=Counter("bookchat_llm_requests", "Model calls admitted by the limiter"),
        llm_prompt_tokens=Counter(
            "bookchat_llm_prompt_tokens", "Prompt tokens the provider reported"
        ),
        llm_completion_tokens=Counter(
            "bookchat_llm_completion_tokens", "Completion tokens the provider reported"
        ),
        llm_rate_limited=Counter(
            "bookchat_llm_rate_limited", "429 rate-limit responses from the provider"
        ),
        llm_errors=Counter("bookchat_llm_errors", "Failed model calls, by error code", ("code",)),
        llm_retries=Counter("bookchat_llm_retries", "Model calls retried in process"),
        llm_requeues=Counter(
            "bookchat_llm_requeues", "Jobs re-queued to wait for rate-limit capacity"
        ),
        llm_limiter_waits=Counter(
            "bookchat_llm_limiter_waits", "Model calls that slept for the shared rate limiter"
        ),
        llm_limiter_wait_seconds=Counter(
            "bookchat_llm_limiter_wait_seconds", "Seconds slept for the shared rate limiter"
        ),
        llm_circuit_opened=Counter(
            "bookchat_llm_circuit_opened", "Times the circuit breaker opened on failures"
        ),
    )


def count_llm(name: str, amount: float = 1) -> None:
    """Count one of the LLM layer's events, named as in `common.llm.metrics.Counters`."""
    metrics = instruments()
    simple = {
        "requests": metrics.llm_requests,
        "retries": metrics.llm_retries,
        "requeues_for_limit": metrics.llm_requeues,
        "limiter_waits": metrics.llm_limiter_waits,
        "limiter_wait_seconds": metrics.llm_limiter_wait_seconds,
        "circuit_opened": metrics.llm_circuit_opened,
        "prompt_tokens": metrics.llm_prompt_tokens,
        "completion_tokens": metrics.llm_completion_tokens,
    }
    if name in simple:
        simple[name].inc(amount)
    elif name.startswith("errors_"):
        code = name.removeprefix("errors_")
        metrics.llm_errors.labels(code=code).inc(amount)
        if code == "rate_limited":
            metrics.llm_rate_limited.inc(amount)


def observe_job(
    kind: str, status: str, queue_wait_s: float | None, run_s: float | None, total_s: float
) -> None:
    """Record a finished job's latencies (called once, by the attempt that finished it)."""
    metrics = instruments()
    if queue_wait_s is not None:
        metrics.job_queue_wait.labels(kind=kind).observe(max(queue_wait_s, 0.0))
    if run_s is not None:
        metrics.job_run.labels(kind=kind, status=status).observe(max(run_s, 0.0))
    metrics.job_end_to_end.labels(kind=kind, status=status).observe(max(total_s, 0.0))


def tracked_stream(frames: Iterable[str]) -> Iterator[str]:
    """The frames of an event stream, counted in the open-streams gauge while it is read."""
    gauge = instruments().open_streams
    gauge.inc()
    try:
        yield from frames
    finally:
        gauge.dec()


def scrape_registry(*extra: Any) -> CollectorRegistry:
    """A registry of every process's metrics (multiprocess mode) or this one's, plus `extra`."""
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    instruments()  # declared, so a scrape lists every family even before its first sample
    registry = CollectorRegistry(auto_describe=True)
    folder = metrics_dir()
    if folder is not None:
        MultiProcessCollector(registry, path=str(folder))
    else:
        registry.register(_Forward(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (gunicorn's child_exit, a pool process's exit)."""
    if metrics_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)


class _Forward:
    """The default registry's metrics, as one collector of another registry."""

    def __init__(self, source: CollectorRegistry) -> None:
        self.source = source

    def collect(self) -> Iterator[Any]:
        """What the source registry collects."""
        return iter(self.source.collect())
