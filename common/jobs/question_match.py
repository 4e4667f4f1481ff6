"""Whether two questions ask the same thing: what the answer cache adds to embedding similarity.

MiniLM puts questions that differ in one decisive word very close together: a reversed
relation ("quaternion to Euler" against "Euler to quaternion", 0.997), a negation ("use" against
"not use", 0.984), another version ("TurtleBot 3" against "TurtleBot 4", 0.957) or an opposite
("maximum" against "minimum", 0.951). Similarity alone would need a bound above every paraphrase
worth serving; these four checks, cheap and without a model, veto such pairs first, so the bound
(ANSWER_CACHE_MIN_SIMILARITY, calibrated with `python -m bench.answer_cache`) can stay lower.
"""

from __future__ import annotations

import re
from functools import cache

from common.book.retrieval.guardrail import QUESTION_TERMS
from common.book.retrieval.sparse import tokenize

_NUMBER = re.compile(r"\d+")
_NEGATION = re.compile(r"\b(?:not|no|never|without|cannot|nor)\b|n't\b")
# Words whose swap turns a question into another one; compared after stemming.
_OPPOSITES = (
    ("maximum", "minimum"),
    ("max", "min"),
    ("start", "stop"),
    ("install", "uninstall"),
    ("forward", "inverse"),
    ("publisher", "subscriber"),
    ("publish", "subscribe"),
    ("enable", "disable"),
    ("increase", "decrease"),
    ("input", "output"),
    ("add", "remove"),
    ("open", "close"),
    ("first", "last"),
    ("client", "server"),
    ("encode", "decode"),
    ("upload", "download"),
    ("global", "local"),
    ("static", "dynamic"),
    ("sync", "async"),
    ("synchronous", "asynchronous"),
    ("record", "play"),
)


@cache
def _opposite_stems() -> tuple[tuple[str, str], ...]:
    return tuple((tokenize(a)[0], tokenize(b)[0]) for a, b in _OPPOSITES)


def content_terms(question: str) -> list[str]:
    """The question's stemmed words in order, without question words, stopwords or numbers."""
    terms = dict.fromkeys(tokenize(question))
    return [t for t in terms if t not in QUESTION_TERMS and not t.isdigit()]


def veto(a: str, b: str) -> str | None:
    """Why two similar questions must not share an answer, or None when nothing tells them apart.

    - `numbers`: other numbers (ROS 1 / ROS 2, Ubuntu 22.04 / 20.04, RT-1 / RT-2);
    - `negation`: one is negated and the other is not;
    - `opposite`: one uses a word and the other its opposite (maximum / minimum);
    - `order`: the same words in another order (Gazebo faster than Isaac Sim, or the reverse).
    """
    low_a, low_b = a.lower(), b.lower()
    if sorted(_NUMBER.findall(low_a)) != sorted(_NUMBER.findall(low_b)):
        return "numbers"
    if bool(_NEGATION.search(low_a)) != bool(_NEGATION.search(low_b)):
        return "negation"
    terms_a, terms_b = content_terms(a), content_terms(b)
    set_a, set_b = set(terms_a), set(terms_b)
    for one, other in _opposite_stems():
        if (one in set_a) != (one in set_b) and (one in set_a) == (other in set_b):
            return "opposite"
    if set_a == set_b and terms_a != terms_b:
        return "order"
    return None
