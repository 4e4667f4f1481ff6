"""Books survive restarts of a real `bookchat dev`: its start-up ingest touches only its own book.

A book ingested through `bookchat ingest` and one through the admin API are both still found
after `bookchat dev` is stopped and started twice (each start re-ingests TEXTBOOK_PATH).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.cli import DevRun, clean_env, run_bookchat
from tests.support.stack import SAMPLE_TEXTBOOK

PASSWORD = "correct horse battery"
CLI_BOOK = (
    "# Gait planning\n\n## Zero moment point\n\nThe zebramoment criterion keeps a biped upright.\n"
)
API_BOOK = "# Tactile skins\n\n## Taxels\n\nA quokkaskin grid of taxels senses pressure.\n"


def _write_book(folder: Path, text: str) -> Path:
    (folder / "chapter").mkdir(parents=True)
    (folder / "chapter" / "page.md").write_text(text, encoding="utf-8")
    return folder


def _found(env: dict[str, str], cwd: Path, query: str) -> set[str]:
    """The books whose passages `bookchat search` returns for the query."""
    done = run_bookchat("search", query, "--json", "--k", "10", env=env, cwd=cwd, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return {hit["book"] for hit in json.loads(done.stdout)}


def _admin_ingest(dev: DevRun, env: dict[str, str], cwd: Path, folder: Path) -> None:
    made = run_bookchat("create-admin", "root@example.com", env=env, cwd=cwd, input=PASSWORD)
    assert made.returncode == 0, made.stdout + made.stderr
    with httpx.Client(base_url=dev.base_url, timeout=30, trust_env=False) as http:
        login = http.post(
            "/v1/auth/login", json={"email": "root@example.com", "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        queued = http.post(
            "/v1/admin/ingest", json={"path": str(folder), "book": "skins"}, headers=headers
        )
        assert queued.status_code == 202, queued.text
        deadline = time.monotonic() + 180
        while True:
            job = http.get(queued.headers["Location"], headers=headers).json()
            if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.5)
    assert job["status"] == "completed", job


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_books_ingested_by_the_cli_and_the_api_survive_two_restarts(tmp_path: Path) -> None:
    books = tmp_path / "books"
    gait = _write_book(books / "gait", CLI_BOOK)
    skins = _write_book(books / "skins", API_BOOK)
    var_dir = tmp_path / "var"
    settings = {
        "VAR_DIR": str(var_dir),
        "TEXTBOOK_PATH": str(SAMPLE_TEXTBOOK),
        "INGEST_ROOTS": json.dumps([str(SAMPLE_TEXTBOOK), str(books)]),
    }
    env = clean_env(**settings)
    runs: list[DevRun] = []
    try:
        dev = DevRun.start(var_dir, tmp_path / "dev-0.log", cwd=tmp_path, **settings)
        runs.append(dev)
        dev.wait_until_up()
        ingested = run_bookchat("ingest", str(gait), env=env, cwd=tmp_path, timeout=300)
        assert ingested.returncode == 0, ingested.stdout + ingested.stderr
        _admin_ingest(dev, env, tmp_path, skins)

        for restart in (1, 2):
            stopped = run_bookchat("stop", env=env, cwd=tmp_path)
            assert stopped.returncode == 0, stopped.stdout + stopped.stderr
            dev = DevRun.start(var_dir, tmp_path / f"dev-{restart}.log", cwd=tmp_path, **settings)
            runs.append(dev)
            dev.wait_until_up()  # after the start-up ingest of TEXTBOOK_PATH
            assert ", 0 deleted," in dev.output(), dev.output()

            assert _found(env, tmp_path, "zebramoment criterion") >= {"gait"}
            assert _found(env, tmp_path, "quokkaskin taxels") >= {"skins"}
            assert _found(env, tmp_path, "What is a ROS 2 node?") >= {"textbook"}
    finally:
        for run in runs:
            run.kill_leftovers()
