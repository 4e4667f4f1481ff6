"""The admin page's content: a real insights run drawn as charts and tables, CSV, the queues.

The insights come from a real run on a real worker over seeded questions (tests/support/
insights_seed.py); the actions (recompute, bulk retry) go through the page's forms.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from common.platform.db import session_scope
from common.platform.models import AuditEntry, ChatJob, JobStatus, ReprocessJob
from tests.conftest import _new_redis_db
from tests.support.insights_seed import seed_questions, wait_for_run
from tests.support.stack import Stack, make_settings, start_stack
from tests.web.admin_page.helpers import form_token, make_account, sign_in

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def page_stack(tmp_path_factory: pytest.TempPathFactory, redis_base_url: str) -> Iterator[Stack]:
    """A stack of this module's own, its worker also on the reprocess queue (insights runs):
    its seeded questions stay out of the other tests' numbers."""
    var_dir = tmp_path_factory.mktemp("admin-page")
    settings = make_settings(var_dir, _new_redis_db(redis_base_url))
    running = start_stack(settings, queues=("chat", "ingest", "reprocess"))
    yield running
    running.stop()


def _admin(stack: Stack) -> FlaskClient:
    client = stack.app.test_client()
    assert sign_in(client, make_account(stack)).status_code == 303
    return client


def _csv(client: FlaskClient, table: str) -> list[dict[str, str]]:
    response = client.get(f"/admin/insights.csv?table={table}&window=7d")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"].startswith(
        f'attachment; filename="bookchat-{table}-'
    )
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_a_window_without_a_report_offers_to_compute_it(idle_stack: Stack) -> None:
    client = _admin(idle_stack)
    page = client.get("/admin/?window=custom&since=2020-01-01&until=2020-01-07")
    csv_response = client.get(
        "/admin/insights.csv?table=gaps&window=custom&since=2020-01-01&until=2020-01-07",
        headers=HTML,
    )

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "No insights for this window yet" in text and "Recompute this window" in text
    assert "<script" not in text and "style=" not in text
    assert csv_response.status_code == 404 and csv_response.mimetype == "text/html"


def test_recompute_starts_a_run_and_the_page_shows_its_progress(idle_stack: Stack) -> None:
    client = _admin(idle_stack)  # no worker reads this queue: the run stays queued
    window = "window=custom&since=2021-03-01&until=2021-03-07"
    token = form_token(client.get(f"/admin/?{window}"))

    response = client.post(f"/admin/insights/recompute?{window}", data={"csrf_token": token})

    assert response.status_code == 303
    assert response.headers["Location"] == f"/admin/?{window}&notice=recompute"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="5">' in page
    assert re.search(r'<progress id="run-progress" max="100" value="\d+">', page)
    assert "Recomputation started" in page
    with session_scope(idle_stack.resources.sessions) as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.action == "insights.recompute")
        ).all()
    assert actions


def test_bad_window_input_is_a_4xx_page(idle_stack: Stack) -> None:
    client = _admin(idle_stack)

    for query in ("window=1y", "window=custom&since=x&until=y", "window=7d&table=users"):
        response = client.get(f"/admin/insights.csv?{query}", headers=HTML)
        assert 400 <= response.status_code < 500, query
    assert client.get("/admin/?window=custom&since=2026-02-01", headers=HTML).status_code == 400


def test_dead_letters_are_listed_and_retried_once_per_form(idle_stack: Stack) -> None:
    client = _admin(idle_stack)
    with session_scope(idle_stack.resources.sessions) as session:
        owner = session.scalar(select(ChatJob.user_id).limit(1))
        if owner is None:  # the idle stack may have no job yet: make the reader too
            from tests.support.insights_seed import seed_questions as seed

            seed(idle_stack.resources.sessions, copies=1)
            owner = session.scalar(select(ChatJob.user_id).limit(1))
        dead = ChatJob(
            user_id=owner,
            message=f"dead letter {uuid.uuid4().hex[:6]}",
            request_hash="0" * 64,
            status=JobStatus.FAILED.value,
            error_code="worker_lost",
            error_message="the worker died",
        )
        session.add(dead)
    page = client.get("/admin/")
    text = page.get_data(as_text=True)
    assert dead.message in text and "worker_lost" in text
    token, key = form_token(page), re.search(r'name="idempotency_key" value="(\w+)"', text)
    assert key

    form = {"csrf_token": token, "idempotency_key": key.group(1)}
    first = client.post("/admin/dead-letters/retry", data=form)
    second = client.post("/admin/dead-letters/retry", data=form)  # a double click

    assert first.status_code == second.status_code == 303
    with session_scope(idle_stack.resources.sessions) as session:
        retries = session.scalar(
            select(func.count()).where(ReprocessJob.idempotency_key == key.group(1))
        )
    assert retries == 1


def test_a_computed_report_is_drawn_as_charts_and_tables(page_stack: Stack) -> None:
    seeded = seed_questions(page_stack.resources.sessions)
    client = _admin(page_stack)
    token = form_token(client.get("/admin/"))
    assert client.post("/admin/insights/recompute", data={"csrf_token": token}).status_code == 303
    job = wait_for_run(page_stack.resources.sessions)
    assert job.status == "completed", (job.error_code, job.error_message)

    text = client.get("/admin/").get_data(as_text=True)

    for chart in ("chart-questions", "chart-rates", "chart-gaps", "chart-pages"):
        svg = re.search(rf'<svg class="chart" id="{chart}" role="img".*?</svg>', text, re.S)
        assert svg, chart
        assert '<rect class="bar"' in svg.group(0) or "<polyline" in svg.group(0), chart
    assert f"<dt>Questions</dt><dd>{seeded.questions}</dd>" in text
    assert f"<dt>Refused</dt><dd>{seeded.refused}</dd>" in text
    assert "calibrate" in text.lower()  # the lidar gap
    assert 'href="/book/ros2/nodes-and-topics#what-is-a-node"' in text  # the demo's copy
    per_day = _csv(client, "per_day")
    assert sum(int(row["questions"]) for row in per_day) == seeded.questions
    assert sum(int(row["down"]) for row in per_day) == seeded.down
    gaps = _csv(client, "gaps")
    assert any("lidar" in row["representative"].lower() for row in gaps)
    pages = _csv(client, "pages")
    listed = {(r["list"], r["url"]) for r in pages}
    assert ("most_cited", "/ros2/nodes-and-topics#what-is-a-node") in listed
    assert ("never_cited", "/ros2/nodes-and-topics#what-is-a-node") not in listed
