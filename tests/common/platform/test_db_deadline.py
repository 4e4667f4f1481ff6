"""PostgreSQL deadlines: the server's statement_timeout comes first, the URL's options win."""

from __future__ import annotations

import json
import subprocess
import sys

from common.platform.db_deadline import with_statement_timeout
from tests.support.stack import REPO_ROOT


def test_statement_timeout_is_set_in_milliseconds() -> None:
    assert with_statement_timeout(None, 10.0) == "-c statement_timeout=10000"


def test_options_from_the_url_come_after_and_win() -> None:
    options = with_statement_timeout("-csearch_path=s1 -c statement_timeout=0", 2.5)

    assert options == "-c statement_timeout=2500 -csearch_path=s1 -c statement_timeout=0"


def test_a_hung_server_is_given_up_under_gevent(postgres_url: str) -> None:
    # gunicorn's gevent worker patches select, so psycopg waits with a patched poll (not its C
    # wait): the deadline holds there too, and other greenlets run while the query waits.
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.gevent_hung_database", postgres_url],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])

    assert result["wait"] != "wait_c", result
    assert result["error"] and "did not answer" in result["error"], result
    assert result["invalidated"] is True and result["unavailable"] is True, result
    assert result["ticks"] > 1, result  # the hub was not blocked
