"""Choosing what an offline answer quotes from the book, by the kind of question asked."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize
from common.llm.extractive.intent import ASKING_WORDS, Intent
from common.llm.extractive.units import Unit

_DEFINES = re.compile(r"\b(is|are|means|refers to|called|known as|defined as)\b", re.I)
_CAUSE = re.compile(r"\b(because|since|so that|therefore|as a result|due to|allows?|enables?)\b")
# Two units sharing more of their terms than this say the same thing: keep the first.
DUPLICATE_OVERLAP = 0.6
MAX_LIST_ITEMS = 8
# The stemmer keeps some forms of one word apart ("accurate" and "accuracy"): terms this long
# match when one is the start of the other.
STEM_PREFIX = 5
# What a question term found only in the passage's heading is worth, against one in the unit.
HEADING_SHARE = 0.5
# From a glossary ("Term: what it is") only the entries matching this share of the best one.
GLOSSARY_SHARE = 0.5
MAX_GLOSSARY_ITEMS = 3
# "Long Form Words (LFW)": a capitalised phrase and its acronym in brackets.
_ACRONYM = re.compile(r"((?:[A-Z][\w-]*\s+){1,5}[A-Z][\w-]*)\s+\(([A-Z][A-Za-z0-9]{1,7})\)")
_GLOSSARY_ENTRY = re.compile(r"^[^:]{1,40}: \S")


def term_weights(question: str, passages: Sequence[Sequence[Unit]]) -> dict[str, float]:
    """Question terms, weighted higher the fewer passages hold them."""
    documents = [frozenset().union(*(u.terms for u in units)) for units in passages]
    weights = {}
    for term in Counter(tokenize(question)):
        df = sum(term in doc for doc in documents)
        weight = 1.0 + math.log((1 + len(documents)) / (1 + df))
        weights[term] = weight * (0.3 if term in ASKING_WORDS else 1.0)
    return weights


def acronym_weights(
    question: str, passages: Sequence[Passage], weights: dict[str, float]
) -> dict[str, float]:
    """Acronyms the passages define for words of the question ("Zero Moment Point (ZMP)")."""
    asked = set(tokenize(question))
    found: dict[str, float] = {}
    for passage in passages:
        for long_form, short in _ACRONYM.findall(" ".join([*passage.heading_path, passage.text])):
            terms = tokenize(long_form)
            term = short.lower()
            if len(terms) > 1 and set(terms) <= asked and term not in weights:
                found[term] = max(weights[t] for t in terms)
    return found


def score(
    unit: Unit,
    weights: dict[str, float],
    rank: int,
    intent: Intent,
    heading: frozenset[str] = frozenset(),
) -> float:
    """How well a unit answers: matched question terms, favouring the better-ranked passages.

    A question term in the passage's heading counts, at a share, for each unit under it: a
    sentence under "Cyclic Coordinate Descent" is about it without naming it.
    """
    if unit.kind == "code" or unit.is_question or len(unit.text.split()) > 80:
        return 0.0
    terms = unit.terms
    found = {t for t in weights if has_term(t, terms)}
    overlap = sum(w for t, w in weights.items() if t in found)
    overlap += HEADING_SHARE * sum(w for t, w in weights.items() if t in heading and t not in found)
    if overlap == 0:
        return 0.0
    bonus = 1.25 if _DEFINES.search(unit.text) else 1.0
    if intent.kind == "definition" and intent.subject and intent.subject <= unit.terms:
        bonus *= 1.3 if _DEFINES.search(unit.text) else 1.0
    if intent.kind == "why" and _CAUSE.search(unit.text):
        bonus *= 1.2
    if len(unit.text.split()) < 4 and unit.kind == "sentence":
        bonus *= 0.5
    return overlap * bonus / (1 + 0.15 * rank)


def has_term(term: str, terms: frozenset[str]) -> bool:
    """Whether the terms hold the term or a stem variant of it ("accur" for "accuraci")."""
    if term in terms:
        return True
    if len(term) < STEM_PREFIX:
        return False
    return any(len(t) >= STEM_PREFIX and (t.startswith(term) or term.startswith(t)) for t in terms)


def overlap(a: Unit, b: Unit) -> float:
    """Shared terms over the smaller unit's terms: 1.0 when one says nothing the other lacks."""
    if not a.terms or not b.terms:
        return 1.0 if a.text == b.text else 0.0
    return len(a.terms & b.terms) / min(len(a.terms), len(b.terms))


