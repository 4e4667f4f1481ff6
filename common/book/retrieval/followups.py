"""Follow-up questions made standalone, offline: carry the previous subject, resolve "it".

A question is a follow-up when it refers back ("how do I launch it?", "why is that?"), opens
as a continuation ("and the code?", "what about ..."), or has neither a name the book uses
(URDF, Isaac Sim) nor three terms of its own that the book uses ("which parameters matter
most?"). A question that stands on its own is searched as asked, so a change of subject drops
the old one; a follow-up carries the previous question's key phrases in place of "it".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from common.book.retrieval.guardrail import QUESTION_TERMS, Vocabulary
from common.book.retrieval.sparse import STOPWORDS, tokenize

# Pronouns that always point back; demonstratives only when they stand alone ("why is that?").
_PRONOUNS = {"it": "", "its": "'s", "itself": "", "they": "", "them": "", "their": "'s"}
_DEMONSTRATIVES = frozenset({"this", "that", "these", "those"})
# After a demonstrative these mean it is a pronoun ("that is", "this in", "those for").
_NOT_A_NOUN = STOPWORDS | frozenset({"mean", "means", "work", "works", "differ", "matter"})
_CONTINUATIONS = ("and ", "also ", "what about ", "how about ", "then ", "but ", "so ")
# Words that end a subject phrase though they are not stopwords.
_BREAK_WORDS = """what how why which who whose can could would should may might must please provide
    provides explain describe tell show give use uses used using need needs get gets role"""
_PHRASE_BREAKS = frozenset(_BREAK_WORDS.split())
_WORD = re.compile(r"[\w'-]+|[^\w\s]")
MIN_OWN_TERMS = 3


def own_terms(question: str, vocabulary: Vocabulary) -> list[str]:
    """The question's specific terms that the book uses."""
    return [t for t in vocabulary.specific_terms(question) if t in vocabulary.terms]


def references(question: str) -> list[int]:
    """Word positions of pronouns that point back to an earlier subject."""
    words = _WORD.findall(question)
    found = []
    for i, word in enumerate(words):
        lower = word.lower()
        following = words[i + 1].lower() if i + 1 < len(words) else "?"
        standing = not following[0].isalnum() or following in _NOT_A_NOUN
        if lower in _PRONOUNS or (lower in _DEMONSTRATIVES and standing):
            found.append(i)
    return found


def is_follow_up(question: str, vocabulary: Vocabulary) -> bool:
    """Whether the question needs the previous turn to be understood."""
    opener = question.strip().lower()
    if references(question) or opener.startswith(_CONTINUATIONS):
        return True
    words = _WORD.findall(question)[1:]  # a capital opening the question is no name
    named = any(_is_name(w) and set(tokenize(w)) <= vocabulary.terms for w in words)
    return not named and len(own_terms(question, vocabulary)) < MIN_OWN_TERMS


def key_phrases(question: str, vocabulary: Vocabulary) -> list[str]:
    """Runs of content words (noun phrases, roughly) whose terms the book uses."""
    phrases: list[list[str]] = [[]]
    for word in _WORD.findall(question):
        lower = word.lower()
        breaks = lower in STOPWORDS or lower in _PHRASE_BREAKS or not word[0].isalnum()
        if breaks or (tokenize(word) and set(tokenize(word)) <= QUESTION_TERMS):
            phrases.append([])
        else:
            phrases[-1].append(word)
    kept = []
    for words in phrases:
        terms = tokenize(" ".join(words))
        if terms and any(t in vocabulary.terms and not t.isdigit() for t in terms):
            kept.append(" ".join(words))
    return kept


def subject(question: str, vocabulary: Vocabulary) -> str:
    """The previous question's subject: its key phrases, in order."""
    return " ".join(key_phrases(question, vocabulary))


def standalone_question(
    question: str, history: Sequence[tuple[str, str]], vocabulary: Vocabulary
) -> str:
    """The question as it would be asked without the conversation (unchanged if it stands)."""
    if not history or not is_follow_up(question, vocabulary):
        return question
    previous = standalone_question(history[-1][0], history[:-1], vocabulary)
    topic = subject(previous, vocabulary)
    if not topic:
        return question
    words = _WORD.findall(question)
    spots = references(question)
    if not spots:
        return f"{question.rstrip()} ({topic})"
    for i in reversed(spots):
        words[i] = topic + _PRONOUNS.get(words[i].lower(), "")
    return _join(words)


def _is_name(word: str) -> bool:
    """ROS, Isaac, URDF, SLAM3, MoveIt: spelt as a name rather than a common word."""
    return any(c.isupper() or c.isdigit() for c in word) and tokenize(word) != []


def _join(words: list[str]) -> str:
    text = " ".join(words)
    return re.sub(r" ([^\w\s'(-])", r"\1", text)
