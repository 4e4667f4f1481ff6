"""The offline answerer: the book's own sentences, lists and code, chosen by question type."""

from __future__ import annotations

import re
from collections.abc import Callable

from common.accounts.profiles import ReaderProfileIn
from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize
from common.llm.base import Answer, AnswerRequest, DeltaSink
from common.llm.extractive.plan import plan_answer
from common.llm.extractive.render import render
from common.llm.extractive.selection import plan_selection_answer
from common.llm.extractive.units import Unit
from common.llm.metrics import CallStats
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION

MODEL_NAME = "extractive"
# What a sentence on each hardware path mentions; preferred when the reader has that hardware.
HARDWARE_TERMS = {
    "none": re.compile(r"\b(laptops?|cloud|gazebo)\b", re.I),
    "rtx_workstation": re.compile(r"\b(rtx|gpus?|workstations?|isaac sim)\b", re.I),
    "jetson": re.compile(r"\b(jetson|edge devices?|on-board|onboard)\b", re.I),
    "real_robot": re.compile(r"\b(real robots?|real hardware|physical robots?)\b", re.I),
}
_INTRO_SOURCES = {"intro", "introduction", "index", "overview", "getting-started", "preface"}


class ExtractiveAnswerer:
    """Grounded answers without a language model: the passages' own words, shaped and cited."""

    def __init__(self, max_sentences: int = 4) -> None:
        self.max_sentences = max_sentences

    def _plan(self, request: AnswerRequest, prefer: re.Pattern[str] | None) -> list[Unit]:
        if request.from_selection:
            return plan_selection_answer(request.question, request.passages, self.max_sentences)
        return plan_answer(request.question, request.passages, self.max_sentences, prefer)

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats | None = None,
        on_restart: Callable[[], None] = lambda: None,
    ) -> Answer:
        """Compose the answer, adapted to the reader's profile, and stream it word by word."""
        profile, applied = request.profile, []
        asks = bool(tokenize(request.question)) or request.from_selection
        chosen = self._plan(request, None) if asks and request.passages else []
        prefer = hardware_pattern(profile)
        if chosen and prefer is not None and not request.from_selection:
            adapted = self._plan(request, prefer)
            if [u.text for u in adapted] != [u.text for u in chosen]:
                chosen, applied = adapted, ["hardware"]
        if chosen:
            text = render(chosen)
            pointer, fields = prerequisite_pointer(profile, request.passages)
            if pointer:
                text, applied = f"{text} {pointer}", [*fields, *applied]
        else:
            text = NOT_IN_SELECTION if request.from_selection else NOT_IN_BOOK
        words = text.split(" ")
        for i in range(0, len(words), 4):
            on_delta(" ".join(words[i : i + 4]) + (" " if i + 4 < len(words) else ""))
        done = tuple(applied) if profile is not None else None
        return Answer(text=text, model=MODEL_NAME, usage=None, profile_applied=done)


def hardware_pattern(profile: ReaderProfileIn | None) -> re.Pattern[str] | None:
    """What sentences on the reader's hardware path mention, or None without hardware."""
    if profile is None or not profile.hardware:
        return None
    return re.compile("|".join(HARDWARE_TERMS[h].pattern for h in profile.hardware), re.I)


def is_introductory(passage: Passage) -> bool:
    """Whether the passage comes from the book's introduction page."""
    stem = passage.source.rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
    return stem in _INTRO_SOURCES or passage.title.lower().startswith("introduction")


def prerequisite_pointer(
    profile: ReaderProfileIn | None, passages: list[Passage]
) -> tuple[str, list[str]]:
    """For a newcomer, a line pointing at the book's introduction if it is among the passages."""
    if profile is None:
        return "", []
    fields = []
    if profile.software_level == "beginner":
        fields.append("software_level")
    if profile.robotics_experience == "none":
        fields.append("robotics_experience")
    intro = next((n for n, p in enumerate(passages, start=1) if is_introductory(p)), None)
    if not fields or intro is None:
        return "", []
    # Only a page the reader was actually given: its title and its citation number, no URL.
    title = passages[intro - 1].title
    return f"New to this? Start with the book's introduction, “{title}” [{intro}].", fields
