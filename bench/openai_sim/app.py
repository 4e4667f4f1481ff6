"""Flask app factory for the simulator: OpenAI-compatible routes plus /_sim control routes."""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from .config import ConfigError, SimConfig
from .content import build_answer, embed_text, message_text
from .limits import estimate_tokens, retry_after_headers
from .state import RequestRecord, SimState, logged_messages

bp = Blueprint("openai_sim", __name__)

_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"
_OVERLOADED = "The server is overloaded or not ready yet."
_BAD_KEY = "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys."
_NO_QUOTA = "You exceeded your current quota, please check your plan and billing details."


class InvalidRequest(Exception):
    """A request body the real API would refuse with HTTP 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def create_app(config: SimConfig | None = None) -> Flask:
    """Build the simulator app around `config` (a fresh SimConfig if None)."""
    app = Flask(__name__)
    app.extensions["openai_sim"] = SimState(config or SimConfig())
    app.register_blueprint(bp)
    return app


def get_state(app: Flask) -> SimState:
    """Return the simulator state held by an app built with create_app."""
    state: SimState = app.extensions["openai_sim"]
    return state


def _state() -> SimState:
    return get_state(current_app)


def error_response(
    status: int, message: str, type_: str, code: str | None, param: str | None = None
) -> Response:
    """Return an OpenAI-shaped error body with `status`."""
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    response = jsonify(body)
    response.status_code = status
    return response


def injected_error(status: int, model: str) -> Response:
    """Return the provider-like error for an injected HTTP status."""
    if status == 400:
        return error_response(
            400, "Simulated invalid request.", "invalid_request_error", "invalid_request_error"
        )
    if status == 401:
        return error_response(401, _BAD_KEY, "invalid_request_error", "invalid_api_key")
    if status == 429:
        message = (
            f"Rate limit reached for {model} in organization {_state().config.organization}"
            " on requests per min (RPM): Limit 1, Used 1, Requested 1. "
            "Please try again in 200ms."
        )
        response = error_response(429, message, "requests", "rate_limit_exceeded")
        response.headers.update(retry_after_headers(0.2))
        return response
    if status == 500:
        return error_response(500, _SERVER_ERROR, "server_error", None)
    if status == 503:
        return error_response(503, _OVERLOADED, "server_error", None)
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return error_response(status, f"Simulated HTTP {status} error.", kind, None)


def _gate(record: RequestRecord, model: str) -> tuple[Response | None, dict[str, str]]:
    """Apply quota, injected failures and rate limits; return an error response or None."""
    state = _state()
    config = state.config
    if config.insufficient_quota:
        error = error_response(429, _NO_QUOTA, "insufficient_quota", "insufficient_quota")
        return error, state.limiter.headers(config.rpm, config.tpm)
    forced = state.pop_fail_next()
    if forced is not None:
        return injected_error(forced, model), state.limiter.headers(config.rpm, config.tpm)
    rejection, headers = state.limiter.admit(
        config.rpm, config.tpm, record.cost_tokens, config.charge_rejected_requests
    )
    if rejection is not None:
        message = rejection.message(model, config.organization)
        error = error_response(429, message, rejection.kind, "rate_limit_exceeded")
        if not rejection.too_large:
            error.headers.update(retry_after_headers(rejection.retry_after_s))
        return error, headers
    record.admitted = True
    fault = state.draw_fault()
    if fault in (500, 503):
        return injected_error(fault, model), headers
    if fault == "timeout":
        state.sleep(config.timeout_sleep_s)
    return None, headers


def _finish(response: Response, record: RequestRecord, headers: dict[str, str]) -> Response:
    """Attach request-id and rate-limit headers, then log the request's outcome."""
    response.headers.update(headers)
    response.headers["x-request-id"] = record.request_id
    record.status = response.status_code
    if response.status_code >= 400:
        record.completion_tokens = 0
        error = (response.get_json(silent=True) or {}).get("error") or {}
        record.code = error.get("code") or error.get("type")
    _state().append(record)
    return response


@bp.errorhandler(InvalidRequest)
def _invalid_request(error: InvalidRequest) -> Response:
    config = _state().config
    record = RequestRecord(t=time.time(), endpoint=request.path)
    response = error_response(
        400, error.message, "invalid_request_error", "invalid_request_error", error.param
    )
    return _finish(response, record, _state().limiter.headers(config.rpm, config.tpm))


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    return body


def _max_tokens(body: dict[str, Any]) -> int | None:
    for param in ("max_completion_tokens", "max_tokens"):
        value = body.get(param)
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidRequest(f"{param} must be a positive integer.", param)
        return value
    return None


