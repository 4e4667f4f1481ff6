"""Readers rate answers in the widget: thumbs by mouse and keyboard, kept across reloads."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Book
from tests.browser.widget_page import ANSWERED, ask, last_job_id, open_panel, read_job, saved


def _answer(page: Page, book: Book, question: str) -> str:
    page.goto(book.url + "/")
    open_panel(page)
    ask(page, question)
    expect(page.locator(ANSWERED)).to_have_count(1)
    return last_job_id(page)


def test_a_thumbs_up_is_kept_across_reloads_from_the_server(page: Page, book: Book) -> None:
    job_id = _answer(page, book, "What is a ROS 2 node?")
    up = page.locator(ANSWERED).get_by_role("button", name="Helpful", exact=True)
    expect(up).to_have_attribute("aria-pressed", "false")

    up.click()

    expect(up).to_have_attribute("aria-pressed", "true")
    expect(page.locator(ANSWERED).get_by_role("status")).to_have_text("Thanks for your feedback.")
    assert read_job(book.url, page, job_id)["feedback"]["rating"] == "up"
    # Forget the saved copy: after a reload the rating comes back from the server.
    page.evaluate(
        "() => { const [k, v] = Object.entries(localStorage).find(([k]) => "
        "k.startsWith('bookchat:')); const s = JSON.parse(v); "
        "s.messages.forEach(m => delete m.feedback); localStorage.setItem(k, JSON.stringify(s)); }"
    )
    page.reload()
    open_panel(page)
    up = page.locator(ANSWERED).get_by_role("button", name="Helpful", exact=True)
    expect(up).to_have_attribute("aria-pressed", "true")
    down = page.locator(ANSWERED).get_by_role("button", name="Not helpful")
    expect(down).to_have_attribute("aria-pressed", "false")
    assert saved(page)["messages"][-1]["feedback"]["rating"] == "up"

    up.click()  # pressed again: withdrawn

    expect(up).to_have_attribute("aria-pressed", "false")
    expect(page.locator(ANSWERED).get_by_role("status")).to_have_text("Rating removed.")
    assert read_job(book.url, page, job_id)["feedback"] is None
    assert not page.errors  # type: ignore[attr-defined]


def test_a_thumbs_down_with_reason_and_comment_by_keyboard(page: Page, book: Book) -> None:
    job_id = _answer(page, book, "What is a ROS 2 topic?")
    down = page.locator(ANSWERED).get_by_role("button", name="Not helpful")
    down.focus()

    page.keyboard.press("Enter")

    expect(down).to_have_attribute("aria-pressed", "true")
    assert read_job(book.url, page, job_id)["feedback"]["rating"] == "down"
    reasons = page.locator(ANSWERED).get_by_role("group", name="What was wrong?")
    expect(reasons).to_be_visible()
    # Focus moved to the first reason; arrows choose, Tab reaches the comment, then Send.
    expect(reasons.get_by_role("radio", name="Wrong")).to_be_focused()
    page.keyboard.press("ArrowDown")
    expect(reasons.get_by_role("radio", name="Unclear")).to_be_checked()
    page.keyboard.press("Tab")
    comment = page.locator(ANSWERED).get_by_label("Comment (optional)")
    expect(comment).to_be_focused()
    page.keyboard.type("Which topic does it mean?")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Send feedback")).to_be_focused()
    page.keyboard.press("Enter")

    expect(page.locator(ANSWERED).get_by_role("status")).to_have_text("Thanks for your feedback.")
    expect(reasons).to_have_count(0)
    expect(down).to_be_focused()
    feedback = read_job(book.url, page, job_id)["feedback"]
    assert (feedback["rating"], feedback["reason"]) == ("down", "unclear")
    assert feedback["comment"] == "Which topic does it mean?"
    page.reload()
    open_panel(page)
    expect(page.locator(ANSWERED).get_by_role("button", name="Not helpful")).to_have_attribute(
        "aria-pressed", "true"
    )
    assert not page.errors  # type: ignore[attr-defined]
