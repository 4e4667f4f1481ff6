"""bench.spike's report: one row per database, and SQLite's p99 over PostgreSQL's."""

from __future__ import annotations

from typing import Any

import pytest

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
        "open_loop": {rate: {"p99_ms": p99, "errors": 0} for rate, p99 in loop_p99.items()},
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
    assert "baseline" not in out  # --no-baseline: no row for it
