"""Tests for the OpenAI-compatible simulator, driven through the real openai SDK."""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import openai
import pytest

from bench.openai_sim import (
    RateLimiter,
    SimConfig,
    SimulatorHandle,
    create_app,
    estimate_tokens,
    go_duration,
    start_simulator,
)
from bench.openai_sim.config import ConfigError

PASSAGES = (
    "Answer from the passages and cite them.\n"
    "[1] ROS 2 is a middleware framework for building robot software.\n"
    "[2] Gazebo simulates physics, sensors and worlds for robots.\n"
)
QUESTION = "What is ROS 2?"
Starter = Callable[..., SimulatorHandle]


@pytest.fixture
def start() -> Iterator[Starter]:
    """Start simulators with no latency by default; stop them all after the test."""
    handles: list[SimulatorHandle] = []

    def _start(**fields: Any) -> SimulatorHandle:
        handle = start_simulator(SimConfig(**{"ttft_s": 0.0, **fields}))
        handles.append(handle)
        return handle

    yield _start
    for handle in handles:
        handle.stop()


def client_for(sim: SimulatorHandle, timeout: float = 5.0) -> openai.OpenAI:
    """Return an SDK client that never retries, pointed at the simulator."""
    return openai.OpenAI(
        base_url=sim.url + "/v1", api_key="sk-test", max_retries=0, timeout=timeout
    )


def ask(client: openai.OpenAI, content: str = "hello", **kwargs: Any) -> Any:
    """Send one user message to the simulated chat model."""
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **kwargs
    )


def body_message(error: openai.APIStatusError) -> str:
    """Return the provider's error message from the response body."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])


def http_json(url: str, method: str = "GET", body: Any = None) -> Any:
    """Call a /_sim control route and decode its JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as response:
        return json.loads(response.read())


def test_chat_completion_quotes_passages_and_reports_usage(start: Starter) -> None:
    sim = start(rpm=100, tpm=100_000)
    messages = [{"role": "system", "content": PASSAGES}, {"role": "user", "content": QUESTION}]
    raw = client_for(sim).chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        max_tokens=200,
    )
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4o-mini"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].finish_reason == "stop"
    assert '"ROS 2 is a middleware framework for building robot software" [1]' in text
    assert text.endswith("[2]")
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == estimate_tokens(PASSAGES) + estimate_tokens(QUESTION)
    assert completion.usage.completion_tokens == estimate_tokens(text)
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert raw.headers["x-ratelimit-limit-requests"] == "100"
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    assert raw.headers["x-ratelimit-reset-requests"] == "600ms"
    expected_tokens = 100_000 - (completion.usage.prompt_tokens + 200)
    assert raw.headers["x-ratelimit-remaining-tokens"] == str(expected_tokens)
    assert raw.request_id == sim.log()[-1]["request_id"]


def test_chat_without_passages_echoes_and_truncates(start: Starter) -> None:
    client = client_for(start())
    question = "x" * 100
    full = ask(client, question)
    assert full.choices[0].message.content == "Simulated answer to: " + "x" * 60
    cut = ask(client, question, max_completion_tokens=5)
    assert cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.content == "Simulated answer to: "[:20]
    assert cut.usage.completion_tokens == 5


