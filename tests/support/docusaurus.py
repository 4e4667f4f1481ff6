"""Real Docusaurus builds of fixture books, to check citation URLs against what a site serves.

Docusaurus comes from the npm registry at the versions locked in `docusaurus/package-lock.json`,
installed once per lock into a cache folder (`BOOKCHAT_DOCUSAURUS_CACHE`, by default
`~/.cache/bookchat/docusaurus-<lock hash>`), so reruns only build. Builds run inside that folder,
one at a time: Docusaurus breaks when its modules are reached through a symlink or a parent
folder's node_modules.
"""

from __future__ import annotations

import fcntl
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

TEMPLATE = Path(__file__).resolve().parent / "docusaurus"
INSTALL_TIMEOUT_S = 900
BUILD_TIMEOUT_S = 600
_ID = re.compile(r"""\sid=(?:"([^"]*)"|'([^']*)')""")
_CANONICAL = re.compile(r"""<link[^>]*rel="canonical"[^>]*href="([^"]*)\"""")
# What a browser percent-encodes in a URL's path (WHATWG URL, "path percent-encode set"), plus
# everything outside ASCII. Docusaurus refuses "%", "#" and "?" in routes, so they never occur.
_PATH_SAFE = "!$&'()*+,/:;=@[]^|\\"


def browser_path(path: str) -> str:
    """The path as a browser shows it after following a link to `path` (WHATWG encoding)."""
    return quote(path, safe=_PATH_SAFE)


class DocusaurusUnavailable(Exception):
    """npm or the registry is missing: the Docusaurus checks cannot run here."""


def cache_dir() -> Path:
    """The folder holding node_modules for the locked Docusaurus."""
    lock = (TEMPLATE / "package-lock.json").read_bytes()
    digest = hashlib.sha256(lock).hexdigest()[:12]
    default = Path.home() / ".cache" / "bookchat" / f"docusaurus-{digest}"
    return Path(os.environ.get("BOOKCHAT_DOCUSAURUS_CACHE", default))


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(folder: Path) -> None:
    marker = folder / "node_modules" / ".bookchat-installed"
    if marker.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise DocusaurusUnavailable("npm is not installed")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(TEMPLATE / name, folder / name)
    done = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise DocusaurusUnavailable(f"npm ci failed: {done.stderr[-2000:]}")
    marker.touch()


def _config(route_base_path: str, base_url: str, scripts: list[dict[str, Any]]) -> str:
    docs = {"routeBasePath": route_base_path}
    preset = {"docs": docs, "blog": False, "pages": False, "theme": {}}
    config = {
        "title": "Fixture book",
        "url": "http://localhost",
        "baseUrl": base_url,
        "onBrokenLinks": "warn",
        "presets": [["classic", preset]],
        "scripts": scripts,
    }
    return "module.exports = " + json.dumps(config, indent=2) + ";\n"


@dataclass(frozen=True)
class BuiltSite:
    """A Docusaurus build: its output folder and the base URL it was built for."""

    out: Path
    base_url: str

    def page_file(self, url_path: str) -> Path | None:
        """The HTML file served for a URL path (as a browser sends it), or None (a 404)."""
        path = unquote(urlsplit(url_path).path)
        if not path.startswith(self.base_url):
            return None
        relative = path[len(self.base_url) :].strip("/")
        candidates = [self.out / relative / "index.html", self.out / f"{relative}.html"]
        return next((c for c in candidates if c.is_file()), None)

    def element_ids(self, page: Path) -> set[str]:
        """Every element id on a built page."""
        text = page.read_text(encoding="utf-8")
        return {html.unescape(a or b) for a, b in _ID.findall(text)}

    def canonical_path(self, page: Path) -> str:
        """The page's own URL path as Docusaurus links it, encoded as a browser sends it."""
        match = _CANONICAL.search(page.read_text(encoding="utf-8"))
        assert match, f"{page} has no canonical link"
        return browser_path(urlsplit(html.unescape(match.group(1))).path)

    def doc_pages(self) -> list[Path]:
        """Every built page that is a doc (it carries Docusaurus's doc markup)."""
        return [p for p in self.out.rglob("*.html") if "theme-doc-markdown" in p.read_text()]


def build_site(
    docs: Path,
    out: Path,
    *,
    route_base_path: str = "docs",
    base_url: str = "/",
    scripts: list[dict[str, Any]] | None = None,
) -> BuiltSite:
    """Build `docs` as a default Docusaurus site (classic preset, plus `scripts`) into `out`."""
    folder = cache_dir()
    with _locked(folder):
        _install(folder)
        site_docs = folder / "docs"
        shutil.rmtree(site_docs, ignore_errors=True)
        shutil.copytree(docs, site_docs)
        config = _config(route_base_path, base_url, scripts or [])
        (folder / "docusaurus.config.js").write_text(config)
        shutil.rmtree(out, ignore_errors=True)
        cli = folder / "node_modules" / "@docusaurus" / "core" / "bin" / "docusaurus.mjs"
        done = subprocess.run(
            ["node", str(cli), "build", "--out-dir", str(out), "--no-minify"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
        )
        if done.returncode != 0:
            raise RuntimeError(f"docusaurus build failed:\n{done.stderr[-3000:]}")
    return BuiltSite(out=out, base_url=base_url)


class SiteServer:
    """`docusaurus serve` of a build on 127.0.0.1: the site on an origin of its own."""

    def __init__(self, site: BuiltSite, port: int, log_path: Path) -> None:
        folder = cache_dir()
        cli = folder / "node_modules" / "@docusaurus" / "core" / "bin" / "docusaurus.mjs"
        command = ["node", str(cli), "serve", "--dir", str(site.out), "--port", str(port)]
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--no-open"],
            cwd=folder,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        self.origin = f"http://127.0.0.1:{port}"
        try:
            self._wait_until_up(site.base_url)
        except BaseException:
            self.stop()
            raise

    def _wait_until_up(self, base_url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(self.origin + base_url, timeout=2):
                    return
            except urllib.error.HTTPError:
                return  # it answers (a docs-only site may have no home page)
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("docusaurus serve did not start") from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop serving."""
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()
