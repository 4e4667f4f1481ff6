"""Administration of the textbook index: ingest a folder, rebuild, re-index a page, follow jobs.

Every operation is an ingest job on the `ingest` queue, answered 202 with the job's Location.
The worker, not this process, checks the folder (it is the worker's filesystem that counts):
a folder that does not exist, is not a folder or lies outside INGEST_ROOTS fails the job with
one code and message, `path_unavailable`, whichever it was, so the API reveals nothing about
the host's paths; the worker's log says which.
"""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3.types import ResponseDict

from common.admin.index_operations import index_state, queue_document_reindex, queue_rebuild
from common.book.index_schemas import (
    DocumentReindexRequest,
    IndexOut,
    IngestRequest,
    RebuildRequest,
)
from common.jobs.ingest_jobs import get_ingest_job, list_ingest_jobs, queue_ingest_job
from common.jobs.schemas import IngestJobList, IngestJobOut, IngestListQuery, JobPath
from common.platform.after_commit import commit
from common.platform.api_types import Problem
from common.platform.models import IngestJob
from web.audit import audited
from web.resources import db, resources
from web.security import admin_blueprint, current_user_id
from web.serializers import ingest_job_body

bp = admin_blueprint("admin_index", __name__)
_ERRORS: ResponseDict = {401: Problem, 403: Problem, 422: Problem, 503: Problem}


def accepted(job: IngestJob) -> tuple[Response, int]:
    response = jsonify(ingest_job_body(job))
    response.headers["Location"] = f"/v1/admin/ingest/{job.id}"
    response.headers["Retry-After"] = "1"
    return response, 202


@bp.post("/ingest", responses={202: IngestJobOut, 400: Problem, **_ERRORS})
def ingest(body: IngestRequest) -> tuple[Response, int]:
    """Queue an ingest of a folder under INGEST_ROOTS; poll the Location for progress.

    A folder that is missing, not a folder or outside INGEST_ROOTS fails the job with
    `path_unavailable`; one without any page fails it with `empty_source` (the index is left
    as it was) unless `allow_empty` is true.
    """
    detail = {"path": body.path, "full": body.full, "allow_empty": body.allow_empty}
    with audited("ingest.start", "ingest_job", None, **detail) as note:
        job = queue_ingest_job(
            db(),
            resources().celery,
            body.path,
            full=body.full,
            allow_empty=body.allow_empty,
            requested_by=current_user_id(),
            book=body.book,
            base_url=body.base_url,
        )
        commit(db())  # inside the audit: a refused send is audited as failed
        note.detail.update(job_id=str(job.id), book=job.book)
    return accepted(job)


@bp.get("/ingest", responses={200: IngestJobList, **_ERRORS})
def list_ingests(query: IngestListQuery) -> Response:
    """The most recent ingest jobs of every mode, newest first."""
    rows = list_ingest_jobs(db(), query.limit)
    return jsonify({"object": "list", "data": [ingest_job_body(row) for row in rows]})


@bp.get("/ingest/<uuid:job_id>", responses={200: IngestJobOut, 404: Problem, **_ERRORS})
def read_ingest(path: JobPath) -> Response:
    """An ingest job: mode, status, progress counts, per-file failures and timings."""
    return jsonify(ingest_job_body(get_ingest_job(db(), path.job_id)))


@bp.get("/index", responses={200: IndexOut, **_ERRORS})
def read_index() -> Response:
    """The current collection, its embedding model and documents, and the last folder run."""
    state = index_state(db(), resources().settings.qdrant_collection)
    return jsonify(IndexOut.model_validate(state).model_dump(mode="json"))


@bp.post("/index/rebuild", responses={202: IngestJobOut, 404: Problem, 409: Problem, **_ERRORS})
def rebuild(body: RebuildRequest) -> tuple[Response, int]:
    """Rebuild the index with zero downtime: a new collection, swapped in when complete.

    One book is rebuilt (`book`, else `path`'s, else the last ingested one; 404 for an unknown
    `book`); every other book is copied into the new collection, never dropped. The folder
    defaults to the book's, or the last completed ingest's (409 `no_index` if there is none). A
    rebuild embeds every page with the embedding model the workers are configured with now, so
    after changing EMBEDDINGS or EMBEDDING_MODEL this is how the book is re-embedded (an
    ordinary ingest also notices the change and rebuilds). Readers keep the old collection
    until the new one is complete.
    """
    with audited("index.rebuild", "index", None, path=body.path) as note:
        job = queue_rebuild(
            db(),
            resources().celery,
            body.path,
            book=body.book,
            allow_empty=body.allow_empty,
            requested_by=current_user_id(),
        )
        note.detail.update(job_id=str(job.id), path=job.path, book=job.book)
    return accepted(job)


@bp.post("/index/documents", responses={202: IngestJobOut, 404: Problem, 409: Problem, **_ERRORS})
def reindex_document(body: DocumentReindexRequest) -> tuple[Response, int]:
    """Re-parse and re-embed one page of a book (default: the last ingested) into the index.

    No stored vector is reused. A page that is gone from the folder loses its points. 409
    `no_index` if no ingest has completed yet.
    """
    with audited("index.reindex_document", "document", body.source) as note:
        job = queue_document_reindex(
            db(), resources().celery, body.source, book=body.book, requested_by=current_user_id()
        )
        note.detail.update(job_id=str(job.id), path=job.path, book=job.book)
    return accepted(job)
