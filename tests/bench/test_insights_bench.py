"""bench/insights.py end to end on a small size: the phases run and their numbers add up."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from bench.insights_data import CORPUS
from tests.support.stack import REPO_ROOT

pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.slow,
]  # end to end: in `make test`, not `make test-fast`


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the textbook corpus is not on this machine")
def test_a_small_run_embeds_everything_once_then_only_the_new_jobs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench.insights", "--jobs", "600", "--new", "40"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=280, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cold"]["embedded"] == 600
    assert result["incremental"]["embedded"] == 40
    assert result["incremental"]["questions"] == result["cold"]["questions"] + 40
    assert result["cold_floor"]["questions"] == 600
    assert result["cold"]["gaps"] > 0 and result["cold"]["groups"] > 0
    assert "cold run" in out.stdout and "incremental run" in out.stdout
