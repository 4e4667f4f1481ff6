"""The bookchat HTTP API: a thin Flask app that validates, records and enqueues."""

from __future__ import annotations

from flask_openapi3 import Info

from common.platform.api_types import MAX_MESSAGE_CHARS, MAX_PAGE_URL_CHARS, MAX_SELECTED_TEXT_CHARS
from common.platform.settings import Settings, get_settings
from web import (
    admin_page,
    cors,
    observability,
    problems,
    rate_limits,
    resources,
    security,
    widget,
)
from web.api import (
    admin_books,
    admin_index,
    admin_insights,
    admin_jobs,
    auth,
    chapters,
    chat_jobs,
    conversations,
    feedback,
    health,
    metrics,
    profile,
    search,
)
from web.openapi_fixes import BookchatOpenAPI

# Room for the largest valid chat job plus JSON overhead; bigger bodies are refused early.
# A character can take 12 bytes: JSON encoders escape an emoji as two \uXXXX surrogates.
_MAX_JOB_CHARS = MAX_MESSAGE_CHARS + MAX_SELECTED_TEXT_CHARS + MAX_PAGE_URL_CHARS
MAX_BODY_BYTES = 12 * _MAX_JOB_CHARS + 16_384


def create_app(settings: Settings | None = None) -> BookchatOpenAPI:
    """Build the Flask app from settings."""
    settings = settings or get_settings()
    app = BookchatOpenAPI(
        __name__,
        info=Info(
            title="bookchat",
            version="0.1.0",
            description="Queue-backed RAG chat for online textbooks.",
        ),
        security_schemes=security.SECURITY_SCHEMES,
        validation_error_status=422,
        validation_error_callback=problems.validation_problem,
        doc_prefix="/docs",
        doc_url="/openapi.json",
    )
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    observability.init_app(app, settings)
    problems.init_app(app)
    security.init_app(app, settings)
    resources.init_app(app, resources.WebResources.create(settings))
    blueprints = (
        health.bp,
        metrics.bp,
        auth.bp,
        chat_jobs.bp,
        feedback.bp,
        chapters.bp,
        conversations.bp,
        profile.bp,
        search.bp,
        admin_books.bp,
        admin_index.bp,
        admin_insights.bp,
        admin_jobs.bp,
    )
    for blueprint in blueprints:
        app.register_api(blueprint)
    app.register_blueprint(widget.bp)
    admin_page.init_app(app)
    cors.init_app(app, settings)
    rate_limits.init_app(app, settings)  # wraps the registered views, so it comes last
    return app
