"""gunicorn settings for bookchat's API, shared by `bookchat web`, `bookchat dev` and Docker.

gevent's worker monkey-patches the standard library before it loads the app, so each request
is a greenlet: an open event stream or long-poll costs a few kilobytes, not a thread. psycopg 3
notices the patching and waits cooperatively; redis-py and SQLAlchemy's pool use the patched
sockets and locks. This file is read by path, so the master never imports the app unpatched.
"""

import gc
import os

worker_class = "gevent"
workers = 1
# Open event streams count: each is a connection held for up to 10 minutes.
worker_connections = 4000
# The gevent worker's heartbeat runs in a greenlet of its own; a worker silent this long is stuck.
timeout = 120
graceful_timeout = 30
# gunicorn's async workers bound the wait for a keep-alive connection's next request *and* its
# parsing by this one timer, so it runs on the event loop's time: under a spike the loop is
# seconds late (the burst's /healthz p99 was 5-6 s), the timer fired with the next request
# already received, and the close reset it (a client-side ReadError in bench.spike). An idle
# connection costs a greenlet and a socket, not a thread; 75 s is nginx's default.
keepalive = 75
# Oversize requests: gunicorn answers these itself (400/414/431, in HTML). The same numbers are
# in web/input_limits.py, which refuses anything bigger reaching the app as problem+json; plain
# literals here because importing the app's package in the master would bypass gevent's patching.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# No gunicorn access log: the app writes one JSON line per request, with its request id
# (web/observability.py).
accesslog = None
# gunicorn 25.1+ opens a control socket at ~/.gunicorn/gunicorn.ctl (or in XDG_RUNTIME_DIR),
# one path for every instance of the user: a second server would take it from the first.
# Nothing of bookchat uses it; older gunicorns ignore the unknown setting.
control_socket_disable = True


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges (open streams) from the shared Prometheus folder."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    # prometheus_client's documented recipe; importing it in the master is harmless (it
    # imports no part of the app).
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(getattr(worker, "pid", 0))


def post_worker_init(worker: object) -> None:
    """Move the loaded app out of the collector's sight: its objects live as long as the process.

    With thousands of open streams, a full collection scans every object of every stream and
    the app (a pause of 100-400 ms at 2,000 streams): freeze what was loaded, and collect the
    older generations far less often (memory is freed by reference counting meanwhile).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 1000)
