"""How often and how long bookchat retries: every knob in one place, built from settings.

From the inside out:

1. **One model call** (`common.llm.client`). The shared limiter's wait is slept when it is at
   most `max_wait_in_process_s`; a longer wait re-queues the job (3). A retryable provider
   error (429, 5xx, timeout, connection) is retried up to `max_attempts` times in all, with
   jittered exponential backoff capped at `backoff_max_s` (a 429 waits on the shared pause
   instead). The SDK's own retries are off.
2. **The circuit** (`common.llm.circuit`). After `circuit_threshold` consecutive retryable
   failures across all workers, calls stop for `circuit_cooldown_s`; then one probe call decides.
3. **The job** (`workers.chat`, `workers.outcomes`). When a call cannot happen soon (long
   limiter wait, open circuit, attempts used up), the attempt ends and the job goes back to
   `queued`, due again when the wait is over (the limiter's or the circuit's estimate; at
   least `requeue_delay_s` after failed calls) and never more than `max_requeue_delay_s`
   ahead. Waiting jobs sit in the database (`due_at`), not in the broker: the watchdog sends
   each one when it is due, and no task retries itself. A job that has waited
   `max_job_wait_s` since it was submitted fails with `llm_unavailable`.
4. **Lost workers** (`workers.leases`, `common.jobs.watchdog`). A running job holds a lease of
   `job_lease_s`, renewed every third of it while its worker lives. The watchdog (one per
   deployment, elected every `watchdog_interval_s` through a Redis lock) takes back a job whose
   lease expired as a new attempt; after `max_lost_attempts` lost attempts the job is dead-lettered
   (`failed`, `worker_lost`). A job `queued` in the database but missing from the broker for
   `missing_grace_s` is sent again. A worker that shuts down hands its jobs back at once.
5. **Infrastructure blips** (`workers.chat`, `workers.job_stream`, `common.platform.db`). Redis
   or the database away for up to `outage_bound_s` delays a job (writes are retried, events
   buffered) instead of failing it; a longer outage leaves the job to the watchdog, which
   re-runs it.
6. **The broker** (`common.jobs.queue`). Sending a task is retried `PUBLISH_MAX_RETRIES` times
   within about a second, so a submit fails fast (503) when Redis is down. A task that was
   delivered but never acknowledged is redelivered after `visibility_timeout_s` (a no-op by
   then: the claim is atomic and the watchdog has already re-sent the job).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.platform.settings import Settings

# A submit must fail fast (503) when the broker is down: a few quick tries within a second.
PUBLISH_MAX_RETRIES = 2


@dataclass(frozen=True)
class RetryPolicy:
    """The retry and re-queue knobs of every layer, as `retry_policy(settings)` reads them."""

    # 1. One model call.
    max_wait_in_process_s: float
    max_attempts: int
    backoff_max_s: float
    # 2. The circuit.
    circuit_threshold: int
    circuit_cooldown_s: float
    # 3. The job.
    requeue_delay_s: float
    max_requeue_delay_s: float
    max_job_wait_s: float
    # 4. Lost workers.
    job_lease_s: float
    max_lost_attempts: int
    watchdog_interval_s: float
    missing_grace_s: float
    # 5. Infrastructure blips.
    outage_bound_s: float
    # 6. The broker.
    visibility_timeout_s: int

    @property
    def lease_renew_s(self) -> float:
        """How often a worker renews the leases of the jobs it runs."""
        return self.job_lease_s / 3

    def publish_retry_policy(self) -> dict[str, Any]:
        """Celery's `task_publish_retry_policy`: a few quick tries, then give up."""
        return {
            "max_retries": PUBLISH_MAX_RETRIES,
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
        max_requeue_delay_s=settings.job_max_requeue_delay_seconds,
        max_job_wait_s=settings.llm_max_job_wait_seconds,
        job_lease_s=settings.job_lease_seconds,
        max_lost_attempts=settings.job_max_lost_attempts,
        watchdog_interval_s=settings.watchdog_interval_seconds,
        missing_grace_s=settings.broker_missing_grace_seconds,
        outage_bound_s=settings.outage_bound_seconds,
        visibility_timeout_s=settings.broker_visibility_timeout_seconds,
    )
