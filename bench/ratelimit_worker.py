"""A bookchat worker whose answerer is chosen by the rate-limit benchmark.

python -m bench.ratelimit_worker --strategy limiter|tenacity|sdk|celery-rate-limit ...
"""

from __future__ import annotations

import argparse
from functools import cached_property

from bench.ratelimit_baselines import SDKRetriesAnswerer, SleepRecordingOpenAI, TenacityAnswerer
from cli.processes import celery_worker_argv
from common.jobs.queue import CHAT_ANSWER_TASK
from common.llm.base import Answerer
from common.llm.openai_answerer import make_openai_sdk
from common.platform.settings import Settings, get_settings
from workers.app import create_worker_app
from workers.resources import WorkerResources

STRATEGIES = ("limiter", "tenacity", "sdk", "celery-rate-limit")


class BenchResources(WorkerResources):
    """Worker resources with the answerer replaced by a baseline's."""

    def __init__(self, settings: Settings, strategy: str) -> None:
        super().__init__(settings)
        self.strategy = strategy

    @cached_property
    def answerer(self) -> Answerer:
        """The strategy's answerer."""
        settings = self.settings
        if self.strategy == "limiter":
            return super().answerer
        if self.strategy == "tenacity":
            return TenacityAnswerer(
                make_openai_sdk(settings), settings.chat_model, settings.chat_max_tokens
            )
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
        sdk = SleepRecordingOpenAI(
            api_key=key, base_url=settings.openai_base_url, timeout=settings.openai_timeout_seconds
        )
        return SDKRetriesAnswerer(sdk, settings.chat_model, settings.chat_max_tokens)


def main() -> None:
    """Run a chat worker with the chosen strategy."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategy", choices=STRATEGIES, required=True)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--hostname", default="bench@%h")
    parser.add_argument("--rate-limit", default="", help="Celery rate_limit, e.g. 145/m")
    args = parser.parse_args()
    settings = get_settings()
    app = create_worker_app(settings, BenchResources(settings, args.strategy))
    if args.strategy == "celery-rate-limit":
        # What the Celery docs offer: a task rate limit, set to the account's limit.
        app.tasks[CHAT_ANSWER_TASK].rate_limit = args.rate_limit
    app.worker_main(
        celery_worker_argv(["chat"], args.concurrency, "threads", "WARNING", args.hostname)
    )


if __name__ == "__main__":
    main()
