"""Hostile-input limits: URL and header sizes, JSON nesting and strings, and OPTIONS answers.

The same numbers configure gunicorn (web/gunicorn_conf.py), so a request gunicorn lets through
is judged here with a problem+json answer, and only what gunicorn refuses itself stays HTML.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from flask import Response, current_app, request
from werkzeug.exceptions import RequestHeaderFieldsTooLarge, RequestURITooLarge

from common.platform.errors import InvalidInput, MalformedJSON, UnsupportedMediaType

# gunicorn's defaults, made explicit: the request line (method, target, version), the number of
# header fields, and the size of one "Name: value" line.
MAX_REQUEST_LINE_BYTES = 4094
MAX_HEADER_FIELDS = 100
MAX_HEADER_FIELD_BYTES = 8190
# Our request bodies are flat objects; anything deeper is an attack on the parser's recursion.
MAX_JSON_DEPTH = 32

# A JSON string, or an unterminated one running to the end: linear, no backtracking.
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_UTF_8 = ("utf-8", "utf-8-sig")


def json_depth(raw: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings ignored)."""
    brackets = _JSON_STRING.sub(b"", raw).translate(None, _NOT_BRACKET)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def check_json_body(raw: bytes) -> Any:
    """The parsed body, or MalformedJSON / InvalidInput / 415 for bodies the app must not see.

    JSON is accepted as UTF-8 only (RFC 8259, section 8.1): in UTF-16 or UTF-32 a NUL would
    not be spelled with the ASCII bytes of `\\u` the string check looks for.
    """
    if json.detect_encoding(raw) not in _UTF_8:
        raise UnsupportedMediaType("send JSON encoded as UTF-8")
    # Counting openers is cheap and settles nearly every body; only many brackets need a scan.
    openers = raw.count(b"[") + raw.count(b"{")
    if openers > MAX_JSON_DEPTH and json_depth(raw) > MAX_JSON_DEPTH:
        raise MalformedJSON(f"the JSON body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        # Strict UTF-8: json.loads(bytes) would let encoded surrogates through (surrogatepass).
        value = current_app.json.loads(raw.decode("utf-8-sig"))
    except ValueError as exc:  # syntax, invalid UTF-8, integers beyond 4300 digits
        raise MalformedJSON(f"request body is not valid JSON: {exc}") from exc
    if b"\\u" in raw:  # in UTF-8, only escapes can smuggle NUL or lone surrogates in
        _check_strings(value)
    return value


def _check_strings(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            _check_text(item, "the JSON body")


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InvalidInput(f"{where} contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{where} contains a lone UTF-16 surrogate") from exc


def check_request_size() -> None:
    """Refuse oversize URLs (414) and headers (431), and NUL in the query or a header (400)."""
    target = request.environ.get("RAW_URI") or request.full_path
    if len(target) > MAX_REQUEST_LINE_BYTES:
        raise RequestURITooLarge(f"the URL is longer than {MAX_REQUEST_LINE_BYTES} bytes")
    if len(request.headers) > MAX_HEADER_FIELDS:
        raise RequestHeaderFieldsTooLarge(f"more than {MAX_HEADER_FIELDS} header fields")
    for name, value in request.headers.items():
        if len(name) + len(value) + 2 > MAX_HEADER_FIELD_BYTES:
            raise RequestHeaderFieldsTooLarge(
                f"the {name[:64]} header is longer than {MAX_HEADER_FIELD_BYTES} bytes"
            )
        if "\x00" in value:  # gunicorn refuses these too; other servers may not
            raise InvalidInput(f"the {name[:64]} header contains a NUL character")
    for key, value in request.args.items(multi=True):
        _check_text(key + value, "the query string")


def answer_options() -> Response | None:
    """OPTIONS on a known route: 204 with Allow, before any auth hook can run or fail."""
    if request.method != "OPTIONS" or request.routing_exception is not None:
        return None
    response = current_app.make_default_options_response()
    response.status_code = 204
    response.set_data(b"")
    del response.headers["Content-Type"]
    return response
