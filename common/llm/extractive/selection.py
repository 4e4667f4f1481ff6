"""Offline answers about a selection ("Ask about this"): the selection is the subject.

Passage 1 is the reader's selection; any further passages are the book around it (see
`workers.chat_runner.retrieve`). "Summarize this" keeps the selection's central sentences;
"Explain this" adds what the book says around it; "What is this about?" names the section it
comes from; "What is X?" finds the book's definition of a term in it. Other questions are
answered from the selection and its surroundings, and only if they share a term with the
selection.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize
from common.llm.extractive.compose import DUPLICATE_OVERLAP, is_duplicate, overlap, window
from common.llm.extractive.intent import ASKING_WORDS
from common.llm.extractive.plan import plan_answer
from common.llm.extractive.units import Unit, passage_units

_SUMMARIZE = re.compile(
    r"\b(summari[sz]e|summary|tl;?dr|gist|main (point|idea)s?|in short)\b", re.I
)
_EXPLAIN = re.compile(
    r"\b(explain|simpler|simplify|plain (english|words)|eli5|clarify|break (it|this) down|"
    r"what does (this|that|it) mean|(don'?t|do not) (get|understand))\b",
    re.I,
)
_ABOUT = re.compile(r"^\s*what('?s| is| does) (this|that|it)( (about|saying|say|part))?\b", re.I)
_DEFINE = re.compile(
    r"^\s*(?:what (?:is|are|does) (?:an? |the )?(?P<a>.+?)(?: mean| stand for)?|"
    r"define (?P<b>.+?)|meaning of (?P<c>.+?))\s*\??\s*$",
    re.I,
)
_DEFINES = re.compile(r"\b(is|are|means|refers to|called|known as|defined as)\b|^[^:]{1,40}:", re.I)
_DEICTIC = frozenset({"this", "that", "it", "these", "those", "here", "above", "selection"})


def selection_intent(question: str) -> tuple[str, frozenset[str]]:
    """What the reader wants done with the selection, and the term asked about, if any."""
    if _SUMMARIZE.search(question):
        return "summarize", frozenset()
    if _EXPLAIN.search(question):
        return "explain", frozenset()
    if _ABOUT.search(question):
        return "about", frozenset()
    found = _DEFINE.match(question)
    if found:
        term = next(g for g in found.group("a", "b", "c") if g)
        if term.lower().split()[0] not in _DEICTIC:
            return "define", frozenset(tokenize(term)) - ASKING_WORDS
    return "question", frozenset()


def plan_selection_answer(question: str, passages: Sequence[Passage], size: int = 4) -> list[Unit]:
    """The units to quote about the selection (passage 1), in the order to say them."""
    selected = [u for u in passage_units(passages[0].text, 1) if u.kind != "code"]
    if not selected:
        return []
    context = [passage_units(p.text, n) for n, p in enumerate(passages[1:], start=2)]
    intent, term = selection_intent(question)
    words = frozenset().union(*(u.terms for u in selected))
    if intent == "define" and term and term <= words | _all_terms(context):
        found = _definition(term, [selected, *context])
        if found:
            return found
    if intent == "question" or intent == "define":
        asked = frozenset(tokenize(question)) - ASKING_WORDS
        if not asked & words:
            return []
        return plan_answer(question, passages, size)
    home = _home(selected, context)
    central = _central(selected, 1 if intent == "about" else 2 if len(selected) <= 6 else 3)
    if intent == "summarize":
        return central
    around = _around(selected, central, home, context)
    if intent == "about":
        return [*_where(passages, home), *central, *around[:1]]
    return [*central, *around]


def _all_terms(context: Sequence[Sequence[Unit]]) -> frozenset[str]:
    return frozenset().union(*(u.terms for units in context for u in units))


def _central(units: Sequence[Unit], k: int) -> list[Unit]:
    """The k sentences sharing most with the rest of the selection, their references resolved."""
    prose = [u for u in units if u.kind in ("sentence", "item") and not u.is_question]
    if len(prose) <= k:
        return list(prose)

    def centrality(u: Unit) -> float:
        shared = sum(overlap(u, v) for v in prose if v is not u)
        return shared + (0.5 if _DEFINES.search(u.text) else 0) + (0.3 if u is prose[0] else 0)

    best = sorted(prose, key=centrality, reverse=True)
    chosen: list[Unit] = []
    for unit in best:
        if len(chosen) >= k:
            break
        if is_duplicate(unit, chosen):
            continue
        at = prose.index(unit)
        if unit.opens_on_reference and at > 0 and prose[at - 1] not in chosen:
            chosen.append(prose[at - 1])
        chosen.append(unit)
    return sorted(chosen, key=lambda u: u.position)


def _home(selected: Sequence[Unit], context: Sequence[Sequence[Unit]]) -> list[Unit]:
    """The book passage the selection was taken from: the one repeating most of it."""
    best: list[Unit] = []
    best_count = 0
    for units in context:
        count = sum(any(overlap(s, u) > DUPLICATE_OVERLAP for u in units) for s in selected)
        if count > best_count:
            best, best_count = list(units), count
    return best


def _around(
    selected: Sequence[Unit],
    central: Sequence[Unit],
    home: Sequence[Unit],
    context: Sequence[Sequence[Unit]],
) -> list[Unit]:
    """Up to two sentences of the book around the selection that explain its terms."""
    terms = frozenset().union(*(u.terms for u in central))
    taken = [*selected]
    found: list[Unit] = []
    pool = [*home, *(u for units in context for u in units if u.n != (home[0].n if home else 0))]
    scored = []
    for rank, unit in enumerate(pool):
        if unit.kind != "sentence" or unit.is_question or unit.opens_on_reference:
            continue
        if is_duplicate(unit, taken) or len(unit.text.split()) < 5:
            continue
        shared = len(unit.terms & terms)
        if shared:
            defines = 1.5 if _DEFINES.search(unit.text) else 1.0
            scored.append((shared * defines / (1 + 0.02 * rank), unit))
    for _, unit in sorted(scored, key=lambda pair: -pair[0]):
        if len(found) == 2:
            break
        if not is_duplicate(unit, [*taken, *found]):
            found.append(unit)
    return found


def _where(passages: Sequence[Passage], home: Sequence[Unit]) -> list[Unit]:
    """A sentence naming the section the selection comes from, cited to that passage."""
    if not home:
        return []
    passage = passages[home[0].n - 1]
    heading = passage.heading or passage.title
    place = f"“{heading}”" + (f" in “{passage.title}”" if passage.title != heading else "")
    return [Unit(home[0].n, -1, "sentence", f"The selection comes from {place}.", -1)]


def _definition(term: frozenset[str], groups: Sequence[Sequence[Unit]]) -> list[Unit]:
    """The book's sentence defining the term, with what it refers to or the list it heads."""
    best: tuple[float, Unit, Sequence[Unit]] | None = None
    for units in groups:
        for unit in units:
            if unit.kind == "code" or unit.is_question or not term <= unit.terms:
                continue
            head = " ".join(tokenize(unit.text.split(":")[0]))
            value = (2.0 if _DEFINES.search(unit.text) else 1.0) * (1.5 if unit.n == 1 else 1.0)
            value *= 1.5 if all(t in head for t in term) else 1.0
            if best is None or value > best[0]:
                best = (value, unit, units)
    if best is None:
        return []
    _, unit, units = best
    return window(units, list(units).index(unit), {}, 2)
