"""The widget on a host's pages: load orders, guest limits, an absent server, the keyboard."""

from __future__ import annotations

import re
import urllib.request

import pytest
from playwright.sync_api import Page, Request, expect

from tests.browser.conftest import Book
from tests.browser.servers import Gunicorn
from tests.browser.widget_page import ANSWERED, ask, guest_count, open_panel
from tests.support.cli import free_port

SCRIPT = '<script {mode} src="{api}/widget.js" data-api="{api}" data-title="Book chat"></script>'
QUEUE = "<script>window.bookchat = window.bookchat || []; bookchat.push({call});</script>"
AT_LOAD = '<script>addEventListener("load", () => {{ {code} }});</script>'
# Each way a host's own code and the widget's script can meet, as host pages.
LOAD_ORDERS = {
    "queue-then-async-script": QUEUE + SCRIPT.format(mode="async", api="{api}"),
    "script-then-queue": SCRIPT.format(mode="", api="{api}") + QUEUE,
    "async-script-then-queue-after-load": SCRIPT.format(mode="async", api="{api}")
    + AT_LOAD.format(code="window.bookchat = window.bookchat || []; bookchat.push({call});"),
    "queue-then-defer-script": QUEUE + SCRIPT.format(mode="defer", api="{api}"),
    "ready-event-then-async-script": (
        '<script>addEventListener("bookchat:ready", () => window.bookchat.setToken("{token}"));'
        "</script>" + SCRIPT.format(mode="async", api="{api}")
    ),
}


def _host_page(body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Host</title></head>'
        f"<body><main><h1>Nodes</h1><p>A ROS 2 node performs one job.</p></main>{body}"
        "</body></html>"
    )


def _track(page: Page) -> list[Request]:
    """The requests the page sends to the API's auth and job routes, in order."""
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if "/v1/" in r.url else None)
    return sent


@pytest.mark.parametrize("order", list(LOAD_ORDERS))
def test_a_hosts_token_reaches_the_widget_whatever_the_load_order(
    page: Page, book: Book, order: str
) -> None:
    token = book.stack.signup("host")["Authorization"].split()[1]
    call = f'["setToken", "{token}"]'
    if order.startswith("async-script-then"):
        call = f"function (bc) {{ bc.setToken('{token}'); }}"  # the function form
    body = LOAD_ORDERS[order].replace("{call}", call).replace("{token}", token)
    sent = _track(page)
    page.goto(book.allowed.add_page(_host_page(body)))
    expect(page.locator(".bc-launcher")).to_be_attached()
    page.wait_for_load_state("load")

    open_panel(page)
    ask(page, "What is a ROS 2 node?")
    expect(page.locator(ANSWERED)).to_have_count(1)
    assert not [r.url for r in sent if r.url.endswith("/v1/auth/guest")]  # never a guest
    posted = [r for r in sent if r.method == "POST" and r.url.endswith("/v1/chat/jobs")]
    assert [r.headers["authorization"] for r in posted] == [f"Bearer {token}"]
    assert page.evaluate("Array.isArray(window.bookchat)") is False
    assert not page.errors  # type: ignore[attr-defined]


def test_calls_pushed_after_loading_run_at_once_and_in_order(page: Page, book: Book) -> None:
    page.goto(book.allowed.origin + "/")
    expect(page.locator(".bc-launcher")).to_be_attached()

    page.evaluate('window.bookchat.push(["open"], ["close"], ["open"])')

    expect(page.get_by_role("dialog", name="Book chat")).to_be_visible()
    expect(page.locator(".bc-input")).to_be_focused()
    assert not page.errors  # type: ignore[attr-defined]


def test_a_server_that_is_down_is_not_called_a_refusal(page: Page, book: Book) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"  # the script loads; its API answers nothing
    body = (
        f'<script async src="{book.url}/widget.js" data-api="{nobody}"'
        ' data-title="Book chat"></script>'
    )
    page.goto(book.allowed.add_page(_host_page(body)))
    open_panel(page)
    ask(page, "What is a ROS 2 node?")
    expect(page.locator(".bc-notice")).to_have_text(
        "Cannot reach the chat service. Check your connection and try again."
    )
    expect(page.locator(".bc-input")).to_have_value("What is a ROS 2 node?")


