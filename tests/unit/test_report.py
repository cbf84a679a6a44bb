"""``report.html`` (prism_cli.report) from hand-made processing logs: escaping, reasons in
words, the savings maths, the originals read from their headers, the page's structure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from prism.errors import Reason
from prism_cli.jobs.processing_log import (
    FailedFile,
    PartialFile,
    ProcessingLog,
    SkippedFile,
    VariantEntry,
)
from prism_cli.report import (
    COST_PER_MILLION_VARIANTS_USD,
    REASON_WORDS,
    REPORT_NAME,
    bytes_text,
    cost_text,
    describe,
    estimated_cost,
    read_original,
    reason_words,
    render_report,
    saving_percent,
    saving_text,
    thumb_size,
    write_report,
)

_STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
_GENERATED = datetime(2026, 1, 2, 4, 0, tzinfo=UTC)


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def of(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def _parse(page: str) -> _Tags:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    return tags


def _image(path: Path, size: tuple[int, int], fmt: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 60, 20)).save(path, fmt)
    return path.stat().st_size


def _done(path: str, variant: str, output: str, size: tuple[int, int], nbytes: int) -> VariantEntry:
    return VariantEntry(
        path=path,
        variant=variant,
        status="done",
        output=output,
        width=size[0],
        height=size[1],
        bytes=nbytes,
        duration_ms=12,
    )


# --- the pieces -------------------------------------------------------------------------
def test_every_reason_code_has_words() -> None:
    for reason in Reason:
        assert reason.value in REASON_WORDS, reason
        assert reason_words(reason.value).endswith(".")
    for code in ("download_failed", "corrupt_image", "not_processed", "interrupted"):
        assert code in REASON_WORDS
    assert reason_words("too_large") == "The image is larger than the pipeline accepts."
    assert "mystery_code" in reason_words("mystery_code")


def test_describe_splits_reasons_and_their_errors() -> None:
    assert describe("corrupt: bad huffman table") == [
        (REASON_WORDS["corrupt"], "bad huffman table")
    ]
    assert describe("cancelled") == [(REASON_WORDS["cancelled"], "")]
    assert describe("output_conflict: a.jpg owns it; retries_exhausted") == [
        (REASON_WORDS["output_conflict"], "a.jpg owns it"),
        (REASON_WORDS["retries_exhausted"], ""),
    ]
    assert describe("something odd happened") == [("Processing failed.", "something odd happened")]


@pytest.mark.parametrize(
    ("source", "variant", "percent", "text"),
    [
        (1000, 250, 75.0, "75% smaller"),
        (1000, 1000, 0.0, "about the same size"),
        (1000, 1500, -50.0, "50% larger"),
        (3, 1, 200 / 3, "67% smaller"),
        (1_440_054, 3_972, 99.724, "99.7% smaller"),
        (10**9, 1, 99.9999999, "99.9% smaller"),
        (None, 10, None, "saving unknown"),
        (0, 10, None, "saving unknown"),
        (1000, None, None, "saving unknown"),
    ],
)
def test_savings(source: int | None, variant: int | None, percent: float | None, text: str) -> None:
    got = saving_percent(source, variant)
    assert got == pytest.approx(percent, rel=1e-4) if percent is not None else got is None
    assert saving_text(got) == text


def test_thumbnail_sizes_keep_the_aspect_and_never_enlarge() -> None:
    assert thumb_size(3200, 1600) == (160, 80)
    assert thumb_size(400, 1200) == (53, 160)
    assert thumb_size(100, 50) == (100, 50)
    assert thumb_size(10_000, 1) == (160, 1)
    assert thumb_size(None, None) == (160, 160)


def test_cost_and_bytes_texts() -> None:
    assert estimated_cost(1_000_000) == pytest.approx(COST_PER_MILLION_VARIANTS_USD)
    assert cost_text(estimated_cost(21)) == "$0.00028"
    assert cost_text(estimated_cost(10_000_000)) == "$131.00"
    assert cost_text(0) == "$0.00"
    assert bytes_text(1) == "1 byte"
    assert bytes_text(999) == "999 bytes"
    assert bytes_text(1_234_567) == "1,234,567 bytes (1.2 MB)"
    assert bytes_text(None) == "unknown"


def test_originals_are_read_from_their_headers(tmp_path: Path) -> None:
    nbytes = _image(tmp_path / "a.png", (30, 20), "PNG")
    assert read_original(str(tmp_path / "a.png")) == read_original(str(tmp_path / "a.png"))
    original = read_original(str(tmp_path / "a.png"))
    assert (original.bytes, original.format, original.width, original.height) == (
        nbytes,
        "PNG",
        30,
        20,
    )
    (tmp_path / "notes.txt").write_text("hello", encoding="utf-8")
    text = read_original(str(tmp_path / "notes.txt"))
    assert (text.bytes, text.format, text.width) == (5, None, None)
    assert read_original(str(tmp_path / "gone.jpg")).bytes is None
    assert read_original("s3://bucket/key.jpg").bytes is None


# --- the page ---------------------------------------------------------------------------
@pytest.fixture
def run_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, ProcessingLog]:
    """A run's output folder and its log, with awkward names, every kind of outcome."""
    monkeypatch.chdir(tmp_path)  # the log names inputs relative to where the run ran
    nasty = 'in/<b>&"quote\'s" #1%.png'
    source_bytes = _image(tmp_path / nasty, (400, 200), "PNG")
    _image(tmp_path / "in/ok.jpg", (640, 480), "JPEG")
    out = tmp_path / "out"
    small = out / 'in/<b>&"quote\'s" #1%_thumbnail.jpg'
    small_bytes = _image(small, (160, 80), "JPEG")
    web_bytes = _image(out / "in/ok_web.webp", (320, 240), "WEBP")
    log = ProcessingLog(
        started_at=_STARTED,
        finished_at=_STARTED + timedelta(seconds=83),
        job="job-<x>",
        inputs=["in"],
        output=str(out),
        successful=[nasty],
        partial=[
            PartialFile(
                path="in/ok.jpg",
                detail="written: web; large: output_conflict: in/other owns it",
                done=["web"],
                not_done={"large": "output_conflict: in/other owns it"},
            )
        ],
        failed=[FailedFile(path="in/<img src=x onerror=alert(1)>.jpg", error="corrupt: bad data")],
        skipped=[SkippedFile(path="in/notes & <things>.txt", reason="unsupported_format")],
        variants=[
            _done(nasty, "thumbnail", small.relative_to(out).as_posix(), (160, 80), small_bytes),
            _done("in/ok.jpg", "web", "in/ok_web.webp", (320, 240), web_bytes),
            VariantEntry(
                path="in/ok.jpg",
                variant="large",
                status="failed",
                reason="output_conflict",
                error="in/other owns it",
            ),
            VariantEntry(
                path="in/<img src=x onerror=alert(1)>.jpg",
                variant="web",
                status="failed",
                reason="corrupt",
                error="bad data",
            ),
        ],
    )
    assert source_bytes > 0
    return out, log


