"""The widget's script and stylesheet, each with a content hash for cache busting."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
# widget.js names its stylesheet through this placeholder, replaced by the hashed URL.
CSS_PLACEHOLDER = "__BOOKCHAT_CSS_URL__"
LONG_CACHE = "public, max-age=31536000, immutable"
SHORT_CACHE = "public, max-age=300"


@dataclass(frozen=True)
class Asset:
    """A served file: its bytes, media type and short content hash."""

    body: bytes
    mimetype: str
    version: str


def _asset(body: bytes, mimetype: str) -> Asset:
    return Asset(body, mimetype, hashlib.sha256(body).hexdigest()[:16])


@cache
def stylesheet() -> Asset:
    """widget.css."""
    return _asset((HERE / "widget.css").read_bytes(), "text/css")


@cache
def script() -> Asset:
    """widget.js, pointing at the stylesheet's current version."""
    source = (HERE / "widget.js").read_text()
    body = source.replace(CSS_PLACEHOLDER, f"widget.css?v={stylesheet().version}")
    return _asset(body.encode(), "text/javascript")


def cache_control(asset: Asset, requested_version: str | None) -> str:
    """Long-lived for the URL naming this exact version, short for the unversioned one."""
    return LONG_CACHE if requested_version == asset.version else SHORT_CACHE
