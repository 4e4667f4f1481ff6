"""Text from readers, books and workers, made safe to print on an operator's terminal.

A message may hold escape sequences (ESC, CSI as C1 0x9b) that retitle, clear or recolour the
terminal, a carriage return that overwrites its row, or bidirectional controls (U+202E) that
reverse what follows, so a row could be hidden or faked. Every table and detail view of the CLI
prints such text through `printable`, which shows each of these characters as an escape
(`\\x1b`, `\\r`, `\\u202e`); `--json` output escapes them the JSON way (`\\u001b`).
"""

from __future__ import annotations

import json
import re
from typing import Any

# C0 controls, DEL and C1 controls; the line and paragraph separators; bidirectional controls
# (ALM, LRM, RLM, the embeddings and overrides U+202A-202E, the isolates U+2066-2069).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# json.dumps escapes C0 itself; its raw newlines are the indentation's.
_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _SHORT.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text: str, keep: str = "") -> str:
    """`text` with every control and bidirectional character shown as an escape.

    Characters in `keep` (e.g. "\\n" for a multi-line answer) are printed as they are.
    """
    if keep:
        return "".join(printable(part) if part not in keep else part for part in _split(text, keep))
    return _UNSAFE.sub(_escaped, text)


def _split(text: str, keep: str) -> list[str]:
    return re.split(f"([{re.escape(keep)}])", text)


def safe_json(value: Any, indent: int | None = 2) -> str:
    """JSON for a terminal: non-ASCII text as it is, but controls and bidi marks as `\\uXXXX`."""
    text = json.dumps(value, indent=indent, ensure_ascii=False)
    # Outside strings JSON has only ASCII punctuation and spaces, so every match is in one.
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
