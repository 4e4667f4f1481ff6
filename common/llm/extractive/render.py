"""Quoted units as answer text: prose, lists and fenced code, each run cited with `[n]`."""

from __future__ import annotations

from collections.abc import Sequence

from common.llm.extractive.units import Unit


def cite(sentence: str, n: int) -> str:
    """Put the citation marker before the sentence's closing punctuation."""
    if sentence and sentence[-1] in ".!?:;":
        return f"{sentence[:-1]} [{n}]{sentence[-1]}"
    return f"{sentence} [{n}]"


def render(units: Sequence[Unit]) -> str:
    """The answer text: a marker closes every run of units taken from one passage."""
    parts: list[str] = []
    for i, unit in enumerate(units):
        following = units[i + 1] if i + 1 < len(units) else None
        run_ends = following is None or following.n != unit.n or following.kind != unit.kind
        if unit.kind == "code":
            parts.append(f"\n\n```{unit.language}\n{unit.text}\n```\n\n")
            continue
        if unit.label:  # names the list below it: its own line, cited by the list
            parts.append(unit.text if not parts or parts[-1].endswith("\n") else f"\n{unit.text}")
            continue
        text = cite(unit.text, unit.n) if run_ends or unit.is_lead else unit.text
        if unit.kind == "item":
            number = sum(
                u.kind == "item" and (u.n, u.block) == (unit.n, unit.block) for u in units[:i]
            )
            number += 1
            parts.append(f"\n{number}. {text}" if unit.ordered else f"\n- {text}")
            if following is None or following.kind != "item":
                parts.append("\n\n")
        else:
            parts.append(text if not parts or parts[-1].endswith("\n") else f" {text}")
    text = "".join(parts).strip()
    # A lead-in whose list was not quoted ends the answer as a plain sentence.
    return text[:-1] + "." if text.endswith(":") else text
