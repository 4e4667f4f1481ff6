"""A chat answer: the passages to answer from, then the model's (or the guardrail's) answer."""

from __future__ import annotations

import logging
from dataclasses import replace

from common.book.retrieval.passages import Passage
from common.llm.base import Answer, AnswerRequest
from common.llm.personalize import profile_guidance
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from workers.attempts import Attempt, WaitForIndex
from workers.followups import SearchQuery, search_query, with_rewrite_usage

log = logging.getLogger(__name__)
SELECTION_SOURCE = "selection"
GUARDRAIL_MODEL = "guardrail"


def answer_question(attempt: Attempt) -> tuple[Answer, list[Passage]]:
    """The chat job's answer and the passages it may cite."""
    passages, query = retrieve(attempt)
    attempt.check_still_ours()
    answer = generate(attempt, passages)
    return replace(answer, usage=with_rewrite_usage(answer.usage, query)), passages


def selection_passage(selected_text: str, page_url: str | None) -> Passage:
    """The reader's selection as the only passage to answer from."""
    return Passage(
        source=SELECTION_SOURCE,
        title="Selected text",
        heading="Selected text",
        url=page_url or "",
        text=selected_text,
        score=1.0,
    )


def selection_passages(
    selected_text: str, page_url: str | None, around: list[Passage]
) -> list[Passage]:
    """The selection as passage [1], then the book's passages around it for context."""
    return [selection_passage(selected_text, page_url), *around]


def retrieval_query(attempt: Attempt) -> SearchQuery:
    """The question, or a follow-up rewritten to stand alone (see workers/followups.py)."""
    res, job = attempt.res, attempt.job
    vocabulary = res.retriever.vocabulary() if job.history else None
    if vocabulary is None:
        return SearchQuery(job.message)
    llm, model, stats = res.llm, res.settings.chat_model, attempt.stats
    return search_query(job.id, job.message, job.history, vocabulary, stats, llm, model, res.redis)


def retrieve(attempt: Attempt) -> tuple[list[Passage], SearchQuery]:
    """Passages to answer from: the selection and its surroundings, or the covering sections.

    The reader's page (`page_url`) and its chapter are preferred, never required.
    """
    res, job = attempt.res, attempt.job
    if job.selected_text:
        return _around_selection(attempt, job.selected_text), SearchQuery(job.message)
    if res.index.current_collection() is None:
        raise WaitForIndex()
    query = retrieval_query(attempt)
    if query.text != job.message:
        # Ids and lengths only: a reader's words must not outlive their deletion in a log.
        log.info(
            "chat job %s searches for a rewritten query of %d characters (%s)",
            job.id,
            len(query.text),
            query.rewritten_by,
        )
    dense = attempt.query_vector if query.text == job.message else None
    retrieval = res.retriever.retrieve(
        query.text, k=res.settings.retrieval_k, page_url=job.page_url, dense=dense
    )
    attempt.coverage = retrieval.coverage
    if not retrieval.coverage.covered:
        # Kept as the refusal's sources: the author sees where the book almost answers.
        attempt.closest = retrieval.passages
        log.info(
            "the book does not cover chat job %s's question (similarity %.2f, %d terms missing)",
            job.id,
            retrieval.coverage.top_similarity,
            len(retrieval.coverage.missing_terms),
        )
        return [], query
    return retrieval.passages, query


def _around_selection(attempt: Attempt, selected_text: str) -> list[Passage]:
    # The selection is the subject; the book's passages nearest to it explain it.
    res, page_url = attempt.res, attempt.job.page_url
    around: list[Passage] = []
    if res.index.current_collection() is not None:
        k = max(1, res.settings.retrieval_k - 1)
        prefer = res.retriever.pages().preferences(page_url)
        around = res.retriever.search.search(selected_text, k, prefer=prefer)
    return selection_passages(selected_text, page_url, around)


def generate(attempt: Attempt, passages: list[Passage]) -> Answer:
    """The answer: from the model, or a refusal without a model call when nothing was found."""
    job = attempt.job
    if not passages:
        text = NOT_IN_SELECTION if job.selected_text else NOT_IN_BOOK
        attempt.on_delta(text)
        return Answer(text=text, model=GUARDRAIL_MODEL)
    request = AnswerRequest(
        job.message,
        passages,
        job.history,
        from_selection=bool(job.selected_text),
        page_url=job.page_url,
        job_id=str(job.id),
        profile=job.profile,
    )
    answerer = attempt.res.answerer
    answer = answerer.generate(request, attempt.on_delta, attempt.stats, attempt.on_restart)
    if answer.profile_applied is None and job.profile is not None:
        # A model answerer applies what its prompt carried: the guidance from the profile.
        answer = replace(answer, profile_applied=profile_guidance(job.profile).applied)
    return answer
