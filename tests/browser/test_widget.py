"""The reader's widget in headless Chromium against a running bookchat (gunicorn + worker)."""

from __future__ import annotations

import os
import re
import shutil

from playwright.sync_api import Page, expect

from tests.browser.conftest import ARTIFACTS, Book
from tests.browser.widget_page import (
    ANSWERED,
    ask,
    guest_count,
    last_job_id,
    open_panel,
    read_job,
    saved,
)
from tests.support.stack import REPO_ROOT

# The picture in the README and docs/docusaurus.md: refreshed with UPDATE_SCREENSHOTS=1, so
# plain runs leave git clean.
README_SCREENSHOT = REPO_ROOT / "docs" / "widget-demo.png"


def test_streamed_answer_cites_the_page_and_survives_a_reload(page: Page, book: Book) -> None:
    streams: list[str] = []
    page.on("response", lambda r: streams.append(r.headers.get("content-type", "")))
    page.goto(book.url + "/")
    launcher = page.locator(".bc-launcher")
    launcher.focus()
    page.keyboard.press("Enter")  # keyboard: open, type, send
    expect(page.locator(".bc-input")).to_be_focused()
    page.keyboard.type("What is a ROS 2 node?")
    page.keyboard.press("Enter")

    answer = page.locator(ANSWERED)
    expect(answer).to_have_count(1)
    job = read_job(book.url, page, last_job_id(page))
    assert job["status"] == "completed" and job["answer"]
    assert any(t.startswith("text/event-stream") for t in streams)  # streamed, not polled
    expect(answer.locator(".bc-md")).to_have_text(job["answer"])
    first = job["citations"][0]
    cite = answer.locator(".bc-cite").first
    expect(cite).to_have_attribute("href", "/book" + first["url"])
    page.screenshot(path=str(ARTIFACTS / "demo-answer.png"))
    if os.environ.get("UPDATE_SCREENSHOTS") or not README_SCREENSHOT.exists():
        shutil.copyfile(ARTIFACTS / "demo-answer.png", README_SCREENSHOT)

    page.keyboard.press("Escape")  # closes and gives focus back to the launcher
    expect(page.locator(".bc-panel")).to_be_hidden()
    expect(launcher).to_be_focused()

    page.reload()
    open_panel(page)
    expect(page.locator(ANSWERED + " .bc-md")).to_have_text(job["answer"])
    expect(page.locator(".bc-user")).to_have_text(["What is a ROS 2 node?"])

    page.locator(".bc-cite").first.click()
    path, anchor = first["url"].split("#")
    expect(page).to_have_url(re.compile(re.escape(f"/book{path}#{anchor}") + "$"))
    expect(page.locator(f"[id='{anchor}']")).to_be_visible()
    assert not page.errors  # type: ignore[attr-defined]


def test_selected_text_is_asked_about_with_the_page_path(page: Page, book: Book) -> None:
    page.goto(book.url + "/book/ros2/nodes-and-topics")
    paragraph = page.locator("#chapter p", has_text="A ROS 2 node is").first
    paragraph.click(click_count=3)  # a triple click selects the paragraph, as a reader would
    ask_button = page.locator(".bc-ask")
    expect(ask_button).to_be_visible()
    ask_button.click()
    expect(page.locator(".bc-chip")).to_contain_text("A ROS 2 node is")
    ask(page, "What does a node do?")

    expect(page.locator(ANSWERED)).to_have_count(1)
    job = read_job(book.url, page, last_job_id(page))
    assert job["selected_text"].startswith("A ROS 2 node is")
    assert job["page_url"] == "/ros2/nodes-and-topics"
    assert "one well-defined job" in job["answer"]
    expect(page.locator(".bc-user .bc-quote")).to_contain_text("A ROS 2 node is")


def test_a_cut_stream_resumes_without_duplicated_text(page: Page, book: Book) -> None:
    event_requests: list[dict[str, str]] = []
    page.on(
        "request",
        lambda r: event_requests.append(r.headers) if r.url.endswith("/events") else None,
    )
    page.goto(book.cut_url + "/")
    open_panel(page)
    book.cutter.armed = True
    cuts = book.cutter.cuts
    ask(page, "How do publishers and subscribers use a topic?")

    expect(page.locator(ANSWERED)).to_have_count(1)
    assert book.cutter.cuts == cuts + 1, "the stream was never cut"
    assert len(event_requests) >= 2
    assert "last-event-id" not in event_requests[0]
    assert event_requests[-1]["last-event-id"]
    job = read_job(book.url, page, last_job_id(page))
    assert saved(page)["messages"][-1]["text"] == job["answer"]  # each delta exactly once
    expect(page.locator(ANSWERED + " .bc-md")).to_have_text(job["answer"])


