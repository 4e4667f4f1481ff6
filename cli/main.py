"""The `bookchat` command: dev | stop | web | worker | ingest | ask | search | migrate | admin."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli.client import NOT_RUNNING_EXIT, NotRunning, connect, connect_to_worker, running_settings
from cli.terminal import printable, safe_json
from common.jobs.queue import ALL_QUEUES, CHAT_QUEUE, INGEST_QUEUE
from common.platform.errors import BookchatError
from common.platform.settings import Settings, get_settings


def _serving_settings(command: str) -> Settings:
    """The settings of a server process, naming its Redis: REDIS_URL, else the embedded one.

    Started here, before the app exists: the web's and the worker's client factories connect
    to the URL they are given and never start a server.
    """
    from cli.embedded_redis import with_embedded_redis

    settings = get_settings()
    if settings.redis_url:
        return settings
    settings = with_embedded_redis(settings)
    print(
        f"bookchat {command}: REDIS_URL is unset; using the embedded Redis at "
        f"{settings.redis_url} (under {settings.var_dir / 'redis'}; `bookchat stop` stops it)",
        file=sys.stderr,
    )
    return settings


def _worker(args: argparse.Namespace) -> int:
    from cli.processes import celery_worker_argv
    from common.platform.observability import MULTIPROC_ENV, default_metrics_dir

    settings = _serving_settings("worker")
    if settings.worker_nice:
        # Before any thread starts (threads inherit it): on a host shared with the API, the
        # API's requests win the CPU and a spike waits in the queue, not in the API.
        os.nice(settings.worker_nice)
    # Before prometheus_client is imported: it picks its storage then. Under `bookchat dev` the
    # supervisor set (and cleaned) the folder; a worker of its own keeps its samples under var/.
    if not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = str(default_metrics_dir(settings.var_dir.resolve()))
    # Local-mode Qdrant allows one process per folder, so the embedded default uses threads.
    pool = args.pool or ("prefork" if settings.qdrant_url else "threads")
    from workers.app import create_worker_app

    app = create_worker_app(settings)
    queues = args.queues.split(",")
    app.worker_main(
        celery_worker_argv(
            queues,
            args.concurrency,
            pool,
            args.loglevel,
            args.hostname,
            lane_threads=settings.chat_fast_lane_threads,
        )
    )
    return 0


def _web(args: argparse.Namespace) -> int:
    from cli.processes import child_env, web_command
    from common.platform.observability import MULTIPROC_ENV, reset_metrics_dir

    settings = _serving_settings("web")
    command = web_command(settings, host=args.host, connections=args.connections)
    env = child_env(settings)
    reset_metrics_dir(Path(env[MULTIPROC_ENV]))  # this server's processes start from zero
    os.execve(command[0], command, env)


def _dev(args: argparse.Namespace) -> int:
    from cli.dev import run_dev

    return run_dev(get_settings(), concurrency=args.concurrency)


def _stop(_args: argparse.Namespace) -> int:
    from cli.stop import stop_dev

    return stop_dev(get_settings().var_dir)


def _migrate(_args: argparse.Namespace) -> int:
    from common.platform.migrate import upgrade_database

    upgrade_database(get_settings())
    print("database is up to date")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from cli.ingest import run_ingest_via_queue

    settings = running_settings(get_settings())
    connect_to_worker(settings, INGEST_QUEUE)
    return run_ingest_via_queue(
        settings,
        args.path,
        full=args.full,
        timeout=args.timeout,
        book=args.book,
        base_url=args.base_url,
    )


def _ask(args: argparse.Namespace) -> int:
    from cli.ask import ask_via_queue

    settings = running_settings(get_settings())
    connect_to_worker(settings, CHAT_QUEUE)
    return ask_via_queue(settings, args.question, timeout=args.timeout, as_json=args.json)


def _search(args: argparse.Namespace) -> int:

    from common.jobs.queue import make_celery
    from common.jobs.search_rpc import request_search

    settings = running_settings(get_settings())
    client = connect_to_worker(settings, CHAT_QUEUE)
    results = request_search(
        make_celery(settings),
        client,
        args.query,
        args.k,
        args.path_prefix,
        timeout=args.timeout,
        book=args.book,
    )
    if args.json:
        print(safe_json(results))
        return 0
    for n, result in enumerate(results, 1):
        print(printable(f"{n}. [{result['score']:.3f}] {result['title']} — {result['heading']}"))
        print(printable(f"   {result['book']}: {result['source']}  {result['url']}"))
    return 0


def _worker_alive(args: argparse.Namespace) -> int:
    from common.jobs.worker_heartbeats import live_workers

    names = {worker["name"] for worker in live_workers(connect(get_settings()))}
    return 0 if args.name in names else 1


def _create_admin(args: argparse.Namespace) -> int:
    from cli.accounts import create_admin

    return create_admin(get_settings(), args.email, args.name, sys.stdin)


def _admin(args: argparse.Namespace) -> int:
    from cli.admin import run_admin

    return run_admin(args)


def _add_admin_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    create = sub.add_parser(
        "create-admin",
        help="make an admin: create the account (password from stdin or a prompt) or promote it",
    )
    create.add_argument("email")
    create.add_argument("--name", default=None)
    create.set_defaults(run=_create_admin)

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print what the API returns")
    filters = argparse.ArgumentParser(add_help=False)
    filters.add_argument("--kind", help="chat, ingest or reprocess")
    filters.add_argument("--user", help="the owner's account id")
    filters.add_argument("--error", help="an error code, e.g. llm_unavailable")
    filters.add_argument(
        "--since", help="created since: 30m, 1h, 2d or an RFC 3339 time (2026-01-01T00:00:00Z)"
    )
    filters.add_argument("--dead", action="store_true", help="only dead letters")
    page = argparse.ArgumentParser(add_help=False)
    page.add_argument("--limit", help="how many (1-100; audit: 1-200)")
    page.add_argument("--after", help="the last id of the previous page")

    admin = sub.add_parser("admin", help="operate the queues: jobs, retries, cancels, audit log")
    admin.set_defaults(run=_admin)
    commands = admin.add_subparsers(dest="admin_command", required=True)
    commands.add_parser("queues", parents=[output], help="depth, waits and workers per queue")
    jobs = commands.add_parser("jobs", parents=[output, filters, page], help="list jobs")
    jobs.add_argument("--status", help="queued, in_progress, completed, failed or cancelled")
    commands.add_parser("dlq", parents=[output, filters, page], help="list dead letters")
    show = commands.add_parser("show", parents=[output], help="a job and its attempts")
    show.add_argument("job_id", metavar="ID")
    retry = commands.add_parser(
        "retry", parents=[output, filters], help="retry a job, or every failed job that matches"
    )
    retry.add_argument("job_id", metavar="ID", nargs="?")
    retry.add_argument("--failed", action="store_true", help="every failed job the filters match")
    retry.add_argument("--dry-run", action="store_true", help="only count what would be retried")
    retry.add_argument("--wait", action="store_true", help="wait for the bulk retry and report")
    retry.add_argument("--timeout", type=float, default=300, help="seconds to --wait (exit 2)")
    cancel = commands.add_parser("cancel", parents=[output], help="cancel a queued or running job")
    cancel.add_argument("job_id", metavar="ID")
    audit = commands.add_parser("audit", parents=[output, page], help="the audit log, newest first")
    audit.add_argument("--action", help="e.g. job.retry, job.cancel, jobs.bulk_retry, user.role")
    audit.add_argument("--actor", help="an admin's email, or cli:<user>")
    audit.add_argument("--target", help="a job, user or document id")
    audit.add_argument("--outcome", help="ok, refused or failed")
    audit.add_argument("--since", help="30m, 1h, 2d or an RFC 3339 time (2026-01-01T00:00:00Z)")
    commands.add_parser("books", parents=[output], help="the index's books: pages, last ingest")
    remove = commands.add_parser(
        "remove-book", parents=[output], help="remove one book's pages from the index (audited)"
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--wait", action="store_true", help="wait for the removal and report")
    remove.add_argument("--timeout", type=float, default=300, help="seconds to --wait (exit 2)")
    insights = commands.add_parser(
        "insights", help="what readers ask, what the book fails to answer, which pages matter"
    )
    insights.add_argument("--since", help="7d (default), 30m, 1h or an RFC 3339 time")
    insights.add_argument("--until", help="now (default), a duration ago or an RFC 3339 time")
    insights.add_argument("--format", choices=["table", "json", "csv"], default="table")
    insights.add_argument(
        "--table", choices=["gaps", "most_asked", "pages", "per_day"], help="the CSV's (gaps)"
    )
    insights.add_argument("--timeout", type=float, default=900, help="seconds to wait (exit 2)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="bookchat", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    dev = sub.add_parser("dev", help="run everything locally (API, worker, embedded services)")
    dev.add_argument("--concurrency", type=int, default=4)
    dev.set_defaults(run=_dev)

    stop = sub.add_parser("stop", help="stop the `bookchat dev` of this var/ and what it started")
    stop.set_defaults(run=_stop)

    web = sub.add_parser("web", help="run the HTTP API under gunicorn")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument(
        "--connections", type=int, default=None, help="open connections per process (4000)"
    )
    web.set_defaults(run=_web)

    worker = sub.add_parser("worker", help="run a Celery worker")
    worker.add_argument("--queues", default=",".join(ALL_QUEUES))
    worker.add_argument("--concurrency", type=int, default=4)
    worker.add_argument("--pool", choices=["threads", "prefork", "solo"], default=None)
    worker.add_argument("--loglevel", default="INFO")
    worker.add_argument("--hostname", default="bookchat@%h")
    worker.set_defaults(run=_worker)

    ingest = sub.add_parser("ingest", help="ingest a textbook folder through the ingest queue")
    ingest.add_argument("path")
    ingest.add_argument("--full", action="store_true", help="rebuild instead of incremental")
    ingest.add_argument("--book", help="the book's name (default: the folder's own book)")
    ingest.add_argument("--base-url", help="the base of its page URLs (default TEXTBOOK_BASE_URL)")
    ingest.add_argument("--timeout", type=float, default=900, help="seconds to wait (exit 2 after)")
    ingest.set_defaults(run=_ingest)

    ask = sub.add_parser("ask", help="ask a question through the queue and print the answer")
    ask.add_argument("question")
    ask.add_argument("--timeout", type=float, default=120)
    ask.add_argument("--json", action="store_true", help="print the finished job as JSON")
    ask.set_defaults(run=_ask)

    search = sub.add_parser("search", help="search the ingested textbook (through a worker)")
    search.add_argument("query")
    search.add_argument("--k", type=int, default=5)
    search.add_argument("--path-prefix", default=None, help="only this folder or file")
    search.add_argument("--book", default=None, help="only this book (default: every book)")
    search.add_argument("--json", action="store_true", help="print a JSON list")
    search.add_argument("--timeout", type=float, default=15)
    search.set_defaults(run=_search)

    alive = sub.add_parser("worker-alive", help="exit 0 if the named worker sent a heartbeat")
    alive.add_argument("name", help="worker hostname, e.g. chat@host")
    alive.set_defaults(run=_worker_alive)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(run=_migrate)

    _add_admin_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `bookchat` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NotRunning as exc:
        print(printable(f"bookchat {args.command}: {exc}"), file=sys.stderr)
        return NOT_RUNNING_EXIT
    except BookchatError as exc:
        print(printable(f"bookchat {args.command}: {exc.detail}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
