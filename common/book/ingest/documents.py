"""Parse Docusaurus Markdown/MDX pages into metadata and anchored heading sections."""

from __future__ import annotations

import hashlib
import math
import posixpath
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

DEFAULT_MAX_BYTES = 2 * 1024 * 1024
DEFAULT_MAX_LINE_CHARS = 100_000

_CODE_TOKENS = ("fence", "code_block")
# MDX ESM: an import/export statement at column 0 runs to the next blank line.
_ESM = re.compile(
    r"^(?:import\s*(?:['\"{]|[\w$*][^'\"]*\bfrom\s*['\"])"
    r"|export\s+(?:default|const|let|var|function|class|async)\b|export\s*[{*])"
)
_MARKUP = re.compile(
    r"(?P<code>(?P<ticks>`+)[^\n]+?(?P=ticks))"  # inline code is kept verbatim
    r"|<!--(?s:.*?)-->"
    r"|\{/\*(?s:.*?)\*/\}"
    r"|</?[A-Za-z][\w.:-]*(?:\s+[^\s<>=/\"'`]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'"
    r"|\{(?:[^{}]|\{[^{}]*\})*\}|[^\s\"'<>`=]+))?)*\s*/?>"
)
_ADMONITION = re.compile(r"^(?P<indent>\s*):{3,}\s*(?:[A-Za-z][\w-]*)?(?P<rest>.*)$")
_EXPLICIT_ID = re.compile(r"\s*\{#([^{}\s]+)\}\s*$")
# Docusaurus's default number-prefix parser; "4.2-x" and "2021-01-x" look like versions/dates.
_IGNORED_PREFIX = re.compile(r"^\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"^\d+\s*[-_.]+\s*(?P<rest>[^-_.\s].*)$")
# Characters a browser leaves unencoded in a URL path, beyond letters, digits and "_.-~".
_PATH_SAFE = "/!$&'()*+,:;=@[]^|\\%"


class DocumentError(Exception):
    """A source file that cannot be read or parsed; carries the source path and a message."""

    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source
        self.message = message


@dataclass(frozen=True, slots=True)
class Section:
    """Text under one heading; `start_line` is 1-based in the original file."""

    heading_path: tuple[str, ...]
    anchor: str
    text: str
    start_line: int


@dataclass(frozen=True, slots=True)
class Document:
    """One page: its Docusaurus metadata, URL and heading sections."""

    source: str
    title: str
    url: str
    slug: str | None
    doc_id: str | None
    description: str | None
    sidebar_position: float | None
    tags: tuple[str, ...]
    sections: tuple[Section, ...]
    content_hash: str


@dataclass(frozen=True, slots=True)
class _Heading:
    level: int
    text: str
    anchor: str
    start: int  # 0-based body line of the heading
    end: int  # first body line after it (setext headings span two lines)


def parse_document(
    path: Path,
    root: Path,
    base_url: str = "/",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> Document:
    """Read a Markdown/MDX file under `root` and parse it; raise DocumentError if unreadable."""
    try:
        source = path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        raise DocumentError(str(path), f"is not under {root}") from None
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise DocumentError(source, f"file is {size} bytes, over the {max_bytes}-byte cap")
        raw = path.read_bytes()
    except OSError as exc:
        raise DocumentError(source, f"cannot read file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DocumentError(source, f"not valid UTF-8 (byte offset {exc.start})") from exc
    return parse_markdown(
        text, source, base_url, max_bytes=max_bytes, max_line_chars=max_line_chars
    )


def parse_markdown(
    text: str,
    source: str,
    base_url: str = "/",
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_line_chars: int = DEFAULT_MAX_LINE_CHARS,
) -> Document:
    """Parse the text of the page at `source` (POSIX path relative to the docs root)."""
    encoded = text.encode("utf-8")
    content_hash = hashlib.sha256(encoded).hexdigest()
    if len(encoded) > max_bytes:
        raise DocumentError(source, f"text is over the {max_bytes}-byte cap")
    # markdown-it only breaks lines on "\n", so normalise first to keep its line maps aligned.
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    if len(lines[longest]) > max_line_chars:
        raise DocumentError(source, f"line {longest + 1} is over {max_line_chars} characters")
    meta, body_start = _split_front_matter(lines, source)
    body = _clean_mdx(lines[body_start:])
    headings, code = _scan(body)

    title = _text_field(meta, "title")
    if title is None:
        title = next((h.text for h in headings if h.level == 1), None)
    stem = _strip_number_prefix(PurePosixPath(source).stem)
    title = title or stem
    slug = _text_field(meta, "slug")
    doc_id = _text_field(meta, "id")
    return Document(
        source=source,
        title=title,
        url=_join_url(base_url, _doc_slug(source, slug, doc_id)),
        slug=slug,
        doc_id=doc_id,
        description=_text_field(meta, "description"),
        sidebar_position=_position(meta.get("sidebar_position")),
        tags=_tags(meta.get("tags")),
        sections=tuple(_sections(body, headings, code, title, body_start)),
        content_hash=content_hash,
    )


def heading_anchor(text: str) -> str:
    """Slug a heading's plain text like github-slugger (used by Docusaurus), without dedup."""
    kept = (
        ch for ch in text.strip().lower() if ch in "-_ " or unicodedata.category(ch)[0] in "LMN"
    )
    return "".join(kept).replace(" ", "-")


@cache
def _markdown() -> MarkdownIt:
    # HTML off: a JSX line like <TabItem> would otherwise open an HTML block that hides a fence.
    return MarkdownIt("commonmark", {"html": False})


def _clean_mdx(lines: list[str]) -> list[str]:
    """Drop MDX-only syntax outside code, keeping the line count so token maps stay aligned."""
    code = _token_code_lines(_markdown().parse("\n".join(lines)))
    out = list(lines)
    i = 0
    while i < len(out):
        if i not in code and _ESM.match(out[i]):
            while i < len(out) and out[i].strip() and i not in code:
                out[i] = ""
                i += 1
        i += 1
    i = 0
    while i < len(out):  # tags and comments may span lines: clean each run of prose lines
        j = i
        while j < len(out) and j not in code:
            j += 1
        if j > i:
            out[i:j] = _MARKUP.sub(_drop_markup, "\n".join(out[i:j])).split("\n")
        i = j + 1
    for i, line in enumerate(out):
        if i not in code and (match := _ADMONITION.match(line)):
            title = match["rest"].strip()
            if title.startswith("[") and title.endswith("]"):
                title = title[1:-1].strip()
            out[i] = match["indent"] + title
    return out


def _drop_markup(match: re.Match[str]) -> str:
    return match[0] if match["code"] else "\n" * match[0].count("\n")


def _token_code_lines(tokens: Iterable[Token]) -> set[int]:
    code: set[int] = set()
    for tok in tokens:
        if tok.type in _CODE_TOKENS and tok.map:
            code.update(range(*tok.map))
    return code


def _scan(lines: list[str]) -> tuple[list[_Heading], set[int]]:
    """Return the top-level headings (anchors deduplicated per page) and the code lines."""
    tokens = _markdown().parse("\n".join(lines))
    seen: dict[str, int] = {}
    headings: list[_Heading] = []
    for i, tok in enumerate(tokens):
        if tok.type != "heading_open" or not tok.map:
            continue
        text = _inline_text(tokens[i + 1])
        explicit = _EXPLICIT_ID.search(text)
        if explicit:
            text, anchor = text[: explicit.start()], explicit.group(1)
        else:
            anchor = _dedupe(heading_anchor(text), seen)
        if tok.tag == "h1":
            anchor = ""  # Docusaurus renders every h1 without an id: link to the page itself
        # Headings nested in lists or quotes still count for anchors but do not split sections.
        if text and tok.level == 0:
            headings.append(_Heading(int(tok.tag[1:]), text, anchor, tok.map[0], tok.map[1]))
    return headings, _token_code_lines(tokens)


def _inline_text(inline: Token) -> str:
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "text_special", "code_inline", "image"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split())


def _dedupe(slug: str, seen: dict[str, int]) -> str:
    # github-slugger: repeats become "x-1", "x-2", skipping suffixes already taken.
    unique = slug
    while unique in seen:
        seen[slug] += 1
        unique = f"{slug}-{seen[slug]}"
    seen[unique] = 0
    return unique


def _sections(
    body: list[str], headings: list[_Heading], code: set[int], title: str, offset: int
) -> Iterator[Section]:
    stack: list[_Heading] = []
    path: tuple[str, ...] = (title,)
    anchor, start, text_start = "", 0, 0
    preamble = True
    for heading in [*headings, None]:
        stop = heading.start if heading else len(body)
        text = _section_text(body, text_start, stop, code)
        if text:
            if preamble:  # the preamble starts at its first non-blank line
                start = next(i for i in range(text_start, stop) if body[i].strip())
            yield Section(path, anchor, text, offset + start + 1)
        if heading is None:
            break
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        path = (title, *(h.text for h in stack if not (h.level == 1 and _same(h.text, title))))
        anchor, start, text_start = heading.anchor, heading.start, heading.end
        preamble = False


def _section_text(body: list[str], start: int, stop: int, code: set[int]) -> str:
    out: list[str] = []
    for i in range(start, stop):
        line = body[i].rstrip()
        # Clean-up leaves blank runs behind; squeeze them, but never inside code.
        if line or i in code or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def _same(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


def _split_front_matter(lines: list[str], source: str) -> tuple[dict[str, Any], int]:
    if not lines or lines[0].rstrip() != "---":
        return {}, 0
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() == "---"), None)
    if end is None:
        raise DocumentError(source, "front matter is not closed by a '---' line")
    try:
        data = yaml.safe_load("\n".join(lines[1:end]))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc
        raise DocumentError(source, f"invalid front matter YAML{where}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise DocumentError(source, "front matter is not a YAML mapping")
    return data, end + 1


def _text_field(meta: dict[str, Any], key: str) -> str | None:
    value = meta.get(key)
    if value is None or isinstance(value, dict | list):
        return None
    return str(value).strip() or None


def _position(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _tags(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items: list[object] = list(value.split(","))
    elif isinstance(value, list):
        items = [v.get("label") if isinstance(v, dict) else v for v in value]
    else:
        return ()
    names = (str(item).strip() for item in items if item is not None)
    return tuple(dict.fromkeys(name for name in names if name))


def _strip_number_prefix(name: str) -> str:
    if _IGNORED_PREFIX.match(name):
        return name
    match = _NUMBER_PREFIX.match(name)
    return match.group("rest") if match else name


def _doc_slug(source: str, slug: str | None, doc_id: str | None) -> str:
    """Docusaurus's doc slug: front matter slug, else folder + id / unprefixed file name."""
    if slug and slug.startswith("/"):
        return slug
    path = PurePosixPath(source)
    folder = path.parent.as_posix()
    if folder == ".":
        folder_slug = "/"
    else:
        folder_slug = "/" + "/".join(_strip_number_prefix(p) for p in path.parent.parts) + "/"
    if not slug and path.stem.lower() in ("index", "readme", path.parent.name.lower()):
        return folder_slug
    relative = slug or doc_id or _strip_number_prefix(path.stem)
    resolved = posixpath.normpath(folder_slug + relative)
    if relative.endswith("/") and resolved != "/":
        resolved += "/"
    return resolved


def _join_url(base_url: str, slug: str) -> str:
    # Encoded as a browser encodes the path of a Docusaurus link (WHATWG URL): spaces and
    # non-ASCII become %XX, while "&", "+" or "=" stay as they are. Docusaurus's router matches
    # that form only: "%26" for "&" is served but shows "Page Not Found".
    return base_url.rstrip("/") + quote(slug, safe=_PATH_SAFE)
