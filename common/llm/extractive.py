"""The offline answerer: quotes the passage sentences that best match the question, cited."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from common.llm.base import Answer, AnswerRequest, DeltaSink
from common.llm.metrics import CallStats
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION
from common.profiles import ReaderProfileIn
from common.retrieval.passages import Passage
from common.retrieval.sparse import tokenize

MODEL_NAME = "extractive"
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"(])")
_MARKUP = re.compile(r"[*_`#>|]+")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
# What a sentence on each hardware path mentions; preferred when the reader has that hardware.
HARDWARE_TERMS = {
    "none": re.compile(r"\b(laptops?|cloud|gazebo)\b", re.I),
    "rtx_workstation": re.compile(r"\b(rtx|gpus?|workstations?|isaac sim)\b", re.I),
    "jetson": re.compile(r"\b(jetson|edge devices?|on-board|onboard)\b", re.I),
    "real_robot": re.compile(r"\b(real robots?|real hardware|physical robots?)\b", re.I),
}
# A sentence on the reader's path wins over a better match only when it is nearly as good.
HARDWARE_PREFERENCE = 1.3
_INTRO_SOURCES = {"intro", "introduction", "index", "overview", "getting-started", "preface"}


@dataclass(frozen=True)
class _Candidate:
    passage_number: int
    text: str
    score: float


def split_sentences(text: str) -> list[str]:
    """Prose sentences of a passage, leaving out code blocks, tables and headings."""
    prose: list[str] = []
    in_code = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            in_code = not in_code
            continue
        if in_code or not stripped or stripped.startswith(("#", "|", ":::", "<", "import ")):
            prose.append("")
            continue
        prose.append(_MARKUP.sub("", _LINK.sub(r"\1", stripped)).strip(" -"))
    paragraphs = " ".join(line if line else "\n" for line in prose).split("\n")
    sentences: list[str] = []
    for paragraph in paragraphs:
        sentences.extend(s.strip() for s in _SENTENCE_END.split(paragraph.strip()) if s.strip())
    return [s for s in sentences if 4 <= len(s.split()) <= 80]


def _score(sentence: str, weights: dict[str, float], rank: int) -> float:
    terms = set(tokenize(sentence))
    overlap = sum(weight for term, weight in weights.items() if term in terms)
    if overlap == 0:
        return 0.0
    defines = bool(re.search(r"\b(is|are|means|refers to)\b", sentence))
    return overlap * (1.25 if defines else 1.0) / (1 + 0.15 * rank)


def _cite(sentence: str, n: int) -> str:
    """Put the citation marker before the sentence's closing punctuation."""
    if sentence[-1] in ".!?":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


class ExtractiveAnswerer:
    """Grounded answers without a language model: the best-matching sentences, cited."""

    def __init__(self, max_sentences: int = 3) -> None:
        self.max_sentences = max_sentences

    def _weights(self, request: AnswerRequest) -> dict[str, float]:
        # Terms rarer across the passages say more about what the reader wants.
        question = Counter(tokenize(request.question))
        documents = [set(tokenize(p.text)) for p in request.passages]
        weights = {}
        for term in question:
            df = sum(term in doc for doc in documents)
            weights[term] = 1.0 + math.log((1 + len(documents)) / (1 + df))
        return weights

    def _select(self, request: AnswerRequest, prefer: re.Pattern[str] | None) -> list[_Candidate]:
        weights = self._weights(request)
        candidates = [
            _Candidate(n, sentence, _score(sentence, weights, rank) * _boost(sentence, prefer))
            for rank, (n, passage) in enumerate(enumerate(request.passages, start=1))
            for sentence in split_sentences(passage.text)
        ]
        best = sorted((c for c in candidates if c.score > 0), key=lambda c: -c.score)
        if not best or best[0].score < 0.5 * sum(weights.values()) / max(len(weights), 1):
            return []
        chosen: list[_Candidate] = []
        for candidate in best:
            if candidate.score < 0.4 * best[0].score or len(chosen) == self.max_sentences:
                break
            if all(candidate.text != c.text for c in chosen):
                chosen.append(candidate)
        # Keep the book's own order: by passage, then by position in the passage.
        return sorted(chosen, key=lambda c: (c.passage_number, candidates.index(c)))

    def generate(
        self,
        request: AnswerRequest,
        on_delta: DeltaSink,
        stats: CallStats | None = None,
        on_restart: Callable[[], None] = lambda: None,
    ) -> Answer:
        """Compose the answer, adapted to the reader's profile, and stream it word by word."""
        profile, applied = request.profile, []
        chosen = self._select(request, None) if tokenize(request.question) else []
        prefer = hardware_pattern(profile)
        if chosen and prefer is not None:
            adapted = self._select(request, prefer)
            if [c.text for c in adapted] != [c.text for c in chosen]:
                chosen, applied = adapted, ["hardware"]
        if chosen:
            text = " ".join(_cite(c.text, c.passage_number) for c in chosen)
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


def _boost(sentence: str, prefer: re.Pattern[str] | None) -> float:
    return HARDWARE_PREFERENCE if prefer is not None and prefer.search(sentence) else 1.0


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
