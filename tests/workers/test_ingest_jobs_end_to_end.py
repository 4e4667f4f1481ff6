"""Ingest jobs through the admin API and a real worker: counts, incremental runs, failures."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.stack import SAMPLE_TEXTBOOK, Stack

INGEST = "/v1/admin/ingest"
SAMPLE_FILES = 4


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


def test_a_missing_folder_fails_the_job(
    ingest_stack: Stack, admin: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-book"

    job = run_ingest(ingest_stack, admin, missing)

    assert job["status"] == "failed"
    assert job["error_message"] == f"folder not found: {missing}"
    assert job["completed_at"] is not None and job["files_seen"] == 0


def test_a_file_is_not_a_folder(ingest_stack: Stack, admin: dict[str, str]) -> None:
    page = SAMPLE_TEXTBOOK / "intro.md"

    job = run_ingest(ingest_stack, admin, page)

    assert (job["status"], job["error_message"]) == ("failed", f"not a folder: {page}")
