"""``report.html`` of a real ``prism run``, opened in a real headless Chromium.

The run (a subprocess, as a user runs it) gets good images with awkward names, a corrupt
JPEG and a text file. The page must load with no console error, every image shown and
every link pointing at a file, the corrupt file's card saying why in words, no sideways
scrolling on a 375 px phone screen, and Tab walking through the links.

The browser: Playwright (a PyPI package) drives Debian's Chromium (``apt-get install
chromium``; ``make browser`` does it as root), or ``$PRISM_CHROMIUM``, or a browser of
Playwright's own if ``playwright install chromium`` could fetch one. With none of these
the test skips, saying so loudly.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest
from PIL import Image

from prism_cli.report import REPORT_NAME, reason_words
from support.cli import prism

try:
    from playwright.sync_api import Browser, Error, Page, ViewportSize, sync_playwright
except ImportError:  # a venv made before playwright joined the dev extras
    pytest.skip(
        "NO BROWSER TEST: playwright is not installed (pip install -e '.[dev]')",
        allow_module_level=True,
    )

pytestmark = pytest.mark.integration

_PHONE: ViewportSize = {"width": 375, "height": 740}
# Good images whose names need escaping in HTML and quoting in URLs.
_GOOD = {
    "photos/sunset & sea #1.jpg": ((1200, 800), "JPEG"),
    "photos/café <draft> 'b'.png": ((640, 640), "PNG"),
    "tall.webp": ((300, 900), "WEBP"),
}


def _chromium() -> str | None:
    """A Chromium executable for Playwright, or None to use Playwright's own."""
    for candidate in (os.environ.get("PRISM_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
            )
        except Error as exc:
            message = (
                "NO BROWSER TEST: no Chromium found (apt-get install chromium, `make browser`, "
                f"or PRISM_CHROMIUM=/path/to/chrome): {str(exc).splitlines()[0]}"
            )
            warnings.warn(message, stacklevel=1)
            pytest.skip(message)
        try:
            yield launched
        finally:
            launched.close()


def _samples(folder: Path) -> None:
    for name, (size, fmt) in _GOOD.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        image = Image.linear_gradient("L").resize(size).convert("RGB")
        image.save(path, fmt)
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), (10, 120, 200)).save(buffer, "JPEG")
    (folder / "broken.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    (folder / "notes.txt").write_text("not an image\n", encoding="utf-8")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of one ``prism run`` (made once for the module's tests)."""
    base = tmp_path_factory.mktemp("report")
    _samples(base / "in")
    result = prism("run", "in", "--out", "out", "--workers", "2", cwd=base)
    assert result.returncode == 1, result.stdout + result.stderr  # the corrupt file failed
    page = base / "out" / REPORT_NAME
    assert result.stdout.strip().splitlines()[-1] == f"Report: {Path('out', REPORT_NAME)}"
    assert page.is_file()
    return page


def _open(browser: Browser, page_path: Path, errors: list[str]) -> Page:
    page = browser.new_page(viewport=_PHONE)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("requestfailed", lambda request: errors.append(f"failed: {request.url}"))
    page.goto(page_path.as_uri())
    # The thumbnails load lazily: scroll through the page as a reader would.
    height = page.evaluate("document.documentElement.scrollHeight")
    for y in range(0, int(height) + _PHONE["height"], _PHONE["height"] // 2):
        page.evaluate(f"window.scrollTo(0, {y})")
        page.wait_for_timeout(30)
    page.wait_for_function("[...document.images].every(img => img.complete)", timeout=10_000)
    page.evaluate("window.scrollTo(0, 0)")
    return page


def test_report_in_a_browser(browser: Browser, report: Path) -> None:
    errors: list[str] = []
    page = _open(browser, report, errors)
    try:
        assert errors == []

        # Every thumbnail loaded: one per variant written.
        log = json.loads((report.parent / "processing_log.json").read_text(encoding="utf-8"))
        written = [entry for entry in log["variants"] if entry["status"] == "done"]
        assert len(written) == 3 * len(_GOOD)
        widths = page.evaluate("[...document.images].map(img => img.naturalWidth)")
        assert len(widths) == len(written) and all(width > 0 for width in widths), widths

        # Every link is a relative link to a file that is there.
        hrefs: list[list[str]] = page.evaluate(
            "[...document.links].map(a => [a.getAttribute('href'), a.href])"
        )
        assert len(hrefs) == len(written) + 1  # and the log's
        for raw, resolved in hrefs:
            assert "://" not in raw, raw
            target = Path(unquote(urlparse(resolved).path))
            assert target.is_file(), (raw, target)
            assert report.parent in target.parents

        # The failed file's card says why in words.
        (failure,) = log["failed"]
        assert failure["path"].endswith("broken.jpg")
        code = failure["error"].partition(":")[0]
        card = page.locator("li.card.failed")
        assert card.count() == 1
        text = card.inner_text()
        assert "broken.jpg" in text and "Failed" in text
        assert reason_words(code) in text, text
        skipped = page.locator("li.card.skipped").inner_text()
        assert "notes.txt" in skipped and reason_words("unsupported_format") in skipped

        # Names shown as they are, not as markup.
        assert "café <draft> 'b'.png" in page.locator("main").inner_text()

        # A phone's width: nothing scrolls sideways.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0

        # Tab walks the links in order.
        focused = []
        for _ in hrefs:
            page.keyboard.press("Tab")
            focused.append(page.evaluate("document.activeElement.getAttribute('href')"))
        assert focused == [raw for raw, _ in hrefs]

        if shot := os.environ.get("PRISM_REPORT_SCREENSHOT"):  # for a person to look at
            page.screenshot(path=shot, full_page=True)
    finally:
        page.close()