def is_duplicate(unit: Unit, chosen: Sequence[Unit]) -> bool:
    """Whether a unit repeats one already chosen (the chunker's overlaps, repeated lessons)."""
    return any(unit.text == c.text or overlap(unit, c) > DUPLICATE_OVERLAP for c in chosen)


def resolve_start(units: Sequence[Unit], index: int, limit: int = 2) -> int:
    """Step back over sentences that open on a reference to the one before them."""
    start = index
    while (
        units[start].opens_on_reference
        and start > 0
        and index - start < limit
        and units[start - 1].kind == "sentence"
        and units[start - 1].block == units[start].block
    ):
        start -= 1
    return start


def list_around(units: Sequence[Unit], index: int) -> list[Unit]:
    """The list a unit belongs to or introduces, with its lead-in sentence."""
    unit = units[index]
    block = unit.block if unit.kind == "item" else None
    if unit.is_lead and index + 1 < len(units) and units[index + 1].kind == "item":
        block = units[index + 1].block
    elif unit.is_lead and index + 1 < len(units) and units[index + 1].kind == "code":
        return [unit, units[index + 1]]
    if block is None:
        return [unit]
    items = [u for u in units if u.kind == "item" and u.block == block]
    if unit.kind == "item" and len(items) > MAX_LIST_ITEMS:
        return [unit]  # one entry of a long list (a glossary) answers; the rest is elsewhere
    return lead_of(units, items[0]) + items


def lead_of(units: Sequence[Unit], item: Unit) -> list[Unit]:
    """A list's lead-in and, for a named list among siblings, the sentence introducing them all."""
    first = units.index(item)
    if first == 0 or not units[first - 1].is_lead:
        return []
    lead = units[first - 1]
    if not lead.label:
        return [lead]
    before = first - 2
    while before >= 0 and (units[before].kind == "item" or units[before].label):
        before -= 1
    opener = units[before] if before >= 0 else None
    if opener is not None and opener.is_lead and units[before + 1].label:
        return [opener, lead]
    return [lead]


def is_glossary(items: Sequence[Unit]) -> bool:
    """Whether most entries of a list name a term and then say what it is."""
    return len(items) > 2 and 2 * sum(bool(_GLOSSARY_ENTRY.match(u.text)) for u in items) > len(
        items
    )


def glossary_entries(units: Sequence[Unit], index: int, scores: dict[Unit, float]) -> list[Unit]:
    """The entries of the unit's glossary that match nearly as well as it, in the book's order."""
    unit = units[index]
    items = [u for u in units if u.kind == "item" and u.block == unit.block]
    best = scores.get(unit, 0.0)
    close = [u for u in items if u is unit or scores.get(u, 0.0) >= GLOSSARY_SHARE * best > 0]
    kept = sorted(close, key=lambda u: -scores.get(u, 0.0))[:MAX_GLOSSARY_ITEMS]
    return lead_of(units, items[0]) + [u for u in items if u in kept]


def window(
    units: Sequence[Unit],
    index: int,
    scores: dict[Unit, float],
    size: int,
    own: dict[Unit, float] | None = None,
) -> list[Unit]:
    """Contiguous units around the best one: what it refers to, then what continues it.

    `own` scores (a unit's own words, not its heading's) decide which sentences join it.
    """
    own = scores if own is None else own
    unit = units[index]
    if (
        unit.kind == "item"
        and not unit.ordered
        and is_glossary([u for u in units if u.block == unit.block])
    ):
        return glossary_entries(units, index, scores)
    if units[index].kind == "item" or units[index].is_lead:
        return list_around(units, index)
    start = resolve_start(units, index)
    # The paragraph's matching sentences before the best one come first, as the book says them.
    while (
        start > 0
        and index - start + 1 < size
        and units[start - 1].kind == "sentence"
        and units[start - 1].block == unit.block
        and not units[start - 1].is_question
        and own.get(units[start - 1], 0) > 0
    ):
        start = resolve_start(units, start - 1)
    chosen = list(units[start : index + 1])
    following = index + 1
    while following < len(units) and len(chosen) < size:
        unit = units[following]
        continues = unit.kind == "sentence" and unit.block == units[index].block
        if unit.kind == "item" and chosen[-1].is_lead:
            chosen.extend(list_around(units, following)[1:])
            break
        if not continues or not (own.get(unit, 0) > 0 or unit.opens_on_reference):
            break
        if not unit.is_question and not is_duplicate(unit, chosen):
            chosen.append(unit)
        following += 1
    return chosen
