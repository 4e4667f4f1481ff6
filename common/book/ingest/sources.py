"""Where an ingest may read: folders under INGEST_ROOTS, walked without leaving them.

The requested folder is resolved (symlinks followed, `..` folded) and must lie within a
resolved root. While walking, a symbolic link whose target leaves every root is reported and
never followed; a link that stays inside is followed once (link cycles are cut). A regular
file with more than one hard link is never read: its other name may lie outside every root,
and a hard link cannot be resolved to find out. Every reason
a folder is refused gives the same message, so a caller cannot probe the host's filesystem;
the reason itself goes to the worker's log.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

MARKDOWN_SUFFIXES = (".md", ".mdx")
PATH_UNAVAILABLE = "the path is not a folder under the configured INGEST_ROOTS"
LINK_REFUSED = "a symbolic link that leaves INGEST_ROOTS: not followed"
HARD_LINK_REFUSED = "a file with more than one hard link: not read"


class PathUnavailable(Exception):
    """The folder cannot be ingested; `str()` is the same for every reason, `reason` is not."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(PATH_UNAVAILABLE)
        self.path = str(path)
        self.reason = reason


class LinkRefused(PermissionError):
    """A page's real location leaves INGEST_ROOTS, or it has other hard links: it is not read."""


@dataclass(frozen=True)
class SourceFile:
    """A Markdown page found by the walk: its source name in the index and where to read it."""

    source: str
    path: Path


@dataclass
class Walk:
    """What a walk found: pages to ingest, and links it refused (source -> why)."""

    files: list[SourceFile] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def resolved_roots(roots: Sequence[Path]) -> list[Path]:
    """The roots with symlinks and `..` resolved (a missing root simply matches nothing)."""
    return [Path(root).resolve() for root in roots]


def within(path: Path, roots: Sequence[Path]) -> bool:
    """Whether a resolved path lies in (or is) one of the resolved roots."""
    return any(path.is_relative_to(root) for root in roots)


def is_indexable(source: str) -> bool:
    """Whether a source name is one a walk would index: Markdown, no hidden or partial parts."""
    parts = PurePosixPath(source).parts
    return (
        bool(parts)
        and source.lower().endswith(MARKDOWN_SUFFIXES)
        and not any(part.startswith((".", "_")) or part == "node_modules" for part in parts)
    )


def is_source_name(source: str) -> bool:
    """Whether `source` is a clean relative POSIX path inside a folder (no `..`, no root)."""
    if not source or "\\" in source or "\x00" in source or source.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in source.split("/"))


def resolve_folder(path: str | Path, roots: Sequence[Path]) -> Path:
    """The real folder `path` names, if it lies under a root; else PathUnavailable."""
    try:
        folder = Path(path).resolve(strict=True)
    except (OSError, RuntimeError, ValueError) as exc:  # missing, a link loop, a NUL byte
        raise PathUnavailable(path, f"not found ({type(exc).__name__})") from exc
    if not within(folder, resolved_roots(roots)):
        raise PathUnavailable(path, f"outside INGEST_ROOTS (resolves to {folder})")
    if not folder.is_dir():
        raise PathUnavailable(path, "not a folder")
    return folder


def find_markdown_files(folder: Path, roots: Sequence[Path] | None = None) -> Walk:
    """Markdown and MDX pages under `folder`, skipping partials, hidden folders and escapes.

    `roots` defaults to the folder itself. Pages come in the order of their path parts.
    """
    allowed = resolved_roots(roots if roots is not None else [folder])
    walk = Walk()
    start = folder.resolve()
    _visit(start, PurePosixPath(), allowed, {start}, walk)
    walk.files.sort(key=lambda found: PurePosixPath(found.source).parts)
    return walk


def _visit(
    directory: Path, prefix: PurePosixPath, roots: list[Path], visited: set[Path], walk: Walk
) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        log.warning("could not list %s: %s", directory, exc)
        if prefix.parts:
            walk.refused[prefix.as_posix()] = f"could not list the folder: {exc.strerror}"
        return
    for entry in entries:
        name = entry.name
        if name.startswith((".", "_")) or name == "node_modules":
            continue
        source = (prefix / name).as_posix()
        if entry.is_symlink():
            _visit_link(Path(entry.path), prefix / name, roots, visited, walk)
        elif entry.is_dir(follow_symlinks=False):
            _visit(Path(entry.path), prefix / name, roots, visited, walk)
        elif entry.is_file(follow_symlinks=False) and name.lower().endswith(MARKDOWN_SUFFIXES):
            _add_file(walk, source, Path(entry.path))


def _visit_link(
    link: Path, source: PurePosixPath, roots: list[Path], visited: set[Path], walk: Walk
) -> None:
    try:
        target: Path | None = link.resolve()
    except (OSError, RuntimeError):  # a link loop
        target = None
    if target is None or not within(target, roots):
        log.warning("not following %s: its target leaves INGEST_ROOTS", link)
        # Reported when it could be a page or a folder; whatever it is, it is not read.
        if link.name.lower().endswith(MARKDOWN_SUFFIXES) or "." not in link.name:
            walk.refused[source.as_posix()] = LINK_REFUSED
        return
    if target.is_dir():
        if target not in visited:  # a link back up the tree would loop forever
            visited.add(target)
            _visit(target, source, roots, visited, walk)
    elif target.is_file() and link.name.lower().endswith(MARKDOWN_SUFFIXES):
        _add_file(walk, source.as_posix(), target)


def _add_file(walk: Walk, source: str, path: Path) -> None:
    try:
        links = path.stat().st_nlink
    except OSError as exc:
        walk.refused[source] = f"could not read the file: {exc.strerror}"
        return
    if links > 1:
        log.warning("not reading %s: it has %d hard links", path, links)
        walk.refused[source] = HARD_LINK_REFUSED
        return
    walk.files.append(SourceFile(source, path))


def read_source(path: Path, roots: Sequence[Path]) -> bytes:
    """A page's bytes, re-checking at read time that it still lies under a root."""
    real = path.resolve(strict=True)
    if not within(real, resolved_roots(roots)):
        raise LinkRefused(LINK_REFUSED)
    fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as handle:
        if os.fstat(fd).st_nlink > 1:  # linked since the walk: checked on what was opened
            log.warning("not reading %s: it has more than one hard link", real)
            raise LinkRefused(HARD_LINK_REFUSED)
        return handle.read()


def locate_document(folder: Path, source: str, roots: Sequence[Path]) -> Path | None:
    """Where one page of `folder` is now: None if it is gone, LinkRefused if it escapes."""
    target = folder.joinpath(*source.split("/")).resolve()
    if not within(target, resolved_roots(roots)):
        log.warning("not following %s in %s: its target leaves INGEST_ROOTS", source, folder)
        raise LinkRefused(LINK_REFUSED)
    return target if target.is_file() else None
