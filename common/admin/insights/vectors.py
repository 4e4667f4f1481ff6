"""Each question's vector, computed once and kept, and its place in a group.

A run embeds only the questions that have no vector yet (for the configured model), then places
only the vectors that have no group yet: an incremental run costs what is new.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

import numpy as np
from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session

from common.admin.insights.grouping import Groups, from_bytes, to_bytes
from common.book.retrieval.embeddings import Embedder
from common.platform.models import ChatJob, InsightsGroup, QuestionVector, utcnow

EMBED_BATCH = 2048
PLACE_BATCH = 4096
# Long questions are cut: their opening says what they ask, and the model truncates anyway.
MAX_QUESTION_CHARS = 500
Progress = Callable[[int, int], None]


def chat_questions(since: datetime, until: datetime) -> ColumnElement[bool]:
    """The condition selecting readers' chat questions asked in [since, until)."""
    return (ChatJob.task == "chat") & (ChatJob.created_at >= since) & (ChatJob.created_at < until)


def missing_vectors(
    session: Session, model: str, since: datetime, until: datetime
) -> list[tuple[uuid.UUID, str]]:
    """(job id, question) of the window's questions with no vector from `model`, oldest first."""
    rows = session.execute(
        select(ChatJob.id, ChatJob.message)
        .outerjoin(QuestionVector, QuestionVector.job_id == ChatJob.id)
        .where(chat_questions(since, until))
        .where((QuestionVector.job_id.is_(None)) | (QuestionVector.model != model))
        .order_by(ChatJob.created_at, ChatJob.id)
    )
    return [(job_id, message) for job_id, message in rows]


def embed_questions(
    session: Session,
    embedder: Embedder,
    questions: list[tuple[uuid.UUID, str]],
    on_progress: Progress,
) -> None:
    """Embed and store the questions' vectors in batches, reporting (done, total) after each.

    A wording asked again (same words, any case or spacing: the model is uncased) is embedded
    once per run and its vector stored for each job.
    """
    total, done = len(questions), 0
    seen: dict[str, bytes] = {}
    for start in range(0, total, EMBED_BATCH):
        batch = questions[start : start + EMBED_BATCH]
        keys = [" ".join(text[:MAX_QUESTION_CHARS].lower().split()) for _, text in batch]
        fresh = [k for k in dict.fromkeys(keys) if k not in seen]
        if fresh:
            for key, vector in zip(fresh, embedder.embed_documents(fresh), strict=True):
                seen[key] = to_bytes(np.asarray(vector))
        ids = [job_id for job_id, _ in batch]
        # Vectors of another model (the embedder changed) are replaced.
        for part in range(0, len(ids), 500):
            session.execute(
                delete(QuestionVector).where(QuestionVector.job_id.in_(ids[part : part + 500]))
            )
        session.execute(
            insert(QuestionVector),
            [
                {"job_id": job_id, "model": embedder.name, "vector": seen[key]}
                for job_id, key in zip(ids, keys, strict=True)
            ],
        )
        done += len(batch)
        on_progress(done, total)


def load_groups(session: Session, model: str, dimension: int) -> Groups:
    """Every group of this model's vectors, as centroids."""
    rows = session.execute(
        select(InsightsGroup.id, InsightsGroup.vector_sum, InsightsGroup.size)
        .where(InsightsGroup.model == model)
        .order_by(InsightsGroup.created_at, InsightsGroup.id)
    ).all()
    sums = np.frombuffer(b"".join(r.vector_sum for r in rows), dtype="<f4").astype(np.float32)
    return Groups(
        dimension,
        ids=[r.id for r in rows],
        sums=sums.reshape(-1, dimension) if rows else np.zeros((0, dimension), np.float32),
        sizes=[r.size for r in rows],
    )


def place_vectors(session: Session, model: str, dimension: int, on_progress: Progress) -> Groups:
    """Put every vector without a group into one (oldest question first), merge near-duplicates."""
    groups = load_groups(session, model, dimension)
    # The order is read once: re-querying "unplaced, oldest first" per batch rescans the rows
    # already placed.
    order = list(
        session.scalars(
            select(QuestionVector.job_id)
            .join(ChatJob, ChatJob.id == QuestionVector.job_id)
            .where(QuestionVector.model == model, QuestionVector.group_id.is_(None))
            .order_by(ChatJob.created_at, ChatJob.id)
        )
    )
    for start in range(0, len(order), PLACE_BATCH):
        ids = order[start : start + PLACE_BATCH]
        blobs: dict[uuid.UUID, bytes] = {}
        for part in range(0, len(ids), 500):
            blobs.update(
                session.execute(
                    select(QuestionVector.job_id, QuestionVector.vector).where(
                        QuestionVector.job_id.in_(ids[part : part + 500])
                    )
                ).all()
            )
        vectors = from_bytes((blobs[job_id] for job_id in ids), dimension)
        vectors /= np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        placed = groups.assign(vectors, [str(job_id) for job_id in ids])
        session.execute(
            update(QuestionVector),
            [{"job_id": job_id, "group_id": g} for job_id, g in zip(ids, placed, strict=True)],
        )
        on_progress(start + len(ids), len(order))
    for old, new in groups.merge_near_duplicates().items():
        session.execute(
            update(QuestionVector)
            .where(QuestionVector.group_id == old)
            .values(group_id=new)
            .execution_options(synchronize_session=False)
        )
        session.execute(delete(InsightsGroup).where(InsightsGroup.id == old))
    _save_groups(session, model, groups)
    return groups


def _save_groups(session: Session, model: str, groups: Groups) -> None:
    changed = [gid for gid in groups.ids if gid in groups.changed]
    if not changed:
        return
    now = utcnow()
    for start in range(0, len(changed), 500):
        chunk = changed[start : start + 500]
        session.execute(delete(InsightsGroup).where(InsightsGroup.id.in_(chunk)))
    session.execute(
        insert(InsightsGroup),
        [
            {
                "id": gid,
                "model": model,
                "vector_sum": groups.sums[i].astype("<f4").tobytes(),
                "size": groups.sizes[i],
                "created_at": now,
                "updated_at": now,
            }
            for i, gid in enumerate(groups.ids)
            if gid in groups.changed
        ],
    )
    groups.changed.clear()
