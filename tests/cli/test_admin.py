"""`bookchat create-admin` and `bookchat admin ...`, run by an operator against a real stack."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cli.processes import BOOKCHAT, worker_command
from common.jobs.chat_jobs import submit_chat_job
from common.jobs.schemas import ChatJobCreate
from common.jobs.worker_heartbeats import live_workers
from common.platform.db import session_scope
from common.platform.models import ChatJob, JobStatus, utcnow
from common.platform.redis_client import make_redis
from tests.support.cli import clean_env
from tests.support.stack import REPO_ROOT, TEST_PASSWORD, Stack, settings_env

pytestmark = (
    pytest.mark.slow
)  # end to end through real processes: `make test` runs it, `make test-fast` not

PASSWORD = "a long enough password"
QUESTION = "What is a ROS 2 node?"


def run_cli(
    stack: Stack, *args: str, stdin: str | None = None, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run `bookchat ARGS` with the stack's settings; no terminal on stdin."""
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(
        [*BOOKCHAT, *args],
        env={**settings_env(stack.settings), **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        **feed,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """The output of a command that must have succeeded."""
    assert result.returncode == 0, result.stderr
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one-line error of a command that must have been refused with this exit code."""
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("bookchat "), result.stderr
    return result.stderr


def login(stack: Stack, email: str, password: str) -> dict[str, str]:
    """An Authorization header from the API's login."""
    response = stack.client.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return {"Authorization": f"Bearer {response.get_json()['access_token']}"}


def reader(stack: Stack) -> tuple[dict[str, str], uuid.UUID]:
    """A new reader's Authorization header and account id."""
    headers = stack.signup()
    return headers, uuid.UUID(stack.client.get("/v1/me", headers=headers).get_json()["id"])


def audit_rows(stack: Stack, **query: str) -> list[dict[str, Any]]:
    """Audit entries as the API lists them."""
    response = stack.client.get("/v1/admin/audit", query_string=query, headers=stack.admin())
    assert response.status_code == 200, response.get_json()
    return list(response.get_json()["data"])


def waiting_job(stack: Stack, user_id: uuid.UUID) -> uuid.UUID:
    """A queued chat job that is not due for an hour (as one waiting for model capacity)."""
    with session_scope(stack.resources.sessions) as session:
        job, _ = submit_chat_job(session, user_id, ChatJobCreate(message=QUESTION), None)
        job.enqueued_at, job.due_at = None, utcnow() + timedelta(hours=1)
    return job.id


def failed_job(stack: Stack, user_id: uuid.UUID, code: str = "llm_unavailable") -> uuid.UUID:
    """A chat job that failed for want of the model: a dead letter."""
    with session_scope(stack.resources.sessions) as session:
        job, _ = submit_chat_job(session, user_id, ChatJobCreate(message=QUESTION), None)
        job.status, job.error_code, job.error_message = JobStatus.FAILED.value, code, "no model"
        job.enqueued_at, job.completed_at = None, utcnow()
    return job.id


@pytest.fixture(scope="module")
def completed_job(stack: Stack) -> tuple[dict[str, str], uuid.UUID, dict[str, Any]]:
    """A reader, their id, and a chat job the worker answered."""
    headers, user_id = reader(stack)
    job = stack.wait(headers, stack.submit(headers, message=QUESTION)["id"])
    assert job["status"] == "completed", job
    return headers, user_id, job


def test_create_admin_reads_the_password_from_stdin(stack: Stack) -> None:
    email = f"Ops-{uuid.uuid4().hex[:8]}@Example.com"

    out = ok(run_cli(stack, "create-admin", email, "--name", "Ops", stdin=PASSWORD + "\n"))

    assert out.startswith(f"created admin {email.lower()} (")
    headers = login(stack, email, PASSWORD)
    assert stack.client.get("/v1/me", headers=headers).get_json()["role"] == "admin"
    assert stack.client.get("/v1/admin/queues", headers=headers).status_code == 200
    [row] = audit_rows(stack, action="admin.create", target_id=out.split("(")[1].rstrip(")\n"))
    assert row["actor"].startswith("cli:") and row["actor_id"] is None
    assert (row["outcome"], row["detail"]) == ("ok", {"email": email.lower()})


def test_create_admin_promotes_an_account_without_asking_a_password(stack: Stack) -> None:
    before, user_id = reader(stack)
    email = stack.client.get("/v1/me", headers=before).get_json()["email"]

    out = ok(run_cli(stack, "create-admin", email))

    assert out == f"{email} is now an admin (was user), effective at once\n"
    # The role is read from the account on every request: the token from before works too.
    assert stack.client.get("/v1/admin/queues", headers=before).status_code == 200
    fresh = login(stack, email, TEST_PASSWORD)
    assert stack.client.get("/v1/admin/queues", headers=fresh).status_code == 200
    [row] = audit_rows(stack, action="user.role", target_id=str(user_id))
    assert row["detail"] == {"role": "admin", "email": email, "previous": "user"}


@pytest.mark.parametrize(
    ("email", "password", "message"),
    [
        ("short-{}@example.com", "short", "invalid password: String should have at least 8"),
        ("not-an-email-{}", PASSWORD, "invalid EMAIL"),
        ("empty-{}@example.com", "", "invalid password"),
    ],
)
def test_create_admin_validates_as_sign_up_does(
    stack: Stack, email: str, password: str, message: str
) -> None:
    address = email.format(uuid.uuid4().hex[:8])

    error = refused(run_cli(stack, "create-admin", address, stdin=password + "\n"))

    assert message in error
    response = stack.client.post("/v1/auth/login", json={"email": address, "password": password})
    assert response.status_code in (401, 422)


def test_admin_jobs_lists_a_job_as_the_api_does(
    stack: Stack, completed_job: tuple[dict[str, str], uuid.UUID, dict[str, Any]]
) -> None:
    _headers, user_id, job = completed_job

    printed = ok(run_cli(stack, "admin", "jobs", "--json", "--user", str(user_id)))
    table = ok(run_cli(stack, "admin", "jobs", "--user", str(user_id), "--kind", "chat"))

    api = stack.client.get(f"/v1/admin/jobs?user={user_id}", headers=stack.admin())
    assert printed.strip() and json.loads(printed) == api.get_json()
    assert [row["id"] for row in api.get_json()["data"]] == [job["id"]]
    header, line = table.splitlines()
    assert header.split() == ["ID", "KIND", "STATUS", "ATTEMPTS", "AGE", "ERROR", "SUMMARY"]
    assert line.split()[:4] == [job["id"], "chat", "completed", "1"]
    assert line.index("chat") == header.index("KIND")  # aligned


def test_admin_show_prints_the_job_and_its_attempts(
    stack: Stack, completed_job: tuple[dict[str, str], uuid.UUID, dict[str, Any]]
) -> None:
    _headers, _user_id, job = completed_job

    out = ok(run_cli(stack, "admin", "show", job["id"]))
    printed = ok(run_cli(stack, "admin", "show", job["id"], "--json"))

    assert out.startswith(f"chat job {job['id']}\n  status     completed\n")
    assert f"  summary    {QUESTION}\n" in out
    attempts = out.split("\n\n")[1].splitlines()
    assert attempts[0].split() == ["ATTEMPT", "WORKER", "STARTED", "ENDED", "OUTCOME", "ERROR"]
    assert attempts[1].startswith("1 ") and " completed " in attempts[1]
    api = stack.client.get(f"/v1/admin/jobs/{job['id']}", headers=stack.admin()).get_json()
    assert json.loads(printed) == api
    assert [a["outcome"] for a in api["history"]] == ["completed"]


def test_cancel_then_retry_a_queued_job_runs_it_to_completion(stack: Stack) -> None:
    headers, user_id = reader(stack)
    job_id = waiting_job(stack, user_id)

    cancelled = ok(run_cli(stack, "admin", "cancel", str(job_id)))
    job = stack.client.get(f"/v1/chat/jobs/{job_id}", headers=headers).get_json()
    assert (cancelled, job["status"]) == (f"chat job {job_id} cancelled\n", "cancelled")
    retried = ok(run_cli(stack, "admin", "retry", str(job_id)))

    assert retried == f"chat job {job_id} is queued again\n"
    finished = stack.wait(headers, str(job_id))
    assert finished["status"] == "completed" and finished["answer"], finished
    events = [(e.event, e.data) for e in stack.resources.events.read(job_id)]
    # The retry started a fresh stream: the cancel's `done` is gone.
    assert events[0] == ("status", {"status": "queued", "reason": "retried by an operator"})
    assert [kind for kind, _ in events].count("done") == 1
    assert events[-1][0] == "done" and events[-1][1]["status"] == "completed"
    rows = audit_rows(stack, target_id=str(job_id))
    assert [(r["action"], r["outcome"], r["detail"]) for r in rows] == [
        ("job.retry", "ok", {"kind": "chat"}),
        ("job.cancel", "ok", {"kind": "chat"}),
    ]
    assert all(r["actor"].startswith("cli:") for r in rows)


def test_retrying_a_completed_job_is_refused_and_audited(
    stack: Stack, completed_job: tuple[dict[str, str], uuid.UUID, dict[str, Any]]
) -> None:
    job_id = completed_job[2]["id"]

    error = refused(run_cli(stack, "admin", "retry", job_id))

    assert f"job {job_id} is completed; only failed or cancelled jobs retry" in error
    [row] = audit_rows(stack, action="job.retry", target_id=job_id)
    assert (row["outcome"], row["detail"]) == ("refused", {"error": "job_not_retryable"})


def test_admin_audit_shows_the_rows(stack: Stack) -> None:
    _headers, user_id = reader(stack)
    job_id = str(waiting_job(stack, user_id))
    ok(run_cli(stack, "admin", "cancel", job_id))

    out = ok(run_cli(stack, "admin", "audit", "--action", "job.cancel", "--limit", "5"))
    printed = ok(run_cli(stack, "admin", "audit", "--target", job_id, "--json"))

    header, first = out.splitlines()[:2]
    assert header.split() == ["ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME", "DETAIL"]
    _id, _date, _time, actor, *rest = first.split()
    assert actor.startswith("cli:") and rest[:3] == ["job.cancel", job_id, "ok"]
    assert json.loads(printed)["data"] == audit_rows(stack, target_id=job_id)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("show", "not-a-uuid"), "'not-a-uuid' is not a job id"),
        (("show", "00000000-0000-0000-0000-000000000000"), "not found"),
        (("cancel", "00000000-0000-0000-0000-000000000000"), "not found"),
        (("jobs", "--status", "stuck"), "invalid --status: Input should be 'queued'"),
        (("jobs", "--since", "yesterday"), "invalid --since"),
        (("jobs", "--limit", "0"), "invalid --limit"),
        (("dlq", "--user", "me"), "invalid --user"),
        (("audit", "--outcome", "great"), "invalid --outcome"),
        (("retry",), "give a job ID, or --failed"),
        (("retry", "00000000-0000-0000-0000-000000000000", "--since", "1h"), "go with --failed"),
    ],
)
def test_bad_ids_and_filters_are_one_line_errors(
    stack: Stack, args: tuple[str, ...], message: str
) -> None:
    assert message in refused(run_cli(stack, "admin", *args))


