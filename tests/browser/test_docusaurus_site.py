"""The reader on a real Docusaurus site: every citation opens its page at its heading.

The fixture book is built as a default Docusaurus 3 site (docs under /docs) with bookchat's
one script tag, served by `docusaurus serve` on an origin of its own, and ingested with
TEXTBOOK_BASE_URL=/docs as docs/docusaurus.md says. Chromium then follows citations the way a reader
does, and opens every citation URL the index holds.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from common.book.ingest.documents import parse_document
from common.book.ingest.sources import find_markdown_files
from tests.browser.conftest import ARTIFACTS
from tests.browser.servers import Gunicorn
from tests.browser.widget_page import ANSWERED, ask, guest_count, open_panel
from tests.support.cli import free_port
from tests.support.docusaurus import DocusaurusUnavailable, SiteServer, build_site
from tests.support.stack import NewStack, Stack

FIXTURE_BOOK = Path(__file__).resolve().parents[1] / "fixtures" / "docusaurus_book"
NOT_FOUND = "Page Not Found"
# A question, and the page (as its path on the site) and heading its citation must open.
READER_CASES = [
    pytest.param(
        "How do pulsed LiDAR sensors use time of flight and phase?",
        "/docs/Physics-&-Sensors/lidar & depth",
        "time-of-flight--phase",
        id="ampersand-and-space",
    ),
    pytest.param(
        "How do I install the simulator with the package manager?",
        "/docs/02 Getting started/first steps",
        "install-the-simulator",
        id="space-in-folder-and-file",
    ),
    pytest.param(
        "What are the parameters of Denavit Hartenberg matrices in cinématique directe?",
        "/docs/Ünïcode-Topics/çinématique",
        "matrices-de-denavithartenberg",
        id="unicode",
    ),
    pytest.param(
        "How do I write a launch file that starts several nodes?",
        "/docs/02 Getting started/launch-files",
        "writing-a-launch-file",
        id="relative-slug",
    ),
]

pytestmark = pytest.mark.slow


@dataclass
class DocusaurusReader:
    """A built Docusaurus site with the widget, and the bookchat it talks to."""

    site: SiteServer
    refused: SiteServer  # the same build on an origin CORS_ORIGINS does not list
    api: Gunicorn
    stack: Stack


@pytest.fixture(scope="module")
def docusaurus(
    tmp_path_factory: pytest.TempPathFactory, new_stack: NewStack
) -> Iterator[DocusaurusReader]:
    """The fixture book as a default Docusaurus site on its own origin, and bookchat beside it."""
    folder = tmp_path_factory.mktemp("docusaurus-site")
    api_port, site_port = free_port(), free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    # docs/docusaurus.md's script tag, as a site owner adds it to docusaurus.config.js.
    script = {"src": f"{api_url}/widget.js", "async": True, "data-api": api_url}
    try:
        built = build_site(FIXTURE_BOOK, folder / "build", scripts=[script])
    except DocusaurusUnavailable as exc:
        pytest.skip(str(exc))
    book = folder / "docs"
    shutil.copytree(FIXTURE_BOOK, book)
    site = SiteServer(built, site_port, folder / "serve.log")
    refused = SiteServer(built, free_port(), folder / "serve-refused.log")
    running = new_stack(
        "docusaurus-site",
        var_dir=folder / "var",
        port=api_port,
        textbook_path=book,
        textbook_base_url="/docs",
        cors_origins=[site.origin],
    )
    try:
        with running as stack:
            api = None
            try:
                assert stack.ingest(book)["status"] == "completed"
                api = Gunicorn(stack.settings, folder / "gunicorn.log")
                yield DocusaurusReader(site, refused, api, stack)
            finally:
                if api is not None:
                    api.stop()
    finally:
        site.stop()
        refused.stop()


def _console_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        # The fixture site has no favicon; Chromium's request for one is not the reader's page.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", note)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return errors


def _heading_in_view(page: Page, anchor: str) -> bool:
    return bool(
        page.evaluate(
            """(id) => {
                const el = document.getElementById(id);
                if (!el) return false;
                const box = el.getBoundingClientRect();
                return box.top >= 0 && box.top < window.innerHeight;
            }""",
            anchor,
        )
    )


@pytest.mark.parametrize(("question", "path", "anchor"), READER_CASES)
def test_a_reader_follows_a_citation_to_its_page_and_heading(
    docusaurus: DocusaurusReader, page: Page, question: str, path: str, anchor: str
) -> None:
    errors = _console_errors(page)
    page.goto(docusaurus.site.origin + "/docs/intro")
    expect(page.locator("article")).to_contain_text("Welcome to the fixture book")
    open_panel(page)

    ask(page, question)
    expect(page.locator(ANSWERED)).to_have_count(1, timeout=90_000)
    citation = page.locator(f'{ANSWERED} a.bc-cite[href*="#{anchor}"]').first
    expect(citation).to_be_attached()
    if not citation.is_visible():  # a passage retrieved but not cited sits in a folded list
        page.locator(f"{ANSWERED} details.bc-more summary").click()
    citation.click()

    page.wait_for_url(lambda url: unquote(urlsplit(url).path) == path)
    expect(page.locator("article h1")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text(NOT_FOUND)
    page.wait_for_function("(id) => !!document.getElementById(id)", arg=anchor)
    page.wait_for_function(
        """(id) => { const t = document.getElementById(id).getBoundingClientRect().top;
                     return t >= 0 && t < window.innerHeight; }""",
        arg=anchor,
    )
    assert _heading_in_view(page, anchor)
    assert errors == []
    if path.endswith("lidar & depth"):
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "docusaurus-citation.png"))


def test_every_citation_url_of_the_book_opens_in_the_browser(
    docusaurus: DocusaurusReader, page: Page
) -> None:
    errors = _console_errors(page)
    files = find_markdown_files(FIXTURE_BOOK, [FIXTURE_BOOK]).files
    opened = 0
    for file in files:
        document = parse_document(file.path, FIXTURE_BOOK, "/docs")
        for section in document.sections:
            url = document.url + (f"#{section.anchor}" if section.anchor else "")
            page.goto(docusaurus.site.origin + url)
            expect(page.locator("article h1"), url).to_be_visible()
            expect(page.locator("body"), url).not_to_contain_text(NOT_FOUND)
            if section.anchor:
                assert page.evaluate("(id) => !!document.getElementById(id)", section.anchor), url
            opened += 1
    assert opened >= 30
    assert errors == []


def test_the_launcher_is_the_first_tab_stop_of_a_real_docusaurus_page(
    docusaurus: DocusaurusReader, page: Page
) -> None:
    errors = _console_errors(page)
    page.goto(docusaurus.site.origin + "/docs/Physics-&-Sensors/lidar & depth")
    launcher = page.locator(".bc-launcher")
    expect(launcher).to_be_attached()

    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to main content")).to_be_focused()
    page.keyboard.press("Alt+Shift+C")
    expect(page.locator(".bc-panel")).to_be_visible()
    assert errors == []  # the widget outside Docusaurus's root leaves hydration alone


def test_a_site_that_is_not_allowed_is_told_so_and_gets_no_guest(
    docusaurus: DocusaurusReader, page: Page
) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    guests = guest_count(docusaurus.stack)
    page.goto(docusaurus.refused.origin + "/docs/intro")
    open_panel(page)

    ask(page, "What does the book cover?")

    expect(page.locator(".bc-notice")).to_have_text("The chat is not enabled on this site.")
    assert guest_count(docusaurus.stack) == guests
    assert any(f"CORS_ORIGINS='[\"{docusaurus.refused.origin}\"]'" in m for m in console), console