@bp.post("/v1/chat/completions")
def chat_completions() -> Response:
    """Create a chat completion, streamed as SSE when `stream` is true."""
    t = time.time()
    body = _json_body()
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) for m in messages)
    ):
        raise InvalidRequest("messages must be a non-empty array of objects.", "messages")
    state = _state()
    model = str(body.get("model") or state.config.model)
    requested_max = _max_tokens(body)
    max_tokens = requested_max if requested_max is not None else state.config.default_max_tokens
    prompt_tokens = sum(estimate_tokens(message_text(m.get("content"))) for m in messages)
    record = RequestRecord(
        t=t,
        endpoint="/v1/chat/completions",
        prompt_tokens=prompt_tokens,
        max_tokens=max_tokens,
        cost_tokens=prompt_tokens + max_tokens,
        messages=logged_messages(
            [
                {"role": str(m.get("role")), "content": message_text(m.get("content"))}
                for m in messages
            ]
        ),
    )
    error, headers = _gate(record, model)
    if error is not None:
        return _finish(error, record, headers)

    text, finish_reason = build_answer(messages), "stop"
    if requested_max is not None and estimate_tokens(text) > requested_max:
        text, finish_reason = text[: requested_max * 4], "length"
    elif state.config.finish_reason:  # a forced early stop, as a token limit or filter would
        text, finish_reason = text[: len(text) // 2], state.config.finish_reason
    record.completion_tokens = estimate_tokens(text)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "total_tokens": prompt_tokens + record.completion_tokens,
    }
    base = {
        "id": f"chatcmpl-sim{uuid.uuid4().hex[:24]}",
        "created": int(t),
        "model": model,
        "system_fingerprint": "fp_sim",
    }
    if body.get("stream"):
        options = body.get("stream_options") or {}
        include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
        stream = _stream_chunks(state, base, text, finish_reason, usage if include_usage else None)
        stream = _marking_end(stream, state, record.request_id)
        response = Response(
            stream, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
        )
        return _finish(response, record, headers)

    state.sleep(state.config.ttft_s + record.completion_tokens * state.config.per_token_s)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": text,
        "refusal": None,
        "annotations": [],
    }
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    payload = {
        **base,
        "object": "chat.completion",
        "choices": [choice],
        "usage": usage,
        "service_tier": "default",
    }
    return _finish(jsonify(payload), record, headers)


def _stream_chunks(
    state: SimState,
    base: dict[str, Any],
    text: str,
    finish_reason: str,
    usage: dict[str, int] | None,
) -> Iterator[str]:
    """Yield SSE events: role, one chunk per ~token, finish, optional usage, [DONE]."""
    extra = {"usage": None} if usage is not None else {}

    def event(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        chunk = {**base, "object": "chat.completion.chunk", "choices": [choice], **extra}
        return f"data: {json.dumps(chunk)}\n\n"

    state.sleep(state.config.ttft_s)
    yield event({"role": "assistant", "content": "", "refusal": None})
    for start in range(0, len(text), 4):
        yield event({"content": text[start : start + 4]})
        state.sleep(state.config.per_token_s)
    yield event({}, finish_reason)
    if usage is not None:
        chunk = {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}
        yield f"data: {json.dumps(chunk)}\n\n"
    yield "data: [DONE]\n\n"


def _marking_end(chunks: Iterator[str], state: SimState, request_id: str) -> Iterator[str]:
    """The chunks, then a note in the log that this answer was streamed to its end."""
    yield from chunks
    state.mark_streamed(request_id)


@bp.post("/v1/embeddings")
def embeddings() -> Response:
    """Return deterministic pseudo-embeddings for a string or a list of strings."""
    t = time.time()
    body = _json_body()
    raw = body.get("input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(isinstance(s, str) for s in inputs):
        raise InvalidRequest("input must be a string or a non-empty array of strings.", "input")
    state = _state()
    dim = body.get("dimensions") or state.config.embedding_dim
    if not isinstance(dim, int) or dim < 1:
        raise InvalidRequest("dimensions must be a positive integer.", "dimensions")
    model = str(body.get("model") or "text-embedding-3-small")
    prompt_tokens = sum(estimate_tokens(s) for s in inputs)
    record = RequestRecord(
        t=t, endpoint="/v1/embeddings", prompt_tokens=prompt_tokens, cost_tokens=prompt_tokens
    )
    error, headers = _gate(record, model)
    if error is not None:
        return _finish(error, record, headers)
    state.sleep(state.config.ttft_s)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector: Any = embed_text(text, dim)
        if as_base64:
            vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }
    return _finish(jsonify(payload), record, headers)


@bp.get("/v1/models")
def models() -> Response:
    """List the simulated models; not rate limited."""
    state = _state()
    ids = [state.config.model, "text-embedding-3-small"]
    data = [
        {"id": i, "object": "model", "created": 1700000000, "owned_by": "openai-sim"} for i in ids
    ]
    record = RequestRecord(t=time.time(), endpoint="/v1/models", admitted=True)
    headers = state.limiter.headers(state.config.rpm, state.config.tpm)
    return _finish(jsonify({"object": "list", "data": data}), record, headers)


@bp.get("/_sim/log")
def sim_log() -> Response:
    """Return logged request records, optionally only those with t >= ?since."""
    since = request.args.get("since", type=float)
    return jsonify(_state().log(since))


@bp.post("/_sim/reset")
def sim_reset() -> Response:
    """Clear the request log and refill the rate-limit buckets."""
    _state().reset()
    return jsonify({"ok": True})


@bp.route("/_sim/config", methods=["GET", "PUT"])
def sim_config() -> Response:
    """Read the configuration, or update some of its fields from a JSON object."""
    state = _state()
    if request.method == "PUT":
        changes = request.get_json(silent=True)
        if not isinstance(changes, dict):
            return error_response(400, "Body must be a JSON object.", "invalid_request_error", None)
        try:
            state.update_config(changes)
        except ConfigError as exc:
            return error_response(400, str(exc), "invalid_request_error", None)
    return jsonify(state.config_dict())