def test_without_bookchat_commands_exit_2_and_create_nothing(tmp_path: Path) -> None:
    env = clean_env(VAR_DIR=str(tmp_path / "var"), ENVIRONMENT="test")
    for args in (["admin", "jobs"], ["admin", "queues"], ["create-admin", "a@example.com"]):
        result = subprocess.run([*BOOKCHAT, *args], env=env, cwd=tmp_path, capture_output=True,
                                text=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
        error = refused(result, 2)
        assert "there is no bookchat database" in error and "make dev" in error
    assert list(tmp_path.iterdir()) == []


def test_unreachable_redis_or_database_exit_2(stack: Stack) -> None:
    redis_down = run_cli(stack, "admin", "queues", REDIS_URL="redis://127.0.0.1:1/0")
    database_down = run_cli(
        stack, "admin", "jobs", DATABASE_URL="postgresql://postgres@127.0.0.1:1/test"
    )

    assert "cannot reach Redis at redis://127.0.0.1:1/0" in refused(redis_down, 2)
    assert "cannot reach the database at postgresql://" in refused(database_down, 2)


def test_bulk_retry_needs_a_reprocess_worker(idle_stack: Stack) -> None:
    error = refused(run_cli(idle_stack, "admin", "retry", "--failed", "--since", "1h"), 2)

    assert "no worker consumes the `reprocess` queue" in error


@pytest.fixture
def reprocess_worker(stack: Stack) -> Iterator[None]:
    """A worker of the reprocess queue next to the stack's chat and ingest worker."""
    hostname = f"reprocess-{uuid.uuid4().hex[:8]}@bookchat"
    log_path = stack.settings.var_dir / f"{hostname}.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            worker_command(["reprocess"], 1, hostname, "INFO"),
            env=settings_env(stack.settings),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
        )
    client = make_redis(stack.settings)
    deadline = time.monotonic() + 60
    while not any(w["name"] == hostname for w in live_workers(client)):
        assert worker.poll() is None and time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    yield
    worker.terminate()
    try:
        worker.wait(timeout=15)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


