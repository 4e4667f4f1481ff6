"""The admin page in real Chromium: sign in, a real insights run drawn, CSV, phone width, refusal.

A bookchat of this module's own (gunicorn, and a worker on the chat, ingest and reprocess
queues) over seeded questions; the admin starts the run from the page and watches it finish.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, FloatRect, Page, expect

from common.platform.models import Role
from tests.browser.conftest import ARTIFACTS
from tests.browser.servers import Gunicorn
from tests.conftest import _new_redis_db
from tests.support.cli import free_port
from tests.support.insights_seed import Seeded, seed_questions
from tests.support.stack import REPO_ROOT, TEST_PASSWORD, Stack, make_settings, start_stack
from tests.web.admin_page.helpers import make_account

# The README's pictures: refreshed with UPDATE_SCREENSHOTS=1, so plain runs leave git clean.
DESKTOP_SCREENSHOT = REPO_ROOT / "docs" / "admin-page.png"
PHONE_SCREENSHOT = REPO_ROOT / "docs" / "admin-page-phone.png"
RUN_TIMEOUT_MS = 120_000


class AdminSite:
    """The running bookchat, its seeded history, and an admin's and a reader's emails."""

    def __init__(self, stack: Stack, api: Gunicorn, seeded: Seeded) -> None:
        self.stack, self.api, self.seeded = stack, api, seeded
        self.admin = make_account(stack, Role.ADMIN)
        self.reader = make_account(stack, Role.USER)

    @property
    def url(self) -> str:
        """The site's address."""
        return self.api.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[AdminSite]:
    """bookchat under gunicorn with a worker that also runs insights, over seeded questions."""
    folder = tmp_path_factory.mktemp("admin-browser")
    settings = make_settings(folder / "var", _new_redis_db(redis_base_url), port=free_port())
    stack = start_stack(settings, queues=("chat", "ingest", "reprocess"))
    api = None
    try:
        seeded = seed_questions(stack.resources.sessions)
        api = Gunicorn(settings, folder / "gunicorn.log")
        yield AdminSite(stack, api, seeded)
    finally:
        if api is not None:
            api.stop()
        stack.stop()


def _sign_in(page: Page, site: AdminSite, email: str) -> None:
    page.goto(site.url + "/admin/")
    expect(page).to_have_url(site.url + "/admin/login?next=/admin/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(TEST_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _no_page_overflow(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _save(shot: Path, target: Path) -> None:
    if os.environ.get("UPDATE_SCREENSHOTS") or not target.exists():
        shutil.copyfile(shot, target)


def test_an_admin_sees_the_insights_drawn_and_downloads_a_csv(page: Page, site: AdminSite) -> None:
    console: list[str] = []
    page.on("console", lambda message: console.append(message.text))
    _sign_in(page, site, site.admin)
    expect(page.get_by_role("heading", name="No insights for this window yet")).to_be_visible()

    page.get_by_role("button", name="Recompute this window").click()
    notice = re.compile("Recomputation started|were recomputed")  # a fast run is done already
    expect(page.get_by_role("status").first).to_contain_text(notice)
    # The page refreshes itself (meta refresh) until the run's report is there.
    bars = page.locator("svg#chart-questions rect.bar")
    expect(bars.first).to_be_attached(timeout=RUN_TIMEOUT_MS)

    assert bars.count() >= 4  # the seeded days
    assert page.locator("svg#chart-rates polyline").count() >= 1
    assert page.locator("svg#chart-gaps rect.bar").count() >= 1
    assert page.locator("svg#chart-pages rect.bar").count() >= 1
    heights = [
        float(h) for h in bars.evaluate_all("bars => bars.map(b => b.getAttribute('height'))")
    ]
    assert max(heights) > 0
    expect(page.locator("svg#chart-questions")).to_have_attribute("role", "img")
    expect(page.locator(".totals")).to_contain_text(str(site.seeded.questions))
    expect(page.locator("#gaps")).to_contain_text("calibrate")
    expect(page.locator("#operations")).to_contain_text("reprocess")

    with page.expect_download() as download:
        page.locator("#per-day-heading a.csv").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sum(int(row["questions"]) for row in rows) == site.seeded.questions
    assert download.value.suggested_filename.startswith("bookchat-per_day-")

    page.reload()
    page.keyboard.press("Tab")  # keyboard: the first stop is the skip link, visibly focused
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert skip.evaluate("el => el.getBoundingClientRect().left >= 0")
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    assert [text for text in console if "Content Security Policy" in text] == []

    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("main").focus()
    page.evaluate("window.scrollTo(0, 0)")
    clip: FloatRect = {"x": 0, "y": 0, "width": 1280, "height": 1700}  # window, totals, charts
    page.screenshot(path=str(ARTIFACTS / "admin-page.png"), full_page=True, clip=clip)
    _save(ARTIFACTS / "admin-page.png", DESKTOP_SCREENSHOT)

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    expect(page.locator("svg#chart-questions rect.bar").first).to_be_attached()
    assert _no_page_overflow(page)  # wide tables scroll inside their box, not the page
    page.locator("#per-day-heading").scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "admin-page-phone.png"))
    _save(ARTIFACTS / "admin-page-phone.png", PHONE_SCREENSHOT)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(site.url + "/admin/login")
    page.goto(site.url + "/admin/")
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_a_reader_is_refused_and_stays_signed_out(browser: Browser, site: AdminSite) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        page = context.new_page()
        _sign_in(page, site, site.reader)

        expect(page.get_by_role("heading", name="403 · Forbidden")).to_be_visible()
        expect(page.locator("main")).to_contain_text("not an administrator")
        page.goto(site.url + "/admin/")
        expect(page).to_have_url(site.url + "/admin/login?next=/admin/")
        cookies = {c["name"] for c in context.cookies()}
        assert "bookchat_admin" not in cookies
        csv_response = page.request.get(site.url + "/admin/insights.csv?table=per_day")
        assert "text/csv" not in csv_response.headers.get("content-type", "")
    finally:
        context.close()
