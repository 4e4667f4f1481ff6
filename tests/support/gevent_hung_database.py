"""Run as a script: under gevent's patching, a query on a hung PostgreSQL is given up.

`python -m tests.support.gevent_hung_database POSTGRES_URL` patches the standard library as
gunicorn's gevent worker does, puts a proxy (greenlets, here) before the server, stalls it
with a connection open, runs a query, and prints what happened as JSON: the wait function
psycopg chose, the error, and how often another greenlet ran meanwhile.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from psycopg import waiting  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.exc import DBAPIError  # noqa: E402

from common.platform.db import is_unavailable, make_engine  # noqa: E402
from tests.support.stack import make_settings  # noqa: E402
from tests.support.tcp_proxy import TcpProxy  # noqa: E402


def main(postgres_url: str) -> dict[str, Any]:
    """Stall a proxied connection mid-session and report how the next query ended."""
    url = make_url(postgres_url)
    ticks = 0

    def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            gevent.sleep(0.05)

    with TcpProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        settings = make_settings(
            Path(tempfile.mkdtemp(prefix="gevent-hung-db-")),
            "redis://127.0.0.1:1/0",  # unused
            proxied.render_as_string(hide_password=False),
            database_statement_timeout_seconds=1.0,
            database_connect_timeout_seconds=2,
        )
        engine = make_engine(settings)
        result: dict[str, Any] = {"wait": getattr(waiting.wait, "__name__", repr(waiting.wait))}
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            proxy.stall()
            ticker = gevent.spawn(tick)
            try:
                connection.execute(text("SELECT 1"))
                result["error"] = None
            except DBAPIError as exc:
                result["error"] = str(exc.orig)
                result["invalidated"] = exc.connection_invalidated
                result["unavailable"] = is_unavailable(exc)
            ticker.kill()
        result["ticks"] = ticks
        proxy.resume()
        engine.dispose()
    return result


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