@pytest.mark.usefixtures("reprocess_worker")
def test_bulk_retry_of_dead_letters_waits_and_reports(stack: Stack) -> None:
    headers, user_id = reader(stack)
    job_id = failed_job(stack, user_id)
    failed_job(stack, user_id, code="invalid_request")  # not what the filter asks for
    narrow = ["--since", "1h", "--error", "llm_unavailable", "--kind", "chat"]
    narrow += ["--user", str(user_id)]

    dry = ok(run_cli(stack, "admin", "retry", "--failed", *narrow, "--dry-run", "--wait"))
    assert dry.splitlines()[1] == "dry run completed: matched 1, would requeue 1, skipped 0"
    with session_scope(stack.resources.sessions) as session:
        assert session.get(ChatJob, job_id).status == "failed"  # type: ignore[union-attr]
    out = ok(run_cli(stack, "admin", "retry", "--failed", *narrow, "--wait"))

    first, last = out.splitlines()
    assert first.startswith("bulk retry queued as reprocess job ")
    assert last == "bulk retry completed: matched 1, requeued 1, skipped 0"
    assert stack.wait(headers, str(job_id))["status"] == "completed"
    reprocess_id = first.rsplit(" ", 1)[1]
    [row] = audit_rows(stack, action="jobs.bulk_retry", limit="1")
    assert row["detail"]["reprocess_job"] == reprocess_id
    assert (row["outcome"], row["detail"]["filters"]["user"]) == ("ok", str(user_id))
