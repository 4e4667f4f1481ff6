"""Ingest jobs through the admin API and a real worker: counts, incremental runs, failures,
and paths that must never be read (outside INGEST_ROOTS, links leaving them, empty folders).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from common.book.books import DEFAULT_BOOK
from tests.support.stack import SAMPLE_TEXTBOOK, Stack

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not

INGEST = "/v1/admin/ingest"
SAMPLE_FILES = 4
NODES = "01-ros2/nodes-and-topics.md"
VLA = "03-vla/vision-language-action.md"


@pytest.fixture(scope="module")
def admin(ingest_stack: Stack) -> dict[str, str]:
    """An administrator's Authorization header."""
    return ingest_stack.admin()


def run_ingest(
    stack: Stack, headers: dict[str, str], path: Path, full: bool = False, timeout: float = 120
) -> dict[str, Any]:
    """Queue an ingest through the API and poll its Location until it is finished."""
    response = stack.client.post(INGEST, json={"path": str(path), "full": full}, headers=headers)
    assert response.status_code == 202, response.get_json()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        read = stack.client.get(response.headers["Location"], headers=headers)
        job: dict[str, Any] = read.get_json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"ingest job did not finish; worker log: {stack.worker_log()}")


def test_a_rebuild_then_an_incremental_run(ingest_stack: Stack, admin: dict[str, str]) -> None:
    rebuilt = run_ingest(ingest_stack, admin, SAMPLE_TEXTBOOK, full=True)

    assert rebuilt["status"] == "completed", rebuilt
    assert (rebuilt["files_total"], rebuilt["files_seen"]) == (SAMPLE_FILES, SAMPLE_FILES)
    assert (rebuilt["files_changed"], rebuilt["files_failed"]) == (SAMPLE_FILES, 0)
    assert rebuilt["chunks_written"] > 0 and rebuilt["embeddings_computed"] > 0
    assert rebuilt["failures"] == [] and rebuilt["error_message"] is None
    assert rebuilt["collection"]
    assert rebuilt["started_at"] and rebuilt["completed_at"] and rebuilt["seconds"] >= 0

    again = run_ingest(ingest_stack, admin, SAMPLE_TEXTBOOK)

    assert again["status"] == "completed", again
    assert (again["files_seen"], again["files_skipped"], again["files_changed"]) == (4, 4, 0)
    assert (again["chunks_written"], again["embeddings_computed"]) == (0, 0)
    assert again["collection"] == rebuilt["collection"]


def test_a_bad_file_fails_alone(ingest_stack: Stack, admin: dict[str, str], tmp_path: Path) -> None:
    book = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))
    (book / "broken.md").write_bytes(b"# Broken\n\n\xff\xfe not UTF-8 \xc3\x28\n")

    job = run_ingest(ingest_stack, admin, book, full=True)

    assert job["status"] == "completed", job
    assert (job["files_seen"], job["files_changed"], job["files_failed"]) == (5, 4, 1)
    assert [failure["source"] for failure in job["failures"]] == ["broken.md"]
    assert "UTF-8" in job["failures"][0]["error"]
    assert job["chunks_written"] > 0


SECRET_WORD = "quokkasecret"
UNAVAILABLE = {
    "status": "failed",
    "error_code": "path_unavailable",
    "error_message": "the path is not a folder under the configured INGEST_ROOTS",
    "files_total": 0,
    "files_seen": 0,
    "chunks_written": 0,
    "failures": [],
    "collection": None,
}


@pytest.fixture
def outside(ingest_stack: Stack) -> Iterator[Path]:
    """A folder outside every ingest root, holding a page readers must never see."""
    folder = Path(tempfile.mkdtemp(prefix="bookchat-outside-")).resolve()
    roots = [root.resolve() for root in ingest_stack.settings.ingest_roots]
    assert not any(folder.is_relative_to(root) for root in roots), (folder, roots)
    (folder / "secret.md").write_text(f"# Secret\n\nThe {SECRET_WORD} is not in the book.\n")
    yield folder
    shutil.rmtree(folder)


def search(stack: Stack, headers: dict[str, str], query: str) -> list[dict[str, Any]]:
    """The passages POST /v1/search returns from the sample's book (tests add other books)."""
    body = {"query": query, "k": 10, "book": DEFAULT_BOOK}
    response = stack.client.post("/v1/search", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["data"])


def assert_index_intact(stack: Stack, headers: dict[str, str]) -> None:
    """Readers still find the sample book's passages, and nothing from outside it."""
    hits = search(stack, headers, "What is a ROS 2 node?")
    assert (hits[0]["source"], hits[0]["heading"]) == (NODES, "What is a node?")
    assert {hit["source"] for hit in search(stack, headers, "robot")} >= {NODES, VLA}
    assert not [hit for hit in search(stack, headers, SECRET_WORD) if SECRET_WORD in hit["text"]]


def test_every_unavailable_path_gives_one_answer_and_leaves_the_index(
    ingest_stack: Stack, admin: dict[str, str], outside: Path, tmp_path: Path
) -> None:
    (tmp_path / "linked").symlink_to(outside)
    paths = {
        "outside INGEST_ROOTS": [
            Path("../../../../../../../../etc"),  # from the worker's working folder
            SAMPLE_TEXTBOOK / ".." / "..",
            outside,
            Path("/etc"),
            tmp_path / "linked",
        ],
        "not found": [tmp_path / "no-such-book"],
        "not a folder": [SAMPLE_TEXTBOOK / "intro.md"],
    }
    jobs = []
    for reason, cases in paths.items():
        for path in cases:
            job = run_ingest(ingest_stack, admin, path)
            jobs.append(job)
            assert {k: job[k] for k in UNAVAILABLE} == UNAVAILABLE, (path, job)
            assert job["path"] == str(path)
            assert f"refused {str(path)!r}: {reason}" in ingest_stack.worker_log()

    assert len({tuple(sorted(job)) for job in jobs}) == 1  # the same body shape every time
    assert_index_intact(ingest_stack, ingest_stack.signup())


def test_a_folder_without_pages_fails_and_deletes_nothing(
    ingest_stack: Stack, admin: dict[str, str], tmp_path: Path
) -> None:
    reader = ingest_stack.signup()
    assert run_ingest(ingest_stack, admin, SAMPLE_TEXTBOOK)["status"] == "completed"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pages here")

    for full in (False, True):
        job = run_ingest(ingest_stack, admin, empty, full=full)

        assert (job["status"], job["error_code"]) == ("failed", "empty_source"), job
        assert "index was left as it was" in job["error_message"]
        assert (job["files_total"], job["files_deleted"]) == (0, 0)
        assert_index_intact(ingest_stack, reader)


def test_a_link_to_a_page_outside_is_reported_and_never_served(
    ingest_stack: Stack, admin: dict[str, str], outside: Path, tmp_path: Path
) -> None:
    book = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))
    (book / "leak.md").symlink_to(outside / "secret.md")
    (book / "01-ros2" / "shared").symlink_to(outside)

    job = run_ingest(ingest_stack, admin, book)

    assert job["status"] == "completed", job
    assert [f["source"] for f in job["failures"]] == ["01-ros2/shared", "leak.md"]
    assert {f["error"] for f in job["failures"]} == {
        "a symbolic link that leaves INGEST_ROOTS: not followed"
    }
    assert (job["files_total"], job["files_seen"], job["files_failed"]) == (6, 6, 2)
    assert_index_intact(ingest_stack, ingest_stack.signup())
