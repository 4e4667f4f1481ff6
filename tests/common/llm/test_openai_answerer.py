"""The OpenAI answerer through the real SDK against the simulator, and its prompt."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from bench.openai_sim import SimulatorHandle
from common.llm.base import AnswerRequest, LLMError
from common.llm.openai_answerer import OpenAIAnswerer, make_openai_client
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION, build_messages
from common.retrieval.passages import Passage
from tests.support.stack import make_settings

# The answerer never touches Redis; settings only need a well-formed URL.
UNUSED_REDIS = "redis://127.0.0.1:1/0"
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


def answerer_for(base_url: str, tmp_path: Path) -> OpenAIAnswerer:
    """An answerer whose SDK never retries, as our task layer owns retries."""
    settings = make_settings(
        tmp_path,
        UNUSED_REDIS,
        openai_api_key="sk-test",
        openai_base_url=base_url,
        openai_timeout_seconds=5.0,
        chat_max_tokens=MAX_TOKENS,
    )
    client = make_openai_client(settings, max_retries=0)
    return OpenAIAnswerer(client, settings.chat_model, settings.chat_max_tokens)


@pytest.fixture
def answerer(sim: SimulatorHandle, tmp_path: Path) -> OpenAIAnswerer:
    """An answerer talking to the simulator."""
    return answerer_for(f"{sim.url}/v1", tmp_path)


def test_streams_a_cited_answer_with_usage(answerer: OpenAIAnswerer, sim: SimulatorHandle) -> None:
    deltas: list[str] = []

    answer = answerer.generate(AnswerRequest("What is a ROS 2 node?", [NODE, TOPIC]), deltas.append)

    assert len(deltas) > 1
    assert "".join(deltas) == answer.text
    assert answer.text.startswith("According to the passages")
    assert "[1]" in answer.text and "[2]" in answer.text
    assert answer.model == "gpt-4o-mini"
    assert answer.usage is not None
    assert set(answer.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert answer.usage["prompt_tokens"] > 0 and answer.usage["completion_tokens"] > 0
    usage = answer.usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_request_carries_max_tokens(answerer: OpenAIAnswerer, sim: SimulatorHandle) -> None:
    answerer.generate(AnswerRequest("What is a topic?", [TOPIC]), lambda _: None)

    [record] = sim.log()
    assert record["endpoint"] == "/v1/chat/completions"
    assert record["status"] == 200
    assert record["max_tokens"] == MAX_TOKENS


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, "llm_unavailable", True),
        (503, "llm_unavailable", True),
        (429, "rate_limited", True),
        (401, "llm_auth_failed", False),
        (400, "llm_bad_request", False),
    ],
)
def test_provider_errors_are_classified(
    answerer: OpenAIAnswerer, sim: SimulatorHandle, status: int, code: str, retryable: bool
) -> None:
    sim.update_config(fail_next=[status])
    deltas: list[str] = []

    with pytest.raises(LLMError) as caught:
        answerer.generate(AnswerRequest("What is a node?", [NODE]), deltas.append)

    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.message
    assert deltas == []
    # max_retries=0: exactly one request reached the provider.
    assert [r["status"] for r in sim.log()] == [status]


def test_insufficient_quota_is_not_retried(answerer: OpenAIAnswerer, sim: SimulatorHandle) -> None:
    sim.update_config(insufficient_quota=True)

    with pytest.raises(LLMError) as caught:
        answerer.generate(AnswerRequest("What is a node?", [NODE]), lambda _: None)

    assert caught.value.code == "insufficient_quota"
    assert caught.value.retryable is False
    assert len(sim.log()) == 1


def test_an_unreachable_provider_is_retryable(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    answerer = answerer_for(f"http://127.0.0.1:{port}/v1", tmp_path)

    with pytest.raises(LLMError) as caught:
        answerer.generate(AnswerRequest("What is a node?", [NODE]), lambda _: None)

    assert (caught.value.code, caught.value.retryable) == ("llm_unreachable", True)


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
