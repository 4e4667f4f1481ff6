"""Ingesting the sample textbook into a real local-mode Qdrant with the real MiniLM embedder."""

from __future__ import annotations

import dataclasses
import hashlib
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from qdrant_client import QdrantClient, models

from common.book.books import DEFAULT_BOOK
from common.book.retrieval.embeddings import Embedder, LocalMiniLM
from common.book.retrieval.search import SEARCH_MODES, SearchMode, TextbookSearch
from common.book.retrieval.store import DENSE_VECTOR, TextbookIndex, point_id
from common.jobs.ingest_jobs import IngestReport
from tests.support.stack import SAMPLE_TEXTBOOK
from workers.indexing import IngestRefused, ingest_tree, reindex_document

BOOK = DEFAULT_BOOK
NODES = "01-ros2/nodes-and-topics.md"
SIMULATION = "02-simulation/gazebo-and-digital-twins.mdx"
VLA = "03-vla/vision-language-action.md"
INTRO = "intro.md"
SOURCES = (NODES, SIMULATION, VLA, INTRO)
NODE_QUESTION = "What is a ROS 2 node?"
GROUNDING_TEXT = "Evaluate grounding on the target robot, in the target environment."
LATIN1 = b"# Caf\xe9\n\nThis page is not UTF-8.\n"
BAD_FRONT_MATTER = "---\ntitle: [unclosed\n---\n\n# Bad\n\nBody.\n"


class TinyEmbedder:
    """A different embedding model (8-d vectors from a hash), for the model-change rebuild."""

    name = "tiny-hash"
    dimension = 8

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """One vector per text."""
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        """Eight positive numbers derived from the text."""
        digest = hashlib.sha256(text.encode("utf-8")).digest()
        return [1.0 + byte / 255 for byte in digest[: self.dimension]]


@dataclass(frozen=True)
class Seeded:
    """A closed Qdrant folder holding the sample book, and how the first ingest went."""

    folder: Path
    report: IngestReport
    progress: list[tuple[int, int]]


def open_index(path: Path, embedder: Embedder) -> TextbookIndex:
    """A textbook index in a local-mode Qdrant folder."""
    client = QdrantClient(path=str(path))
    return TextbookIndex(client, "textbook", embedder.name, embedder.dimension)


