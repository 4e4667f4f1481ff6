"""Citation URLs checked against real Docusaurus builds: every page exists, every anchor is an id.

The fixture book exercises Docusaurus's routing rules (route base path, baseUrl, slug and id
front matter, number prefixes, index/README/folder-named pages, "&", spaces and unicode in
names, explicit and duplicate heading ids). A rule that changes in a Docusaurus release fails
here instead of giving readers a 404.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.book.ingest.documents import Document, parse_document
from common.book.ingest.sources import find_markdown_files
from tests.support.docusaurus import BuiltSite, DocusaurusUnavailable, browser_path, build_site
from tests.support.stack import REPO_ROOT

FIXTURE_BOOK = REPO_ROOT / "tests" / "fixtures" / "docusaurus_book"
# The third-party textbook beside the repository (test data, never copied in).
CORPUS = Path(
    os.environ.get(
        "BOOKCHAT_CORPUS",
        REPO_ROOT.parent / "shared" / "corpus" / "physical-ai-textbook",
    )
)
# (routeBasePath, baseUrl) of a default site, a docs-only site, and a site under a sub-path.
SITES = [("docs", "/"), ("/", "/"), ("guide", "/book/")]

pytestmark = pytest.mark.slow


def docs_prefix(route_base_path: str, base_url: str) -> str:
    """Where docs live on the site: baseUrl joined with the docs plugin's routeBasePath."""
    return "/" + "/".join(p for p in (*base_url.split("/"), *route_base_path.split("/")) if p)


def _build(docs: Path, out: Path, route_base_path: str, base_url: str) -> BuiltSite:
    try:
        return build_site(docs, out, route_base_path=route_base_path, base_url=base_url)
    except DocusaurusUnavailable as exc:
        pytest.skip(str(exc))


def _documents(book: Path, prefix: str) -> list[Document]:
    book = book.resolve()  # the walk names files by their real path (the corpus may be a link)
    files = find_markdown_files(book, [book]).files
    return [parse_document(file.path, book, prefix) for file in files]


def check_citations(site: BuiltSite, documents: list[Document]) -> list[str]:
    """Every way a citation URL can fail on the built site, as readable lines."""
    problems: list[str] = []
    for document in documents:
        page = site.page_file(document.url)
        if page is None:
            problems.append(f"{document.source}: {document.url} is not a page of the site")
            continue
        if document.url != site.canonical_path(page):
            problems.append(
                f"{document.source}: {document.url} is served, but the site's router knows "
                f"the page as {site.canonical_path(page)}"
            )
        ids = site.element_ids(page)
        for section in document.sections:
            if section.anchor and section.anchor not in ids:
                problems.append(f"{document.source}: no element #{section.anchor} on {page}")
    return problems


@pytest.mark.parametrize(("route_base_path", "base_url"), SITES)
def test_every_citation_of_the_fixture_book_opens_its_page_and_heading(
    tmp_path: Path, route_base_path: str, base_url: str
) -> None:
    site = _build(FIXTURE_BOOK, tmp_path / "build", route_base_path, base_url)
    documents = _documents(FIXTURE_BOOK, docs_prefix(route_base_path, base_url))

    assert len(documents) == 12
    assert check_citations(site, documents) == []
    # Every doc page the site built is one the index knows (nothing is missed).
    built = {site.canonical_path(page) for page in site.doc_pages()}
    assert built == {document.url for document in documents}


def test_the_urls_keep_ampersands_and_encode_what_a_browser_encodes() -> None:
    documents = {d.source: d for d in _documents(FIXTURE_BOOK, "/docs")}

    lidar = documents["01-Physics-&-Sensors/01-lidar & depth.md"]
    assert lidar.url == "/docs/Physics-&-Sensors/lidar%20&%20depth"
    assert browser_path("/docs/Physics-&-Sensors/lidar & depth") == lidar.url
    unicode_page = documents["03-Ünïcode-Topics/çinématique.md"]
    assert unicode_page.url == browser_path("/docs/Ünïcode-Topics/çinématique")


def test_the_page_title_gets_no_anchor() -> None:
    intro = {d.source: d for d in _documents(FIXTURE_BOOK, "/docs")}["intro.md"]

    assert intro.sections[0].anchor == ""
    assert [s.anchor for s in intro.sections[1:]] == [
        "what-the-book-covers",
        "what-the-book-covers-1",
        "what-the-book-covers-2",
    ]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the shared corpus is not on this machine")
def test_every_citation_of_the_corpus_opens_its_page_and_heading(tmp_path: Path) -> None:
    site = _build(CORPUS, tmp_path / "build", "docs", "/")
    documents = _documents(CORPUS, "/docs")

    assert len(documents) == 89
    assert check_citations(site, documents) == []
