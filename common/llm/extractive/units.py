"""A passage cut into what an offline answer can quote: sentences, list items and code blocks."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from common.book.retrieval.sparse import tokenize

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`*\"(])")
_MARKUP = re.compile(r"`+|[#>|]+")
# Paired emphasis only: the underscores of identifiers (max_step_size) and A*'s star stay.
_EMPHASIS = re.compile(r"(\*\*|__|(?<!\w)[*_](?=\S))(?P<text>.+?)(?<=\S)\1(?!\w)")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")
LABEL_WORDS = 8
# A line of links only ("[← Syllabus](./syllabus) | [Assessments →](./assessments)") is navigation.
_NAVIGATION = re.compile(r"^\[[^\]]*\]\([^)]*\)(\s*\|?\s*\[[^\]]*\]\([^)]*\))*$")
_GLUED = re.compile(r"^([a-z]{2,})(\d+)$")
_ITEM = re.compile(r"^\s*(?:(?P<bullet>[-*+])|(?P<number>\d+)[.)])\s+(?P<text>.*)$")
_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|~{3,})(?P<info>[\w+-]*)")
# A sentence opening on one of these points back at something it does not name itself.
ANAPHOR = re.compile(
    r"^(this|these|that|those|it|its|they|their|them|such|he|she|both|here|however|also|"
    r"therefore|thus|moreover|furthermore|additionally|instead|similarly|likewise)\b",
    re.I,
)


@dataclass(frozen=True)
class Unit:
    """One quotable piece of passage `n`: a prose sentence, a list item or a code block."""

    n: int
    position: int
    kind: str  # "sentence", "item" or "code"
    text: str
    block: int  # units of one paragraph or one list share a block number
    ordered: bool = False  # an item of a numbered list
    language: str = ""  # a code block's language
    label: bool = False  # a bold line naming the list below it ("Dynamic Window Approach:")

    @property
    def terms(self) -> frozenset[str]:
        """The unit's stemmed content terms."""
        return text_terms(self.text)

    @property
    def is_lead(self) -> bool:
        """A sentence that introduces what follows it (it ends with a colon)."""
        return self.kind == "sentence" and self.text.endswith(":")

    @property
    def is_question(self) -> bool:
        """A question the book asks (quizzes, exercises): never an answer."""
        return self.text.rstrip().endswith("?")

    @property
    def opens_on_reference(self) -> bool:
        """Whether the unit starts by pointing at something said before it."""
        return self.kind == "sentence" and bool(ANAPHOR.match(self.text))


def text_terms(text: str) -> frozenset[str]:
    """Stemmed content terms, a glued version number also split ("ros2" is "ros" and "2")."""
    terms = tokenize(text.replace("\u00d7", "x"))  # the multiplication sign: "4x4"
    glued = (_GLUED.match(t) for t in terms)
    return frozenset(terms).union(*(g.groups() for g in glued if g))


def clean(text: str) -> str:
    """Text without Markdown links, emphasis and code ticks."""
    plain = _EMPHASIS.sub(r"\g<text>", _EMPHASIS.sub(r"\g<text>", _LINK.sub(r"\1", text)))
    return _MARKUP.sub("", plain).strip(" -")


def passage_units(text: str, n: int = 1) -> list[Unit]:
    """The units of one passage in reading order; headings, tables and MDX are left out."""
    units: list[Unit] = []
    paragraph: list[str] = []
    state = {"block": 0}

    def add(kind: str, body: str, ordered: bool = False, language: str = "") -> None:
        units.append(Unit(n, len(units), kind, body, state["block"], ordered, language))

    def flush() -> None:
        if paragraph:
            joined = " ".join(paragraph)
            for sentence in _SENTENCE_END.split(joined):
                if sentence.strip():
                    add("sentence", sentence.strip())
            paragraph.clear()
            state["block"] += 1

    lines = text.splitlines()
    i = 0
    in_list = False
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        i += 1
        fence = _FENCE.match(line)
        if fence:
            flush()
            marker, body = fence.group("fence"), []
            while i < len(lines) and not lines[i].strip().startswith(marker):
                body.append(lines[i])
                i += 1
            i += 1
            if any(b.strip() for b in body):
                add("code", "\n".join(body).rstrip(), language=fence.group("info"))
            state["block"] += 1
            in_list = False
            continue
        item = _ITEM.match(line)
        if item and item.group("text").strip():
            flush()
            if not in_list:
                state["block"] += 1
            in_list = True
            add("item", clean(item.group("text")), ordered=item.group("number") is not None)
            continue
        navigation = bool(_NAVIGATION.match(stripped))
        if not stripped or navigation or stripped.startswith(("#", "|", ":::", "<", "import ")):
            flush()
            if in_list and stripped:
                state["block"] += 1
                in_list = False
            continue
        if in_list and line.startswith((" ", "\t")) and units and units[-1].kind == "item":
            units[-1] = replace(units[-1], text=f"{units[-1].text} {clean(stripped)}")
            continue
        if in_list:
            state["block"] += 1
            in_list = False
        paragraph.append(clean(stripped))
    flush()
    return _labelled(units)


def _labelled(units: list[Unit]) -> list[Unit]:
    """A short unpunctuated line alone above a list names it: it becomes the list's lead-in."""
    for i, unit in enumerate(units[:-1]):
        alone = i == 0 or units[i - 1].block != unit.block
        if (
            unit.kind == "sentence"
            and alone
            and units[i + 1].kind == "item"
            and len(unit.text.split()) <= LABEL_WORDS
            and unit.text[-1] not in ".!?:;,"
        ):
            units[i] = replace(unit, text=f"{unit.text}:", label=True)
    return units


def split_sentences(text: str) -> list[str]:
    """Prose sentences of a passage, leaving out code blocks, tables, headings and list items."""
    return [
        u.text
        for u in passage_units(text)
        if u.kind == "sentence" and 4 <= len(u.text.split()) <= 80
    ]
