"""What the browser tests do to the widget on a page, and how they read its state back."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from common.platform.models import Role, User
from tests.support.stack import Stack

ANSWERED = '.bc-assistant[data-status="completed"]'


def ask(page: Page, question: str) -> None:
    """Type a question and send it with Enter."""
    page.locator(".bc-input").fill(question)
    page.locator(".bc-input").press("Enter")


def open_panel(page: Page) -> None:
    """Open the chat panel with the floating button."""
    page.locator(".bc-launcher").click()
    expect(page.locator(".bc-panel")).to_be_visible()


def saved(page: Page) -> dict[str, Any]:
    """The widget's localStorage record."""
    state: dict[str, Any] = page.evaluate(
        "JSON.parse(Object.entries(localStorage).find(([k]) => k.startsWith('bookchat:'))[1])"
    )
    return state


def read_job(api: str, page: Page, job_id: str) -> dict[str, Any]:
    """The job as the API at this address has it, read with the widget's own guest token."""
    token = saved(page)["guest"]["token"]
    request = urllib.request.Request(
        f"{api}/v1/chat/jobs/{job_id}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        job: dict[str, Any] = json.load(response)
    return job


def last_job_id(page: Page) -> str:
    """The id of the last answer's job."""
    return str(saved(page)["messages"][-1]["jobId"])


def guest_count(stack: Stack) -> int:
    """How many guest accounts the stack's database holds."""
    with stack.resources.sessions() as session:
        return int(session.scalar(select(func.count()).where(User.role == Role.GUEST.value)) or 0)
