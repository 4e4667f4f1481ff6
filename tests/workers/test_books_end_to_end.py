"""Books through real processes: the start-up ingest of `bookchat dev`, the admin API and
`bookchat ingest` each touch their own book; search finds all of them; removal is explicit.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from cli.dev import DevSupervisor, StopRequest
from cli.processes import BOOKCHAT
from common.platform.models import AuditEntry
from tests.support.stack import REPO_ROOT, SAMPLE_TEXTBOOK, Stack, settings_env

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not

QUESTION = "What is a ROS 2 node?"
SECOND_URL = "https://second.example.org/docs/"


def bookchat(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `bookchat ARGS` as a user would, against the stack."""
    return subprocess.run([*BOOKCHAT, *args], env=settings_env(stack.settings), cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def follow(stack: Stack, headers: dict[str, str], location: str) -> dict[str, Any]:
    """Poll an ingest job's Location until it is finished."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = stack.client.get(location, headers=headers).get_json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"ingest job did not finish; worker log: {stack.worker_log()}")


def search(stack: Stack, headers: dict[str, str], book: str | None = None) -> list[dict[str, Any]]:
    """The passages POST /v1/search returns for the question (from one book, or all)."""
    body = {"query": QUESTION, "k": 20, **({"book": book} if book else {})}
    response = stack.client.post("/v1/search", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    results: list[dict[str, Any]] = response.get_json()["data"]
    return results


def start_up_ingest(stack: Stack) -> None:
    """What `bookchat dev` runs at start-up: TEXTBOOK_PATH's ingest job, through the worker."""
    with (stack.settings.var_dir / "books-test.lock").open("w") as lock:  # unused by the ingest
        assert DevSupervisor(stack.settings, StopRequest(), lock).index_textbook() is None


def books(stack: Stack, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    """GET /v1/admin/books, by name."""
    response = stack.client.get("/v1/admin/books", headers=headers)
    assert response.status_code == 200, response.get_json()
    return {book["name"]: book for book in response.get_json()["data"]}


def test_restarts_and_other_books_never_delete_a_book(
    ingest_stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stack, admin = ingest_stack, ingest_stack.admin()
    second = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "second"))
    third = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "third"))
    start_up_ingest(stack)

    body = {"path": str(second), "book": "second", "base_url": SECOND_URL}
    queued = stack.client.post("/v1/admin/ingest", json=body, headers=admin)
    assert queued.status_code == 202, queued.get_json()
    by_api = follow(stack, admin, queued.headers["Location"])
    by_cli = bookchat(stack, "ingest", str(third), "--book", "third", "--timeout", "120")
    for _ in range(2):  # two restarts of `bookchat dev`
        start_up_ingest(stack)

    assert (by_api["status"], by_api["files_deleted"], by_api["book"]) == ("completed", 0, "second")
    assert by_cli.returncode == 0, by_cli.stderr + by_cli.stdout
    assert "book: third" in by_cli.stdout and " 0 deleted" in by_cli.stdout
    assert "0 deleted" in capsys.readouterr().out  # the restarts deleted nothing
    listed = books(stack, admin)
    assert {"textbook", "second", "third"} <= set(listed)
    assert all(listed[name]["pages"] == 4 for name in ("textbook", "second", "third"))
    found = {passage["book"] for passage in search(stack, admin)}
    assert {"textbook", "second", "third"} <= found
    seconds = search(stack, admin, "second")
    assert seconds and all(p["book"] == "second" for p in seconds)
    assert all(p["url"].startswith(SECOND_URL) for p in seconds)
    assert not any(p["url"].startswith(SECOND_URL) for p in search(stack, admin, "textbook"))


def test_a_book_is_removed_only_on_purpose_and_audited(ingest_stack: Stack, tmp_path: Path) -> None:
    stack, admin = ingest_stack, ingest_stack.admin()
    doomed = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "doomed"))
    kept = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "kept"))
    for folder in (doomed, kept):
        queued = stack.client.post("/v1/admin/ingest", json={"path": str(folder)}, headers=admin)
        assert follow(stack, admin, queued.headers["Location"])["status"] == "completed"
    names = {book["path"]: name for name, book in books(stack, admin).items()}
    doomed_name, kept_name = names[str(doomed)], names[str(kept)]

    unknown = stack.client.delete("/v1/admin/books/no-such-book", headers=admin)
    removal = stack.client.delete(f"/v1/admin/books/{doomed_name}", headers=admin)

    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"].startswith("application/problem+json")
    assert removal.status_code == 202, removal.get_json()
    removed = follow(stack, admin, removal.headers["Location"])
    assert (removed["mode"], removed["status"], removed["files_deleted"]) == (
        "remove",
        "completed",
        4,
    )
    assert doomed_name not in books(stack, admin) and kept_name in books(stack, admin)
    assert search(stack, admin, doomed_name) == []
    assert search(stack, admin, kept_name)
    with stack.resources.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "book.remove")).all()
    outcomes = {(row.target_id, row.outcome) for row in rows}
    assert {(doomed_name, "ok"), ("no-such-book", "refused")} <= outcomes

    listed = bookchat(stack, "admin", "books", "--json")
    by_cli = bookchat(stack, "admin", "remove-book", kept_name, "--wait", "--timeout", "120")

    assert listed.returncode == 0, listed.stderr
    assert kept_name in {book["name"] for book in json.loads(listed.stdout)["data"]}
    assert by_cli.returncode == 0, by_cli.stderr + by_cli.stdout
    assert kept_name not in books(stack, admin)
    with stack.resources.sessions() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.target_id == kept_name)).all()
    assert [(row.action, row.actor.startswith("cli:")) for row in rows] == [("book.remove", True)]
