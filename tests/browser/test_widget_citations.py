"""The widget lists what an answer cites first, other sources apart, and marks cut-off answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from bench.openai_sim import SimulatorHandle
from tests.browser.conftest import Book
from tests.browser.servers import Gunicorn
from tests.browser.widget_page import ANSWERED, ask, last_job_id, open_panel, read_job
from tests.support.cli import free_port
from tests.support.stack import NewStack, simulator_settings


@pytest.fixture(scope="module")
def model_api(
    tmp_path_factory: pytest.TempPathFactory, new_stack: NewStack, simulator: SimulatorHandle
) -> Iterator[Gunicorn]:
    """bookchat answering through the OpenAI SDK and the simulator, under gunicorn."""
    folder = tmp_path_factory.mktemp("model-widget")
    model = simulator_settings(simulator)
    with new_stack("model-widget", var_dir=folder / "var", port=free_port(), **model) as stack:
        api = Gunicorn(stack.settings, folder / "gunicorn.log")
        try:
            yield api
        finally:
            api.stop()


def test_cited_passages_come_first_and_the_rest_apart(page: Page, book: Book) -> None:
    page.goto(book.url + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 node?")

    answer = page.locator(ANSWERED)
    expect(answer).to_have_count(1)
    job = read_job(book.url, page, last_job_id(page))
    assert job["citations"], job
    cited = answer.locator(".bc-sources li")
    expect(cited).to_have_count(len(job["citations"]))
    for item, citation in zip(cited.all(), job["citations"], strict=True):
        expect(item).to_have_attribute("value", str(citation["n"]))
    uncited = answer.locator(".bc-more .bc-uncited li")
    expect(uncited).to_have_count(len(job["sources"]))
    # Cited first; the others after them, folded away until the reader opens them.
    order = answer.evaluate(
        "n => [...n.querySelectorAll('.bc-sources, .bc-more')].map(e => e.className)"
    )
    assert order == ["bc-sources"] + (["bc-more"] if job["sources"] else [])
    if job["sources"]:
        expect(uncited.first).to_be_hidden()
        answer.locator(".bc-more summary").click()
        expect(uncited.first).to_be_visible()
    assert not page.errors  # type: ignore[attr-defined]


def test_a_cut_off_answer_says_so_and_keeps_saying_so_after_a_reload(
    page: Page, model_api: Gunicorn, sim: SimulatorHandle
) -> None:
    sim.update_config(finish_reason="length")
    page.goto(model_api.url + "/")
    open_panel(page)
    ask(page, "What is a ROS 2 topic?")

    answer = page.locator('.bc-assistant[data-status="incomplete"]')
    expect(answer).to_have_count(1)
    note = "The answer was cut off: it reached the length limit."
    expect(answer.locator(".bc-cut")).to_have_text(note)
    job = read_job(model_api.url, page, last_job_id(page))
    assert job["status"] == "incomplete" and job["answer"]
    expect(answer.locator(".bc-md")).to_have_text(job["answer"])

    page.reload()
    open_panel(page)
    expect(page.locator('.bc-assistant[data-status="incomplete"] .bc-cut')).to_have_text(note)
    assert not page.errors  # type: ignore[attr-defined]
