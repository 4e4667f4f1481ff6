"""Model answers through the real OpenAI SDK: honest citations, and cut-off answers marked."""

from __future__ import annotations

import subprocess
import uuid

import pytest

from bench.openai_sim import SimulatorHandle
from cli.ask import CUT_OFF_EXIT
from common.jobs.events import JobEvents, stream_key
from common.llm.citations import unresolved_markers
from common.platform.redis_client import make_redis
from tests.cli.test_main import BOOKCHAT
from tests.support.stack import REPO_ROOT, Stack, settings_env


def test_citations_are_what_the_model_cited_and_the_rest_are_sources(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is a ROS 2 node?")["id"]

    job = openai_stack.wait(headers, job_id)

    assert job["status"] == "completed", job
    # The simulator quotes passages [1] and [2] and cites them; the others were only retrieved.
    assert [c["n"] for c in job["citations"]] == [1, 2]
    assert unresolved_markers(job["answer"], job["citations"]) == []
    assert job["sources"] and all(s["n"] > 2 for s in job["sources"])
    assert job["incomplete_details"] is None
    events = JobEvents(make_redis(openai_stack.settings)).read(uuid.UUID(job_id))
    kinds = [e.event for e in events]
    assert kinds[-2:] == ["citations", "done"]
    assert events[-2].data == {"citations": job["citations"], "sources": job["sources"]}


@pytest.mark.parametrize(
    ("finish_reason", "reason"), [("length", "max_output_tokens"), ("content_filter",) * 2]
)
def test_a_cut_off_answer_is_incomplete_and_keeps_its_text(
    openai_stack: Stack, sim: SimulatorHandle, finish_reason: str, reason: str
) -> None:
    sim.update_config(finish_reason=finish_reason)
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is a ROS 2 topic?")["id"]

    job = openai_stack.wait(headers, job_id)

    assert job["status"] == "incomplete", job
    assert job["incomplete_details"] == {"reason": reason}
    assert job["answer"] and job["error"] is None
    assert unresolved_markers(job["answer"], job["citations"]) == []
    events = JobEvents(make_redis(openai_stack.settings)).read(uuid.UUID(job_id))
    streamed = "".join(e.data["text"] for e in events if e.event == "delta")
    assert streamed == job["answer"]
    ending = events[-1]
    assert ending.event == "done"
    assert ending.data["status"] == "incomplete"
    assert ending.data["incomplete_details"] == {"reason": reason}
    assert [e.event for e in events].count("done") == 1


def test_an_incomplete_answer_replays_from_its_row_as_incomplete(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(finish_reason="length")
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is URDF?")["id"]
    openai_stack.wait(headers, job_id)
    JobEvents(make_redis(openai_stack.settings)).client.delete(stream_key(uuid.UUID(job_id)))

    body = openai_stack.client.get(
        f"/v1/chat/jobs/{job_id}/events", headers={**headers, "Accept": "text/event-stream"}
    ).get_data(as_text=True)

    assert "event: done" in body
    assert '"status": "incomplete"' in body
    assert '"incomplete_details": {"reason": "max_output_tokens"}' in body


def test_bookchat_ask_says_the_answer_was_cut_off(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(finish_reason="length")

    result = subprocess.run(
        [*BOOKCHAT, "ask", "What is a ROS 2 node?", "--timeout", "60"],
        env=settings_env(openai_stack.settings), cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip

    assert result.returncode == CUT_OFF_EXIT, result.stderr
    assert "The answer was cut off" in result.stderr
    # Cut before its first marker, the answer cites nothing: every passage is only a source.
    assert result.stdout.startswith("According to the passages")
    assert "[1]" not in result.stdout
    assert "5 more passages were retrieved but not cited" in result.stdout


def test_incomplete_jobs_are_finished_for_admins_and_metrics(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    sim.update_config(finish_reason="content_filter")
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is Gazebo?")["id"]
    assert openai_stack.wait(headers, job_id)["status"] == "incomplete"
    admin = openai_stack.admin()

    listed = openai_stack.client.get("/v1/admin/jobs?status=incomplete", headers=admin)
    detail = openai_stack.client.get(f"/v1/admin/jobs/{job_id}", headers=admin).get_json()
    metrics = openai_stack.client.get("/metrics").get_data(as_text=True)

    assert listed.status_code == 200
    assert job_id in [job["id"] for job in listed.get_json()["data"]]
    assert detail["history"][-1]["outcome"] == "incomplete"
    assert detail["completed_at"] is not None
    assert 'bookchat_jobs{kind="chat",status="incomplete"}' in metrics
