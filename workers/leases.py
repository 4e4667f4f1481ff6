"""Keeping the leases of the jobs this worker process runs, so the watchdog leaves them alone.

A daemon thread renews every held lease each `lease_renew_s`. A renewal that finds the job no
longer belongs to this attempt (the watchdog took it back, or it was cancelled) marks it lost,
and the attempt stops at its next step instead of writing over the new one.
"""

from __future__ import annotations

import logging
import threading
import uuid

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from common.jobs.lifecycle import renew_leases
from common.platform.db import session_scope
from common.platform.models import JobKind

log = logging.getLogger(__name__)
Held = tuple[JobKind, uuid.UUID]


class LeaseKeeper:
    """The leases held by this process's running attempts."""

    def __init__(
        self, sessions: sessionmaker[Session], lease_seconds: float, renew_seconds: float
    ) -> None:
        self.sessions = sessions
        self.lease_seconds = lease_seconds
        self.renew_seconds = renew_seconds
        self._held: dict[Held, int] = {}
        self._lost: set[Held] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def hold(self, kind: JobKind, job_id: uuid.UUID, attempt: int) -> None:
        """Start renewing the lease of this attempt."""
        with self._lock:
            self._held[(kind, job_id)] = attempt
            self._lost.discard((kind, job_id))
        self._ensure_running()

    def release(self, kind: JobKind, job_id: uuid.UUID) -> None:
        """Stop renewing (the attempt ended one way or another)."""
        with self._lock:
            self._held.pop((kind, job_id), None)
            self._lost.discard((kind, job_id))

    def lost(self, kind: JobKind, job_id: uuid.UUID) -> bool:
        """Whether the job was taken from this attempt."""
        return (kind, job_id) in self._lost

    def renew_all(self) -> None:
        """Renew every held lease once (the thread's loop body)."""
        with self._lock:
            held = dict(self._held)
        if not held:
            return
        by_kind: dict[JobKind, dict[uuid.UUID, int]] = {}
        for (kind, job_id), attempt in held.items():
            by_kind.setdefault(kind, {})[job_id] = attempt
        try:
            with session_scope(self.sessions) as session:
                gone = [
                    (kind, job_id)
                    for kind, attempts in by_kind.items()
                    for job_id in attempts.keys()
                    - renew_leases(session, kind, attempts, self.lease_seconds)
                ]
        except SQLAlchemyError:
            # The lease runs on; if the outage outlasts it, the watchdog re-runs the job.
            log.warning("could not renew %d job leases", len(held), exc_info=True)
            return
        with self._lock:
            for key in gone:
                if key in self._held:
                    self._lost.add(key)

    def stop(self) -> None:
        """Stop the renewing thread."""
        self._stop.set()

    def _ensure_running(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._run, name="bookchat-leases", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.renew_seconds):
            self.renew_all()
