"""Fixtures for the real-browser tests: Debian's Chromium, a running bookchat, host pages."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.browser.servers import Gunicorn, HostPage, StreamCutter
from tests.conftest import _new_redis_db
from tests.support.cli import free_port
from tests.support.stack import SAMPLE_TEXTBOOK, NewStack, Stack

CHROMIUM = Path("/usr/bin/chromium")
LIMITED_SUBMITS = "2/minute"  # chat submits per guest on the `limited` API
# Room for a question's and a follow-up's reservations (~3,300 and ~11,200 tokens).
LIMITED_DAILY_TOKENS = 40_000
FEW_GUESTS = "1/hour"  # guest tokens per address on the `few_guests` API
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# A page whose title and prose carry markup: the widget must show it as text.
HOSTILE_PAGE = """---
title: Safety <img src=x onerror="window.pwned=1"> notes
---

# Safety notes

## Zebra crossings

A zebracrossing detector is a node that flags <img src=x onerror="window.pwned=2"> walkers
and publishes `<img src=x onerror=window.pwned=3>` warnings to the planner.
"""


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium from Debian's package, driven by Playwright."""
    if not CHROMIUM.exists():
        missing = f"{CHROMIUM} is missing: `make chromium` installs Debian's package"
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI must not pass by skipping the browser
        pytest.skip(missing)
    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # root cannot use the sandbox
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=args
        )
        yield launched
        launched.close()


@dataclass
class Book:
    """bookchat under gunicorn with a worker, plus the pages and proxy the tests browse."""

    stack: Stack
    api: Gunicorn
    allowed: HostPage
    refused: HostPage
    cutter: StreamCutter

    @property
    def url(self) -> str:
        """The API's (and demo's) address."""
        return self.api.url

    @property
    def cut_url(self) -> str:
        """The demo through the stream cutter."""
        return f"http://127.0.0.1:{self.cutter.port}"


@pytest.fixture(scope="package")
def book(tmp_path_factory: pytest.TempPathFactory, new_stack: NewStack) -> Iterator[Book]:
    """The sample book plus a hostile page, ingested, served by gunicorn on a fresh port."""
    folder = tmp_path_factory.mktemp("browser")
    textbook = folder / "textbook"
    shutil.copytree(SAMPLE_TEXTBOOK, textbook)
    (textbook / "04-safety").mkdir()
    (textbook / "04-safety" / "hostile.md").write_text(HOSTILE_PAGE)
    allowed = HostPage()  # its origin goes in the settings; its API address comes later
    refused = HostPage()
    running = new_stack(
        "browser",
        var_dir=folder / "var",
        port=free_port(),
        textbook_path=textbook,
        cors_origins=[allowed.origin],
        # Every few words its own event, so a cut can fall between two deltas.
        delta_flush_chars=1,
        delta_flush_ms=0,
    )
    with running as stack:
        api = None
        try:
            ingested = stack.ingest(textbook)
            assert ingested["status"] == "completed", ingested
            api = Gunicorn(stack.settings, folder / "gunicorn.log")
            allowed.set_api(api.url)
            refused.set_api(api.url)
            cutter = StreamCutter("127.0.0.1", stack.settings.port)
            cutter.start()
            try:
                yield Book(stack, api, allowed, refused, cutter)
            finally:
                cutter.close()
        finally:
            if api is not None:
                api.stop()
            allowed.stop()
            refused.stop()


def _second_api(book: Book, folder: Path, **overrides: object) -> Iterator[Gunicorn]:
    settings = book.stack.settings.model_copy(update={"port": free_port(), **overrides})
    api = Gunicorn(settings, folder / f"gunicorn-{settings.port}.log")
    try:
        yield api
    finally:
        api.stop()


@pytest.fixture(scope="package")
def limited(book: Book, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """The same bookchat (database, queue, worker) behind a second API with small limits."""
    yield from _second_api(
        book,
        tmp_path_factory.mktemp("limited"),
        rate_limit_guest_submit=LIMITED_SUBMITS,
        guest_daily_tokens=LIMITED_DAILY_TOKENS,
    )


@pytest.fixture(scope="package")
def few_guests(book: Book, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    """The same bookchat behind an API that gives each address one guest token an hour."""
    yield from _second_api(book, tmp_path_factory.mktemp("few-guests"), rate_limit_guest=FEW_GUESTS)


@pytest.fixture(scope="package")
def stalled(
    book: Book, tmp_path_factory: pytest.TempPathFactory, redis_base_url: str
) -> Iterator[Gunicorn]:
    """The same database behind an API whose queue no worker reads: its jobs stay queued."""
    yield from _second_api(
        book, tmp_path_factory.mktemp("stalled"), redis_url=_new_redis_db(redis_base_url)
    )


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (empty localStorage) per test."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(30_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A page that records script errors and leaves a screenshot of its last state."""
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    tab.errors = errors  # type: ignore[attr-defined]
    yield tab
    ARTIFACTS.mkdir(exist_ok=True)
    tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
