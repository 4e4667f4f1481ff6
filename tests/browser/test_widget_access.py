"""The widget by keyboard, on a phone-sized screen, in both themes, and cancelled midway."""

from __future__ import annotations

from playwright.sync_api import Page, ViewportSize, expect

from tests.browser.conftest import ARTIFACTS, Book
from tests.browser.servers import Gunicorn
from tests.browser.widget_page import ANSWERED, ask, last_job_id, open_panel, read_job

PHONE: ViewportSize = {"width": 375, "height": 667}
# The panel's colours in each theme (widget.css, without a Docusaurus --ifm palette).
LIGHT = ("rgb(255, 255, 255)", "rgb(28, 30, 33)")
DARK = ("rgb(36, 37, 38)", "rgb(227, 227, 227)")


def _focused_inside_panel(page: Page) -> bool:
    return bool(
        page.evaluate("document.querySelector('.bc-panel').contains(document.activeElement)")
    )


def _focused_name(page: Page) -> str:
    return str(
        page.evaluate(
            "(e => e.getAttribute('aria-label') || e.textContent.trim() || e.className)"
            "(document.activeElement)"
        )
    )


def _assert_no_overflow(page: Page, selector: str) -> None:
    """Neither the page nor this box scrolls sideways; names what sticks out if one does."""
    widths = page.evaluate(
        """s => [document.documentElement.scrollWidth, window.innerWidth,
                 document.querySelector(s).scrollWidth, document.querySelector(s).clientWidth]""",
        selector,
    )
    wide = page.evaluate(
        """() => Array.from(document.querySelectorAll('body *'))
             .filter(e => e.getBoundingClientRect().right > window.innerWidth)
             .map(e => e.tagName + '.' + e.className).slice(0, 10)"""
    )
    assert widths[0] <= widths[1] and widths[2] <= widths[3], (widths, wide)


