"""Chapter jobs end to end: the real worker and the OpenAI SDK talking to the simulator."""

from __future__ import annotations

import re
import uuid
from typing import Any

from bench.openai_sim import SimulatorHandle
from bench.openai_sim.content import DROP_PLACEHOLDER_MARK, PERSONALIZED_NOTE, URDU_PREFIX
from common.book.ingest.documents import parse_markdown
from common.jobs.events import JobEvents
from common.platform.redis_client import make_redis
from tests.support.stack import SAMPLE_TEXTBOOK, Stack

FENCE = re.compile(r"^[ \t>]*(`{3,}|~{3,}).*?^[ \t>]*\1[ \t]*$", re.M | re.S)
LINK_URL = re.compile(r"\]\(([^)\s]+)")


def _model_calls(sim: SimulatorHandle) -> int:
    return sum(1 for r in sim.log() if r["endpoint"] == "/v1/chat/completions")


def _chapter_job(stack: Stack, headers: dict[str, str], task: str, **body: Any) -> Any:
    return stack.client.post(f"/v1/chapters/{task}", json=body, headers=headers)


def _save_profile(stack: Stack, headers: dict[str, str], **profile: Any) -> None:
    response = stack.client.put("/v1/me/profile", json=profile, headers=headers)
    assert response.status_code == 200, response.get_json()


def test_a_translated_chapter_keeps_code_links_and_anchors_and_is_cached(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    source = "02-simulation/gazebo-and-digital-twins.mdx"
    original = (SAMPLE_TEXTBOOK / source).read_text(encoding="utf-8")
    first = openai_stack.signup("first")
    queued = _chapter_job(openai_stack, first, "translate", source=source, language="ur")
    assert queued.status_code == 202, queued.get_json()

    job = openai_stack.wait(first, queued.get_json()["id"])

    assert job["status"] == "completed", (job, openai_stack.worker_log())
    answer = job["answer"]
    assert URDU_PREFIX in answer and "⟦" not in answer
    for block in (m.group(0) for m in FENCE.finditer(original)):
        assert block in answer
    for url in LINK_URL.findall(FENCE.sub("", original)):
        assert f"]({url}" in answer
    for section in parse_markdown(original, source).sections:
        if section.anchor:
            assert f"{{#{section.anchor}}}" in answer
    assert answer.startswith(original.split("\n\n", 1)[0])  # the front matter, untouched
    assert job["model"] == "gpt-4o-mini" and job["usage"]["completion_tokens"] > 0
    assert job["metrics"]["llm_calls"] == 1
    # The stream carried the restored text, not placeholders.
    deltas = [
        e.data["text"]
        for e in JobEvents(make_redis(openai_stack.settings)).read(uuid.UUID(job["id"]))
        if e.event == "delta"
    ]
    assert "".join(deltas) == answer
    assert _model_calls(sim) == 1

    second = openai_stack.signup("second")
    cached = _chapter_job(openai_stack, second, "translate", source=source, language="ur")

    assert cached.status_code == 200, cached.get_json()
    copy = cached.get_json()
    assert copy["status"] == "completed" and copy["answer"] == answer
    assert copy["id"] != job["id"] and copy["metrics"]["cached"] is True
    assert _model_calls(sim) == 1  # no new model call
    assert openai_stack.client.get(f"/v1/chat/jobs/{copy['id']}", headers=first).status_code == 404


def test_a_personalized_chapter_is_cached_per_profile(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    source = "01-ros2/nodes-and-topics.md"
    goal = f"build a rover {uuid.uuid4().hex[:8]}"  # a profile no earlier test used
    readers = [openai_stack.signup(f"reader{n}") for n in range(3)]
    for headers in readers[:2]:
        _save_profile(openai_stack, headers, software_level="beginner", learning_goal=goal)
    _save_profile(openai_stack, readers[2], software_level="advanced", learning_goal=goal)

    queued = _chapter_job(openai_stack, readers[0], "personalize", source=source)
    assert queued.status_code == 202, queued.get_json()
    job = openai_stack.wait(readers[0], queued.get_json()["id"])
    assert job["status"] == "completed", (job, openai_stack.worker_log())
    assert job["answer"].rstrip().endswith(PERSONALIZED_NOTE)
    assert set(job["profile_applied"]) == {"software_level", "learning_goal"}
    prompts = [r for r in sim.log() if r["endpoint"] == "/v1/chat/completions"]
    assert len(prompts) == 1

    same = _chapter_job(openai_stack, readers[1], "personalize", source=source)
    assert same.status_code == 200 and same.get_json()["answer"] == job["answer"]
    assert _model_calls(sim) == 1

    different = _chapter_job(openai_stack, readers[2], "personalize", source=source)
    assert different.status_code == 202
    assert openai_stack.wait(readers[2], different.get_json()["id"])["status"] == "completed"
    assert _model_calls(sim) == 2


def test_a_rewrite_that_loses_markup_fails_and_is_not_cached(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    source = "03-vla/vision-language-action.md"
    # The reader's goal reaches the prompt; the simulator's fault switch drops a placeholder.
    goal = f"learn VLA {DROP_PLACEHOLDER_MARK} {uuid.uuid4().hex[:8]}"
    readers = [openai_stack.signup(f"lost{n}") for n in range(2)]
    for headers in readers:
        _save_profile(openai_stack, headers, learning_goal=goal)

    queued = _chapter_job(openai_stack, readers[0], "personalize", source=source)
    job = openai_stack.wait(readers[0], queued.get_json()["id"])

    assert job["status"] == "failed", job
    assert job["error"]["code"] == "chapter_markup_lost"
    assert "missing" in job["error"]["message"]
    assert job["answer"] is None
    assert _model_calls(sim) == 1
    # Nothing was cached: the next reader with the same profile gets a fresh job, which calls
    # the model again. Wait for it: left running, its call would land in the next test's log.
    again = _chapter_job(openai_stack, readers[1], "personalize", source=source)
    assert again.status_code == 202
    retried = openai_stack.wait(readers[1], again.get_json()["id"])
    assert retried["status"] == "failed" and retried["error"]["code"] == "chapter_markup_lost"
    assert _model_calls(sim) == 2
