"""The reader's chat widget (/widget.js, /widget.css) and the demo book that hosts it (/)."""

from __future__ import annotations

from flask import Blueprint, Response, render_template, request

from common.platform.errors import NotFound
from web.resources import resources
from web.widget import assets
from web.widget.book import Chapter, find_chapter, load_book

bp = Blueprint("widget", __name__, template_folder="templates")
BOOK_PREFIX = "/book"


def _serve(asset: assets.Asset) -> Response:
    response = Response(asset.body, mimetype=asset.mimetype)
    response.set_etag(asset.version)
    response.headers["Cache-Control"] = assets.cache_control(asset, request.args.get("v"))
    # Another origin's page loads these with <script>/<link>; they carry nothing private.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.make_conditional(request)  # 304 when If-None-Match names this version
    return response


@bp.get("/widget.js")
def widget_js() -> Response:
    """The widget script (versioned with `?v=<hash>` for a long cache)."""
    return _serve(assets.script())


@bp.get("/widget.css")
def widget_css() -> Response:
    """The widget stylesheet (the script loads it by its hash)."""
    return _serve(assets.stylesheet())


def _render(chapters: tuple[Chapter, ...], chapter: Chapter) -> str:
    return render_template(
        "demo.html",
        chapters=chapters,
        chapter=chapter,
        book_prefix=BOOK_PREFIX,
        widget_version=assets.script().version,
    )


@bp.get("/")
def demo() -> str:
    """The demo: the sample book's first chapter with the widget beside it."""
    chapters = load_book(resources().settings.textbook_path)
    if not chapters:
        raise NotFound("the configured textbook has no pages")
    return _render(chapters, next((c for c in chapters if c.url != "/"), chapters[0]))


@bp.get(f"{BOOK_PREFIX}/<path:page>")
def chapter(page: str) -> str:
    """One chapter of the sample book, where the widget's citation links lead."""
    chapters = load_book(resources().settings.textbook_path)
    found = find_chapter(chapters, page)
    if found is None:
        raise NotFound("no such page in the sample book")
    return _render(chapters, found)
