"""Incremental ingest of the sample textbook into a real local-mode Qdrant."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from qdrant_client import QdrantClient, models

from common.retrieval.store import TextbookIndex, point_id
from tests.support.stack import SAMPLE_TEXTBOOK
from workers.ingest import IngestReport, ingest_tree

NODES = "01-ros2/nodes-and-topics.md"
SIMULATION = "02-simulation/gazebo-and-digital-twins.mdx"
VLA = "03-vla/vision-language-action.md"
INTRO = "intro.md"
SOURCES = (NODES, SIMULATION, VLA, INTRO)


def open_index(path: Path) -> TextbookIndex:
    """A textbook index in a local-mode Qdrant folder."""
    index = TextbookIndex(QdrantClient(path=str(path)), "textbook")
    index.ensure_collection()
    return index


@pytest.fixture
def book(tmp_path: Path) -> Path:
    """A private copy of the sample textbook that tests may edit."""
    return Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))


@pytest.fixture
def index(tmp_path: Path) -> Iterator[TextbookIndex]:
    """An empty index, closed afterwards so its folder lock is released."""
    opened = open_index(tmp_path / "qdrant")
    yield opened
    opened.client.close()


def count_source(index: TextbookIndex, source: str) -> int:
    """Number of points of one source file."""
    condition = models.FieldCondition(key="source", match=models.MatchValue(value=source))
    return index.client.count(
        index.alias, count_filter=models.Filter(must=[condition]), exact=True
    ).count


def counts(index: TextbookIndex) -> dict[str, int]:
    """Points per sample source."""
    return {source: count_source(index, source) for source in SOURCES}


def point_ids(index: TextbookIndex) -> set[str]:
    """Every point id in the index."""
    points, _ = index.client.scroll(index.alias, limit=10_000, with_payload=False)
    return {str(point.id) for point in points}


def test_first_run_indexes_every_file(index: TextbookIndex, book: Path) -> None:
    seen: list[str] = []

    report = ingest_tree(index, book, on_file=lambda source, _: seen.append(source))

    assert report.files_seen == report.files_changed == 4
    assert (report.files_skipped, report.files_deleted, report.failures) == (0, 0, {})
    assert report.chunks_written == index.count() > 4
    assert sorted(seen) == sorted(SOURCES)
    assert all(n > 0 for n in counts(index).values())
    assert sum(counts(index).values()) == index.count()


def test_second_run_skips_unchanged_files(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)
    before = point_ids(index)

    report = ingest_tree(index, book)

    assert report == IngestReport(files_seen=4, files_skipped=4)
    assert point_ids(index) == before


def test_a_modified_file_replaces_exactly_its_points(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)
    before = counts(index)
    with (book / VLA).open("a", encoding="utf-8") as page:
        page.write("\n## Field notes\n\nWalking robots log every fall for later study.\n")

    report = ingest_tree(index, book)

    assert (report.files_changed, report.files_skipped) == (1, 3)
    after = counts(index)
    assert after[VLA] == before[VLA] + 1 == report.chunks_written
    assert {s: n for s, n in after.items() if s != VLA} == {
        s: n for s, n in before.items() if s != VLA
    }
    [hit] = index.search("walking robots log every fall", k=1)
    assert (hit.source, hit.heading) == (VLA, "Field notes")


def test_a_shrunk_file_leaves_no_stale_points(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)
    (book / NODES).write_text("# Nodes\n\nA node does one job.\n", encoding="utf-8")

    ingest_tree(index, book)

    assert count_source(index, NODES) == 1
    assert index.search("Quality of Service publishers", path_prefix=NODES) == []
    [hit] = index.search("node job", path_prefix=NODES)
    assert hit.text == "A node does one job."


def test_a_deleted_file_loses_its_points(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)
    before = counts(index)
    (book / SIMULATION).unlink()

    report = ingest_tree(index, book)

    assert (report.files_seen, report.files_deleted) == (3, 1)
    assert count_source(index, SIMULATION) == 0
    assert index.count() == sum(before.values()) - before[SIMULATION]
    assert index.search("Gazebo digital twin", path_prefix="02-simulation") == []


def test_broken_files_are_reported_and_the_rest_ingested(index: TextbookIndex, book: Path) -> None:
    (book / "01-ros2" / "latin1.md").write_bytes(b"# Caf\xe9\n\nThis page is not UTF-8.\n")
    (book / "bad-front-matter.md").write_text(
        "---\ntitle: [unclosed\n---\n\n# Bad\n\nBody.\n", encoding="utf-8"
    )
    (book / "_partial.md").write_text("# Partial\n\nNever indexed on its own.\n", encoding="utf-8")

    report = ingest_tree(index, book)

    assert set(report.failures) == {"01-ros2/latin1.md", "bad-front-matter.md"}
    assert "UTF-8" in report.failures["01-ros2/latin1.md"]
    assert "front matter" in report.failures["bad-front-matter.md"]
    assert report.files_failed == 2
    assert (report.files_seen, report.files_changed) == (6, 4)
    assert all(n > 0 for n in counts(index).values())
    assert set(index.document_hashes()) == set(SOURCES)


def test_search_finds_the_section_that_answers(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)

    hits = index.search("What is a ROS 2 node?")

    assert hits[0].source == NODES
    assert hits[0].heading == "What is a node?"
    assert hits[0].url.endswith("#what-is-a-node")
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_search_within_a_folder(index: TextbookIndex, book: Path) -> None:
    ingest_tree(index, book)

    hits = index.search("What is a ROS 2 node?", k=10, path_prefix="02-simulation")

    assert hits
    assert {hit.source for hit in hits} == {SIMULATION}
    assert index.search("simulator", path_prefix="/02-simulation/") == index.search(
        "simulator", path_prefix="02-simulation"
    )
    assert index.search("the of and") == []


def test_point_ids_are_deterministic(tmp_path: Path, book: Path) -> None:
    assert point_id(NODES, 3) == point_id(NODES, 3)
    assert len({point_id(NODES, 0), point_id(NODES, 1), point_id(VLA, 0)}) == 3
    first = open_index(tmp_path / "first")
    ingest_tree(first, book)
    ids = point_ids(first)
    expected = {point_id(s, i) for s in SOURCES for i in range(count_source(first, s))}
    first.client.close()
    shutil.rmtree(tmp_path / "first")

    rebuilt = open_index(tmp_path / "first")
    try:
        ingest_tree(rebuilt, book)
        assert point_ids(rebuilt) == ids == expected
        # Writing the same document again overwrites its points instead of adding more.
        points, _ = rebuilt.client.scroll(rebuilt.alias, limit=10_000, with_vectors=True)
        rebuilt.client.upsert(
            rebuilt.alias,
            points=[
                models.PointStruct(id=p.id, vector=cast(Any, p.vector), payload=p.payload)
                for p in points
            ],
            wait=True,
        )
        assert rebuilt.count() == len(ids)
    finally:
        rebuilt.client.close()
