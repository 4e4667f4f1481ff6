"""An insights run in a real worker with a model configured: each gap group gets a finding."""

from __future__ import annotations

import time

import pytest

from bench.openai_sim import SimulatorHandle
from common.admin.insights.runs import get_run, run_body, start_run
from common.platform.after_commit import commit
from common.platform.db import session_scope
from tests.common.admin.insights.seed import SINCE, UNTIL, seed_once
from tests.support.stack import Stack

pytestmark = [pytest.mark.timeout(240)]


def test_gap_groups_get_the_models_finding_and_suggestion(
    insights_openai_stack: Stack, sim: SimulatorHandle
) -> None:
    stack, started = insights_openai_stack, time.time()
    with session_scope(stack.resources.sessions) as session:
        seed_once(session)
        run = start_run(session, stack.resources.celery, SINCE, UNTIL, requested_by=None)
        commit(session)
        run_id = run.id
    deadline = time.monotonic() + 120
    while True:
        with session_scope(stack.resources.sessions) as session:
            body = run_body(*get_run(session, run_id))
        if body["finished"] or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert body["status"] == "completed", (body, stack.worker_log())
    gaps = body["report"]["gaps"]
    assert [g["count"] for g in gaps] == [3, 1]
    for gap in gaps:
        assert gap["representative"] in gap["finding"], gap
        assert gap["suggestion"], gap
    asked = [r for r in sim.log(since=started) if "advise the author" in str(r)]
    assert len(asked) == 2
