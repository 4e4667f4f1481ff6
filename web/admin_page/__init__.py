"""The admin page (/admin): the author's and operator's view, rendered on the server.

Its own sign-in (a session cookie, never a token in a URL), charts drawn as SVG on the server,
no script and no third-party resource: the Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

import json

from flask import Blueprint, Flask, Response, render_template, request

from web.admin_page import auth, views
from web.problems import PROBLEM_JSON, accept_form_posts

bp = Blueprint(
    "admin_page",
    __name__,
    url_prefix="/admin",
    template_folder="templates",
    static_folder="static",
)
LOGIN_ENDPOINT = "admin_page.login"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_KEPT_HEADERS = ("Retry-After", "WWW-Authenticate", "Allow", "X-Request-ID")

bp.before_request(auth.guard)
bp.add_url_rule("/login", "login_form", auth.login_form, methods=["GET"])
bp.add_url_rule("/login", "login", auth.login, methods=["POST"])
bp.add_url_rule("/logout", "logout", auth.logout, methods=["POST"])
bp.add_url_rule("/", "dashboard", views.dashboard, methods=["GET"])
bp.add_url_rule("/insights.csv", "insights_csv", views.insights_csv, methods=["GET"])
bp.add_url_rule("/insights/recompute", "recompute", views.recompute, methods=["POST"])
bp.add_url_rule(
    "/dead-letters/retry", "retry_dead_letters", views.retry_dead_letters, methods=["POST"]
)


def _prefers_html() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", PROBLEM_JSON, "application/json"])
    return best in (None, "text/html")


# after_request hooks run last-registered first: the headers go on the final page.
@bp.after_request
def _security_headers(response: Response) -> Response:
    """No inline script or style, no framing, nothing cached: the page shows private data."""
    response.headers.update(_HEADERS)
    if request.endpoint != "admin_page.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.after_request
def _html_errors(response: Response) -> Response:
    """A browser gets the app's problem as a page: same status, title, detail and request id."""
    if response.mimetype != PROBLEM_JSON or not _prefers_html():
        return response
    problem = json.loads(response.get_data())
    page = Response(
        render_template("admin_page/error.html", problem=problem),
        status=response.status_code,
        mimetype="text/html",
    )
    for name in _KEPT_HEADERS:
        if name in response.headers:
            page.headers[name] = response.headers[name]
    return page


def init_app(app: Flask) -> None:
    """Register the page; its forms post as HTML forms do, not as JSON."""
    app.register_blueprint(bp)
    accept_form_posts(app, bp.name)
