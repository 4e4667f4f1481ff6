"""The watchdog: one per deployment, elected through a Redis lock, run by every worker process.

Each pass (every `watchdog_interval_s`) it takes back jobs whose lease expired (a new attempt,
or a dead letter after too many losses), sends queued jobs that are due, and now and then
re-sends queued jobs whose message is no longer in the broker; every
`guest_purge_interval_seconds` it deletes guests past their retention
(common/accounts/guest_retention.py).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
import uuid

import redis
from celery import Celery
from redis import RedisError
from redis.exceptions import LockNotOwnedError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from common.accounts.account_facts import account_changed
from common.accounts.guest_retention import BATCH as GUEST_BATCH
from common.accounts.guest_retention import purge_old_guests
from common.jobs.lifecycle import mark_enqueued
from common.jobs.queue import (
    CHAT_QUEUES,
    INGEST_QUEUE,
    REPROCESS_QUEUE,
    enqueue_chat_job,
    enqueue_ingest,
    enqueue_reprocess,
    waiting_job_ids,
)
from common.jobs.watchdog import (
    WORKER_LOST,
    TakenBack,
    due_jobs,
    forget_enqueued,
    long_enqueued_jobs,
    take_back_lost_jobs,
)
from common.platform.db import session_scope
from common.platform.models import IngestJob, JobKind, JobStatus, utcnow
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
LEADER_KEY = "bookchat:watchdog:leader"
GUEST_BATCHES_PER_PASS = 4
# Where each kind's messages wait: chat jobs in the chat queue or the fast lane of repeats.
QUEUES: dict[JobKind, tuple[str, ...]] = {
    JobKind.CHAT: CHAT_QUEUES,
    JobKind.INGEST: (INGEST_QUEUE,),
    JobKind.REPROCESS: (REPROCESS_QUEUE,),
}


class Leadership:
    """Which process runs the watchdog: a redis-py lock, renewed by its holder each pass."""

    def __init__(self, client: redis.Redis, name: str, ttl_s: float, key: str = LEADER_KEY) -> None:
        # Taken and renewed in the watchdog's thread, released from the thread that stops it.
        self._lock = client.lock(key, timeout=ttl_s, blocking=False, thread_local=False)
        self._token = f"{name}:{secrets.token_hex(4)}"  # the key's value names the leader
        self._held = False

    def hold(self) -> bool:
        """Renew the lock while this process holds it, else try to take it; True while leading."""
        if self._held:
            try:
                self._lock.reacquire()  # atomic: extends the lock only if its token is ours
                return True
            except LockNotOwnedError:
                self._held = False  # it lapsed (a pause longer than its TTL): start over
        self._held = self._lock.acquire(blocking=False, token=self._token)
        return self._held

    def step_down(self) -> None:
        """Release the lock if this process holds it, so another leads at its next pass."""
        if not self._held:
            return
        self._held = False
        # Atomic: deletes the key only if its token is ours. If it lapsed already (LockError)
        # or Redis is away, the lock expires by itself.
        with contextlib.suppress(RedisError):
            self._lock.release()


class Watchdog:
    """Runs watchdog passes in a daemon thread while this process leads."""

    def __init__(self, res: WorkerResources, celery: Celery) -> None:
        self.res = res
        self.celery = celery
        self.policy = res.retry_policy
        self._stop = threading.Event()
        self._last_broker_check = 0.0
        self._last_guest_purge: float | None = None
        # Held for a few intervals, so a slow pass or two does not hand the lead over.
        ttl_s = self.policy.watchdog_interval_s * 5
        self.leadership = Leadership(res.redis, res.worker_name, ttl_s)
        self._thread = threading.Thread(target=self._run, name="bookchat-watchdog", daemon=True)

    def start(self) -> None:
        """Start passing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current pass, and step down so another worker leads at once."""
        self._stop.set()
        self._thread.join(timeout=5)
        self.leadership.step_down()

    def _run(self) -> None:
        while not self._stop.wait(self.policy.watchdog_interval_s):
            try:
                if self.leadership.hold():
                    self.run_pass()
            except (RedisError, SQLAlchemyError) as exc:
                log.warning("watchdog pass skipped: %s", exc)
            except Exception:
                log.exception("watchdog pass failed")

    def run_pass(self) -> None:
        """One pass over both kinds of job."""
        # Reading the broker's lists costs more than the rest: do it a few times per grace.
        check_broker = time.monotonic() - self._last_broker_check > self.policy.missing_grace_s / 3
        for kind in QUEUES:
            with session_scope(self.res.sessions) as session:
                taken = take_back_lost_jobs(session, kind, utcnow(), self.policy.max_lost_attempts)
            for job in taken:
                self._announce(job)
            if check_broker:
                self._find_lost_messages(kind)
            self._send_due(kind)
        if check_broker:
            self._last_broker_check = time.monotonic()
        self._purge_guests_when_due()

    def _purge_guests_when_due(self) -> None:
        interval = self.res.settings.guest_purge_interval_seconds
        last = self._last_guest_purge
        if last is not None and time.monotonic() - last < interval:
            return
        days = self.res.settings.guest_retention_days
        # Batch by batch, each its own transaction, and a few per pass: a long backlog must
        # not hold up the recovery of lost jobs. A full last batch leaves the rest for the
        # next pass.
        for _ in range(GUEST_BATCHES_PER_PASS):
            with session_scope(self.res.sessions) as session:
                guests = purge_old_guests(session, utcnow(), days)
                account_changed(session, self.res.redis, guests)
                purged = len(guests)
            if purged:
                log.info("deleted %d guests older than %d days with their data", purged, days)
            if purged < GUEST_BATCH:
                self._last_guest_purge = time.monotonic()
                return

    def _announce(self, job: TakenBack) -> None:
        log.warning(
            "%s job %s lost its worker (attempt %d); %s",
            job.kind,
            job.job_id,
            job.attempt,
            "dead-lettered" if job.dead else "queued again",
        )
        if job.kind != JobKind.CHAT:
            return
        if job.dead:
            event, data = "error", {"code": WORKER_LOST, "message": "the job's worker was lost"}
        else:
            data = {"status": JobStatus.QUEUED.value, "reason": "its worker stopped; retrying"}
            event = "status"
        try:
            self.res.events.publish(job.job_id, event, data)
        except RedisError:
            log.warning("could not tell job %s's stream", job.job_id)

    def _send_due(self, kind: JobKind) -> None:
        with session_scope(self.res.sessions) as session:
            ids = due_jobs(session, kind, utcnow())
            for job_id in ids:
                self._send(session, kind, job_id)
                mark_enqueued(session, kind, job_id, utcnow())
                session.commit()  # one job at a time: a broker failure loses no bookkeeping

    def _send(self, session: Session, kind: JobKind, job_id: uuid.UUID) -> None:
        if kind == JobKind.CHAT:
            enqueue_chat_job(self.celery, job_id)
            return
        if kind == JobKind.REPROCESS:
            enqueue_reprocess(self.celery, job_id)
            return
        ingest = session.get(IngestJob, job_id)
        if ingest is not None:
            enqueue_ingest(self.celery, ingest.path, full=ingest.full, run_id=str(job_id))

    def _find_lost_messages(self, kind: JobKind) -> None:
        with session_scope(self.res.sessions) as session:
            candidates = long_enqueued_jobs(session, kind, utcnow(), self.policy.missing_grace_s)
            if not candidates:
                return
            waiting = waiting_job_ids(self.celery, *QUEUES[kind])
            missing = [job_id for job_id in candidates if str(job_id) not in waiting]
            if missing:
                log.warning("%d %s jobs missing from the broker; sending again", len(missing), kind)
            forget_enqueued(session, kind, missing)
