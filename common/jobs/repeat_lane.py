"""The fast lane for repeated questions: a hint the worker writes, the submit's route by it.

When a worker stores an answer in the answer cache it also writes a hint: a key named by the
question's normalised words and its selection, holding the index version the answer was made
under. A submit sends its job, in the same round trip (a Lua script in common/jobs/queue.py), to
the `chat-repeats` queue when the hint exists under the current index version, else to `chat`.
Chat workers consume both, and kombu's Redis transport rotates between its queues after each
message, so a repeat is not behind a backlog of new questions.

The hint only routes: the worker still looks the question up in full (bucket, meaning, vetoes,
the source's checks) and answers it normally when nothing matches. So the hint leaves out what
the web does not know at submit without a read (the reader's profile, the collection, the
model): a reader whose profile differs takes the fast lane and is answered by the model, which
costs the backlog one job's place, not a wrong answer.
"""

from __future__ import annotations

import hashlib
import re

import redis

# The book's index version: bumped by every ingest when it starts and when it ends.
INDEX_VERSION_KEY = "bookchat:index:version"
HINT_PREFIX = "bookchat:answer-cache:hint:"
_WORDS = re.compile(r"\w+")


def selection_hash(selected_text: str | None, page_url: str | None) -> str:
    """The selection a question is about (with its page: the citation names it); '' for none."""
    if not selected_text:
        return ""
    raw = f"{selected_text}\x1f{page_url or ''}"
    return hashlib.sha256(raw.encode()).hexdigest()


def repeat_hint_key(message: str, selected_text: str | None, page_url: str | None) -> str:
    """The hint's key for a first-turn question: its lower-cased words and its selection."""
    words = " ".join(_WORDS.findall(message.casefold()))
    raw = f"{words}\x1f{selection_hash(selected_text, page_url)}"
    return HINT_PREFIX + hashlib.sha256(raw.encode()).hexdigest()[:32]


def write_repeat_hint(client: redis.Redis, hint_key: str, version: int, ttl_seconds: int) -> None:
    """Say that this question has an answer stored under index `version`."""
    client.set(hint_key, str(version), ex=ttl_seconds)
