"""The widget's files and the demo book: versions, caching, and safe chapter pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient

from tests.support.stack import make_settings
from tests.web.assertions import assert_problem
from web import create_app
from web.widget import assets


@pytest.fixture
def client(tmp_path: Path, redis_url: str) -> FlaskClient:
    """The app from the factory, with no CORS origins."""
    return create_app(make_settings(tmp_path / "var", redis_url)).test_client()


def test_script_names_the_hashed_stylesheet(client: FlaskClient) -> None:
    script = client.get("/widget.js")
    css_version = assets.stylesheet().version

    assert script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert f"widget.css?v={css_version}".encode() in script.data
    assert assets.CSS_PLACEHOLDER.encode() not in script.data
    assert client.get(f"/widget.css?v={css_version}").data == assets.stylesheet().body


@pytest.mark.parametrize("path", ["/widget.js", "/widget.css"])
def test_unversioned_urls_are_short_cached_and_versioned_ones_immutable(
    client: FlaskClient, path: str
) -> None:
    plain = client.get(path)
    version = plain.headers["ETag"].strip('"')

    assert plain.headers["Cache-Control"] == assets.SHORT_CACHE
    assert client.get(f"{path}?v={version}").headers["Cache-Control"] == assets.LONG_CACHE
    assert client.get(f"{path}?v=stale").headers["Cache-Control"] == assets.SHORT_CACHE
    again = client.get(path, headers={"If-None-Match": plain.headers["ETag"]})
    assert again.status_code == 304
    assert not again.data


def test_the_script_stays_small_and_never_writes_html() -> None:
    source = (assets.HERE / "widget.js").read_text()

    assert len(assets.script().body) < 40_000
    assert "innerHTML" not in source
    assert "insertAdjacentHTML" not in source
    assert "document.write" not in source


def test_demo_renders_a_chapter_with_heading_anchors_and_the_widget(client: FlaskClient) -> None:
    page = client.get("/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'id="what-is-a-node"' in html
    assert f'src="/widget.js?v={assets.script().version}"' in html
    assert 'data-book="/book"' in html


def test_chapter_pages_escape_the_books_markup(tmp_path: Path, redis_url: str) -> None:
    book = tmp_path / "book"
    book.mkdir()
    (book / "page.md").write_text("# Page\n\nHi <script>alert(1)</script> there.\n")
    settings = make_settings(tmp_path / "var", redis_url, textbook_path=book)
    client = create_app(settings).test_client()

    html = client.get("/book/page").get_data(as_text=True)

    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_unknown_chapter_is_a_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/book/no/such/page"), 404, "not_found")
