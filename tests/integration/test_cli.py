"""The ``prism`` command: help, user errors, the processing log, and end-to-end runs.

Commands run in a subprocess, as a user runs them: exit status and stderr are the real
ones, and each run gets a fresh process (its own moto server and handler imports).
"""

from __future__ import annotations

import json
import signal
import time
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image

from prism.config import default_config, parse_config
from prism_cli.jobs.display import plural
from prism_cli.jobs.inputs import folder_labels, scan_folders
from prism_cli.jobs.processing_log import (
    FailedFile,
    ProcessingLog,
    SkippedFile,
    VariantEntry,
)
from support.cli import prism, start_prism, user_error
from support.images import image_file

ROOT = Path(__file__).resolve().parents[2]
HANDLERS_MISSING = not (ROOT / "functions" / "worker" / "worker_handler.py").is_file()
needs_handlers = pytest.mark.skipif(
    HANDLERS_MISSING, reason="the worker handler is not written yet"
)


def image(path: Path, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> Path:
    return image_file(path, size, fmt, (200, 30, 30))


# --- help and user errors -------------------------------------------------------------------
@pytest.mark.parametrize("command", [[], ["run"], ["demo"]])
def test_help(command: list[str]) -> None:
    result = prism(*command, "--help")
    assert result.returncode == 0
    assert "usage: prism" in result.stdout
    if command == ["run"]:
        assert "--out" in result.stdout and "--config" in result.stdout


def test_usage_errors_are_one_line(tmp_path: Path) -> None:
    usage = "prism run: error: "  # from the subcommand's parser
    user_error(prism("run", tmp_path), "--out", prefix=usage)
    user_error(
        prism("run", tmp_path, "--out", tmp_path / "o", "--workers", "0"), "--workers", prefix=usage
    )


def test_missing_folder_is_a_one_line_error(tmp_path: Path) -> None:
    result = prism("run", tmp_path / "nope", "--out", tmp_path / "out")
    user_error(result, "input folder not found", "nope")


def test_invalid_config_is_a_one_line_error(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.jpg")
    config = tmp_path / "bad.yaml"
    config.write_text("variants:\n  - name: x\n    format: TIFF\n    transforms: [{op: spin}]\n")
    result = prism("run", tmp_path / "in", "--out", tmp_path / "out", "--config", config)
    user_error(result, "bad.yaml", "variants")

    missing = prism(
        "run", tmp_path / "in", "--out", tmp_path / "out", "--config", tmp_path / "no.yaml"
    )
    user_error(missing, "no.yaml")


def test_empty_folder_and_folder_without_images_are_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    user_error(prism("run", tmp_path / "empty", "--out", tmp_path / "out"), "no files")

    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "notes.txt").write_text("hello")
    user_error(prism("run", tmp_path / "text", "--out", tmp_path / "out"), "no supported images")


def test_output_inside_the_input_is_refused(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.jpg")
    result = prism("run", tmp_path / "in", "--out", tmp_path / "in" / "out")
    user_error(result, "must not be inside")


def test_out_that_cannot_be_a_folder_is_a_one_line_error(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.jpg")
    taken = tmp_path / "taken.txt"
    taken.write_text("not a folder")

    user_error(prism("run", tmp_path / "in", "--out", taken), "is a file, not a folder")
    user_error(prism("run", tmp_path / "in", "--out", taken / "out"), "taken.txt is a file")
    user_error(prism("run", tmp_path / "in", "--out", "/proc/prism"), "cannot write")
    assert taken.read_text() == "not a folder"


def test_config_that_is_not_utf8_is_a_one_line_error(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.jpg")
    config = tmp_path / "utf16.yaml"
    config.write_text("variants:\n  - {name: tiny}\n", encoding="utf-16")

    result = prism("run", tmp_path / "in", "--out", tmp_path / "out", "--config", config)

    user_error(result, "utf16.yaml", "not UTF-8")
    assert not (tmp_path / "out").exists()  # refused before anything was made


def test_clashing_output_keys_are_refused_before_any_upload(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    image(photos / "cat.jpg")
    image(photos / "cat.png", fmt="PNG")
    image(photos / "dog.jpg")

    result = prism("run", photos, "--out", tmp_path / "out")

    user_error(
        result,
        f"{photos / 'cat.jpg'}, {photos / 'cat.png'} -> photos/cat_",
        'output_key: "{dir}/{name}_{variant}.{ext}"',
        "rename the files",
    )
    assert "dog.jpg" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_watermark_logos_a_local_run_cannot_use_are_one_line_errors(tmp_path: Path) -> None:
    image(tmp_path / "in" / "a.jpg")
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        "variants:\n  - {name: tiny}\n  - {name: marked, watermark: {image: assets/logo.png}}\n"
    )
    missing = prism("run", tmp_path / "in", "--out", tmp_path / "out", "--config", config)
    user_error(
        missing, "watermark image assets/logo.png not found", str(tmp_path / "assets/logo.png")
    )

    config.write_text("watermark: {image: s3://brand/logo.png}\nvariants:\n  - {name: tiny}\n")
    remote = prism("run", tmp_path / "in", "--out", tmp_path / "out", "--config", config)
    user_error(remote, "s3://brand/logo.png", "a local run can only use a local file")


# --- pieces ----------------------------------------------------------------------------------
def test_processing_log_round_trip(tmp_path: Path) -> None:
    log = ProcessingLog(
        inputs=["photos"],
        output="out",
        successful=["photos/a.jpg"],
        failed=[FailedFile(path="photos/b.jpg", error="truncated: cut short")],
        skipped=[SkippedFile(path="photos/c.txt", reason="unsupported_format")],
        variants=[
            VariantEntry(
                path="photos/a.jpg",
                variant="thumbnail",
                status="done",
                output="photos/a_thumbnail.jpg",
                width=256,
                height=171,
                bytes=9000,
                duration_ms=12,
            ),
            VariantEntry(
                path="photos/b.jpg", variant="thumbnail", status="failed", reason="truncated"
            ),
        ],
    )
    path = tmp_path / "processing_log.json"
    log.save(path)

    loaded = ProcessingLog.load(path)
    assert loaded == log
    document = json.loads(path.read_text())
    assert document["summary"] == {
        "files": 3,
        "successful": 1,
        "partial": 0,
        "failed": 1,
        "skipped": 1,
        "variants_done": 1,
        "variants_failed": 1,
        "variants_skipped": 0,
    }


def test_scan_labels_hidden_files_and_non_images(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    image(first / "x.jpg")
    image(first / "sub" / "y.png", fmt="PNG")
    image(first / ".hidden.jpg")
    image(first / ".cache" / "z.jpg")
    (first / "readme.md").write_text("# not an image")
    image(second / "x.jpg")

    assert folder_labels([first, second]) == ["photos", "photos-2"]
    scan = scan_folders([first, second])
    assert sorted((f.label, f.relative) for f in scan.files) == [
        ("photos", "sub/y.png"),
        ("photos", "x.jpg"),
        ("photos-2", "x.jpg"),
    ]
    assert [s.reason for s in scan.skipped] == ["unsupported_format"]
    assert scan.skipped[0].path.endswith("readme.md")
    file = next(f for f in scan.files if f.relative == "sub/y.png")
    assert file.key("uploads/") == "uploads/photos/sub/y.png"
    assert file.output_dir(tmp_path / "out") == tmp_path / "out" / "photos" / "sub"


def test_demo_pipeline_is_the_default_plus_a_watermark_on_large() -> None:
    text = resources.files("prism_cli.run").joinpath("demo_pipeline.yaml").read_text("utf-8")
    demo = parse_config(text)
    default = default_config()

    watermarked = {v.name for v in demo.variants if demo.effective_watermark(v) is not None}
    assert watermarked == {"large"}
    large = next(v for v in demo.variants if v.name == "large")
    assert large.watermark and large.watermark.text == "Prism demo"
    stripped = [v.model_copy(update={"watermark": None}) for v in demo.variants]
    assert stripped == list(default.variants)
    assert yaml.safe_load(text)["version"] == 1


# --- end to end ------------------------------------------------------------------------------
def read_log(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((out / "processing_log.json").read_text())
    return document


@needs_handlers
def test_run_mirrors_the_inputs_and_logs_every_file(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    image(photos / "cat.jpg", (800, 600))
    image(photos / "trips" / "beach.png", (300, 500), "PNG")
    (photos / "broken.jpg").write_bytes((photos / "cat.jpg").read_bytes()[:400])
    (photos / "notes.txt").write_text("not an image")
    out = tmp_path / "out"

    result = prism("run", photos, "--out", out, "--workers", "2")

    assert result.returncode == 1, result.stderr  # broken.jpg failed
    assert "Traceback" not in result.stderr
    log = read_log(out)
    variants = [v.name for v in default_config().variants]
    assert sorted(log["successful"]) == sorted(
        [str(photos / "cat.jpg"), str(photos / "trips" / "beach.png")]
    )
    assert [f["path"] for f in log["failed"]] == [str(photos / "broken.jpg")]
    assert [s["path"] for s in log["skipped"]] == [str(photos / "notes.txt")]
    done = [v for v in log["variants"] if v["status"] == "done"]
    assert len(done) == 2 * len(variants)
    for entry in done:
        written = out / entry["output"]
        assert written.is_file() and written.stat().st_size == entry["bytes"]
        with Image.open(written) as rendered:
            assert rendered.size == (entry["width"], entry["height"])
    assert {Path(v["output"]).parent.as_posix() for v in done} == {"photos", "photos/trips"}
    assert (out / "photos" / "trips" / f"beach_{variants[0]}.jpg").is_file() or any(
        (out / "photos" / "trips").glob(f"beach_{variants[0]}.*")
    )
    assert log["summary"]["failed"] == 1 and log["finished_at"]
    # Every event the stack published, oldest first, and no spool file left behind.
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    processed = [e["detail"]["key"] for e in events if e["detail-type"] == "Source Processed"]
    assert sorted(processed) == sorted(
        f"uploads/photos/{k}" for k in ("cat.jpg", "trips/beach.png", "broken.jpg")
    )
    assert [e["detail-type"] for e in events].count("Job Completed") == 1
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    assert not (out / "events.jsonl.part").exists()


@needs_handlers
def test_run_with_a_config_file(tmp_path: Path) -> None:
    image(tmp_path / "in" / "wide.jpg", (1000, 500))
    config = tmp_path / "pipeline.yaml"
    config.write_text(
        "variants:\n  - name: tiny\n    transforms: [{op: thumbnail, width: 100, height: 100}]\n"
        "    format: PNG\n"
    )
    out = tmp_path / "out"

    result = prism("run", tmp_path / "in", "--out", out, "--config", config)

    assert result.returncode == 0, result.stderr
    with Image.open(out / "in" / "wide_tiny.png") as rendered:
        assert rendered.size == (100, 50)
    assert read_log(out)["config"] == str(config)


LAYOUT_CONFIG = """
output_prefix: variants
output_key: "{variant}/{dir}/{stem}_{variant}.{ext}"
variants:
  - name: thumbnail
    transforms: [{op: thumbnail, width: 64, height: 64}]
  - name: web
    transforms: [{op: thumbnail, width: 100, height: 100}]
    format: WEBP
    watermark: {image: assets/logo.png, scale: 0.3, opacity: 1}
"""


@needs_handlers
def test_run_logs_partial_files_user_paths_logos_and_download_failures(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    image(photos / "cat.jpg", (320, 240))
    (photos / "zeros").mkdir()
    (photos / "zeros" / "a.jpg").write_bytes(b"")
    # 250 bytes: "<stem>_web.webp" just fits a file name (255 bytes), "<stem>_thumbnail.jpg" not.
    long_name = "x" * 246 + ".jpg"
    image(photos / long_name)
    config = tmp_path / "config" / "pipeline.yaml"
    image(config.parent / "assets" / "logo.png", (40, 20), "PNG")
    config.write_text(LAYOUT_CONFIG)
    out = tmp_path / "out"

    result = prism("run", photos, "--out", out, "--config", config, "--workers", "2")

    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    log = read_log(out)  # written although an output could not be
    assert log["successful"] == [str(photos / "cat.jpg")]
    # Each output below --out as its key says, without the output prefix.
    cat = {v["variant"]: v for v in log["variants"] if v["path"] == str(photos / "cat.jpg")}
    assert cat["web"]["status"] == "done"  # the logo was found and uploaded
    assert cat["thumbnail"]["output"] == "thumbnail/photos/cat_thumbnail.jpg"
    assert cat["web"]["output"] == "web/photos/cat_web.webp"
    for entry in cat.values():
        assert (out / entry["output"]).stat().st_size == entry["bytes"]
    # Some variants written, some not: partial, with the reason of each one missing.
    [partial] = log["partial"]
    assert partial["path"] == str(photos / long_name)
    assert partial["done"] == ["web"]
    assert partial["not_done"]["thumbnail"].startswith("download_failed: File name too long")
    # Files are named as given, never by the local stack's bucket.
    [failed] = log["failed"]
    assert failed == {
        "path": str(photos / "zeros" / "a.jpg"),
        "error": f"empty_file: {photos / 'zeros' / 'a.jpg'} is empty",
    }
    assert "prism-local" not in (out / "processing_log.json").read_text()
    summary = log["summary"]
    assert (summary["successful"], summary["partial"], summary["failed"]) == (1, 1, 1)
    # Each number of the summary names its unit.
    assert "1 file successful, 1 file partial, 1 file failed, 0 files skipped;" in result.stdout
    assert f"{plural(summary['variants_done'], 'variants')} written to" in result.stdout


@needs_handlers
def test_demo(tmp_path: Path) -> None:
    result = prism("demo", "--out", tmp_path / "demo")

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    log = read_log(tmp_path / "demo")
    assert [Path(f["path"]).name for f in log["failed"]] == ["broken.jpg"]
    assert [Path(s["path"]).name for s in log["skipped"]] == ["notes.txt"]
    assert len(log["successful"]) == 7
    rotated = {
        v["variant"]: (v["width"], v["height"])
        for v in log["variants"]
        if v["path"].endswith("rotated-camera.jpg")
    }
    # Stored 3000x2000 with EXIF orientation 6: every variant comes out portrait.
    assert rotated and all(height > width for width, height in rotated.values())


def demo_sent_ctrl_c(out: Path, *, ignoring_sigint: bool = False) -> tuple[int, str, str]:
    """Start ``prism demo --out out``, send it SIGINT once it is under way, and let it end:
    its exit status, stdout and stderr."""
    process = start_prism("demo", "--out", out, ignoring_sigint=ignoring_sigint)
    deadline = time.monotonic() + 60
    # The function log is opened once the interrupt handler is in place.
    while not (out / "functions.log").exists() and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    return process.returncode, stdout, stderr


@needs_handlers
def test_ctrl_c_stops_cleanly_and_writes_a_partial_log(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    returncode, stdout, stderr = demo_sent_ctrl_c(out)

    assert returncode == 130, stderr
    assert "Traceback" not in stderr
    log = read_log(out)
    assert log["interrupted"] is True
    assert log["finished_at"]
    assert "interrupted" in stdout


@needs_handlers
def test_a_run_started_with_ctrl_c_ignored_is_not_stopped_by_it(tmp_path: Path) -> None:
    # A shell script's background job inherits SIGINT ignored: the Ctrl+C that stops the
    # script is not for the job, which Python and asyncio respect, and so does prism.
    out = tmp_path / "demo"
    returncode, stdout, stderr = demo_sent_ctrl_c(out, ignoring_sigint=True)

    assert returncode == 0, stderr
    assert "Stopping" not in stdout
    log = read_log(out)
    assert log["interrupted"] is False
    # The whole sample set, as test_demo has it.
    assert len(log["successful"]) == 7 and len(log["failed"]) == 1
