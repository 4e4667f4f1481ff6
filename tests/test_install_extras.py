"""The API runs on the base install alone: with every package that only the extras [worker],
[postgres] and [dev] bring refused at import, `bookchat web`'s app builds, migrates SQLite, signs
a guest in and sends a chat job to the broker."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import redis
from packaging.requirements import Requirement

from tests.support.stack import REPO_ROOT, make_settings, settings_env

PROJECT = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
ABSENT_EXTRAS = ("worker", "postgres", "dev")

# Run in a child process: an import hook refuses every module the base install lacks, as a
# missing package would, before bookchat is imported.
SERVE = """
import importlib.abc, json, sys

ABSENT = set(json.loads(sys.argv[1]))


class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ABSENT:
            raise ModuleNotFoundError(f"No module named {name!r} (not installed)", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
try:
    import numpy
    raise SystemExit("the hook let numpy through")
except ImportError:
    pass

import cli.main
import web.gunicorn_conf
from common.platform.migrate import upgrade_database
from common.platform.settings import Settings
from web import create_app

settings = Settings(_env_file=None)
upgrade_database(settings)
client = create_app(settings).test_client()
statuses = {"healthz": client.get("/healthz").status_code}
guest = client.post("/v1/auth/guest")
statuses["guest"] = guest.status_code
headers = {"Authorization": "Bearer " + guest.get_json()["access_token"]}
job = client.post("/v1/chat/jobs", json={"message": "What is a node?"}, headers=headers)
statuses["submit"] = job.status_code
statuses["poll"] = client.get(job.headers["Location"], headers=headers).status_code
loaded = sorted(ABSENT & {name.partition(".")[0] for name in sys.modules})
print(json.dumps({"statuses": statuses, "loaded": loaded}))
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed_closure(requirements: Iterable[str]) -> set[str]:
    """The distributions these requirements install, their extras' and dependencies' included."""
    todo = [Requirement(text) for text in requirements]
    seen: set[tuple[str, str]] = set()
    while todo:
        requirement = todo.pop()
        name = _canonical(requirement.name)
        for extra in {"", *requirement.extras}:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            try:
                dependencies = metadata.requires(name) or []
            except metadata.PackageNotFoundError:
                continue  # only for another platform or Python
            for text in dependencies:
                dependency = Requirement(text)
                if dependency.marker is None or dependency.marker.evaluate({"extra": extra}):
                    todo.append(dependency)
    return {name for name, _extra in seen}


def _absent_modules() -> set[str]:
    """Top-level modules whose every distribution comes only with the absent extras."""
    extras = PROJECT["optional-dependencies"]
    absent = _installed_closure(
        requirement for extra in ABSENT_EXTRAS for requirement in extras[extra]
    ) - _installed_closure(PROJECT["dependencies"])
    return {
        module
        for module, distributions in metadata.packages_distributions().items()
        if all(_canonical(distribution) in absent for distribution in distributions)
    }


def test_the_worker_stack_and_postgres_driver_are_extras_not_base_dependencies() -> None:
    base = {_canonical(Requirement(text).name) for text in PROJECT["dependencies"]}
    extras = PROJECT["optional-dependencies"]
    worker = {_canonical(Requirement(text).name) for text in extras["worker"]}
    postgres = {_canonical(Requirement(text).name) for text in extras["postgres"]}

    heavy = {"numpy", "onnxruntime", "tokenizers", "qdrant-client", "openai"}
    assert heavy <= worker
    assert postgres == {"psycopg"}
    assert not (heavy | postgres) & _installed_closure(PROJECT["dependencies"])
    assert {"flask", "gunicorn", "celery", "redis", "sqlalchemy"} <= base


def test_the_web_serves_without_the_worker_postgres_and_dev_packages(
    tmp_path: Path, private_redis_url: str
) -> None:
    absent = _absent_modules()
    assert {"numpy", "onnxruntime", "tokenizers", "qdrant_client", "psycopg", "pytest"} <= absent
    env = settings_env(make_settings(tmp_path / "var", private_redis_url))

    result = subprocess.run(
        [sys.executable, "-c", SERVE, json.dumps(sorted(absent))],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr[-4000:]
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {
        "statuses": {"healthz": 200, "guest": 201, "submit": 202, "poll": 200},
        "loaded": [],
    }
    # The job went to the broker through Celery's client: one message waits on the chat queue.
    assert redis.Redis.from_url(private_redis_url).llen("chat") == 1
