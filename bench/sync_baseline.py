"""Bench-only baseline: the original design, which called the model inside the request.

A Flask app with one route that asks the model (through the OpenAI SDK, against the simulator)
and answers when the model has. Served by gunicorn like bookchat's API, so the spike
benchmark can send it the same burst. Not part of bookchat.

    gunicorn -k gthread --threads 32 'bench.sync_baseline:create_app()'
"""

from __future__ import annotations

import os

import openai
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue


def create_app() -> Flask:
    """The baseline app; OPENAI_BASE_URL points it at the simulator."""
    app = Flask(__name__)
    client = openai.OpenAI(
        api_key=os.environ.get("OPENAI_API_KEY", "sk-bench"),
        base_url=os.environ["OPENAI_BASE_URL"],
        max_retries=2,
        timeout=120,
    )

    @app.post("/v1/chat")
    def chat() -> ResponseReturnValue:
        body = request.get_json(force=True)
        try:
            completion = client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": str(body.get("message", ""))}],
                max_tokens=200,
            )
        except openai.OpenAIError as exc:
            return jsonify({"error": type(exc).__name__}), 503
        return jsonify({"answer": completion.choices[0].message.content}), 200

    return app
