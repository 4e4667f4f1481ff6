"""Two books in one real local-mode Qdrant index: each run touches its own book only."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from qdrant_client import models

from common.book.retrieval.embeddings import LocalMiniLM
from common.book.retrieval.search import TextbookSearch
from common.book.retrieval.store import TextbookIndex
from tests.support.stack import SAMPLE_TEXTBOOK
from tests.workers.test_indexing import NODE_QUESTION, NODES, TinyEmbedder, open_index
from workers.indexing import ingest_tree, reindex_document, remove_book

SAMPLE, SECOND = "textbook", "robotics"
SECOND_URL = "https://robotics.example.org/docs/"


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    """The real offline embedder, loaded once."""
    model = LocalMiniLM()
    model.load()
    return model


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder: LocalMiniLM) -> Path:
    """A closed Qdrant folder holding the sample, then a copy of it as a second book."""
    folder = tmp_path_factory.mktemp("two-books") / "qdrant"
    index = open_index(folder, embedder)
    try:
        ingest_tree(index, embedder, SAMPLE_TEXTBOOK, book=SAMPLE)
        ingest_tree(index, embedder, SAMPLE_TEXTBOOK, SECOND_URL, book=SECOND)
    finally:
        index.client.close()
    return folder


@pytest.fixture
def index(tmp_path: Path, seeded: Path, embedder: LocalMiniLM) -> Iterator[TextbookIndex]:
    """A copy of the two-book index, closed afterwards to release its folder lock."""
    opened = open_index(Path(shutil.copytree(seeded, tmp_path / "qdrant")), embedder)
    yield opened
    opened.client.close()


@pytest.fixture
def second(tmp_path: Path) -> Path:
    """The second book's folder: a copy of the sample, so both hold the same relative paths."""
    return Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "second-book"))


def pages(index: TextbookIndex, book: str) -> set[str]:
    """The sources of one book behind the alias."""
    return set(index.document_hashes(index.alias, book))


def count_book(index: TextbookIndex, book: str) -> int:
    """The points of one book behind the alias."""
    condition = models.FieldCondition(key="book", match=models.MatchValue(value=book))
    selection = models.Filter(must=[condition])
    return index.client.count(index.alias, count_filter=selection, exact=True).count


def test_a_second_book_leaves_the_first_and_keeps_its_own_urls(
    index: TextbookIndex, embedder: LocalMiniLM
) -> None:
    # `seeded` ingested the sample, then the same folder again as a second book.
    assert (
        pages(index, SAMPLE)
        == pages(index, SECOND)
        == {
            p.relative_to(SAMPLE_TEXTBOOK).as_posix()
            for p in SAMPLE_TEXTBOOK.rglob("*.md*")
            if p.is_file()
        }
    )
    assert count_book(index, SAMPLE) == count_book(index, SECOND) == index.count() / 2 > 0
    found = TextbookSearch(index, embedder).search(NODE_QUESTION, k=10)
    assert {p.book for p in found} == {SAMPLE, SECOND}
    assert all(p.url.startswith(SECOND_URL) for p in found if p.book == SECOND)
    assert not any(p.url.startswith(SECOND_URL) for p in found if p.book == SAMPLE)
    only = TextbookSearch(index, embedder).search(NODE_QUESTION, k=10, book=SECOND)
    assert only and {p.book for p in only} == {SECOND}


def test_an_update_deletes_only_its_own_books_pages(
    index: TextbookIndex, embedder: LocalMiniLM, second: Path
) -> None:
    (second / NODES).unlink()

    report = ingest_tree(index, embedder, second, SECOND_URL, book=SECOND)

    assert report.files_deleted == 1 and report.files_skipped == len(pages(index, SAMPLE)) - 1
    assert NODES in pages(index, SAMPLE) and NODES not in pages(index, SECOND)


def test_a_full_rebuild_of_one_book_keeps_the_other(
    index: TextbookIndex, embedder: LocalMiniLM, second: Path
) -> None:
    before, total = index.current_collection(), index.count()

    report = ingest_tree(index, embedder, second, SECOND_URL, book=SECOND, full=True)

    assert report.rebuilt and index.current_collection() not in (None, before)
    assert index.count() == total
    assert report.embeddings_computed == report.chunks_written  # the sample's were copied
    assert pages(index, SAMPLE) == pages(index, SECOND)


def test_a_model_change_re_embeds_the_other_book_from_its_stored_text(
    tmp_path: Path, seeded: Path, second: Path
) -> None:
    tiny = TinyEmbedder()
    index = open_index(Path(shutil.copytree(seeded, tmp_path / "qdrant")), tiny)
    total = index.count()
    try:
        report = ingest_tree(index, tiny, second, SECOND_URL, book=SECOND)

        assert report.rebuilt and index.count() == total
        assert report.embeddings_computed == total
        assert pages(index, SAMPLE) == pages(index, SECOND)
    finally:
        index.client.close()


def test_an_index_made_before_books_is_labelled_and_kept(
    index: TextbookIndex, embedder: LocalMiniLM, second: Path
) -> None:
    collection = str(index.current_collection())
    index.delete_book(collection, SECOND)
    everything = models.Filter(must=[])
    index.client.delete_payload(collection, keys=["book"], points=everything, wait=True)
    assert index.unlabelled(collection) == index.count() > 0

    index.label_unlabelled(collection, SAMPLE)
    report = ingest_tree(index, embedder, second, SECOND_URL, book=SECOND)

    assert index.unlabelled(collection) == 0 and report.files_deleted == 0
    assert pages(index, SAMPLE) == pages(index, SECOND)
    assert count_book(index, SAMPLE) == count_book(index, SECOND) > 0


def test_a_page_re_index_and_a_removal_touch_one_book(
    index: TextbookIndex, embedder: LocalMiniLM, second: Path
) -> None:
    (second / NODES).unlink()
    one = len(pages(index, SAMPLE))

    reindexed = reindex_document(index, embedder, second, NODES, SECOND_URL, book=SECOND)
    removed = remove_book(index, SECOND)

    assert reindexed.files_deleted == 1 and removed.files_deleted == one - 1
    assert pages(index, SECOND) == set() and len(pages(index, SAMPLE)) == one
    assert index.count() > 0
