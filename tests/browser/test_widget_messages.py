"""What the widget tells the reader when the API refuses, or cannot be reached."""

from __future__ import annotations

import re
import uuid

import jwt
from playwright.sync_api import Page, expect

from common.accounts.quotas import charge_tokens, spender_of
from common.platform.redis_client import make_redis
from tests.browser.conftest import LIMITED_DAILY_TOKENS, Book
from tests.browser.servers import Gunicorn
from tests.browser.widget_page import ANSWERED, ask, open_panel

CHAPTER = "/book/ros2/nodes-and-topics"
NO_MODEL = "none is configured on this server"


def _expect_refused(page: Page, question: str, message: str) -> None:
    """The notice says why, no answer was started, and the question is back in the box."""
    expect(page.locator(".bc-notice")).to_contain_text(message)
    expect(page.locator(".bc-input")).to_have_value(question)
    expect(page.get_by_role("button", name="Send")).to_be_enabled()


def test_too_many_questions_say_when_to_try_again(page: Page, limited: Gunicorn) -> None:
    page.goto(limited.url + "/")
    open_panel(page)
    for n, question in enumerate(["What is a ROS 2 node?", "What is a topic?"], start=1):
        ask(page, question)
        expect(page.locator(ANSWERED)).to_have_count(n)

    ask(page, "What is a service?")  # the third this minute (LIMITED_SUBMITS)
    _expect_refused(page, "What is a service?", "You are asking too quickly. Try again in ")
    expect(page.locator(".bc-notice")).to_have_text(re.compile(r"Try again in \d+ seconds?\.$"))
    expect(page.locator(".bc-user")).to_have_count(2)


def test_a_used_up_daily_quota_says_when_it_resets(
    page: Page, book: Book, limited: Gunicorn
) -> None:
    guest = book.stack.client.post("/v1/auth/guest").get_json()
    page.goto(limited.url + "/")
    page.evaluate(
        "([key, token]) => localStorage.setItem(key, JSON.stringify("
        "{guest: {token: token, expires: Date.now() + 600000}}))",
        [f"bookchat:{limited.url}", guest["access_token"]],
    )
    user_id = jwt.decode(guest["access_token"], options={"verify_signature": False})["sub"]
    quotas = book.stack.settings.model_copy(update={"guest_daily_tokens": LIMITED_DAILY_TOKENS})
    spender = spender_of(quotas, uuid.UUID(user_id), "guest", None)
    charge_tokens(make_redis(book.stack.settings), spender, LIMITED_DAILY_TOKENS)
    page.reload()
    open_panel(page)

    ask(page, "What is a ROS 2 node?")
    _expect_refused(page, "What is a ROS 2 node?", "You have used today's answer allowance.")
    reset = page.evaluate(
        "(() => { const d = new Date(); d.setUTCHours(24, 0, 0, 0); return d.toLocaleString(); })()"
    )
    expect(page.locator(".bc-notice")).to_contain_text(f"It resets at {reset}.")
    expect(page.locator(".bc-assistant")).to_have_count(0)


def test_losing_the_network_says_so_and_the_next_try_works(page: Page, book: Book) -> None:
    page.goto(book.url + "/")
    open_panel(page)
    page.context.set_offline(True)
    ask(page, "What is a ROS 2 node?")
    _expect_refused(page, "What is a ROS 2 node?", "You are offline. Reconnect and try again.")
    page.context.set_offline(False)

    # Online, but the server is unreachable (the connection fails).
    page.route("**/v1/chat/jobs", lambda route: route.abort("connectionrefused"))
    page.locator(".bc-input").press("Enter")
    expect(page.locator(".bc-notice")).to_contain_text("Cannot reach the chat service.")
    expect(page.locator(".bc-input")).to_have_value("What is a ROS 2 node?")
    page.unroute("**/v1/chat/jobs")

    page.locator(".bc-input").press("Enter")
    expect(page.locator(ANSWERED)).to_have_count(1)
    expect(page.locator(".bc-notice")).to_be_hidden()
    expect(page.locator(".bc-user")).to_have_count(1)


def test_personalizing_needs_an_account_with_a_profile(page: Page, book: Book) -> None:
    page.goto(book.url + CHAPTER)
    open_panel(page)
    personalize = page.get_by_role("button", name="Personalize this chapter")
    personalize.click()
    expect(page.locator(".bc-notice")).to_have_text(
        "Sign in to personalize chapters: it uses your saved reader profile."
    )
    expect(personalize).to_be_enabled()

    headers = book.stack.signup("personalizer")
    page.evaluate("t => window.bookchat.setToken(t)", headers["Authorization"].split()[1])
    profile = {"software_level": "beginner", "robotics_experience": "none"}
    saved = book.stack.client.put("/v1/me/profile", json=profile, headers=headers)
    assert saved.status_code == 200, saved.get_json()
    personalize.click()
    expect(page.locator(".bc-notice")).to_contain_text(NO_MODEL)
    expect(personalize).to_be_enabled()
    expect(page.locator(".bc-user")).to_have_count(0)  # nothing was started
