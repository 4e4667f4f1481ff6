"""GET /metrics: valid Prometheus text with HELP on every family, from every local process."""

from __future__ import annotations

import re
import uuid

from prometheus_client.parser import text_string_to_metric_families

from bench.openai_sim import SimulatorHandle
from tests.support.stack import Stack

RAW_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-")


def scrape(stack: Stack) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Every sample of /metrics by name and sorted labels (after checking the text parses)."""
    response = stack.client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    text = response.get_data(as_text=True)
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    typed = set(re.findall(r"^# TYPE (\S+)", text, re.MULTILINE))
    helped = set(re.findall(r"^# HELP (\S+)", text, re.MULTILINE))
    assert typed and typed <= helped
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    """One sample's value, 0 when absent."""
    return samples.get(name, {}).get(tuple(sorted(labels.items())), 0.0)


def test_metrics_parse_and_every_family_has_help(stack: Stack) -> None:
    samples = scrape(stack)
    for name in (
        "bookchat_jobs",
        "bookchat_queue_depth",
        "bookchat_queue_oldest_age_seconds",
        "bookchat_http_open_streams",
        "bookchat_llm_prompt_tokens_total",
        "bookchat_llm_completion_tokens_total",
        "bookchat_llm_limiter_wait_seconds_total",
    ):
        assert name in samples, name
    for queue in ("chat", "ingest", "reprocess"):
        assert ("queue", queue) in dict.fromkeys(
            pair for key in samples["bookchat_queue_depth"] for pair in key
        )


def test_http_histogram_is_labelled_by_route_not_path(stack: Stack) -> None:
    headers = stack.signup()
    for _ in range(2):
        missing = stack.client.get(f"/v1/chat/jobs/{uuid.uuid4()}", headers=headers)
        assert missing.status_code == 404
    stack.client.get("/healthz")

    samples = scrape(stack)

    route = "/v1/chat/jobs/<uuid:job_id>"
    count = value(
        samples,
        "bookchat_http_request_duration_seconds_count",
        method="GET",
        route=route,
        status="404",
    )
    assert count >= 2
    requests = value(
        samples, "bookchat_http_requests_total", method="GET", route=route, status="404"
    )
    assert requests >= 2
    buckets = samples["bookchat_http_request_duration_seconds_bucket"]
    assert any(dict(key).get("le") == "+Inf" for key in buckets)
    for name in ("bookchat_http_requests_total", "bookchat_http_request_duration_seconds_bucket"):
        for key in samples[name]:
            assert not RAW_ID.search(dict(key)["route"]), key


def test_job_gauges_and_latency_histograms_after_a_job_completes(stack: Stack) -> None:
    before = scrape(stack)
    headers = stack.signup()
    job = stack.wait(headers, stack.submit(headers, message="What is a ROS 2 node?")["id"])
    assert job["status"] == "completed"

    after = scrape(stack)

    assert value(after, "bookchat_jobs", kind="chat", status="completed") >= 1
    for name in ("bookchat_job_end_to_end_seconds_count", "bookchat_job_run_seconds_count"):
        labels = {"kind": "chat", "status": "completed"}
        # Observed by the worker process, in the shared multiprocess folder.
        assert value(after, name, **labels) == value(before, name, **labels) + 1, name
    wait = "bookchat_job_queue_wait_seconds_count"
    assert value(after, wait, kind="chat") == value(before, wait, kind="chat") + 1


def test_llm_token_counters_grow_with_an_openai_job(
    openai_stack: Stack, sim: SimulatorHandle
) -> None:
    before = scrape(openai_stack)
    headers = openai_stack.signup()
    job_id = openai_stack.submit(headers, message="What is a ROS 2 node?")["id"]
    job = openai_stack.wait(headers, job_id, timeout=90)
    assert job["status"] == "completed", job

    after = scrape(openai_stack)

    for name in (
        "bookchat_llm_prompt_tokens_total",
        "bookchat_llm_completion_tokens_total",
        "bookchat_llm_requests_total",
    ):
        assert value(after, name) > value(before, name), name
    grown = value(after, "bookchat_llm_prompt_tokens_total") - value(
        before, "bookchat_llm_prompt_tokens_total"
    )
    assert grown >= job["usage"]["prompt_tokens"]
