"""Operations on the index as a whole: rebuild it, re-index one page, and describe it.

Each runs as an ingest job (see common/ingest_jobs.py) on the folder the last update or full
run read; the API never opens Qdrant itself, so the description comes from the jobs' rows.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from celery import Celery
from sqlalchemy import select
from sqlalchemy.orm import Session

from common.errors import Conflict
from common.ingest_jobs import FOLDER_MODES, queue_ingest_job
from common.models import IngestJob, JobStatus

# textbook__<embedder slug>-<dimension>__v<N>, as common/retrieval/store.py names versions.
_COLLECTION_NAME = re.compile(
    r"^(?P<alias>.+)__(?P<embedder>[a-z0-9-]+)-(?P<dimension>\d+)__v(?P<version>\d+)$"
)


class NoIndexYet(Conflict):
    code, title = "no_index", "No ingest has completed yet"


def last_folder_ingest(session: Session) -> IngestJob | None:
    """The most recent completed update or full run that wrote a collection: the index's source."""
    return session.scalar(
        select(IngestJob)
        .where(
            IngestJob.status == JobStatus.COMPLETED.value,
            IngestJob.mode.in_(FOLDER_MODES),
            IngestJob.collection.is_not(None),
        )
        .order_by(IngestJob.completed_at.desc(), IngestJob.id.desc())
        .limit(1)
    )


def _indexed_folder(session: Session) -> str:
    last = last_folder_ingest(session)
    if last is None:
        raise NoIndexYet("no ingest has completed yet: ingest a folder first")
    return last.path


def queue_rebuild(
    session: Session,
    celery: Celery,
    path: str | None,
    *,
    allow_empty: bool = False,
    requested_by: uuid.UUID | None = None,
) -> IngestJob:
    """Queue a full run (a new collection, swapped in when complete) of `path` or the last one."""
    folder = path if path is not None else _indexed_folder(session)
    return queue_ingest_job(
        session, celery, folder, full=True, allow_empty=allow_empty, requested_by=requested_by
    )


def queue_document_reindex(
    session: Session, celery: Celery, source: str, *, requested_by: uuid.UUID | None = None
) -> IngestJob:
    """Queue re-embedding one page of the last ingested folder (its points go if it is gone)."""
    folder = _indexed_folder(session)
    return queue_ingest_job(session, celery, folder, document=source, requested_by=requested_by)


def index_state(session: Session, alias: str) -> dict[str, Any]:
    """The index as the last folder run left it (the API never opens Qdrant itself)."""
    last = last_folder_ingest(session)
    state: dict[str, Any] = {
        "object": "index",
        "alias": alias,
        "collection": None,
        "embedder": None,
        "dimension": None,
        "version": None,
        "documents": None,
        "folder": None,
        "last_ingest": None,
    }
    if last is None or last.collection is None:
        return state
    named = _COLLECTION_NAME.match(last.collection)
    state.update(
        collection=last.collection,
        documents=last.files_changed + last.files_skipped,
        folder=last.path,
        last_ingest={
            "id": last.id,
            "mode": last.mode,
            "completed_at": last.completed_at,
            "seconds": last.seconds,
        },
    )
    if named:
        state.update(
            embedder=named["embedder"],
            dimension=int(named["dimension"]),
            version=int(named["version"]),
        )
    return state
