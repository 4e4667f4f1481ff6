"""bench.spike's report: one row per database, SQLite's p99 over PostgreSQL's, the CPU budget."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from bench.cpu_budget import CpuMeter, budget_ms, per_submit_ms
from bench.spike import print_tables, ratios


def figures(submit_p99: float, loop_p99: dict[str, float]) -> dict[str, Any]:
    """One database's figures as `run_database` returns them."""
    return {
        "submit_p50_ms": submit_p99 / 2,
        "submit_p99_ms": submit_p99,
        "errors": 0,
        "lost_jobs": 0,
        "drain_s": 145.0,
        "drain_floor_s": 140.0,
        "floor": {"submit_p50_ms": 1.0, "submit_p99_ms": 2.0, "errors": 0},
        "open_loop": {
            rate: {
                "p99_ms": p99,
                "errors": 0,
                "cpu_ms_per_submit": {"web": 2.5, "worker": 4.0, "machine (busy)": 9.0},
                "cpu_budget_ms": 2000 / float(rate),
            }
            for rate, p99 in loop_p99.items()
        },
    }


def test_ratios_divide_sqlite_by_postgresql_per_figure() -> None:
    sqlite = figures(300.0, {"50": 40.0, "100": 90.0})
    postgresql = figures(200.0, {"50": 20.0, "100": 0.0})
    assert ratios(sqlite, postgresql) == {
        "submit_p99": 1.5,
        "open_loop_50_p99": 2.0,
        "open_loop_100_p99": None,  # no PostgreSQL figure to divide by
    }


def test_the_tables_name_each_database_and_the_ratio(capsys: pytest.CaptureFixture[str]) -> None:
    result = {
        "databases": {
            "sqlite": figures(300.0, {"50": 40.0}),
            "postgresql": figures(200.0, {"50": 20.0}),
        },
        "sqlite_over_postgresql": {"submit_p99": 1.5, "open_loop_50_p99": 2.0},
    }
    print_tables(result)
    out = capsys.readouterr().out
    assert "| bookchat | sqlite | 150.0 | 300.0 | 0 | 0 | 145.0 (floor 140.0) |" in out
    assert "| bookchat | postgresql | 100.0 | 200.0 |" in out
    assert "| 50 | 40.0 (0) | 20.0 (0) |" in out
    assert '"submit_p99": 1.5' in out
    # The CPU budget: what a submit at 50/s may spend on 2 cores, what each group spent.
    assert "| sqlite | 50 | 40.0 | 9.0 | 2.5 | 4.0 | 0.0 |" in out
    assert "baseline" not in out  # --no-baseline: no row for it


def test_the_cpu_meter_charges_a_busy_child_to_its_group() -> None:
    spin = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\n"
    busy = subprocess.Popen(
        [sys.executable, "-c", spin + "print('spun', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE,
    )
    try:
        meter = CpuMeter({"busy": [busy.pid]})
        meter.start()
        assert busy.stdout is not None and busy.stdout.readline() == b"spun\n"
        used = meter.stop()
    finally:
        busy.kill()
        busy.wait()
    assert 0.25 <= used["busy"] <= used["machine (busy)"]
    assert per_submit_ms({"busy": 0.5}, 100) == {"busy": 5.0}
    assert budget_ms(200, cores=2) == 10.0
