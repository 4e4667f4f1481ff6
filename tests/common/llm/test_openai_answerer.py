"""The OpenAI answerer through the LLM layer and the real SDK against the simulator."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bench.openai_sim import SimulatorHandle
from common.book.retrieval.passages import Passage
from common.llm.base import AnswerRequest
from common.llm.errors import LLMError
from common.llm.factory import make_llm_client
from common.llm.metrics import CallStats
from common.llm.openai_answerer import OpenAIAnswerer, make_openai_sdk
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION, build_messages
from tests.support.stack import make_settings

MAX_TOKENS = 321

NODE = Passage(
    source="01-ros2/nodes-and-topics.md",
    title="Nodes, Topics, Services, and Actions",
    heading="What is a node?",
    url="/ros2/nodes-and-topics#what-is-a-node",
    text="A ROS 2 node is a single participant in a ROS 2 system that performs one job.",
    score=3.2,
    heading_path=("Nodes, Topics, Services, and Actions", "What is a node?"),
)
TOPIC = Passage(
    source="01-ros2/nodes-and-topics.md",
    title="Nodes, Topics, Services, and Actions",
    heading="Topics",
    url="/ros2/nodes-and-topics#topics",
    text="A topic is a named channel that carries a stream of messages.",
    score=2.1,
)


@pytest.fixture
def answerer(sim: SimulatorHandle, redis_url: str, tmp_path: Path) -> Iterator[OpenAIAnswerer]:
    """An answerer built from settings, on a model name no other test uses."""
    settings = make_settings(
        tmp_path,
        redis_url,
        openai_api_key="sk-test",
        openai_base_url=f"{sim.url}/v1",
        openai_timeout_seconds=5.0,
        chat_model=f"gpt-4o-mini-{uuid.uuid4().hex[:6]}",
        chat_max_tokens=MAX_TOKENS,
    )
    connection = redis.Redis.from_url(redis_url, decode_responses=True)
    client = make_llm_client(settings, connection)
    yield OpenAIAnswerer(client, settings.chat_model, settings.chat_max_tokens)
    connection.close()


def test_the_sdk_never_retries_on_its_own(tmp_path: Path, redis_url: str) -> None:
    settings = make_settings(
        tmp_path,
        redis_url,
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
        openai_timeout_seconds=7.0,
    )

    sdk = make_openai_sdk(settings)

    assert sdk.max_retries == 0
    assert sdk.api_key == "sk-test"
    assert str(sdk.base_url).rstrip("/") == "http://127.0.0.1:9/v1"
    assert sdk.timeout == 7.0


def test_streams_a_cited_answer_with_usage(answerer: OpenAIAnswerer, sim: SimulatorHandle) -> None:
    deltas: list[str] = []
    stats = CallStats()

    answer = answerer.generate(
        AnswerRequest("What is a ROS 2 node?", [NODE, TOPIC]), deltas.append, stats
    )

    assert len(deltas) > 1
    assert "".join(deltas) == answer.text
    assert answer.text.startswith("According to the passages")
    assert "[1]" in answer.text and "[2]" in answer.text
    assert answer.model == answerer.model
    assert answer.usage is not None
    assert set(answer.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
    usage = answer.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert (stats.prompt_tokens, stats.completion_tokens) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert stats.llm_calls == 1 and stats.cost_usd > 0


def test_the_request_carries_max_tokens_and_the_prompt(
    answerer: OpenAIAnswerer, sim: SimulatorHandle
) -> None:
    request = AnswerRequest("What is a topic?", [TOPIC])
    started = time.time()

    answerer.generate(request, lambda _: None, CallStats())

    [record] = sim.log(since=started)
    assert record["endpoint"] == "/v1/chat/completions"
    assert record["status"] == 200
    assert record["max_tokens"] == MAX_TOKENS
    # The simulator counts a token per four characters of each message it received.
    sent = build_messages(request)
    assert record["prompt_tokens"] == sum(math.ceil(len(m["content"]) / 4) for m in sent)


def test_a_provider_refusal_surfaces_as_an_llm_error(
    answerer: OpenAIAnswerer, sim: SimulatorHandle
) -> None:
    sim.update_config(insufficient_quota=True)
    deltas: list[str] = []

    with pytest.raises(LLMError) as caught:
        answerer.generate(AnswerRequest("What is a node?", [NODE]), deltas.append, CallStats())

    assert (caught.value.code, caught.value.retryable) == ("insufficient_quota", False)
    assert deltas == []


def test_build_messages_numbers_passages_and_keeps_history_in_order() -> None:
    history = [("What is a node?", "A node is a process [1]."), ("And a topic?", "A channel [1].")]

    messages = build_messages(AnswerRequest("How do they connect?", [NODE, TOPIC], history))

    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    system = messages[0]["content"]
    assert "[1] Nodes, Topics, Services, and Actions — " in system
    assert "Nodes, Topics, Services, and Actions > What is a node?\n" + NODE.text in system
    # Without a heading path the passage's own heading is shown.
    assert "[2] Nodes, Topics, Services, and Actions — Topics\n" + TOPIC.text in system
    assert system.index("[1]") < system.index("[2] Nodes")
    assert NOT_IN_BOOK in system and NOT_IN_SELECTION not in system
    assert [m["content"] for m in messages[1:]] == [
        "What is a node?",
        "A node is a process [1].",
        "And a topic?",
        "A channel [1].",
        "How do they connect?",
    ]


def test_build_messages_in_selection_mode_uses_the_selection_rules() -> None:
    selection = Passage("selection", "Selected text", "Selected text", "/p", "QoS tunes it.", 1.0)

    messages = build_messages(AnswerRequest("What does QoS do?", [selection], from_selection=True))

    system = messages[0]["content"]
    assert "selected" in system.lower()
    assert NOT_IN_SELECTION in system and NOT_IN_BOOK not in system
    assert "[1] Selected text — Selected text\nQoS tunes it." in system
    assert messages[-1] == {"role": "user", "content": "What does QoS do?"}
    assert len(messages) == 2


def test_build_messages_without_passages_says_so() -> None:
    system = build_messages(AnswerRequest("Anything?", []))[0]["content"]

    assert system.endswith("Passages:\n\n(none found)")
