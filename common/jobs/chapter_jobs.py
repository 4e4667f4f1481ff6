"""Chapter jobs (personalize, translate): find the chapter, answer from the cache or queue a job.

A chapter job is a row of `chat_jobs` with `task` set, so it shares the chat lifecycle, queue,
watchdog, events and read/cancel endpoints. Results are cached by key (task, chapter content,
profile hash or language, model, prompt version): a second reader asking for the same thing
gets a completed copy of the first result at once, without a model call.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from celery import Celery
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from common.accounts.profiles import get_profile, profile_hash
from common.book.chapters import cache_key, content_hash
from common.book.ingest.documents import DocumentError, parse_markdown
from common.book.ingest.sources import (
    LinkRefused,
    find_markdown_files,
    is_indexable,
    is_source_name,
    locate_document,
    read_source,
    resolved_roots,
    within,
)
from common.jobs.chapter_schemas import ChapterRequest, ChapterTranslateRequest
from common.jobs.chat_jobs import send_after_commit
from common.jobs.events import JobEvents
from common.jobs.lifecycle import fenced_update
from common.llm.chapter_prompts import PROMPT_VERSION
from common.llm.personalize import profile_guidance
from common.platform.errors import (
    ChapterNotFound,
    IdempotencyKeyReused,
    ModelNotConfigured,
    ProfileRequired,
)
from common.platform.models import ChatJob, JobStatus, utcnow
from common.platform.settings import Settings

log = logging.getLogger(__name__)
PERSONALIZE, TRANSLATE = "personalize", "translate"


@dataclass(frozen=True)
class Chapter:
    """A page of the book: its source name, page URL, text and content hash."""

    source: str
    url: str
    markdown: str
    content_hash: str


def find_chapter(settings: Settings, source: str | None, page_url: str | None) -> Chapter:
    """The book's page named by source or page URL; ChapterNotFound if there is none."""
    book = settings.textbook_path
    if source is None:
        source = _source_of_url(settings, page_url or "")
    if not (is_source_name(source) and is_indexable(source)):
        raise ChapterNotFound(f"no chapter {source!r} in the book")
    try:
        path = locate_document(book, source, settings.ingest_roots)
        if path is None:
            raise ChapterNotFound(f"no chapter {source!r} in the book")
        text = read_source(path, settings.ingest_roots).decode("utf-8")
        url = parse_markdown(text, source, settings.textbook_base_url).url
    except (OSError, LinkRefused, UnicodeDecodeError, DocumentError) as exc:
        log.info("chapter %s cannot be read: %s", source, exc)
        raise ChapterNotFound(f"no chapter {source!r} in the book") from exc
    return Chapter(source, url, text, content_hash(text))


def _source_of_url(settings: Settings, page_url: str) -> str:
    try:
        path = urlsplit(page_url).path.rstrip("/") or "/"
    except ValueError:  # e.g. an unclosed IPv6 host
        raise ChapterNotFound(f"no chapter at {page_url[:200]!r}") from None
    pages = _page_index(settings.textbook_path, settings.textbook_base_url, _book_state(settings))
    source = pages.get(path)
    if source is None:
        raise ChapterNotFound(f"no chapter at {page_url[:200]!r}")
    return source


def _book_state(settings: Settings) -> tuple[tuple[str, int, int], ...]:
    """(source, size, mtime) of each page: the page index is rebuilt when the book changes."""
    book = settings.textbook_path
    roots = resolved_roots(settings.ingest_roots)
    if not within(book.resolve(), roots):
        return ()
    state = []
    for found in find_markdown_files(book, roots).files:
        try:
            stat = found.path.stat()
        except OSError:
            continue
        state.append((found.source, stat.st_size, stat.st_mtime_ns))
    return tuple(state)


@functools.lru_cache(maxsize=4)
def _page_index(book: Path, base_url: str, state: Sequence[tuple[str, int, int]]) -> dict[str, str]:
    pages: dict[str, str] = {}
    for source, _size, _mtime in state:
        try:
            text = (book / source).read_text(encoding="utf-8")
            url = parse_markdown(text, source, base_url).url
        except (OSError, UnicodeDecodeError, DocumentError):
            continue
        pages.setdefault(urlsplit(url).path.rstrip("/") or "/", source)
    return pages


