"""How often and how long bookchat retries: every knob in one place, built from settings.

From the inside out:

1. **One model call** (`common.llm.client`). The shared limiter's wait is slept when it is at
   most `max_wait_in_process_s`; a longer wait re-queues the job (3). A retryable provider
   error (429, 5xx, timeout, connection) is retried up to `max_attempts` times in all, with
   jittered exponential backoff capped at `backoff_max_s` (a 429 waits on the shared pause
   instead). The SDK's own retries are off.
2. **The circuit** (`common.llm.circuit`). After `circuit_threshold` consecutive retryable
   failures across all workers, calls stop for `circuit_cooldown_s`; then one probe call decides.
3. **The job** (`workers.chat`, `workers.tasks`). When a call cannot happen soon (long limiter
   wait, open circuit, attempts used up), the job goes back to `queued` and its task is
   re-sent with a countdown of at least `requeue_delay_s` and at most `max_countdown_s`. A job
   that has waited `max_job_wait_s` since it was submitted fails with `llm_unavailable`.
   Waiting jobs sit in the database (`queued` with a `due_at`), not in the broker: the watchdog
   sends each one when it is due.
4. **Lost workers** (`workers.leases`, `common.watchdog`). A running job holds a lease of
   `job_lease_s`, renewed every third of it while its worker lives. The watchdog (one per
   deployment, elected every `watchdog_interval_s` through a Redis lock) takes back a job whose
   lease expired as a new attempt; after `max_lost_attempts` lost attempts the job is dead-lettered
   (`failed`, `worker_lost`). A job `queued` in the database but missing from the broker for
   `missing_grace_s` is sent again. A worker that shuts down hands its jobs back at once.
5. **Infrastructure blips** (`workers.chat`, `common.db`). Redis or the database away for up
   to `outage_bound_s` delays a job (writes are retried, events buffered) instead of failing
   it; a longer outage leaves the job to the watchdog, which re-runs it.
6. **The broker** (`common.queue`). Sending a task is retried `publish_max_retries` times
   within about a second, so a submit fails fast (503) when Redis is down. A task that was
   delivered but never acknowledged is redelivered after `visibility_timeout_s` (a no-op by
   then: the claim is atomic and the watchdog has already re-sent the job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.settings import Settings


@dataclass(frozen=True)
class RetryPolicy:
    """The retry and re-queue knobs of every layer; the defaults are the settings' defaults."""

    # 1. One model call.
    max_wait_in_process_s: float = 2.0
    max_attempts: int = 4
    backoff_max_s: float = 8.0
    # 2. The circuit.
    circuit_threshold: int = 5
    circuit_cooldown_s: float = 20.0
    # 3. The job.
    requeue_delay_s: float = 10.0
    # Countdown tasks wait unacknowledged in worker memory: stay far below the visibility timeout.
    max_countdown_s: float = 300.0
    max_job_wait_s: float = 900.0
    # 4. Lost workers.
    job_lease_s: float = 15.0
    max_lost_attempts: int = 3
    watchdog_interval_s: float = 1.0
    missing_grace_s: float = 30.0
    # 5. Infrastructure blips.
    outage_bound_s: float = 20.0
    # 6. The broker.
    publish_max_retries: int = 2
    visibility_timeout_s: int = 3600

    @property
    def lease_renew_s(self) -> float:
        """How often a worker renews the leases of the jobs it runs."""
        return self.job_lease_s / 3

    def publish_retry_policy(self) -> dict[str, Any]:
        """Celery's `task_publish_retry_policy`: a few quick tries, then give up."""
        return {
            "max_retries": self.publish_max_retries,
            "interval_start": 0.1,
            "interval_step": 0.2,
            "interval_max": 0.5,
        }


def retry_policy(settings: Settings) -> RetryPolicy:
    """The policy the settings describe."""
    return RetryPolicy(
        max_wait_in_process_s=settings.llm_max_wait_in_process_seconds,
        max_attempts=settings.llm_call_attempts,
        backoff_max_s=settings.llm_backoff_max_seconds,
        circuit_threshold=settings.llm_circuit_threshold,
        circuit_cooldown_s=settings.llm_circuit_cooldown_seconds,
        requeue_delay_s=settings.llm_requeue_delay_seconds,
        max_countdown_s=settings.job_max_countdown_seconds,
        max_job_wait_s=settings.llm_max_job_wait_seconds,
        job_lease_s=settings.job_lease_seconds,
        max_lost_attempts=settings.job_max_lost_attempts,
        watchdog_interval_s=settings.watchdog_interval_seconds,
        missing_grace_s=settings.broker_missing_grace_seconds,
        outage_bound_s=settings.outage_bound_seconds,
        visibility_timeout_s=settings.broker_visibility_timeout_seconds,
    )