def test_a_used_up_guest_limit_says_what_happened_and_when(
    page: Page, book: Book, few_guests: Gunicorn
) -> None:
    # Another reader on the same network (this machine's address) took the hour's one token.
    with urllib.request.urlopen(
        urllib.request.Request(f"{few_guests.url}/v1/auth/guest", method="POST"), timeout=10
    ) as taken:
        assert taken.status == 201
    guests = guest_count(book.stack)
    page.goto(few_guests.url + "/")
    open_panel(page)

    with page.expect_response("**/v1/auth/guest") as answer:
        ask(page, "What is a ROS 2 node?")

    problem = answer.value.json()
    assert answer.value.status == 429 and problem["code"] == "guest_limit_reached"
    local = page.evaluate(
        """iso => new Date(Math.ceil(new Date(iso).getTime() / 60000) * 60000)
             .toLocaleTimeString([], {hour: "numeric", minute: "2-digit"})""",
        problem["resets_at"],
    )
    notice = page.locator(".bc-notice")
    expect(notice).to_contain_text(
        "Guest chats from your network are used up for now: readers who share a connection, "
        "like a class, share its guest chats. Sign in to ask, or try again at "
    )
    expect(notice).to_have_text(re.compile(re.escape(f"{local}.") + "$"))  # past midnight: "Fri "
    expect(notice).not_to_contain_text("too quickly")
    expect(page.locator(".bc-input")).to_have_value("What is a ROS 2 node?")
    expect(page.locator(".bc-assistant")).to_have_count(0)
    assert guest_count(book.stack) == guests


# A documentation page as Docusaurus lays it out: a skip link, a navbar, a long sidebar.
SIDEBAR_LINKS = 60
DOCS_PAGE = """<!doctype html><html lang="en" data-theme="light"><head><meta charset="utf-8">
<title>Nodes</title></head><body class="navigation-with-keyboard">
<script>/* the theme's inline script */</script>
<div id="__docusaurus">
<div role="region" aria-label="Skip to main content">
<a class="skipToContent" href="#__docusaurus_skipToContent_fallback">Skip to main content</a>
</div>
<nav aria-label="Main"><a href="/">Fixture book</a> <a href="/docs/intro">Tutorial</a>
<button type="button" aria-label="Switch between dark and light mode">theme</button></nav>
<div class="main-wrapper"><aside><nav aria-label="Docs sidebar"><ul>{links}</ul></nav></aside>
<main id="__docusaurus_skipToContent_fallback" tabindex="-1"><article><h1>Nodes</h1>
<p>A ROS 2 node performs <a href="#topics">one job</a>.</p></article></main></div>
</div>
<script async src="{api}/widget.js" data-api="{api}" data-title="Book chat"></script>
</body></html>
"""


def _focused(page: Page) -> str:
    return str(
        page.evaluate(
            "(e => e.getAttribute('aria-label') || e.textContent.trim())(document.activeElement)"
        )
    )


@pytest.fixture
def docs_page(book: Book) -> str:
    """A long Docusaurus-like page that embeds the widget; its URL."""
    links = "".join(
        f'<li><a href="/docs/chapter-{n}">Chapter {n}</a></li>' for n in range(SIDEBAR_LINKS)
    )
    return book.allowed.add_page(DOCS_PAGE.replace("{links}", links))


def test_the_launcher_is_an_early_tab_stop_after_a_long_sidebar(page: Page, docs_page: str) -> None:
    page.goto(docs_page)
    launcher = page.get_by_role("button", name="Open chat: Book chat")
    expect(launcher).to_be_attached()

    page.keyboard.press("Tab")
    expect(launcher).to_be_focused()
    expect(launcher).to_have_accessible_name("Open chat: Book chat (Alt+Shift+C)")
    expect(launcher).to_have_attribute("aria-keyshortcuts", "Alt+Shift+C")
    page.keyboard.press("Tab")  # the page's skip link comes next
    assert _focused(page) == "Skip to main content"
    page.keyboard.press("Shift+Tab")
    expect(launcher).to_be_focused()
    box = launcher.bounding_box()  # still drawn at the bottom right, whatever its DOM place
    assert box is not None and box["y"] > 600 and box["x"] > 1100, box

    page.keyboard.press("Tab")  # and the skip link still skips the sidebar
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert _focused(page) == "one job"
    launcher.press("Enter")
    expect(page.get_by_role("dialog", name="Book chat")).to_be_visible()
    expect(page.get_by_role("textbox", name="Your question")).to_be_focused()


def test_the_shortcut_opens_the_chat_from_anywhere_but_a_text_field(
    page: Page, docs_page: str
) -> None:
    page.goto(docs_page)
    expect(page.locator(".bc-launcher")).to_be_attached()
    page.get_by_role("link", name="Chapter 42").focus()

    page.keyboard.press("Alt+Shift+C")
    expect(page.get_by_role("dialog", name="Book chat")).to_be_visible()
    expect(page.get_by_role("textbox", name="Your question")).to_be_focused()
    page.keyboard.press("Alt+Shift+C")  # again: closes, back to the launcher
    expect(page.locator(".bc-panel")).to_be_hidden()
    expect(page.locator(".bc-launcher")).to_be_focused()

    page.evaluate(
        "document.querySelector('main').appendChild(document.createElement('input')).focus()"
    )
    page.keyboard.press("Alt+Shift+C")  # the reader is typing in the page: left alone
    expect(page.locator(".bc-panel")).to_be_hidden()
    assert page.evaluate("document.activeElement.tagName") == "INPUT"