def test_an_allowed_origin_works_and_another_is_refused(page: Page, book: Book) -> None:
    page.goto(book.allowed.origin + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 node?")
    expect(page.locator(ANSWERED)).to_have_count(1)
    expect(page.locator(".bc-cite").first).to_have_attribute("href", re.compile("^/ros2/"))

    console: list[str] = []
    page.on("console", lambda m: console.append(m.text) if m.type == "error" else None)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/v1/auth/guest") else None)
    guests = guest_count(book.stack)
    page.goto(book.refused.origin + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 node?")
    expect(page.locator(".bc-notice")).to_have_text("The chat is not enabled on this site.")
    expect(page.locator(".bc-input")).to_have_value("What is a ROS 2 node?")
    expect(page.locator(".bc-assistant")).to_have_count(0)
    assert asked  # the browser did ask for a guest token (no preflight), and got none
    assert guest_count(book.stack) == guests
    # The console tells the site's owner which setting to change, and to what.
    advice = [m for m in console if "CORS_ORIGINS" in m]
    assert advice and f"CORS_ORIGINS='[\"{book.refused.origin}\"]'" in advice[0], console


def test_markup_from_the_book_and_stored_answers_renders_as_text(page: Page, book: Book) -> None:
    page.goto(book.url + "/")
    open_panel(page)
    ask(page, "What does a zebracrossing detector flag?")

    answer = page.locator(ANSWERED)
    expect(answer).to_have_count(1)
    expect(answer.locator(".bc-md")).to_contain_text("<img src=x onerror=window.pwned=3")
    expect(answer.locator(".bc-sources")).to_contain_text(
        'Safety <img src=x onerror="window.pwned=1"> notes'
    )
    # A stored answer with complete tags, a script and a javascript: link, rendered on reload.
    page.evaluate(
        """() => {
          const key = Object.keys(localStorage).find(k => k.startsWith('bookchat:'));
          const state = JSON.parse(localStorage.getItem(key));
          state.messages.push({role: 'assistant', status: 'completed', citations: [],
            text: 'Look <img src=x onerror="window.pwned=4"> and ' +
                  '<script>window.pwned=5</script> [click](javascript:window.pwned=6)\\n\\n' +
                  '- item `<b>code</b>`\\n\\n```\\n<img src=x onerror=window.pwned=7>\\n```'});
          localStorage.setItem(key, JSON.stringify(state));
        }"""
    )
    page.reload()
    open_panel(page)
    stored = page.locator(".bc-assistant").last
    expect(stored).to_contain_text('Look <img src=x onerror="window.pwned=4"> and <script>')
    expect(stored.locator("pre code")).to_have_text("<img src=x onerror=window.pwned=7>")
    expect(stored.locator("li code")).to_have_text("<b>code</b>")
    assert stored.locator("a").count() == 0  # the javascript: link stays text
    assert page.locator("[data-bookchat] img, [data-bookchat] script").count() == 0
    assert page.evaluate("window.pwned") is None


def test_polls_when_a_proxy_blocks_the_event_stream(page: Page, book: Book) -> None:
    # What a buffering proxy or a filter does to streams: an answer that is not text/event-stream.
    page.route("**/events", lambda route: route.fulfill(status=200, json={"blocked": True}))
    page.goto(book.url + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 node?")

    expect(page.locator(ANSWERED)).to_have_count(1)
    job = read_job(book.url, page, last_job_id(page))
    expect(page.locator(ANSWERED + " .bc-md")).to_have_text(job["answer"])


def test_chapter_translation_says_when_no_model_is_configured(page: Page, book: Book) -> None:
    page.goto(book.url + "/book/ros2/nodes-and-topics")
    open_panel(page)
    page.get_by_role("button", name="Translate to Urdu").click()

    expect(page.locator(".bc-notice")).to_contain_text("none is configured on this server")
    expect(page.get_by_role("button", name="Translate to Urdu")).to_be_enabled()