def test_user_strings_are_escaped(run_folder: tuple[Path, ProcessingLog]) -> None:
    out, log = run_folder
    page = render_report(out, log, generated=_GENERATED)
    assert "<b>" not in page and "<img src=x" not in page and "<things>" not in page
    assert "&lt;b&gt;&amp;&quot;quote&#x27;s&quot; #1%.png" in page
    assert "&lt;img src=x onerror=alert(1)&gt;.jpg" in page
    assert "job-&lt;x&gt;" in page
    tags = _parse(page)
    # The browser sees exactly the names again, and links quote what URLs reserve.
    assert any('<b>&"quote\'s" #1%.png' in text for text in tags.text)
    srcs = [img["src"] for img in tags.of("img")]
    assert "in/%3Cb%3E%26%22quote%27s%22%20%231%25_thumbnail.jpg" in srcs
    assert not tags.of("script")


def test_cards_say_why_in_words(run_folder: tuple[Path, ProcessingLog]) -> None:
    out, log = run_folder
    page = render_report(out, log, generated=_GENERATED)
    text = " ".join(_parse(page).text)
    assert REASON_WORDS["corrupt"] in text and "bad data" in text
    assert REASON_WORDS["unsupported_format"] in text
    assert REASON_WORDS["output_conflict"] in text and "in/other owns it" in text
    for label in ("Failed", "Partial", "Skipped", "Successful"):
        assert label in text