@pytest.fixture(scope="module")
def embedder() -> LocalMiniLM:
    """The real offline embedder, loaded once."""
    model = LocalMiniLM()
    model.load()
    return model


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, embedder: LocalMiniLM) -> Seeded:
    """The sample book ingested once into an empty index (tests start from copies of it)."""
    folder = tmp_path_factory.mktemp("seeded") / "qdrant"
    progress: list[tuple[int, int]] = []
    index = open_index(folder, embedder)
    try:
        report = ingest_tree(
            index,
            embedder,
            SAMPLE_TEXTBOOK,
            on_progress=lambda r: progress.append((r.files_seen, r.files_changed)),
        )
    finally:
        index.client.close()
    return Seeded(folder, report, progress)


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A private copy of the sample textbook that tests may edit."""
    return Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))


@pytest.fixture
def index(tmp_path: Path, seeded: Seeded, embedder: LocalMiniLM) -> Iterator[TextbookIndex]:
    """An index already holding the sample book, closed afterwards to release its folder lock."""
    opened = open_index(Path(shutil.copytree(seeded.folder, tmp_path / "qdrant")), embedder)
    yield opened
    opened.client.close()


@pytest.fixture
def search(index: TextbookIndex, embedder: LocalMiniLM) -> TextbookSearch:
    """Hybrid search over the index."""
    return TextbookSearch(index, embedder)


def count_source(index: TextbookIndex, source: str) -> int:
    """Number of points of one source file behind the alias."""
    condition = models.FieldCondition(key="source", match=models.MatchValue(value=source))
    return index.client.count(
        index.alias, count_filter=models.Filter(must=[condition]), exact=True
    ).count


def counts(index: TextbookIndex) -> dict[str, int]:
    """Points per sample source."""
    return {source: count_source(index, source) for source in SOURCES}


def point_ids(index: TextbookIndex, collection: str | None = None) -> set[str]:
    """Every point id behind the alias (or in one collection)."""
    points, _ = index.client.scroll(collection or index.alias, limit=10_000, with_payload=False)
    return {str(point.id) for point in points}


def collection_names(index: TextbookIndex) -> list[str]:
    """Every collection in the Qdrant folder."""
    return sorted(c.name for c in index.client.get_collections().collections)


# Incremental runs


def test_first_run_indexes_every_file(seeded: Seeded, index: TextbookIndex) -> None:
    report = seeded.report

    assert report.rebuilt and report.collection == index.current_collection()
    assert report.files_total == report.files_seen == report.files_changed == 4
    assert (report.files_skipped, report.files_deleted, report.failures) == (0, 0, {})
    assert report.chunks_written == report.embeddings_computed == index.count() > 4
    assert index.count(report.collection) == index.count()
    assert seeded.progress == [(1, 1), (2, 2), (3, 3), (4, 4)]
    assert all(n > 0 for n in counts(index).values())
    assert sum(counts(index).values()) == index.count()


def test_second_run_skips_unchanged_files(
    index: TextbookIndex, embedder: LocalMiniLM, book: Path
) -> None:
    collection = index.current_collection()
    before = point_ids(index)

    report = ingest_tree(index, embedder, book)

    assert dataclasses.replace(report, seconds=0.0) == IngestReport(
        files_total=4, files_seen=4, files_skipped=4, collection=str(collection)
    )
    assert point_ids(index) == before
    assert collection_names(index) == [collection]


def test_an_added_section_replaces_exactly_its_files_points(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    before = counts(index)
    with (book / VLA).open("a", encoding="utf-8") as page:
        page.write("\n## Field notes\n\nWalking robots log every fall for later study.\n")

    report = ingest_tree(index, embedder, book)

    assert (report.files_changed, report.files_skipped, report.rebuilt) == (1, 3, False)
    after = counts(index)
    assert after[VLA] == before[VLA] + 1 == report.chunks_written
    assert report.embeddings_computed == 1  # the other chunks of the page kept their vectors
    assert {s: n for s, n in after.items() if s != VLA} == {
        s: n for s, n in before.items() if s != VLA
    }
    [hit] = search.search("walking robots log every fall", k=1)
    assert (hit.source, hit.heading) == (VLA, "Field notes")


def test_an_edited_section_is_the_only_one_re_embedded(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    collection = str(index.current_collection())
    vectors_before = index.stored_vectors(collection, BOOK, VLA)
    page = book / VLA
    text = page.read_text(encoding="utf-8")
    assert GROUNDING_TEXT in text
    page.write_text(
        text.replace(GROUNDING_TEXT, "Check grounding with the wombat test on the real robot."),
        encoding="utf-8",
    )

    report = ingest_tree(index, embedder, book)

    assert (report.files_changed, report.chunks_written) == (1, count_source(index, VLA))
    assert report.embeddings_computed == 1 < count_source(index, VLA)
    vectors_after = index.stored_vectors(collection, BOOK, VLA)
    kept = set(vectors_before) & set(vectors_after)
    assert len(kept) == len(vectors_after) - 1
    # Reused, not recomputed: equal up to Qdrant re-normalising the stored float32 vectors.
    assert all(vectors_after[h] == pytest.approx(vectors_before[h], abs=1e-6) for h in kept)
    [hit] = search.search("wombat test", k=1)
    assert (hit.source, hit.heading) == (VLA, "Grounding")


def test_a_shrunk_file_leaves_no_stale_points(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    (book / NODES).write_text("# Nodes\n\nA node does one job.\n", encoding="utf-8")

    ingest_tree(index, embedder, book)

    assert count_source(index, NODES) == 1
    assert search.search("Quality of Service publishers", path_prefix=NODES, mode="sparse") == []
    [hit] = search.search("node job", path_prefix=NODES)
    assert hit.text == "A node does one job."


def test_a_deleted_file_loses_its_points(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    before = counts(index)
    (book / SIMULATION).unlink()

    report = ingest_tree(index, embedder, book)

    assert (report.files_seen, report.files_deleted, report.files_skipped) == (3, 1, 3)
    assert count_source(index, SIMULATION) == 0
    assert index.count() == sum(before.values()) - before[SIMULATION]
    assert search.search("Gazebo digital twin", path_prefix="02-simulation") == []


def test_broken_files_are_reported_and_the_rest_ingested(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    (book / "01-ros2" / "latin1.md").write_bytes(LATIN1)
    (book / "bad-front-matter.md").write_text(BAD_FRONT_MATTER, encoding="utf-8")
    (book / "_partial.md").write_text("# Partial\n\nNever indexed on its own.\n", encoding="utf-8")
    (book / "01-ros2" / "launch.md").write_text(
        "# Launch files\n\nA launch file starts many nodes at once.\n", encoding="utf-8"
    )

    report = ingest_tree(index, embedder, book)

    assert set(report.failures) == {"01-ros2/latin1.md", "bad-front-matter.md"}
    assert "UTF-8" in report.failures["01-ros2/latin1.md"]
    assert "front matter" in report.failures["bad-front-matter.md"]
    assert report.files_failed == 2
    assert (report.files_total, report.files_seen) == (7, 7)
    assert (report.files_changed, report.files_skipped) == (1, 4)
    assert set(index.document_hashes(report.collection, BOOK)) == {*SOURCES, "01-ros2/launch.md"}
    [hit] = search.search("launch file starts many nodes", k=1)
    assert hit.source == "01-ros2/launch.md"


# Search


@pytest.mark.parametrize("mode", SEARCH_MODES)
def test_search_finds_the_section_that_answers(search: TextbookSearch, mode: SearchMode) -> None:
    hits = search.search(NODE_QUESTION, mode=mode)

    assert (hits[0].source, hits[0].heading) == (NODES, "What is a node?")
    assert hits[0].url.endswith("#what-is-a-node")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].similarity > 0.5


def test_search_within_a_folder_or_file(search: TextbookSearch) -> None:
    hits = search.search(NODE_QUESTION, k=10, path_prefix="02-simulation")

    assert hits
    assert {hit.source for hit in hits} == {SIMULATION}
    assert {hit.source for hit in search.search("simulator", k=10, path_prefix=NODES)} == {NODES}
    slashed = search.search("simulator", path_prefix="/02-simulation/")
    bare = search.search("simulator", path_prefix="02-simulation")
    # Same passages in the same order; scores may differ in the last digits between processors.
    assert [(h.source, h.heading, h.text) for h in slashed] == [
        (h.source, h.heading, h.text) for h in bare
    ]
    assert [h.score for h in slashed] == pytest.approx([h.score for h in bare])
    assert [h.similarity for h in slashed] == pytest.approx([h.similarity for h in bare])
    assert search.search("simulator", path_prefix="02-sim") == []  # folders, not string prefixes
    assert search.search("the of and", mode="sparse") == []
    assert search.search("   ") == []


def test_point_ids_are_deterministic(
    index: TextbookIndex, embedder: LocalMiniLM, book: Path
) -> None:
    assert point_id(BOOK, NODES, 3) == point_id(BOOK, NODES, 3)
    assert len({point_id(BOOK, NODES, 0), point_id(BOOK, NODES, 1), point_id(BOOK, VLA, 0)}) == 3
    ids = point_ids(index)
    assert ids == {point_id(BOOK, s, i) for s in SOURCES for i in range(count_source(index, s))}

    # Writing the same points again (a redelivered task) overwrites them instead of adding more.
    points, _ = index.client.scroll(index.alias, limit=10_000, with_vectors=True)
    index.client.upsert(
        index.alias,
        points=[
            models.PointStruct(id=p.id, vector=cast(Any, p.vector), payload=p.payload)
            for p in points
        ],
        wait=True,
    )
    (book / NODES).write_text("# Nodes\n\nA node does one job.\n", encoding="utf-8")
    ingest_tree(index, embedder, book)
    shutil.copy(SAMPLE_TEXTBOOK / NODES, book / NODES)
    ingest_tree(index, embedder, book)

    assert point_ids(index) == ids
    assert index.count() == len(ids)


# Full rebuilds


def test_a_full_run_builds_a_new_collection_and_moves_the_alias(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    old = str(index.current_collection())
    ids = point_ids(index)

    report = ingest_tree(index, embedder, book, full=True)

    assert report.rebuilt and report.collection != old
    assert index.current_collection() == report.collection
    assert not index.client.collection_exists(old)
    assert collection_names(index) == [report.collection]
    assert (report.files_changed, report.files_skipped, report.files_deleted) == (4, 0, 0)
    assert report.chunks_written == report.embeddings_computed == index.count() == len(ids)
    assert point_ids(index) == ids
    assert search.search(NODE_QUESTION)[0].source == NODES


def test_searches_read_the_old_collection_while_a_rebuild_runs(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    old = str(index.current_collection())
    old_count = index.count()
    (book / SIMULATION).unlink()  # the new build will never hold the Gazebo chapter
    seen: list[tuple[int, str | None, int, int, str, str]] = []

    def search_mid_build(report: IngestReport) -> None:
        nodes = search.search(NODE_QUESTION, k=1)
        gazebo = search.search("Gazebo digital twin", k=1)
        seen.append(
            (
                report.files_seen,
                index.current_collection(),
                index.count(),
                index.count(report.collection),
                nodes[0].source,
                gazebo[0].source,
            )
        )

    report = ingest_tree(index, embedder, book, full=True, on_progress=search_mid_build)

    assert [s[0] for s in seen] == [1, 2, 3]
    for _, alias_target, visible, building, nodes_source, gazebo_source in seen:
        assert (alias_target, visible) == (old, old_count)
        assert building < old_count
        assert (nodes_source, gazebo_source) == (NODES, SIMULATION)
    assert index.current_collection() == report.collection != old
    assert search.search("Gazebo digital twin", path_prefix="02-simulation") == []


def test_a_different_embedder_rebuilds_on_a_normal_run(index: TextbookIndex, book: Path) -> None:
    old = str(index.current_collection())
    tiny = TinyEmbedder()
    tiny_index = TextbookIndex(index.client, index.alias, tiny.name, tiny.dimension)

    report = ingest_tree(tiny_index, tiny, book)

    assert report.rebuilt and report.collection != old
    assert tiny_index.current_collection() == report.collection
    assert not index.client.collection_exists(old)
    assert (report.files_changed, report.files_skipped) == (4, 0)
    assert report.embeddings_computed == report.chunks_written == tiny_index.count()
    params = index.client.get_collection(report.collection).config.params
    assert isinstance(params.vectors, dict)
    assert params.vectors[DENSE_VECTOR].size == 8
    hits = TextbookSearch(tiny_index, tiny).search(NODE_QUESTION, mode="sparse")
    assert (hits[0].source, hits[0].heading) == (NODES, "What is a node?")

    again = ingest_tree(tiny_index, tiny, book)

    assert (again.rebuilt, again.collection, again.files_skipped) == (False, report.collection, 4)


def test_a_rebuild_where_every_file_fails_keeps_the_old_collection(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, tmp_path: Path
) -> None:
    old = str(index.current_collection())
    old_count = index.count()
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "latin1.md").write_bytes(LATIN1)
    (broken / "bad-front-matter.md").write_text(BAD_FRONT_MATTER, encoding="utf-8")

    with pytest.raises(IngestRefused) as refused:
        ingest_tree(index, embedder, broken, full=True)

    assert refused.value.code == "empty_source"
    report = refused.value.report
    assert report is not None and report.rebuilt
    assert report.files_seen == report.files_failed == 2
    assert report.collection == old == index.current_collection()
    assert collection_names(index) == [old]  # the abandoned build was dropped
    assert index.count() == old_count
    assert search.search(NODE_QUESTION)[0].source == NODES


# Sources that must not change the index


SECRET = "# Secret\n\nThe quokkasecret lives outside the textbook.\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside the book's root, with a page readers must never see."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.md").write_text(SECRET, encoding="utf-8")
    return folder


@pytest.mark.parametrize("full", [False, True])
def test_a_folder_without_pages_is_refused_and_the_index_kept(
    index: TextbookIndex, embedder: LocalMiniLM, tmp_path: Path, full: bool
) -> None:
    before, names = point_ids(index), collection_names(index)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pages here")

    with pytest.raises(IngestRefused) as refused:
        ingest_tree(index, embedder, empty, full=full)

    assert refused.value.code == "empty_source"
    assert point_ids(index) == before and collection_names(index) == names


def test_allow_empty_lets_an_empty_folder_empty_the_index(
    index: TextbookIndex, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    report = ingest_tree(index, embedder, empty, allow_empty=True)

    assert (report.files_total, report.files_deleted) == (0, 4)
    assert index.count() == 0


def test_an_update_where_every_page_fails_deletes_nothing(
    index: TextbookIndex, embedder: LocalMiniLM, tmp_path: Path
) -> None:
    before = point_ids(index)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "latin1.md").write_bytes(LATIN1)

    with pytest.raises(IngestRefused) as refused:
        ingest_tree(index, embedder, broken)

    assert refused.value.code == "empty_source"
    assert refused.value.report is not None and refused.value.report.files_failed == 1
    assert point_ids(index) == before


def test_links_leaving_the_roots_are_reported_and_never_indexed(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path, outside: Path
) -> None:
    (book / "leak.md").symlink_to(outside / "secret.md")
    (book / "shared").symlink_to(outside)

    report = ingest_tree(index, embedder, book, roots=[book])

    assert report.failures == {
        "leak.md": "a symbolic link that leaves INGEST_ROOTS: not followed",
        "shared": "a symbolic link that leaves INGEST_ROOTS: not followed",
    }
    assert (report.files_total, report.files_seen, report.files_skipped) == (6, 6, 4)
    assert set(index.document_hashes(report.collection, BOOK)) == set(SOURCES)
    assert search.search("quokkasecret", mode="sparse") == []


def test_a_hard_link_to_an_outside_file_is_reported_and_never_indexed(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path, outside: Path
) -> None:
    (book / "leak.md").hardlink_to(outside / "secret.md")

    report = ingest_tree(index, embedder, book, roots=[book])

    assert report.failures == {"leak.md": "a file with more than one hard link: not read"}
    assert set(index.document_hashes(report.collection, BOOK)) == set(SOURCES)
    assert search.search("quokkasecret", mode="sparse") == []
    one = reindex_document(index, embedder, book, "leak.md", roots=[book])
    assert set(one.failures) == {"leak.md"} and count_source(index, "leak.md") == 0
    assert search.search("quokkasecret", mode="sparse") == []


def test_a_page_that_became_an_escaping_link_loses_its_points(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path, outside: Path
) -> None:
    (book / VLA).unlink()
    (book / VLA).symlink_to(outside / "secret.md")

    report = ingest_tree(index, embedder, book, roots=[book])

    assert set(report.failures) == {VLA} and report.files_deleted == 1
    assert count_source(index, VLA) == 0
    assert search.search("quokkasecret", mode="sparse") == []


# Re-indexing one document


def test_one_document_is_re_embedded_without_reusing_vectors(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path
) -> None:
    collection = index.current_collection()
    before = counts(index)
    with (book / VLA).open("a", encoding="utf-8") as page:
        page.write("\n## Field notes\n\nWalking robots log every fall for later study.\n")

    report = reindex_document(index, embedder, book, VLA, roots=[book])

    assert report.collection == collection == index.current_collection()
    assert (report.files_total, report.files_seen, report.files_changed) == (1, 1, 1)
    assert report.chunks_written == report.embeddings_computed == before[VLA] + 1
    assert counts(index) == {**before, VLA: before[VLA] + 1}
    [hit] = search.search("walking robots log every fall", k=1)
    assert (hit.source, hit.heading) == (VLA, "Field notes")


def test_a_document_that_is_gone_loses_its_points(
    index: TextbookIndex, embedder: LocalMiniLM, book: Path
) -> None:
    (book / SIMULATION).unlink()

    report = reindex_document(index, embedder, book, SIMULATION)

    assert (report.files_deleted, report.files_changed, report.failures) == (1, 0, {})
    assert count_source(index, SIMULATION) == 0
    assert count_source(index, NODES) > 0


def test_an_unknown_document_is_a_failure(
    index: TextbookIndex, embedder: LocalMiniLM, book: Path
) -> None:
    before = point_ids(index)

    report = reindex_document(index, embedder, book, "no/such-page.md")

    assert report.failures == {"no/such-page.md": "not in the folder or the index"}
    assert point_ids(index) == before


def test_a_document_that_escapes_is_not_read_and_loses_its_points(
    index: TextbookIndex, embedder: LocalMiniLM, search: TextbookSearch, book: Path, outside: Path
) -> None:
    (book / NODES).unlink()
    (book / NODES).symlink_to(outside / "secret.md")

    report = reindex_document(index, embedder, book, NODES, roots=[book])

    assert set(report.failures) == {NODES} and report.files_deleted == 1
    assert count_source(index, NODES) == 0
    assert search.search("quokkasecret", mode="sparse") == []


def test_a_document_needs_an_index_built_by_this_embedder(
    index: TextbookIndex, embedder: LocalMiniLM, book: Path, tmp_path: Path
) -> None:
    empty = open_index(tmp_path / "empty-qdrant", embedder)
    tiny = TinyEmbedder()
    other = TextbookIndex(index.client, "textbook", tiny.name, tiny.dimension)
    try:
        with pytest.raises(IngestRefused) as no_index:
            reindex_document(empty, embedder, book, NODES)
        with pytest.raises(IngestRefused) as other_model:
            reindex_document(other, tiny, book, NODES)
    finally:
        empty.client.close()

    assert (no_index.value.code, other_model.value.code) == ("no_index", "rebuild_required")
