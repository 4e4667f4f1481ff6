"""The index routes: re-index one page, rebuild, read the index; jobs with progress, audited."""

from __future__ import annotations

import base64
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from common.book.books import DEFAULT_BOOK
from common.jobs.queue import INGEST_QUEUE
from common.platform.models import AuditEntry
from common.platform.redis_client import make_redis
from tests.support.stack import SAMPLE_TEXTBOOK, Stack
from tests.web.assertions import assert_problem

pytestmark = pytest.mark.slow  # end to end: `make test` runs it, `make test-fast` not

INDEX = "/v1/admin/index"
REBUILD = f"{INDEX}/rebuild"
DOCUMENTS = f"{INDEX}/documents"
INGEST = "/v1/admin/ingest"
NODES = "01-ros2/nodes-and-topics.md"
SIMULATION = "02-simulation/gazebo-and-digital-twins.mdx"
VLA = "03-vla/vision-language-action.md"
FIELD_NOTES = "\n## Field notes\n\nWalking robots log every fall in the gecko journal.\n"


def audit_entries(stack: Stack, action: str) -> list[AuditEntry]:
    """Every audit row of one action, oldest first, read from the database."""
    with stack.resources.sessions() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        return list(session.scalars(query).all())


def audited_job(stack: Stack, action: str, job_id: str) -> AuditEntry:
    """The one audit row of an action that queued this job."""
    [entry] = [e for e in audit_entries(stack, action) if e.detail.get("job_id") == job_id]
    return entry


def queued_ingest_kwargs(stack: Stack) -> list[dict[str, Any]]:
    """The keyword arguments of every ingest task waiting in the queue."""
    raw: Any = make_redis(stack.settings).lrange(INGEST_QUEUE, 0, -1)
    return [json.loads(base64.b64decode(json.loads(item)["body"]))[1] for item in raw]