def test_variants_have_thumbnails_sizes_and_savings(
    run_folder: tuple[Path, ProcessingLog], tmp_path: Path
) -> None:
    out, log = run_folder
    tags = _parse(render_report(out, log, generated=_GENERATED))
    images = tags.of("img")
    assert len(images) == 2  # the two variants written; none for failures
    for image in images:
        assert image["loading"] == "lazy"
        assert image["alt"] and "variant of" in image["alt"]
        assert int(image["width"] or 0) > 0 and int(image["height"] or 0) > 0
    web = next(image for image in images if image["src"] == "in/ok_web.webp")
    assert (web["width"], web["height"]) == ("160", "120")
    links = [a["href"] for a in tags.of("a")]
    assert {image["src"] for image in images} <= set(links)
    text = " ".join(tags.text)
    original = (tmp_path / "in/ok.jpg").stat().st_size
    web_bytes = (out / "in/ok_web.webp").stat().st_size
    assert saving_text(saving_percent(original, web_bytes)) in text
    assert (
        "640 \N{MULTIPLICATION SIGN} 480 px" in text and "JPEG" in text
    )  # the original, from its header
    assert f"{original:,} bytes" in text


def test_summary_counts_bytes_time_and_cost(run_folder: tuple[Path, ProcessingLog]) -> None:
    out, log = run_folder
    text = " ".join(_parse(render_report(out, log, generated=_GENERATED)).text)
    assert "Files 4" in text
    for label in ("Successful 1", "Partial 1", "Failed 1", "Skipped 1"):
        assert label in text
    assert "2 written, 2 failed, 0 skipped" in text
    assert "1 min 23 s" in text
    assert "Estimated AWS cost" in text and cost_text(estimated_cost(2)) in text
    out_bytes = sum(entry.bytes or 0 for entry in log.variants)
    assert bytes_text(out_bytes) in text


def test_page_is_self_contained_and_accessible(run_folder: tuple[Path, ProcessingLog]) -> None:
    out, log = run_folder
    page = render_report(out, log, generated=_GENERATED)
    tags = _parse(page)
    assert tags.of("html") == [{"lang": "en"}]
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in tags.of("meta")
    assert tags.of("h1") and tags.of("h2") and tags.of("h3")
    assert not tags.of("script") and not tags.of("link")
    assert "http://" not in page and "https://" not in page


def test_outputs_not_in_the_folder_get_no_image(tmp_path: Path) -> None:
    log = ProcessingLog(
        successful=["s3://in/a.jpg"],
        variants=[
            _done("s3://in/a.jpg", "web", "s3://out/a_web.webp", (10, 10), 5),
            _done("s3://in/a.jpg", "large", "../elsewhere.jpg", (10, 10), 5),
            _done("s3://in/a.jpg", "thumb", "missing.jpg", (10, 10), 5),
        ],
    )
    tags = _parse(render_report(tmp_path, log))
    assert not tags.of("img")
    assert "Bytes in unknown" in " ".join(tags.text)  # the sources are in S3, not here
    assert " ".join(tags.text).count("Output file not in this folder") == 3


def test_write_report_writes_next_to_the_log(run_folder: tuple[Path, ProcessingLog]) -> None:
    out, log = run_folder
    path = write_report(out, log)
    assert path == out / REPORT_NAME
    assert path.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
