"""An offline answer from the book's passages, shaped by the kind of question asked."""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.book.retrieval.passages import Passage
from common.book.retrieval.sparse import tokenize
from common.llm.extractive.compose import (
    acronym_weights,
    is_duplicate,
    score,
    term_weights,
    window,
)
from common.llm.extractive.intent import Intent, classify
from common.llm.extractive.units import Unit, passage_units

# A sentence from another passage joins the answer only when it matches nearly as well: on the
# best unit's topic from this share of its score, on any question term from the second share.
SUPPLEMENT_SHARE = 0.4
CLOSE_SHARE = 0.65
# A passage from an exercise, quiz or answer key counts this share of a lesson's (not for how-to).
EXERCISE_SHARE = 0.7
_EXERCISE = re.compile(
    r"\b(labs?|exercises?|quiz(zes)?|assessments?|answer key|question \d+)\b|-lab\b|lab-\d", re.I
)
# A sentence on the reader's hardware path wins over a better match only when it is nearly as good.
HARDWARE_PREFERENCE = 1.3


def plan_answer(
    question: str,
    passages: Sequence[Passage],
    max_sentences: int = 4,
    prefer: re.Pattern[str] | None = None,
) -> list[Unit]:
    """The units to quote, in the order to say them; empty when nothing matches well enough."""
    intent = classify(question)
    per_passage = [passage_units(p.text, n) for n, p in enumerate(passages, start=1)]
    weights = term_weights(question, per_passage)
    weights.update(acronym_weights(question, passages, weights))
    exercise = [_exercise_value(p, intent) for p in passages]
    # `scores` rank what to quote; `own` (a unit's own words only) decides what continues it.
    scores, own = {}, {}
    for rank, units in enumerate(per_passage):
        heading = frozenset(
            tokenize(" ".join(passages[rank].heading_path or [passages[rank].heading]))
        )
        for unit in units:
            boost = HARDWARE_PREFERENCE if prefer is not None and prefer.search(unit.text) else 1.0
            scale = boost * _lead_value(unit, units) * exercise[rank]
            context = heading | _code_terms(unit, units)
            scores[unit] = score(unit, weights, rank, intent, context) * scale
            own[unit] = score(unit, weights, rank, intent) * scale
    ranked = sorted((u for u in scores if scores[u] > 0), key=lambda u: -scores[u])
    # Enough of the question must match, or the book (or selection) does not answer it.
    if not ranked or scores[ranked[0]] < 0.5 * sum(weights.values()) / max(len(weights), 1):
        return []
    # The best unit that can open an answer: one whose reference, if any, can be resolved.
    openers = [u for u in ranked if _can_open(u, per_passage[u.n - 1])] or ranked
    # The passage holding the best unit that can open the answer.
    anchor = openers[0]
    units = per_passage[anchor.n - 1]
    size = max_sentences + (2 if intent.kind in ("why", "howto") else 0)
    chosen = window(units, units.index(anchor), scores, size, own)
    if intent.kind == "comparison" and intent.sides:
        chosen = _add_sides(chosen, intent, ranked, per_passage, scores)
    elif intent.kind == "howto":
        chosen = _add_code(chosen, anchor, per_passage, scores)
    room = min(2, max_sentences - _prose_count(chosen))
    if room > 0 and intent.kind in ("general", "definition", "why"):
        chosen = _supplement(chosen, anchor, (scores, own), weights, room)
    return chosen


def _exercise_value(passage: Passage, intent: Intent) -> float:
    """Exercises, quizzes and answer keys explain less than the lesson they practise."""
    where = " ".join([passage.source, *passage.heading_path, passage.heading])
    return EXERCISE_SHARE if intent.kind != "howto" and _EXERCISE.search(where) else 1.0


def _code_terms(unit: Unit, units: Sequence[Unit]) -> frozenset[str]:
    """What the code block a lead-in introduces names: the lead-in stands for it."""
    following = units.index(unit) + 1
    if unit.is_lead and following < len(units) and units[following].kind == "code":
        return units[following].terms
    return frozenset()


