"""The offline extractive answerer: the book's own words, shaped by the kind of question."""

from common.llm.extractive.answerer import (
    MODEL_NAME,
    ExtractiveAnswerer,
    hardware_pattern,
    is_introductory,
    prerequisite_pointer,
)
from common.llm.extractive.units import split_sentences

__all__ = [
    "MODEL_NAME",
    "ExtractiveAnswerer",
    "hardware_pattern",
    "is_introductory",
    "prerequisite_pointer",
    "split_sentences",
]
