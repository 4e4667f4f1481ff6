"""Chapter markup protection: mask what a model must not touch, restore it, check nothing was lost.

`protect` replaces fenced code, inline code, link and image URLs, HTML/MDX tags and comments,
MDX import/export lines, admonition markers, reference definitions, bare URLs, math blocks,
front matter and heading anchors with placeholders like `⟦P7⟧`; prose (link text included)
stays translatable. `restore` puts the originals back and refuses a text in which a
placeholder is missing, repeated or invented, so a model's slip never reaches a reader.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from common.book.ingest.documents import heading_anchor

PLACEHOLDER = re.compile(r"⟦P(\d+)⟧")
_OPEN = "⟦"
_FENCE = re.compile(r"^(?P<indent>[ \t>]*)(?P<fence>`{3,}|~{3,})")
_ESM = re.compile(r"^(?:import|export)\s")
_ADMONITION = re.compile(r"^(?P<indent>[ \t>]*)(?P<marker>:{3,}[A-Za-z][\w-]*|:{3,})")
_REF_DEFINITION = re.compile(r"^[ \t]{0,3}\[[^\]\n]+\]:[ \t]*\S.*$")
_MATH_BLOCK = re.compile(r"^[ \t]*\$\$")
_HEADING = re.compile(
    r"^(?P<hashes>#{1,6})[ \t]+(?P<text>.*?)[ \t]*(?P<anchor>\{#[^{}\s]+\})?[ \t]*$"
)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_INLINE = re.compile(
    r"(?P<ticks>`+)[^\n]+?(?P=ticks)"  # inline code
    r"|<!--.*?-->"  # HTML comment
    r"|\{/\*.*?\*/\}"  # MDX comment
    r"|<https?://[^>\s]+>"  # autolink
    r"|</?[A-Za-z][\w.:-]*(?:\s+[^\s<>=/\"'`]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'"
    r"|\{(?:[^{}]|\{[^{}]*\})*\}|[^\s\"'<>`=]+))?)*\s*/?>"  # HTML/JSX tag
    r"|(?<=\])\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"]*\")?\)"  # link/image target after ]
    r"|(?<=\])\[[^\]\n]*\]"  # reference link label after ]
    r"|https?://[^\s)<>\]]+"  # bare URL
    r"|\{[^{}\n]*\}",  # JSX expression
    re.S,
)


class MarkupLost(Exception):
    """A model's text lost, repeated or invented placeholders: it cannot be restored faithfully."""

    def __init__(self, missing: list[str], repeated: list[str], unknown: list[str]) -> None:
        parts = [
            f"{label}: {', '.join(names[:5])}"
            for label, names in (("missing", missing), ("repeated", repeated), ("unknown", unknown))
            if names
        ]
        super().__init__("the rewritten chapter lost protected markup (" + "; ".join(parts) + ")")
        self.missing, self.repeated, self.unknown = missing, repeated, unknown


@dataclass
class Protected:
    """A chapter with its protected markup replaced by placeholders, and the restore table."""

    text: str
    table: dict[str, str]


class _Masker:
    def __init__(self) -> None:
        self.table: dict[str, str] = {}

    def mask(self, original: str) -> str:
        name = f"⟦P{len(self.table)}⟧"
        self.table[name] = original
        return name

    def inline(self, prose: str) -> str:
        return _INLINE.sub(lambda m: self.mask(m.group(0)), prose)


def protect(markdown: str, pin_anchors: bool = True) -> Protected:
    """Mask the chapter's markup; with `pin_anchors`, headings get explicit `{#original-id}`."""
    masker = _Masker()
    lines = markdown.split("\n")
    out: list[str] = []
    prose: list[str] = []
    seen: dict[str, int] = {}

    def flush() -> None:
        if prose:
            out.append(masker.inline("\n".join(prose)))
            prose.clear()

    def block(end: int, start: int) -> int:
        flush()
        out.append(masker.mask("\n".join(lines[start:end])))
        return end

    i = _front_matter_end(lines)
    if i:
        block(i, 0)
    while i < len(lines):
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            i = block(_fence_end(lines, i, fence.group("fence")), i)
        elif _MATH_BLOCK.match(line):
            i = block(_math_end(lines, i), i)
        elif _ESM.match(line):
            i = block(_paragraph_end(lines, i), i)
        elif _REF_DEFINITION.match(line):
            i = block(i + 1, i)
        elif admonition := _ADMONITION.match(line):
            flush()
            start, end = admonition.span("marker")
            rest = masker.inline(line[end:]) if line[end:].strip() else line[end:]
            out.append(line[:start] + masker.mask(admonition.group("marker")) + rest)
            i += 1
        elif heading := _HEADING.match(line):
            flush()
            out.append(_heading(masker, heading, seen, pin_anchors))
            i += 1
        else:
            prose.append(line)
            i += 1
    flush()
    return Protected("\n".join(out), masker.table)