@pytest.mark.parametrize("reason", ["length", "content_filter"])
def test_a_forced_finish_reason_stops_the_answer_halfway(start: Starter, reason: str) -> None:
    sim = start()
    client = client_for(sim)
    messages: Any = [{"role": "user", "content": PASSAGES + QUESTION}]
    whole = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    sim.update_config(finish_reason=reason)

    chunks = list(
        client.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    full_text = whole.choices[0].message.content or ""
    assert text == full_text[: len(full_text) // 2]
    assert chunks[-1].choices[0].finish_reason == reason


def test_an_unknown_finish_reason_is_refused(start: Starter) -> None:
    with pytest.raises(ConfigError, match="finish_reason"):
        start().update_config(finish_reason="tool_calls")


def test_streaming_matches_non_streaming_and_ends_with_usage(start: Starter) -> None:
    client = client_for(start())
    messages: Any = [{"role": "user", "content": PASSAGES + QUESTION}]
    expected = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected.choices[0].message.content
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == expected.usage
    assert all(c.usage is None for c in chunks[:-1])


def test_stream_wire_format_ends_with_done() -> None:
    app = create_app(SimConfig(ttft_s=0.0))
    response = app.test_client().post(
        "/v1/chat/completions",
        json={"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    )
    body = response.get_data(as_text=True)
    assert response.mimetype == "text/event-stream"
    events = [e for e in body.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    assert '"usage"' not in body  # include_usage was not requested


def test_embeddings_are_normalised_and_deterministic(start: Starter) -> None:
    client = client_for(start())
    texts = ["ROS 2 nodes talk over topics", "Gazebo simulates worlds"]
    first = client.embeddings.create(model="text-embedding-3-small", input=texts)
    again = client.embeddings.create(model="text-embedding-3-small", input=texts[0])
    floats = client.embeddings.create(
        model="text-embedding-3-small", input=texts, encoding_format="float"
    )
    small = client.embeddings.create(model="text-embedding-3-small", input=texts, dimensions=64)
    vectors = [d.embedding for d in first.data]
    assert [d.index for d in first.data] == [0, 1]
    assert len(vectors[0]) == 1536
    assert math.isclose(math.fsum(v * v for v in vectors[0]), 1.0, rel_tol=1e-5)
    assert again.data[0].embedding == pytest.approx(vectors[0], abs=1e-6)
    assert floats.data[1].embedding == pytest.approx(vectors[1], abs=1e-6)
    assert vectors[0] != vectors[1]
    assert len(small.data[0].embedding) == 64
    assert first.usage.prompt_tokens == sum(estimate_tokens(t) for t in texts)


def test_models_lists_configured_model(start: Starter) -> None:
    ids = [m.id for m in client_for(start(model="sim-model")).models.list()]
    assert ids == ["sim-model", "text-embedding-3-small"]


def test_rpm_exhaustion_returns_429_with_headers(start: Starter) -> None:
    sim = start(rpm=2)
    client = client_for(sim)
    ask(client)
    ask(client)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client)
    error = caught.value
    headers = error.response.headers
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert body_message(error).startswith(
        "Rate limit reached for gpt-4o-mini in organization org-sim on requests per min (RPM): "
        "Limit 2, Used 2, Requested 1. Please try again in "
    )
    wait_ms = int(headers["retry-after-ms"])
    assert 29_000 < wait_ms <= 30_000  # one request refills in 60/2 seconds
    assert headers["retry-after"] == str(math.ceil(wait_ms / 1000))
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-limit-requests"] == "2"
    assert "x-ratelimit-limit-tokens" not in headers  # TPM is unlimited


def test_tpm_exhaustion_reports_tokens(start: Starter) -> None:
    client = client_for(start(tpm=1000))
    ask(client, max_tokens=600)
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, max_tokens=600)
    assert caught.value.type == "tokens"
    message = body_message(caught.value)
    assert "on tokens per min (TPM): Limit 1000, Used " in message
    assert "Requested 602. Please try again in " in message
    assert int(caught.value.response.headers["retry-after-ms"]) > 0


def test_concurrent_requests_respect_rpm(start: Starter) -> None:
    sim = start(rpm=20)
    client = client_for(sim)

    def attempt(_: int) -> int:
        try:
            ask(client, max_tokens=5)
        except openai.RateLimitError:
            return 429
        return 200

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(attempt, range(40)))
    # One more request may refill (1 per 3 s) while the burst runs.
    assert statuses.count(200) in (20, 21)
    assert sum(r["admitted"] for r in sim.log()) == statuses.count(200)


def test_invalid_request_is_400(start: Starter) -> None:
    sim = start(rpm=10)
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(sim).chat.completions.create(model="gpt-4o-mini", messages=[])
    assert caught.value.param == "messages"
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "10"
    assert sim.log()[0]["status"] == 400 and not sim.log()[0]["admitted"]


def test_request_too_large_is_not_retryable(start: Starter) -> None:
    client = client_for(start(tpm=100))
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client, max_tokens=200)
    assert caught.value.code == "rate_limit_exceeded"
    assert body_message(caught.value).startswith(
        "Request too large for gpt-4o-mini in organization org-sim on tokens per min (TPM): "
        "Limit 100, Requested 202."
    )
    assert "retry-after-ms" not in caught.value.response.headers
    ask(client, max_tokens=50)  # nothing was charged for the refused request


def test_insufficient_quota(start: Starter) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        ask(client_for(start(insufficient_quota=True)))
    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"
    assert body_message(caught.value).startswith("You exceeded your current quota")


def test_fail_next_sequence_then_success(start: Starter) -> None:
    sim = start(fail_next=[500, 429, 401, 400, 503])
    client = client_for(sim)
    expected: list[tuple[type[openai.APIStatusError], str | None]] = [
        (openai.InternalServerError, None),
        (openai.RateLimitError, "rate_limit_exceeded"),
        (openai.AuthenticationError, "invalid_api_key"),
        (openai.BadRequestError, "invalid_request_error"),
        (openai.InternalServerError, None),
    ]
    for error_class, code in expected:
        with pytest.raises(error_class) as caught:
            ask(client)
        assert caught.value.code == code
        if error_class is openai.RateLimitError:
            assert caught.value.response.headers["retry-after-ms"] == "200"
    assert ask(client).choices[0].message.content
    assert [r["status"] for r in sim.log()] == [500, 429, 401, 400, 503, 200]
    assert sim.config.fail_next == []


def test_log_records_admitted_and_rejected(start: Starter, tmp_path: Any) -> None:
    log_path = tmp_path / "sim.jsonl"
    sim = start(rpm=1, log_path=str(log_path))
    client = client_for(sim)
    before = time.time()
    ask(client, "abcd" * 10, max_tokens=7)
    with pytest.raises(openai.RateLimitError):
        ask(client, max_tokens=7)
    admitted, rejected = sim.log()
    assert admitted["admitted"] and admitted["status"] == 200
    assert admitted["prompt_tokens"] == 10
    assert admitted["cost_tokens"] == 17
    assert admitted["completion_tokens"] == 7
    assert not rejected["admitted"] and rejected["status"] == 429
    assert rejected["code"] == "rate_limit_exceeded"
    assert rejected["completion_tokens"] == 0
    assert before <= admitted["t"] <= rejected["t"]
    assert http_json(f"{sim.url}/_sim/log?since={rejected['t']}") == [rejected]
    assert [json.loads(line) for line in log_path.read_text().splitlines()] == sim.log()
    http_json(f"{sim.url}/_sim/reset", "POST", {})
    assert sim.log() == []
    ask(client)  # buckets were refilled by the reset


def test_config_can_be_read_and_updated_at_run_time(start: Starter) -> None:
    sim = start()
    assert http_json(f"{sim.url}/_sim/config")["tpm"] == 0
    updated = http_json(f"{sim.url}/_sim/config", "PUT", {"rpm": 1, "ttft_s": 0})
    assert updated["rpm"] == 1 and sim.config.rpm == 1
    client = client_for(sim)
    ask(client)
    with pytest.raises(openai.RateLimitError):
        ask(client)
    with pytest.raises(urllib.error.HTTPError) as caught:
        http_json(f"{sim.url}/_sim/config", "PUT", {"no_such_field": 1})
    assert caught.value.code == 400


def test_random_faults_and_timeouts(start: Starter) -> None:
    failing = start(error_500_rate=1.0)
    with pytest.raises(openai.InternalServerError):
        ask(client_for(failing))
    assert failing.log()[0]["admitted"]  # server errors happen after admission
    slow = start(timeout_rate=1.0, timeout_sleep_s=5.0)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        ask(client_for(slow, timeout=0.3))
    assert time.monotonic() - started < 2


def test_latency_is_applied(start: Starter) -> None:
    client = client_for(start(ttft_s=0.1, per_token_s=0.01))
    started = time.monotonic()
    response = ask(client, max_tokens=5)
    assert time.monotonic() - started >= 0.1 + 5 * 0.01
    assert response.usage.completion_tokens == 5


def test_token_bucket_refills_continuously() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    assert limiter.admit(rpm=60, tpm=600, cost=600)[0] is None
    rejection, headers = limiter.admit(rpm=60, tpm=600, cost=100)
    assert rejection is not None and rejection.kind == "tokens"
    assert rejection.retry_after_s == pytest.approx(10.0)
    assert headers["x-ratelimit-reset-tokens"] == "1m0s"
    now[0] = 10.0
    assert limiter.admit(rpm=60, tpm=600, cost=100)[0] is None


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (0.0004, "0s"),
        (0.02, "20ms"),
        (0.644, "644ms"),
        (1, "1s"),
        (1.574, "1.574s"),
        (59.5, "59.5s"),
        (90.5, "1m30.5s"),
        (360, "6m0s"),
        (3600, "1h0m0s"),
    ],
)
def test_go_duration(seconds: float, expected: str) -> None:
    assert go_duration(seconds) == expected
