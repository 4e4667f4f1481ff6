"""An insights run on the reprocess queue: the worker lends its embedder, index and model."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.orm import Session

from common.admin.insights.computing import RunTools, run_insights
from common.admin.insights.findings import ModelExplainer
from common.admin.insights.pages import Page
from common.admin.insights.report import stored_passages
from common.platform.models import JobKind, ReprocessJob
from workers.resources import WorkerResources

log = logging.getLogger(__name__)
CLOSEST_PASSAGES = 3


def run_insights_job(
    res: WorkerResources, session: Session, row: ReprocessJob, attempt: int
) -> None:
    """Compute the run's report with this worker's tools; commits after each batch."""
    job_id = row.id
    run_insights(
        session,
        row,
        attempt,
        _tools(res, session),
        still_ours=lambda: not res.leases.lost(JobKind.REPROCESS, job_id),
        checkpoint=session.commit,
    )


def _tools(res: WorkerResources, session: Session) -> RunTools:
    explainer = None
    if res.llm is not None:
        explainer = ModelExplainer(session, res.llm, res.settings.chat_model)
    stored = stored_passages(session)

    def closest(text: str, job_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
        try:
            return _closest(res, text)
        except Exception as exc:  # the index is optional here: the report falls back
            log.warning("closest passages from stored retrievals: no index search (%s)", exc)
            return stored(text, job_ids)

    return RunTools(
        embedder=res.embedder,
        catalogue=lambda: _catalogue(res),
        closest=closest,
        explain=explainer,
        after_report=explainer.save if explainer is not None else None,
    )


def _catalogue(res: WorkerResources) -> list[Page]:
    # A worker without the index (local-mode Qdrant held by another process) lists no page:
    # the report then has no "never cited" pages rather than no report.
    try:
        index = res.index
        if index.current_collection() is None:
            return []
        pages = index.page_titles(index.alias)
    except Exception as exc:
        log.warning("insights without the index's pages: %s", exc)
        return []
    return [Page(url, title, source) for url, (title, source) in sorted(pages.items())]


def _closest(res: WorkerResources, text: str) -> list[dict[str, Any]]:
    if res.index.current_collection() is None:
        raise LookupError("no index yet")
    passages = res.retriever.search.search(text, CLOSEST_PASSAGES, None)
    return [
        {
            "title": p.title,
            "heading": p.heading,
            "url": p.url,
            "source": p.source,
            "similarity": round(p.similarity, 4),
        }
        for p in passages
    ]
