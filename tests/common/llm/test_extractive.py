"""The offline extractive answerer: quotes the matching prose sentences, cited, or says no."""

from __future__ import annotations

from common.book.retrieval.passages import Passage
from common.llm.base import Answer, AnswerRequest
from common.llm.extractive import MODEL_NAME, ExtractiveAnswerer, split_sentences
from common.llm.prompts import NOT_IN_BOOK, NOT_IN_SELECTION


def passage(n: int, heading: str, text: str) -> Passage:
    """A hand-written retrieved passage."""
    return Passage(
        source=f"chapter-{n}.md",
        title=f"Chapter {n}",
        heading=heading,
        url=f"/chapter-{n}#{heading.lower().replace(' ', '-')}",
        text=text,
        score=1.0 / n,
    )


SIMULATION = passage(
    1,
    "Simulators",
    "Gazebo is a physics simulator for testing robots before they reach hardware. "
    "It models gravity, friction and contact between rigid bodies.",
)
TOPICS = passage(
    2,
    "Topics",
    "Nodes exchange data in many ways. A topic is a named channel that carries a stream of "
    "messages between publishers and subscribers. Publishers never wait for a reply.",
)
ACTIONS = passage(
    3,
    "Actions",
    "An action is a long-running goal with periodic feedback, such as walking to a door.",
)
BOOK = [SIMULATION, TOPICS, ACTIONS]


def answer(request: AnswerRequest) -> tuple[Answer, list[str]]:
    """Generate and collect the streamed deltas."""
    deltas: list[str] = []
    result = ExtractiveAnswerer().generate(request, deltas.append)
    return result, deltas


def test_quotes_the_matching_passage_with_its_number() -> None:
    result, _ = answer(AnswerRequest("What is a topic channel?", BOOK))

    assert "A topic is a named channel that carries a stream of messages" in result.text
    assert "subscribers [2]." in result.text
    assert "[1]" not in result.text and "[3]" not in result.text
    assert "Gazebo" not in result.text
    assert result.model == MODEL_NAME and result.usage is None


def test_streamed_deltas_join_into_the_answer() -> None:
    result, deltas = answer(AnswerRequest("What is a topic channel?", BOOK))

    assert len(deltas) > 1
    assert "".join(deltas) == result.text


def test_sentences_from_several_passages_keep_the_books_order() -> None:
    result, _ = answer(AnswerRequest("How do a simulator and an action differ?", BOOK))

    assert "[1]" in result.text and "[3]" in result.text
    assert result.text.index("[1]") < result.text.index("[3]")


def test_no_overlap_means_not_in_book() -> None:
    result, deltas = answer(AnswerRequest("Who painted the Mona Lisa?", BOOK))

    assert result.text == NOT_IN_BOOK
    assert "".join(deltas) == NOT_IN_BOOK


def test_no_passages_or_only_stopwords_mean_not_in_book() -> None:
    assert answer(AnswerRequest("What is a topic?", []))[0].text == NOT_IN_BOOK
    assert answer(AnswerRequest("What is it?", BOOK))[0].text == NOT_IN_BOOK


def test_unrelated_selection_means_not_in_selection() -> None:
    selection = passage(1, "Selected text", "Friction slows sliding bodies down over time.")

    result, _ = answer(
        AnswerRequest("What language model tokenizer works best?", [selection], from_selection=True)
    )

    assert result.text == NOT_IN_SELECTION


def test_a_related_selection_is_quoted_as_passage_one() -> None:
    selection = passage(1, "Selected text", "Friction slows sliding bodies down over time.")

    result, _ = answer(AnswerRequest("What does friction do?", [selection], from_selection=True))

    assert result.text == "Friction slows sliding bodies down over time [1]."


def test_code_blocks_and_tables_are_never_quoted() -> None:
    text = (
        "## Publishing\n"
        "A publisher sends messages on a topic at a fixed rate.\n\n"
        "```python\n"
        "publisher = node.create_publisher(String, 'topic', 10)  # publisher sends topic\n"
        "```\n\n"
        "| publisher | topic | rate of messages sent |\n"
        "| --- | --- | --- |\n"
        "| talker publisher | chatter topic | ten messages per second |\n"
    )
    code_heavy = passage(1, "Publishing", text)

    result, _ = answer(AnswerRequest("How does a publisher send topic messages?", [code_heavy]))

    assert result.text == "A publisher sends messages on a topic at a fixed rate [1]."
    assert split_sentences(text) == ["A publisher sends messages on a topic at a fixed rate."]


def test_markdown_markup_and_links_are_stripped_from_quotes() -> None:
    text = "A **topic** is a [named channel](https://docs.ros.org/topics) for `messages`."

    assert split_sentences(text) == ["A topic is a named channel for messages."]
