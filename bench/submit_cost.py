"""Server CPU of one chat-job submit, against a trivial view under the same gunicorn.

Starts the API (gunicorn, as `bookchat web` runs it) over a private Redis with no worker, so
submitted jobs stay queued, and reads the gunicorn workers' CPU (utime + stime from
/proc/<pid>/stat) before and after N sequential requests of each kind:

- the floor: `GET /healthz`, a view that only returns a small JSON body. It goes through the
  same app, hooks, problem handler and access log as every request; a bench-only route would
  have to ship in the app, so the existing trivial view is the floor.
- the submit: `POST /v1/chat/jobs` with a fresh Idempotency-Key each time (the common case).

    python -m bench.submit_cost [--requests 2000] [--database-url postgresql://...]

`--profile` instead builds the app in this process over the same private Redis and database
and prints the functions taking the most cumulative CPU over N submits (cProfile around the
WSGI call only, so the test client's own work is left out).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.support import BenchStack, print_metrics

_TICKS = os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def gunicorn_workers(root: int) -> list[int]:
    """The leaf processes under `root` (gunicorn's workers; the arbiter only supervises)."""
    leaves, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        kids = _children(pid)
        if kids:
            frontier.extend(kids)
        elif pid != root:
            leaves.append(pid)
    return leaves


def cpu_seconds(pids: list[int]) -> float:
    """User plus system CPU of the processes, in seconds."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


def _measure(pids: list[int], count: int, send: Any) -> dict[str, float]:
    started_cpu, started = cpu_seconds(pids), time.perf_counter()
    for n in range(count):
        send(n)
    wall = time.perf_counter() - started
    cpu = cpu_seconds(pids) - started_cpu
    return {"cpu_ms_per_request": cpu / count * 1000, "wall_ms_per_request": wall / count * 1000}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start the API, measure floor and submit alternately, return the medians."""
    env = {"ADMISSION_MAX_QUEUED": str(10 * args.requests * args.rounds + 1000)}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack.start(Path(tmp), env, workers=0)
        try:
            pids = gunicorn_workers(stack.processes[-1].pid)
            with httpx.Client(base_url=stack.base_url, timeout=30) as http:
                signup = {"email": f"b-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
                token = http.post("/v1/auth/signup", json=signup).json()["access_token"]
                auth = {"Authorization": f"Bearer {token}"}

                def floor(_n: int) -> None:
                    assert http.get("/healthz").status_code == 200

                def submit(n: int) -> None:
                    headers = {**auth, "Idempotency-Key": uuid.uuid4().hex}
                    body = {"message": f"What is a ROS 2 node? ({n})"}
                    response = http.post("/v1/chat/jobs", json=body, headers=headers)
                    assert response.status_code == 202, response.text

                for send in (floor, submit):  # warm both paths (imports, pools, caches)
                    _measure(pids, 50, send)
                floors, submits = [], []
                for _ in range(args.rounds):  # interleaved, so drift hits both alike
                    floors.append(_measure(pids, args.requests, floor))
                    submits.append(_measure(pids, args.requests, submit))
        finally:
            stack.stop()
    floor_ms = _median([m["cpu_ms_per_request"] for m in floors])
    submit_ms = _median([m["cpu_ms_per_request"] for m in submits])
    return {
        "requests_per_round": args.requests,
        "rounds": args.rounds,
        "database": "postgresql" if args.database_url else "sqlite",
        "gunicorn_workers": len(pids),
        "floor_cpu_ms": round(floor_ms, 3),
        "submit_cpu_ms": round(submit_ms, 3),
        "floor_wall_ms": round(_median([m["wall_ms_per_request"] for m in floors]), 3),
        "submit_wall_ms": round(_median([m["wall_ms_per_request"] for m in submits]), 3),
        "ratio": round(submit_ms / floor_ms, 2) if floor_ms else None,
    }


def profile(args: argparse.Namespace) -> str:
    """The top functions by cumulative CPU of `args.requests` submits, in process."""
    env = {"ADMISSION_MAX_QUEUED": str(10 * args.requests + 1000)}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    with tempfile.TemporaryDirectory() as tmp:
        stack = BenchStack.start(Path(tmp), env, workers=0, web=False)
        try:
            os.environ.update(stack.env)
            from common.platform.settings import Settings  # after the env: read once here
            from web import create_app

            app = create_app(Settings())
            profiler = cProfile.Profile(time.process_time)
            inner = app.wsgi_app

            def profiled(environ: Any, start_response: Any) -> Any:
                profiler.enable()
                try:
                    return list(inner(environ, start_response))
                finally:
                    profiler.disable()

            client = app.test_client()
            signup = {"email": f"b-{uuid.uuid4().hex[:8]}@example.com", "password": "x" * 12}
            token = client.post("/v1/auth/signup", json=signup).get_json()["access_token"]

            def submit(n: int) -> None:
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                body = {"message": f"What is a ROS 2 node? ({n})"}
                response = client.post("/v1/chat/jobs", json=body, headers=headers)
                assert response.status_code == 202, response.get_data(as_text=True)

            for n in range(50):  # warm up unprofiled
                submit(n)
            app.wsgi_app = profiled  # type: ignore[method-assign]
            for n in range(args.requests):
                submit(n)
        finally:
            stack.stop()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats(args.profile_sort).print_stats(args.profile_lines)
    return out.getvalue()


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    """Parse flags, run, print a table and a final JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and kind")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", default="", help="default: SQLite under a temp folder")
    parser.add_argument("--profile", action="store_true", help="print a CPU profile of submits")
    parser.add_argument("--profile-lines", type=int, default=40)
    parser.add_argument("--profile-sort", default="cumulative", choices=["cumulative", "tottime"])
    args = parser.parse_args()
    if args.profile:
        print(profile(args))
        return
    result = run(args)
    print_metrics(result)


if __name__ == "__main__":
    main()
