"""Searching the textbook, for signed-in readers and tools."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from common.book.index_schemas import SearchRequest, SearchResults
from common.jobs.search_rpc import request_search
from common.platform.api_types import Problem
from web.resources import resources
from web.security import BEARER, require_access_token

bp = APIBlueprint(
    "search", __name__, url_prefix="/v1", abp_tags=[Tag(name="search")], abp_security=BEARER
)
bp.before_request(require_access_token)


@bp.post("/search", responses={200: SearchResults, 401: Problem, 422: Problem, 503: Problem})
def search(body: SearchRequest) -> Response:
    """The passages that best match the query (hybrid dense + BM25 search)."""
    res = resources()
    results = request_search(
        res.celery, res.redis, body.query, body.k, body.path_prefix, book=body.book
    )
    return jsonify({"object": "list", "data": results})
