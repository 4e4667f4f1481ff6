"""Where an ingest may read: folders under INGEST_ROOTS, walks that never leave them."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.book.ingest.sources import (
    HARD_LINK_REFUSED,
    LINK_REFUSED,
    PATH_UNAVAILABLE,
    LinkRefused,
    PathUnavailable,
    find_markdown_files,
    is_indexable,
    is_source_name,
    locate_document,
    read_source,
    resolve_folder,
)
from common.platform.settings import Settings

PAGE = "# Page\n\nText.\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """An ingest root holding a small book."""
    book = tmp_path / "root" / "book"
    (book / "part").mkdir(parents=True)
    (book / "intro.md").write_text(PAGE)
    (book / "part" / "one.mdx").write_text(PAGE)
    return tmp_path / "root"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder next to the root, with a page a reader must never see."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.md").write_text("# Secret\n\nquokkasecret\n")
    return folder


def refusal(path: str | Path, roots: list[Path]) -> PathUnavailable:
    """The PathUnavailable that resolving `path` raises."""
    with pytest.raises(PathUnavailable) as raised:
        resolve_folder(path, roots)
    return raised.value


def test_a_folder_under_a_root_resolves_to_its_real_path(root: Path) -> None:
    (root / "alias").symlink_to(root / "book")

    assert resolve_folder(root / "book", [root]) == (root / "book").resolve()
    assert resolve_folder(root / "alias", [root]) == (root / "book").resolve()
    assert resolve_folder(f"{root}/book/part/..", [root]) == (root / "book").resolve()


def test_a_root_that_is_a_link_admits_what_it_points_at(root: Path, tmp_path: Path) -> None:
    (tmp_path / "root-link").symlink_to(root)

    assert resolve_folder(root / "book", [tmp_path / "root-link"]) == (root / "book").resolve()


def test_every_refusal_reads_the_same_and_logs_its_reason(
    root: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (root / "escape").symlink_to(outside)
    monkeypatch.chdir(root / "book")
    cases = {
        "../../../../../../../../etc": "outside",  # relative, from the worker's folder
        f"{root}/book/../../outside": "outside",
        str(outside): "outside",
        "/etc": "outside",
        str(root / "escape"): "outside",
        str(root / "missing"): "not found",
        str(root / "book" / "intro.md"): "not a folder",
        f"{root}/bad\x00name": "not found",
    }

    refused = {path: refusal(path, [root]) for path in cases}

    assert {str(exc) for exc in refused.values()} == {PATH_UNAVAILABLE}
    for path, reason in cases.items():
        assert refused[path].reason.startswith(reason), (path, refused[path].reason)


def test_a_walk_lists_pages_in_path_order_and_skips_partials(root: Path) -> None:
    book = root / "book"
    (book / "_partial.md").write_text(PAGE)
    (book / ".hidden").mkdir()
    (book / ".hidden" / "x.md").write_text(PAGE)
    (book / "node_modules").mkdir()
    (book / "node_modules" / "y.md").write_text(PAGE)
    (book / "notes.txt").write_text("not a page")
    (book / "a.md").write_text(PAGE)

    walk = find_markdown_files(book, [root])

    assert [found.source for found in walk.files] == ["a.md", "intro.md", "part/one.mdx"]
    assert walk.refused == {}


def test_links_leaving_the_roots_are_reported_and_never_followed(root: Path, outside: Path) -> None:
    book = root / "book"
    (book / "leak.md").symlink_to(outside / "secret.md")
    (book / "shared").symlink_to(outside)
    (book / "logo.png").symlink_to(outside / "secret.md")  # not a page: skipped quietly
    (book / "dangling.md").symlink_to(outside / "gone.md")

    walk = find_markdown_files(book, [root])

    assert [found.source for found in walk.files] == ["intro.md", "part/one.mdx"]
    assert walk.refused == {
        "dangling.md": LINK_REFUSED,
        "leak.md": LINK_REFUSED,
        "shared": LINK_REFUSED,
    }


def test_links_inside_the_roots_are_followed_once(root: Path) -> None:
    book = root / "book"
    (root / "extra").mkdir()
    (root / "extra" / "two.md").write_text(PAGE)
    (book / "extra").symlink_to(root / "extra")
    (book / "same.md").symlink_to(book / "intro.md")
    (book / "part" / "loop").symlink_to(book)

    walk = find_markdown_files(book, [root])

    sources = [found.source for found in walk.files]
    assert sources[:4] == ["extra/two.md", "intro.md", "part/one.mdx", "same.md"]
    assert len(sources) == len(set(sources)) < 10  # the loop was cut
    assert walk.refused == {}


def test_the_folder_is_its_own_root_by_default(root: Path) -> None:
    book = root / "book"
    (root / "beside.md").write_text(PAGE)
    (book / "beside.md").symlink_to(root / "beside.md")

    assert find_markdown_files(book).refused == {"beside.md": LINK_REFUSED}


def test_a_page_swapped_for_a_link_after_the_walk_is_not_read(root: Path, outside: Path) -> None:
    book = root / "book"
    [intro, _] = find_markdown_files(book, [root]).files
    intro.path.unlink()
    intro.path.symlink_to(outside / "secret.md")

    with pytest.raises(LinkRefused):
        read_source(intro.path, [root])
    assert read_source(book / "part" / "one.mdx", [root]) == PAGE.encode()


def test_a_hard_link_to_an_outside_file_is_reported_and_never_read(
    root: Path, outside: Path, caplog: pytest.LogCaptureFixture
) -> None:
    book = root / "book"
    (book / "leak.md").hardlink_to(outside / "secret.md")
    (book / "inside.md").symlink_to(root / "twin.md")
    (root / "twin.md").hardlink_to(book / "intro.md")  # inside, but linked twice all the same

    walk = find_markdown_files(book, [root])

    assert [found.source for found in walk.files] == ["part/one.mdx"]
    assert walk.refused == {
        "inside.md": HARD_LINK_REFUSED,
        "intro.md": HARD_LINK_REFUSED,
        "leak.md": HARD_LINK_REFUSED,
    }
    assert "hard links" in caplog.text
    with pytest.raises(LinkRefused, match="hard link"):
        read_source(book / "leak.md", [root])


def test_a_page_hard_linked_after_the_walk_is_not_read(root: Path, outside: Path) -> None:
    book = root / "book"
    [intro, _] = find_markdown_files(book, [root]).files
    intro.path.unlink()
    intro.path.hardlink_to(outside / "secret.md")

    with pytest.raises(LinkRefused):
        read_source(intro.path, [root])


def test_one_document_is_located_inside_the_roots(root: Path, outside: Path) -> None:
    book = root / "book"
    (book / "leak.md").symlink_to(outside / "secret.md")
    (book / "hop").symlink_to(outside)

    assert locate_document(book, "part/one.mdx", [root]) == book / "part" / "one.mdx"
    assert locate_document(book, "gone.md", [root]) is None
    for escaping in ("leak.md", "hop/secret.md", "hop/none.md"):
        with pytest.raises(LinkRefused):
            locate_document(book, escaping, [root])


@pytest.mark.parametrize(
    ("source", "name", "page"),
    [
        ("01-ros2/nodes.md", True, True),
        ("intro.MDX", True, True),
        ("a/b/c.md", True, True),
        ("notes.txt", True, False),
        ("_partial.md", True, False),
        ("a/.hidden/x.md", True, False),
        ("node_modules/x.md", True, False),
        ("../x.md", False, False),
        ("a/../x.md", False, False),
        ("./x.md", False, True),
        ("/etc/x.md", False, True),
        ("a//x.md", False, True),
        ("a\\x.md", False, True),
        ("x\x00.md", False, True),
        ("", False, False),
    ],
)
def test_source_names(source: str, name: bool, page: bool) -> None:
    assert is_source_name(source) is name
    assert is_indexable(source) is page


def test_ingest_roots_default_to_the_textbook_and_read_a_json_list(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    book = tmp_path / "book"

    def roots() -> list[Path]:
        settings = Settings(_env_file=None, textbook_path=book)  # type: ignore[call-arg]
        return settings.ingest_roots

    monkeypatch.delenv("INGEST_ROOTS", raising=False)
    assert roots() == [book]
    monkeypatch.setenv("INGEST_ROOTS", '["/srv/a", "/srv/b"]')
    assert roots() == [Path("/srv/a"), Path("/srv/b")]
    monkeypatch.setenv("INGEST_ROOTS", "[]")
    assert roots() == [book]