def chapter_cache_key(settings: Settings, task: str, chapter: Chapter, variant: str) -> str:
    """The cache key of this task on this chapter for this variant and configured model."""
    return cache_key(task, chapter.content_hash, variant, settings.chat_model, PROMPT_VERSION)


def require_model(settings: Settings) -> None:
    """Refuse chapter jobs without a generative model: they have no honest offline answer."""
    if not settings.uses_openai:
        raise ModelNotConfigured(
            "chapter rewriting and translation need a generative model; set OPENAI_API_KEY",
            setting="OPENAI_API_KEY",
        )


def _cached_answer(session: Session, key: str) -> ChatJob | None:
    return session.scalar(
        select(ChatJob)
        .where(ChatJob.cache_key == key, ChatJob.status == JobStatus.COMPLETED.value)
        .order_by(ChatJob.completed_at.desc())
        .limit(1)
    )


def _fingerprint(task: str, request: ChapterRequest) -> str:
    canonical = json.dumps({"task": task, **request.model_dump(mode="json")}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_chapter_job(
    session: Session,
    settings: Settings,
    user_id: uuid.UUID,
    task: str,
    request: ChapterRequest,
    idempotency_key: str | None = None,
) -> tuple[ChatJob, bool]:
    """Insert the job: completed from the cache, else queued; True when it needs the queue."""
    require_model(settings)
    fingerprint = _fingerprint(task, request)
    if idempotency_key is not None:
        existing = _find_by_key(session, user_id, idempotency_key)
        if existing is not None:
            if existing.request_hash != fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key was used with another request")
            return existing, False
    chapter = find_chapter(settings, request.source, request.page_url)
    language = request.language if isinstance(request, ChapterTranslateRequest) else None
    applied: list[str] | None = None
    if task == PERSONALIZE:
        profile = get_profile(session, user_id)
        if profile is None:
            raise ProfileRequired("save your reader profile (PUT /v1/me/profile) first")
        applied = list(profile_guidance(profile).applied)
        variant = profile_hash(profile)
    else:
        variant = language or ""
    key = chapter_cache_key(settings, task, chapter, variant)
    now = utcnow()
    job = ChatJob(
        id=uuid.uuid4(),
        user_id=user_id,
        conversation_id=None,
        task=task,
        message=chapter.source,
        page_url=chapter.url,
        language=language,
        cache_key=key,
        profile_applied=applied,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        citations=[],
        attempts=0,
        created_at=now,
    )
    cached = _cached_answer(session, key)
    if cached is not None:
        job.status = JobStatus.COMPLETED.value
        job.answer, job.model = cached.answer, cached.model
        job.usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        job.metrics = {"cached": True, "cached_from": str(cached.id), "llm_calls": 0}
        job.completed_at = now
    else:
        job.status = JobStatus.QUEUED.value
        job.enqueued_at = job.queued_at = now  # the watchdog re-sends it if the send is lost
    try:
        with session.begin_nested():
            session.add(job)
    except IntegrityError:
        # A concurrent request with the same Idempotency-Key won the race: replay its job.
        winner = _find_by_key(session, user_id, idempotency_key or "")
        if winner is None or winner.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used with another request"
            ) from None
        return winner, False
    return job, cached is None


def _find_by_key(session: Session, user_id: uuid.UUID, key: str) -> ChatJob | None:
    return session.scalar(
        select(ChatJob).where(ChatJob.user_id == user_id, ChatJob.idempotency_key == key)
    )


def queue_chapter_job(
    session: Session,
    settings: Settings,
    celery: Celery,
    events: JobEvents,
    user_id: uuid.UUID,
    task: str,
    request: ChapterRequest,
    idempotency_key: str | None = None,
) -> ChatJob:
    """Submit; a job not answered from the cache is sent to the chat queue once committed."""
    job, needs_queue = submit_chapter_job(
        session, settings, user_id, task, request, idempotency_key
    )
    if needs_queue:
        send_after_commit(session, celery, events, job.id)
    return job


def record_chapter_variant(
    session: Session,
    job_id: uuid.UUID,
    attempt: int,
    key: str,
    profile_applied: list[str] | None,
) -> None:
    """Record the cache key (and profile fields) the running attempt actually uses.

    The chapter or profile may have changed since submission; the completed row must be found
    under what produced it, not what was asked for.
    """
    session.execute(
        fenced_update(ChatJob, job_id, attempt).values(
            cache_key=key, profile_applied=profile_applied
        )
    )