def test_keyboard_opens_sends_traps_focus_and_closes(page: Page, book: Book) -> None:
    page.goto(book.url + "/")
    launcher = page.get_by_role("button", name="Open chat: Ask the textbook")
    launcher.focus()
    page.keyboard.press(" ")  # Space opens, like Enter
    expect(page.get_by_role("dialog", name="Ask the textbook")).to_be_visible()
    question = page.get_by_role("textbox", name="Your question")
    expect(question).to_be_focused()
    for name in ("Close chat", "Send", "New chat", "Personalize this chapter"):
        expect(page.get_by_role("button", name=name, exact=True)).to_be_visible()

    page.keyboard.type("What is a ROS 2 node?")
    page.keyboard.press("Shift+Enter")  # a new line, not a send
    page.keyboard.type("Keep it short.")
    expect(question).to_have_value("What is a ROS 2 node?\nKeep it short.")
    expect(page.locator(".bc-user")).to_have_count(0)

    # Tab and Shift+Tab cycle through the panel's controls and never leave it.
    seen = set()
    for _ in range(10):
        page.keyboard.press("Tab")
        assert _focused_inside_panel(page), "Tab left the open panel"
        seen.add(_focused_name(page))
    assert {"Close chat", "Send", "New chat", "Conversation"} <= seen, seen
    page.get_by_role("button", name="Close chat").focus()
    page.keyboard.press("Shift+Tab")  # from the first control back round to the last
    expect(page.get_by_role("button", name="Send")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Close chat")).to_be_focused()
    for _ in range(10):
        page.keyboard.press("Shift+Tab")
        assert _focused_inside_panel(page), "Shift+Tab left the open panel"

    question.focus()
    page.keyboard.press("Enter")
    expect(page.locator(ANSWERED)).to_have_count(1)
    expect(page.locator(".bc-user")).to_have_text(["What is a ROS 2 node?\nKeep it short."])
    expect(question).to_have_value("")
    # Send was disabled while the answer ran; focus must still be in the dialog.
    page.keyboard.press("Tab")
    assert _focused_inside_panel(page)

    page.keyboard.press("Escape")
    expect(page.locator(".bc-panel")).to_be_hidden()
    expect(launcher).to_be_focused()
    expect(launcher).to_have_attribute("aria-expanded", "false")
    page.keyboard.press("Enter")
    expect(page.locator(".bc-panel")).to_be_visible()
    expect(launcher).to_have_attribute("aria-expanded", "true")
    expect(question).to_be_focused()
    assert not page.errors  # type: ignore[attr-defined]


def test_the_panel_fills_a_phone_screen_with_every_control_usable(page: Page, book: Book) -> None:
    page.set_viewport_size(PHONE)
    page.goto(book.url + "/book/ros2/nodes-and-topics")
    open_panel(page)

    panel = page.locator(".bc-panel").bounding_box()
    assert panel == {"x": 0, "y": 0, "width": PHONE["width"], "height": PHONE["height"]}
    expect(page.locator(".bc-launcher")).to_be_hidden()  # the panel covers it; Close is there
    controls = [
        page.get_by_role("button", name="Close chat"),
        page.get_by_role("button", name="New chat"),
        page.get_by_role("button", name="Personalize this chapter"),
        page.get_by_role("button", name="Translate to Urdu"),
        page.get_by_role("textbox", name="Your question"),
        page.get_by_role("button", name="Send"),
    ]
    for control in controls:
        expect(control).to_be_visible()
        box = control.bounding_box()
        assert box is not None
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
        assert box["height"] >= 24, box  # big enough to tap
    _assert_no_overflow(page, ".bc-panel")

    ask(page, "How do publishers and subscribers use a topic?")
    expect(page.locator(ANSWERED)).to_have_count(1)
    _assert_no_overflow(page, ".bc-log")
    page.screenshot(path=str(ARTIFACTS / "phone-answer.png"))
    page.get_by_role("button", name="Close chat").click()
    expect(page.locator(".bc-launcher")).to_be_visible()
    expect(page.locator(".bc-launcher")).to_be_focused()


def test_the_panel_follows_the_pages_theme_when_it_changes(page: Page, book: Book) -> None:
    page.goto(book.url + "/")
    open_panel(page)
    panel, question = page.locator(".bc-panel"), page.locator(".bc-input")
    expect(panel).to_have_css("background-color", LIGHT[0])
    expect(panel).to_have_css("color", LIGHT[1])

    page.evaluate("document.documentElement.setAttribute('data-theme', 'dark')")
    expect(panel).to_have_css("background-color", DARK[0])
    expect(panel).to_have_css("color", DARK[1])
    expect(question).to_have_css("background-color", DARK[0])
    expect(question).to_have_css("color", DARK[1])
    page.screenshot(path=str(ARTIFACTS / "dark-panel.png"))

    page.evaluate("document.documentElement.setAttribute('data-theme', 'light')")
    expect(panel).to_have_css("background-color", LIGHT[0])
    expect(question).to_have_css("color", LIGHT[1])


def test_cancel_stops_a_running_answer(page: Page, book: Book, stalled: Gunicorn) -> None:
    page.goto(stalled.url + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 node?")
    waiting = page.locator('.bc-assistant[data-status="queued"]')
    expect(waiting).to_have_count(1)  # no worker reads this API's queue: it waits until cancelled
    cancel = page.get_by_role("button", name="Cancel")
    expect(page.get_by_role("button", name="Send")).to_be_disabled()
    cancel.click()

    cancelled = page.locator('.bc-assistant[data-status="cancelled"]')
    expect(cancelled).to_have_count(1)
    expect(cancelled).to_contain_text("Cancelled.")
    expect(cancelled).to_have_attribute("aria-busy", "false")
    expect(page.locator(".bc-notice")).to_have_text("Answer cancelled.")
    expect(cancel).to_be_hidden()
    expect(page.get_by_role("textbox", name="Your question")).to_be_focused()
    assert read_job(stalled.url, page, last_job_id(page))["status"] == "cancelled"
    expect(cancelled.locator(".bc-md")).to_have_text("")

    page.reload()  # the cancelled answer is not resumed
    open_panel(page)
    expect(page.locator('.bc-assistant[data-status="cancelled"]')).to_have_count(1)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()
    assert not page.errors  # type: ignore[attr-defined]
