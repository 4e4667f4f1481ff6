"""What kind of answer a question asks for: a definition, a comparison, steps, a reason."""

from __future__ import annotations

import re
from dataclasses import dataclass

from common.book.retrieval.sparse import tokenize

_SIDE = r"[\w.+/-]+(?: [\w.+/-]+){0,3}"
_COMPARISON = [
    re.compile(r"\bdifferen\w* between (?P<a>.+?) and (?P<b>.+?)(?:[?.,]|$| in \b)", re.I),
    re.compile(r"\bcompare (?P<a>.+?) (?:and|with|to) (?P<b>.+?)(?:[?.,]|$)", re.I),
    re.compile(rf"(?P<a>{_SIDE}) (?:vs\.?|versus) (?P<b>.+?)(?:[?.,]|$)", re.I),
    re.compile(
        r"\bhow (?:is|are|does|do) (?P<a>.+?) differ\w* (?:from|to) (?P<b>.+?)(?:[?.]|$)", re.I
    ),
    re.compile(r"\bhow (?:do|does|are|is) (?P<a>.+?) and (?P<b>.+?) differ", re.I),
    re.compile(
        r"\b(?P<a>[\w-]+(?: [\w-]+){0,2}) or (?:an? |the )?(?P<b>[\w-]+(?: [\w-]+){0,2})\??$", re.I
    ),
]
_HOWTO = re.compile(
    r"^(how (do|can|should|would) (i|we|you)|how to|steps?\b|show me|write|create|set up|"
    r"install|configure|launch|run|build|implement|give me (an? )?(example|code))\b|"
    r"\b(minimal|example code|code for|step by step)\b",
    re.I,
)
_WHY = re.compile(r"^(why|explain|what (is|are) the (reason|benefit|advantage|purpose))\b", re.I)
_DEFINITION = re.compile(
    r"^(what (is|are|does) (an? |the )?(?P<a>.+?)( mean| stand for| do)?\??$|define (?P<b>.+?)\??$|"
    r"what (is|are) meant by (?P<c>.+?)\??$)",
    re.I,
)
# Words that say what kind of answer is wanted, not what it is about.
ASKING_WORDS = frozenset(
    tokenize(
        "difference differences different differ compare comparison versus vs explain describe "
        "mean meaning define definition step steps write show example minimal simple simpler "
        "words summarize summary briefly tell reason"
    )
)


@dataclass(frozen=True)
class Intent:
    """The answer's shape and, for a comparison, its two sides' terms."""

    kind: str  # "definition", "comparison", "howto", "why" or "general"
    subject: frozenset[str] = frozenset()
    sides: tuple[frozenset[str], frozenset[str]] | None = None


def classify(question: str) -> Intent:
    """The question's kind, read from its wording alone."""
    text = " ".join(question.split()).strip()
    for pattern in _COMPARISON:
        found = pattern.search(text)
        if found:
            a, b = set(tokenize(found.group("a"))), set(tokenize(found.group("b")))
            a, b = a - b - ASKING_WORDS, b - a - ASKING_WORDS
            if a and b:
                return Intent("comparison", frozenset(a | b), (frozenset(a), frozenset(b)))
    if _HOWTO.search(text):
        return Intent("howto")
    if _WHY.search(text):
        return Intent("why")
    found = _DEFINITION.match(text)
    if found:
        subject = next(g for g in found.group("a", "b", "c") if g)
        return Intent("definition", frozenset(tokenize(subject)) - ASKING_WORDS)
    return Intent("general")
