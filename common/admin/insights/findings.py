"""A model's word on each coverage gap: a one-paragraph finding and a suggestion for the author.

Calls go through the rate-limited LLM layer; what the model said is kept per group member set
(`insights_findings`), so a later run asks again only about groups whose members changed.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from common.admin.insights.gaps import members_key
from common.admin.insights.questions import Question
from common.llm.client import LLMClient
from common.llm.errors import LLMError, RetryLater
from common.llm.metrics import CallStats
from common.platform.models import InsightsFinding

log = logging.getLogger(__name__)
PROMPT_MARK = "You advise the author of an online textbook."
MAX_TOKENS = 300
_SPLIT = re.compile(r"^\s*suggestion\s*:\s*", re.I | re.M)
_FINDING = re.compile(r"^\s*finding\s*:\s*", re.I)


def prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    """The messages asking for a finding and a suggestion about one gap group."""
    system = (
        f"{PROMPT_MARK} Readers asked the questions below and the book's assistant could not "
        "answer them well (refused, unsure, or rated down). In one short paragraph starting "
        "'Finding:', say what readers are looking for and what the book lacks, using the "
        "passages that came closest. Then, on a new line starting 'Suggestion:', say in one "
        "or two sentences what the author could add or change, and where."
    )
    passages = "\n".join(
        f"- {p.get('title', '')} > {p.get('heading', '')} ({p.get('url', '')})"
        for p in row.get("closest_passages", [])
    )
    questions = "\n".join(f"- {q}" for q in [row["representative"], *row["examples"]])
    labels = ", ".join(f"{k}: {v}" for k, v in row["labels"].items())
    user = (
        f"Questions ({row['count']} in all; {labels}):\n{questions}\n\n"
        f"Closest passages of the book:\n{passages or '(none)'}"
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def parse(text: str) -> tuple[str, str]:
    """(finding, suggestion) from the model's text; without a 'Suggestion:' line, no suggestion."""
    parts = _SPLIT.split(text.strip(), maxsplit=1)
    finding = _FINDING.sub("", parts[0]).strip()
    suggestion = parts[1].strip() if len(parts) > 1 else ""
    return finding, suggestion


class ModelExplainer:
    """Explains gap groups with the model, reusing what it said about the same member set.

    New findings wait in memory until `save`: no write transaction stays open across model
    calls (on SQLite it would hold back the run's lease renewals).
    """

    def __init__(self, session: Session, llm: LLMClient, model: str) -> None:
        self.session, self.llm, self.model = session, llm, model
        self.pending: dict[str, tuple[str, str, str]] = {}

    def __call__(self, row: dict[str, Any], members: list[Question]) -> tuple[str, str] | None:
        """(finding, suggestion) for a gap group, or None when the model could not say."""
        key = members_key(members)
        if key in self.pending:
            return self.pending[key][:2]
        cached = self.session.get(InsightsFinding, key)
        if cached is not None:
            return cached.finding, cached.suggestion
        try:
            completion = self.llm.stream_chat(
                self.model,
                prompt(row),
                MAX_TOKENS,
                on_delta=lambda _: None,
                on_restart=lambda: None,
                stats=CallStats(),
                temperature=0.2,
            )
        except (LLMError, RetryLater) as exc:
            # The report stays complete without it; the next run asks again.
            log.warning("no finding for gap group %s: %s", row["id"], exc)
            return None
        finding, suggestion = parse(completion.text)
        self.pending[key] = (finding, suggestion, completion.model)
        return finding, suggestion

    def save(self) -> None:
        """Store the new findings (in the caller's transaction)."""
        if self.pending:
            self.session.execute(
                insert(InsightsFinding),
                [
                    {"key": key, "finding": f, "suggestion": s, "model": m}
                    for key, (f, s, m) in self.pending.items()
                ],
            )
            self.pending.clear()
