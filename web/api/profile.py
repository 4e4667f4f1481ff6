"""The signed-in reader's profile: GET shows it, PUT replaces it (not for guests)."""

from __future__ import annotations

from flask import Response, jsonify
from flask_openapi3 import APIBlueprint, Tag

from common.accounts.profiles import ReaderProfileIn, ReaderProfileOut, save_profile, show_profile
from common.platform.api_types import Problem
from web.resources import db
from web.security import BEARER, current_user_id, require_user

bp = APIBlueprint(
    "profile",
    __name__,
    url_prefix="/v1/me/profile",
    abp_tags=[Tag(name="profile")],
    abp_security=BEARER,
)
# Before flask-openapi3 validates the body: the signed-out get 401 and guests 403, not 422.
bp.before_request(require_user)


@bp.get("", responses={200: ReaderProfileOut, 401: Problem, 403: Problem, 503: Problem})
def show() -> Response:
    """The reader's profile; all defaults with `exists: false` until they save one."""
    return jsonify(show_profile(db(), current_user_id()).model_dump(mode="json"))


@bp.put(
    "",
    responses={200: ReaderProfileOut, 401: Problem, 403: Problem, 422: Problem, 503: Problem},
)
def replace(body: ReaderProfileIn) -> Response:
    """Replace the whole profile: fields left out go back to their defaults."""
    return jsonify(save_profile(db(), current_user_id(), body).model_dump(mode="json"))