def accepted(stack: Stack, url: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    """POST an index operation, check the 202, and return its Location."""
    response = stack.client.post(url, json=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    job = response.get_json()
    assert response.headers["Location"] == f"{INGEST}/{job['id']}"
    assert job["object"] == "ingest.job" and job["status"] == "queued"
    return str(response.headers["Location"])


def finished(stack: Stack, headers: dict[str, str], location: str) -> dict[str, Any]:
    """Poll a job's Location until it is finished."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job: dict[str, Any] = stack.client.get(location, headers=headers).get_json()
        if job["status"] in ("completed", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"the job did not finish; worker log: {stack.worker_log()}")


def passages(stack: Stack, query: str, prefix: str | None = None) -> list[dict[str, Any]]:
    """What a reader's search of the sample's book returns (other tests add books of their own)."""
    body = {"query": query, "k": 5, "path_prefix": prefix, "book": DEFAULT_BOOK}
    response = stack.client.post("/v1/search", json=body, headers=stack.signup())
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["data"])


# Without a worker


@pytest.fixture(scope="module")
def admin(idle_stack: Stack) -> dict[str, str]:
    """An administrator of the stack without a worker."""
    return idle_stack.admin()


def test_before_any_ingest_the_index_is_unknown(idle_stack: Stack, admin: dict[str, str]) -> None:
    response = idle_stack.client.get(INDEX, headers=admin)

    assert response.status_code == 200
    assert response.get_json() == {
        "object": "index",
        "alias": "textbook",
        "collection": None,
        "embedder": None,
        "dimension": None,
        "version": None,
        "documents": None,
        "folder": None,
        "last_ingest": None,
    }


@pytest.mark.parametrize(
    ("url", "body", "action"),
    [(REBUILD, {}, "index.rebuild"), (DOCUMENTS, {"source": NODES}, "index.reindex_document")],
)
def test_without_a_completed_ingest_there_is_nothing_to_redo(
    idle_stack: Stack, admin: dict[str, str], url: str, body: dict[str, Any], action: str
) -> None:
    before = len(audit_entries(idle_stack, action))

    response = idle_stack.client.post(url, json=body, headers=admin)

    assert_problem(response, 409, "no_index")
    [*_, entry] = audit_entries(idle_stack, action)
    assert len(audit_entries(idle_stack, action)) == before + 1
    assert (entry.outcome, entry.detail["error"]) == ("refused", "no_index")


def test_a_rebuild_of_a_named_folder_is_queued_as_a_full_run(
    idle_stack: Stack, admin: dict[str, str]
) -> None:
    location = accepted(idle_stack, REBUILD, {"path": "/srv/book"}, admin)

    job = idle_stack.client.get(location, headers=admin).get_json()
    assert (job["mode"], job["full"], job["path"], job["document"]) == (
        "full",
        True,
        "/srv/book",
        None,
    )
    assert {"full": True, "run_id": job["id"]} in queued_ingest_kwargs(idle_stack)
    entry = audited_job(idle_stack, "index.rebuild", job["id"])
    assert (entry.outcome, entry.target_kind, entry.detail["path"]) == ("ok", "index", "/srv/book")


@pytest.mark.parametrize(
    ("url", "body"),
    [
        (DOCUMENTS, {}),
        (DOCUMENTS, {"source": ""}),
        (DOCUMENTS, {"source": "../outside.md"}),
        (DOCUMENTS, {"source": "01-ros2/../../outside.md"}),
        (DOCUMENTS, {"source": "/etc/passwd.md"}),
        (DOCUMENTS, {"source": "notes.txt"}),
        (DOCUMENTS, {"source": "_partial.md"}),
        (DOCUMENTS, {"source": NODES, "extra": 1}),
        (REBUILD, {"path": ""}),
        (REBUILD, {"path": "/srv/book", "full": False}),
    ],
)
def test_an_invalid_body_is_422(
    idle_stack: Stack, admin: dict[str, str], url: str, body: dict[str, Any]
) -> None:
    assert_problem(idle_stack.client.post(url, json=body, headers=admin), 422, "validation_error")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", INDEX, None),
        ("post", REBUILD, {}),
        ("post", DOCUMENTS, {"source": NODES}),
        ("post", DOCUMENTS, {"source": "../x"}),  # refused before the body is validated
    ],
)
def test_readers_are_forbidden_and_strangers_unauthorized(
    idle_stack: Stack, method: str, url: str, body: dict[str, Any] | None
) -> None:
    call = getattr(idle_stack.client, method)

    assert_problem(call(url, json=body, headers=idle_stack.signup()), 403, "forbidden")
    assert_problem(call(url, json=body), 401, "unauthorized")


# With a worker


@pytest.fixture
def book(ingest_stack: Stack, tmp_path: Path) -> Iterator[Path]:
    """A copy of the sample book, ingested as its book's folder; the sample folder afterwards."""
    copy = Path(shutil.copytree(SAMPLE_TEXTBOOK, tmp_path / "book"))
    job = ingest_stack.ingest(copy, book=DEFAULT_BOOK)
    assert job["status"] == "completed", job
    yield copy
    restored = ingest_stack.ingest(SAMPLE_TEXTBOOK, book=DEFAULT_BOOK)
    assert restored["status"] == "completed", restored


def test_one_document_is_re_indexed_and_a_gone_one_removed(ingest_stack: Stack, book: Path) -> None:
    admin = ingest_stack.admin()
    before = ingest_stack.client.get(INDEX, headers=admin).get_json()
    with (book / VLA).open("a", encoding="utf-8") as page:
        page.write(FIELD_NOTES)

    job = finished(ingest_stack, admin, accepted(ingest_stack, DOCUMENTS, {"source": VLA}, admin))

    assert job["status"] == "completed", job
    assert (job["mode"], job["document"], job["path"]) == ("document", VLA, str(book))
    assert (job["files_total"], job["files_seen"], job["files_changed"]) == (1, 1, 1)
    assert job["chunks_written"] == job["embeddings_computed"] > 1  # every chunk re-embedded
    [hit] = passages(ingest_stack, "gecko journal walking robots", VLA)[:1]
    assert (hit["source"], hit["heading"]) == (VLA, "Field notes")
    entry = audited_job(ingest_stack, "index.reindex_document", job["id"])
    assert (entry.outcome, entry.target_kind, entry.target_id) == ("ok", "document", VLA)
    assert entry.detail["path"] == str(book)
    # The index is still the folder run's: same collection, same last folder ingest.
    assert ingest_stack.client.get(INDEX, headers=admin).get_json() == before

    (book / SIMULATION).unlink()
    body = {"source": SIMULATION}
    gone = finished(ingest_stack, admin, accepted(ingest_stack, DOCUMENTS, body, admin))

    assert (gone["status"], gone["files_deleted"], gone["failures"]) == ("completed", 1, [])
    assert passages(ingest_stack, "Gazebo digital twin", "02-simulation") == []


def test_a_rebuild_makes_a_new_collection_of_the_last_folder(
    ingest_stack: Stack, book: Path
) -> None:
    admin = ingest_stack.admin()
    before = ingest_stack.client.get(INDEX, headers=admin).get_json()
    (book / SIMULATION).unlink()

    job = finished(ingest_stack, admin, accepted(ingest_stack, REBUILD, {}, admin))

    assert job["status"] == "completed", job
    assert (job["mode"], job["full"], job["path"]) == ("full", True, str(book))
    assert job["files_total"] == job["files_seen"] == job["files_changed"] == 3
    assert job["chunks_written"] == job["embeddings_computed"] > 0
    index = ingest_stack.client.get(INDEX, headers=admin).get_json()
    assert index["collection"] == job["collection"] != before["collection"]
    assert (index["embedder"], index["dimension"]) == ("minilm-l6-v2-int8", 384)
    assert index["version"] == before["version"] + 1
    assert index["folder"] == str(book)
    books = ingest_stack.client.get("/v1/admin/books", headers=admin).get_json()["data"]
    assert [b["pages"] for b in books if b["name"] == DEFAULT_BOOK] == [3]
    assert index["last_ingest"]["id"] == job["id"] and index["last_ingest"]["mode"] == "full"
    assert passages(ingest_stack, "What is a ROS 2 node?")[0]["source"] == NODES
    assert passages(ingest_stack, "Gazebo digital twin", "02-simulation") == []
    entry = audited_job(ingest_stack, "index.rebuild", job["id"])
    assert (entry.outcome, entry.detail["path"]) == ("ok", str(book))
    me = ingest_stack.client.get("/v1/me", headers=admin).get_json()
    assert entry.actor_id == uuid.UUID(me["id"])