def _heading(masker: _Masker, heading: re.Match[str], seen: dict[str, int], pin: bool) -> str:
    line, text, anchor = heading.string, heading.group("text"), heading.group("anchor")
    start, end = heading.span("text")
    if anchor is None:
        slug = _dedupe(heading_anchor(_LINK_TARGET.sub("]", text)), seen)
        suffix = f" {masker.mask(f'{{#{slug}}}')}" if pin and slug else ""
        return line[:start] + masker.inline(text) + line[end:] + suffix
    _dedupe(anchor[2:-1], seen)
    a_start, a_end = heading.span("anchor")
    masked = line[:start] + masker.inline(text) + line[end:a_start]
    return masked + masker.mask(anchor) + line[a_end:]


def _dedupe(slug: str, seen: dict[str, int]) -> str:
    # github-slugger's numbering of repeated headings, as Docusaurus assigns their ids.
    count = seen.get(slug, 0)
    seen[slug] = count + 1
    return f"{slug}-{count}" if count else slug


def _front_matter_end(lines: list[str]) -> int:
    if not lines or lines[0].rstrip() != "---":
        return 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    return 0 if end is None else end + 1


def _fence_end(lines: list[str], start: int, fence: str) -> int:
    closing = re.compile(rf"^[ \t>]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
    for i in range(start + 1, len(lines)):
        if closing.match(lines[i]):
            return i + 1
    return len(lines)  # an unclosed fence runs to the end, as CommonMark reads it


def _math_end(lines: list[str], start: int) -> int:
    if lines[start].strip() != "$$" and lines[start].rstrip().endswith("$$"):
        return start + 1  # $$ ... $$ on one line
    for i in range(start + 1, len(lines)):
        if lines[i].rstrip().endswith("$$"):
            return i + 1
    return len(lines)


def _paragraph_end(lines: list[str], start: int) -> int:
    for i in range(start + 1, len(lines)):
        if not lines[i].strip():
            return i
    return len(lines)


def check_placeholders(text: str, table: dict[str, str]) -> None:
    """Raise MarkupLost unless every placeholder of `table` occurs in `text` exactly once."""
    counts: dict[str, int] = {}
    for match in PLACEHOLDER.finditer(text):
        counts[match.group(0)] = counts.get(match.group(0), 0) + 1
    missing = [name for name in table if name not in counts]
    repeated = [name for name, n in counts.items() if n > 1 and name in table]
    unknown = [name for name in counts if name not in table]
    if missing or repeated or unknown:
        raise MarkupLost(missing, repeated, unknown)


def restore(text: str, table: dict[str, str]) -> str:
    """The text with its placeholders replaced by the originals; MarkupLost if any went astray."""
    check_placeholders(text, table)
    return PLACEHOLDER.sub(lambda m: table[m.group(0)], text)


class StreamRestorer:
    """Restores placeholders in streamed deltas, holding back a placeholder cut in two."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.pending = ""

    def feed(self, delta: str) -> str:
        """The restorable part of the text so far (unknown placeholders pass through)."""
        text = self.pending + delta
        cut = text.rfind(_OPEN)
        if cut != -1 and "⟧" not in text[cut:]:
            text, self.pending = text[:cut], text[cut:]
        else:
            self.pending = ""
        return PLACEHOLDER.sub(lambda m: self.table.get(m.group(0), m.group(0)), text)

    def flush(self) -> str:
        """Whatever is still held back at the end of the stream."""
        rest, self.pending = self.pending, ""
        return rest


def content_hash(markdown: str) -> str:
    """The sha256 of a chapter's text, as the index records it."""
    return hashlib.sha256(markdown.encode("utf-8")).hexdigest()


def cache_key(task: str, chapter_hash: str, variant: str, model: str, version: str) -> str:
    """The key a chapter result is cached under: task, content, profile hash or language, model."""
    raw = "\x1f".join((task, chapter_hash, variant, model, version))
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()