def _lead_value(unit: Unit, units: Sequence[Unit]) -> float:
    """A lead-in whose list or code the passage does not hold introduces nothing."""
    if not unit.is_lead:
        return 1.0
    following = units.index(unit) + 1
    return 1.0 if following < len(units) and units[following].kind != "sentence" else 0.7


def _can_open(unit: Unit, units: Sequence[Unit]) -> bool:
    if not unit.opens_on_reference:
        return True
    before = units.index(unit) - 1
    return before >= 0 and units[before].kind == "sentence" and units[before].block == unit.block


def _prose_count(units: Sequence[Unit]) -> int:
    return sum(u.kind == "sentence" for u in units)


def _add_sides(
    chosen: list[Unit],
    intent: Intent,
    ranked: Sequence[Unit],
    per_passage: Sequence[Sequence[Unit]],
    scores: dict[Unit, float],
) -> list[Unit]:
    """One sentence per side of the comparison, when the book has them."""
    assert intent.sides is not None
    result = list(chosen)
    for side in intent.sides:
        if any(side & u.terms for u in result if u.kind == "sentence"):
            continue
        best = next(
            (
                u
                for u in ranked
                if side & u.terms
                and u.kind == "sentence"
                and _can_open(u, per_passage[u.n - 1])
                and not is_duplicate(u, result)
            ),
            None,
        )
        if best is not None:
            units = per_passage[best.n - 1]
            result.extend(u for u in window(units, units.index(best), scores, 2) if u not in result)
    return result


def _add_code(
    chosen: list[Unit],
    anchor: Unit,
    per_passage: Sequence[Sequence[Unit]],
    scores: dict[Unit, float],
) -> list[Unit]:
    """The steps' code: the best passage's code block, else that of a nearly as good passage."""
    best = scores[anchor]
    for units in [per_passage[anchor.n - 1], *per_passage]:
        code = [u for u in units if u.kind == "code"]
        matched = max((scores[u] for u in units), default=0.0)
        if code and matched >= 0.7 * best:
            after = [c for c in code if c.n != anchor.n or c.position > anchor.position]
            block = (after or code)[0]
            if block.n != anchor.n:
                lead = _lead_of(units, block)
                return [*chosen, *([lead] if lead and lead not in chosen else []), block]
            return [*chosen, block]
    return chosen


def _lead_of(units: Sequence[Unit], code: Unit) -> Unit | None:
    index = units.index(code)
    before = [u for u in units[:index] if u.kind == "sentence" and not u.is_question]
    return before[-1] if before else None


def _supplement(
    chosen: list[Unit],
    anchor: Unit,
    scored: tuple[dict[Unit, float], dict[Unit, float]],
    weights: dict[str, float],
    room: int,
) -> list[Unit]:
    """Up to `room` more units nearly as good by their own words, on topic and not repeats."""
    # A unit from elsewhere joins on its own words: under a matching heading, "Pros: Fast" of
    # another engine would read as the asked one's.
    scores, own = scored
    # The topic: the question's two rarest terms that the best unit holds.
    held = sorted((t for t in weights if t in anchor.terms), key=lambda t: -weights[t])
    topic = frozenset(held[:2])
    added: list[Unit] = []
    for unit in sorted((u for u in own if own[u] > 0), key=lambda u: -own[u]):
        if own[unit] < SUPPLEMENT_SHARE * scores[anchor] or len(added) == room:
            break
        close = own[unit] >= CLOSE_SHARE * scores[anchor]
        if (
            unit not in chosen
            and unit.kind in ("sentence", "item")
            and (close or topic & unit.terms)
            and not unit.opens_on_reference
            and not unit.is_lead
            and not is_duplicate(unit, [*chosen, *added])
        ):
            added.append(unit)
    return [*chosen, *added]
